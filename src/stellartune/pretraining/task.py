"""Pretraining as an objective of the training engine (tasks/base.py): blocks in, summed losses out.

Masks are drawn when a batch is built (`Encoded.collator`), not when the corpus is encoded: each
epoch sees new ones. The held-out blocks get fixed masks, so that evaluations compare.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.encoded import Encoded, ReadTexts
from ..data.examples import Examples
from ..tasks.base import Objective
from .blocks import block_chunks
from .masking import MaskingCollator, fixed_masks, fresh_masks
from .objectives import COLUMN


class PretrainingTask(Objective):
    primary_metric = "loss"
    lower_is_better = frozenset({"loss", "perplexity", "mlm_loss", "nsp_loss", "sbo_loss"})

    def __init__(self, masking: str, mask_prob: float, packing: bool, nsp: bool, sbo: bool, seed: int):
        self.masking, self.mask_prob, self.packing = masking, mask_prob, packing
        self.nsp, self.sbo, self.seed = nsp, sbo, seed

    def encode(self, documents: Examples, tokenizer, max_length: int, held_out: bool = False) -> Encoded:
        """The blocks of the documents (stored ones: in the store, made a chunk at a time, or reused)."""
        blocks = self.blocks(documents, tokenizer, max_length, held_out)
        collator = MaskingCollator(tokenizer, self.masking, self.mask_prob, spans=self.sbo)
        draw = (lambda indices: fixed_masks(self.seed, indices)) if held_out else (lambda indices: fresh_masks())
        return Encoded(blocks.features, blocks.lengths, torch.zeros(len(blocks.features)), blocks.cut,
                       collator=lambda indices: collator([blocks.features[i] for i in indices], draw(indices)),
                       note=blocks.note)

    def blocks(self, documents: Examples, tokenizer, max_length: int, held_out: bool) -> ReadTexts:
        """The blocks' token ids, made a chunk of documents at a time: of stored documents, stored too (or
        reused); else in memory."""
        nsp = np.random.default_rng([self.seed, int(held_out)]) if self.nsp else None  # NSP's random pairings
        parts = block_chunks(tokenizer, documents.texts, max_length, self.packing, nsp)
        if documents.store is None:
            return ReadTexts.joined(parts)
        settings = f"blocks|{max_length}|{self.packing}" + (f"|nsp|{self.seed}|{held_out}" if self.nsp else "")
        return documents.store.tokens(documents.texts, settings, tokenizer, parts)

    def loss(self, stats: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per block, its share of the batch's mean loss per masked token (plus NSP's per pair)."""
        tokens = stats[:, COLUMN["mlm_tokens"]].mean().clamp(min=1)
        token_losses = stats[:, COLUMN["mlm_loss"]] + stats[:, COLUMN["sbo_loss"]]
        return token_losses / tokens + stats[:, COLUMN["nsp_loss"]]

    def metrics(self, stats: torch.Tensor, encoded: Encoded | None = None) -> dict:
        total = stats.double().sum(0)
        tokens, blocks = max(total[COLUMN["mlm_tokens"]].item(), 1.0), len(stats)
        mean = lambda name, count: total[COLUMN[name]].item() / count
        metrics = {"mlm_loss": mean("mlm_loss", tokens), "masked_accuracy": mean("mlm_correct", tokens)}
        metrics["perplexity"] = math.exp(min(metrics["mlm_loss"], 50.0))
        loss = metrics["mlm_loss"]
        if self.sbo:
            metrics.update(sbo_loss=mean("sbo_loss", tokens), sbo_accuracy=mean("sbo_correct", tokens))
            loss += metrics["sbo_loss"]
        if self.nsp:
            metrics.update(nsp_loss=mean("nsp_loss", blocks), nsp_accuracy=mean("nsp_correct", blocks))
            loss += metrics["nsp_loss"]
        return {"loss": loss, **metrics, "masked_tokens": int(tokens), "blocks": blocks}

    def predictions(self, stats: torch.Tensor, encoded: Encoded | None = None, examples=None) -> list[dict]:
        """Per block: its masked tokens and their mean loss."""
        return [{"masked_tokens": int(row[COLUMN["mlm_tokens"]]),
                 "mlm_loss": float(row[COLUMN["mlm_loss"]] / max(row[COLUMN["mlm_tokens"]], 1))} for row in stats]

    def to_dict(self) -> dict:
        return {"task": self.name, "masking": self.masking, "mask_prob": self.mask_prob, "packing": self.packing,
                "nsp": self.nsp, "sbo": self.sbo}
