"""Models: name resolution (aliases, folders, hub ids), heads, building and loading classifiers."""

from .heads import EncoderWithHead, HeadConfig
from .inputs import accepted_inputs, forward_logits
from .loading import build_classifier, load_classifier, load_tokenizer, output_layer
from .registry import resolve_model

__all__ = ["EncoderWithHead", "HeadConfig", "accepted_inputs", "build_classifier", "forward_logits",
           "load_classifier", "output_layer", "load_tokenizer", "resolve_model"]
