"""One self-contained HTML page for a Walkthrough: inline CSS and JavaScript, matrices as
coloured grids, each animation a player with step / back / play / pause controls that
highlights the window and the cell being written and shows that cell's sum written out.
No external resources, no images; works offline. Written atomically.

A player's frames are embedded as JSON: {"caption", "maps": [[[text, colour], ...], ...],
"frames": [[{"label", "map", "win", "mark", "hid"}, ...], ...], "sums": [...]}, where "map"
indexes "maps" (a map shared by many frames is stored once) and win/mark/hid list [row, col]
cells. The page's script draws frame k from it; tests drive the buttons in Chromium.
"""
from __future__ import annotations

import html
import json

import numpy as np

from .steps import Walkthrough, fmt

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
.mats, .stage { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: flex-start; margin: 1em 0; }
figure.m { margin: 0; } figure.m figcaption { font-family: monospace; font-size: 0.85em; margin-bottom: 0.3em; }
table.m { border-collapse: collapse; font-family: monospace; font-size: 0.9em; }
table.m td { border: 1px solid #aaa; min-width: 2.2em; height: 1.8em; text-align: center; padding: 0 0.3em; }
table.m td.win { outline: 3px solid rgb(255,140,0); outline-offset: -3px; font-weight: bold; }
table.m td.mark { outline: 3px solid rgb(0,150,60); outline-offset: -3px; font-weight: bold; }
table.m td.hid { background: #eee !important; color: transparent; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.player { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; margin: 1em 0; }
.player .caption { color: #555; font-size: 0.95em; }
.player button { font-size: 1em; margin-right: 0.3em; min-width: 4.5em; }
.player .count { font-family: monospace; margin-left: 0.8em; }
.player pre.sum { background: #fff8e6; white-space: pre-wrap; }
table.checks td { padding: 0.2em 0.6em; border-bottom: 1px solid #eee; vertical-align: top; }
.ok { color: #070; font-weight: bold; } .bad { color: #b00; font-weight: bold; }
"""

# The player: draws frame k of its JSON into .stage, the sum into pre.sum; buttons move k.
SCRIPT = r"""
(function () {
  function cell(v, cls) {
    return '<td class="' + cls + '" style="background:' + v[1] + '">' + v[0] + '</td>';
  }
  function panel(p, maps) {
    var m = maps[p.map], cls = {};
    [['win', p.win], ['mark', p.mark], ['hid', p.hid]].forEach(function (e) {
      (e[1] || []).forEach(function (rc) { var k = rc[0] + ',' + rc[1]; cls[k] = (cls[k] ? cls[k] + ' ' : '') + e[0]; });
    });
    var rows = m.map(function (row, r) {
      return '<tr>' + row.map(function (v, c) { return cell(v, cls[r + ',' + c] || ''); }).join('') + '</tr>';
    }).join('');
    return '<figure class="m"><figcaption></figcaption><table class="m">' + rows + '</table></figure>';
  }
  function setup(el) {
    var data = JSON.parse(el.querySelector('script[type="application/json"]').textContent);
    var n = data.frames.length, k = 0, timer = null;
    var stage = el.querySelector('.stage'), sum = el.querySelector('pre.sum'), count = el.querySelector('.count');
    function draw() {
      stage.innerHTML = data.frames[k].map(function (p) { return panel(p, data.maps); }).join('');
      var caps = stage.querySelectorAll('figcaption');
      data.frames[k].forEach(function (p, i) { caps[i].textContent = p.label; });
      sum.textContent = data.sums ? data.sums[k] : '';
      count.textContent = 'step ' + k + ' / ' + (n - 1);
      el.setAttribute('data-frame', k);
      el.setAttribute('data-playing', timer ? 'yes' : 'no');
    }
    function go(to) { k = Math.max(0, Math.min(n - 1, to)); draw(); }
    function pause() { if (timer) { clearInterval(timer); timer = null; } draw(); }
    function play() {
      if (timer) return;
      if (k === n - 1) k = 0;
      timer = setInterval(function () { if (k < n - 1) { go(k + 1); } if (k === n - 1) pause(); },
                          parseInt(el.getAttribute('data-ms'), 10));
      draw();
    }
    el.querySelector('button.back').addEventListener('click', function () { pause(); go(k - 1); });
    el.querySelector('button.step').addEventListener('click', function () { pause(); go(k + 1); });
    el.querySelector('button.play').addEventListener('click', play);
    el.querySelector('button.pause').addEventListener('click', pause);
    draw();
  }
  document.querySelectorAll('.player').forEach(setup);
})();
"""


def colour(v: float, scale: float) -> str:
    """Diverging map: 0 white, positive red, negative blue, full strength at |v| = scale."""
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, v / scale))
    fade = int(round(255 * (1 - 0.65 * abs(t))))
    return f"rgb(255,{fade},{fade})" if t >= 0 else f"rgb({fade},{fade},255)"


def _matrix(name: str, m: np.ndarray) -> str:
    scale = float(np.abs(m).max(initial=0.0))
    rows = "".join("<tr>" + "".join(f'<td style="background:{colour(v, scale)}">{fmt(v)}</td>' for v in row)
                   + "</tr>" for row in np.atleast_2d(m))
    return f'<figure class="m"><figcaption>{html.escape(name)}</figcaption><table class="m">{rows}</table></figure>'


def _cells(mask):
    return [] if mask is None else [[int(r), int(c)] for r, c in np.argwhere(mask)]


def player_data(anim) -> dict:
    """The animation as the JSON the page's player reads (see the module docstring)."""
    # one colour scale per panel position over all frames, so colours do not jump
    scales = [max(float(np.abs(f[k].values).max(initial=0.0)) for f in anim.frames)
              for k in range(len(anim.frames[0]))]
    maps, index, frames = [], {}, []
    for frame in anim.frames:
        panels = []
        for p, scale in zip(frame, scales):
            key = (p.values.shape, p.values.tobytes(), scale)
            if key not in index:
                index[key] = len(maps)
                maps.append([[[fmt(v), colour(v, scale)] for v in row] for row in p.values])
            panels.append({"label": p.label, "map": index[key], "win": _cells(p.window), "mark": _cells(p.mark),
                           "hid": _cells(p.hidden)})
        frames.append(panels)
    return {"caption": anim.caption, "maps": maps, "frames": frames, "sums": anim.sums}


def _player(anim, number: int, frame_ms: int = 900) -> str:
    data = json.dumps(player_data(anim), separators=(",", ":")).replace("</", "<\\/")
    return (f'<div class="player" id="player-{number}" data-frame="0" data-ms="{frame_ms}">'
            f'<div class="caption">{html.escape(anim.caption)}</div>'
            '<div class="controls"><button class="back" type="button">&#9664; back</button>'
            '<button class="step" type="button">step &#9654;</button>'
            '<button class="play" type="button">play</button><button class="pause" type="button">pause</button>'
            '<span class="count"></span></div>'
            '<div class="stage"></div><pre class="sum"></pre>'
            f'<script type="application/json">{data}</script></div>')


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
    players = 0
    for number, step in enumerate(wt.steps, start=1):
        parts.append(f'<section id="{html.escape(step.key)}"><h2>{number}. {html.escape(step.title)}</h2>')
        parts += [_prose(t) for t in step.text]
        if step.matrices:
            parts.append('<div class="mats">' + "".join(_matrix(n, m) for n, m in step.matrices) + "</div>")
        for a in step.animations:
            parts.append(_player(a, players))
            players += 1
        if step.equations:
            parts.append('<pre class="equations">' + html.escape("\n".join(step.equations)) + "</pre>")
        if step.checks:
            parts.append(_checks(step.checks))
        parts.append("</section>")
    verdict = "OK" if wt.passed else "FAILED"
    parts.append(f'<p class="{"ok" if wt.passed else "bad"}">Check result: {verdict} '
                 f"({sum(c.passed for c in wt.checks)} of {len(wt.checks)} checks agree)</p>"
                 f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write(wt: Walkthrough, path) -> None:
    """Render and write atomically."""
    write_page(render(wt), path)


def write_page(page: str, path) -> None:
    """Write a page atomically (checkpoint.atomic_write_text: a temporary file in the same
    directory, then os.replace; an OSError names the page's path)."""
    from ..checkpoint import atomic_write_text
    atomic_write_text(str(path), page)
