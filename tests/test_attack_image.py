"""convgrad attack RUN --image x.png: the learner's own image, the amplified perturbation with
its scale, the result and both predictions (on tests/test_attack.py's trained lenet)."""
import re

import numpy as np
import pytest

from test_attack import cli, train_run
from convgrad.functional.activation import softmax
from convgrad.tools._common import PixelModel, load_model
from convgrad.tools.attack import fgsm


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_run(tmp_path_factory)


def test_attack_on_an_image(run, tmp_path, capsys):
    from PIL import Image
    _, out = run
    img = np.zeros((28, 28), np.uint8)
    img[4:7, 4:24] = 200
    path = tmp_path / "bar.png"
    Image.fromarray(img).save(path)
    assert cli("attack", out, "--image", path, "--eps", "0.1", "0.3") == 0
    text = capsys.readouterr().out
    model, state = load_model(out)
    pm = PixelModel.from_state(model, state)
    classes = state["classes"]
    x = img[None, None].astype(np.float64) / 255.0
    p = softmax(pm.logits(x), dim=1)[0]
    clean = int(np.argmax(p))
    assert f"predicted {classes[clean]} ({p[clean]:.3f})" in text
    for eps in (0.1, 0.3):
        adv = fgsm(pm, x, np.array([clean]), eps)
        q = softmax(pm.logits(adv), dim=1)[0]
        k = int(np.argmax(q))
        line = next(s for s in text.splitlines() if s.strip().startswith(f"eps {eps:g}:"))
        assert f"-> {classes[k]} ({q[k]:.3f})" in line and f"{classes[clean]} ({p[clean]:.3f}) ->" in line
        assert float(re.search(r"max \|x' - x\| = (\S+);", line).group(1)) <= eps + 1e-12
        assert ("not fooled" in line) == (k == clean)
        figure = tmp_path / f"bar_fgsm_eps{eps:g}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_attack_image_errors(run, tmp_path, capsys):
    _, out = run
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert cli("attack", out, "--image", tmp_path / "bad.png") == 1   # unreadable, found while working
    assert "could not read image" in capsys.readouterr().err
