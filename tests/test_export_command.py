"""`convgrad export RUN --format onnx|safetensors` on a run's checkpoint; errors as one line."""
import json

import numpy as np
import pytest

from conftest import rel

import convgrad
from convgrad import checkpoint, models
from convgrad.cli import main

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture
def run(tmp_path):
    """A run directory holding a checkpoint of a cnn as Trainer writes it (model description,
    weights, classes, normalisation)."""
    model = models.cnn(generator=0)
    state = {"model_config": {"name": "cnn", "in_channels": 1, "image_size": 28, "num_classes": 10},
             "model": model.state_dict(), "classes": [f"c{i}" for i in range(10)],
             "normalization": {"mean": [0.28], "std": [0.35]}}
    d = tmp_path / "run"
    checkpoint.save(str(d / "checkpoint.npz"), state)
    return d, model.eval()


def test_export_onnx(run, capsys):
    d, model = run
    assert main(["export", str(d), "--format", "onnx"]) == 0
    assert "model.onnx" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    assert rel(session.run(None, {"input": x})[0], model(x)) <= 1e-5
    props = {p.key: p.value for p in onnx.load(str(d / "model.onnx")).metadata_props}
    assert json.loads(props["classes"])[3] == "c3" and json.loads(props["normalization"])["std"] == [0.35]


def test_export_safetensors(run, tmp_path):
    d, model = run
    out = tmp_path / "w.safetensors"
    assert main(["export", str(d / "checkpoint.npz"), "--format", "safetensors", "--out", str(out)]) == 0
    loaded = convgrad.load(out)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded[key], value)


def test_export_errors(run, tmp_path, capsys):
    d, _ = run
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "convgrad export: error:" in err and "nowhere" in err and "Traceback" not in err
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["export", str(tmp_path / "broken.npz")]) == 1     # a bad file found while working: exit 1
    assert "broken.npz" in capsys.readouterr().err
    assert main(["export", str(d), "--opset", "9"]) == 2
    assert "opset must be in 17..21, got 9" in capsys.readouterr().err
    assert not (d / "model.onnx").exists()


def test_missing_package_is_one_line(run, capsys, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx":
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_onnx)
    assert main(["export", str(run[0]), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'convgrad[onnx]'" in err and "Traceback" not in err
