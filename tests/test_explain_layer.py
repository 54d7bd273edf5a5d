"""convgrad explain RUN --layer NAME --image x.png on tests/test_attack.py's trained lenet: the
printed sums agree with the fast path, and the printed gradients with central differences of
the real loss computed here (model forward only)."""
import contextlib
import copy
import io
import re

import numpy as np
import pytest

from test_attack import train_run
from convgrad.data.images import load_image
from convgrad.train import load_for_inference


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_run(tmp_path_factory)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from PIL import Image
    img = np.zeros((28, 28), np.uint8)
    img[4:7, 4:24] = 200
    path = tmp_path_factory.mktemp("img") / "bar.png"
    Image.fromarray(img).save(path)
    return str(path)


def cli(*argv):
    from convgrad.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def loss_of(model, x, label):
    logits = model(x)[0].astype(np.float64)
    return float(np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[label])


@pytest.mark.parametrize("layer,window", [("0", "3,10,10"), ("3", None)])
def test_layer_numbers_match_the_fast_path_and_central_differences(run, image, layer, window, tmp_path):
    _, out_dir = run
    page = tmp_path / "layer.html"
    argv = ["explain", out_dir, "--layer", layer, "--image", image, "--html", page] + (
        ["--window", window] if window else [])
    code, out, err = cli(*argv)
    assert code == 0, err
    checks = {m.group(1): (float(m.group(2)), float(m.group(3)))
              for m in re.finditer(r"^\s+(\S+)\s+loops\s+(\S+)\s+fast path\s+(\S+)\s+relative difference \S+\s+OK$",
                                   out, re.M)}
    assert len(checks) == 4
    label = int(re.search(r"cross-entropy at class (\d+)", out).group(1))
    model, state = load_for_inference(out_dir)
    model = copy.deepcopy(model).to(np.float64).eval()
    norm = state["normalization"]
    x = ((load_image(image, 1, 28) / 255.0 - norm["mean"][0]) / norm["std"][0])[None].astype(np.float64)
    conv = dict(model.named_children())[layer]
    h = 1e-6
    for name, (loops, fast) in checks.items():
        idx = tuple(int(v) for v in re.search(r"\[([\d,]+)\]", name).group(1).split(","))
        assert loops == pytest.approx(fast, rel=1e-9, abs=1e-12)
        if name.startswith(("dJ/dw", "dJ/db")):
            p = conv.weight.data if name.startswith("dJ/dw") else conv.bias.data
            keep = p[idx]
            p[idx] = keep + h
            plus = loss_of(model, x, label)
            p[idx] = keep - h
            minus = loss_of(model, x, label)
            p[idx] = keep
            assert loops == pytest.approx((plus - minus) / (2 * h), rel=1e-5, abs=1e-8)
    if window:
        assert f"v[{window}]" in checks
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 6 and 'src="http' not in html


def test_layer_errors(run, image):
    _, out_dir = run
    code, _, err = cli("explain", out_dir, "--layer", "2", "--image", image)
    assert code == 2 and "convolution layers are 0, 3" in err
    code, _, err = cli("explain", out_dir, "--layer", "0", "--image", image, "--window", "99,0,0")
    assert code == 2 and "outside the output" in err
