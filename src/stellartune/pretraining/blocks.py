"""Unlabeled documents -> training blocks of at most --max-length tokens.

- packed (default): all documents as one token stream, a separator between documents, cut into
  full blocks (RoBERTa's FULL-SENTENCES); no token is lost to truncation or padding.
- line by line (`--no-packing`): one block per document, truncated.
- sentence pairs (`--nsp`): BERT's next sentence prediction input, [CLS] A [SEP] B [SEP], where B
  continues A in half the pairs and comes from another document in the other half (one of the same
  DOCUMENT_CHUNK documents: a corpus is made into blocks a chunk at a time).

Every block keeps, per token, whether a word starts there (from the tokenizer's word ids), so
that whole-word and span masking never split a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import numpy as np

from ..data.encoded import ReadTexts
from ..models.tokens import Piece, SpecialTokens, join, tokenize_pieces

IS_NEXT, RANDOM_NEXT = 0, 1  # NSP labels, as BERT numbers them
DOCUMENT_CHUNK = 10_000  # documents made into blocks at a time
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Packer:
    """Documents packed into full blocks as they come, a separator after each: what does not fill a block is
    carried over to the next documents (`last`: the final, shorter block)."""

    def __init__(self, special: SpecialTokens, max_length: int):
        self.special, self.size = special, max_length - special.extra(pair=False)
        self.rest = Piece([], [])

    def blocks(self, pieces: list[Piece]) -> list[dict]:
        separator = Piece([self.special.separator], [False])
        stream = join([self.rest, *(part for piece in pieces for part in (piece, separator))])
        full = len(stream) - len(stream) % self.size
        self.rest = stream.cut(full)
        return [self.special.wrap(stream.cut(start, start + self.size)) for start in range(0, full, self.size)]

    def last(self) -> list[dict]:
        return [self.special.wrap(self.rest)] if len(self.rest) else []


def line_blocks(pieces: list[Piece], special: SpecialTokens, max_length: int) -> tuple[list[dict], int]:
    """One block per document; returns the blocks and how many documents were truncated."""
    size = max_length - special.extra(pair=False)
    return [special.wrap(piece.cut(0, size)) for piece in pieces], sum(len(p) > size for p in pieces)


def sentence_pairs(documents: list[list[Piece]], special: SpecialTokens, max_length: int,
                   rng: np.random.Generator) -> list[dict]:
    """BERT's NSP pairs: each document is cut into chunks of whole sentences that fill a block;
    a chunk splits into A and its true continuation B, or A and a random B from another document
    (whose unused sentences go back to be read again). A one-sentence chunk splits mid-sentence."""
    size = max_length - special.extra(pair=True)
    pairs = []
    for index, sentences in enumerate(documents):
        start = 0
        while start < len(sentences):
            end, length = start, 0
            while end < len(sentences) and (length < size or end == start):
                length, end = length + len(sentences[end]), end + 1
            chunk = sentences[start:end]
            whole_sentences = len(chunk) > 1
            if not whole_sentences:  # one (long) sentence: split it at a word start near the middle
                chunk = split_in_two(chunk[0])
            cut = int(rng.integers(1, len(chunk))) if len(chunk) > 1 else 1
            first = join(chunk[:cut])
            if len(documents) > 1 and rng.random() < 0.5:
                second, label = random_continuation(documents, index, size - len(first), rng), RANDOM_NEXT
                if whole_sentences:
                    end = start + cut  # the sentences B would have used are read again
            else:
                second, label = join(chunk[cut:]), IS_NEXT
            if len(first) and len(second):
                first, second = fit_pair(first, second, size)
                pairs.append({**special.wrap(first, second), "nsp_label": label})
            start = end
    return pairs


def split_in_two(sentence: Piece) -> list[Piece]:
    starts = [i for i, start in enumerate(sentence.word_starts) if start and i > 0]
    if not starts:
        return [sentence]
    middle = min(starts, key=lambda i: abs(i - len(sentence) / 2))
    return [sentence.cut(0, middle), sentence.cut(middle)]


def random_continuation(documents: list[list[Piece]], exclude: int, length: int, rng) -> Piece:
    """Sentences from a random start in another document, up to `length` tokens (at least one)."""
    other = int(rng.integers(0, len(documents) - 1))
    other += other >= exclude
    sentences = documents[other]
    start = int(rng.integers(0, len(sentences)))
    picked = [sentences[start]]
    for sentence in sentences[start + 1 :]:
        if sum(map(len, picked)) >= length:
            break
        picked.append(sentence)
    return join(picked)


def fit_pair(first: Piece, second: Piece, size: int) -> tuple[Piece, Piece]:
    """Shorten the longer text (both, if both are long) until the pair fits: A loses its start
    and B its end, so that a true continuation stays contiguous across the join."""
    if len(first) + len(second) <= size:
        return first, second
    keep_first = min(len(first), max(size // 2, size - len(second)))
    return first.cut(len(first) - keep_first), second.cut(0, size - keep_first)


def split_sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text.strip()) if s]


def build_blocks(tokenizer, documents: list[str], max_length: int, packing: bool, nsp: bool,
                 rng: np.random.Generator) -> tuple[list[dict], int]:
    """The blocks of a corpus and how many documents were truncated (line by line only)."""
    read = ReadTexts.joined(block_chunks(tokenizer, documents, max_length, packing, rng if nsp else None))
    return read.features, read.cut


def block_chunks(tokenizer, documents: Sequence[str], max_length: int, packing: bool,
                 nsp: np.random.Generator | None = None) -> Iterator[tuple[int, ReadTexts]]:
    """The blocks of consecutive chunks of DOCUMENT_CHUNK documents, each with the index of its first document,
    how many documents it holds and how many were truncated; made a chunk at a time, to be stored
    (data/store.py) or joined. Packed blocks run on across chunks as across documents; NSP pairs (`nsp`: the
    generator that draws them) take a random second text from another document of the same chunk."""
    special = SpecialTokens(tokenizer)
    packer = Packer(special, max_length)
    for start in range(0, len(documents), DOCUMENT_CHUNK):
        chunk = documents[start:start + DOCUMENT_CHUNK]
        if nsp is not None:
            blocks, truncated = sentence_pairs(sentence_pieces(tokenizer, chunk), special, max_length, nsp), 0
        else:
            pieces = tokenize_pieces(tokenizer, chunk)
            blocks, truncated = (packer.blocks(pieces), 0) if packing else line_blocks(pieces, special, max_length)
        yield start, ReadTexts(blocks, None, truncated, texts=len(chunk))
    if packing and nsp is None and (last := packer.last()):
        yield len(documents), ReadTexts(last, None, 0, texts=0)


def sentence_pieces(tokenizer, documents: list[str]) -> list[list[Piece]]:
    """Each document's sentences, tokenized (documents without a sentence left out)."""
    sentences = [split_sentences(document) for document in documents]
    flat = iter(tokenize_pieces(tokenizer, [s for document in sentences for s in document]))
    return [grouped for grouped in ([next(flat) for _ in document] for document in sentences) if grouped]
