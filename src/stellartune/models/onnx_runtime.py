"""A model exported to ONNX, run by ONNX Runtime behind the interface the rest of stellartune uses:
called with token-id tensors, it returns the logits tensor (QA: start and end stacked), so batching,
tasks and post-processing are the same code as for a PyTorch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import StellarError

ONNX_FILE = "model.onnx"


class OnnxClassifier(torch.nn.Module):
    """ONNX Runtime on the CPU (graph optimisations on), holding no PyTorch parameters."""

    def __init__(self, path: str | Path):
        super().__init__()
        import onnxruntime as ort

        path = Path(path)
        if not path.exists():
            raise StellarError(f"{path}: no such file; export the model again (stellartune export)")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own types for a damaged or foreign file
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise StellarError(f"{path}: cannot load the ONNX model ({reason}); the file is damaged or not an "
                               "ONNX graph: export it again") from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {name: given[name].cpu().numpy().astype(np.int64) for name in self.input_names}
        return torch.from_numpy(self.session.run(None, feed)[0])
