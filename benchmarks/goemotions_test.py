"""GoEmotions scored on its test file (issue 29): stellartune with no flags, whose multi-label threshold is
chosen on a held-out part of its training rows, against the Trainer at its grid's best point (chosen on dev in
zero_config_anchors.json) at a fixed 0.5 threshold, as its example script does. Both train on the first 4,000
training comments, both select nothing on test, and both are scored on all of test.tsv, over the same seeds.

    python benchmarks/goemotions_test.py --jobs 2 --threads 1     # 3 seeds each side, about 20 minutes

Prints each run, then the means and the gap, and saves the runs to goemotions_test.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from zero_config import DATA, SLICES, best_anchor, in_processes, run, saved_anchors, train_trainer

RESULTS = Path(__file__).with_name("goemotions_test.json")
TEST = DATA / "goemotions" / "test.tsv"


def own_folder(folder: Path, name: str) -> Path:
    """A folder of this run's own: concurrent runs never write one slice file at once."""
    (folder / name).mkdir()
    return folder / name


def stellartune_run(folder: Path, seed: int) -> dict:
    folder = own_folder(folder, f"stellartune-{seed}")
    data = SLICES["goemotions"](folder)._replace(test=TEST)  # dev chooses the checkpoint, test is scored
    score, seconds = run(data, {}, seed, folder / "run")
    return {"side": "stellartune", "seed": seed, "score": score, "seconds": round(seconds, 1)}


def trainer_run(folder: Path, seed: int, lr: float, batch: int) -> dict:
    started = time.time()
    folder = own_folder(folder, f"trainer-{seed}")
    data = SLICES["goemotions"](folder)
    result = train_trainer("multi-label", data, {"test": TEST}, lr, batch, folder / "run", seed)
    return {"side": "trainer", "seed": seed, "lr": lr, "batch_size": batch, "score": result["scores"]["test"],
            "seconds": round(time.time() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    best = best_anchor("goemotions", saved_anchors())
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        calls = {("stellartune", seed): (stellartune_run, (folder, seed)) for seed in args.seeds}
        calls |= {("trainer", seed): (trainer_run, (folder, seed, best["lr"], best["batch_size"]))
                  for seed in args.seeds}
        runs = []
        for _, result in in_processes(args.jobs, args.threads, calls):
            runs.append(result)
            print(json.dumps(result), flush=True)
    RESULTS.write_text(json.dumps({"note": __doc__.split("\n\n")[0], "runs": runs}, indent=2) + "\n")
    means = {side: statistics.mean(r["score"] for r in runs if r["side"] == side) for side in ("stellartune", "trainer")}
    spread = {side: statistics.stdev([r["score"] for r in runs if r["side"] == side]) if len(args.seeds) > 1 else 0.0
              for side in means}
    print(f"GoEmotions test micro-F1 over seeds {args.seeds}: stellartune {means['stellartune']:.3f} ± "
          f"{spread['stellartune']:.3f}, Trainer (lr {best['lr']:g}, batch {best['batch_size']}) "
          f"{means['trainer']:.3f} ± {spread['trainer']:.3f}: {100 * (means['stellartune'] - means['trainer']):+.1f} points")


if __name__ == "__main__":
    main()
