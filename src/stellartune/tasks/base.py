"""The task contract: the only place that knows what labels mean.

The engine, CLI, API, server and exporter call these methods and never ask which task they hold. A task
reads and recognises its data, turns examples into token ids and targets, names the head it trains, turns
logits into a loss, metrics and user-facing predictions, tunes what it calibrates, says what a report
shows, and saves what it needs (labels, thresholds, ...) with the model as `stellartune.json`.

A task is registered by name (`stellartune.task_registry`): the methods marked abstract are the ones each
task must write; the rest have defaults that fit a task with one output per text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import ClassVar

import torch

from ..data.encoded import Encoded
from ..data.examples import Columns, Examples, build_examples, resolve_columns
from ..data.readers import Table, content_files, read_chunks
from ..data.store import CHUNK_ROWS, Store
from ..evaluation.sections import Section
from ..models import HeadConfig, build_classifier
from ..models.head_kinds import SEQUENCE_HEAD, HeadKind


class Objective(ABC):
    """What the training loop asks of what it trains (a task here, or pretraining's objectives): a loss per
    example, metrics, the one that chooses the best checkpoint, and what is tuned on data."""

    primary_metric: ClassVar[str]  # what "better" means for best checkpoint and early stopping
    lower_is_better: ClassVar[frozenset[str]] = frozenset()  # metrics where lower wins (mse, loss, ...)

    @abstractmethod
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One loss value per example (the engine averages over the global batch)."""

    @abstractmethod
    def metrics(self, logits: torch.Tensor, encoded: Encoded) -> dict:
        """Pure: the scores of these logits against the encoded targets; changes nothing."""

    def improves(self, metric: str, value: float, best: float | None) -> bool:
        """Whether `value` of `metric` beats the best so far (None: no evaluation yet): early stopping counts
        the evaluations that do not."""
        if best is None:
            return True
        return value < best if metric in self.lower_is_better else value > best

    def keeps(self, metric: str, value: float, best: float | None, encoded: Encoded) -> bool:
        """Whether the checkpoint scoring `value` is kept over the one kept before: it is within one standard
        error of the best so far (a tie included). Differences that small are the evaluation data's noise,
        and the later checkpoint has trained longer (the one-standard-error rule of Breiman et al. 1984)."""
        if best is None:
            return True
        margin = self.standard_error(metric, best, encoded)
        return value <= best + margin if metric in self.lower_is_better else value >= best - margin

    def standard_error(self, metric: str, value: float, encoded: Encoded) -> float:
        """How far `value` of `metric` on the evaluation data `encoded` could be from the same model's score on
        as many other examples; 0 where the metric has no such simple estimate (the best is kept)."""
        return 0.0

    def per_text(self, logits: torch.Tensor, encoded: Encoded) -> tuple[torch.Tensor, Encoded]:
        """The logits and targets of each example, where encoding split examples into several features and
        the task's own methods do not join them again (long texts read in windows); default: as they are.
        Metrics, calibration and predictions get what this returns."""
        return logits, encoded

    def calibrate(self, logits: torch.Tensor, encoded: Encoded) -> None:
        """Settings tuned on data and saved with the model (a threshold, a null score): at each evaluation
        during training (choosing the checkpoint kept), then once more before the final evaluation on
        calibration data, which is neither trained nor scored on. Default: none."""


class Task(Objective):
    name: ClassVar[str]  # the --task value and the registry key, saved in stellartune.json
    labels: list[str]  # the model's outputs, in order
    head_kind: ClassVar[HeadKind] = SEQUENCE_HEAD  # the architecture's head it trains (models/head_kinds.py)
    one_output_per_text: ClassVar[bool] = True  # a pooled text vector feeds the head: custom heads, feature cache
    problem_type: ClassVar[str | None] = None  # transformers' problem_type for sequence heads
    label_kind: ClassVar[str | None] = None  # label cells that make --task auto choose it (single, list, number)
    built_labels: ClassVar[str | None] = None  # what an example's label is once built, where label_kind does not
    # say (NER: a list of tags): how the store types it
    options: ClassVar[tuple[str, ...]] = ()  # the settings only this task reads (`--template` for cloze, ...)
    default_max_length: ClassVar[int | None] = 128  # tokens per example unless --max-length says (None: `settle`)
    head_description: ClassVar[str] = "new classification head"  # for the log: what trains on the encoder
    pipeline_task: ClassVar[str] = "text-classification"  # the transformers pipeline that loads the saved model
    lr_scale: ClassVar[float] = 1.0  # its learning rate against a sentence classifier's, when --lr is not given
    input_names: ClassVar[tuple[str, str]] = ("texts", "text_pairs")  # a served request's inputs
    needs_pairs: ClassVar[bool] = False  # every input needs a second text (QA: a context)
    stratified_split: ClassVar[bool] = False  # a held-out split keeps each label's share (single-label)
    few_shot: ClassVar[bool] = False  # has the few-shot stage (training/few_shot.py): one class per text
    threshold_name: ClassVar[str] = "its threshold"  # what `calibrate` tunes, for the log
    # a classmethod where labels name outputs: the names in one example's label that the model needs an output
    # for to score it (a held-out split keeps examples whose names no other example has in training); None: none
    label_names: ClassVar[Callable[[object], set[str]] | None] = None
    stored: ClassVar[bool] = False  # its data files can be read through the store (data/store.py): every method
    # takes examples whose fields are sequences read from disk (data/columnar.py), not only lists

    # --- what each task writes ---------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_examples(cls, train: Examples, config) -> Task:
        """The task of a training run: labels from the training examples, settings from `config`."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict) -> Task:
        """The task saved with a model (`to_dict`)."""

    @abstractmethod
    def to_dict(self) -> dict:
        """What `from_dict` needs, with "task": the name."""

    @abstractmethod
    def encode(self, examples: Examples, tokenizer, max_length: int) -> Encoded: ...

    @abstractmethod
    def predictions(self, logits: torch.Tensor, encoded: Encoded, examples: Examples) -> list[dict]:
        """One dict per example (not per encoded window) for the user."""

    @property
    @abstractmethod
    def prediction_fields(self) -> dict[str, object]:
        """Each field `predictions` returns, with its type: the served response schema."""

    # --- reading: how this task's data looks (classmethods: they run before the task exists) -------
    @classmethod
    def read(cls, source, tag_column: int = -1) -> Table:
        return next(cls.read_chunks(source, None, tag_column))

    @classmethod
    def read_chunks(cls, source, rows: int | None, tag_column: int = -1) -> Iterator[Table]:
        """`source` as tables of at most `rows` rows, read as needed (predict on long inputs)."""
        return (cls.adopt(table) for table in read_chunks(source, rows))

    @classmethod
    def adopt(cls, table: Table) -> Table:
        """A table of any reader in this task's own shape (SQuAD's nested articles flattened, ...)."""
        return table

    @classmethod
    def claims_file(cls, source, tag_column: int = -1) -> bool:
        """Whether the file's format alone says it holds this task's data (a CoNLL file: --task auto)."""
        return False

    @classmethod
    def recognises(cls, table: Table) -> bool:
        """Whether a table's shape alone says it holds this task's data (--task auto)."""
        return False

    @classmethod
    def find_columns(cls, table: Table, text=None, pair=None, label=None, need_label: bool = True) -> Columns:
        return resolve_columns(table, text, pair, label, need_label)

    @classmethod
    def build_examples(cls, table: Table, columns: Columns, delimiter: str = ",", need_label: bool = True
                       ) -> Examples:
        return build_examples(table, columns, cls.label_kind or "single", delimiter, need_label)

    @classmethod
    def first_rows(cls, source, tag_column: int = -1) -> Table:
        """The first chunk of `source` (CHUNK_ROWS rows, or fewer long ones: data/readers.py's CHUNK_TEXT; all of
        a file read whole): what --task auto and the columns are decided on."""
        return next(cls.read_chunks(source, CHUNK_ROWS, tag_column))

    @classmethod
    def labeled_examples(cls, source, columns: Columns, delimiter: str = ",", tag_column: int = -1,
                         store: Store | None = None) -> Examples:
        """Labeled examples of `source` in `columns` (found before on its first rows, or those training used:
        each must be there). A data file or a dataset on disk is read through the store in `store` when the
        task takes stored examples, a chunk at a time; one stored before is not read again."""
        # "none": no second text where training had none (a pair column found in evaluation data is not read)
        build = lambda table: cls.build_examples(
            table, cls.find_columns(table, columns.text, columns.pair or "none", columns.label), delimiter)
        files = content_files(source) if store is not None and cls.stored else None
        if files is None:
            return build(cls.read(source, tag_column))
        return store.examples(str(source), files, cls.read_chunks(source, CHUNK_ROWS, tag_column), build,
                              f"{cls.name}|{columns.describe()}|{delimiter}",
                              cls.label_kind or cls.built_labels or "single")

    # --- the model and its outputs ---------------------------------------------------------------
    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def build_model(self, path: str, tokenizer, config, head: HeadConfig | None) -> torch.nn.Module:
        """The model to train over the encoder at `path`: the architecture's own head of `head_kind`,
        or stellartune's pooling + `head` when one is given."""
        return build_classifier(path, id2label=self.id2label, problem_type=self.problem_type, head=head,
                                dropout=config.dropout, trust_remote_code=config.trust_remote_code,
                                kind=self.head_kind)

    def settle(self, train: Examples, tokenizer, config, say):
        """The settings with those decided from the training texts once the tokenizer is known (--max-length
        when the task has no default, how long texts are read), said in the log; default: as they are."""
        return config

    def report_sections(self, records: list[dict]) -> list[Section]:
        """What a run report shows about the evaluation predictions (eval_predictions.jsonl records)."""
        return []

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

    @property
    def calibrated(self) -> bool:
        """Whether `calibrate` tunes anything: a run then holds calibration data out of training for it."""
        return False
