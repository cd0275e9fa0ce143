"""Models: name resolution (aliases, folders, hub ids), heads, building and loading classifiers."""

from .heads import EncoderWithHead, HeadConfig
from .loading import (accepted_inputs, build_classifier, forward_logits, load_classifier, load_tokenizer,
                      output_layer)
from .registry import resolve_model

__all__ = ["EncoderWithHead", "HeadConfig", "accepted_inputs", "build_classifier", "forward_logits",
           "load_classifier", "output_layer", "load_tokenizer", "resolve_model"]
