"""Check that a saved stellartune QA model works in transformers' question-answering pipeline, and
compare the two's answers and SQuAD scores on the same questions.

transformers 5 removed `pipeline("question-answering")`, so this runs under a transformers 4.x
interpreter, against stellartune's predictions written beforehand by the project's environment:

    .venv/bin/stellartune predict --model runs/qa --input dev.json --output ours.jsonl
    python3 -m venv /tmp/tf4 && /tmp/tf4/bin/pip install torch==2.13.0 "transformers<5"
    /tmp/tf4/bin/python benchmarks/qa_pipeline_parity.py runs/qa dev.json ours.jsonl

The pipeline gets the run's own --max-length, --doc-stride and --max-answer-length. Both are
scored with stellartune's copy of the official SQuAD EM/F1 (imported from src/, standard library only).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    from transformers import pipeline

    from stellartune.evaluation.squad import squad_scores

    run, squad, ours = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()), sys.argv[3]
    model = run / "model" if (run / "model").is_dir() else run
    meta = json.loads((model / "stellartune.json").read_text())
    questions = [(qa["question"], paragraph["context"], [a["text"] for a in qa["answers"]])
                 for article in squad["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    predictions = [json.loads(line) for line in open(ours)]
    qa = pipeline("question-answering", model=str(model), device=-1)
    theirs = [qa(question=q, context=c, max_seq_len=meta["max_length"], doc_stride=meta["task"]["doc_stride"],
                 max_answer_len=meta["task"]["max_answer_length"]) for q, c, _ in questions]
    same = sum((t["start"], t["end"]) == (p["start"], p["end"]) for t, p in zip(theirs, predictions))
    golds = [gold for _, _, gold in questions]
    print(f"identical answer spans: {same} of {len(questions)} ({same / len(questions):.1%})")
    for name, answers in (("stellartune", [p["answer"] for p in predictions]), ("pipeline", [t["answer"] for t in theirs])):
        scores = squad_scores(answers, golds)
        print(f"{name}: EM {100 * scores['exact_match']:.1f}, F1 {100 * scores['f1']:.1f}")


if __name__ == "__main__":
    main()
