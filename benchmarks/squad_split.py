"""Extractive QA on SQuAD v1.1: stellartune against Hugging Face's run_qa.py-style Trainer training of the
same model on the same article split with the same settings, in one run.

    python benchmarks/squad_split.py                   # minilm, 1 epoch, lr 2e-4, batch 32, 384/128
    python benchmarks/squad_split.py --epochs 2 --skip-hf
    python benchmarks/squad_split.py --skip-stellartune    # the Trainer half alone

The only SQuAD data here is the v1.1 dev set (48 articles, 10,570 questions). It is split by
article, fixed: every fifth article (positions 5, 10, ..., 45 in the file) is held out for
evaluation, the other 39 train; no article is on both sides.

The Trainer side follows run_qa.py: prepare_train_features / prepare_validation_features
(truncation only_second, stride, offsets), dynamic padding with length-grouped batches (run_qa's
--group_by_length; without it the Trainer ran 3x slower here), postprocess_qa_predictions with
n_best_size 20 and max_answer_length 30, and the official SQuAD EM/F1 (stellartune's copy of
the official script, since `evaluate.load("squad")` needs the hub).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from comparison import comparison_parser  # benchmarks/comparison.py, beside this script
from trainer_recipes import question_answering

SQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad_v1.1" / "dev-v1.1.json"


def article_split(folder: Path) -> tuple[Path, Path]:
    articles = json.loads(SQUAD.read_text())["data"]
    parts = {"train": [a for i, a in enumerate(articles) if i % 5 != 4],
             "eval": [a for i, a in enumerate(articles) if i % 5 == 4]}
    paths = []
    for name, chosen in parts.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps({"version": "1.1", "data": chosen}))
        paths.append(path)
    return paths[0], paths[1]


def run_stellartune(args, train: Path, dev: Path, folder: Path) -> dict:
    import stellartune

    started = time.time()
    model = stellartune.fit(model=args.model, train=str(train), eval=str(dev), output=str(folder / "stellartune"),
                            task="qa", epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                            max_length=args.max_length, doc_stride=args.doc_stride, seed=args.seed)
    seconds = time.time() - started
    return {"exact_match": model.metrics["exact_match"], "f1": model.metrics["f1"], "seconds": seconds}


def run_trainer(args, train: Path, dev: Path, folder: Path) -> dict:
    from stellartune.models import resolve_model

    result = question_answering(resolve_model(args.model), train, {"eval": dev}, folder, max_length=args.max_length,
                                doc_stride=args.doc_stride, lr=args.lr, batch_size=args.batch_size,
                                epochs=args.epochs, seed=args.seed, weight_decay=0.01, warmup_steps=0.1)
    return {"exact_match": result["exact_match"]["eval"], "f1": result["scores"]["eval"], "seconds": result["seconds"]}


def main() -> None:
    parser = comparison_parser(__doc__, epochs=1.0, lr=2e-4)
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    args = parser.parse_args()
    if not SQUAD.exists():
        raise SystemExit(f"needs SQuAD v1.1 dev in {SQUAD}")
    folder = Path(tempfile.mkdtemp(prefix="stellartune-squad-"))
    train, dev = article_split(folder)
    results = {} if args.skip_stellartune else {"stellartune": run_stellartune(args, train, dev, folder)}
    if not args.skip_hf:
        results["transformers Trainer (run_qa style)"] = run_trainer(args, train, dev, folder)
    questions = {name: sum(len(q["qas"]) for a in json.loads(p.read_text())["data"] for q in a["paragraphs"])
                 for name, p in (("train", train), ("eval", dev))}
    print(f"\n{args.model}, SQuAD v1.1 dev split by article ({questions['train']} training / {questions['eval']} "
          f"held-out questions), {args.epochs:g} epochs, lr {args.lr:g}, batch {args.batch_size}, "
          f"max length {args.max_length}, stride {args.doc_stride}:")
    print("| trainer | EM | F1 | training time (stellartune's includes its evaluation) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {100 * r['exact_match']:.1f} | {100 * r['f1']:.1f} | {r['seconds']:.0f} s |")
    (folder / "summary.json").write_text(json.dumps(results, indent=2))
    print(f"details: {folder / 'summary.json'}")


if __name__ == "__main__":
    main()
