"""Parameter-efficient tuning through PEFT: LoRA, prompt tuning and prefix tuning.

The classifier head is new, so it always trains and is saved with the adapter (PEFT's
`modules_to_save`): a saved adapter folder holds everything a prediction needs besides the base
model, and `load_adapter` rebuilds the same classifier from it.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import StellarError
from ..models import HeadConfig, build_classifier, resolve_model
from ..models.heads import HEAD_CONFIG_FILE, EncoderWithHead
from ..models.head_kinds import head_kind_of
from ..models.loading import check_weights
from ..models.quiet import quiet_transformers
from .layers import base_encoder, encoder_parts

# Attention projections LoRA adapts by default where PEFT's own table has no entry.
LORA_TARGETS = {"distilbert": ["q_lin", "v_lin"], "mpnet": ["q", "v"], "modernbert": ["Wqkv"],
                "albert": ["query", "value"], "electra": ["query", "value"]}


def head_modules(model: nn.Module) -> list[str]:
    """Top-level modules outside the encoder that hold parameters: the head (new, always trained)."""
    encoder = base_encoder(model)
    return [name for name, child in model.named_children() if child is not encoder and next(child.parameters(), None) is not None]


def lora_targets(model: nn.Module, override: str | None) -> list[str]:
    if override:
        return [name.strip() for name in override.split(",") if name.strip()]
    from peft.utils import (
        TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_TARGETS,
    )

    kind = base_encoder(model).config.model_type
    targets = PEFT_TARGETS.get(kind) or LORA_TARGETS.get(kind)
    if not targets:
        raise StellarError(f"--peft lora: no default target modules for {kind!r}; name them with --lora-targets "
                           "(the attention projections, e.g. query,value)")
    return targets


def peft_config(model: nn.Module, config):
    from peft import LoraConfig, PrefixTuningConfig, PromptTuningConfig, TaskType

    head = head_modules(model)
    if config.peft == "lora":
        return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=lora_targets(model, config.lora_targets), modules_to_save=head)
    if isinstance(model, EncoderWithHead):
        raise StellarError(f"--peft {config.peft} works with the architecture's own head (--pooling model "
                           "--head linear); use --peft lora for custom heads")
    task_type = TaskType[head_kind_of(type(model).__name__).peft_task_type]
    settings = dict(task_type=task_type, num_virtual_tokens=config.prompt_tokens, modules_to_save=head)
    return PromptTuningConfig(**settings) if config.peft == "prompt" else PrefixTuningConfig(**settings)


def apply_peft(model: nn.Module, config) -> nn.Module:
    from peft import get_peft_model

    encoder_parts(model)  # fails early, with a clear message, on a model whose parts are not found
    with quiet_peft():
        wrapped = get_peft_model(model, peft_config(model, config))
    check_prefix_forward(wrapped)
    return wrapped


def check_prefix_forward(model: nn.Module) -> None:
    """Prefix tuning reaches the encoder through an argument (`past_key_values`) that some
    transformers releases renamed; PEFT's refusal then comes at the first forward pass, mid-training
    or mid-prediction. One two-token forward here turns it into one line before anything runs."""
    from peft import PeftType

    if model.peft_config["default"].peft_type != PeftType.PREFIX_TUNING:
        return
    tokens = torch.zeros(1, 2, dtype=torch.long, device=next(model.parameters()).device)
    try:
        with torch.no_grad(), quiet_peft():
            model(input_ids=tokens, attention_mask=torch.ones_like(tokens))
    except ValueError as e:
        if "past key values" not in str(e):
            raise
        import peft
        import transformers

        raise StellarError(f"--peft prefix cannot run with transformers {transformers.__version__} and peft "
                           f"{peft.__version__}: {e} (transformers 5.24 renamed the encoders' past_key_values "
                           "argument, through which PEFT passes the prefix; transformers<5.24 works, as pinned in "
                           "stellartune's constraints.txt). Use --peft prompt or lora, or install "
                           "'transformers<5.24'") from None


@contextlib.contextmanager
def quiet_peft():
    """PEFT still calls transformers' deprecated `is_gradient_checkpointing`: not the user's concern."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def is_peft(model: nn.Module) -> bool:
    """A PEFT wrapper (not a model merged out of one: some PEFT releases leave `peft_config` on it)."""
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def merge(model: nn.Module) -> nn.Module:
    """LoRA folded into the weights: a plain model with the trained head."""
    return model.merge_and_unload()


def load_peft_classifier(folder: Path, base_model: str, task) -> nn.Module:
    """The saved adapter (and head) over a freshly loaded base model."""
    from peft import PeftModel

    check_weights(folder)
    head_file = Path(folder) / HEAD_CONFIG_FILE
    head = HeadConfig(**json.loads(head_file.read_text())) if head_file.exists() else None
    base = build_classifier(resolve_model(base_model), id2label=task.id2label, problem_type=task.problem_type,
                            head=head, kind=task.head_kind)
    with quiet_transformers(), quiet_peft():
        model = PeftModel.from_pretrained(base, str(folder))
    check_prefix_forward(model)
    return model


ADAPTER_CONFIG = "adapter_config.json"


def adapter_megabytes(folder: Path) -> float:
    return (Path(folder) / "adapter_model.safetensors").stat().st_size / 2**20
