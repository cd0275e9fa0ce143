"""Which precision a run computes in: `auto` is bf16 autocast where the hardware runs bf16 fast (a GPU that
supports it; a CPU whose bf16 matmuls measure faster than fp32's).

Shared by training (accelerate's mixed precision) and inference (predict, evaluate): a model is
evaluated at the end of training in the precision `predict` then uses, so the reported metrics
are what the saved model gives.
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Callable, ContextManager

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


BF16_GAIN = 1.5  # bf16 autocast only where bf16 matmuls run this much faster than fp32: its casts cost the rest


@functools.cache
def cpu_runs_bf16_fast() -> bool:
    """Whether this CPU has bf16 units (AVX512-BF16, AMX) and its bf16 matmuls measure BF16_GAIN times fp32's
    speed (once per process, about 0.2 s). The flags alone do not tell: with AVX512-BF16, one CPU (2 cores of
    an AMD EPYC) ran bf16 matmuls at 2.3x fp32's speed, another (2 cores of an Intel Xeon without AMX) at 0.6x,
    where bf16 autocast trained 1.2x and predicted 1.8x slower than fp32 (benchmarks/precision.py)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's, private but long-lived
    if not any(getattr(torch.cpu, name, lambda: False)() for name in checks):
        return False  # bf16 emulated: always slower
    return matmul_rate(torch.bfloat16) >= BF16_GAIN * matmul_rate(torch.float32)


def matmul_rate(dtype: torch.dtype, size: int = 512, repeats: int = 20) -> float:
    """Square matmuls of `size` per second, the best of three timings (a busy moment slows one, not all)."""
    numbers = torch.Generator().manual_seed(0)  # its own: the run's random state stays as the seed left it
    a, b = (torch.randn(size, size, generator=numbers).to(dtype) for _ in range(2))
    a @ b  # the first call loads the kernels
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, time.perf_counter() - started)
    return repeats / best


def fast_bf16(device: torch.device | str) -> bool:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_runs_bf16_fast()


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
