"""Texts longer than --max-length tokens (`--long-texts`): read whole, in overlapping windows, or cut.

windows: a long text becomes windows of --max-length tokens, neighbours sharing a quarter of them (the fast
tokenizer's own overflow with a stride, as QA windows a context); each window is trained on with the text's
label, weighted so a text counts once however long it is, and the text's output is the mean of its windows'
logits. head-tail: the first quarter of the room and the last three quarters (Sun et al. 2019, "How to
Fine-Tune BERT for Text Classification?": 128 + 382 tokens of 512 was the best cut on IMDB). truncate: the first
--max-length tokens. A text that fits is read the same way by all three: only long texts cost more.
"""

from __future__ import annotations

import torch

from ..data.encoded import ReadTexts
from ..data.examples import Examples
from ..models.quiet import quiet_transformers

READINGS = ("windows", "head-tail", "truncate")
SHARED = 4  # neighbouring windows share 1/SHARED of --max-length
HEAD = 4  # head-tail: the head is 1/HEAD of the room
MEASURED = 2000  # training examples whose length --max-length auto reads (spread over the whole file)
COVERED = 0.9  # --max-length auto: the length that holds this share of the training examples whole
DEFAULT_LENGTH = 128  # --max-length auto never goes below a sentence's default
LONGEST = 512  # nor above this: attention grows with the square of the window, and 512 is what was measured
TOKENIZE_CHUNK = 512  # texts per tokenizer call: the untruncated encodings of long documents are large


def read_texts(tokenizer, examples: Examples, max_length: int, reading: str) -> ReadTexts:
    """The features of the examples' texts (and pairs) read as `reading` says; pairs are always truncated,
    longest text first (a window of one text beside the whole other is not the pair any more). Stored examples
    (read through the store) get their token ids stored beside them, and reused by a later run."""
    texts, pairs = examples.texts, examples.pairs
    reader = truncated if pairs or reading == "truncate" else windows if reading == "windows" else head_and_tail
    parts = ((start, reader(tokenizer, texts[start:start + TOKENIZE_CHUNK],
                            pairs[start:start + TOKENIZE_CHUNK] if pairs else None, max_length))
             for start in range(0, len(texts), TOKENIZE_CHUNK))
    if examples.store is None:
        return ReadTexts.joined(parts)
    return examples.store.tokens(texts, f"{reader.__name__}|{max_length}|{pairs is not None}", tokenizer, parts)


def whole(tokenizer, texts: list[str], pairs: list[str] | None, max_length: int) -> tuple[list[dict], list[int]]:
    """Each text (and pair) tokenized whole, and which are longer than max_length: most texts fit, and are
    tokenized once; only the long ones again, cut or in windows."""
    with quiet_transformers():  # hides "longer than the model's maximum": we count and report instead
        full = tokenizer(texts, pairs, truncation=False)
    keys = list(full.keys())
    features = [{k: full[k][i] for k in keys} for i in range(len(texts))]
    return features, [i for i, f in enumerate(features) if len(f["input_ids"]) > max_length]


def truncated(tokenizer, texts: list[str], pairs: list[str] | None, max_length: int) -> ReadTexts:
    """The first max_length tokens; counts the texts longer than that before cutting them."""
    features, long = whole(tokenizer, texts, pairs, max_length)
    if long:
        cut = tokenizer([texts[i] for i in long], [pairs[i] for i in long] if pairs else None,
                        truncation=True, max_length=max_length)
        for j, i in enumerate(long):
            features[i] = {k: cut[k][j] for k in cut.keys()}
    return ReadTexts(features, None, len(long))


def windows(tokenizer, texts: list[str], pairs: None, max_length: int) -> ReadTexts:
    """Windows of max_length tokens over each text, neighbours sharing max_length // SHARED (a text that fits:
    one window, itself)."""
    features, long = whole(tokenizer, texts, None, max_length)
    if not long:
        return ReadTexts(features, list(range(len(texts))), 0)
    split = tokenizer([texts[i] for i in long], truncation=True, max_length=max_length, stride=max_length // SHARED,
                      return_overflowing_tokens=True)
    keys = [k for k in split.keys() if k != "overflow_to_sample_mapping"]
    split_of = {i: [] for i in long}
    for row, j in enumerate(split["overflow_to_sample_mapping"]):
        split_of[long[j]].append({k: split[k][row] for k in keys})
    per_text = [split_of.get(i, [feature]) for i, feature in enumerate(features)]
    return ReadTexts([window for each in per_text for window in each], [i for i, each in enumerate(per_text) for _ in each],
                     sum(len(each) > 1 for each in split_of.values()))


def head_and_tail(tokenizer, texts: list[str], pairs: None, max_length: int) -> ReadTexts:
    """The first quarter of the room and the last three quarters of a long text; a short one whole. Cut in
    characters at token boundaries and tokenized again, as every tokenizer can (the join may merge a token)."""
    room = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    head = room // HEAD
    with quiet_transformers():
        offsets = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    kept = [text if len(spans) <= room else f"{text[:spans[head - 1][1]]} {text[spans[len(spans) - room + head][0]:]}"
            for text, spans in zip(texts, offsets)]
    encoded = tokenizer(kept, truncation=True, max_length=max_length)
    return ReadTexts([{k: encoded[k][i] for k in encoded.keys()} for i in range(len(texts))], None,
                     sum(len(spans) > room for spans in offsets))


def token_lengths(tokenizer, texts: list[str], pairs: list[str] | None) -> list[int]:
    """Tokens (special ones included) of up to MEASURED training examples, spread over the whole file."""
    step = max(1, len(texts) // MEASURED)
    with quiet_transformers():
        encoded = tokenizer(texts[::step], pairs[::step] if pairs else None, truncation=False)
    return [len(ids) for ids in encoded["input_ids"]]


def fitting_length(lengths: list[int], limit: int) -> int:
    """--max-length auto: the length that holds COVERED of the texts whole, in steps of 64 tokens, at least
    DEFAULT_LENGTH (the sentence default) and at most the model's limit (or LONGEST)."""
    covering = sorted(lengths)[min(len(lengths) - 1, int(COVERED * len(lengths)))]
    return max(DEFAULT_LENGTH, min(-(-covering // 64) * 64, limit, LONGEST))


def model_limit(tokenizer) -> int:
    """The positions the tokenizer says its model has (a huge number where it does not know: LONGEST)."""
    return tokenizer.model_max_length if tokenizer.model_max_length < 10**6 else LONGEST


def choose_reading(setting: str, lengths: list[int], pairs: bool, max_length: int) -> tuple[str, str]:
    """The reading of a run (--long-texts, `auto` settled) and the log line that says why."""
    long = sum(length > max_length for length in lengths)
    share = f"{long} of {len(lengths)} training examples measured are longer than {max_length} tokens"
    if pairs:
        return "truncate", (f"long texts: {share}; sentence pairs are cut, the longer text first"
                            + (f" (--long-texts {setting} reads single texts)" if setting != "auto" else ""))
    reading = "windows" if setting == "auto" else setting
    return reading, (f"long texts: {share}; a longer text (here or at predict time) is "
                     f"{describe(reading, max_length)} (--long-texts {setting})")


def describe(reading: str, max_length: int) -> str:
    room = f"{max_length} tokens"
    return {"windows": f"read whole, in windows of {room} sharing {max_length // SHARED}, their outputs averaged",
            "head-tail": f"cut to the first quarter and the last three quarters of {room}",
            "truncate": f"cut to the first {room}"}[reading]


def per_text(logits: torch.Tensor, targets: torch.Tensor | None, text_of: list[int] | None
             ) -> tuple[torch.Tensor, torch.Tensor | None, list[int]]:
    """(each text's logits: the mean over its windows, its target, how many windows it took)."""
    logits = logits.float().cpu()
    if text_of is None:
        return logits, targets, [1] * len(logits)
    index = torch.tensor(text_of)
    counts = torch.bincount(index)
    sums = torch.zeros(len(counts), *logits.shape[1:]).index_add_(0, index, logits)
    shape = (-1,) + (1,) * (logits.dim() - 1)
    first = torch.zeros(len(counts), dtype=torch.long).scatter_reduce_(0, index, torch.arange(len(index)), "amin",
                                                                        include_self=False)
    return sums / counts.reshape(shape), None if targets is None else targets[first], counts.tolist()
