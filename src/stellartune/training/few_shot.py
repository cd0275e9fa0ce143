"""Few labelled examples (`--few-shot`): a contrastive stage for the encoder, then a head fitted to its vectors.

With 8 examples per class, a new random head trained for a handful of optimizer steps scores near chance
(issue 31). SetFit's method works there: train the encoder so that two examples of one class get sentence
vectors of cosine similarity 1 and two of different classes 0, then fit a logistic regression on the vectors.
This stage does that on the run's own model (its encoder and pooling, sentence pairs encoded together as the
head reads them), on every pair in each class-balanced batch: a batch of 16 examples gives 120 pairs for one
forward pass, where a loss over pairs of texts (SetFit's, sentence-transformers' CosineSimilarityLoss) gives 8.
The regression is written into the model's linear head, so what follows (the loop, saving, serving, export)
sees an ordinary model.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..batching.batches import batch_inputs, inference_batches
from ..models import output_layer
from ..models.head_code import pool
from ..models.inputs import accepted_inputs
from ..strategies import train_mode
from .engine import Run

PASSES = 20  # times each example is drawn, on average (SetFit 0.x: 20 iterations of a positive and a negative pair)
MAX_STEPS = 300  # many classes (BANKING77's 77 x 8 examples would take 770): time as SetFit's or less
CLASSES_PER_BATCH = 4  # with more classes, a batch draws this many, 4 examples each


def class_balanced_batches(targets: list[int], batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless batches of a few classes with several examples each: every batch holds pairs of one class
    (similar) and of two (dissimilar)."""
    rng, by_class = random.Random(seed), defaultdict(list)
    for index, target in enumerate(targets):
        by_class[target].append(index)
    classes = sorted(by_class)
    drawn = min(len(classes), CLASSES_PER_BATCH)
    while True:
        chosen = rng.sample(classes, drawn)
        yield [i for c in chosen for i in rng.sample(by_class[c], min(batch_size // drawn, len(by_class[c])))]


def in_batch_cosine_loss(vectors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """SetFit's loss, the squared gap between the cosine similarity of two vectors and 1 (same class) or 0,
    over every pair in the batch."""
    unit = F.normalize(vectors.float(), dim=-1)
    same = (targets[:, None] == targets[None, :]).float()
    pairs = ~torch.eye(len(targets), dtype=torch.bool, device=vectors.device)
    return ((unit @ unit.T - same)[pairs] ** 2).mean()


def sentence_vectors(run: Run, indices: list[int]) -> torch.Tensor:
    """The pooled vectors the head reads, for some training examples."""
    model = run.unwrapped
    inputs = batch_inputs(run.train_set, indices, run.tokenizer, accepted_inputs(model))
    inputs = {key: value.to(run.accelerator.device) for key, value in inputs.items()}
    with run.accelerator.autocast():
        return pool(model.encoder(**inputs), inputs["attention_mask"], model.head_config.pooling)


def contrastive_stage(run: Run) -> None:
    """The encoder trained on the in-batch pairs of the training examples, PASSES times each."""
    loop, encoder, targets = run.loop, run.unwrapped.encoder, run.train_set.targets
    steps = min(max(1, PASSES * len(run.train_set) // loop.batch_size), MAX_STEPS)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=loop.lr)
    train_mode(run.unwrapped)
    progress = tqdm(total=steps, desc="contrastive stage", unit="step", dynamic_ncols=True,
                    disable=not (run.accelerator.is_main_process and loop.progress))
    losses = []
    for _, batch in zip(range(steps), class_balanced_batches(targets.tolist(), loop.batch_size, loop.seed)):
        loss = in_batch_cosine_loss(sentence_vectors(run, batch), targets[batch].to(run.accelerator.device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    progress.close()
    first, last = (sum(part) / len(part) for part in (losses[:10], losses[-10:]))
    run.say(f"few-shot: contrastive stage, {steps} steps of {loop.batch_size} examples (every pair in a batch): "
            f"loss {first:.4f} over the first 10 steps, {last:.4f} over the last 10")


def fit_head(run: Run) -> None:
    """A logistic regression on the training examples' unit-length vectors, written into the linear head."""
    model, targets = run.unwrapped, run.train_set.targets
    model.eval()
    batches = inference_batches(run.train_set.lengths, 64, 64 * 512)
    with torch.inference_mode():
        vectors = torch.cat([F.normalize(sentence_vectors(run, batch).float(), dim=-1).cpu() for batch in batches])
    order = [i for batch in batches for i in batch]
    from sklearn.linear_model import LogisticRegression  # here: scikit-learn takes 0.7 s to import, few runs need it

    regression = LogisticRegression(max_iter=1000, random_state=run.loop.seed).fit(vectors.numpy(),
                                                                                  targets[order].numpy())
    weight, bias = torch.tensor(regression.coef_).float(), torch.tensor(regression.intercept_).float()
    if len(regression.classes_) == 2:  # one row for class 1: as two logits, half each way
        weight, bias = torch.cat([-weight, weight]) / 2, torch.cat([-bias, bias]) / 2
    layer = output_layer(model, len(regression.classes_))
    with torch.no_grad():
        layer.weight.copy_(weight.to(layer.weight.device))
        layer.bias.copy_(bias.to(layer.bias.device))
    accuracy = regression.score(vectors.numpy(), targets[order].numpy())
    run.say(f"few-shot: head fitted by logistic regression on the {len(order)} training examples' vectors "
            f"(training accuracy {accuracy:.4f})")
