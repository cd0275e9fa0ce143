"""A fine-tuned model ready to use: load from a run, predict, evaluate, save."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..atomic import atomic_folder
from ..batching.logits import compute_logits
from ..data.encoded import Encoded
from ..data.examples import Columns, Examples
from ..data.store import Store
from ..errors import StellarError
from ..models.heads import EncoderWithHead
from ..models.loading import load_classifier, load_tokenizer
from ..models.onnx_runtime import ONNX_FILE, OnnxClassifier
from ..models.quiet import quiet_transformers
from ..strategies.layers import inner_model
from ..strategies.peft import ADAPTER_CONFIG, is_peft, load_peft_classifier
from ..tasks import task_from_dict
from .precision import inference_autocast

META_FILE = "stellartune.json"
logger = logging.getLogger("stellartune")
PREDICT_CHUNK = 512  # texts encoded and run at a time: memory stays flat however many come in


def read_saved(path: str | Path) -> tuple[Path, dict]:
    """The model folder of a run folder (runs/x) or model folder (runs/x/model), and its stellartune.json."""
    folder = Path(path)
    if (folder / "model" / META_FILE).exists():
        folder = folder / "model"
    if not (folder / META_FILE).exists():
        raise StellarError(f"{path}: not a stellartune model (no {META_FILE}); give a run folder or its model/ folder")
    return folder, json.loads((folder / META_FILE).read_text())


class FineTunedModel:
    """What `fit` returns and `load` gives back: model, tokenizer and task, with predict/evaluate/save."""

    def __init__(self, model, tokenizer, task, max_length: int, columns: Columns, label_delimiter: str = ",",
                 base_model: str = "", metrics: dict | None = None, run_dir: Path | None = None,
                 strategy: dict | None = None, precision: str = "auto"):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        self.max_length, self.columns, self.label_delimiter = max_length, columns, label_delimiter
        self.base_model = base_model
        self.metrics, self.run_dir = metrics or {}, run_dir
        self.strategy = strategy or {}  # transfer strategy settings it was trained with
        self.precision = precision  # what predict and evaluate run in unless told: the run's --precision

    @property
    def labels(self) -> list[str]:
        return self.task.labels

    # --- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "FineTunedModel":
        """Load from a run folder (runs/x) or its model folder (runs/x/model)."""
        folder, meta = read_saved(path)
        task = task_from_dict(meta["task"])
        if meta.get("backend") == "onnx":  # exported (stellartune export): ONNX Runtime on the CPU
            model = OnnxClassifier(folder / ONNX_FILE)
        else:
            model = (load_peft_classifier(folder, meta["base_model"], task) if (folder / ADAPTER_CONFIG).exists()
                     else load_classifier(folder))
            model = model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(model, load_tokenizer(str(folder)), task, meta["max_length"], Columns(**meta["columns"]),
                   meta["label_delimiter"], meta["base_model"], strategy=meta.get("strategy"),
                   precision=meta.get("precision", "auto"))

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """A standard Hugging Face folder (weights as safetensors, tokenizer) plus stellartune.json; a PEFT
        model saves its adapter and head only (`adapter_config.json`, `adapter_model.safetensors`).
        A folder stellartune wrote is replaced; one holding anything else is refused, or with `overwrite`
        the model's files go in beside the others."""
        if isinstance(self.model, OnnxClassifier):
            raise StellarError("an ONNX model is written by `stellartune export`, not saved again")
        folder = Path(folder)
        megabytes = sum(t.numel() * t.element_size() for t in self.model.state_dict().values()) / 1e6
        with atomic_folder(folder, megabytes, overwrite) as tmp:
            with quiet_transformers():
                self.model.save_pretrained(tmp)
                self.tokenizer.save_pretrained(tmp)
            if is_peft(self.model) and isinstance(inner_model(self.model), EncoderWithHead):
                inner_model(self.model).save_head_config(tmp)
            meta = {"task": self.task.to_dict(), "max_length": self.max_length, "columns": vars(self.columns),
                    "label_delimiter": self.label_delimiter, "base_model": self.base_model,
                    "strategy": self.strategy, "precision": self.precision}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        return folder

    # --- use -----------------------------------------------------------------------------------
    def run(self, examples: Examples, batch_size: int = 64, precision: str | None = None
            ) -> tuple[torch.Tensor, Encoded]:
        """The logits of each example (its windows' joined, for a long text), and what the task needs to score
        and describe them."""
        return self.scored(self.task.encode(examples, self.tokenizer, self.max_length), batch_size, precision)

    def scored(self, encoded: Encoded, batch_size: int, precision: str | None) -> tuple[torch.Tensor, Encoded]:
        """`run` on examples encoded before."""
        device = next(self.model.parameters(), torch.empty(0)).device  # an ONNX model holds none: the CPU
        autocast = inference_autocast(precision or self.precision, device)
        return self.task.per_text(compute_logits(self.model, encoded, self.tokenizer, batch_size, device, autocast),
                                  encoded)

    def windows(self, texts: list[str], pairs: list[str] | None = None) -> int:
        """The inputs of max_length tokens the model runs for these texts: a long text read in windows counts
        each of them (a QA context too), one that fits counts one."""
        examples = self.task.prepare(texts, pairs, self.columns)
        return len(self.task.encode(examples, self.tokenizer, self.max_length))

    def predict(self, texts: list[str] | str, pairs: list[str] | None = None, batch_size: int = 64,
                precision: str | None = None) -> list[dict]:
        """One dict per text: label and score (classification), labels (multi-label), score
        (regression), entities with character offsets (NER), or for questions (`texts`) with their
        contexts (`pairs`) the answer with its character offsets in the context (QA).

        `precision`: auto (bf16 autocast where the hardware runs it fast), fp32, bf16 or fp16;
        default: the one the model was trained and evaluated with."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        pairs = [pairs] if isinstance(pairs, str) else pairs
        examples = self.task.prepare(texts, pairs, self.columns)
        predictions = []
        for start in range(0, len(examples), PREDICT_CHUNK):
            chunk = examples.subset(range(start, min(start + PREDICT_CHUNK, len(examples))))
            logits, encoded = self.run(chunk, batch_size, precision)
            predictions += self.task.predictions(logits, encoded, chunk)
        return predictions

    def evaluate(self, data, batch_size: int = 64, tag_column: int = -1, precision: str | None = None,
                 text_column: str | None = None, text_pair_column: str | None = None,
                 label_column: str | None = None, data_cache: str = "auto") -> dict:
        """Metrics on a labeled file, dataset or list of records: the named columns, else those used in
        training, else the usual names (`tag_column`: which column of a CoNLL file holds the tags). A data file
        or a dataset on disk is read and tokenized through the store of `data_cache` (as training reads it: a chunk at a time, and
        reused by the next evaluation of the same file) when the task takes stored examples."""
        task = type(self.task)
        table = task.first_rows(data, tag_column)
        known = lambda column: column if column in table.columns else None
        columns = task.find_columns(table, text_column or known(self.columns.text),
                                    text_pair_column or known(self.columns.pair),
                                    label_column or known(self.columns.label))
        examples = task.labeled_examples(data, columns, self.label_delimiter, tag_column, Store.at(data_cache))
        if examples.note:
            logger.info(examples.note)
        if note := self.task.check_known_labels(examples):
            logger.warning(note)
        encoded = self.task.encode(examples, self.tokenizer, self.max_length)
        if encoded.note:
            logger.info(encoded.note)
        return self.task.metrics(*self.scored(encoded, batch_size, precision))
