"""The `stellartune` command: argparse over the same functions as the Python API.

Training flags are generated from `TrainConfig`, so every setting has one definition, one
default and one help text.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from .atomic import WRITE_FAULTS, as_os_error, is_write_fault
from .config import PretrainConfig, TrainConfig, choices_of, field_type, flag_name
from .errors import StellarError
from .serving.settings import ServeSettings
from .tuning.settings import TuneSettings


class TqdmHandler(logging.Handler):
    """Log lines that do not break the progress bar."""

    def emit(self, record):
        from tqdm.auto import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


# The flags of train that evaluate and predict take too (unset columns: those the model was trained on)
EVALUATE_SETTINGS = ("text_column", "text_pair_column", "label_column", "tag_column", "data_cache")
PREDICT_COLUMNS = ("text_column", "text_pair_column")
SERVE_SETTINGS = tuple(f.name for f in dataclasses.fields(ServeSettings))
TUNE_SETTINGS = tuple(f.name for f in dataclasses.fields(TuneSettings))
# Settings `inspect` takes to show the parameter groups `train` would build.
INSPECT_STRATEGY = ("freeze", "unfreeze", "lr", "head_lr", "layer_lr_decay", "weight_decay", "peft", "lora_r",
                    "lora_targets", "prompt_tokens")


def add_config_flags(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None,
                     schema=TrainConfig) -> None:
    if only is None:
        parser.add_argument("--config", help="YAML file of settings (flags given here override it).")
    for f in dataclasses.fields(schema):
        if only is not None and f.name not in only:
            continue
        kind = field_type(schema, f.name)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        help_text = f"{f.metadata['help']} (default: {default})"
        options = dict(help=help_text, default=argparse.SUPPRESS, dest=f.name)
        if kind is bool:
            parser.add_argument(flag_name(f), action=argparse.BooleanOptionalAction, **options)
        elif kind is list:
            parser.add_argument(flag_name(f), type=lambda v: [int(x) for x in v.split(",")], metavar="N,N", **options)
        else:
            parser.add_argument(flag_name(f), type=kind, choices=choices_of(f), **options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stellartune", description="Fine-tune pretrained transformer encoders.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="Fine-tune a model on labeled data.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_flags(train)

    tune = commands.add_parser("tune", help="Search the training settings (Optuna) and keep the best run.",
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                               description="Trials of train with settings around the no-flag defaults (TPE; a "
                               "trial whose evaluations fall below the median is pruned), the data read once. "
                               "--output (here runs/tune unless given) gets best/ (the best trial's run), "
                               "trials.csv, study.html and the study (study.db). A train flag given holds that "
                               "setting fixed; --resume continues a stopped search, or adds this process to a "
                               "running one.")
    add_config_flags(tune)
    add_config_flags(tune, only=TUNE_SETTINGS, schema=TuneSettings)

    pretrain = commands.add_parser("pretrain", help="Continue masked-LM pretraining on unlabeled text (domain adaptation).",
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_flags(pretrain, schema=PretrainConfig)

    evaluate = commands.add_parser("evaluate", help="Score a trained model on labeled data.")
    evaluate.add_argument("--model", required=True, help="Run folder (or its model/ folder).")
    evaluate.add_argument("--data", required=True, help="Labeled file or dataset, with the training columns.")
    evaluate.add_argument("--output", default="metrics.json", help="Where to write the metrics (default: metrics.json).")
    add_config_flags(evaluate, only=EVALUATE_SETTINGS)
    add_inference_flags(evaluate)

    predict = commands.add_parser("predict", help="Label new texts.")
    predict.add_argument("--model", required=True, help="Run folder (or its model/ folder).")
    predict.add_argument("--input", help="File (CSV/TSV/JSON/JSONL/Parquet, SQuAD JSON for QA) or - for stdin, one text per line.")
    predict.add_argument("--question", help="QA: one question to answer from --context (instead of --input).")
    predict.add_argument("--context", help="QA: the text that holds the answer to --question.")
    predict.add_argument("--output", default="-", help="JSONL file of predictions, - for stdout (default: -).")
    add_config_flags(predict, only=PREDICT_COLUMNS)
    add_inference_flags(predict)

    export = commands.add_parser("export", help="Export a trained model to ONNX (fp32 or int8) for ONNX Runtime.")
    export.add_argument("model", help="Run folder (or its model/ folder).")
    export.add_argument("--format", choices=("onnx",), default="onnx", help="Export format (default: onnx).")
    export.add_argument("--quantize", choices=("int8",), help="Dynamic int8 quantization of the weights.")
    export.add_argument("--output", required=True, help="Folder to write: model.onnx, tokenizer, stellartune.json, "
                        "export.json (the check against PyTorch).")
    export.add_argument("--verify-data", help="Inputs to check the export on (default: the run's evaluation "
                        "predictions), as predict reads them.")
    export.add_argument("--max-difference", type=float, help="Largest logit difference from PyTorch fp32 allowed "
                        "(default: 1e-3 for fp32, not checked for int8).")
    export.add_argument("--min-agreement", type=float, help="Share of PyTorch's predictions the export must keep "
                        "(default: 0.95 for int8, not checked for fp32).")
    export.add_argument("--overwrite", action="store_true", help="Write into an --output folder that holds other "
                        "files (they are kept, except those of the same name); an earlier export is replaced anyway.")

    report = commands.add_parser("report", help="(Re)build a run's HTML report, or compare runs side by side.")
    report.add_argument("runs", nargs="+", metavar="RUN", help="Run folder(s); two or more: one page comparing them.")
    report.add_argument("--output", help="HTML file to write (default: RUN/report.html for one run, compare.html "
                        "for several).")
    report.add_argument("--open", action="store_true", help="Open it in the web browser.")

    serve = commands.add_parser("serve", help="Serve a trained model over HTTP (docs at /docs).")
    serve.add_argument("model", help="Run folder (or its model/ folder).")
    add_config_flags(serve, only=SERVE_SETTINGS, schema=ServeSettings)

    inspect = commands.add_parser("inspect", help="Show a model's parameters, tokenization and embeddings.")
    inspect.add_argument("--model", default="minilm", help="Alias, hub id, local model or run folder (default: minilm).")
    inspect.add_argument("--text", help="Show how this text tokenizes.")
    inspect.add_argument("--compare", nargs=2, metavar=("A", "B"), help="Cosine similarity of two texts' embeddings.")
    inspect.add_argument("--depth", type=int, default=3, help="Module depth of the parameter table (default: 3).")
    strategy = inspect.add_argument_group("strategy", "Show the parameter groups (learning rates, frozen or "
                                          "trainable) that train would build with these settings.")
    add_config_flags(strategy, only=INSPECT_STRATEGY)

    demo = commands.add_parser("demo", help="Fine-tune minilm on BBC News (5 topics) and predict new sentences.")
    demo.add_argument("--output", default="runs/demo", help="Run folder (default: runs/demo).")
    demo.add_argument("--epochs", type=float, default=1.0, help="Training epochs (default: 1).")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[TqdmHandler()])
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except StellarError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): nothing left to say
        sys.stderr.close()
        return 0
    except Exception as e:
        fault = as_os_error(e)
        if fault is None or not is_write_fault(fault):
            raise  # a bug: its traceback is what a report needs
        print(f"error: {fault.filename or 'cannot write'}: {WRITE_FAULTS[fault.errno]}", file=sys.stderr)
        return 2
    return 0


def flag_settings(args) -> dict:
    """The settings given as flags (argparse leaves the others out, so the YAML file or defaults hold)."""
    return {k: v for k, v in vars(args).items() if k not in ("command", "config")}


def run_train(args) -> None:
    from .api import fit

    fit(args.config, **flag_settings(args))


def run_tune(args) -> None:
    from .api import tune

    tune(args.config, **flag_settings(args))


def run_pretrain(args) -> None:
    from .api import pretrain

    pretrain(args.config, **flag_settings(args))


def add_inference_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--batch-size", type=int, default=64, help="Examples per forward pass (default: 64).")
    command.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                         help="auto: bf16 autocast where the hardware runs it fast (default: the precision the "
                              "model was trained with).")


def run_evaluate(args) -> None:
    from .api import load
    from .evaluation.report import metrics_report

    model = load(args.model)
    columns = {name: getattr(args, name, None) for name in ("text_column", "text_pair_column", "label_column")}
    metrics = model.evaluate(args.data, args.batch_size, getattr(args, "tag_column", -1), args.precision, **columns,
                             data_cache=getattr(args, "data_cache", "auto"))
    print(metrics_report(metrics, model.labels))
    Path(args.output).write_text(json.dumps(metrics, indent=2))
    print(f"\nwrote {args.output}")


def run_predict(args) -> None:
    from .api import load
    from .inference.io import input_chunks, predict_to

    if (args.input is None) == (args.question is None) or (args.question is None) != (args.context is None):
        raise StellarError("predict needs --input, or --question with --context (question answering)")
    model = load(args.model)
    chunks = ([([args.question], [args.context])] if args.question is not None else
              input_chunks(args.input, model, getattr(args, "text_column", None), getattr(args, "text_pair_column", None)))
    count = predict_to(args.output, model, chunks, args.batch_size, args.precision)
    if args.output != "-":
        print(f"wrote {count} predictions to {args.output}", file=sys.stderr)


def run_export(args) -> None:
    from .api import export

    export(args.model, args.output, args.quantize, args.verify_data, args.max_difference, args.min_agreement,
           args.overwrite)
    print(f"wrote {args.output}: predict, evaluate and serve take it as --model", file=sys.stderr)


def run_report(args) -> None:
    from .api import report

    path = report(args.runs, args.output)
    print(f"wrote {path}", file=sys.stderr)
    if args.open:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def run_serve(args) -> None:
    from .api import serve

    serve(args.model, **{name: getattr(args, name) for name in SERVE_SETTINGS if hasattr(args, name)})


def run_inspect(args) -> None:
    from .inspect import inspect_model

    strategy = {name: getattr(args, name) for name in INSPECT_STRATEGY if hasattr(args, name)}
    print(inspect_model(args.model, args.text, args.compare, args.depth, strategy))


def run_demo(args) -> None:
    from .demo import run_demo as demo

    demo(args.output, args.epochs)


COMMANDS = {"train": run_train, "tune": run_tune, "pretrain": run_pretrain, "evaluate": run_evaluate,
            "predict": run_predict, "export": run_export, "report": run_report, "serve": run_serve, "inspect": run_inspect, "demo": run_demo}

if __name__ == "__main__":
    sys.exit(main())
