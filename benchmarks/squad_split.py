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

import numpy as np
from comparison import comparison_parser  # benchmarks/comparison.py, beside this script

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
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from stellartune.evaluation.squad import squad_scores
    from stellartune.models import resolve_model
    from stellartune.tasks import columns_for, examples_for, read_for

    def examples(path):
        table = read_for("qa", str(path))
        return examples_for("qa", table, columns_for("qa", table))

    def tokenize(questions, contexts):
        return tokenizer(questions, contexts, truncation="only_second", max_length=args.max_length,
                         stride=args.doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)

    path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    train_examples, dev_examples = examples(train), examples(dev)

    # ---- prepare_train_features: answer token span per window, CLS when the answer is not inside
    encoded = tokenize(train_examples.texts, train_examples.pairs)
    features = []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        sequence, answer = encoded.sequence_ids(i), train_examples.labels[encoded["overflow_to_sample_mapping"][i]][0]
        start_char, end_char = answer["start"], answer["start"] + len(answer["text"])
        first = sequence.index(1)
        last = len(sequence) - 1 - sequence[::-1].index(1)
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            start = end = 0
        else:
            start = first
            while start <= last and offsets[start][0] <= start_char:
                start += 1
            start -= 1
            end = last
            while end >= first and offsets[end][1] >= end_char:
                end -= 1
            end += 1
        features.append({"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i],
                         "token_type_ids": encoded["token_type_ids"][i], "start_positions": start,
                         "end_positions": end})

    model = AutoModelForQuestionAnswering.from_pretrained(path)
    training = TrainingArguments(output_dir=str(folder / "trainer"), per_device_train_batch_size=args.batch_size,
                                 per_device_eval_batch_size=64, learning_rate=args.lr, num_train_epochs=args.epochs,
                                 weight_decay=0.01, warmup_steps=0.1, train_sampling_strategy="group_by_length",
                                 save_strategy="no", eval_strategy="no",
                                 logging_steps=50, report_to=[], seed=args.seed, use_cpu=True)
    trainer = Trainer(model=model, args=training, train_dataset=features, data_collator=DataCollatorWithPadding(tokenizer))
    started = time.time()
    trainer.train()
    seconds = time.time() - started

    # ---- prepare_validation_features + postprocess_qa_predictions
    encoded = tokenize(dev_examples.texts, dev_examples.pairs)
    eval_features = [{k: encoded[k][i] for k in ("input_ids", "attention_mask", "token_type_ids")}
                     for i in range(len(encoded["input_ids"]))]
    # transformers 5 groups evaluation batches by length too, which reorders predict's output:
    # predict in input order
    trainer.args.train_sampling_strategy = "random"
    start_logits, end_logits = trainer.predict(eval_features).predictions
    best: dict[int, tuple[float, str]] = {}
    for i, offsets in enumerate(encoded["offset_mapping"]):
        example, sequence = encoded["overflow_to_sample_mapping"][i], encoded.sequence_ids(i)
        context = dev_examples.pairs[example]
        starts = np.argsort(start_logits[i])[-1:-21:-1]
        ends = np.argsort(end_logits[i])[-1:-21:-1]
        for s in starts:
            for e in ends:
                if s >= len(sequence) or e >= len(sequence) or sequence[s] != 1 or sequence[e] != 1:
                    continue
                if e < s or e - s + 1 > 30:
                    continue
                score = float(start_logits[i][s] + end_logits[i][e])
                if example not in best or score > best[example][0]:
                    best[example] = (score, context[offsets[s][0] : offsets[e][1]])
    predictions = [best.get(i, (0.0, ""))[1] for i in range(len(dev_examples))]
    scores = squad_scores(predictions, [[a["text"] for a in gold] for gold in dev_examples.labels])
    return {**scores, "seconds": seconds}


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
