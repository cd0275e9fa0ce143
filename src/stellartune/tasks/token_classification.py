"""Token classification (NER): a BIO tag per word, learned on subword tokens.

Alignment: a word's tag goes on its first subword; the other subwords are left out of the loss
(`--subword-labels first`, the default) or get the word's tag with B- turned into I- (`all`).
Evaluation and prediction always read a word's tag from its first subword.

A sentence longer than --max-length subwords is split at word boundaries into windows that are
encoded separately and joined again, so no word is ever cut off.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from typing_extensions import TypedDict  # pydantic reads it on Python < 3.12 (served response schema)

from ..data.encoded import Encoded, FeatureTargets, FeatureWindows, ReadTexts
from ..data.examples import Columns, Examples, distinct_labels
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
from ..models.quiet import quiet_transformers
from .base import Task

IGNORE = -100  # label of positions outside the loss (special tokens, padding, later subwords)
TAG_CHUNK = 1000  # sentences tokenized at a time (and stored as one part)


class Entity(TypedDict):
    text: str
    label: str
    start: int  # characters in the input text
    end: int
    score: float


@dataclass
class Window:
    example: int  # which sentence
    word_starts: list[int]  # token position of each word's first subword (-1: a word with no tokens)

    @classmethod
    def of(cls, example: int, features: dict) -> Window:
        return cls(example, features["word_first_token"])


class TokenClassificationTask(Task):
    name = "ner"
    head_kind = TOKEN_HEAD  # one output per token: AutoModelForTokenClassification
    options = ("subword_labels", "tag_column")
    one_output_per_text = False
    stored = True
    built_labels = "list"  # a tag per word
    head_description = "new token-classification head"
    lr_scale = 2.0  # measured on CoNLL-2003 slices: per-token heads learn best at twice the rate
    pipeline_task = "token-classification"
    primary_metric = "f1"
    prediction_fields = {"entities": list[Entity], "tags": list[str]}

    def __init__(self, labels: list[str], subword_labels: str = "first"):
        self.labels = labels
        self.subword_labels = subword_labels

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
        kinds = sorted({split_tag(tag)[1] for tags in distinct_labels(train.labels) for tag in tags} - {""})
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
        gold_only = sorted({tag for tags in distinct_labels(examples.labels or []) for tag in tags} - set(self.labels))
        names = self.labels + gold_only
        index = {tag: i for i, tag in enumerate(names)}
        words, labels = examples.words, examples.labels
        parts = ((start, self.windows(tokenizer, words[start:start + TAG_CHUNK],
                                      None if labels is None else labels[start:start + TAG_CHUNK], max_length, index))
                 for start in range(0, len(words), TAG_CHUNK))
        if examples.store is None:
            read = ReadTexts.joined(parts)
        else:  # the targets are stored with the token ids: their ids are part of the key
            read = examples.store.tokens(examples.texts, f"tag windows|{max_length}|{self.subword_labels}|"
                                         f"{json.dumps(names)}|{labels is not None}", tokenizer, parts)
        targets = FeatureTargets(read.features, "tag_ids", IGNORE) if labels is not None else None
        return Encoded(read.features, read.lengths, targets, truncated=0, windows=FeatureWindows(read, Window.of),
                       split=read.cut, target_names=names, note=read.note)

    def windows(self, tokenizer, words: list[list[str]], tags: list[list[str]] | None, max_length: int,
                index: dict[str, int]) -> ReadTexts:
        """The windows of some sentences: token ids, each word's first token ("word_first_token") and, when
        tagged, the target of each token ("tag_ids"). Tokenized together; only sentences too long for one window
        again, a window at a time."""
        budget = max_length - tokenizer.num_special_tokens_to_add()
        with quiet_transformers():  # "longer than the model's maximum": those are split below
            whole = tokenizer(words, is_split_into_words=True)
        features, text_of, split = [], [], 0
        for example, sentence in enumerate(words):
            sizes = [0] * len(sentence)
            for word in whole.word_ids(example):
                if word is not None:
                    sizes[word] += 1
            spans = word_windows(sizes, budget)
            split += len(spans) > 1
            for first, last in spans:
                if len(whole["input_ids"][example]) <= max_length:  # one window: the sentence as tokenized
                    encoded = {key: whole[key][example] for key in whole.keys()}
                    word_ids = whole.word_ids(example)
                else:
                    window = tokenizer(sentence[first:last], is_split_into_words=True, truncation=True,
                                       max_length=max_length)
                    encoded, word_ids = dict(window), window.word_ids()
                starts = {}
                for position, word in enumerate(word_ids):
                    if word is not None:
                        starts.setdefault(word, position)
                encoded["word_first_token"] = [starts.get(word, -1) for word in range(last - first)]
                if tags is not None:
                    encoded["tag_ids"] = self.subword_targets(tags[example][first:last], word_ids, index)
                features.append(encoded)
                text_of.append(example)
        return ReadTexts(features, text_of, split)

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
                if start < 0:  # a word the tokenizer turns into nothing (a lone control character)
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

    def prior_bias(self, targets: FeatureTargets) -> torch.Tensor:
        ids = targets.flat()
        counts = torch.from_numpy(np.bincount(ids[ids != IGNORE], minlength=len(self.labels))).float().clamp(min=1)
        return torch.log(counts / counts.sum())

    def metrics(self, logits: torch.Tensor, encoded: Encoded) -> dict:
        predicted = [[tag for tag, _ in words] for words in self.word_tags(logits.argmax(-1), encoded)]
        gold = [[tag for tag, _ in words] for words in self.word_tags(encoded.targets.all(), encoded)]
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
