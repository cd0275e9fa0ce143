"""The task interface: the only place that knows what labels mean.

The engine, CLI and API call these methods and never branch on the task. A task turns
examples into token ids and targets, logits into a loss, metrics and user-facing predictions,
and saves what it needs (label names, threshold, ...) with the model as `stellartune.json`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..data.encoded import Encoded
from ..data.examples import Columns, Examples, build_examples, resolve_columns
from ..data.readers import Table, read_chunks
from ..evaluation.sections import Section
from ..models import HeadConfig, build_classifier


class Task:
    name: str  # the registry key, saved in stellartune.json
    labels: list[str]  # the model's outputs, in order
    model_kind: str = "sequence"  # the architecture's head it trains: sequence, token or qa (models/loading.py)
    one_output_per_text = True  # a pooled text vector feeds the head: custom heads and the feature cache fit it
    problem_type: str | None = None  # transformers' problem_type for sequence heads
    primary_metric: str  # what "better" means for best checkpoint and early stopping
    default_max_length = 128  # tokens per example unless --max-length says otherwise
    head_description = "new classification head"  # for the log: what is trained on top of the encoder
    pipeline_task = "text-classification"  # the transformers pipeline that loads the saved model
    lr_scale = 1.0  # its learning rate against a sentence classifier's, when --lr is not given
    lower_is_better: frozenset[str] = frozenset()  # metrics where lower wins (mse, loss, ...); the rest: higher
    input_names = ("texts", "text_pairs")  # what a served request calls its inputs (`stellartune serve`)
    needs_pairs = False  # every input needs a second text, whatever the training columns (QA: a context)

    def report_sections(self, records: list[dict]) -> list[Section]:
        """What a run report shows about the evaluation predictions (eval_predictions.jsonl records)."""
        return []

    @property
    def prediction_fields(self) -> dict[str, object]:
        """Each field `predictions` returns, with its type: the served response schema."""
        raise NotImplementedError

    def improves(self, metric: str, value: float, best: float | None) -> bool:
        """Whether `value` of `metric` beats the best so far (None: no evaluation yet)."""
        if best is None:
            return True
        return value < best if metric in self.lower_is_better else value > best

    # --- reading: how this task's data looks (classmethods: they run before the task exists) -------
    @classmethod
    def from_examples(cls, problem: str, train: Examples, config) -> "Task":
        """The task of a training run: labels from the training examples, settings from `config`."""
        raise NotImplementedError

    @classmethod
    def read(cls, source, tag_column: int = -1) -> Table:
        return next(cls.read_chunks(source, None, tag_column))

    @classmethod
    def read_chunks(cls, source, rows: int | None, tag_column: int = -1) -> Iterator[Table]:
        """`source` as tables of at most `rows` rows, read as needed (predict on long inputs)."""
        return read_chunks(source, rows)

    @classmethod
    def recognises(cls, table: Table) -> bool:
        """Whether a table's shape alone says it holds this task's data (--task auto)."""
        return False

    @classmethod
    def find_columns(cls, table: Table, text=None, pair=None, label=None, need_label: bool = True) -> Columns:
        return resolve_columns(table, text, pair, label, need_label)

    @classmethod
    def build_examples(cls, problem: str, table: Table, columns: Columns, delimiter: str = ",",
                       need_label: bool = True) -> Examples:
        return build_examples(table, columns, "single", delimiter, need_label)

    @classmethod
    def label_names(cls, label) -> set[str]:
        """The names in one example's label that the model needs an output for to score it; a held-out
        split keeps examples whose names no other example has in training. Default: none."""
        return set()

    @classmethod
    def stratified_split(cls, problem: str) -> bool:
        """Whether a held-out split keeps each label's share (single-label classes)."""
        return False

    # --- the model and its outputs ---------------------------------------------------------------
    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def build_model(self, path: str, tokenizer, config, head: HeadConfig | None) -> torch.nn.Module:
        """The model to train over the encoder at `path`: the architecture's own head for `model_kind`,
        or stellartune's pooling + `head` when one is given."""
        return build_classifier(path, id2label=self.id2label, problem_type=self.problem_type, head=head,
                                dropout=config.dropout, trust_remote_code=config.trust_remote_code,
                                kind=self.model_kind)

    def check_known_labels(self, examples: Examples) -> str | None:
        """Evaluation labels the model has no output for: raise when they cannot be scored, else a one-line
        note of how they count. Default: nothing to check."""
        return None

    def prior_bias(self, targets: torch.Tensor) -> torch.Tensor | None:
        """An output bias that starts the new head at the training prior; default: none."""
        return None

    def prepare(self, texts: list[str], pairs: list[str] | None, columns: Columns) -> Examples:
        """Raw inputs of predict (texts, their pairs) as unlabeled examples, one per text."""
        return Examples(texts, pairs, None, [f"input {i + 1}" for i in range(len(texts))], columns)

    def encode(self, examples, tokenizer, max_length: int) -> Encoded: ...

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One loss value per example (the engine averages over the global batch)."""

    @property
    def calibrated(self) -> bool:
        """Whether `calibrate` tunes anything: a run then holds calibration data out of training for it."""
        return False

    def calibrate(self, logits: torch.Tensor, encoded: Encoded) -> None:
        """Settings tuned on data and saved with the model (a threshold, a null score): at each evaluation
        during training (choosing the checkpoint kept), then once more before the final evaluation on
        calibration data, which is neither trained nor scored on. Default: none."""

    def metrics(self, logits: torch.Tensor, encoded: Encoded) -> dict:
        """Pure: the scores of these logits against the encoded targets; changes nothing."""

    def predictions(self, logits: torch.Tensor, encoded: Encoded, examples) -> list[dict]:
        """One dict per example (not per encoded window) for the user."""

    def to_dict(self) -> dict: ...
