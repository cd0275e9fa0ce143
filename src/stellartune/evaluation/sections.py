"""What a run report shows, as data: sections of tables, text and charts that a task declares and
`stellartune.reports` draws. A task says what to show about its predictions; it never draws."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list]
    note: str = ""


@dataclass
class Heatmap:
    """A matrix with labelled rows and columns (a confusion matrix); `fmt`: how each cell is written."""

    title: str
    matrix: list[list[float]]
    rows: list[str]
    columns: list[str]
    x_label: str
    y_label: str
    fmt: str = "d"


@dataclass
class Lines:
    """Curves sharing x and y axes; `marks`: labelled vertical lines (the step kept, the chosen threshold);
    `diagonal`: the y = x reference (a reliability diagram)."""

    title: str
    x_label: str
    y_label: str
    series: dict[str, tuple[list[float], list[float]]]
    marks: dict[str, float] = field(default_factory=dict)
    diagonal: bool = False


@dataclass
class Bars:
    title: str
    categories: list[str]
    series: dict[str, list[float]]
    y_label: str


@dataclass
class Scatter:
    title: str
    x: list[float]
    y: list[float]
    x_label: str
    y_label: str
    diagonal: bool = True


@dataclass
class Histogram:
    title: str
    values: list[float]
    x_label: str
    bins: int = 30


@dataclass
class Section:
    title: str
    items: list = field(default_factory=list)
    summary: str = ""


FIGURES = (Heatmap, Lines, Bars, Scatter, Histogram)
