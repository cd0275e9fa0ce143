"""Cloze-prompt classification (PET / LM-BFF): each text is put into a template with one [MASK],
and the masked LM's score for each label's word there is that label's logit.

    stellartune train --task cloze --template "{text} It was [MASK]." --verbalizer 0=terrible,1=great

Labels, loss, metrics and predictions are single-label classification's; what differs is the
input (the template around the text) and the model (`models.masked_lm.ClozeClassifier`), which
starts from the pretrained MLM head instead of a new classifier: that is what helps with few examples.
"""

from __future__ import annotations

from ..data.encoded import Encoded, ReadTexts
from ..data.examples import Examples, distinct_labels
from ..errors import StellarError
from ..models.loading import load_config
from ..models.masked_lm import ClozeClassifier
from ..models.tokens import Piece, SpecialTokens, join, tokenize_pieces
from .long_texts import TOKENIZE_CHUNK
from .single_label import SingleLabelTask


def parse_verbalizer(text: str) -> dict[str, str]:
    """"positive=great,negative=terrible" -> {"positive": "great", "negative": "terrible"}."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if not pairs or any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
        raise StellarError(f"--verbalizer: expected label=word pairs separated by commas, e.g. "
                           f"positive=great,negative=terrible; got {text!r}")
    return {label.strip(): word.strip() for label, word in pairs}


def check_template(template: str) -> None:
    if template.count("{text}") != 1 or template.count("[MASK]") != 1:
        raise StellarError(f"--template must hold {{text}} and [MASK] once each, e.g. \"{{text}} It was [MASK].\"; "
                           f"got {template!r}")


class ClozeTask(SingleLabelTask):
    name = "cloze"
    label_kind = None  # chosen by --task cloze only, never by --task auto
    options = ("template", "verbalizer")
    default_max_length = 128
    one_output_per_text = False
    few_shot = False  # a prompt is its own way to learn from few examples: the masked LM's word at [MASK]
    head_description = "masked-LM head read through the verbalizer"
    pipeline_task = "fill-mask"

    def __init__(self, labels: list[str], template: str, verbalizer: dict[str, str]):
        super().__init__(labels)
        self.template, self.verbalizer = template, verbalizer

    @classmethod
    def from_examples(cls, train: Examples, config) -> ClozeTask:
        template, verbalizer = config.template, config.verbalizer
        if not template or not verbalizer:
            raise StellarError("--task cloze needs --template (with {text} and [MASK]) and --verbalizer label=word,...")
        check_template(template)
        words = parse_verbalizer(verbalizer)
        labels = cls.class_names(distinct_labels(train.labels), train)
        missing = [label for label in labels if label not in words]
        if missing:
            raise StellarError(f'{train.positions[0].rsplit(", ", 1)[0]}, column "{train.columns.label}": label(s) '
                               f"{', '.join(map(repr, missing))} have no word in --verbalizer {verbalizer!r}")
        return cls(labels, template, {label: words[label] for label in labels})

    def label_token_ids(self, tokenizer) -> list[int]:
        """One vocabulary id per label: each verbalizer word must be a single token."""
        ids = []
        for label, word in self.verbalizer.items():
            pieces = tokenizer.tokenize(word)
            if len(pieces) != 1:
                raise StellarError(f"--verbalizer: {label}={word} is {len(pieces)} tokens ({' '.join(pieces)}) for "
                                   "this model's tokenizer; choose a word that is one token")
            ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
        return ids

    def build_model(self, path: str, tokenizer, config, head=None) -> ClozeClassifier:
        """The masked LM with its pretrained head (see `stellartune pretrain` for models without one)."""
        lm_config = load_config(path, config.trust_remote_code, config.dropout)
        return ClozeClassifier.build(path, tokenizer.mask_token_id, self.label_token_ids(tokenizer), lm_config)

    def settle(self, train: Examples, tokenizer, config, say):
        """As it is: the text is cut to fit around the template (`encode`)."""
        return config

    def prior_bias(self, targets):
        return None  # the label words' scores already carry the MLM's prior

    def encode(self, examples: Examples, tokenizer, max_length: int) -> Encoded:
        """[CLS] before + text + after [SEP]: the text is cut to fit, never the template and its [MASK]."""
        before, after = self.template.replace("[MASK]", tokenizer.mask_token).split("{text}")
        before, after = tokenize_pieces(tokenizer, [before, after])
        special = SpecialTokens(tokenizer)
        room = max_length - special.extra(pair=False) - len(before) - len(after)
        if room < 1:
            raise StellarError(f"--template takes {len(before) + len(after)} tokens: no room for the text within "
                               f"--max-length {max_length}")
        texts = examples.texts
        parts = ((start, prompts(special, before, tokenize_pieces(tokenizer, texts[start:start + TOKENIZE_CHUNK]),
                                 after, room))
                 for start in range(0, len(texts), TOKENIZE_CHUNK))
        if examples.store is None:
            read = ReadTexts.joined(parts)
        else:
            read = examples.store.tokens(texts, f"cloze|{max_length}|{self.template}", tokenizer, parts)
        return Encoded(read.features, read.lengths, self.known_targets(examples), read.cut, note=read.note)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "template": self.template, "verbalizer": self.verbalizer}

    @classmethod
    def from_dict(cls, data: dict) -> ClozeTask:
        return cls(data["labels"], data["template"], data["verbalizer"])


def prompts(special: SpecialTokens, before: Piece, texts: list[Piece], after: Piece, room: int) -> ReadTexts:
    """Each text in its template, cut to `room` tokens; how many were cut."""
    features = []
    for text in texts:
        wrapped = special.wrap(join([before, text.cut(0, room), after]))
        features.append({"input_ids": wrapped["input_ids"], "token_type_ids": wrapped["token_type_ids"],
                         "attention_mask": [1] * len(wrapped["input_ids"])})
    return ReadTexts(features, None, sum(len(text) > room for text in texts))
