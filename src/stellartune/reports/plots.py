"""Report charts drawn by matplotlib as inline SVG: static vector images that need no script, no
network and no viewer but a browser, print sharply, and keep their text as text."""

from __future__ import annotations

import io
import re

import numpy as np

from ..evaluation.sections import Bars, Heatmap, Histogram, Lines, Scatter

WIDTH = 6.4  # inches: two charts side by side on a laptop screen
HEIGHT = 3.6


def figure(width: float = WIDTH, height: float = HEIGHT):
    """A figure without pyplot: no global state, no GUI backend, safe in any thread."""
    import matplotlib
    from matplotlib.figure import Figure

    matplotlib.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                                "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
                                "text.parse_math": False, "text.usetex": False})  # labels are text: "cost $5"
    return Figure(figsize=(width, height), layout="constrained")


def to_svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    # the <svg> element only: no XML prolog or DOCTYPE inside an HTML page
    return re.sub(r"^.*?(?=<svg)", "", buffer.getvalue(), flags=re.S)


def draw(item) -> str:
    return to_svg(DRAW[type(item)](item))


def draw_lines(item: Lines):
    fig = figure()
    axes = fig.add_subplot()
    for name, (x, y) in item.series.items():
        axes.plot(x, y, marker="o" if len(x) <= 30 else None, markersize=3, label=name)
    if item.diagonal:
        axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for name, x in item.marks.items():
        axes.axvline(x, linestyle=":", color="crimson", label=name)
    axes.set(title=item.title, xlabel=item.x_label, ylabel=item.y_label)
    if len(item.series) > 1 or item.marks or item.diagonal:
        axes.legend(fontsize=8)
    return fig


def draw_bars(item: Bars):
    count = len(item.categories)
    fig = figure(width=max(WIDTH, 0.25 * count * len(item.series)))
    axes = fig.add_subplot()
    width = 0.8 / len(item.series)
    for k, (name, values) in enumerate(item.series.items()):
        axes.bar(np.arange(count) + k * width, values, width, label=name)
    axes.set_xticks(np.arange(count) + 0.4 - width / 2, item.categories, rotation=60 if count > 6 else 0,
                    ha="right" if count > 6 else "center", fontsize=8)
    axes.set(title=item.title, ylabel=item.y_label)
    if len(item.series) > 1:
        axes.legend(fontsize=8)
    return fig


def draw_heatmap(item: Heatmap):
    matrix = np.array(item.matrix, dtype=float)
    side = max(HEIGHT, 0.3 * len(item.rows) + 1.5)
    fig = figure(width=side + 1.2, height=side)
    axes = fig.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=axes, shrink=0.8)
    axes.set_xticks(range(len(item.columns)), item.columns, rotation=60 if len(item.columns) > 4 else 0,
                    ha="right" if len(item.columns) > 4 else "center", fontsize=7)
    axes.set_yticks(range(len(item.rows)), item.rows, fontsize=7)
    axes.grid(False)
    if len(item.rows) <= 20:  # numbers in the cells while they stay readable
        for (i, j), value in np.ndenumerate(matrix):
            axes.text(j, i, format(int(value) if item.fmt == "d" else value, item.fmt), ha="center", va="center",
                      fontsize=7, color="white" if value > matrix.max() / 2 else "black")
    axes.set(title=item.title, xlabel=item.x_label, ylabel=item.y_label)
    return fig


def draw_scatter(item: Scatter):
    fig = figure()
    axes = fig.add_subplot()
    axes.scatter(item.x, item.y, s=8, alpha=0.5)
    if item.diagonal:
        low, high = min(min(item.x), min(item.y)), max(max(item.x), max(item.y))
        axes.plot([low, high], [low, high], linestyle="--", color="grey", label="y = x")
        axes.legend(fontsize=8)
    axes.set(title=item.title, xlabel=item.x_label, ylabel=item.y_label)
    return fig


def draw_histogram(item: Histogram):
    fig = figure()
    axes = fig.add_subplot()
    axes.hist(item.values, bins=item.bins)
    axes.set(title=item.title, xlabel=item.x_label, ylabel="examples")
    return fig


DRAW = {Lines: draw_lines, Bars: draw_bars, Heatmap: draw_heatmap, Scatter: draw_scatter, Histogram: draw_histogram}
