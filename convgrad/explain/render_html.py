"""One self-contained HTML page for a Walkthrough: inline CSS, matrices as coloured grids,
animations as GIFs in base64 data URIs; no external resources. Written atomically."""
from __future__ import annotations

import base64
import html
import os
import tempfile

import numpy as np

from .animate import colour, gif_bytes
from .steps import Walkthrough, fmt

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
.mats { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; margin: 1em 0; }
figure.m { margin: 0; } figure.m figcaption { font-family: monospace; font-size: 0.85em; margin-bottom: 0.3em; }
table.m { border-collapse: collapse; font-family: monospace; font-size: 0.9em; }
table.m td { border: 1px solid #aaa; min-width: 2.2em; height: 1.8em; text-align: center; padding: 0 0.3em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
figure.anim { margin: 1em 0; } figure.anim img { border: 1px solid #ddd; }
figure.anim figcaption { font-size: 0.9em; color: #555; }
table.checks td { padding: 0.2em 0.6em; border-bottom: 1px solid #eee; vertical-align: top; }
.ok { color: #070; font-weight: bold; } .bad { color: #b00; font-weight: bold; }
"""


def _matrix(name: str, m: np.ndarray) -> str:
    scale = float(np.abs(m).max(initial=0.0))
    rows = "".join("<tr>" + "".join(f'<td style="background:rgb{colour(v, scale)}">{fmt(v)}</td>' for v in row)
                   + "</tr>" for row in np.atleast_2d(m))
    return f'<figure class="m"><figcaption>{html.escape(name)}</figcaption><table class="m">{rows}</table></figure>'


def _gif(anim) -> str:
    data = base64.b64encode(gif_bytes(anim)).decode("ascii")
    return (f'<figure class="anim"><img alt="{html.escape(anim.caption)}" src="data:image/gif;base64,{data}">'
            f"<figcaption>{html.escape(anim.caption)}</figcaption></figure>")


def _checks(checks) -> str:
    rows = "".join(f"<tr><td>{html.escape(c.name)}</td><td>{' == '.join(html.escape(r) for r in c.routes)}</td>"
                   f"<td>max |difference| = {c.max_diff:.3g}</td>"
                   f"<td class=\"{'ok' if c.passed else 'bad'}\">{'OK' if c.passed else 'FAILED'}</td></tr>"
                   for c in checks)
    return f'<table class="checks">{rows}</table>'


def _prose(line: str) -> str:
    """Lines starting with a space are formulas (kept verbatim), the rest paragraphs."""
    return f"<pre>{html.escape(line.strip())}</pre>" if line.startswith(" ") else f"<p>{html.escape(line)}</p>"


def render(wt: Walkthrough) -> str:
    """The page as a string."""
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(wt.title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(wt.title)}</h1>"]
    parts += [_prose(t) for t in wt.intro]
    for number, step in enumerate(wt.steps, start=1):
        parts.append(f'<section id="{html.escape(step.key)}"><h2>{number}. {html.escape(step.title)}</h2>')
        parts += [_prose(t) for t in step.text]
        if step.matrices:
            parts.append('<div class="mats">' + "".join(_matrix(n, m) for n, m in step.matrices) + "</div>")
        parts += [_gif(a) for a in step.animations]
        if step.equations:
            parts.append("<pre>" + html.escape("\n".join(step.equations)) + "</pre>")
        if step.checks:
            parts.append(_checks(step.checks))
        parts.append("</section>")
    verdict = "OK" if wt.passed else "FAILED"
    parts.append(f'<p class="{"ok" if wt.passed else "bad"}">Check result: {verdict} '
                 f"({sum(c.passed for c in wt.checks)} of {len(wt.checks)} checks agree)</p></body></html>")
    return "\n".join(parts)


def write(wt: Walkthrough, path) -> None:
    """Render and write atomically: a temporary file in the same directory, then os.replace."""
    page = render(wt)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".explain-", suffix=".html.tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)                     # mkstemp creates 0600; a page is for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
