"""Where one training step's time goes: torch.profiler over stellartune's own training pieces.

    python benchmarks/profile_step.py      # about 1 minute

minilm, the SST-2 classifier stellartune builds, --batch-size sentences of SST-2 train that are
11 to 14 tokens long (the mean is 13), bf16 autocast as `--precision auto` picks it on this CPU,
dropout on, fused AdamW over every parameter: the default training step. Prints the operators by
time and the share spent in matrix multiplication, with the GFLOP/s those multiplications reach
next to a 2048 x 2048 matmul's.
"""

from __future__ import annotations

import argparse

import torch
from sst2_speed import matmul_peak, sst2
from torch.profiler import ProfilerActivity, profile

MATMULS = ("aten::mm", "aten::addmm", "aten::bmm")  # bmm: attention scores and mixing
LINEAR = ("aten::mm", "aten::addmm")  # the linear layers, forward and backward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()

    from stellartune.config import TrainConfig
    from stellartune.inference.precision import inference_autocast, resolve_precision
    from stellartune.models import build_classifier, load_tokenizer, resolve_model
    from stellartune.models.inputs import forward_logits
    from stellartune.models.quiet import quiet_transformers
    from stellartune.training.optim import build_optimizer

    path = resolve_model("minilm")
    tokenizer = load_tokenizer(path)
    texts = [t for t in sst2("train.tsv", 5000)[0] if 11 <= len(tokenizer(t)["input_ids"]) <= 14]
    inputs = dict(tokenizer(texts[: args.batch_size], padding=True, return_tensors="pt"))
    targets = torch.zeros(args.batch_size, dtype=torch.long)
    with quiet_transformers():
        model = build_classifier(path, id2label={0: "0", 1: "1"}, problem_type="single_label_classification", head=None)
    optimizer = build_optimizer(model, TrainConfig())
    autocast = inference_autocast("auto", "cpu")
    model.train()

    def step() -> None:
        with autocast():
            loss = torch.nn.functional.cross_entropy(forward_logits(model, inputs).float(), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        for _ in range(args.steps):
            step()
    events = profiled.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=15))
    total = sum(e.self_cpu_time_total for e in events)
    matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMULS)
    linear = sum(e.self_cpu_time_total for e in events if e.key in LINEAR)
    tokens = int(inputs["attention_mask"].numel())
    layers = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".encoder." in f".{name}"]
    flops = 6 * tokens * sum(m.in_features * m.out_features for m in layers) * args.steps  # forward + backward
    peak = matmul_peak(torch.bfloat16 if resolve_precision("auto", "cpu") == "bf16" else torch.float32)
    print(f"batch {args.batch_size} x {inputs['input_ids'].shape[1]} tokens: {total / 1e3 / args.steps:.0f} ms per step, "
          f"{100 * matmul / total:.0f}% in matrix multiplication; the encoder's linear layers multiply at "
          f"{flops / (linear / 1e6) / 1e9:.0f} GFLOP/s, a 2048 x 2048 matmul at {peak:.0f}")


if __name__ == "__main__":
    main()
