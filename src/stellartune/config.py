"""Every training setting, declared once.

`TrainConfig` is the single schema: its field defaults, types, choices and help texts feed the
CLI flags (`cli.py` builds argparse from it), the YAML file (`--config run.yaml`), the Python API
(`stellartune.fit(**kwargs)`) and the `config.yaml` saved in every run folder. Precedence:
defaults < YAML file < command-line flags (or keyword arguments).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from .errors import StellarError


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
    task: str = setting("auto", "auto: CoNLL files or token/tag lists -> ner; else from the label column (floats -> regression, lists or delimited labels -> multi-label, else classification).",
                        choices=("auto", "classification", "multi-label", "regression", "ner"))
    # --- columns -----------------------------------------------------------------------
    text_column: str | None = setting(None, "Column with the text (auto: text, sentence, sentence1, ...).")
    text_pair_column: str | None = setting(None, "Second text column for sentence pairs (auto: sentence2, hypothesis, ...; 'none' to disable).")
    label_column: str | None = setting(None, "Column with the label (auto: label, labels, score, ...).")
    label_delimiter: str = setting(",", "Separator of several labels in one cell (multi-label).")
    tag_column: int = setting(-1, "NER from CoNLL files: the column holding the tag (-1: the last).")
    subword_labels: str = setting("first", "NER: train on the first subword of each word only, or on all (later pieces get I- tags). Evaluation always reads the first.",
                                  choices=("first", "all"))
    eval_split: float = setting(0.1, "Fraction of the training data held out (seeded, stratified) when no --eval is given.")
    max_length: int = setting(128, "Maximum tokens per example; longer inputs are truncated and counted in the log.")
    # --- model head ----------------------------------------------------------------------
    pooling: str = setting("auto", "Sentence vector for the head. auto = the architecture's own classification head (pooler for BERT, CLS for others).",
                           choices=("auto", "cls", "pooler", "mean"))
    head: str = setting("linear", "Classifier head.", choices=("linear", "mlp"))
    head_hidden: list = setting([256], "Hidden sizes of the MLP head.")
    head_activation: str = setting("gelu", "MLP head activation.", choices=("relu", "gelu", "tanh"))
    head_dropout: float = setting(0.1, "Dropout before each head layer.")
    dropout: float | None = setting(None, "Override the encoder's dropout probabilities (hidden and attention); default: the model's own.")
    # --- transfer strategy (strategies/) -------------------------------------------------
    freeze: str = setting("none", "Frozen parameters: none, embeddings, layers:N (embeddings and the bottom N layers) or encoder (train the head only).")
    unfreeze: str = setting("none", "gradual: start with only the head trainable and unfreeze one more layer group from the top every --unfreeze-every steps (default: every epoch).",
                            choices=("none", "gradual"))
    unfreeze_every: int | None = setting(None, "Steps between unfreezing steps of --unfreeze gradual (default: one epoch).")
    head_lr: float | None = setting(None, "Learning rate of the head (default: --lr).")
    layer_lr_decay: float = setting(1.0, "Layer-wise learning-rate decay: each layer gets the rate of the one above times this; embeddings lowest.")
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
    batch_size: int = setting(32, "Examples per optimizer step (split over processes and accumulation steps).")
    grad_accum: int = setting(1, "Micro-batches per optimizer step (batch_size is divided by it).")
    lr: float = setting(5e-5, "Peak learning rate (AdamW).")
    weight_decay: float = setting(0.01, "AdamW weight decay (never applied to biases and norm weights).")
    warmup_ratio: float = setting(0.1, "Fraction of steps with linear warmup.")
    scheduler: str = setting("linear", "Learning-rate decay after warmup.", choices=("linear", "cosine", "constant"))
    max_grad_norm: float = setting(1.0, "Gradient clipping norm (0 disables).")
    class_weights: str = setting("none", "balanced: weight the loss by inverse class frequency (single-label).", choices=("none", "balanced"))
    precision: str = setting("auto", "auto: bf16 autocast on GPUs that support it, fp32 elsewhere.", choices=("auto", "fp32", "bf16", "fp16"))
    seed: int = setting(42, "Seed for initialisation, shuffling, dropout and the eval split.")
    # --- evaluation, checkpoints ---------------------------------------------------------
    eval_steps: int | None = setting(None, "Evaluate (and checkpoint) every N optimizer steps; default once per epoch.")
    metric: str = setting("auto", "Metric for best checkpoint and early stopping (auto: accuracy / micro_f1 / pearson).")
    patience: int | None = setting(None, "Early stopping: stop after N evaluations without improvement.")
    restore_best: bool = setting(True, "Load the best checkpoint's weights at the end.")
    resume: bool = setting(False, "Continue from the last checkpoint in --output.")
    log_steps: int = setting(10, "Write a log line every N optimizer steps.")
    trust_remote_code: bool = setting(False, "Allow model code from the hub (off: never runs downloaded code).")
    progress: bool = setting(True, "Show a progress bar.")

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value not in choices:
                raise StellarError(f"{flag_name(f)} must be one of {', '.join(choices)}; got {value!r}")
        positive = ["batch_size", "grad_accum", "max_length", "log_steps", "lora_r", "prompt_tokens"]
        for name in positive:
            if getattr(self, name) < 1:
                raise StellarError(f"{flag_name(name)} must be at least 1; got {getattr(self, name)}")
        if not 0 < self.eval_split < 1:
            raise StellarError(f"--eval-split must be between 0 and 1; got {self.eval_split}")
        if self.batch_size % self.grad_accum:
            raise StellarError(f"--batch-size ({self.batch_size}) must be a multiple of --grad-accum ({self.grad_accum})")
        if not re.fullmatch(r"none|embeddings|encoder|layers:\d+", self.freeze):
            raise StellarError(f"--freeze must be none, embeddings, encoder or layers:N (N a number); got {self.freeze!r}")
        if self.peft != "none" and self.freeze != "none":
            raise StellarError("--freeze does not combine with --peft: PEFT already freezes the encoder")
        if self.merge and self.peft != "lora":
            raise StellarError("--merge needs --peft lora (prompt and prefix tuning cannot be merged into the weights)")
        if self.unfreeze_every is not None and (self.unfreeze != "gradual" or self.unfreeze_every < 1):
            raise StellarError("--unfreeze-every takes a number of steps (1 or more) and needs --unfreeze gradual")
        if not 0 < self.layer_lr_decay <= 1:
            raise StellarError(f"--layer-lr-decay must be in (0, 1]; got {self.layer_lr_decay}")
        if self.epochs <= 0 and not self.max_steps:
            raise StellarError("--epochs must be positive (or give --max-steps)")

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
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


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
