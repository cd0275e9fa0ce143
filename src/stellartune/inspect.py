"""`stellartune inspect`: parameter table, tokenization and embedding similarity of a model."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModel

from .config import TrainConfig
from .evaluation.report import format_table
from .models import build_classifier, load_classifier, load_tokenizer, resolve_model
from .models.heads import pool
from .models.loading import quiet_transformers
from .strategies import apply_strategy, describe_strategy
from .strategies.layers import encoder_parts, group_rank
from .strategies.learning_rates import parameter_groups
from .tasks.base import Task
from .training.auto import auto_lr


def load_for_inspection(name: str):
    """A run folder gives the fine-tuned classifier; anything else the bare encoder."""
    folder = Path(name) / "model" if (Path(name) / "model" / "stellartune.json").exists() else Path(name)
    if (folder / "stellartune.json").exists():
        return load_classifier(folder), load_tokenizer(str(folder))
    path = resolve_model(name)
    with quiet_transformers():
        return AutoModel.from_pretrained(path), load_tokenizer(path)


def parameter_table(model: torch.nn.Module, depth: int) -> str:
    """One row per module down to `depth`: type, parameter shapes (of leaf modules), counts, status."""
    rows = []
    for name, module in model.named_modules():
        level = name.count(".") + 1 if name else 0
        if level > depth:
            continue
        params = list(module.parameters())
        if not params:
            continue
        count = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        leaf = next(module.children(), None) is None
        shapes = ", ".join(f"{n} {'x'.join(map(str, p.shape))}" for n, p in module.named_parameters()) if leaf else ""
        status = "trainable" if trainable == count else "frozen" if trainable == 0 else f"{trainable:,} trainable"
        rows.append(["  " * level + (name.split(".")[-1] or type(model).__name__), type(module).__name__,
                     shapes, f"{count:,}", status])
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    table = format_table(rows, ["module", "type", "shapes", "parameters", "status"])
    return f"{table}\n\ntotal parameters: {total:,}   trainable: {trainable:,}   frozen: {total - trainable:,}"


def tokenization(tokenizer, text: str) -> str:
    encoded = tokenizer(text)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    special = set(tokenizer.all_special_ids)
    rows = [[i, token, token_id, "special" if token_id in special else ""]
            for i, (token, token_id) in enumerate(zip(tokens, encoded["input_ids"]))]
    return f"{text!r} -> {len(tokens)} tokens\n" + format_table(rows, ["position", "token", "id", ""])


def embed(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """Mean-pooled last hidden states (the sentence embedding MiniLM and MPNet were trained for)."""
    encoder = getattr(model, "encoder", None) if hasattr(model, "head") else model.base_model
    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    batch = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")
             and (k != "token_type_ids" or getattr(encoder.config, "type_vocab_size", 0) > 1)}
    with torch.inference_mode():
        return pool(encoder(**batch), batch["attention_mask"], "mean")


def with_strategy(name: str, config: TrainConfig) -> torch.nn.Module:
    """A two-label classifier over the model, with the strategy applied (as `train` would)."""
    model = build_classifier(resolve_model(name), id2label={0: "0", 1: "1"},
                             problem_type="single_label_classification", head=None)
    return apply_strategy(model, config)


def parameter_groups_table(model: torch.nn.Module, config: TrainConfig) -> str:
    """The optimizer's groups as `train` builds them (a sentence classifier's learning rate unless --lr
    is given), and the frozen parameters, per layer group."""
    lr = config.lr or auto_lr(sum(p.numel() for p in model.parameters()), Task)
    rows = [[g["name"], len(g["params"]), f"{sum(p.numel() for p in g['params']):,}", f"{g['lr']:.3g}",
             g["weight_decay"], "trainable"]
            for g in parameter_groups(model, lr, config.weight_decay, config.head_lr, config.layer_lr_decay)]
    parts = encoder_parts(model)
    groups = parts.group_of_parameters(model)
    frozen: dict[str, list] = {}
    for parameter in model.parameters():
        if not parameter.requires_grad:
            frozen.setdefault(groups[id(parameter)], []).append(parameter)
    for group in sorted(frozen, key=lambda g: group_rank(g, len(parts.layers))):
        rows.append([group, len(frozen[group]), f"{sum(p.numel() for p in frozen[group]):,}", "-", "-", "frozen"])
    return (f"parameter groups ({describe_strategy(config)}):\n"
            + format_table(rows, ["group", "tensors", "parameters", "lr", "weight decay", "status"]))


def inspect_model(name: str, text: str | None = None, compare: list[str] | None = None, depth: int = 3,
                  strategy: dict | None = None) -> str:
    """`strategy`: TrainConfig settings (freeze, layer_lr_decay, head_lr, lr, peft, ...) whose
    parameter groups to show, on a classifier built over the model."""
    if strategy:
        config = TrainConfig(**strategy)
        model = with_strategy(name, config)
        return "\n\n".join([f"model: {name} ({type(model).__name__})", parameter_table(model, depth),
                              parameter_groups_table(model, config)])
    model, tokenizer = load_for_inspection(name)
    parts = [f"model: {name} ({type(model).__name__})", parameter_table(model, depth)]
    if text:
        parts.append(tokenization(tokenizer, text))
    if compare:
        a, b = embed(model.eval(), tokenizer, list(compare))
        similarity = torch.nn.functional.cosine_similarity(a, b, dim=0).item()
        parts.append(f"cosine similarity of mean-pooled embeddings: {similarity:.4f}\n  A: {compare[0]!r}\n  B: {compare[1]!r}")
    return "\n\n".join(parts)
