"""Full CoNLL-2003 NER: stellartune against Hugging Face's run_ner-style Trainer training of the
same model on the same data with the same settings, in one run.

    python benchmarks/conll_full.py                       # minilm, 3 epochs, lr 1e-4, batch 32
    python benchmarks/conll_full.py --epochs 2 --skip-hf
    python benchmarks/conll_full.py --skip-stellartune      # the Trainer half alone

The Trainer side is run_ner.py's recipe: first-subword labels (-100 elsewhere), dynamic padding
with DataCollatorForTokenClassification, seqeval on word tags; it gets group_by_length (its
fastest CPU setting, see issue 6) and the same warmup and weight decay as stellartune. Prints dev
and test entity F1, training time and examples per second for both, and their ratios.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from comparison import comparison_parser  # benchmarks/comparison.py, beside this script
from trainer_recipes import token_classification

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "conll2003"


def run_stellartune(args, folder: Path) -> dict:
    import stellartune

    started = time.time()
    model = stellartune.fit(model=args.model, train=str(DATA / "train.txt"), eval=str(DATA / "valid.txt"),
                            output=str(folder / "stellartune"), epochs=args.epochs, lr=args.lr,
                            batch_size=args.batch_size, max_length=128, seed=args.seed)
    seconds = time.time() - started
    test = model.evaluate(str(DATA / "test.txt"))
    return {"dev_f1": model.metrics["f1"], "test_f1": test["f1"], "seconds": seconds}


def run_trainer(args, folder: Path) -> dict:
    from stellartune.models import resolve_model

    result = token_classification(resolve_model(args.model), DATA / "train.txt",
                                  {"valid": DATA / "valid.txt", "test": DATA / "test.txt"}, folder, lr=args.lr,
                                  batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
                                  weight_decay=0.01, warmup_steps=0.1)
    return {"dev_f1": result["scores"]["valid"], "test_f1": result["scores"]["test"], "seconds": result["seconds"]}


def main() -> None:
    parser = comparison_parser(__doc__, epochs=3.0, lr=1e-4)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"needs CoNLL-2003 in {DATA}")
    folder = Path(tempfile.mkdtemp(prefix="stellartune-conll-"))
    results = {} if args.skip_stellartune else {"stellartune": run_stellartune(args, folder)}
    if not args.skip_hf:
        results["transformers Trainer (run_ner style)"] = run_trainer(args, folder)
    from stellartune.data.conll import read_conll

    sentences = len(read_conll(DATA / "train.txt").rows) * args.epochs
    print(f"\n{args.model}, CoNLL-2003, {args.epochs:g} epochs, lr {args.lr:g}, batch {args.batch_size}:")
    print("| trainer | dev F1 | test F1 | training time | sentences/s |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['dev_f1']:.4f} | {r['test_f1']:.4f} | {r['seconds']:.0f} s | {sentences / r['seconds']:.1f} |")
    if len(results) == 2:
        ours, theirs = results.values()
        print(f"\nstellartune: {theirs['seconds'] / ours['seconds']:.2f}x the Trainer's speed (wall time, "
              f"stellartune's includes tokenization and per-epoch evaluation); test F1 "
              f"{ours['test_f1'] - theirs['test_f1']:+.4f}")
    (folder / "summary.json").write_text(json.dumps(results, indent=2))
    print(f"details: {folder / 'summary.json'}")


if __name__ == "__main__":
    main()
