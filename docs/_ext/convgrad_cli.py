"""Sphinx extension: ``.. convgrad-cli::`` renders the `convgrad` command's argparse parsers
(convgrad.cli.build_parser) as reference pages: every subcommand with its usage, description,
and every argument with its help, choices and default. Generated at build time, so it is
always the parser the command runs."""
from __future__ import annotations

import argparse
import re

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

_SPECIAL = re.compile(r"([\\`*_|\[\]<>])")
_UNDERLINES = "-~^\""


def escape(text: str) -> str:
    """Plain text as reStructuredText that shows it unchanged."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _subcommands(parser: argparse.ArgumentParser):
    """(name, help, subparser) of each subcommand, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name), sub


def _describe(action: argparse.Action) -> str:
    parts = []
    if action.help and action.help != argparse.SUPPRESS:
        text = escape(action.help)
        parts.append(text if text.endswith((".", "!", "?")) else text + ".")
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        parts.append("Choices: " + ", ".join(f"``{c}``" for c in action.choices) + ".")
    if action.nargs == 0:                 # a flag: store_true / store_const
        parts.append("A flag (default: off).")
    elif action.required or not action.option_strings:
        parts.append("Required.")
    elif action.help and "default" in action.help.lower():
        pass                              # the help text states it
    elif action.default is not None and action.default != argparse.SUPPRESS:
        parts.append(f"Default: ``{action.default}``.")
    else:
        parts.append("Default: none (not set).")
    if action.type is not None and getattr(action.type, "__name__", "") in ("int", "float"):
        parts.append(f"Type: {action.type.__name__}.")
    return " ".join(parts)


def _term(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"``{action.metavar or action.dest}``" + (" ..." if action.nargs in ("+", "*") else "")
    if action.nargs == 0:
        return ", ".join(f"``{o}``" for o in action.option_strings)
    metavar = action.metavar or action.dest.upper()
    return ", ".join(f"``{o} {metavar}``" for o in action.option_strings)


def parser_rst(parser: argparse.ArgumentParser, title: str, help_text: str | None, depth: int) -> list[str]:
    lines = [title, _UNDERLINES[depth] * len(title), ""]
    if help_text:
        lines += [escape(help_text[0].upper() + help_text[1:]) + ".", ""]
    lines += ["::", "", *("   " + line for line in parser.format_usage().strip().splitlines()), ""]
    if parser.description and parser.description != help_text:
        lines += [escape(parser.description), ""]
    arguments = [a for a in parser._actions
                 if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
    for action in arguments:
        lines += [_term(action), "   " + _describe(action), ""]
    for name, sub_help, sub in _subcommands(parser):
        lines += parser_rst(sub, f"{title} {name}", sub_help, depth + 1)
    return lines


class CliReference(SphinxDirective):
    def run(self):
        import sys

        from convgrad.cli import build_parser
        parser = build_parser()
        for name, module in list(sys.modules.items()):      # rebuilt when a parser's module changes
            if name.startswith("convgrad.") and getattr(module, "__file__", None):
                self.env.note_dependency(module.__file__)
        lines = []
        for name, help_text, sub in _subcommands(parser):
            lines += parser_rst(sub, f"convgrad {name}", help_text, 0)
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="<convgrad-cli>"), container)
        return container.children


def setup(app):
    app.add_directive("convgrad-cli", CliReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
