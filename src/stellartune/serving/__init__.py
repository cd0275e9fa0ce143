"""`stellartune serve`: a trained model behind HTTP (FastAPI + uvicorn), with micro-batching,
limits, health, readiness and Prometheus metrics.

    from stellartune.serving import create_app
    app = create_app("runs/sst2")          # an ASGI app, to mount in your own server
"""

from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "serve"]


def __getattr__(name: str):
    """FastAPI, torch and the model code load on first use: the CLI reads the settings without them."""
    if name in ("create_app", "serve"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'stellartune.serving' has no attribute {name!r}")
