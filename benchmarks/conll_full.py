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


def aligned(tokenizer, rows, index):
    """run_ner.py's tokenize_and_align_labels: the word's label on its first subword, -100 elsewhere."""
    encoded = tokenizer([r["tokens"] for r in rows], is_split_into_words=True, truncation=True, max_length=128)
    labels = []
    for i, row in enumerate(rows):
        previous, ids = None, []
        for word in encoded.word_ids(i):
            ids.append(-100 if word is None or word == previous else index[row["tags"][word]])
            previous = word
        labels.append(ids)
    return [{**{k: encoded[k][i] for k in encoded}, "labels": labels[i]} for i in range(len(rows))]


def word_tags(logits, features, names):
    """(predicted, gold) word tags at the first-subword positions, as run_ner.py's compute_metrics:
    words cut off by truncation at 128 tokens are not scored."""
    predicted = [[names[p] for p, label in zip(row.argmax(-1), f["labels"]) if label != -100]
                 for row, f in zip(logits, features)]
    gold = [[names[label] for label in f["labels"] if label != -100] for f in features]
    return predicted, gold


def run_trainer(args, folder: Path) -> dict:
    import numpy as np
    from seqeval.metrics import f1_score
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    from stellartune.data.conll import read_conll
    from stellartune.models import resolve_model

    path = resolve_model(args.model)
    splits = {name: read_conll(DATA / f"{name}.txt").rows for name in ("train", "valid", "test")}
    kinds = sorted({t[2:] for r in splits["train"] for t in r["tags"] if t != "O"})
    names = ["O"] + [f"{p}-{k}" for k in kinds for p in "BI"]
    index = {n: i for i, n in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(path)
    features = {name: aligned(tokenizer, rows, index) for name, rows in splits.items()}
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=len(names), id2label=dict(enumerate(names)),
                                                            label2id=index)
    training = TrainingArguments(output_dir=str(folder / "trainer"), per_device_train_batch_size=args.batch_size,
                                 per_device_eval_batch_size=64, learning_rate=args.lr, num_train_epochs=args.epochs,
                                 weight_decay=0.01, warmup_steps=0.1, train_sampling_strategy="group_by_length",
                                 save_strategy="no",
                                 eval_strategy="no", logging_steps=100, report_to=[], seed=args.seed, use_cpu=True)
    trainer = Trainer(model=model, args=training, train_dataset=features["train"],
                      data_collator=DataCollatorForTokenClassification(tokenizer))
    started = time.time()
    trainer.train()
    seconds = time.time() - started
    # transformers 5 groups evaluation batches by length too, which reorders predict's output:
    # predict in input order
    trainer.args.train_sampling_strategy = "random"
    scores = {}
    for name in ("valid", "test"):
        predicted, gold = word_tags(np.asarray(trainer.predict(features[name]).predictions), features[name], names)
        scores[name] = f1_score(gold, predicted)
    return {"dev_f1": scores["valid"], "test_f1": scores["test"], "seconds": seconds}


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
