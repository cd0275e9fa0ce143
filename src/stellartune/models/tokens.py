"""Tokenization below the task level: a text's token ids with its word starts (`Piece`), and where a
tokenizer puts its special tokens. Shared by pretraining blocks and cloze prompts."""

from __future__ import annotations

from dataclasses import dataclass

from .quiet import quiet_transformers


@dataclass
class Piece:
    """Token ids of a text (no special tokens) and where its words start."""

    ids: list[int]
    word_starts: list[bool]

    def __len__(self) -> int:
        return len(self.ids)

    def cut(self, start: int, end: int | None = None) -> "Piece":
        return Piece(self.ids[start:end], self.word_starts[start:end])


def tokenize_pieces(tokenizer, texts: list[str]) -> list[Piece]:
    with quiet_transformers():  # documents longer than the model's maximum are fine here: we cut them
        encoded = tokenizer(texts, add_special_tokens=False)
    pieces = []
    for index, ids in enumerate(encoded["input_ids"]):
        words = encoded.word_ids(index)
        pieces.append(Piece(ids, [w is not None and (i == 0 or words[i - 1] != w) for i, w in enumerate(words)]))
    return pieces


class SpecialTokens:
    """Where the tokenizer puts special tokens around one text or a pair, learnt by encoding
    [MASK] (and [MASK], [MASK]) once: works for [CLS] a [SEP] b [SEP], <s> a </s></s> b </s>, ..."""

    def __init__(self, tokenizer):
        mask = tokenizer.mask_token
        self.single = self.layout(tokenizer(mask), tokenizer.mask_token_id)
        self.pair = self.layout(tokenizer(mask, mask), tokenizer.mask_token_id)
        self.separator = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id

    @staticmethod
    def layout(encoded, mask_id: int) -> tuple[list[tuple[list[int], list[int]]], list[int]]:
        """(the special ids and token types before, between and after the texts; each text's token type)."""
        ids, types = encoded["input_ids"], encoded.get("token_type_ids") or [0] * len(encoded["input_ids"])
        holes = [i for i, token in enumerate(ids) if token == mask_id]
        bounds = [-1, *holes, len(ids)]
        return [(ids[a + 1 : b], types[a + 1 : b]) for a, b in zip(bounds, bounds[1:])], [types[h] for h in holes]

    def extra(self, pair: bool) -> int:
        return sum(len(ids) for ids, _ in (self.pair if pair else self.single)[0])

    def wrap(self, *texts: Piece) -> dict:
        """Model input of one text or a pair: ids, token types and word starts (none at specials)."""
        specials, text_types = self.pair if len(texts) == 2 else self.single
        ids, types, starts = [], [], []
        for index, (special_ids, special_types) in enumerate(specials):
            ids, types, starts = ids + special_ids, types + special_types, starts + [False] * len(special_ids)
            if index < len(texts):
                ids, starts = ids + texts[index].ids, starts + texts[index].word_starts
                types += [text_types[index]] * len(texts[index])
        return {"input_ids": ids, "token_type_ids": types, "word_starts": starts}


def join(pieces: list[Piece]) -> Piece:
    return Piece([i for p in pieces for i in p.ids], [s for p in pieces for s in p.word_starts])
