"""The site's reference pages, generated from the code at build time (a MkDocs hook, `mkdocs.yml`).

A page that holds `<!-- reference: settings -->` gets every setting of every schema (`TrainConfig`,
`PretrainConfig`, the serve and tune settings) with its flag, default and help text; one that holds
`<!-- reference: commands -->` gets every command of the argparse parser with its arguments. One source:
a setting added without a help text stops the build.
"""

from __future__ import annotations

import argparse
import dataclasses

import yaml
from mkdocs.exceptions import PluginError

from stellartune.cli import build_parser
from stellartune.config import PretrainConfig, TrainConfig, choices_of, flag_name
from stellartune.serving.settings import ServeSettings
from stellartune.tuning.settings import TuneSettings

# (heading, schema, the commands that take it)
SCHEMAS = (
    ("Training", TrainConfig,
     "`train` and `tune` flags, `stellartune.fit(...)` and `tune(...)` keywords, YAML keys of `--config`"),
    ("Continued pretraining", PretrainConfig, "`pretrain` flags and `stellartune.pretrain(...)` keywords"),
    ("Search", TuneSettings, "`tune` flags and `stellartune.tune(...)` keywords, besides the training settings"),
    ("Serving", ServeSettings, "`serve` flags and `stellartune.serve(...)` keywords"),
)


def cell(text) -> str:
    """Text safe inside a Markdown table cell (a `[` would start a link)."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("[", "\\[")


def code_cell(text) -> str:
    """A code span inside a Markdown table cell: there a backslash is kept as written, so only `|` is escaped."""
    return f"`{str(text).replace('|', chr(92) + '|')}`"


def yaml_value(value) -> str:
    """A default as it is written in a YAML config file: null, true, 0.1, [256]."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def default_of(field: dataclasses.Field):
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def help_of(schema, field: dataclasses.Field) -> str:
    """The field's help text; a field declared without one stops the build."""
    text = field.metadata.get("help")
    if not text:
        raise PluginError(f"{schema.__name__}.{field.name} has no help text: declare it with "
                          f"setting(default, help) so the CLI, the YAML file and this reference describe it")
    return text


def settings_table(schema) -> str:
    rows = ["| setting | flag | default | choices | what it does |", "|---|---|---|---|---|"]
    for field in dataclasses.fields(schema):
        choices = ", ".join(map(str, choices_of(field) or ()))
        rows.append(f"| `{field.name}` | `{flag_name(field)}` | {code_cell(yaml_value(default_of(field)))} "
                    f"| {cell(choices)} | {cell(help_of(schema, field))} |")
    return "\n".join(rows)


def settings_reference() -> str:
    parts = []
    for heading, schema, used_by in SCHEMAS:
        parts.append(f"## {heading}\n\n`{schema.__name__}`: {used_by}.\n\n{settings_table(schema)}\n")
    return "\n".join(parts)


def subcommands(parser: argparse.ArgumentParser) -> tuple[dict, dict]:
    """The parser's commands by name, and their one-line summaries (argparse keeps both on its subparsers action)."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices, {choice.dest: choice.help for choice in action._choices_actions}


def argument_row(action: argparse.Action) -> str:
    name = ", ".join(f"`{flag}`" for flag in action.option_strings) or f"`{action.dest}`"
    if isinstance(action, argparse.BooleanOptionalAction):
        name = f"`{action.option_strings[0]}`, `{action.option_strings[1]}`"
    choices = ", ".join(map(str, action.choices or ()))
    return f"| {name} | {cell(choices)} | {cell(action.help or '')} |"


def commands_reference() -> str:
    commands, summaries = subcommands(build_parser())
    parts = []
    for name, command in commands.items():
        rows = ["| argument | choices | what it does |", "|---|---|---|"]
        rows += [argument_row(a) for a in command._actions if not isinstance(a, argparse._HelpAction)]
        about = command.description or summaries.get(name) or ""
        parts.append(f"## `stellartune {name}`\n\n{cell(about)}\n\n```text\n{command.format_usage().strip()}\n```\n\n"
                     + "\n".join(rows) + "\n")
    return "\n".join(parts)


GENERATORS = {"<!-- reference: settings -->": settings_reference, "<!-- reference: commands -->": commands_reference}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, generate in GENERATORS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
