"""Extractive question answering (SQuAD): predict the start and end token of the answer in the context.

Input is `[CLS] question [SEP] context [SEP]`. A context longer than --max-length is cut into
overlapping windows (--doc-stride tokens shared by neighbours), each keeping the character
offsets of its context tokens. In training a window is labelled with the answer's token span,
or with CLS when the answer is not entirely inside it (and for unanswerable questions).

Post-processing searches, in every window, all spans that lie inside the context, do not run
backwards and are at most --max-answer-length tokens long, and keeps the best-scoring one over
all windows of a question (start logit + end logit). That is the exact maximum, not the n-best
approximation of run_qa.py. The answer is then widened to whole words, as the question-answering
pipeline does ("Cobham", not the "bham" of a subword). With unanswerable questions in training (SQuAD v2) the answer is
empty when the null score (CLS, CLS) beats the best span by more than a threshold tuned on the
evaluation data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.encoded import Encoded, FeatureTargets, FeatureWindows, ReadTexts
from ..data.examples import Columns, Examples
from ..data.qa_examples import (
    build_qa_examples,
    is_qa_table,
    flatten_squad,
    resolve_qa_columns,
)
from ..data.readers import Table
from ..errors import StellarError
from ..evaluation.sections import Section
from ..evaluation.squad import best_over_gold, squad_scores, token_f1
from ..evaluation.views import answer_sections
from ..models.head_kinds import SPAN_HEAD
from .base import Task

QA_CHUNK = 1000  # questions tokenized at a time (and stored as one part)


@dataclass
class ContextWindow:
    example: int  # which question
    offsets: list[tuple[int, int] | None]  # character span of each context token; None elsewhere
    words: list[int | None]  # which word of its text each token belongs to
    cls_index: int

    @classmethod
    def of(cls, example: int, features: dict) -> ContextWindow:
        """The window stored in its features (`features`): -1 for None."""
        offsets = [(start, end) if start >= 0 else None
                   for start, end in zip(features["context_starts"], features["context_ends"])]
        return cls(example, offsets, [w if w >= 0 else None for w in features["token_words"]], features["cls_index"])

    def features(self) -> dict:
        """What `of` makes it again from."""
        return {"context_starts": [o[0] if o else -1 for o in self.offsets],
                "context_ends": [o[1] if o else -1 for o in self.offsets],
                "token_words": [-1 if w is None else w for w in self.words], "cls_index": self.cls_index}

    def word_span(self, first: int, last: int) -> tuple[int, int]:
        """Characters from the start of token `first`'s word to the end of token `last`'s word."""
        begin = min(o[0] for o, w in zip(self.offsets, self.words) if o and w == self.words[first])
        finish = max(o[1] for o, w in zip(self.offsets, self.words) if o and w == self.words[last])
        return begin, finish


@dataclass
class Answer:
    text: str
    start: int | None  # characters in the context; None for "no answer"
    end: int | None
    logit: float  # start + end logit, comparable across windows
    score: float  # probability of the span within its window


@dataclass
class Span:
    """The best span of one window, in tokens."""

    logit: float
    row: int
    first: int
    last: int
    score: float


class QuestionAnsweringTask(Task):
    name = "qa"
    options = ("doc_stride", "max_answer_length")
    input_names = ("questions", "contexts")
    needs_pairs = True
    prediction_fields = {"answer": str, "start": int | None, "end": int | None, "score": float}
    head_kind = SPAN_HEAD  # start and end logits per token: AutoModelForQuestionAnswering
    one_output_per_text = False
    default_max_length = 384  # contexts are paragraphs: run_qa.py's 384 rather than a sentence's 128
    head_description = "new span head (answer start and end)"
    lr_scale = 2.0  # measured on the SQuAD slice of benchmarks/zero_config.py: F1 42.5 at 1e-4, 45.5 at 2e-4
    pipeline_task = "question-answering"
    primary_metric = "f1"
    stored = True
    built_labels = "answers"  # [{"text", "start"}, ...] per question
    labels = ["start", "end"]  # the two outputs per token

    def __init__(self, doc_stride: int = 128, max_answer_length: int = 30, unanswerable: bool = False,
                 null_threshold: float = 0.0):
        self.doc_stride, self.max_answer_length = doc_stride, max_answer_length
        self.unanswerable = unanswerable  # SQuAD v2: "no answer" is a possible prediction
        self.null_threshold = null_threshold

    @classmethod
    def from_examples(cls, train: Examples, config) -> QuestionAnsweringTask:
        return cls(config.doc_stride, config.max_answer_length, unanswerable=any(not a for a in train.labels))

    def report_sections(self, records: list[dict]) -> list[Section]:
        return answer_sections(records)

    @classmethod
    def adopt(cls, table: Table) -> Table:
        return flatten_squad(table) if "paragraphs" in table.columns else table

    @classmethod
    def recognises(cls, table: Table) -> bool:
        return is_qa_table(table)

    @classmethod
    def find_columns(cls, table: Table, text=None, pair=None, label=None, need_label: bool = True) -> Columns:
        return resolve_qa_columns(table, text, pair, label, need_label)

    @classmethod
    def build_examples(cls, table: Table, columns: Columns, delimiter: str = ",", need_label: bool = True
                       ) -> Examples:
        return build_qa_examples(table, columns, need_label)

    # --- data ----------------------------------------------------------------------------
    def prepare(self, texts: list[str], pairs: list[str] | None, columns) -> Examples:
        if pairs is None or len(pairs) != len(texts):
            raise StellarError("question answering needs one context per question (pairs=...)")
        return super().prepare(texts, pairs, columns)

    def encode(self, examples: Examples, tokenizer, max_length: int) -> Encoded:
        if not tokenizer.is_fast:
            raise StellarError(f"{type(tokenizer).__name__}: question answering needs a fast tokenizer (it maps "
                               "answers to tokens through character offsets)")
        answered = examples.labels is not None
        parts = ((start, self.windows(tokenizer, examples, range(start, min(start + QA_CHUNK, len(examples))),
                                      max_length))
                 for start in range(0, len(examples), QA_CHUNK))
        if examples.store is None:
            read = ReadTexts.joined(parts)
        else:
            read = examples.store.tokens(examples.texts, f"qa windows|{max_length}|{self.doc_stride}|{answered}",
                                         tokenizer, parts)
        targets = FeatureTargets(read.features, "answer_span", 0) if answered else None
        return Encoded(read.features, read.lengths, targets, truncated=0, split=read.cut, source=examples,
                       windows=FeatureWindows(read, ContextWindow.of), note=read.note)

    def windows(self, tokenizer, examples: Examples, rows: range, max_length: int) -> ReadTexts:
        """The windows of some questions: token ids, where the context's tokens are and, when answered, the
        first and last token of the answer ("answer_span"; CLS twice where it is not in the window)."""
        questions, contexts = examples.texts[rows.start:rows.stop], examples.pairs[rows.start:rows.stop]
        answers = None if examples.labels is None else examples.labels[rows.start:rows.stop]
        self.check_room(questions, lambda i: examples.positions[rows.start + i], tokenizer, max_length)
        encoded = tokenizer(questions, contexts, truncation="only_second", max_length=max_length,
                            stride=self.doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
        keep = [k for k in encoded.keys() if k not in ("offset_mapping", "overflow_to_sample_mapping")]
        features = []
        for row, example in enumerate(encoded["overflow_to_sample_mapping"]):
            sequence = encoded.sequence_ids(row)
            offsets = [tuple(o) if s == 1 else None for o, s in zip(encoded["offset_mapping"][row], sequence)]
            ids = encoded["input_ids"][row]
            cls_index = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
            window = ContextWindow(example, offsets, encoded.word_ids(row), cls_index)
            features.append({**{k: encoded[k][row] for k in keep}, **window.features()})
            if answers is not None:
                gold = answers[example]
                features[-1]["answer_span"] = list(answer_tokens(window, gold[0]) if gold else (cls_index,) * 2)
        split = sum(count > 1 for count in Counter(encoded["overflow_to_sample_mapping"]).values())
        return ReadTexts(features, list(encoded["overflow_to_sample_mapping"]), split)

    def check_room(self, questions: list[str], position: Callable[[int], str], tokenizer, max_length: int) -> None:
        """A window must hold the whole question and more context than the overlap, or no window fits."""
        room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - self.doc_stride
        lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
        longest = int(np.argmax(lengths))
        if lengths[longest] >= room:
            raise StellarError(f"{position(longest)}: the question is {lengths[longest]} tokens, which "
                               f"leaves no room for context in --max-length {max_length} with --doc-stride "
                               f"{self.doc_stride}; raise --max-length or lower --doc-stride")

    # --- training and evaluation -----------------------------------------------------------------
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean of the start and end cross-entropies, one value per window."""
        logits = logits.float()
        start = F.cross_entropy(logits[..., 0], targets[:, 0], reduction="none")
        end = F.cross_entropy(logits[..., 1], targets[:, 1], reduction="none")
        return (start + end) / 2

    def answers(self, logits: torch.Tensor, encoded: Encoded) -> tuple[list[Answer], list[float]]:
        """Each question's best span over its windows, and its null score (lowest over windows)."""
        band = span_band(logits.shape[1], self.max_answer_length)
        best: dict[int, Span] = {}
        null: dict[int, float] = {}
        for row, window in enumerate(encoded.windows):
            candidate, null_logit = best_span(logits[row], window, band, row)
            current = best.get(window.example)
            if candidate and (current is None or candidate.logit > current.logit):
                best[window.example] = candidate
            null[window.example] = min(null.get(window.example, np.inf), null_logit)
        answers = []
        for example in range(len(encoded.source)):
            span = best.get(example)
            if span is None:  # no window had a valid span (an empty context)
                answers.append(Answer("", None, None, -np.inf, 0.0))
                continue
            begin, finish = encoded.windows[span.row].word_span(span.first, span.last)
            answers.append(Answer(encoded.source.pairs[example][begin:finish], begin, finish, span.logit, span.score))
        return answers, [null[i] for i in range(len(encoded.source))]

    def final_answers(self, answers: list[Answer], nulls: list[float]) -> list[Answer]:
        """With unanswerable questions, "no answer" wins where the null score beats the span by the threshold."""
        if not self.unanswerable:
            return answers
        return [Answer("", None, None, null, 1.0) if null - answer.logit > self.null_threshold else answer
                for answer, null in zip(answers, nulls)]

    threshold_name = "the no-answer threshold"  # what `calibrate` tunes, for the log

    @property
    def calibrated(self) -> bool:
        return self.unanswerable

    def calibrate(self, logits: torch.Tensor, encoded: Encoded) -> None:
        """With unanswerable questions: the null threshold that maximises F1 on these examples, kept and saved."""
        if self.unanswerable:
            answers, nulls = self.answers(logits, encoded)
            self.null_threshold = best_null_threshold(answers, nulls, gold_texts(encoded))

    def metrics(self, logits: torch.Tensor, encoded: Encoded) -> dict:
        """SQuAD Exact Match and F1 (fractions)."""
        answers, nulls = self.answers(logits, encoded)
        golds = gold_texts(encoded)
        scores = squad_scores([a.text for a in self.final_answers(answers, nulls)], golds)
        if self.unanswerable:
            scores["null_threshold"] = self.null_threshold
        return scores

    def predictions(self, logits: torch.Tensor, encoded: Encoded, examples: Examples) -> list[dict]:
        """{"answer", "start", "end", "score"} per question; character offsets into its context."""
        answers, nulls = self.answers(logits, encoded)
        return [{"answer": a.text, "start": a.start, "end": a.end, "score": a.score}
                for a in self.final_answers(answers, nulls)]

    # --- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"task": self.name, "doc_stride": self.doc_stride,
                "max_answer_length": self.max_answer_length, "unanswerable": self.unanswerable,
                "null_threshold": self.null_threshold}

    @classmethod
    def from_dict(cls, data: dict) -> QuestionAnsweringTask:
        return cls(data["doc_stride"], data["max_answer_length"], data["unanswerable"], data["null_threshold"])


def gold_texts(encoded: Encoded) -> list[list[str]]:
    return [[a["text"] for a in gold] for gold in encoded.source.labels]


def answer_tokens(window: ContextWindow, answer: dict) -> tuple[int, int]:
    """Token positions of the answer's first and last characters, or (CLS, CLS) when it is not all inside."""
    first_char, end_char = answer["start"], answer["start"] + len(answer["text"])
    inside = [i for i, o in enumerate(window.offsets) if o is not None]
    if window.offsets[inside[0]][0] > first_char or window.offsets[inside[-1]][1] < end_char:
        return window.cls_index, window.cls_index
    start = max(i for i in inside if window.offsets[i][0] <= first_char)
    end = min(i for i in inside if window.offsets[i][1] >= end_char)
    return start, end


def span_band(length: int, max_answer_length: int) -> torch.Tensor:
    """[i, j] is True for end j at or after start i and at most max_answer_length tokens on."""
    ones = torch.ones(length, length, dtype=torch.bool)
    return torch.triu(ones) & ~torch.triu(ones, diagonal=max_answer_length)


def best_span(logits: torch.Tensor, window: ContextWindow, band: torch.Tensor, row: int):
    """(best Span inside this window's context or None, null logit) from its (tokens, 2) logits."""
    size = len(window.offsets)
    start, end = logits[:size, 0], logits[:size, 1]
    null_logit = float(start[window.cls_index] + end[window.cls_index])
    in_context = torch.tensor([o is not None for o in window.offsets])
    allowed = band[:size, :size] & in_context[:, None] & in_context[None, :]
    if not allowed.any():
        return None, null_logit
    scores = (start[:, None] + end[None, :]).masked_fill(~allowed, -torch.inf)
    flat = int(scores.argmax())
    first, last = divmod(flat, size)
    # probability as the question-answering pipeline reports it: softmax over context tokens and CLS
    choices = in_context.clone()
    choices[window.cls_index] = True
    log_start = torch.log_softmax(start.masked_fill(~choices, -torch.inf), 0)
    log_end = torch.log_softmax(end.masked_fill(~choices, -torch.inf), 0)
    return Span(float(scores[first, last]), row, first, last, float(torch.exp(log_start[first] + log_end[last]))), null_logit


def best_null_threshold(answers: list[Answer], nulls: list[float], golds: list[list[str]]) -> float:
    """The threshold on (null logit - best span logit) that maximises total F1, as the official v2 script."""
    gaps = np.array([null - a.logit for a, null in zip(answers, nulls)])
    span_f1 = np.array([best_over_gold(token_f1, a.text, g) for a, g in zip(answers, golds)])
    null_f1 = np.array([float(not g) for g in golds])  # "no answer" is right only for unanswerable questions
    order = np.argsort(gaps)
    # predicting "no answer" for every question whose gap exceeds gaps[order[k]]: spans for the first k + 1
    totals = np.cumsum(span_f1[order]) + (null_f1[order].sum() - np.cumsum(null_f1[order]))
    best = int(np.argmax(totals))
    everything_null = null_f1.sum()
    return float(gaps[order[best]]) if totals[best] >= everything_null else float(gaps.min() - 1)
