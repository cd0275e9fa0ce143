"""Where the parts of a classifier are, for any architecture: embeddings, the stack of
transformer layers, what else the encoder holds, and the task head.

Found from the module tree (the model's input embeddings and its longest `ModuleList`), not
from BERT's attribute names, so `bert.encoder.layer`, `distilbert.transformer.layer`,
`model.layers` (ModernBERT) and a PEFT-wrapped model are all handled the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import StellarError
from ..models.heads import EncoderWithHead

EMBEDDINGS, TOP, HEAD = "embeddings", "top", "head"  # group names beside "layer.N"


def inner_model(model: nn.Module) -> nn.Module:
    """The classifier inside a PEFT wrapper or a feature-cache `HeadOnly`; the model itself otherwise."""
    if hasattr(model, "get_base_model"):
        return model.get_base_model()
    return getattr(model, "wrapped_classifier", model)


def base_encoder(model: nn.Module) -> nn.Module:
    """The encoder without the task head: `model.bert`, `model.roberta`, ... or our `model.encoder`."""
    model = inner_model(model)
    if isinstance(model, EncoderWithHead):
        return model.encoder
    return getattr(model, model.base_model_prefix)


@dataclass
class EncoderParts:
    encoder: nn.Module
    embeddings: nn.Module
    layers: list[nn.Module]  # bottom to top

    def group_of_parameters(self, model: nn.Module) -> dict[int, str]:
        """id(parameter) -> embeddings | layer.N | top (pooler, final norm, ...) | head."""
        groups = {id(p): HEAD for p in model.parameters()}
        groups.update({id(p): TOP for p in self.encoder.parameters()})
        groups.update({id(p): EMBEDDINGS for p in self.embeddings.parameters()})
        for index, layer in enumerate(self.layers):
            groups.update({id(p): f"layer.{index}" for p in layer.parameters()})
        return groups


def encoder_parts(model: nn.Module) -> EncoderParts:
    encoder = base_encoder(model)
    word_embeddings = encoder.get_input_embeddings()
    name = next(n for n, m in encoder.named_modules() if m is word_embeddings)
    embeddings = encoder.get_submodule(name.rsplit(".", 1)[0]) if "." in name else word_embeddings
    stacks = [m for m in encoder.modules() if isinstance(m, nn.ModuleList)]
    if not stacks:
        raise StellarError(f"{type(encoder).__name__}: found no list of transformer layers")
    return EncoderParts(encoder, embeddings, list(max(stacks, key=len)))


def group_rank(group: str, num_layers: int) -> int:
    """Depth from the top: head 0, top and the last layer 1, ..., embeddings num_layers + 1."""
    if group == HEAD:
        return 0
    if group == TOP:
        return 1
    if group == EMBEDDINGS:
        return num_layers + 1
    return num_layers - int(group.split(".")[1])
