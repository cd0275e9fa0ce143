"""A fine-tuned model ready to use: load from a run, predict, evaluate, save."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ..data import build_examples, read_table
from ..data.examples import Columns, Examples, resolve_columns
from ..errors import StellarError
from ..models.loading import load_classifier, load_tokenizer, quiet_transformers
from ..tasks import task_from_dict
from .logits import compute_logits

META_FILE = "stellartune.json"


class FineTunedModel:
    """What `fit` returns and `load` gives back: model, tokenizer and task, with predict/evaluate/save."""

    def __init__(self, model, tokenizer, task, max_length: int, columns: Columns, label_delimiter: str = ",",
                 base_model: str = "", metrics: dict | None = None, run_dir: Path | None = None):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        self.max_length, self.columns, self.label_delimiter = max_length, columns, label_delimiter
        self.base_model = base_model
        self.metrics, self.run_dir = metrics or {}, run_dir

    @property
    def labels(self) -> list[str]:
        return self.task.labels

    # --- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "FineTunedModel":
        """Load from a run folder (runs/x) or its model folder (runs/x/model)."""
        folder = Path(path)
        if (folder / "model" / META_FILE).exists():
            folder = folder / "model"
        if not (folder / META_FILE).exists():
            raise StellarError(f"{path}: not a stellartune model (no {META_FILE}); give a run folder or its model/ folder")
        meta = json.loads((folder / META_FILE).read_text())
        model = load_classifier(folder).to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(model, load_tokenizer(str(folder)), task_from_dict(meta["task"]), meta["max_length"],
                   Columns(**meta["columns"]), meta["label_delimiter"], meta["base_model"])

    def save(self, folder: str | Path) -> Path:
        """A standard Hugging Face folder (weights as safetensors, tokenizer) plus stellartune.json."""
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with quiet_transformers():
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
        meta = {"task": self.task.to_dict(), "max_length": self.max_length, "columns": vars(self.columns),
                "label_delimiter": self.label_delimiter, "base_model": self.base_model}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        return folder

    # --- use -----------------------------------------------------------------------------------
    def logits(self, examples: Examples, batch_size: int = 64) -> torch.Tensor:
        encoded = self.task.encode(examples, self.tokenizer, self.max_length)
        return compute_logits(self.model, encoded, self.tokenizer, batch_size)

    def predict(self, texts: list[str] | str, pairs: list[str] | None = None, batch_size: int = 64) -> list[dict]:
        """One dict per text: label and score (classification), labels (multi-label) or score (regression)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        examples = Examples(texts, pairs, None, [f"input {i + 1}" for i in range(len(texts))], self.columns)
        return self.task.predictions(self.logits(examples, batch_size))

    def evaluate(self, data, batch_size: int = 64) -> dict:
        """Metrics on a labeled file, dataset or list of records, with the columns used in training."""
        table = read_table(data)
        columns = resolve_columns(table, self.columns.text if self.columns.text in table.columns else None,
                                  self.columns.pair if self.columns.pair in table.columns else None,
                                  self.columns.label if self.columns.label in table.columns else None)
        examples = build_examples(table, columns, self.task.problem, self.label_delimiter)
        self.task.check_known_labels(examples)
        encoded = self.task.encode(examples, self.tokenizer, self.max_length)
        return self.task.metrics(compute_logits(self.model, encoded, self.tokenizer, batch_size), encoded.targets)
