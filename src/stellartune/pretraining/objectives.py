"""The pretraining model: an encoder with its MLM head, plus NSP and SBO heads when asked for.

Its forward returns a few statistics per example (loss sums, counts, correct predictions; see
STATS) rather than logits: the engine sums the losses, `PretrainingTask.metrics` adds the rest
up, and evaluation never holds an (examples x tokens x vocabulary) tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForMaskedLM, AutoModelForPreTraining

from ..errors import StellarError
from ..models.loading import load_config
from ..models.masked_lm import run_masked_lm, vocabulary_logits
from ..models.quiet import quiet_transformers
from .masking import IGNORED

STATS = ("mlm_loss", "mlm_tokens", "mlm_correct", "nsp_loss", "nsp_correct", "sbo_loss", "sbo_correct")
COLUMN = {name: i for i, name in enumerate(STATS)}
SPAN_OFFSETS = 32  # SBO position embeddings; offsets in longer spans share the last one


def load_masked_lm(path: str, trust_remote_code: bool = False) -> tuple[nn.Module, list[str]]:
    """The architecture's pretraining model when it predicts tokens (BertForPreTraining keeps the
    pooler, which fine-tuning's classification head uses, and brings BERT's own NSP head), else
    its masked LM. Returns it with the names of the head modules that were newly initialised;
    a new MLM head has its decoder tied to the input embeddings."""
    config = load_config(path, trust_remote_code)
    with quiet_transformers():
        try:
            model, info = AutoModelForPreTraining.from_pretrained(path, config=config, output_loading_info=True,
                                                                  trust_remote_code=trust_remote_code)
            if model.get_output_embeddings() is None:  # e.g. ELECTRA's discriminator
                raise ValueError("no token predictions")
        except ValueError:
            model, info = AutoModelForMaskedLM.from_pretrained(path, config=config, output_loading_info=True,
                                                               trust_remote_code=trust_remote_code)
    decoder = model.get_output_embeddings()
    if decoder is None:
        raise StellarError(f"{path}: {type(model).__name__} has no masked language modelling head")
    decoder_name = next(name for name, module in model.named_modules() if module is decoder)
    if f"{decoder_name}.weight" in info["missing_keys"]:  # an untied decoder with nothing trained in it
        model.config.tie_word_embeddings = True
        decoder.weight = model.get_input_embeddings().weight
    prefix = model.base_model_prefix + "."
    modules = {key.rsplit(".", 1)[0] for key in info["missing_keys"] if not key.startswith(prefix)}
    return model, sorted(m for m in modules if not any(m.startswith(other + ".") for other in modules))


class SpanBoundaryHead(nn.Module):
    """SpanBERT's SBO: a masked span's token from the encodings of the two tokens around the
    span and its offset in it, through two GELU + LayerNorm layers; the MLM decoder scores it."""

    def __init__(self, hidden: int):
        super().__init__()
        self.offsets = nn.Embedding(SPAN_OFFSETS, hidden)
        self.layers = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.GELU(), nn.LayerNorm(hidden),
                                    nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden))

    def forward(self, hidden, rows, left, right, offset) -> torch.Tensor:
        boundaries = torch.cat([hidden[rows, left], hidden[rows, right],
                                self.offsets(offset.clamp(max=SPAN_OFFSETS - 1))], dim=-1)
        return self.layers(boundaries)


def freeze_nsp_path(lm: nn.Module) -> None:
    """Without --nsp, BERT's NSP head and the pooler below it get no gradient: keep them as they are
    (the pooler is what `train`'s classification head starts from) and out of DDP's gradient sync,
    which fails on trained parameters that receive none."""
    for name, module in lm.named_modules():
        if name.endswith(("seq_relationship", "pooler")):
            module.requires_grad_(False)


class PretrainingModel(nn.Module):
    base_model_prefix = "encoder"  # strategies/layers.py finds the encoder (and its layers) here

    def __init__(self, lm: nn.Module, nsp: bool = False, sbo: bool = False):
        super().__init__()
        self.lm, self.nsp = lm, nsp
        hidden = lm.config.hidden_size
        self.sbo_head = SpanBoundaryHead(hidden) if sbo else None
        # BERT's pretraining model has an NSP head on its pooler; other architectures get one on the first token
        native_nsp = any(name.endswith("seq_relationship") for name, _ in lm.named_modules())
        self.nsp_head = nn.Linear(hidden, 2) if nsp and not native_nsp else None
        if not nsp:
            freeze_nsp_path(lm)

    @property
    def encoder(self) -> nn.Module:
        return self.lm.base_model

    def forward(self, input_ids, attention_mask, labels, token_type_ids=None, nsp_label=None, span_bounds=None
                ) -> torch.Tensor:
        chosen = labels != IGNORED
        rows, targets = chosen.nonzero()[:, 0], labels[chosen]
        outputs = run_masked_lm(self.lm, chosen, input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids,
                                output_hidden_states=self.sbo_head is not None or self.nsp_head is not None)
        stats = input_ids.new_zeros(len(input_ids), len(STATS), dtype=torch.float32)
        self.add_token_stats(stats, "mlm", vocabulary_logits(outputs), rows, targets)
        if self.nsp:
            nsp_logits = (self.nsp_head(outputs.hidden_states[-1][:, 0]) if self.nsp_head is not None
                          else outputs.seq_relationship_logits)
            stats[:, COLUMN["nsp_loss"]] = F.cross_entropy(nsp_logits.float(), nsp_label, reduction="none")
            stats[:, COLUMN["nsp_correct"]] = (nsp_logits.argmax(-1) == nsp_label).float()
        if self.sbo_head is not None:
            left, right, offset = span_bounds.unbind(1)
            spans = self.sbo_head(outputs.hidden_states[-1], rows, left[chosen], right[chosen], offset[chosen])
            self.add_token_stats(stats, "sbo", self.lm.get_output_embeddings()(spans), rows, targets)
        return stats

    @staticmethod
    def add_token_stats(stats: torch.Tensor, name: str, logits, rows, targets) -> None:
        """Per example: summed cross-entropy, and (MLM) token count and correct predictions."""
        losses = F.cross_entropy(logits.float(), targets, reduction="none")
        stats[:, COLUMN[f"{name}_loss"]].index_add_(0, rows, losses)
        stats[:, COLUMN[f"{name}_correct"]].index_add_(0, rows, (logits.argmax(-1) == targets).float())
        if name == "mlm":
            stats[:, COLUMN["mlm_tokens"]].index_add_(0, rows, torch.ones_like(losses))
