"""Classifier heads for non-default settings: CLS, pooler or mean pooling, then linear or MLP.

`pooling=model` (what `auto` gives for a checkpoint that is not a sentence-transformers one) with
`head=linear` uses the architecture's own `AutoModelForSequenceClassification` head instead, so the
saved model is a standard checkpoint.
Any other combination is an `EncoderWithHead`, saved as a transformers model of its own type whose code
(`head_code.py`) goes with it: transformers loads it with its head under trust_remote_code=True and
refuses it otherwise; `load_classifier` restores it without running any code from the folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_model
from torch import nn
from transformers import AutoModel

from . import head_code
from .head_code import (
    EncoderWithHeadConfig,
    EncoderWithHeadForSequenceClassification,
    build_head,
    encoder_config,
    pool,
)

HEAD_CONFIG_FILE = "head.json"  # a PEFT model's head settings (and an earlier stellartune's saved models)
CODE_FILE = Path("stellartune_head.py")  # head_code.py, as it is named in a saved model folder


@dataclass
class HeadConfig:
    pooling: str = "cls"  # cls | pooler | mean
    normalize: bool = False  # the pooled vector scaled to unit length (the few-shot stage's head)
    kind: str = "linear"  # linear | mlp
    hidden: list = field(default_factory=lambda: [256])
    activation: str = "gelu"
    dropout: float = 0.1
    num_labels: int = 2


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
        """A folder transformers loads with this very head (trust_remote_code=True: the code is `head_code.py`,
        copied in) or refuses; never an encoder folder that would get a new, random head."""
        folder = Path(folder)
        config = EncoderWithHeadConfig(encoder=self.encoder.config.to_dict(), head=asdict(self.head_config),
                                       id2label=self.encoder.config.id2label, label2id=self.encoder.config.label2id,
                                       problem_type=self.encoder.config.problem_type,
                                       architectures=[EncoderWithHeadForSequenceClassification.__name__])
        config.auto_map = {"AutoConfig": f"{CODE_FILE.stem}.{EncoderWithHeadConfig.__name__}",
                           "AutoModelForSequenceClassification":
                               f"{CODE_FILE.stem}.{EncoderWithHeadForSequenceClassification.__name__}"}
        config.save_pretrained(folder)
        save_model(self, str(folder / "model.safetensors"), metadata={"format": "pt"})
        shutil.copyfile(head_code.__file__, folder / CODE_FILE)

    def save_head_config(self, folder: Path) -> None:
        (Path(folder) / HEAD_CONFIG_FILE).write_text(json.dumps(asdict(self.head_config), indent=2))

    @classmethod
    def from_folder(cls, folder: Path) -> EncoderWithHead:
        """A model `save_pretrained` wrote: config.json holds the encoder's config and the head's."""
        folder = Path(folder)
        saved = json.loads((folder / "config.json").read_text())
        encoder_settings = {**saved["encoder"], "id2label": saved["id2label"], "label2id": saved["label2id"]}
        model = cls(AutoModel.from_config(encoder_config(encoder_settings)), HeadConfig(**saved["head"]))
        load_model(model, str(folder / "model.safetensors"))
        return model

    @classmethod
    def from_head_files(cls, encoder: nn.Module, folder: Path) -> EncoderWithHead:
        """A model saved by an earlier stellartune: an encoder folder, head.safetensors and head.json."""
        config = HeadConfig(**json.loads((Path(folder) / HEAD_CONFIG_FILE).read_text()))
        model = cls(encoder, config)
        model.head.load_state_dict(load_file(str(Path(folder) / "head.safetensors")))
        return model
