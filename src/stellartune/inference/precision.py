"""Which precision a run computes in: `auto` is bf16 autocast where the hardware runs bf16 fast.

Shared by training (accelerate's mixed precision) and inference (predict, evaluate): a model is
evaluated at the end of training in the precision `predict` then uses, so the reported metrics
are what the saved model gives.
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls 2-3x faster than fp32; elsewhere bf16 on CPU is emulated, slower."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's, private but long-lived
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def fast_bf16(device: torch.device | str) -> bool:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """fp32, bf16 or fp16: `auto` settled for this device."""
    if precision == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    return precision


def inference_autocast(precision: str, device: torch.device | str) -> Callable[[], ContextManager]:
    """A context factory for compute_logits: autocast at the resolved precision, or nothing for fp32."""
    resolved = resolve_precision(precision, device)
    if resolved == "fp32":
        return contextlib.nullcontext
    return lambda: torch.autocast(torch.device(device).type, dtype=DTYPES[resolved])
