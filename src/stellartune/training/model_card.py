"""The model card (README.md) of a run: base model, data, hyperparameters, results."""

from __future__ import annotations

import shutil

from ..config import describe_data
from ..evaluation.report import format_table
from ..models.heads import CODE_FILE
from ..strategies import describe_strategy

CARD = """# {name}

Fine-tuned with [stellartune](https://github.com/stellartune/stellartune) from **{model}** for
{task} over {n_labels} label(s): {labels}.
Transfer strategy: {strategy}.

## Use

```bash
stellartune predict --model {run_dir} --input texts.csv --output predictions.jsonl
```

```python
import stellartune
model = stellartune.load("{run_dir}")
model.predict(["some text"])
```
{pipeline}
## Data

- training: `{train}`
- evaluation: `{eval}`
- columns: {columns}

## Results (evaluation data, checkpoint kept: step {best_step} of {steps})

{results}

## Hyperparameters

{hyperparameters}
"""


def write_model_card(run_dir, config, result, state) -> None:
    task = result.task
    pipeline = pipeline_note(run_dir / "model", task)
    numbers = [[k, v] for k, v in result.metrics.items() if isinstance(v, float)]
    settings = [[k, v] for k, v in config.to_dict().items() if k not in ("train", "eval", "output")]
    text = CARD.format(
        name=run_dir.name, model=config.model, strategy=describe_strategy(config), task=task.name,
        n_labels=len(task.labels),
        labels=", ".join(task.labels[:30]) + (" ..." if len(task.labels) > 30 else ""), run_dir=run_dir,
        pipeline=pipeline, train=describe_data(config.train),
        eval=describe_data(config.eval) or (f"{config.held_out:.0%} held out of training" if config.held_out else "the training examples (none held out)"),
        columns=result.columns.describe(), best_step=state.best_step, steps=state.step,
        results=format_table(numbers, ["metric", "value"]), hyperparameters=format_table(settings, ["setting", "value"]))
    (run_dir / "README.md").write_text(text)
    shutil.copy(run_dir / "README.md", run_dir / "model" / "README.md")


def pipeline_note(folder, task) -> str:
    """How transformers loads the saved model: as it is, with the head's code (trust_remote_code), or not at all
    (a PEFT adapter or a cloze model: stellartune.load)."""
    if (folder / CODE_FILE).exists():
        return ("\nThe model folder loads in transformers with its trained head, whose code (`stellartune_head.py`) "
                f"it holds: `transformers.pipeline(\"{task.pipeline_task}\", model=\"{folder}\", "
                "trust_remote_code=True)` (read that file first); without trust_remote_code transformers refuses it.\n")
    if any((folder / name).exists() for name in ("adapter_config.json", "cloze.json")):
        return ""
    return ("\nThe model folder is a standard Hugging Face checkpoint:\n"
            f"`transformers.pipeline(\"{task.pipeline_task}\", model=\"{folder}\")`.\n")
