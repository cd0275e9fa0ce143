"""`stellartune export`: a trained model as an ONNX graph for ONNX Runtime, fp32 or dynamic int8.

The graph is traced by torch.onnx from the same forward pass `predict` runs (the architecture's head
or stellartune's pooling + head; QA's start and end logits stacked), optimised by ONNX Runtime, and
quantized by its `quantize_dynamic`. Before it reports success, the export is checked against the
PyTorch model in fp32 on real examples (the run's own evaluation predictions, or --verify-data):
the largest logit difference and how many predictions agree, printed and saved as `export.json`.
An export outside tolerance fails with those figures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_folder, ours, refuse_foreign
from .errors import StellarError
from .inference.io import input_chunks
from .inference.predictor import META_FILE, FineTunedModel, read_saved
from .models.inputs import accepted_inputs, forward_logits
from .models.onnx_runtime import ONNX_FILE
from .models.quiet import quiet_transformers
from .strategies.peft import is_peft, merge

logger = logging.getLogger("stellartune")
FP32_TOLERANCE = 1e-3  # largest logit difference an fp32 graph may show (float reassociation: ~1e-6)
INT8_AGREEMENT = 0.95  # share of predictions an int8 graph must keep
VERIFY_EXAMPLES = 200


def export_onnx(run: str | Path, output: str | Path, quantize: str | None = None, verify_data: str | None = None,
                max_difference: float | None = None, min_agreement: float | None = None,
                overwrite: bool = False) -> dict:
    """Export, verify and write the folder `load`, `predict`, `evaluate` and `serve` take; returns the check.
    The export must stay within `max_difference` of the PyTorch logits (default: 1e-3 for fp32, none for
    int8) and keep `min_agreement` of its predictions (default: 95% for int8, none for fp32). `output`
    replaces an earlier export; a folder of anything else is refused (`overwrite`: written into)."""
    if max_difference is None and min_agreement is None:
        max_difference, min_agreement = (None, INT8_AGREEMENT) if quantize else (FP32_TOLERANCE, None)
    source, meta = read_saved(run)
    check_output(Path(run), source, Path(output), overwrite)
    model = FineTunedModel.load(source, device="cpu")
    texts, pairs = verification_inputs(Path(run), model, verify_data)
    output = Path(output)
    with atomic_folder(output, overwrite=overwrite) as folder:
        with tempfile.TemporaryDirectory() as scratch:
            traced = Path(scratch) / "traced.onnx"
            trace(model, traced)
            if quantize == "int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic
                from onnxruntime.quantization.shape_inference import quant_pre_process

                prepared = Path(scratch) / "prepared.onnx"  # shapes inferred, graph folded: what quantization expects
                with quiet_root_logger():  # it logs a line per tensor it leaves in fp32
                    quant_pre_process(str(traced), str(prepared), skip_symbolic_shape=True)
                    # per-channel scales, matrix products only (embeddings stay fp32): 98.2% of SST-2 dev labels
                    # kept against 97.0% with the defaults (tests/test_export.py)
                    quantize_dynamic(str(prepared), str(folder / ONNX_FILE), weight_type=QuantType.QInt8,
                                     per_channel=True, op_types_to_quantize=["MatMul"])
            else:
                optimise(traced, folder / ONNX_FILE)
        with quiet_transformers():
            model.tokenizer.save_pretrained(folder)
        (folder / META_FILE).write_text(json.dumps({**meta, "precision": "fp32", "backend": "onnx",
                                                    "quantized": quantize, "exported_from": str(source)}, indent=2))
        check = verify(model, FineTunedModel.load(folder), texts, pairs, quantize, max_difference, min_agreement)
        (folder / "export.json").write_text(json.dumps(check, indent=2))
    return check


def check_output(run: Path, source: Path, output: Path, overwrite: bool) -> None:
    """Before any work: the output is neither the model read nor a folder around or inside it (replacing
    it would delete the input), and holds nothing stellartune did not write unless `overwrite`."""
    place = output.resolve()
    for given in dict.fromkeys([source.resolve(), run.resolve()]):
        if place == given or given in place.parents or place in given.parents:
            relation = "is" if place == given else "is inside" if given in place.parents else "holds"
            raise StellarError(f"--output {output} {relation} the model it exports ({given}); choose a folder of "
                               "its own, such as a new folder beside the run")
    if not ours(place) and not overwrite:
        refuse_foreign(output)


def trace(model: FineTunedModel, path: Path) -> None:
    """The forward pass `predict` runs, as an ONNX graph with batch and sequence length left open."""
    network = model.model
    if is_peft(network):
        if model.strategy.get("peft") != "lora":
            raise StellarError(f"--peft {model.strategy.get('peft')}: its virtual tokens have no ONNX export here; "
                               "LoRA models export (merged into the weights)")
        network = merge(network)
    network = network.float().eval()
    if hasattr(network, "set_attn_implementation"):  # the eager attention traces to plain ONNX ops
        network.set_attn_implementation("eager")
    names = [n for n in model.tokenizer.model_input_names if n in accepted_inputs(network)]
    example = model.tokenizer(["a short example", "a second, longer example text"],
                              ["its pair", "another"] if model.columns.pair or model.task.needs_pairs else None,
                              padding=True, return_tensors="pt")

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, *inputs):
            return forward_logits(self.network, dict(zip(names, inputs)))

    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    axes["logits"] = {0: "batch"} if model.task.one_output_per_text else {0: "batch", 1: "tokens"}
    with torch.no_grad(), quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow it turned into constants
        torch.onnx.export(Logits().eval(), tuple(example[n] for n in names), str(path), input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=17, dynamo=False)


@contextlib.contextmanager
def quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


def optimise(traced: Path, path: Path) -> None:
    """ONNX Runtime's graph optimisations (attention, layer-norm and GELU fusions), saved with the graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # portable across CPUs
    options.optimized_model_filepath = str(path)
    ort.InferenceSession(str(traced), options, providers=["CPUExecutionProvider"])


def verification_inputs(run: Path, model: FineTunedModel, verify_data: str | None):
    """Real inputs to compare on: --verify-data, else the texts of the run's evaluation predictions."""
    if verify_data is not None:
        texts, pairs = next(input_chunks(verify_data, model))  # the first chunk holds more than enough
        return texts[:VERIFY_EXAMPLES], pairs[:VERIFY_EXAMPLES] if pairs else None
    records = run / "eval_predictions.jsonl"
    if not records.exists():
        raise StellarError(f"{run}: no eval_predictions.jsonl to verify the export on; give --verify-data FILE")
    rows = [json.loads(line) for line in records.read_text().splitlines()[:VERIFY_EXAMPLES]]
    return [r["text"] for r in rows], [r["text_pair"] for r in rows] if "text_pair" in rows[0] else None


def without_scores(prediction):
    """What a prediction says, without its probabilities (an entity's score included), which move in the last
    digits from one backend to another."""
    if isinstance(prediction, dict):
        return {k: without_scores(v) for k, v in prediction.items() if not isinstance(v, float) and k != "scores"}
    return [without_scores(item) for item in prediction] if isinstance(prediction, list) else prediction


def verify(reference: FineTunedModel, exported: FineTunedModel, texts, pairs, quantize: str | None,
           max_difference: float | None, min_agreement: float | None) -> dict:
    """Largest logit difference and prediction agreement of the export against PyTorch fp32."""
    examples = reference.task.prepare(texts, pairs, reference.columns)
    expected, encoded = reference.run(examples, precision="fp32")
    got, _ = exported.run(examples, precision="fp32")
    before = [without_scores(p) for p in reference.task.predictions(expected, encoded, examples)]
    after = [without_scores(p) for p in exported.task.predictions(got, encoded, examples)]
    check = {"examples": len(texts), "max_abs_logit_difference": float((expected - got).abs().max()),
             "prediction_agreement": float(np.mean([a == b for a, b in zip(before, after)])),
             "quantized": quantize}
    logger.info(f"checked on {check['examples']} examples against PyTorch fp32: largest logit difference "
                f"{check['max_abs_logit_difference']:.2e}, predictions agree on {check['prediction_agreement']:.1%}")
    kind = quantize or "fp32"
    if max_difference is not None and check["max_abs_logit_difference"] > max_difference:
        raise StellarError(f"the {kind} export differs from the PyTorch model by up to "
                           f"{check['max_abs_logit_difference']:.3g} in a logit (--max-difference {max_difference:g}); "
                           "not written")
    if min_agreement is not None and check["prediction_agreement"] < min_agreement:
        raise StellarError(f"the {kind} export keeps only {check['prediction_agreement']:.1%} of the PyTorch model's "
                           f"predictions (--min-agreement {min_agreement:g}); not written")
    return check

