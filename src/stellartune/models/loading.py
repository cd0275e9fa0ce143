"""Build a classifier over any encoder, and load a saved one back (standard or custom head)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from ..errors import StellarError
from .head_code import MODEL_TYPE
from .head_kinds import SEQUENCE_HEAD, HeadKind, head_kind_of
from .heads import HEAD_CONFIG_FILE, EncoderWithHead, HeadConfig
from .masked_lm import CLOZE_FILE, ClozeClassifier
from .quiet import quiet_transformers

# Names that architectures use for dropout probabilities; --dropout sets every one present.
DROPOUT_ATTRIBUTES = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "dropout",
                      "attention_dropout", "seq_classif_dropout", "hidden_dropout", "embedding_dropout",
                      "mlp_dropout", "classifier_dropout_prob", "qa_dropout")


def load_tokenizer(path: str, trust_remote_code: bool = False):
    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise StellarError(f"{path}: cannot load tokenizer ({loading_problem(e)})") from None


def loading_problem(error: Exception) -> str:
    """transformers' reason in one line; for a model that ships its own code, the flag that runs it."""
    reason = str(error).splitlines()[0]
    if "custom code" in reason:
        reason += " Its code runs only with --trust-remote-code (trust_remote_code=True): read it first"
    return reason


def load_config(path: str, trust_remote_code: bool = False, dropout: float | None = None, **labels):
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **labels)
    except (OSError, ValueError) as e:
        raise StellarError(f"{path}: cannot load model config ({loading_problem(e)})") from None
    if dropout is not None:
        for name in DROPOUT_ATTRIBUTES:
            if hasattr(config, name):
                setattr(config, name, dropout)
    return config


def own_dropout(path: str, trust_remote_code: bool = False) -> float | None:
    """The checkpoint's own dropout probability (the first of DROPOUT_ATTRIBUTES it sets), None if it names none."""
    config = load_config(path, trust_remote_code)
    return next((value for name in DROPOUT_ATTRIBUTES if isinstance(value := getattr(config, name, None), float)),
                None)


def build_classifier(path: str, *, id2label: dict[int, str], problem_type: str | None, head: HeadConfig | None,
                     dropout: float | None = None, trust_remote_code: bool = False,
                     kind: HeadKind = SEQUENCE_HEAD) -> torch.nn.Module:
    """The architecture's own head of `kind` (sequence, token or span), or an encoder with a custom head."""
    config = load_config(path, trust_remote_code, dropout, num_labels=len(id2label), id2label=id2label,
                         label2id={v: k for k, v in id2label.items()}, problem_type=problem_type)
    with quiet_transformers():
        if head is None:
            return kind.auto_class.from_pretrained(path, config=config, trust_remote_code=trust_remote_code)
        encoder = AutoModel.from_pretrained(path, config=config, trust_remote_code=trust_remote_code)
    return EncoderWithHead(encoder, head)


def output_layer(model: torch.nn.Module, num_outputs: int) -> torch.nn.Linear:
    """The final linear layer that produces the logits, whatever the architecture names it
    (`classifier`, `classifier.out_proj`, `score`, `head.N`): the last one of the right width."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_outputs]
    if not layers:
        raise StellarError(f"{type(model).__name__}: found no output layer with {num_outputs} outputs")
    return layers[-1]


def load_classifier(folder: str | Path) -> torch.nn.Module:
    """A model saved by stellartune: the architecture's own head, an encoder with a custom head (its own model
    type), or with `cloze.json` a masked LM read at the [MASK] of a template (--task cloze)."""
    folder = Path(folder)
    check_weights(folder)
    if (folder / CLOZE_FILE).exists():
        return ClozeClassifier.from_folder(folder)
    try:
        with quiet_transformers():
            if json.loads((folder / "config.json").read_text()).get("model_type") == MODEL_TYPE:
                return EncoderWithHead.from_folder(folder)
            if (folder / HEAD_CONFIG_FILE).exists():
                return EncoderWithHead.from_head_files(AutoModel.from_pretrained(folder), folder)
            return saved_kind(folder).auto_class.from_pretrained(folder)
    except (OSError, ValueError) as e:  # a missing weights file or config
        raise StellarError(f"{folder}: cannot load the model ({loading_problem(e)})") from None


def check_weights(folder: Path) -> None:
    """Every weights file of a saved model readable: a truncated or overwritten copy stops here with its
    path, not deep inside transformers (safetensors checks the header against the file's size)."""
    from safetensors import safe_open

    for file in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(file), "pt"):
                pass
        except Exception as e:  # SafetensorError, or OSError for an unreadable file
            raise StellarError(f"{file}: cannot read the weights ({str(e).splitlines()[0][:160]}); the file is "
                               "damaged (truncated or overwritten): copy it again, or train again") from None


def saved_kind(folder: Path) -> HeadKind:
    """The head of the architecture named in the saved config.json."""
    return head_kind_of((AutoConfig.from_pretrained(folder).architectures or [""])[0])
