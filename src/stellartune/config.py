"""Every training setting, declared once.

`TrainConfig` is the single schema: its field defaults, types, choices and help texts feed the
CLI flags (`cli.py` builds argparse from it), the YAML file (`--config run.yaml`), the Python API
(`stellartune.fit(**kwargs)`) and the `config.yaml` saved in every run folder. Precedence:
defaults < YAML file < command-line flags (or keyword arguments).
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from .errors import StellarError
from .task_registry import task_names

# Settings that take data: a path or dataset name, or in the Python API a list of dicts or a DataFrame.
DATA_SETTINGS = ("train", "eval", "calibration")


def cache_dir() -> Path:
    """Where stellartune keeps what it makes once and reuses (encoders, cached features, stored data)."""
    return Path(os.environ.get("STELLARTUNE_CACHE", Path.home() / ".cache" / "stellartune"))


def describe_data(value):
    """A data setting as it is saved and shown: its path or name, or a note for data given in memory."""
    return value if value is None or isinstance(value, str) else f"<{len(value)} records given in memory>"


def setting(default, help: str, choices: tuple | None = None, flag: str | None = None):
    """A config field with its help text (and allowed values) attached for the CLI."""
    meta = {"help": help, "choices": choices, "flag": flag}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # --- what to train -----------------------------------------------------------------
    model: str = setting("minilm", "Base encoder: an alias (minilm, mpnet-base), a Hugging Face model id or a local folder.")
    train: str | None = setting(None, "Training data: CSV/TSV/JSON/JSONL/Parquet file, a saved Hugging Face dataset folder, or hf:NAME[@CONFIG][:SPLIT].")
    eval: str | None = setting(None, "Evaluation data (same formats). When absent, --eval-split of the training data is held out.")
    output: str = setting("runs/latest", "Run folder: config, logs, metrics, predictions, checkpoints and the final model.")
    data_cache: str = setting("auto", "Where data files are stored once read and tokenized (those of every task but cloze, and pretraining corpora), keyed by their content, the tokenizer and the settings that read them: a later run on the same data reuses them (a file changed by one byte is read again). A folder; auto: $STELLARTUNE_CACHE/data, else ~/.cache/stellartune/data; off: read and tokenize in memory every run. Deleting the folder is always safe.")
    task: str = setting("auto", "auto: CoNLL files or token/tag lists -> ner; SQuAD files or question + context columns -> qa; else from the label column (floats -> regression, lists or delimited labels -> multi-label, else classification).",
                        choices=lambda: ("auto", *task_names()))
    # --- columns -----------------------------------------------------------------------
    text_column: str | None = setting(None, "Column with the text (auto: text, sentence, sentence1, ...).")
    text_pair_column: str | None = setting(None, "Second text column for sentence pairs (auto: sentence2, hypothesis, ...; 'none' to disable).")
    label_column: str | None = setting(None, "Column with the label (auto: label, labels, score, ...).")
    label_delimiter: str = setting(",", "Separator of several labels in one cell (multi-label).")
    tag_column: int = setting(-1, "NER from CoNLL files: the column holding the tag (-1: the last).")
    subword_labels: str = setting("first", "NER: train on the first subword of each word only, or on all (later pieces get I- tags). Evaluation always reads the first.",
                                  choices=("first", "all"))
    eval_split: float | None = setting(None, "Fraction of the training data held out (seeded, stratified) when no --eval is given (default: 0.1; none under --few-shot, where every example trains and the final scores are on the training examples).")
    calibration: str | None = setting(None, "Multi-label (and QA with unanswerable questions): data to choose the decision threshold on (same formats), never the evaluation data. When absent, --calibration-split of the training data is held out for it.")
    calibration_split: float = setting(0.1, "Fraction of the training data held out (seeded) to choose the decision threshold on, when the task has one and no --calibration is given.")
    max_length: int | None = setting(None, "Maximum tokens per example, or per window of a longer one (NER and QA split long inputs into windows; other tasks read them as --long-texts says). Default: 384 for --task qa, 128 for ner and cloze; for classification, multi-label and regression the length that holds nine in ten training examples whole, in steps of 64, from 128 up to the model's limit or 512.")
    long_texts: str = setting("auto", "A text longer than --max-length (classification, multi-label, regression): windows: read whole, in windows of --max-length tokens sharing a quarter, each window trained on with the text's label (a text counts once) and the text's output the mean of its windows'; head-tail: the first quarter and the last three quarters of --max-length; truncate: the first --max-length tokens. auto: windows. Sentence pairs are cut, the longer text first. Predict, serve and export read as training did.",
                              choices=("auto", "windows", "head-tail", "truncate"))
    doc_stride: int | None = setting(None, "QA: tokens shared by neighbouring windows of a context longer than --max-length (default: a third of it, 128 at 384).")
    max_answer_length: int = setting(30, "QA: longest answer span, in tokens.")
    template: str | None = setting(None, "--task cloze: the prompt around each text, with {text} and one [MASK], e.g. \"{text} It was [MASK].\"")
    verbalizer: str | None = setting(None, "--task cloze: the word each label stands for at the [MASK], e.g. positive=great,negative=terrible (one token each).")
    # --- model head ----------------------------------------------------------------------
    pooling: str = setting("auto", "Sentence vector for the head. auto: the pooling a sentence-transformers checkpoint was trained with (its 1_Pooling/config.json), else the architecture's own head; model: the architecture's own classification head (pooler for BERT, CLS for others), a standard transformers checkpoint.",
                           choices=("auto", "model", "cls", "pooler", "mean"))
    head: str = setting("linear", "Classifier head.", choices=("linear", "mlp"))
    head_hidden: list = setting([256], "Hidden sizes of the MLP head.")
    head_activation: str = setting("gelu", "MLP head activation.", choices=("relu", "gelu", "tanh"))
    head_dropout: float | None = setting(None, "Dropout before each head layer (default: --dropout when given, as the architecture's own head has, else 0.1).")
    dropout: float | None = setting(None, "Override the encoder's dropout probabilities (hidden and attention); default: the model's own.")
    # --- transfer strategy (strategies/) -------------------------------------------------
    freeze: str = setting("none", "Frozen parameters: none, word-embeddings (the token table: fine-tuning barely moves it; fixing it halves a small model's optimizer state), embeddings (all of them), layers:N (embeddings and the bottom N layers) or encoder (train the head only).")
    unfreeze: str = setting("none", "gradual: start with only the head trainable and unfreeze one more layer group from the top every --unfreeze-every steps (default: every epoch).",
                            choices=("none", "gradual"))
    unfreeze_every: int | None = setting(None, "Steps between unfreezing steps of --unfreeze gradual (default: one epoch).")
    head_lr: float | None = setting(None, "Learning rate of the head (default: --lr).")
    layer_lr_decay: float = setting(1.0, "Layer-wise learning-rate decay: each layer gets the rate of the one above times this; embeddings lowest.")
    reinit_layers: int = setting(0, "Re-initialise the top N transformer layers before training (Zhang et al. 2021); 0 keeps every pretrained layer.")
    few_shot: str = setting("auto", "Few labelled examples: a contrastive stage trains the encoder so that examples of one class get similar sentence vectors, then a logistic regression on those vectors becomes the head (SetFit's method). The stage replaces the training loop (--batch-size and --lr are its own; default 16 and 2e-5). auto: on for single-label classification (and sentence pairs) with fewer than 100 training examples per class and 2,000 in all, unless a flag asks for another head, another strategy or the loop (--max-steps, --epochs, ...).",
                            choices=("auto", "on", "off"))
    feature_cache: bool = setting(True, "With --freeze encoder, compute the encoder outputs once (cached on disk) and train the head on them.")
    peft: str = setting("none", "Parameter-efficient tuning through PEFT: lora, prompt (prompt tuning) or prefix (prefix tuning, P-tuning v2 style). The head always trains.",
                        choices=("none", "lora", "prompt", "prefix"))
    lora_r: int = setting(8, "LoRA rank.")
    lora_alpha: float = setting(16.0, "LoRA scaling alpha.")
    lora_dropout: float = setting(0.1, "Dropout on the LoRA input.")
    lora_targets: str | None = setting(None, "Comma-separated module names LoRA adapts (default: the attention query and value projections of the architecture).")
    prompt_tokens: int = setting(20, "Virtual tokens of prompt or prefix tuning.")
    merge: bool = setting(False, "With --peft lora, save a plain model with the adapter merged into the weights (loads with transformers.pipeline).")
    # --- optimisation ------------------------------------------------------------------
    epochs: float = setting(3.0, "Training epochs (ignored when --max-steps is set).")
    max_steps: int | None = setting(None, "Stop after this many optimizer steps.")
    batch_size: int | None = setting(None, "Examples per optimizer step (split over processes and accumulation steps); default: by data size, the largest of 32, 16, 8 that gives 500 steps or more.")
    grad_accum: int = setting(1, "Micro-batches per optimizer step (batch_size is divided by it).")
    lr: float | None = setting(None, "Peak learning rate (AdamW); default: by encoder size and task (1e-4 under 60M parameters, 5e-5 under 200M, else 2e-5; x2 for NER and QA).")
    weight_decay: float = setting(0.01, "AdamW weight decay (never applied to biases and norm weights).")
    warmup_ratio: float = setting(0.1, "Fraction of steps with linear warmup.")
    scheduler: str = setting("linear", "Learning-rate decay after warmup.", choices=("linear", "cosine", "constant"))
    max_grad_norm: float = setting(1.0, "Gradient clipping norm (0 disables).")
    class_weights: str = setting("none", "balanced: weight the loss by inverse class frequency (single-label).", choices=("none", "balanced"))
    precision: str = setting("auto", "auto: bf16 autocast on GPUs that support it and on CPUs whose bf16 matmuls measure at least 1.5x fp32's speed (checked once per process: AVX512-BF16 alone does not say), fp32 elsewhere.", choices=("auto", "fp32", "bf16", "fp16"))
    seed: int = setting(42, "Seed for initialisation, shuffling, dropout and the eval split.")
    # --- evaluation, checkpoints ---------------------------------------------------------
    eval_steps: int | None = setting(None, "Evaluate (and checkpoint) every N optimizer steps; default once per epoch.")
    metric: str = setting("auto", "Metric for best checkpoint and early stopping (auto: accuracy / micro_f1 / pearson).")
    patience: int | None = setting(None, "Early stopping: stop after N evaluations without improvement.")
    restore_best: bool = setting(True, "Load the kept checkpoint's weights at the end: the latest within one standard error of the best evaluation (accuracy; other metrics: the best, or a later tie).")
    resume: bool = setting(False, "Continue from the last checkpoint in --output.")
    overwrite: bool = setting(False, "Train again into an --output that holds a finished run (its model and results are replaced), or into a folder of other files (kept, except those of the same name).")
    log_steps: int = setting(10, "Write a log line every N optimizer steps.")
    report_to: str = setting("none", "Also send the logged metrics to experiment trackers through accelerate: "
                             "tensorboard, mlflow, wandb, ... (comma-separated; each needs its package).")
    trust_remote_code: bool = setting(False, "Allow model code from the hub (off: never runs downloaded code).")
    progress: bool = setting(True, "Show a progress bar.")

    def __post_init__(self):
        self.validate()

    def with_task(self, task: str, default_max_length: int) -> "TrainConfig":
        """The settings once the task is known (from the data, with --task auto), with the defaults
        that depend on it: the task's own max length, and a doc stride of a third of it."""
        max_length = self.max_length or default_max_length  # None: the task decides it from the data
        return dataclasses.replace(self, task=task, max_length=max_length,
                                   doc_stride=max_length // 3 if self.doc_stride is None and max_length else self.doc_stride)

    @property
    def held_out(self) -> float:
        """The fraction of the training data held out for evaluation when no --eval is given."""
        if self.eval_split is not None:
            return self.eval_split
        return 0.0 if self.few_shot == "on" else 0.1

    def few_shot_conflicts(self) -> list[str]:
        """The flags that ask for another head or strategy than the few-shot stage's."""
        asked = {"--head mlp": self.head != "linear", "--pooling model": self.pooling == "model",
                 f"--peft {self.peft}": self.peft != "none", f"--freeze {self.freeze}": self.freeze != "none",
                 "--unfreeze gradual": self.unfreeze != "none"}
        return [flag for flag, given in asked.items() if given]

    def loop_settings_given(self) -> list[str]:
        """The settings of the training loop (which the few-shot stage replaces) given other values than their
        defaults, as flags."""
        return [flag_name(name) for name in LOOP_ONLY_SETTINGS
                if getattr(self, name) != TrainConfig.__dataclass_fields__[name].default]

    def validate(self) -> None:
        check_shared_settings(self, ("max_length", "lora_r", "prompt_tokens", "max_answer_length"))
        if self.few_shot == "on" and self.few_shot_conflicts():
            raise StellarError(f"--few-shot on fits a linear head on pooled sentence vectors and trains the whole "
                               f"encoder; drop {' and '.join(self.few_shot_conflicts())}, or --few-shot off")
        if self.doc_stride is not None and self.max_length and not 0 <= self.doc_stride < self.max_length // 2:
            raise StellarError(f"--doc-stride must be at least 0 and less than half of --max-length "
                               f"({self.max_length}); got {self.doc_stride}")
        if not re.fullmatch(r"none|word-embeddings|embeddings|encoder|layers:\d+", self.freeze):
            raise StellarError("--freeze must be none, word-embeddings, embeddings, encoder or layers:N (N a number); "
                               f"got {self.freeze!r}")
        if self.peft != "none" and self.freeze not in ("none", "word-embeddings"):
            raise StellarError("--freeze does not combine with --peft: PEFT already freezes the encoder")
        if self.merge and self.peft != "lora":
            raise StellarError("--merge needs --peft lora (prompt and prefix tuning cannot be merged into the weights)")
        if not 0 < self.layer_lr_decay <= 1:
            raise StellarError(f"--layer-lr-decay must be in (0, 1]; got {self.layer_lr_decay}")
        if self.reinit_layers < 0:
            raise StellarError(f"--reinit-layers must be 0 or more; got {self.reinit_layers}")

    # --- (de)serialisation -----------------------------------------------------------------
    @classmethod
    def from_sources(cls, yaml_path: str | None = None, **overrides) -> "TrainConfig":
        """Defaults < YAML file < overrides (CLI flags or keyword arguments)."""
        values = load_yaml(yaml_path) if yaml_path else {}
        values.update({k: v for k, v in overrides.items() if v is not None or k in values})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            source = yaml_path or "arguments"
            raise StellarError(f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{k: coerce(cls, k, v) for k, v in values.items()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        values = {k: describe_data(v) if k in DATA_SETTINGS else v for k, v in self.to_dict().items()}
        Path(path).write_text(yaml.safe_dump(values, sort_keys=False))


def flag_name(f) -> str:
    name = f if isinstance(f, str) else f.name
    return "--" + name.replace("_", "-")


def load_yaml(path: str) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise StellarError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise StellarError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise StellarError(f"{path}: expected a mapping of setting: value at the top level")
    return {k.replace("-", "_"): v for k, v in data.items()}


def field_type(cls, name: str):
    """The plain Python type of a field: int, float, str, bool or list (Optional unwrapped)."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    return typing.get_origin(base) or base


def coerce(cls, name: str, value):
    """Check and convert one value to its field's type, with a message naming the setting."""
    if value is None:
        return None
    if name in DATA_SETTINGS and not isinstance(value, (str, Path)):
        return value  # records or a DataFrame, read as they are
    kind = field_type(cls, name)
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind is list:
            return [int(v) for v in (value.split(",") if isinstance(value, str) else value)]
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise StellarError(f"{flag_name(name)}: expected {kind.__name__}, got {value!r}") from None


def like(name: str, default=dataclasses.MISSING, help: str | None = None):
    """A setting declared as TrainConfig's `name` (same help text, default and choices unless given)."""
    train = TrainConfig.__dataclass_fields__[name]
    default = train.default if default is dataclasses.MISSING else default
    return setting(default, help or train.metadata["help"], train.metadata["choices"])


def choices_of(f) -> tuple | None:
    """A setting's allowed values; a callable gives those known only when asked (the registered tasks)."""
    choices = f.metadata.get("choices")
    return choices() if callable(choices) else choices


def check_choices_and_counts(settings, counts: tuple[str, ...]) -> None:
    """Every setting with choices holds one of them; each of `counts` is at least 1 (None: not set)."""
    for f in fields(settings):
        choices, value = choices_of(f), getattr(settings, f.name)
        if choices and value not in choices:
            raise StellarError(f"{flag_name(f)} must be one of {', '.join(choices)}; got {value!r}")
    for name in counts:
        if getattr(settings, name) is not None and getattr(settings, name) < 1:
            raise StellarError(f"{flag_name(name)} must be at least 1; got {getattr(settings, name)}")


def check_shared_settings(config, counts: tuple[str, ...]) -> None:
    """The checks `train` and `pretrain` share: choices, counts of at least 1 (`counts` and the
    batch settings; None = not set yet), the eval split, batch / accumulation, epochs, unfreezing."""
    check_choices_and_counts(config, ("batch_size", "grad_accum", "log_steps") + counts)
    if config.eval_split is not None and not 0 < config.eval_split < 1:
        raise StellarError(f"--eval-split must be between 0 and 1; got {config.eval_split}")
    if config.batch_size is not None and config.batch_size % config.grad_accum:
        raise StellarError(f"--batch-size ({config.batch_size}) must be a multiple of --grad-accum ({config.grad_accum})")
    if config.epochs <= 0 and not config.max_steps:
        raise StellarError("--epochs must be positive (or give --max-steps)")
    if config.unfreeze_every is not None and (config.unfreeze != "gradual" or config.unfreeze_every < 1):
        raise StellarError("--unfreeze-every takes a number of steps (1 or more) and needs --unfreeze gradual")


# What only the training loop reads: given, --few-shot auto leaves the stage out (training/auto.py)
LOOP_ONLY_SETTINGS = ("epochs", "max_steps", "grad_accum", "weight_decay", "warmup_ratio", "scheduler", "max_grad_norm",
                      "eval_steps", "metric", "patience", "restore_best", "resume", "head_lr", "layer_lr_decay",
                      "reinit_layers", "class_weights")


@dataclass(frozen=True)
class LoopConfig:
    """The settings the training loop reads (`training/engine.py`, `training/optim.py`), the same for `train`
    and `pretrain`: a recipe hands the loop these and nothing else of its settings."""

    epochs: float
    max_steps: int | None
    batch_size: int
    grad_accum: int
    seed: int
    lr: float
    weight_decay: float
    warmup_ratio: float
    scheduler: str
    max_grad_norm: float
    eval_steps: int | None
    metric: str
    patience: int | None
    restore_best: bool
    resume: bool
    log_steps: int
    progress: bool
    head_lr: float | None = None  # fine-tuning's strategies only: pretraining trains every parameter at --lr
    layer_lr_decay: float = 1.0

    @classmethod
    def of(cls, settings) -> LoopConfig:
        """The loop's part of a TrainConfig or PretrainConfig (the last two fields only where it has them)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)})


@dataclass
class PretrainConfig:
    """`stellartune pretrain`: continued masked-LM pretraining on unlabeled text. Settings shared
    with `train` are declared there and taken over with `like`."""

    # --- what to train -----------------------------------------------------------------
    model: str = like("model")
    train: str | None = setting(None, "Unlabeled text: a .txt file (one document per line), or a CSV/TSV/JSON/JSONL/Parquet file or dataset with a text column.")
    eval: str | None = setting(None, "Held-out text (same formats). When absent, --eval-split of the documents is held out.")
    output: str = like("output", "runs/pretrain", "Run folder: config, logs, metrics, checkpoints, and the model (model/, for --model of stellartune train).")
    text_column: str | None = like("text_column")
    data_cache: str = like("data_cache")
    eval_split: float = like("eval_split", 0.05, "Fraction of the documents held out (seeded) when no --eval is given.")
    max_length: int = setting(128, "Tokens per block, special tokens included.")
    packing: bool = setting(True, "Pack documents into full blocks, across document boundaries; --no-packing: one block per document, truncated.")
    # --- objectives --------------------------------------------------------------------
    masking: str = setting("token", "What is masked: single tokens, whole words (every piece of a chosen word) or SpanBERT spans (geometric lengths in words, p=0.2, at most 10).",
                           choices=("token", "whole-word", "span"))
    mask_prob: float = setting(0.15, "Fraction of the tokens chosen for prediction; of those, 8 in 10 become [MASK], 1 in 10 a random token and 1 in 10 stay as they are.")
    nsp: bool = setting(False, "Add next sentence prediction: blocks become sentence pairs, half true continuations, half from another document (ignores --packing).")
    sbo: bool = setting(False, "Add SpanBERT's span boundary objective: predict each masked token from the tokens around its span and its position in it.")
    # --- optimisation ------------------------------------------------------------------
    unfreeze: str = like("unfreeze", help="gradual: train the new MLM (NSP, SBO) heads alone first, then unfreeze one more layer group from the top every --unfreeze-every steps; keeps a random head's first gradients out of the encoder.")
    unfreeze_every: int | None = like("unfreeze_every")
    epochs: float = like("epochs", 1.0)
    max_steps: int | None = like("max_steps")
    batch_size: int = like("batch_size", 32, "Examples per optimizer step (split over processes and accumulation steps).")
    grad_accum: int = like("grad_accum")
    lr: float = like("lr", 1e-4, "Peak learning rate (AdamW).")
    weight_decay: float = like("weight_decay")
    warmup_ratio: float = like("warmup_ratio", 0.06)
    scheduler: str = like("scheduler")
    max_grad_norm: float = like("max_grad_norm")
    precision: str = like("precision")
    seed: int = like("seed")
    # --- evaluation, checkpoints ---------------------------------------------------------
    eval_steps: int | None = like("eval_steps")
    metric: str = like("metric", help="Metric for best checkpoint and early stopping (auto: loss, the held-out MLM loss plus NSP/SBO losses; or perplexity, masked_accuracy, ...).")
    patience: int | None = like("patience")
    restore_best: bool = like("restore_best")
    resume: bool = like("resume")
    overwrite: bool = like("overwrite")
    log_steps: int = like("log_steps")
    report_to: str = like("report_to")
    trust_remote_code: bool = like("trust_remote_code")
    progress: bool = like("progress")

    from_sources = classmethod(TrainConfig.from_sources.__func__)
    to_dict = TrainConfig.to_dict
    save = TrainConfig.save

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        check_shared_settings(self, ())
        if not 0 < self.mask_prob < 1:
            raise StellarError(f"--mask-prob must be between 0 and 1; got {self.mask_prob}")
        if self.max_length < 8:
            raise StellarError(f"--max-length must be at least 8 tokens for a block; got {self.max_length}")
