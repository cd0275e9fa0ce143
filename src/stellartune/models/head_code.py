"""Pooling and a classification head over an encoder, as a transformers model: the code of a stellartune model
saved with a custom head (`--pooling mean`, the default for sentence-transformers checkpoints, or `--head mlp`).

stellartune copies this file into each such model folder as `stellartune_head.py`, and the folder's config.json
names it (`auto_map`), so that transformers loads the model with its trained head:

    AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
    pipeline("text-classification", model=folder, trust_remote_code=True)

Without trust_remote_code transformers refuses the folder (its model type is this file's), instead of putting a
new, random head on the encoder. The file imports torch and transformers only; stellartune itself builds its
heads with the same functions (`models/heads.py`), so what transformers runs is what stellartune trained.
"""

from types import SimpleNamespace

import torch
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

MODEL_TYPE = "stellartune-encoder-with-head"
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class Normalize(nn.Module):
    """Unit-length sentence vectors: a head fitted on cosine-trained vectors (few-shot) reads them so."""

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(vectors, dim=-1)


def build_head(config, input_size: int) -> nn.Sequential:
    """`config`: pooling, normalize (absent in models saved before it: False), kind (linear | mlp), hidden
    sizes, activation, dropout, num_labels."""
    layers, size = [Normalize()] if getattr(config, "normalize", False) else [], input_size
    for hidden in config.hidden if config.kind == "mlp" else []:
        layers += [nn.Dropout(config.dropout), nn.Linear(size, hidden), ACTIVATIONS[config.activation]()]
        size = hidden
    return nn.Sequential(*layers, nn.Dropout(config.dropout), nn.Linear(size, config.num_labels))


def pool(outputs, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "pooler":
        if getattr(outputs, "pooler_output", None) is None:
            raise ValueError("this architecture has no pooler; use --pooling cls or mean")
        return outputs.pooler_output
    hidden = outputs.last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def encoder_config(saved: dict) -> PretrainedConfig:
    """The encoder's own config (BertConfig, ...) from its dict in the saved config."""
    values = dict(saved)
    return CONFIG_MAPPING[values.pop("model_type")].from_dict(values)


class EncoderWithHeadConfig(PretrainedConfig):
    model_type = MODEL_TYPE

    def __init__(self, encoder: dict | None = None, head: dict | None = None, **kwargs):
        self.encoder, self.head = encoder or {}, head or {}
        super().__init__(**kwargs)


class EncoderWithHeadForSequenceClassification(PreTrainedModel):
    """The encoder (its weights under `encoder.`), pooling, and the head (under `head.`)."""

    config_class = EncoderWithHeadConfig

    def __init__(self, config: EncoderWithHeadConfig):
        super().__init__(config)
        self.encoder = AutoModel.from_config(encoder_config(config.encoder))
        self.head = build_head(SimpleNamespace(**config.head), self.encoder.config.hidden_size)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **inputs) -> SequenceClassifierOutput:
        outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs)
        return SequenceClassifierOutput(logits=self.head(pool(outputs, attention_mask, self.config.head["pooling"])))
