"""Prediction backends side by side: `transformers.pipeline` against stellartune's PyTorch predict,
its ONNX fp32 export and its ONNX int8 export, in one run on this machine.

    .venv/bin/python benchmarks/export_speed.py               # trains the SST-2 model first (about a minute)
    .venv/bin/python benchmarks/export_speed.py --model runs/x --imdb 500 --rounds 2

The model: `minilm` fine-tuned by `stellartune.fit` with its defaults for one epoch on the first
2,000 SST-2 training sentences, with --max-length 512 (so every backend cuts at 512 tokens), then
exported with `stellartune export` (fp32, and `--quantize int8`). Data: SST-2 dev (872 sentences) and
IMDB test reviews (the first --imdb in the archive, HTML breaks removed), labels from the files.

Each measurement runs in its own process (its peak resident memory is its own, model loading
included), backends alternating within each round; examples/s counts prediction only. The pipeline
runs at its default batch size, truncating at 512 tokens, on the saved `model/` folder; stellartune's
PyTorch predict at its defaults (batch 64, the run's precision: bf16 autocast where the CPU has bf16
units). "same as pipeline" is the share of labels identical to the pipeline's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sst2_speed import SHARED, sst2  # noqa: E402

BACKENDS = ("pipeline", "pytorch", "onnx fp32", "onnx int8")
MAX_LENGTH = 512
# the settings the figures in docs/benchmarks were measured with (the defaults before issue 15)
MEASURED_WITH = {"pooling": "model", "lr": 5e-5, "batch_size": 32}


def imdb(count: int) -> tuple[list[str], list[str]]:
    import tarfile

    texts, labels = [], []
    with tarfile.open(SHARED / "imdb" / "aclImdb_labeled.tar.gz") as archive:
        for member in archive:
            parts = member.name.split("/")  # aclImdb/test/pos/123_9.txt
            if len(parts) == 4 and parts[1] == "test" and parts[2] in ("pos", "neg") and len(texts) < count:
                text = archive.extractfile(member).read().decode("utf-8").replace("<br />", " ")
                texts.append(" ".join(text.split()))
                labels.append("1" if parts[2] == "pos" else "0")
    return texts, labels


def predict(backend: str, folders: dict[str, str], texts: list[str]) -> dict:
    """One measurement: (labels, seconds of prediction, peak resident MB of this process)."""
    if backend == "pipeline":
        from transformers import pipeline

        classify = pipeline("text-classification", model=folders["pytorch"] + "/model", device=-1)
        started = time.perf_counter()
        labels = [p["label"] for p in classify(texts, truncation=True, max_length=MAX_LENGTH)]
    else:
        import stellartune

        model = stellartune.load(folders[backend])
        started = time.perf_counter()
        labels = [p["label"] for p in model.predict(texts)]
    seconds = time.perf_counter() - started
    return {"labels": labels, "seconds": seconds, "peak_mb": peak_resident_mb()}


def peak_resident_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not carried over from the parent
    across fork and exec, which trained a model and would set every worker's figure)."""
    line = next(row for row in Path("/proc/self/status").read_text().splitlines() if row.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def measure(backend: str, folders: dict, texts_file: Path) -> dict:
    command = [sys.executable, __file__, "--worker", backend, "--folders", json.dumps(folders), "--texts", str(texts_file)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{backend} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(model: str | None, scratch: Path) -> dict[str, str]:
    import stellartune

    if model is None:
        texts, labels = sst2("train.tsv", 2000)
        train = scratch / "train.tsv"
        train.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
        model = str(scratch / "run")
        stellartune.fit(train=str(train), output=model, epochs=1, max_length=MAX_LENGTH, progress=False,
                        **MEASURED_WITH)
    stellartune.export(model, scratch / "onnx-fp32")
    stellartune.export(model, scratch / "onnx-int8", quantize="int8")
    return {"pytorch": model, "onnx fp32": str(scratch / "onnx-fp32"), "onnx int8": str(scratch / "onnx-int8")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="Run folder to measure (default: train one, see above).")
    parser.add_argument("--imdb", type=int, default=2000, help="IMDB test reviews (default: 2000).")
    parser.add_argument("--rounds", type=int, default=1, help="Alternating rounds; the median is shown.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folders", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(predict(args.worker, json.loads(args.folders), json.loads(Path(args.texts).read_text()))))
        return
    sets = {"SST-2 dev": sst2("dev.tsv"), f"IMDB test ({args.imdb})": imdb(args.imdb)}
    sets = {name: (texts, [str(y) for y in labels]) for name, (texts, labels) in sets.items()}
    with tempfile.TemporaryDirectory() as scratch:
        folders = prepare(args.model, Path(scratch))
        print("| data | backend | examples/s | x pipeline | peak MB | same as pipeline | accuracy |")
        print("|---|---|---|---|---|---|---|")
        for name, (texts, gold) in sets.items():
            texts_file = Path(scratch) / "texts.json"
            texts_file.write_text(json.dumps(texts))
            runs = {backend: [] for backend in BACKENDS}
            for _ in range(args.rounds):
                for backend in BACKENDS:
                    runs[backend].append(measure(backend, folders, texts_file))
            base = len(texts) / statistics.median(r["seconds"] for r in runs["pipeline"])
            for backend, measured in runs.items():
                speed = len(texts) / statistics.median(r["seconds"] for r in measured)
                labels = measured[0]["labels"]
                same = sum(a == b for a, b in zip(labels, runs["pipeline"][0]["labels"])) / len(texts)
                accuracy = sum(a == b for a, b in zip(labels, gold)) / len(texts)
                peak = max(r["peak_mb"] for r in measured)
                print(f"| {name} | {backend} | {speed:.1f} | {speed / base:.2f}x | {peak:.0f} | {same:.1%} | "
                      f"{accuracy:.4f} |", flush=True)


if __name__ == "__main__":
    main()
