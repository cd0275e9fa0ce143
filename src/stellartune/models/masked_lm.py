"""Masked-LM models used for more than pretraining: scoring only the positions that matter, and
the cloze-prompt classifier (`--task cloze`, PET / LM-BFF style)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForMaskedLM

from .inputs import accepted_inputs
from .quiet import quiet_transformers

CLOZE_FILE = "cloze.json"


@contextlib.contextmanager
def decode_only(decoder: nn.Module, chosen: torch.Tensor):
    """Make the MLM decoder score the chosen positions only: the vocabulary projection costs as
    much as the rest of a small encoder, and most of its rows would be thrown away."""
    hook = decoder.register_forward_pre_hook(lambda module, args: (args[0][chosen],))
    try:
        yield
    finally:
        hook.remove()


def run_masked_lm(lm: nn.Module, chosen: torch.Tensor, output_hidden_states: bool = False, **inputs):
    """The LM's outputs, its vocabulary logits only at `chosen` positions (n_chosen x vocabulary);
    inputs the architecture does not take (token_type_ids for MPNet, ...) are dropped."""
    accepted = accepted_inputs(lm)
    inputs = {k: v for k, v in inputs.items() if k in accepted and v is not None}
    with decode_only(lm.get_output_embeddings(), chosen):
        return lm(**inputs, output_hidden_states=output_hidden_states)


def vocabulary_logits(outputs) -> torch.Tensor:
    """MLM logits of a masked LM (`logits`) or of BERT's pretraining model (`prediction_logits`)."""
    return outputs.logits if "logits" in outputs else outputs.prediction_logits


class ClozeClassifier(nn.Module):
    """A masked LM read as a classifier: each label's score is the logit of its word (the
    verbalizer) at the [MASK] of the template. Saved as a standard masked-LM folder (it loads
    with pipeline("fill-mask")) plus cloze.json."""

    base_model_prefix = "encoder"  # strategies/layers.py finds the encoder (and its layers) here

    def __init__(self, lm: nn.Module, mask_token_id: int, label_token_ids: list[int]):
        super().__init__()
        self.lm, self.mask_token_id = lm, mask_token_id
        self.register_buffer("label_token_ids", torch.tensor(label_token_ids), persistent=False)
        self.config = lm.config

    @property
    def encoder(self) -> nn.Module:
        return self.lm.base_model

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        at_mask = input_ids == self.mask_token_id  # the template holds one [MASK]
        outputs = run_masked_lm(self.lm, at_mask, input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids)
        return vocabulary_logits(outputs)[:, self.label_token_ids]

    @classmethod
    def build(cls, path: str, mask_token_id: int, label_token_ids: list[int], config) -> "ClozeClassifier":
        with quiet_transformers():
            lm = AutoModelForMaskedLM.from_pretrained(path, config=config)
        return cls(lm, mask_token_id, label_token_ids)

    def save_pretrained(self, folder: Path, **kwargs) -> None:
        self.lm.save_pretrained(folder, **kwargs)
        record = {"mask_token_id": self.mask_token_id, "label_token_ids": self.label_token_ids.tolist()}
        (Path(folder) / CLOZE_FILE).write_text(json.dumps(record, indent=2))

    @classmethod
    def from_folder(cls, folder: Path) -> "ClozeClassifier":
        record = json.loads((Path(folder) / CLOZE_FILE).read_text())
        with quiet_transformers():
            lm = AutoModelForMaskedLM.from_pretrained(folder)
        return cls(lm, record["mask_token_id"], record["label_token_ids"])
