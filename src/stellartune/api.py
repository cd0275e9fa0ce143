"""The Python API: the same functions the CLI calls.

    import stellartune
    model = stellartune.fit(train="train.csv", eval="dev.csv", output="runs/sst2")
    model.predict(["A truly brilliant film."])
    model = stellartune.load("runs/sst2")
    stellartune.evaluate("runs/sst2", "test.csv")
    stellartune.serve("runs/sst2", port=8000)
"""

from __future__ import annotations

from pathlib import Path

from .config import PretrainConfig, TrainConfig
from .inference.predictor import FineTunedModel


def fit(config: TrainConfig | str | None = None, **settings) -> FineTunedModel:
    """Fine-tune; `settings` are `TrainConfig` fields (the CLI flags, with underscores).

    `config` may be a YAML path or a `TrainConfig`; keyword settings override it. `train` and
    `eval` also accept a list of dicts or a pandas DataFrame.
    """
    from .training.recipe import fit as run_recipe

    return run_recipe(settled(TrainConfig, config, settings))


def pretrain(config: PretrainConfig | str | None = None, **settings) -> dict:
    """Continue masked-LM pretraining on unlabeled text; `settings` are `PretrainConfig` fields.
    Returns the held-out metrics; the model is in `<output>/model`, for `fit(model=<output>)`."""
    from .pretraining.recipe import pretrain as run_recipe

    return run_recipe(settled(PretrainConfig, config, settings))


def tune(config: TrainConfig | str | None = None, trials: int = 20, timeout: float | None = None,
         space: str | None = None, storage: str | None = None, study_name: str | None = None, **settings) -> dict:
    """Search the training settings (Optuna: TPE, median pruning) and keep the best trial's run; `settings` are
    `TrainConfig` fields (the data, the model, and any setting held fixed), the others `TuneSettings`' (the tune
    flags). `output` (default runs/tune) gets the study (study.db), `best/` (a run folder: `stellartune.load` it),
    trials.csv and study.html. Returns the summary (search.json): best trial, its score, the defaults' score."""
    from .tuning.search import tune as run_search
    from .tuning.settings import TuneSettings

    if config is None and "output" not in settings:
        settings["output"] = "runs/tune"
    return run_search(settled(TrainConfig, config, settings), TuneSettings(trials, timeout, space, storage, study_name))


def settled(schema, config, settings: dict):
    """`config` (a YAML path, a `schema` object or None) with the keyword settings over it."""
    if isinstance(config, schema):
        return schema.from_sources(None, **{**config.to_dict(), **settings})
    return schema.from_sources(config, **settings)


def load(path: str | Path, device: str | None = None) -> FineTunedModel:
    """A trained model from a run folder or its model/ folder."""
    return FineTunedModel.load(path, device)


def evaluate(model: str | Path | FineTunedModel, data, batch_size: int = 64, tag_column: int = -1,
             precision: str | None = None, text_column: str | None = None, text_pair_column: str | None = None,
             label_column: str | None = None, data_cache: str = "auto") -> dict:
    """The metrics of a model (a run folder, an exported folder or a loaded model) on labelled data: a file, a
    dataset or a list of records, read with the training columns unless others are named (a large file through
    the store of `data_cache`, as `fit` reads one)."""
    model = model if isinstance(model, FineTunedModel) else load(model)
    return model.evaluate(data, batch_size, tag_column, precision, text_column, text_pair_column, label_column,
                          data_cache)


def predict(model: str | Path | FineTunedModel, texts, pairs=None, batch_size: int = 64,
            precision: str | None = None) -> list[dict]:
    """One prediction per text (with `pairs`, per pair), as `FineTunedModel.predict` gives it."""
    model = model if isinstance(model, FineTunedModel) else load(model)
    return model.predict(texts, pairs, batch_size, precision)


def export(model: str | Path, output: str | Path, quantize: str | None = None, verify_data: str | None = None,
           max_difference: float | None = None, min_agreement: float | None = None, overwrite: bool = False) -> dict:
    """Export a run to ONNX (`quantize="int8"`: dynamic int8), checked against PyTorch before it is written;
    `stellartune.load(output)` then predicts and evaluates with ONNX Runtime. Returns the check. `output` may
    hold an earlier export (replaced); a folder of other files is refused unless `overwrite`."""
    from .onnx_export import export_onnx

    return export_onnx(model, output, quantize, verify_data, max_difference, min_agreement, overwrite)


def report(runs: str | Path | list, output: str | Path | None = None) -> Path:
    """The HTML report of a run folder (rebuilt; default RUN/report.html), or with several run folders one
    page comparing them (default compare.html). Returns the file written."""
    from .reports import write_comparison, write_report

    runs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    return write_report(runs[0], output) if len(runs) == 1 else write_comparison(runs, output or "compare.html")


def serve(model: str | Path | FineTunedModel, **settings) -> None:
    """Serve a model over HTTP until stopped; `settings` are `ServeSettings` fields (the serve flags).
    For an ASGI app to mount in your own server: `stellartune.serving.create_app(model)`."""
    from .serving import serve as run_server

    run_server(model, **settings)
