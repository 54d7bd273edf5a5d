"""The `explain --html` page in headless Chromium: the step / back / play / pause controls are
clicked, and at every step the highlighted window, the cell written and the sum written out
are read from the page and compared with the walk-through's numbers and with the lines the
text mode prints. A screenshot shows the highlight colours. Skips without Chromium."""
import io
import re
import time

import numpy as np
import pytest

from cdp import Browser, chromium
from convgrad.explain import (explain_conv, explain_conv_nd, explain_pool, explain_transposed, render_text,
                              write_html)
from convgrad.explain.steps import fmt

pytestmark = pytest.mark.skipif(chromium() is None, reason="needs chromium (installed by .ci/run)")

BUILDS = {
    "worked example": lambda: explain_conv(),
    "stride, padding, dilation, 2 channels, 2 filters": lambda: explain_conv(stride=2, padding=1, dilation=2,
                                                                             channels=2, filters=2, seed=3),
    "max pool": lambda: explain_pool(),
    "1-D": lambda: explain_conv_nd(1, seed=2, stride=2),
    "depthwise": lambda: explain_conv_nd(2, groups=2, channels=2, filters=2, seed=1),
    "transposed, padding 1": lambda: explain_transposed(stride=2, padding=1, seed=3),
}


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


def js(player, expr):
    return f"(function(){{var el=document.querySelector('#player-{player}');{expr}}})()"


def read(page, player):
    """(frame, sum text, window cell texts, marked cell texts, hidden count) as the page shows them."""
    return page.eval(js(player, "return [parseInt(el.dataset.frame), el.querySelector('pre.sum').textContent,"
                                "[...el.querySelectorAll('td.win')].map(e => e.textContent),"
                                "[...el.querySelectorAll('td.mark')].map(e => e.textContent),"
                                "el.querySelectorAll('td.hid').length];"))


def products(line):
    """The 'a*b' products of a written-out sum, as float pairs; and the value after the last '='."""
    body, _, value = line.split("  <-")[0].rpartition(" = ")
    pairs = [(float(a), float(b)) for a, b in re.findall(r"\(?(-?[\d.e+-]+)\)?\*\(?(-?[\d.e+-]+)\)?", body)]
    return pairs, float(value)


@pytest.mark.parametrize("name", BUILDS)
def test_every_step_of_every_player_shows_the_computed_numbers(name, browser, tmp_path):
    wt = BUILDS[name]()
    text = render_text(wt)
    path = tmp_path / "page.html"
    write_html(wt, path)
    page_src = path.read_text()
    assert "http://" not in page_src and "https://" not in page_src and "<img" not in page_src
    page = browser.open(path.as_uri())
    anims = [a for s in wt.steps for a in s.animations]
    step_of = [s for s in wt.steps for _ in s.animations]
    compared = 0
    assert page.eval("document.querySelectorAll('.player').length") == len(anims) > 0
    for number, anim in enumerate(anims):
        page.scroll_to(f"#player-{number}")
        frame0 = read(page, number)
        assert frame0[0] == 0 and frame0[1] == (anim.sums[0] if anim.sums else "")
        for k in range(1, len(anim.frames)):
            page.click(f"#player-{number} button.step")
            frame, line, win, mark, hidden = read(page, number)
            assert frame == k
            panels = anim.frames[k]
            # the highlighted cells are the frame's window and mark, with the computed values
            assert win == [fmt(p.values[r, c]) for p in panels if p.window is not None
                           for r, c in np.argwhere(p.window)]
            assert mark == [fmt(p.values[r, c]) for p in panels if p.mark is not None for r, c in np.argwhere(p.mark)]
            assert hidden == sum(int(p.hidden.sum()) for p in panels if p.hidden is not None)
            if anim.sums is None:
                continue
            assert line == anim.sums[k]
            if line.startswith(("v", "y", "dJ/d")) and "*" in line:
                pairs, value = products(line)
                # the sum written out adds up to the value it states, which is the cell written
                assert abs(sum(a * b for a, b in pairs) - value) <= 1e-3 * max(1.0, abs(value))
                out = panels[-1]
                assert fmt(value) == fmt(out.values[tuple(np.argwhere(out.mark)[0])])
            capped = any(q.startswith("...") for q in step_of[number].equations)
            is_equation = re.match(r"^\S+\[[\d,]+\] = .+ = -?[\d.e+-]+(\s{2,}.*)?$", line)
            if not capped and is_equation:                 # the routing/stamping notes are page-only
                assert line in text.splitlines(), f"{line!r} is not what the text mode prints"
                compared += 1
        # back steps one frame back and shows that frame's sum
        page.click(f"#player-{number} button.back")
        frame, line, *_ = read(page, number)
        assert frame == len(anim.frames) - 2
        assert line == (anim.sums[frame] if anim.sums else "")
    assert compared > 0 or name.startswith("transposed")      # its player writes stamps, not sums


def test_transposed_player_ends_on_the_output(browser, tmp_path):
    wt = explain_transposed(stride=2, padding=1, seed=3)
    path = tmp_path / "page.html"
    write_html(wt, path)
    page = browser.open(path.as_uri())
    anim = wt.step("scatter").animations[0]
    page.scroll_to("#player-0")
    for _ in range(len(anim.frames) - 1):
        page.click("#player-0 button.step")
    shown = page.eval("[...document.querySelectorAll('#player-0 table.m')].pop().innerText")
    rows = [[float(v) for v in r.split()] for r in shown.strip().splitlines()]
    assert np.array_equal(rows, wt.results["y"])          # every stamp added: the transposed convolution


def test_play_advances_and_pause_stops(browser, tmp_path):
    wt = explain_conv(seed=1, stride=1)
    path = tmp_path / "page.html"
    write_html(wt, path)
    page = browser.open(path.as_uri())
    page.eval("document.querySelectorAll('.player').forEach(el => el.setAttribute('data-ms', '150'))")
    page.scroll_to("#player-0")
    page.click("#player-0 button.play")
    deadline = time.monotonic() + 10
    while read(page, 0)[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read(page, 0)[0] >= 2 and page.eval(js(0, "return el.dataset.playing;")) == "yes"
    page.click("#player-0 button.pause")
    stopped = read(page, 0)[0]
    time.sleep(0.6)
    assert read(page, 0)[0] == stopped and page.eval(js(0, "return el.dataset.playing;")) == "no"


def test_screenshot_shows_the_window_and_the_written_cell(browser, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / "page.html"
    write_html(explain_conv(), path)
    page = browser.open(path.as_uri())
    page.scroll_to("#player-0")

    def colours():
        img = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        return {c for _, c in img.getcolors(maxcolors=1 << 24)}

    before = colours()
    assert (255, 140, 0) not in before and (0, 150, 60) not in before      # frame 0: nothing highlighted
    page.click("#player-0 button.step")
    after = colours()
    assert (255, 140, 0) in after and (0, 150, 60) in after                # window (orange), cell written (green)
