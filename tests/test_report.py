"""convgrad report: one self-contained HTML page of a training run, rendered in headless Chromium
(Debian package `chromium`; the rendering tests skip when no Chromium binary is installed)."""
import base64
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from test_attack import cli, train_run          # the lenet run shared with tests/test_attack.py

PNG = b"\x89PNG\r\n\x1a\n"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A copy of the trained run with filters.png deleted (the report must regenerate it), and its report."""
    _, out = train_run(tmp_path_factory)
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(out, run)
    os.remove(run / "filters.png")
    assert cli("report", run, "--limit", "50", "--attack-eps", "0.1") == 0
    return run / "report.html"


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_report_is_one_self_contained_page(report):
    page = report.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    tags = parser.tags
    images = [a["src"] for t, a in tags if t == "img"]
    assert len(images) >= 6          # curves, confusion matrix, filters, feature maps, saliency, adversarial
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    for t, attrs in tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:", "#")), (t, name, value)
    assert not re.search(r"https?://|url\(|@import", page)
    for text in ("Metrics per epoch", "test_accuracy", "Confusion matrix", "regenerated from the checkpoint: "
                 "filters.png was missing", "Saliency maps", "adversarial accuracy", "Gradient check",
                 "all passed", "Conv2d", "MaxPool2d", "Linear"):
        assert text in page, text
    assert not [f for f in os.listdir(report.parent) if f.startswith(".tmp-")]
    assert not os.path.exists(report.parent / "filters.png")      # regenerated in memory, run left as it was


def test_report_errors(tmp_path, capsys):
    assert cli("report", tmp_path / "missing") == 2
    assert "no checkpoint or run directory" in capsys.readouterr().err
    assert cli("report", tmp_path) == 2                                    # a directory without a checkpoint
    assert "holds no checkpoint.npz" in capsys.readouterr().err


# ---- rendering in a real browser ------------------------------------------------------------------
PROBE_HEAD = ("<script>window.__errors=[];window.addEventListener('error',function(e){"
              "window.__errors.push(String(e.message||(e.target&&e.target.tagName)||e.type))},true);</script>")
PROBE_BODY = """<script>window.addEventListener('load', function () {
  var imgs = document.images, broken = [];
  for (var i = 0; i < imgs.length; i++) if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) broken.push(i);
  var d = document.createElement('div'); d.id = 'status';
  d.textContent = 'images=' + imgs.length + ';broken=' + broken.join(',') + ';errors=' + window.__errors.join('|');
  document.body.appendChild(d);
});</script>"""


def _browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium binary (install the Debian package `chromium`): the report is not rendered in a browser")


def render(page: str, workdir, width=1200, height=4000):
    """Load `page` (HTML text, with the probe scripts added) in headless Chromium from a file: URL.
    Returns ({images, broken, errors} from the page's status element, the page's console lines,
    the screenshot path)."""
    browser = _browser()
    probe = page.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_BODY + "</body>", 1)
    path = workdir / "probe.html"
    path.write_text(probe, encoding="utf-8")
    shot = workdir / "screenshot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={workdir / 'profile'}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=5000", f"--window-size={width},{height}", f"--screenshot={shot}", "--dump-dom",
           path.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(workdir)})
    match = re.search(r'<div id="status">images=(\d+);broken=([^;]*);errors=([^<]*)</div>', proc.stdout)
    assert match, f"no status element in the DOM (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    status = {"images": int(match[1]), "broken": [int(i) for i in match[2].split(",") if i],
              "errors": [e for e in match[3].split("|") if e]}
    console = re.findall(r":CONSOLE(?:\(\d+\)|:\d+)?\] (.*)", proc.stderr)
    return status, console + [line for line in proc.stderr.splitlines() if "Uncaught" in line], shot


def test_report_renders_in_chromium_with_every_image_loaded(report, tmp_path):
    page = report.read_text(encoding="utf-8")
    status, console, shot = render(page, tmp_path)
    assert status["images"] == page.count("<img ") >= 6
    assert status["broken"] == [] and status["errors"] == [], status
    assert console == [], console
    keep = report.parent / "report_screenshot.png"
    shutil.copyfile(shot, keep)                                       # kept beside the report for a look
    from PIL import Image
    with Image.open(keep) as img:
        assert img.size == (1200, 4000)
        assert np.asarray(img.convert("L")).std() > 10               # not a blank page


def test_the_browser_check_sees_broken_images_and_script_errors(tmp_path):
    """The harness itself: a page with a broken image and an uncaught error must not pass."""
    page = ('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
            '<img alt="ok" src="data:image/png;base64,' + base64.b64encode(_tiny_png()).decode() + '">'
            '<img alt="bad" src="data:image/png;base64,AAAA">'
            '<script>console.error("boom"); undefinedFunction();</script></body></html>')
    status, console, _ = render(page, tmp_path, 400, 300)
    assert status["images"] == 2 and status["broken"] == [1]
    assert any("undefinedFunction" in e for e in status["errors"])
    assert any("boom" in c for c in console) and any("Uncaught ReferenceError" in c for c in console)


def _tiny_png() -> bytes:
    import io

    from PIL import Image
    buffer = io.BytesIO()
    Image.new("L", (4, 4), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def test_report_without_the_test_data_still_shows_what_the_checkpoint_holds(tmp_path_factory, monkeypatch):
    from convgrad.tools import report as R
    _, out = train_run(tmp_path_factory)

    def unavailable(*args, **kwargs):
        raise FileNotFoundError("fashion-mnist: files not found")
    monkeypatch.setattr(R, "load_test_split", unavailable)
    page = R.build_report(out, log=lambda *_: None)
    assert "test data unavailable (fashion-mnist: files not found)" in page
    assert "Saliency maps" not in page and "Adversarial examples" not in page
    assert page.count("<img ") == 4 and "Gradient check" in page               # train's four PNGs are on disk
