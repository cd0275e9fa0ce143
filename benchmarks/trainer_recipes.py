"""The Hugging Face Trainer, run as its example scripts run it, for the side-by-side benchmarks:
run_glue / run_classification (one text or a pair: single-label, multi-label, regression), run_ner
(first-subword labels) and run_qa (windows, 20-best post-processing). Each recipe trains on one file
and scores other files with the metric stellartune reports for the task (`stellartune.evaluation`),
so the two sides are compared on the same numbers.

Trainer settings are TrainingArguments' own defaults (AdamW, linear decay, no warmup, no weight
decay, fp32, the last weights), except what a caller passes, and two that change speed and not the
recipe: dynamic padding with length-grouped batches (the scripts' --group_by_length, the Trainer's
fastest CPU setting, issue 6) and no checkpoints.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def arguments(folder: Path, lr: float, batch_size: int, epochs: float, seed: int, **overrides):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=str(folder / "trainer"), per_device_train_batch_size=batch_size,
                             per_device_eval_batch_size=64, learning_rate=lr, num_train_epochs=epochs,
                             train_sampling_strategy="group_by_length", save_strategy="no", eval_strategy="no",
                             logging_steps=50, report_to=[], seed=seed, use_cpu=True, disable_tqdm=True,
                             **overrides)


def pretrained(model_class, model_path: str, seed: int, **options):
    """The model with its new head initialised from `seed`: the example scripts call set_seed before loading
    (the Trainer seeds only later, so without it the head would come from whatever ran before)."""
    from transformers import set_seed

    set_seed(seed)
    return model_class.from_pretrained(model_path, **options)


def train(model, training, features: list[dict], collator):
    """The trained Trainer and its training time in seconds."""
    from transformers import Trainer

    trainer = Trainer(model=model, args=training, train_dataset=features, data_collator=collator)
    started = time.time()
    trainer.train()
    seconds = time.time() - started
    # transformers 5 groups evaluation batches by length too, which reorders predict's output:
    # predict in input order
    trainer.args.train_sampling_strategy = "random"
    return trainer, seconds


def score_each(files: dict[str, Path], score) -> dict:
    """`score(path)` of each named file, and the seconds each took."""
    scores, seconds = {}, {}
    for name, path in files.items():
        started = time.time()
        scores[name] = score(path)
        seconds[name] = time.time() - started
    return {"scores": scores, "score_seconds": seconds}


def examples(problem: str, path: Path):
    from stellartune.tasks import task_class

    task = task_class(problem)
    table = task.read(str(path))
    return task.build_examples(table, task.find_columns(table))


# ---- run_glue / run_classification


def sequence_classification(model_path: str, problem: str, train_file: Path, score_files: dict[str, Path],
                            folder: Path, max_length: int = 128, **settings) -> dict:
    """`problem`: classification, multi-label or regression; one text or a pair, as the files have."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_examples = examples(problem, train_file)
    names = label_names(problem, train_examples.labels)

    def features(data) -> list[dict]:
        encoded = tokenizer(data.texts, data.pairs, truncation=True, max_length=max_length)
        targets = label_targets(problem, data.labels, names)
        return [{**{k: encoded[k][i] for k in encoded}, "labels": targets[i]} for i in range(len(data.texts))]

    kind = {"multi-label": "multi_label_classification", "regression": "regression"}.get(problem,
                                                                                        "single_label_classification")
    model = pretrained(AutoModelForSequenceClassification, model_path, settings["seed"], num_labels=len(names) or 1,
                       problem_type=kind)
    trainer, seconds = train(model, arguments(folder, **settings), features(train_examples),
                             DataCollatorWithPadding(tokenizer))

    def score(path: Path) -> float:
        data = examples(problem, path)
        outputs = np.asarray(trainer.predict(features(data)).predictions)
        return sequence_score(problem, outputs, label_targets(problem, data.labels, names), names)

    return {**score_each(score_files, score), "seconds": seconds}


def label_names(problem: str, labels: list) -> list[str]:
    if problem == "regression":
        return []
    return sorted({label for row in labels for label in row} if problem == "multi-label" else set(labels))


def label_targets(problem: str, labels: list, names: list[str]) -> list:
    if problem == "regression":
        return [float(label) for label in labels]
    index = {name: i for i, name in enumerate(names)}
    if problem == "multi-label":
        return [[float(name in row) for name in names] for row in labels]
    return [index[label] for label in labels]


def sequence_score(problem: str, outputs: np.ndarray, targets: list, names: list[str]) -> float:
    """Accuracy, micro-F1 or Pearson: stellartune's metrics. Multi-label decisions use the threshold with the
    best micro-F1 on these examples, as stellartune's evaluation picks its own, rather than 0.5."""
    from stellartune.evaluation.metrics import (
        best_threshold,
        multi_label_metrics,
        regression_metrics,
        single_label_metrics,
    )

    if problem == "regression":
        return regression_metrics(outputs.reshape(-1), np.asarray(targets))["pearson"]
    if problem == "multi-label":
        gold, probabilities = np.asarray(targets, dtype=int), 1 / (1 + np.exp(-outputs))
        predicted = (probabilities >= best_threshold(probabilities, gold)).astype(int)
        return multi_label_metrics(predicted, gold, names)["micro_f1"]
    return single_label_metrics(outputs.argmax(-1), np.asarray(targets), names)["accuracy"]


# ---- run_ner


def token_classification(model_path: str, train_file: Path, score_files: dict[str, Path], folder: Path,
                         max_length: int = 128, **settings) -> dict:
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    from stellartune.data.conll import read_conll
    from stellartune.evaluation.metrics import entity_metrics

    rows = read_conll(train_file).rows
    kinds = sorted({t[2:] for r in rows for t in r["tags"] if t != "O"})
    names = ["O"] + [f"{p}-{k}" for k in kinds for p in "BI"]
    index = {n: i for i, n in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = pretrained(AutoModelForTokenClassification, model_path, settings["seed"], num_labels=len(names),
                       id2label=dict(enumerate(names)), label2id=index)
    trainer, seconds = train(model, arguments(folder, **settings), aligned(tokenizer, rows, index, max_length),
                             DataCollatorForTokenClassification(tokenizer))

    def score(path: Path) -> float:
        features = aligned(tokenizer, read_conll(path).rows, index, max_length)
        predicted, gold = word_tags(np.asarray(trainer.predict(features).predictions), features, names)
        return entity_metrics(predicted, gold)["f1"]

    return {**score_each(score_files, score), "seconds": seconds}


def aligned(tokenizer, rows, index, max_length: int = 128):
    """run_ner.py's tokenize_and_align_labels: the word's label on its first subword, -100 elsewhere."""
    encoded = tokenizer([r["tokens"] for r in rows], is_split_into_words=True, truncation=True, max_length=max_length)
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
    words cut off by truncation are not scored."""
    predicted = [[names[p] for p, label in zip(row.argmax(-1), f["labels"]) if label != -100]
                 for row, f in zip(logits, features)]
    gold = [[names[label] for label in f["labels"] if label != -100] for f in features]
    return predicted, gold


# ---- run_qa


def question_answering(model_path: str, train_file: Path, score_files: dict[str, Path], folder: Path,
                       max_length: int = 384, doc_stride: int = 128, **settings) -> dict:
    """Scores are SQuAD F1 (0-1), with exact match beside them under `exact_match`."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding

    from stellartune.evaluation.squad import squad_scores

    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def windows(data):
        return tokenizer(data.texts, data.pairs, truncation="only_second", max_length=max_length, stride=doc_stride,
                         return_overflowing_tokens=True, return_offsets_mapping=True)

    train_examples = examples("qa", train_file)
    model = pretrained(AutoModelForQuestionAnswering, model_path, settings["seed"])
    trainer, seconds = train(model, arguments(folder, **settings), answer_features(windows(train_examples),
                                                                                   train_examples.labels),
                             DataCollatorWithPadding(tokenizer))
    exact = {}

    def score(path: Path) -> float:
        data = examples("qa", path)
        encoded = windows(data)
        inputs = [{k: encoded[k][i] for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded}
                  for i in range(len(encoded["input_ids"]))]
        start_logits, end_logits = trainer.predict(inputs).predictions
        result = squad_scores(best_spans(encoded, data.pairs, start_logits, end_logits),
                              [[a["text"] for a in gold] for gold in data.labels])
        exact[path] = result["exact_match"]
        return result["f1"]

    scored = score_each(score_files, score)
    return {**scored, "exact_match": {name: exact[path] for name, path in score_files.items()}, "seconds": seconds}


def answer_features(encoded, labels) -> list[dict]:
    """prepare_train_features: each window's answer token span, CLS when the answer is not inside it."""
    features = []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        sequence, answer = encoded.sequence_ids(i), labels[encoded["overflow_to_sample_mapping"][i]][0]
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
        features.append({**{k: encoded[k][i] for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded},
                         "start_positions": start, "end_positions": end})
    return features


def best_spans(encoded, contexts, start_logits, end_logits, n_best: int = 20, longest: int = 30) -> list[str]:
    """postprocess_qa_predictions: the best-scoring valid span over each question's windows."""
    best: dict[int, tuple[float, str]] = {}
    for i, offsets in enumerate(encoded["offset_mapping"]):
        example, sequence = encoded["overflow_to_sample_mapping"][i], encoded.sequence_ids(i)
        starts = np.argsort(start_logits[i])[-1 : -n_best - 1 : -1]
        ends = np.argsort(end_logits[i])[-1 : -n_best - 1 : -1]
        for s in starts:
            for e in ends:
                if s >= len(sequence) or e >= len(sequence) or sequence[s] != 1 or sequence[e] != 1:
                    continue
                if e < s or e - s + 1 > longest:
                    continue
                score = float(start_logits[i][s] + end_logits[i][e])
                if example not in best or score > best[example][0]:
                    best[example] = (score, contexts[example][offsets[s][0] : offsets[e][1]])
    return [best.get(i, (0.0, ""))[1] for i in range(len(contexts))]
