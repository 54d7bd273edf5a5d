"""Sphinx extension: ``.. convgrad-api:: PAGE`` documents every public name of the modules of one
API page (public_api.PAGES) with autodoc, so the reference cannot miss a name the code exports."""
from __future__ import annotations

import inspect
import re

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

import public_api


def _role(value) -> str:
    return "class" if inspect.isclass(value) else "func"


def module_rst(module_name: str, places: dict[int, str]) -> list[str]:
    """reStructuredText for one module: its docstring, then each name it is the home of; re-exports link."""
    module = public_api.load(module_name)
    lines = [module_name, "-" * len(module_name), "", f".. automodule:: {module_name}", ""]
    elsewhere = []
    for name in public_api.public_names(module):
        value = getattr(module, name)
        dotted = f"{module_name}.{name}"
        if inspect.ismodule(value):
            elsewhere.append(f":mod:`{value.__name__}`")
        elif not (inspect.isclass(value) or inspect.isfunction(value)):
            lines += [f".. py:data:: {dotted}", f"   :type: {type(value).__name__}", "",
                      "   " + public_api.constant_doc(module_name, name), ""]
        elif places.get(id(value)) != dotted:
            elsewhere.append(f":{_role(value)}:`{name} <{places[id(value)]}>`")
        elif inspect.isclass(value):
            lines += [f".. autoclass:: {dotted}", "   :members:", ""]
        else:
            lines += [f".. autofunction:: {dotted}", ""]
    if elsewhere:
        lines += [f"Also importable from ``{module_name}``: " + ", ".join(elsewhere) + ".", ""]
    return lines


class ApiPage(SphinxDirective):
    required_arguments = 1

    def run(self):
        places = public_api.canonical_places()
        lines = []
        for module_name in public_api.PAGES[self.arguments[0]]:
            lines += module_rst(module_name, places)
            self.env.note_dependency(public_api.load(module_name).__file__)   # rebuilt when its names change
        content = StringList(lines, source=f"<convgrad-api {self.arguments[0]}>")
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, content, container)
        return container.children


_LITERAL = re.compile(r"(``.*?``|:\w+:`[^`]*`|`[^`]*`_?)")


_TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?=\W|$)")      # clip_grad_norm_, requires_grad_


def _escape_prose(line: str) -> str:
    """Escape *, | and a name's trailing _ outside inline literals and roles."""
    parts = _LITERAL.split(line)
    return "".join(p if i % 2 else _TRAILING_UNDERSCORE.sub(r"\\_", p.replace("*", r"\*").replace("|", r"\|"))
                   for i, p in enumerate(parts))


def plain_text_docstring(app, what, name, obj, options, lines) -> None:
    """convgrad's docstrings are read in a terminal (help()) as much as on this site, so they write
    shapes and formulas as plain text: ``(N, C, *S)``, ``|x|``, ``a*b``, ``clip_grad_norm_``. Here *, |
    and a trailing _ are characters, never emphasis, substitutions or links; literal blocks (after
    ``::``) and doctests are left alone."""
    in_block, block_indent, after_colons, in_doctest = False, 0, False, False
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if in_block and stripped and indent <= block_indent:
            in_block = False
        if after_colons and stripped:
            in_block, after_colons = indent > block_indent, False
        if stripped.startswith(">>>"):
            in_doctest = True
        elif not stripped:
            in_doctest = False
        if not (in_block or in_doctest):
            lines[i] = _escape_prose(line)
        if stripped.endswith("::") and not in_block and not in_doctest:
            after_colons, block_indent = True, indent


def setup(app):
    app.add_directive("convgrad-api", ApiPage)
    app.connect("autodoc-process-docstring", plain_text_docstring, priority=400)   # before napoleon (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
