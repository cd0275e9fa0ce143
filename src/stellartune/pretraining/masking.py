"""Which tokens the MLM objective predicts, and how they are hidden (BERT's 80/10/10).

Selection works on units: single tokens (`--masking token`), words (`whole-word`) or runs of
words with SpanBERT's clipped geometric lengths (`span`). Every mode fills the same budget,
`--mask-prob` of the maskable tokens (special and padding tokens are never chosen), rounded
stochastically so that the expected fraction is exact. Every chosen token then becomes [MASK]
(80%), a random token (10%) or stays as it is (10%).

transformers' DataCollatorForLanguageModeling is not used: in 5.x its whole-word mode drops the
80/10/10 split (always [MASK]) and finds words from character offsets that packed blocks no
longer have, and it has no span masking; SBO also needs each span's boundaries.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

IGNORED = -100  # label of tokens that are not predicted (PyTorch's cross-entropy ignore_index)
MASK_SHARE, RANDOM_SHARE = 0.8, 0.1  # of the chosen tokens; the remaining 10% stay unchanged
SPAN_P, LONGEST_SPAN = 0.2, 10  # SpanBERT: span length in words ~ Geometric(0.2), clipped at 10


def span_length_distribution(p: float = SPAN_P, longest: int = LONGEST_SPAN) -> np.ndarray:
    """P(length = 1..longest) ∝ p(1-p)^(length-1), as SpanBERT clips it (mean 3.8 words for p=0.2)."""
    weights = p * (1 - p) ** np.arange(longest)
    return weights / weights.sum()


SPAN_LENGTHS = span_length_distribution()


@dataclass
class Span:
    """Chosen tokens start..end-1 (one unit, or several adjacent ones in span mode)."""

    start: int
    end: int
    drawn: int  # units drawn for it; fewer when the budget, a neighbour or the text's end cut it short


def stochastic_round(rng: np.random.Generator, value: float) -> int:
    return int(value) + int(rng.random() < value - int(value))


def selection_units(maskable: np.ndarray, word_starts: np.ndarray, whole_words: bool) -> list[list[int]]:
    """[start, end) token ranges that are chosen together: words, or single tokens."""
    units: list[list[int]] = []
    for i in np.flatnonzero(maskable).tolist():
        if whole_words and not word_starts[i] and units and units[-1][1] == i:
            units[-1][1] = i + 1
        else:
            units.append([i, i + 1])
    return units


def select_spans(rng: np.random.Generator, maskable: np.ndarray, word_starts: np.ndarray, mode: str,
                 prob: float) -> list[Span]:
    """Draw units (span mode: a geometric number of adjacent words from a uniform start) until
    `prob` of the maskable tokens are chosen; a span stops early rather than overfill the budget."""
    units = selection_units(maskable, word_starts, whole_words=mode != "token")
    sizes = np.array([end - start for start, end in units])
    taken = np.zeros(len(units), dtype=bool)
    budget, used, spans = stochastic_round(rng, prob * maskable.sum()), 0, []
    while used < budget:
        fitting = np.flatnonzero(~taken & (sizes <= budget - used))
        if not len(fitting):
            break
        drawn = int(rng.choice(LONGEST_SPAN, p=SPAN_LENGTHS)) + 1 if mode == "span" else 1
        first = last = int(rng.choice(fitting))
        while (last - first + 1 < drawn and last + 1 < len(units) and not taken[last + 1]
               and units[last + 1][0] == units[last][1]  # adjacent: no special token between
               and used + units[last + 1][1] - units[first][0] <= budget):
            last += 1
        taken[first : last + 1] = True
        spans.append(Span(units[first][0], units[last][1], drawn))
        used += units[last][1] - units[first][0]
    return spans


def corrupt(rng: np.random.Generator, ids: np.ndarray, chosen: np.ndarray, mask_id: int,
            replacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input ids with the chosen positions hidden 80/10/10, labels: the original id where chosen)."""
    labels = np.full_like(ids, IGNORED)
    labels[chosen] = ids[chosen]
    corrupted = ids.copy()
    draw = rng.random(len(chosen))
    corrupted[chosen[draw < MASK_SHARE]] = mask_id
    randomised = chosen[(draw >= MASK_SHARE) & (draw < MASK_SHARE + RANDOM_SHARE)]
    corrupted[randomised] = rng.choice(replacements, len(randomised))
    return corrupted, labels


class MaskingCollator:
    """Turns blocks (`input_ids`, `token_type_ids`, `word_starts`, optional `nsp_label`) into a
    padded, masked batch; with `spans`, also each chosen token's span boundaries and offset (SBO), as
    `span_bounds` (3 x tokens per block: left, right, offset)."""

    def __init__(self, tokenizer, mode: str, prob: float, spans: bool = False):
        self.mode, self.prob, self.spans = mode, prob, spans
        self.mask_id, self.pad_id = tokenizer.mask_token_id, tokenizer.pad_token_id or 0
        self.special_ids = np.array(sorted(set(tokenizer.all_special_ids)))
        # random replacements are real tokens: a stray [CLS] or [PAD] inside text teaches nothing
        self.replacements = np.setdiff1d(np.arange(len(tokenizer)), self.special_ids)

    def mask_one(self, rng: np.random.Generator, feature: dict) -> dict[str, np.ndarray]:
        ids = np.asarray(feature["input_ids"])
        maskable = ~np.isin(ids, self.special_ids)
        spans = select_spans(rng, maskable, np.asarray(feature["word_starts"], dtype=bool), self.mode, self.prob)
        chosen = np.array([i for span in spans for i in range(span.start, span.end)], dtype=int)
        corrupted, labels = corrupt(rng, ids, chosen, self.mask_id, self.replacements)
        row = {"input_ids": corrupted, "labels": labels, "token_type_ids": np.asarray(feature["token_type_ids"])}
        if self.spans:  # the tokens just outside each span, and each token's place in it
            left, right, offset = (np.zeros_like(ids) for _ in range(3))
            for span in spans:
                left[span.start : span.end] = span.start - 1
                right[span.start : span.end] = span.end
                offset[span.start : span.end] = np.arange(span.end - span.start)
            row["span_bounds"] = np.stack([left, right, offset])  # 3 x tokens
        return row

    def __call__(self, features: list[dict], rngs) -> dict[str, torch.Tensor]:
        """`rngs`: one generator per feature (or one repeated): fixed seeds give fixed masks."""
        rows = [self.mask_one(rng, feature) for rng, feature in zip(rngs, features)]
        width = max(len(row["input_ids"]) for row in rows)
        fill = {"input_ids": self.pad_id, "labels": IGNORED}
        batch = {key: torch.tensor(np.stack([np.pad(row[key], [(0, 0)] * (row[key].ndim - 1)
                                                    + [(0, width - row[key].shape[-1])],
                                                    constant_values=fill.get(key, 0)) for row in rows]))
                 for key in rows[0]}
        batch["attention_mask"] = torch.tensor([[1] * len(row["input_ids"]) + [0] * (width - len(row["input_ids"]))
                                                for row in rows])
        if "nsp_label" in features[0]:
            batch["nsp_label"] = torch.tensor([feature["nsp_label"] for feature in features])
        return batch


def fresh_masks() -> itertools.repeat:
    """A generator for one training batch, drawn from torch's RNG: new masks every epoch, and a
    resumed run (which restores that RNG from its checkpoint) draws the same ones again."""
    return itertools.repeat(np.random.default_rng(int(torch.randint(0, 2**62, ()).item())))


def fixed_masks(seed: int, indices: list[int]) -> list[np.random.Generator]:
    """One generator per held-out block: the same masks at every evaluation and in every run."""
    return [np.random.default_rng([seed, index]) for index in indices]
