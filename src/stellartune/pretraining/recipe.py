"""The continued-pretraining recipe: corpus -> blocks -> masked-LM model -> train -> run folder.

The run folder holds, beside the log and metrics, `model/`: a standard Hugging Face folder that
loads with AutoModelForMaskedLM, pipeline("fill-mask") and as `stellartune train --model`.
"""

from __future__ import annotations

import time

import numpy as np

from ..config import LoopConfig, PretrainConfig, describe_data
from ..data.examples import Examples
from ..data.store import Store
from ..errors import StellarError
from ..models import load_tokenizer, resolve_model
from ..models.quiet import quiet_transformers
from ..strategies import gradual_unfreezing
from ..training.engine import Run, evaluate, train_model
from ..training.lifecycle import close_run, run_folder, start_run
from ..training.recipe import noted
from .corpus import read_documents
from .objectives import PretrainingModel, load_masked_lm
from .task import PretrainingTask


def pretrain(config: PretrainConfig) -> dict:
    """Run the recipe; returns the held-out metrics of the final model."""
    accelerator, say = start_run(config)

    # ---- text
    if config.train is None:
        raise StellarError("--train is required: a .txt file (one document per line) or a table with a text column")
    store = Store.at(config.data_cache, config.progress)
    with accelerator.main_process_first():  # the others then map the files it stored, not copies of their own
        documents = noted(read_documents(config.train, config.text_column, store), say)
        held_out = (noted(read_documents(config.eval, config.text_column, store), say) if config.eval is not None
                    else None)
    if held_out is None:
        documents, held_out = split_documents(documents, config.eval_split, config.seed)
        say(f"held out {len(held_out)} of {len(documents) + len(held_out)} documents for evaluation "
            f"(--eval-split {config.eval_split}, seed {config.seed})")
    with run_folder(config, accelerator) as run_dir:  # one run at a time in a folder

        # ---- model and blocks
        model_path = resolve_model(config.model)
        tokenizer = load_tokenizer(model_path, config.trust_remote_code)
        if tokenizer.mask_token is None:
            raise StellarError(f"{config.model}: its tokenizer has no mask token, so it cannot be trained as a masked LM")
        lm, new_heads = load_masked_lm(model_path, config.trust_remote_code)
        if new_heads:
            tied = lm.get_output_embeddings().weight is lm.get_input_embeddings().weight
            say(f"{config.model} has no trained pretraining head: initialised {', '.join(new_heads)}"
                + ("; the MLM decoder is tied to the input embeddings" if tied else ""))
        task = PretrainingTask(config.masking, config.mask_prob, config.packing, config.nsp, config.sbo, config.seed)
        with accelerator.main_process_first():
            train_set = task.encode(documents, tokenizer, config.max_length)
            eval_set = task.encode(held_out, tokenizer, config.max_length, held_out=True)
        for name, encoded in (("training", train_set), ("held-out", eval_set)):
            if encoded.note:
                say(f"{name} documents: {encoded.note}")
        if not len(train_set) or not len(eval_set):
            raise StellarError(f"{describe_data(config.train)}: too little text for one training and one held-out block")
        say(f"{len(train_set)} training and {len(eval_set)} held-out blocks of up to {config.max_length} tokens "
            f"({describe(config)})" + (f"; {train_set.truncated} documents longer than a block were truncated"
                                       if train_set.truncated else ""))

        # ---- train, evaluate, save
        model = PretrainingModel(lm, nsp=config.nsp, sbo=config.sbo).to(accelerator.device)
        run = Run(model, task, train_set, eval_set, tokenizer, LoopConfig.of(config), accelerator, run_dir, say,
                  gradual_unfreezing(model, config))
        before = evaluate(run)
        say(f"held-out MLM loss before training: {summarise(before)}")
        train_model(run)
        metrics = evaluate(run)
        say(f"held-out MLM loss after training: {summarise(metrics)}")
        if accelerator.is_main_process:
            with quiet_transformers():
                lm.save_pretrained(run_dir / "model")
                tokenizer.save_pretrained(run_dir / "model")
            close_run(run_dir, {**metrics, "before": before}, run.state, time.time() - run.started, say)
            say(f"saved the model to {run_dir / 'model'}: fine-tune it with stellartune train --model {run_dir}")
        accelerator.wait_for_everyone()
        return metrics


def split_documents(documents: Examples, fraction: float, seed: int) -> tuple[Examples, Examples]:
    order = np.random.default_rng(seed).permutation(len(documents))
    count = max(1, round(len(documents) * fraction))
    return documents.subset(np.sort(order[count:])), documents.subset(np.sort(order[:count]))


def summarise(metrics: dict) -> str:
    return (f"{metrics['mlm_loss']:.4f} (perplexity {metrics['perplexity']:.1f}, masked-token accuracy "
            f"{metrics['masked_accuracy']:.4f})")


def describe(config: PretrainConfig) -> str:
    objectives = ["MLM"] + (["NSP"] if config.nsp else []) + (["SBO"] if config.sbo else [])
    layout = "sentence pairs" if config.nsp else "packed" if config.packing else "one document each"
    return f"{layout}; {' + '.join(objectives)}, {config.masking} masking of {config.mask_prob:.0%}"
