"""Cloze-prompt classification (`--task cloze`): template encoding, verbalizer checks, and a
short SST-2 run whose saved model is a fill-mask checkpoint read at the template's [MASK]."""

from __future__ import annotations

import pytest
import torch
from conftest import data_file, imdb_reviews, tsv_slice

import stellartune
from stellartune.config import TrainConfig
from stellartune.data.examples import Columns, Examples
from stellartune.errors import StellarError
from stellartune.models import load_tokenizer, resolve_model
from stellartune.tasks.cloze import ClozeTask

TEMPLATE = "{text} It was [MASK]."


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("minilm"))


def examples(texts, labels) -> Examples:
    return Examples(texts, None, labels, [f"test.csv, line {i + 2}" for i in range(len(texts))],
                    Columns("text", None, "label"))


def test_long_texts_are_cut_but_the_template_and_its_mask_are_kept(tokenizer):
    reviews = [text for text, _ in imdb_reviews("test", 3)]
    task = ClozeTask.from_examples(examples(reviews, ["pos", "neg"] * 3),
                                   TrainConfig(template=TEMPLATE, verbalizer="pos=great,neg=terrible"))
    encoded = task.encode(examples(reviews, ["pos", "neg"] * 3), tokenizer, 32)
    assert encoded.truncated == 6
    for feature in encoded.features:
        ids = feature["input_ids"]
        assert len(ids) == 32 and ids.count(tokenizer.mask_token_id) == 1
        assert tokenizer.decode(ids[-5:]) == "it was [MASK]. [SEP]"
    assert task.labels == ["neg", "pos"]  # one output per label, in label order
    assert task.label_token_ids(tokenizer) == tokenizer.convert_tokens_to_ids(["terrible", "great"])


def test_unusable_templates_and_verbalizers_name_the_problem(tokenizer):
    data = examples(["fine", "bad"], ["1", "0"])
    with pytest.raises(StellarError, match="--template must hold"):
        ClozeTask.from_examples(data, TrainConfig(template="{text} It was good.", verbalizer="0=bad,1=good"))
    with pytest.raises(StellarError, match=r"test.csv, column \"label\": label\(s\) '1' have no word"):
        ClozeTask.from_examples(data, TrainConfig(template=TEMPLATE, verbalizer="0=terrible"))
    with pytest.raises(StellarError, match="expected label=word pairs"):
        ClozeTask.from_examples(data, TrainConfig(template=TEMPLATE, verbalizer="terrible,great"))
    task = ClozeTask.from_examples(data,
                                   TrainConfig(template=TEMPLATE, verbalizer="0=terrible,1=unwatchableness"))
    with pytest.raises(StellarError, match="1=unwatchableness is [2-9] tokens"):
        task.label_token_ids(tokenizer)


def test_cloze_training_saves_a_fill_mask_model_that_scores_the_label_words(tmp_path, tokenizer):
    from transformers import AutoModelForMaskedLM

    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 48)
    dev = tsv_slice(data_file("sst2/dev.tsv"), tmp_path / "dev.tsv", 48)
    model = stellartune.fit(task="cloze", template=TEMPLATE, verbalizer="0=terrible,1=great", train=str(train),
                            eval=str(dev), output=str(tmp_path / "run"), max_steps=3, batch_size=16, progress=False)
    texts = ["a gripping , beautifully acted film", "tedious and far too long"]
    loaded = stellartune.load(tmp_path / "run")
    probabilities = lambda m: [p["score"] for p in m.predict(texts)]
    assert loaded.task.name == "cloze" and probabilities(loaded) == pytest.approx(probabilities(model), abs=1e-5)

    # the classifier's logits are the masked LM's scores of "terrible" and "great" at the [MASK]
    lm = AutoModelForMaskedLM.from_pretrained(tmp_path / "run" / "model").eval()
    prompt = tokenizer([t + " It was [MASK]." for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        scores = lm(**prompt).logits[prompt["input_ids"] == tokenizer.mask_token_id]
    words = tokenizer.convert_tokens_to_ids(["terrible", "great"])
    expected = torch.softmax(scores[:, words], -1)
    got = torch.tensor([[p["scores"]["0"], p["scores"]["1"]] for p in loaded.predict(texts, precision="fp32")])  # as lm runs
    assert torch.allclose(got, expected, atol=1e-4)
