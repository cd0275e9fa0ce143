"""Sections to one self-contained HTML page: styles inline, charts as inline SVG, no script, nothing
fetched, so it opens offline, prints, and can be mailed as one file."""

from __future__ import annotations

import html

from ..evaluation.sections import FIGURES, Section, Table
from .plots import draw

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1360px;
       padding: 16px 24px; color: #1d1d1f; }
h1 { font-size: 22px; margin: 8px 0 2px; } h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 1px solid #ddd; }
h3 { font-size: 14px; margin: 14px 0 4px; }
.subtitle, .note { color: #555; } .summary { margin: 4px 0 10px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { flex: 1 1 560px; max-width: 100%; overflow-x: auto; } .chart svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 4px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
th { font-weight: 600; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
td.text { max-width: 640px; }
nav a { margin-right: 12px; }
@media print { body { max-width: none; } .chart { break-inside: avoid; } h2 { break-after: avoid; } nav { display: none; } }
"""


def render_page(title: str, subtitle: str, sections: list[Section]) -> str:
    links = " ".join(f'<a href="#{anchor(s.title)}">{html.escape(s.title)}</a>' for s in sections)
    body = "\n".join(render_section(s) for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            f'<h1>{html.escape(title)}</h1><div class="subtitle">{html.escape(subtitle)}</div>'
            f"<nav>{links}</nav>\n{body}\n</body></html>\n")


def anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower())


def render_section(section: Section) -> str:
    parts = [f'<section id="{anchor(section.title)}"><h2>{html.escape(section.title)}</h2>']
    if section.summary:
        parts.append(f'<p class="summary">{html.escape(section.summary)}</p>')
    charts = [item for item in section.items if isinstance(item, FIGURES)]
    if charts:
        parts.append('<div class="charts">' + "".join(f'<div class="chart">{draw(c)}</div>' for c in charts) + "</div>")
    parts += [render_table(item) for item in section.items if isinstance(item, Table)]
    return "\n".join(parts) + "</section>"


def render_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(cell(value) for value in row) + "</tr>" for row in table.rows)
    note = f'<div class="note">{html.escape(table.note)}</div>' if table.note else ""
    return f"<h3>{html.escape(table.title)}</h3>{note}<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def cell(value) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{'yes' if value else '' if value is None else 'no'}</td>"
    if isinstance(value, float):
        return f'<td class="number">{value:.4g}</td>' if abs(value) >= 1000 else f'<td class="number">{value:.4f}</td>'
    if isinstance(value, int):
        return f'<td class="number">{value}</td>'
    text = str(value)
    return f'<td class="text">{html.escape(text)}</td>'
