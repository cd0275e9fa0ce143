"""Classifier heads for non-default settings: CLS, pooler or mean pooling, then linear or MLP.

`pooling=model` (what `auto` gives for a checkpoint that is not a sentence-transformers one) with
`head=linear` uses the architecture's own `AutoModelForSequenceClassification` head instead, so the
saved model is a standard checkpoint.
Any other combination is an `EncoderWithHead`, saved as a standard encoder folder plus
`head.safetensors` and `head.json`, which `load_classifier` restores.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

HEAD_CONFIG_FILE = "head.json"
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


@dataclass
class HeadConfig:
    pooling: str = "cls"  # cls | pooler | mean
    kind: str = "linear"  # linear | mlp
    hidden: list = field(default_factory=lambda: [256])
    activation: str = "gelu"
    dropout: float = 0.1
    num_labels: int = 2


def build_head(config: HeadConfig, input_size: int) -> nn.Sequential:
    layers, size = [], input_size
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


class EncoderWithHead(nn.Module):
    """An encoder (`AutoModel`) followed by pooling and a head; returns logits."""

    def __init__(self, encoder: nn.Module, config: HeadConfig):
        super().__init__()
        self.encoder = encoder
        self.head_config = config
        self.head = build_head(config, encoder.config.hidden_size)
        self.config = encoder.config  # what callers read (id2label, model_type, ...)
        pooler = getattr(encoder, "pooler", None)
        if config.pooling != "pooler" and isinstance(pooler, nn.Module):
            pooler.requires_grad_(False)  # unused: DDP wants a gradient for every trainable parameter

    def forward(self, **inputs) -> torch.Tensor:
        outputs = self.encoder(**inputs)
        return self.head(pool(outputs, inputs["attention_mask"], self.head_config.pooling))

    def save_pretrained(self, folder: Path, **kwargs) -> None:
        self.encoder.save_pretrained(folder, **kwargs)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(Path(folder) / "head.safetensors"))
        self.save_head_config(folder)

    def save_head_config(self, folder: Path) -> None:
        (Path(folder) / HEAD_CONFIG_FILE).write_text(json.dumps(asdict(self.head_config), indent=2))

    @classmethod
    def from_folder(cls, encoder: nn.Module, folder: Path) -> "EncoderWithHead":
        config = HeadConfig(**json.loads((Path(folder) / HEAD_CONFIG_FILE).read_text()))
        model = cls(encoder, config)
        model.head.load_state_dict(load_file(str(Path(folder) / "head.safetensors")))
        return model
