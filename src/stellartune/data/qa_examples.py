"""Question-answering examples: SQuAD JSON (v1.1, v2.0) or flat rows with a question, a context
and the answer (`answer_text` + `answer_start` columns, or a SQuAD/Hugging Face `answers` field).

Each example keeps every gold answer as {"text", "start"} (an empty list: unanswerable, SQuAD
v2); an answer's text must be found at its start character in the context, so a wrong offset
is reported with its row instead of silently training on the wrong span.
"""

from __future__ import annotations


from ..errors import StellarError, some
from .examples import Columns, Examples, first_present, is_missing, text_cell
from .readers import Table

QUESTION_NAMES, CONTEXT_NAMES = ("question", "query"), ("context", "passage", "document")
ANSWER_NAMES = ("answers", "answer_text", "answer")
START_COLUMN = "answer_start"


def is_qa_table(table: Table) -> bool:
    return "paragraphs" in table.columns or {"question", "context"} <= set(table.columns)


def flatten_squad(table: Table) -> Table:
    rows, positions = [], []
    for i, article in enumerate(table.rows):
        for p, paragraph in enumerate(article.get("paragraphs") or []):
            where = f"article {i + 1} ({article.get('title', 'untitled')}), paragraph {p + 1}"
            if not isinstance(paragraph, dict) or "context" not in paragraph or "qas" not in paragraph:
                raise StellarError(f"{table.source}, {where}: a SQuAD paragraph needs \"context\" and \"qas\"")
            for q, qa in enumerate(paragraph["qas"]):
                rows.append({"id": qa.get("id"), "title": article.get("title"), "question": qa.get("question"),
                             "context": paragraph["context"], "answers": qa.get("answers", []),
                             "is_impossible": qa.get("is_impossible", False)})
                positions.append(f"{where}, question {qa.get('id') or q + 1}")
    if not rows:
        raise StellarError(f"{table.source}: SQuAD file without questions")
    return Table(table.source, list(rows[0]), rows, positions)


def resolve_qa_columns(table: Table, question: str | None = None, context: str | None = None,
                       answer: str | None = None, need_label: bool = True) -> Columns:
    question = question or first_present(QUESTION_NAMES, table.columns)
    context = context or first_present(CONTEXT_NAMES, table.columns)
    answer = answer or first_present(ANSWER_NAMES, table.columns)
    if question is None or context is None or (need_label and answer is None):
        raise StellarError(f"{table.source}: question answering needs question, context and answers (or "
                           f"answer_text + answer_start) columns; columns found: {some(table.columns, 12)}")
    return Columns(question, context, answer if need_label else None)


def build_qa_examples(table: Table, columns: Columns, need_label: bool = True) -> Examples:
    questions = [text_cell(table, i, row, columns.text) for i, row in enumerate(table.rows)]
    # contexts keep their exact characters (no strip): answer offsets point into them
    contexts = [raw_context(table, i, row, columns.pair) for i, row in enumerate(table.rows)]
    answers = None
    if columns.label:
        answers = [row_answers(table, i, row, columns.label, contexts[i]) for i, row in enumerate(table.rows)]
    positions = [f"{table.source}, {p}" for p in table.positions]
    return Examples(questions, contexts, answers, positions, columns)


def raw_context(table: Table, i: int, row: dict, column: str) -> str:
    text_cell(table, i, row, column)  # the same checks and messages as any text cell
    return row[column]


def row_answers(table: Table, i: int, row: dict, column: str, context: str) -> list[dict]:
    """[{"text", "start"}, ...] from a list of SQuAD answers, a Hugging Face {text: [], answer_start: []}
    dict, or a text cell with the start in `answer_start` (found in the context when that is absent)."""
    value = row.get(column)
    if row.get("is_impossible") or is_missing(value) or value == []:
        return []
    if isinstance(value, dict):  # Hugging Face datasets' squad format
        value = [{"text": t, "answer_start": s} for t, s in zip(value.get("text", []), value.get("answer_start", []))]
    if isinstance(value, str):
        value = [{"text": value, "answer_start": row.get(START_COLUMN)}]
    if not isinstance(value, list) or not all(isinstance(a, dict) and "text" in a for a in value):
        raise StellarError(f"{table.locate(i, column)}: expected answers as {{\"text\", \"answer_start\"}} records, "
                           f"got {value!r:.80}")
    return [checked_answer(table, i, column, answer, context) for answer in value]


def checked_answer(table: Table, i: int, column: str, answer: dict, context: str) -> dict:
    text, start = str(answer["text"]), answer.get("answer_start")
    if is_missing(start):
        start = context.find(text)
        if start < 0:
            raise StellarError(f"{table.locate(i, column)}: answer {text!r} does not occur in the context")
    try:
        start = int(float(start))
    except (TypeError, ValueError):
        raise StellarError(f"{table.locate(i, START_COLUMN)}: answer start must be a character index, "
                           f"got {start!r}") from None
    if context[start : start + len(text)] != text:
        raise StellarError(f"{table.locate(i, column)}: answer {text!r} is not at character {start} of the "
                           f"context (found {context[start : start + len(text)]!r})")
    return {"text": text, "start": start}
