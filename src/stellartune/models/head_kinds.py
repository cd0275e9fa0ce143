"""The heads architectures ship, one per shape of output; a task names the one it trains (`Task.head_kind`)."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)


@dataclass(frozen=True)
class HeadKind:
    """An architecture's own head: the transformers class that builds and loads it, the suffix of the
    architectures it loads as (BertForTokenClassification), and PEFT's task type around it."""

    auto_class: type
    suffix: str
    peft_task_type: str


SEQUENCE_HEAD = HeadKind(AutoModelForSequenceClassification, "ForSequenceClassification", "SEQ_CLS")  # per text
TOKEN_HEAD = HeadKind(AutoModelForTokenClassification, "ForTokenClassification", "TOKEN_CLS")  # per token
SPAN_HEAD = HeadKind(AutoModelForQuestionAnswering, "ForQuestionAnswering", "QUESTION_ANS")  # start and end


def head_kind_of(architecture: str) -> HeadKind:
    """The head of an architecture by its class name; a sequence head unless its suffix says otherwise."""
    return next((kind for kind in (TOKEN_HEAD, SPAN_HEAD) if architecture.endswith(kind.suffix)), SEQUENCE_HEAD)
