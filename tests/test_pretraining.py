"""Continued pretraining (`stellartune pretrain`): masking statistics over real IMDB text, NSP
pairs, a short MLM run that lowers held-out loss, and its output in transformers and `train`."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from conftest import data_file, imdb_reviews, tsv_slice

from stellartune.cli import main
from stellartune.errors import StellarError
from stellartune.models import load_tokenizer, resolve_model
from stellartune.pretraining.blocks import (
    IS_NEXT,
    RANDOM_NEXT,
    SpecialTokens,
    build_blocks,
    tokenize_pieces,
)
from stellartune.pretraining.corpus import read_documents
from stellartune.pretraining.masking import (
    IGNORED,
    MaskingCollator,
    fixed_masks,
    select_spans,
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("minilm"))


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    """400 IMDB test reviews: about 120k word pieces."""
    return [text for text, _ in imdb_reviews("test", 200)]


@pytest.fixture(scope="module")
def blocks(tokenizer, reviews) -> list[dict]:
    packed, _ = build_blocks(tokenizer, reviews, 128, packing=True, nsp=False, rng=np.random.default_rng(0))
    assert sum(len(b["input_ids"]) for b in packed) >= 100_000
    return packed


def test_packing_fills_every_block_and_line_by_line_keeps_one_document_each(tokenizer, reviews, blocks):
    sep, cls = tokenizer.sep_token_id, tokenizer.cls_token_id
    assert all(len(b["input_ids"]) == 128 for b in blocks[:-1])
    stream = [i for b in blocks for i in b["input_ids"][1:-1]]  # without each block's [CLS] ... [SEP]
    documents = tokenize_pieces(tokenizer, reviews)
    assert stream == [i for d in documents for i in [*d.ids, sep]]  # every token once, in order
    lines, truncated = build_blocks(tokenizer, reviews, 128, packing=False, nsp=False, rng=np.random.default_rng(0))
    assert len(lines) == len(reviews) and truncated == sum(len(d) > 126 for d in documents) > 0
    assert all(b["input_ids"][0] == cls and b["input_ids"][-1] == sep and len(b["input_ids"]) <= 128 for b in lines)


def masked(tokenizer, blocks, mode: str) -> dict:
    """The whole corpus masked once (fixed seeds), as one padded batch."""
    return MaskingCollator(tokenizer, mode, 0.15)(blocks, fixed_masks(7, list(range(len(blocks)))))


@pytest.mark.parametrize("mode", ["token", "whole-word", "span"])
def test_masking_selects_15_percent_split_80_10_10_and_never_special_tokens(tokenizer, blocks, mode):
    batch = masked(tokenizer, blocks, mode)
    original = MaskingCollator(tokenizer, mode, 0.15).pad_id * np.ones(batch["input_ids"].shape, dtype=int)
    for row, block in enumerate(blocks):
        original[row, : len(block["input_ids"])] = block["input_ids"]
    chosen = (batch["labels"] != IGNORED).numpy()
    special = np.isin(original, tokenizer.all_special_ids)  # [CLS], [SEP] and padding
    assert not (chosen & special).any()
    assert (batch["labels"].numpy()[chosen] == original[chosen]).all()
    assert abs(chosen.sum() / (~special).sum() - 0.15) < 0.005
    inputs = batch["input_ids"].numpy()[chosen]
    as_mask = (inputs == tokenizer.mask_token_id).mean()
    unchanged = (inputs == original[chosen]).mean()
    assert abs(as_mask - 0.8) < 0.01 and abs(unchanged - 0.1) < 0.01 and abs(1 - as_mask - unchanged - 0.1) < 0.01
    assert not np.isin(inputs[inputs != tokenizer.mask_token_id], tokenizer.all_special_ids).any()


def test_whole_word_masking_never_splits_a_word(tokenizer, blocks):
    chosen = (masked(tokenizer, blocks, "whole-word")["labels"] != IGNORED).numpy()
    words = split = 0
    for row, block in enumerate(blocks):
        starts = [i for i, start in enumerate(block["word_starts"]) if start] + [len(block["input_ids"]) - 1]
        text = ~np.isin(block["input_ids"], tokenizer.all_special_ids)  # a document separator ends a word too
        for start, end in zip(starts, starts[1:]):
            picked = chosen[row, start:end][text[start:end]]
            words += picked.any()
            split += picked.any() and not picked.all()
    assert words > 10_000 and split == 0
    pieces = sum(chosen[row, i] and not b["word_starts"][i] for row, b in enumerate(blocks)
                 for i in range(len(b["input_ids"])))
    assert pieces > 500  # words of several pieces were chosen, and every piece with them


def test_span_lengths_have_the_clipped_geometric_mean_and_cover_whole_words(tokenizer, blocks):
    lengths = np.arange(1, 11)
    weights = 0.2 * 0.8 ** (lengths - 1)
    expected = (lengths * weights).sum() / weights.sum()  # SpanBERT's 3.8 words
    rng, drawn, cut_short = np.random.default_rng(3), [], 0
    for block in blocks:
        ids, starts = np.array(block["input_ids"]), np.array(block["word_starts"])
        spans = select_spans(rng, ~np.isin(ids, tokenizer.all_special_ids), starts, "span", 0.15)
        for span in spans:
            # whole words only (a block cut by packing may start inside a word: after [CLS])
            special = np.isin(ids[[span.start - 1, span.end]], tokenizer.all_special_ids)
            assert (starts[span.start] or special[0]) and (starts[span.end] or special[1])
            words = starts[span.start : span.end].sum() + (not starts[span.start])
            assert 1 <= words <= span.drawn <= 10
            cut_short += words < span.drawn
            drawn.append(span.drawn)
    assert len(drawn) > 2_000
    assert abs(np.mean(drawn) - expected) < 0.15
    assert cut_short < 0.35 * len(drawn)  # most spans are placed at their drawn length


def test_nsp_pairs_are_half_random_and_true_pairs_are_consecutive(tokenizer, reviews):
    documents = reviews
    pairs, _ = build_blocks(tokenizer, documents, 128, packing=True, nsp=True, rng=np.random.default_rng(1))
    labels = np.array([pair["nsp_label"] for pair in pairs])
    assert len(pairs) > 1_000 and abs((labels == IS_NEXT).mean() - 0.5) < 0.04
    special = SpecialTokens(tokenizer)
    # every document's token stream, sentence pieces joined, as one searchable string
    streams = " | ".join(" ".join(map(str, p.ids)) for p in tokenize_pieces(tokenizer, documents)) + " "
    for pair in pairs[:400]:
        ids, types = np.array(pair["input_ids"]), np.array(pair["token_type_ids"])
        content = ~np.isin(ids, [special.separator, tokenizer.cls_token_id])
        first, second = ids[content & (types == 0)], ids[content & (types == 1)]
        assert len(first) and len(second) and len(ids) <= 128
        joined = " " + " ".join(map(str, [*first, *second])) + " "
        assert (joined in " " + streams) == (pair["nsp_label"] == IS_NEXT)
    assert set(labels) == {IS_NEXT, RANDOM_NEXT}


@pytest.fixture(scope="module")
def imdb_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imdb_corpus")
    reviews = [text.replace("\n", " ") for text, _ in imdb_reviews("train", 105)]
    (folder / "train.txt").write_text("\n".join(reviews[:200]) + "\n", encoding="utf-8")
    (folder / "held_out.txt").write_text("\n".join(reviews[200:]) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def pretrained_run(imdb_corpus):
    import stellartune

    output = imdb_corpus / "run"
    stellartune.pretrain(train=str(imdb_corpus / "train.txt"), eval=str(imdb_corpus / "held_out.txt"),
                         output=str(output), max_length=64, batch_size=16, max_steps=6, lr=3e-4, log_steps=2, eval_steps=3,
                         progress=False)
    return output


def step_losses(run) -> list[float]:
    return [record["loss"] for record in map(json.loads, (run / "log.jsonl").read_text().splitlines())
            if "loss" in record]


@pytest.mark.parametrize("layout", [dict(packing=True), dict(packing=False), dict(nsp=True)],
                         ids=["packed", "line-by-line", "sentence-pairs"])
def test_a_stored_corpus_pretrains_loss_for_loss_as_in_memory_and_is_reused(imdb_corpus, tmp_path, monkeypatch,
                                                                            caplog, layout):
    import stellartune
    from stellartune.pretraining import blocks as blocks_module

    monkeypatch.setattr(blocks_module, "DOCUMENT_CHUNK", 7)  # blocks packed (or pairs drawn) in many stored chunks
    caplog.set_level(logging.INFO, logger="stellartune")
    corpus, store = imdb_corpus / "train.txt", tmp_path / "store"
    settings = dict(max_length=64, batch_size=8, max_steps=3, log_steps=1, eval_steps=3, progress=False, **layout)
    stored = stellartune.pretrain(train=str(corpus), output=str(tmp_path / "stored"), data_cache=str(store), **settings)
    entries = {path.name: path.stat().st_mtime_ns for path in store.iterdir()}
    assert sorted(name.split("-")[0] for name in entries) == ["examples", "tokens", "tokens"]
    records = [{"text": line} for line in corpus.read_text(encoding="utf-8").split("\n") if line]
    in_memory = stellartune.pretrain(train=records, output=str(tmp_path / "in-memory"), **settings)
    assert len(step_losses(tmp_path / "stored")) == 3
    assert step_losses(tmp_path / "stored") == step_losses(tmp_path / "in-memory") and stored == in_memory

    caplog.clear()
    again = stellartune.pretrain(train=str(corpus), output=str(tmp_path / "again"), data_cache=str(store), **settings)
    assert again == stored
    assert "reused the rows read and checked before" in caplog.text
    assert caplog.text.count("reused the token ids") == 2
    assert entries == {path.name: path.stat().st_mtime_ns for path in store.iterdir()}


def test_short_imdb_pretraining_lowers_held_out_mlm_loss(pretrained_run):
    metrics = json.loads((pretrained_run / "metrics.json").read_text())
    assert metrics["steps"] == 6
    assert metrics["mlm_loss"] < metrics["before"]["mlm_loss"] - 2.0
    assert metrics["masked_accuracy"] > metrics["before"]["masked_accuracy"] + 0.02
    assert metrics["perplexity"] == pytest.approx(np.exp(metrics["mlm_loss"]))
    assert not (pretrained_run / "checkpoints").exists()
    assert not list((pretrained_run / "model").glob("*.bin"))  # safetensors only


def test_pretraining_report_draws_mlm_loss_and_masked_accuracy_over_steps(pretrained_run):
    from browser import need_chromium, open_report

    page = (pretrained_run / "report.html").read_text()
    for title in ("Evaluation masked_accuracy", "Evaluation mlm_loss", "Training loss"):
        assert f">{title}<" in page, title
    assert ">before.mlm_loss<" in page  # the held-out loss before training, beside the final one
    need_chromium()
    shown = open_report(pretrained_run / "report.html")
    assert shown["errors"] == []
    assert [s["id"] for s in shown["sections"]] == ["run", "training"]


def test_pretrained_model_loads_in_transformers_fill_mask_and_train(pretrained_run, tmp_path):
    import torch
    from transformers import (
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        pipeline,
    )

    import stellartune

    folder = str(pretrained_run / "model")
    mlm = AutoModelForMaskedLM.from_pretrained(folder)
    assert mlm.get_output_embeddings().weight is mlm.get_input_embeddings().weight  # still tied
    filled = pipeline("fill-mask", model=folder)("this movie was [MASK] and i loved it.")
    assert len(filled) == 5 and all(0 <= f["score"] <= 1 for f in filled)

    # as the base of a classifier: the pretrained encoder (pooler included) is what fine-tuning starts from
    classifier, info = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2,
                                                                          output_loading_info=True)
    assert {key.split(".")[0] for key in info["missing_keys"]} == {"classifier"}
    assert torch.equal(classifier.bert.encoder.layer[0].attention.self.query.weight,
                       mlm.bert.encoder.layer[0].attention.self.query.weight)
    train = tsv_slice(data_file("sst2/train.tsv"), tmp_path / "train.tsv", 64)
    model = stellartune.fit(model=str(pretrained_run), train=str(train), output=str(tmp_path / "tuned"),
                            max_steps=2, batch_size=16, freeze="encoder", progress=False)
    assert model.base_model == str(pretrained_run)
    original = AutoModelForMaskedLM.from_pretrained(resolve_model("minilm"))
    for name, weight in mlm.bert.named_parameters():  # the encoder train starts from is the adapted one
        tuned = model.model.get_parameter(f"bert.{name}")
        assert torch.equal(tuned, weight), name
    changed = [name for name, weight in original.bert.named_parameters()
               if not torch.equal(weight, mlm.bert.get_parameter(name))]
    assert len(changed) > 50  # ... which pretraining did change


def test_nsp_sbo_and_span_masking_train_from_the_command_line(imdb_corpus, caplog):
    caplog.set_level(logging.INFO, logger="stellartune")
    output = imdb_corpus / "nsp_sbo"
    code = main(["pretrain", "--train", str(imdb_corpus / "train.txt"), "--output", str(output), "--nsp", "--sbo",
                 "--masking", "span", "--max-length", "64", "--batch-size", "8", "--max-steps", "4", "--lr", "3e-4",
                 "--eval-split", "0.05", "--unfreeze", "gradual", "--unfreeze-every", "2", "--no-progress"])
    assert code == 0
    assert "training the head only" in caplog.text and "training the head and the top 1 layer(s)" in caplog.text
    metrics = json.loads((output / "metrics.json").read_text())
    before = metrics["before"]
    assert metrics["sbo_loss"] < before["sbo_loss"] - 1.0 and metrics["mlm_loss"] < before["mlm_loss"] - 1.0
    # a fresh NSP head starts at chance: a held-out loss near log 2 (at 4 steps it has not moved measurably yet)
    assert metrics["nsp_loss"] == pytest.approx(np.log(2), abs=0.1) and before["nsp_loss"] == pytest.approx(np.log(2), abs=0.05)
    assert metrics["loss"] == pytest.approx(metrics["mlm_loss"] + metrics["sbo_loss"] + metrics["nsp_loss"])


def test_unusable_corpus_and_settings_give_one_line_errors(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(StellarError, match="empty.txt: file is empty"):
        read_documents(str(tmp_path / "empty.txt"))
    (tmp_path / "reviews.csv").write_text('review,stars\n"Great fun.",5\n"",1\n', encoding="utf-8")
    with pytest.raises(StellarError, match=r'reviews.csv, line 3, column "review": empty'):
        read_documents(str(tmp_path / "reviews.csv"))
    (tmp_path / "good.txt").write_text("Great fun.\nA slow, dull film.\n", encoding="utf-8")
    for bad in ("1.5", "0", "-0.1"):  # on a usable corpus: only the setting can be what stops it
        assert main(["pretrain", "--train", str(tmp_path / "good.txt"), "--mask-prob", bad,
                     "--output", str(tmp_path / "run")]) == 2
        assert capsys.readouterr().err == f"error: --mask-prob must be between 0 and 1; got {float(bad)}\n"
    assert not (tmp_path / "run").exists()


def test_records_given_in_memory_pretrain(tmp_path):
    import stellartune

    records = [{"review": text} for text, _ in imdb_reviews("test", 20)]
    metrics = stellartune.pretrain(train=records, output=str(tmp_path / "run"), max_length=32, batch_size=8,
                                   max_steps=1, progress=False)
    assert metrics["mlm_loss"] > 0
    saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "train: <40 records given in memory>" in saved
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == 1
