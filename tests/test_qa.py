"""Extractive QA on the real SQuAD v1.1 dev file: reading, windows, post-processing, metrics, training, use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import data_file

import stellartune
from stellartune.data.examples import Examples
from stellartune.errors import StellarError
from stellartune.evaluation.squad import (
    exact_match,
    normalize_answer,
    squad_scores,
    token_f1,
)
from stellartune.models import load_tokenizer, resolve_model
from stellartune.tasks import task_class
from stellartune.tasks.question_answering import Answer, QuestionAnsweringTask, best_null_threshold


@pytest.fixture(scope="module")
def squad() -> dict:
    return json.loads(data_file("squad_v1.1/dev-v1.1.json").read_text())


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("minilm"))


def squad_file(path, articles: list[dict]):
    path.write_text(json.dumps({"version": "1.1", "data": articles}))
    return str(path)


def read_examples(source):
    qa = task_class("qa")
    table = qa.read(source)
    return qa.build_examples(table, qa.find_columns(table))


def test_reader_flattens_every_question_with_its_answers():
    examples = read_examples(str(data_file("squad_v1.1/dev-v1.1.json")))
    assert len(examples) == 10_570
    assert examples.texts[0] == "Which NFL team represented the AFC at Super Bowl 50?"
    assert examples.labels[0][0] == {"text": "Denver Broncos", "start": 177}
    assert examples.positions[0].endswith("article 1 (Super_Bowl_50), paragraph 1, question 56be4db0acb8001400a502ec")
    for context, answers in zip(examples.pairs, examples.labels):
        assert all(context[a["start"] : a["start"] + len(a["text"])] == a["text"] for a in answers)


def test_long_contexts_become_windows_that_hold_the_answer(squad, tmp_path, tokenizer):
    examples = read_examples(squad_file(tmp_path / "part.json", squad["data"][:3]))
    task = QuestionAnsweringTask(doc_stride=32, max_answer_length=30)
    encoded = task.encode(examples, tokenizer, max_length=96)
    assert encoded.split > 100  # most contexts need several windows at 96 tokens
    assert all(len(f["input_ids"]) <= 96 for f in encoded.features)
    found, exact = set(), 0
    for row, window in enumerate(encoded.windows):
        start, end = encoded.targets[row].tolist()
        if start == window.cls_index:
            assert end == window.cls_index
            continue
        context, answer = examples.pairs[window.example], examples.labels[window.example][0]
        recovered = context[window.offsets[start][0] : window.offsets[end][1]]
        assert answer["text"] in recovered  # the token span covers the answer ...
        tokens = [o for o in window.offsets if o is not None]
        if answer["start"] in {o[0] for o in tokens} and answer["start"] + len(answer["text"]) in {o[1] for o in tokens}:
            assert recovered == answer["text"]  # ... exactly, unless the answer cuts a token ("8" of "18")
            exact += 1
        found.add(window.example)
    assert found == set(range(len(examples)))  # every answer lies entirely inside some window
    assert exact > 1400


def test_squad_normalisation_and_scores_match_the_official_definition():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert exact_match("the Broncos.", "Broncos") == 1.0
    assert exact_match("Denver", "Broncos") == 0.0
    assert token_f1("Denver Broncos", "the Broncos") == pytest.approx(2 / 3)  # precision 1/2, recall 1
    assert token_f1("", "") == 1.0 and token_f1("Broncos", "") == 0.0  # v2: only "no answer" matches none
    scores = squad_scores(["Denver Broncos", "Carolina", ""], [["Broncos", "Denver Broncos"], ["Panthers"], []])
    assert scores == {"exact_match": pytest.approx(2 / 3), "f1": pytest.approx(2 / 3)}


def test_null_threshold_picks_the_best_cut():
    answers = [Answer("Broncos", 0, 7, logit, 0.5) for logit in (5.0, 1.0, 4.0)]
    nulls = [0.0, 3.0, 5.0]  # gaps (null - span): -5, 2, 1; "no answer" where the gap exceeds the threshold
    assert best_null_threshold(answers, nulls, [["Broncos"], [], ["Broncos"]]) == 1.0  # only question 2
    assert best_null_threshold(answers, nulls, [["Broncos"], [], []]) == -5.0  # questions 2 and 3
    assert best_null_threshold(answers, nulls, [[], [], []]) < -5.0  # all
    assert best_null_threshold(answers, nulls, [["Broncos"]] * 3) >= 2.0  # none


@pytest.fixture(scope="module")
def qa_run(squad, tmp_path_factory):
    """A short run: 4 articles to train on (785 questions, one epoch), 1 held-out article to score."""
    folder = tmp_path_factory.mktemp("qa")
    train = squad_file(folder / "train.json", squad["data"][10:14])  # Huguenot ... 1973 oil crisis
    dev = squad_file(folder / "dev.json", squad["data"][8:9])  # Sky (United Kingdom): 108 questions
    model = stellartune.fit(train=train, eval=dev, output=str(folder / "run"), max_length=192, epochs=1,
                            batch_size=16, lr=3e-4, progress=False)
    return folder, model


def test_short_training_raises_dev_f1_well_above_the_untrained_model(qa_run):
    folder, model = qa_run
    untrained = stellartune.fit(train=str(folder / "train.json"), eval=str(folder / "dev.json"),
                                output=str(folder / "untrained"), max_length=192, max_steps=1, lr=1e-9,
                                progress=False)
    assert untrained.metrics["f1"] < 0.12
    assert model.metrics["f1"] > 0.25 and model.metrics["exact_match"] > 0.15  # 0.34 and 0.23 when written
    assert model.task.to_dict()["unanswerable"] is False and "null_threshold" not in model.metrics


def test_predictions_scored_against_gold_give_the_runs_metrics(qa_run):
    folder, model = qa_run
    examples = read_examples(str(folder / "dev.json"))
    predicted = stellartune.load(model.run_dir).predict(examples.texts, examples.pairs, batch_size=32)  # eval's batches
    scores = squad_scores([p["answer"] for p in predicted], [[a["text"] for a in gold] for gold in examples.labels])
    assert scores == {"exact_match": model.metrics["exact_match"], "f1": model.metrics["f1"]}
    saved = [json.loads(line)["answer"] for line in (model.run_dir / "eval_predictions.jsonl").read_text().splitlines()]
    assert [p["answer"] for p in predicted] == saved


def test_predictions_are_exact_characters_of_the_context(qa_run):
    _, model = qa_run
    context = "Super Bowl 50 was played on February 7, 2016, at Levi's Stadium in Santa Clara, California."
    (answer,) = stellartune.load(model.run_dir).predict(["Where was Super Bowl 50 played?"], [context])
    assert answer["answer"] and context[answer["start"] : answer["end"]] == answer["answer"]
    assert 0 < answer["score"] <= 1


def test_saved_model_is_a_standard_question_answering_checkpoint(qa_run):
    """transformers 5 removed pipeline("question-answering"); the folder loads with AutoModelForQuestionAnswering,
    whose own start/end logits give the same best span as stellartune (single-window contexts), widened to
    whole words as that pipeline did."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    folder, model = qa_run
    plain = AutoModelForQuestionAnswering.from_pretrained(model.run_dir / "model").eval()
    plain_tokenizer = AutoTokenizer.from_pretrained(model.run_dir / "model")
    examples = read_examples(str(folder / "dev.json"))
    one_window = [i for i, (q, c) in enumerate(zip(examples.texts, examples.pairs))
                  if len(plain_tokenizer(q, c)["input_ids"]) <= model.max_length]
    examples = examples.subset(one_window[:30])
    assert len(examples) == 30
    ours = model.predict(examples.texts, examples.pairs, precision="fp32")  # as `plain` runs
    for question, context, prediction in zip(examples.texts, examples.pairs, ours):
        inputs = plain_tokenizer(question, context, return_tensors="pt", return_offsets_mapping=True)
        offsets = inputs.pop("offset_mapping")[0]
        with torch.no_grad():
            outputs = plain(**inputs)
        in_context = torch.tensor([s == 1 for s in inputs.sequence_ids(0)])
        start, end = outputs.start_logits[0], outputs.end_logits[0]
        scores = start[:, None] + end[None, :]
        allowed = torch.triu(torch.ones_like(scores, dtype=torch.bool)) & ~torch.triu(
            torch.ones_like(scores, dtype=torch.bool), diagonal=30) & in_context[:, None] & in_context[None, :]
        first, last = divmod(int(scores.masked_fill(~allowed, -torch.inf).argmax()), len(start))
        words = inputs.word_ids(0)
        word_start = min(int(o[0]) for o, w, c in zip(offsets, words, in_context) if c and w == words[first])
        word_end = max(int(o[1]) for o, w, c in zip(offsets, words, in_context) if c and w == words[last])
        assert (prediction["start"], prediction["end"]) == (word_start, word_end)


def test_cli_predicts_from_a_question_and_from_a_squad_file(qa_run, tmp_path):
    folder, model = qa_run
    command = [sys.executable, "-m", "stellartune.cli", "predict", "--model", str(model.run_dir)]
    context = "The Normans were the people who gave their name to Normandy, a region in France."
    single = subprocess.run(command + ["--question", "Which region is named after the Normans?", "--context", context],
                            capture_output=True, text=True, check=True)
    record = json.loads(single.stdout)
    assert context[record["start"] : record["end"]] == record["answer"]
    out = tmp_path / "answers.jsonl"
    subprocess.run(command + ["--input", str(folder / "dev.json"), "--output", str(out)], check=True,
                   capture_output=True)
    assert len(out.read_text().splitlines()) == 108
    missing = subprocess.run(command + ["--question", "Who?"], capture_output=True, text=True)
    assert missing.returncode == 2 and "--question with --context" in missing.stderr


def test_unanswerable_questions_train_and_tune_a_null_threshold(squad, tmp_path):
    rows = [{"question": qa["question"], "context": paragraph["context"],
             "answer_text": qa["answers"][0]["text"] if i % 3 else "",
             "answer_start": qa["answers"][0]["answer_start"] if i % 3 else None}
            for i, (paragraph, qa) in enumerate((p, q) for p in squad["data"][2]["paragraphs"] for q in p["qas"])]
    data = tmp_path / "v2.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    model = stellartune.fit(train=str(data), task="qa", output=str(tmp_path / "run"), max_length=192, max_steps=3,
                            batch_size=8, progress=False)
    assert model.task.unanswerable and "null_threshold" in model.metrics
    saved = json.loads((tmp_path / "run" / "model" / "stellartune.json").read_text())
    assert saved["task"]["null_threshold"] == model.task.null_threshold

    # predict applies the saved threshold: "no answer" exactly where the null score beats the span by more
    reloaded = stellartune.load(tmp_path / "run")
    assert reloaded.task.null_threshold == model.task.null_threshold
    questions, contexts = [r["question"] for r in rows[:40]], [r["context"] for r in rows[:40]]
    logits, encoded = reloaded.run(Examples(questions, contexts, None, [""] * 40, reloaded.columns), batch_size=64)
    spans, nulls = reloaded.task.answers(logits, encoded)
    gaps = [null - span.logit for span, null in zip(spans, nulls)]
    predicted = reloaded.predict(questions, contexts)
    assert [p["answer"] == "" for p in predicted] == [gap > reloaded.task.null_threshold for gap in gaps]
    for threshold, empty in ((min(gaps) - 1, 40), (max(gaps) + 1, 0)):
        reloaded.task.null_threshold = threshold
        assert sum(p["answer"] == "" for p in reloaded.predict(questions, contexts)) == empty


def test_the_best_span_over_all_windows_wins(squad, tokenizer):
    """A context cut into windows: the answer comes from the window with the highest start + end logit,
    not from the first window, nor from the window whose span is most probable within itself."""
    paragraph = squad["data"][0]["paragraphs"][0]
    examples = Examples([paragraph["qas"][0]["question"]], [paragraph["context"]], None, ["q"], None)
    task = QuestionAnsweringTask(doc_stride=16, max_answer_length=30)
    encoded = task.encode(examples, tokenizer, max_length=64)
    first, last = encoded.windows[0], encoded.windows[-1]
    assert len(encoded.windows) >= 3
    token = lambda window: next(i for i, o in enumerate(window.offsets) if o is not None) + 2
    logits = torch.zeros(len(encoded.windows), 64, 2)
    logits[0], logits[0, token(first)] = -30.0, 10.0  # a sharp span: sum 20, nearly all of its window's probability
    logits[-1], logits[-1, token(last)] = 11.9, 12.0  # sum 24 among many rivals: a low probability
    (answer,), _ = task.answers(logits, encoded)
    assert (answer.start, answer.end) == last.word_span(token(last), token(last)) and answer.score < 0.1
    assert answer.text == paragraph["context"][answer.start : answer.end]
    logits[0, token(first)] = 13.0  # now the first window's span has the highest sum
    (answer,), _ = task.answers(logits, encoded)
    assert (answer.start, answer.end) == first.word_span(token(first), token(first)) != (
        last.word_span(token(last), token(last)))


def test_squad_v2_files_and_the_answers_field_are_read(squad, tmp_path):
    article = json.loads(json.dumps(squad["data"][0]))
    article["paragraphs"] = article["paragraphs"][:1]
    qas = article["paragraphs"][0]["qas"]
    qas[1].update(is_impossible=True, answers=[], plausible_answers=qas[1]["answers"])
    examples = read_examples(squad_file(tmp_path / "v2.json", [article]))
    assert examples.labels[1] == [] and examples.labels[0][0]["text"] == qas[0]["answers"][0]["text"]
    assert len(examples) == len(qas)

    context = article["paragraphs"][0]["context"]
    gold = qas[0]["answers"][0]
    rows = [{"question": qas[0]["question"], "context": context,
             "answers": {"text": [gold["text"]], "answer_start": [gold["answer_start"]]}},  # Hugging Face's squad
            {"question": "Who won?", "context": context, "answers": {"text": [], "answer_start": []}}]
    (tmp_path / "hf.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    examples = read_examples(str(tmp_path / "hf.jsonl"))
    assert examples.labels == [[{"text": gold["text"], "start": gold["answer_start"]}], []]


@pytest.mark.parametrize("row, message", [
    ({"question": "Q?", "context": "Paris is in France.", "answer_text": "Paris", "answer_start": 3},
     "answer 'Paris' is not at character 3 of the context"),
    ({"question": "Q?", "context": "Paris is in France.", "answer_text": "Lyon", "answer_start": None},
     "answer 'Lyon' does not occur in the context"),
    ({"question": "", "context": "Paris is in France.", "answer_text": "Paris", "answer_start": 0},
     'column "question": empty text'),
])
def test_bad_answers_name_the_row(tmp_path, row, message):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"question": "Where?", "context": "In Paris.", "answer_text": "Paris",
                                "answer_start": 3}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(StellarError, match=f"bad.jsonl, line 2.*{message}"):
        read_examples(str(data))


def test_question_longer_than_the_window_is_an_error(tokenizer, tmp_path):
    data = tmp_path / "long.jsonl"
    data.write_text(json.dumps({"question": "why " * 200, "context": "Because.", "answer_text": "Because",
                                "answer_start": 0}))
    with pytest.raises(StellarError, match=r"long.jsonl, line 1: the question is 200 tokens.*--max-length 128"):
        QuestionAnsweringTask(doc_stride=32).encode(read_examples(str(data)), tokenizer, 128)
