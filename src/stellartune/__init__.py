"""stellartune: fine-tune pretrained transformer encoders on labeled data.

    import stellartune
    model = stellartune.fit(model="minilm", train="train.csv", eval="dev.csv", output="runs/x")
    model.predict(["A truly brilliant film."])
"""

from .config import PretrainConfig, TrainConfig
from .errors import StellarError
from .task_registry import register

__version__ = "0.1.0"
__all__ = ["fit", "tune", "load", "evaluate", "predict", "pretrain", "export", "report", "serve", "register", "TrainConfig", "PretrainConfig", "FineTunedModel", "StellarError"]
LAZY = {"fit": "api", "tune": "api", "pretrain": "api", "load": "api", "evaluate": "api", "predict": "api", "serve": "api", "export": "api", "report": "api", "FineTunedModel": "inference.predictor"}


def __getattr__(name: str):
    """Import torch and transformers on first use, so `stellartune --help` starts instantly."""
    if name in LAZY:
        import importlib

        return getattr(importlib.import_module(f".{LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'stellartune' has no attribute {name!r}")
