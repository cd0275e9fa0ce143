"""Token classification (NER): a BIO tag per word, learned on subword tokens.

Alignment: a word's tag goes on its first subword; the other subwords are left out of the loss
(`--subword-labels first`, the default) or get the word's tag with B- turned into I- (`all`).
Evaluation and prediction always read a word's tag from its first subword.

A sentence longer than --max-length subwords is split at word boundaries into windows that are
encoded separately and joined again, so no word is ever cut off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from typing_extensions import TypedDict  # pydantic reads it on Python < 3.12 (served response schema)

from ..data.encoded import Encoded
from ..data.examples import Columns, Examples
from ..data.readers import Table
from ..data.tag_schemes import entities, split_tag, to_bio
from ..data.token_examples import (
    build_token_examples,
    is_token_table,
    looks_like_conll,
    resolve_token_columns,
    split_words,
    token_table_chunks,
)
from ..errors import StellarError, some
from ..evaluation.metrics import entity_metrics
from ..evaluation.sections import Section
from ..evaluation.views import entity_sections
from ..models.head_kinds import TOKEN_HEAD
from .base import Task

IGNORE = -100  # label of positions outside the loss (special tokens, padding, later subwords)


class Entity(TypedDict):
    text: str
    label: str
    start: int  # characters in the input text
    end: int
    score: float


@dataclass
class Window:
    example: int  # which sentence
    first_word: int  # index of its first word in the sentence
    word_starts: list[int]  # token position of each word's first subword


class TokenClassificationTask(Task):
    name = "ner"
    head_kind = TOKEN_HEAD  # one output per token: AutoModelForTokenClassification
    options = ("subword_labels", "tag_column")
    one_output_per_text = False
    head_description = "new token-classification head"
    lr_scale = 2.0  # measured on CoNLL-2003 slices: per-token heads learn best at twice the rate
    pipeline_task = "token-classification"
    primary_metric = "f1"
    prediction_fields = {"entities": list[Entity], "tags": list[str]}

    def __init__(self, labels: list[str], subword_labels: str = "first"):
        self.labels = labels
        self.subword_labels = subword_labels
        self.index = {label: i for i, label in enumerate(labels)}

    def report_sections(self, records: list[dict]) -> list[Section]:
        return entity_sections(records)

    @classmethod
    def read_chunks(cls, source, rows: int | None, tag_column: int = -1) -> Iterator[Table]:
        return token_table_chunks(source, rows, tag_column)

    @classmethod
    def claims_file(cls, source, tag_column: int = -1) -> bool:
        return looks_like_conll(source, tag_column)

    @classmethod
    def recognises(cls, table: Table) -> bool:
        return is_token_table(table)

    @classmethod
    def find_columns(cls, table: Table, text=None, pair=None, label=None, need_label: bool = True) -> Columns:
        return resolve_token_columns(table, text, label, need_label)

    @classmethod
    def build_examples(cls, table: Table, columns: Columns, delimiter: str = ",", need_label: bool = True
                       ) -> Examples:
        return build_token_examples(table, columns, need_label)

    @classmethod
    def from_examples(cls, train: Examples, config) -> TokenClassificationTask:
        kinds = sorted({split_tag(tag)[1] for tags in train.labels for tag in tags} - {""})
        if not kinds:
            raise StellarError(f"{train.positions[0].rsplit(', ', 1)[0]}: every training tag is O; "
                               "a tagger needs at least one entity type")
        return cls(["O"] + [f"{prefix}-{kind}" for kind in kinds for prefix in "BI"], config.subword_labels)

    @classmethod
    def label_names(cls, label) -> set[str]:
        """The entity types of a sentence's tags."""
        return {split_tag(tag)[1] for tag in label} - {""} if isinstance(label, list) else set()

    def check_known_labels(self, examples: Examples) -> str | None:
        """Gold entities of a type the model never saw are scored as missed, as conlleval does; the note
        counts them."""
        known = {split_tag(label)[1] for label in self.labels}
        unseen = Counter(kind for tags in examples.labels or [] for kind, _, _ in entities(tags) if kind not in known)
        if not unseen:
            return None
        return (f"{sum(unseen.values())} gold entit{'y' if sum(unseen.values()) == 1 else 'ies'} of a type never seen "
                f"in training ({some(f'{kind}: {n}' for kind, n in unseen.most_common())}) count as missed")

    # --- data ----------------------------------------------------------------------------
    def prepare(self, texts: list[str], pairs: list[str] | None, columns) -> Examples:
        """Raw text split into words here, keeping each word's characters for the entity spans."""
        examples = super().prepare(texts, pairs, columns)
        words = [split_words(text) for text in texts]
        empty = next((p for p, (w, _) in zip(examples.positions, words) if not w), None)
        if empty:
            raise StellarError(f"{empty}: no words to tag")
        return replace(examples, words=[w for w, _ in words], offsets=[o for _, o in words])

    def encode(self, examples: Examples, tokenizer, max_length: int) -> Encoded:
        # gold tags the model has no output for (types never seen in training) get ids after its labels
        gold_only = sorted({tag for tags in examples.labels or [] for tag in tags} - set(self.labels))
        index = {**self.index, **{tag: len(self.labels) + i for i, tag in enumerate(gold_only)}}
        budget = max_length - tokenizer.num_special_tokens_to_add()
        counts = tokenizer(examples.words, is_split_into_words=True, add_special_tokens=False)
        features, windows, targets, split = [], [], [], 0
        for example, words in enumerate(examples.words):
            sizes = [0] * len(words)
            for word in counts.word_ids(example):
                sizes[word] += 1
            spans = word_windows(sizes, budget)
            split += len(spans) > 1
            for first, last in spans:
                encoded = tokenizer(words[first:last], is_split_into_words=True, truncation=True,
                                    max_length=max_length)
                word_ids = encoded.word_ids()
                features.append(dict(encoded))
                starts = [word_ids.index(w) if w in word_ids else None for w in range(last - first)]
                windows.append(Window(example, first, starts))
                if examples.labels is not None:
                    targets.append(self.subword_targets(examples.labels[example][first:last], word_ids, index))
        padded = None
        if targets:
            padded = torch.full((len(targets), max(map(len, targets))), IGNORE)
            for row, labels in enumerate(targets):
                padded[row, : len(labels)] = torch.tensor(labels)
        return Encoded(features, [len(f["input_ids"]) for f in features], padded, truncated=0,
                       windows=windows, split=split, target_names=self.labels + gold_only)

    def subword_targets(self, tags: list[str], word_ids: list[int | None], index: dict[str, int]) -> list[int]:
        labels, previous = [], None
        for word in word_ids:
            if word is None or (word == previous and self.subword_labels == "first"):
                labels.append(IGNORE)
            elif word == previous:  # a later piece of the word: inside the entity, never its start
                labels.append(index[tags[word].replace("B-", "I-", 1)])
            else:
                labels.append(index[tags[word]])
            previous = word
        return labels

    def word_tags(self, position_labels: torch.Tensor, encoded: Encoded, scores: torch.Tensor | None = None):
        """Per sentence, the tag (and score) each word's first subword carries; windows joined again."""
        names = encoded.target_names or self.labels
        sentences: dict[int, list] = {}
        for row, window in enumerate(encoded.windows):
            tags = sentences.setdefault(window.example, [])
            for start in window.word_starts:
                if start is None:  # a word the tokenizer turns into nothing (a lone control character)
                    tags.append(("O", 1.0))
                else:
                    label = int(position_labels[row, start])
                    tags.append((names[label], float(scores[row, start]) if scores is not None else 1.0))
        return [sentences[i] for i in sorted(sentences)]

    # --- training and evaluation -----------------------------------------------------------------
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean over each sentence's labelled positions, one value per sentence (window)."""
        targets = targets[:, : logits.shape[1]]
        per_token = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
        return per_token.sum(1) / (targets != IGNORE).sum(1).clamp(min=1)

    def prior_bias(self, targets: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(targets[targets != IGNORE], minlength=len(self.labels)).float().clamp(min=1)
        return torch.log(counts / counts.sum())

    def metrics(self, logits: torch.Tensor, encoded: Encoded) -> dict:
        predicted = [[tag for tag, _ in words] for words in self.word_tags(logits.argmax(-1), encoded)]
        gold = [[tag for tag, _ in words] for words in self.word_tags(encoded.targets, encoded)]
        return entity_metrics([to_bio(tags) for tags in predicted], gold)

    def predictions(self, logits: torch.Tensor, encoded: Encoded, examples: Examples) -> list[dict]:
        """Entities as character spans of each input text: text, label, start, end, score."""
        probabilities = torch.softmax(logits.float(), -1)
        best, labels = probabilities.max(-1)
        results = []
        for example, words in enumerate(self.word_tags(labels, encoded, best)):
            tags, scores = [t for t, _ in words], [s for _, s in words]
            offsets, text = examples.offsets[example], examples.texts[example]
            spans = [{"text": text[offsets[first][0]: offsets[last - 1][1]], "label": kind,
                      "start": offsets[first][0], "end": offsets[last - 1][1],
                      "score": sum(scores[first:last]) / (last - first)}
                     for kind, first, last in entities(tags)]
            results.append({"entities": spans, "tags": to_bio(tags)})
        return results

    # --- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"task": self.name, "labels": self.labels, "subword_labels": self.subword_labels}

    @classmethod
    def from_dict(cls, data: dict) -> TokenClassificationTask:
        return cls(data["labels"], data.get("subword_labels", "first"))


def word_windows(sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """(first, last + 1) word ranges whose subwords fit the budget; a single longer word is cut alone."""
    spans, first, used = [], 0, 0
    for index, size in enumerate(sizes):
        if used + size > budget and index > first:
            spans.append((first, index))
            first, used = index, 0
        used += size
    spans.append((first, len(sizes)))
    return spans
