"""Where prediction time goes on long inputs: a profile of each backend on IMDB reviews at 512 tokens.

    .venv/bin/python benchmarks/profile_predict.py --model RUN --onnx RUN-ONNX --int8 RUN-INT8 [--reviews 64]

For each backend: reviews/s, the model FLOPs they imply per second (2 x encoder parameters per token
for the matrix products, plus attention: 4 x layers x hidden x length per token) against this CPU's
measured matrix-multiply peak in that precision, and the operators that take the time (torch.profiler
for PyTorch, ONNX Runtime's own profiler for the graphs). It shows whether a backend is bound by the
arithmetic (near the peak: only fewer or cheaper operations help) or by overhead.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from export_speed import imdb  # noqa: E402
from sst2_speed import matmul_peak  # noqa: E402


def flops_per_review(model, tokens: int) -> float:
    config = model.model.config
    encoder = sum(p.numel() for n, p in model.model.named_parameters() if "embeddings" not in n)
    return tokens * (2 * encoder + 4 * config.num_hidden_layers * config.hidden_size * tokens)


def onnx_profile(folder: str, texts: list[str]) -> list[tuple[str, float]]:
    import onnxruntime as ort

    import stellartune

    model = stellartune.load(folder)
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "onnxruntime")  # not into the working folder
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    model.model.session = ort.InferenceSession(str(Path(folder) / "model.onnx"), options,
                                               providers=["CPUExecutionProvider"])
    model.predict(texts)
    profile_file = Path(model.model.session.end_profiling())
    trace = json.loads(profile_file.read_text())
    shutil.rmtree(profile_file.parent)
    totals = collections.Counter()
    for event in trace:
        if event.get("cat") == "Node":
            totals[event["args"].get("op_name", "?")] += event["dur"]
    whole = sum(totals.values())
    return [(op, us / whole) for op, us in totals.most_common(5)]


def torch_profile(model, texts: list[str]) -> list[tuple[str, float]]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.predict(texts)
    events = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    whole = sum(t for _, t in events)
    return [(k, t / whole) for k, t in sorted(events, key=lambda e: -e[1])[:5]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--int8", required=True)
    parser.add_argument("--reviews", type=int, default=64)
    args = parser.parse_args()
    import stellartune
    from stellartune.inference.precision import resolve_precision

    texts, _ = imdb(args.reviews)
    reference = stellartune.load(args.model)
    tokens = sum(len(ids) for ids in reference.tokenizer(texts, truncation=True, max_length=512)["input_ids"]) / len(texts)
    flops = flops_per_review(reference, tokens)
    bf16 = resolve_precision("auto", "cpu") == "bf16"
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"{len(texts)} reviews, {tokens:.0f} tokens each on average (cut at 512); {flops / 1e9:.1f} GFLOP per "
          f"review; matmul peak {peaks['fp32']:.0f} GFLOP/s fp32, {peaks['bf16']:.0f} GFLOP/s bf16")
    runs = {"pytorch " + ("bf16" if bf16 else "fp32"): (reference, "bf16" if bf16 else "fp32"),
            "pytorch fp32": (reference, "fp32"), "onnx fp32": (stellartune.load(args.onnx), None),
            "onnx int8": (stellartune.load(args.int8), None)}
    for name, (model, precision) in runs.items():
        model.predict(texts[:4], precision=precision)
        started = time.perf_counter()
        model.predict(texts, precision=precision)
        rate = len(texts) / (time.perf_counter() - started)
        peak = peaks["bf16" if "bf16" in name else "fp32"]
        top = (onnx_profile(args.onnx if "fp32" in name else args.int8, texts[:16]) if name.startswith("onnx")
               else torch_profile(model, texts[:16]))
        print(f"{name}: {rate:.1f} reviews/s = {rate * flops / 1e9:.0f} GFLOP/s "
              f"({rate * flops / 1e9 / peak:.0%} of the {'bf16' if 'bf16' in name else 'fp32'} matmul peak); "
              f"time in: " + ", ".join(f"{op} {share:.0%}" for op, share in top))


if __name__ == "__main__":
    main()
