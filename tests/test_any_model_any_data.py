"""Any model (a factory in a file or a module, the Trainer API, forward-only modules) on any image
data (a folder of PNG/JPEG class subfolders); every tool rebuilds the run from its directory alone."""
import json
import os

import numpy as np
import pytest

from conftest import make_dataset

import convgrad as cg
from convgrad import checkpoint, metrics, nn, optim
from convgrad.cli import main
from convgrad.data import DataLoader
from convgrad.data.images import load_image
from convgrad.train import Trainer

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TINY_FILE = os.path.join(HERE, "tiny_models.py")


def _quiet(*_):
    pass


@pytest.fixture(scope="module")
def file_model_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("anymodel")
    data_root = make_dataset(str(base / "data"), n_train=200, n_test=60)
    out = str(base / "run")
    assert main(["train", "--data-root", data_root, "--model", f"{TINY_FILE}:tiny_cnn", "--model-args",
                 '{"width": 3}', "--epochs", "2", "--batch-size", "20", "--lr", "0.05", "--out", out,
                 "--no-progress"]) == 0
    return data_root, out


def test_file_factory_is_recorded_and_every_tool_rebuilds_it_elsewhere(file_model_run, tmp_path, monkeypatch,
                                                                       capsys):
    data_root, out = file_model_run
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["model_config"]["name"] == f"{TINY_FILE}:tiny_cnn" and config["model_config"]["args"] == {"width": 3}
    monkeypatch.chdir(tmp_path)                       # another directory: only the run directory is needed
    img = np.zeros((28, 28), np.uint8)
    img[4:7, 4:24] = 220
    Image.fromarray(img).save("bar.png")
    capsys.readouterr()
    assert main(["eval", out]) == 0
    printed = capsys.readouterr().out
    result = json.loads(printed.strip().splitlines()[-1])
    assert result["test_images"] == 60 and result["data"] == "fashion-mnist"
    assert "precision" in printed and os.path.isfile(os.path.join(out, "eval_confusion_matrix.csv"))
    assert os.path.isfile(os.path.join(out, "eval_confusion_matrix.png"))
    assert main(["predict", out, "bar.png"]) == 0
    assert main(["saliency", out, "bar.png"]) == 0
    assert main(["attack", out, "--limit", "20", "--eps", "0.1", "--examples", "2", "--out", str(tmp_path)]) == 0
    assert main(["report", out, "--limit", "20", "--out", str(tmp_path / "r.html")]) == 0
    assert "tiny_cnn" in (tmp_path / "r.html").read_text()


def test_module_factory_spec_and_its_errors(tmp_path, capsys):
    data_root = make_dataset(str(tmp_path / "data"), n_train=60, n_test=20)
    base = ["train", "--data-root", data_root, "--epochs", "1", "--no-plots", "--no-progress"]
    assert main([*base, "--model", "tiny_models:tiny_cnn", "--out", str(tmp_path / "ok")]) == 0
    for spec, message in (("no_such_module:f", "cannot import 'no_such_module'"),
                          ("tiny_models:missing", "has no attribute 'missing'"),
                          ("lenet5", "expected one of lenet, cnn, resnet"),
                          (str(tmp_path / "none.py") + ":f", "does not exist")):
        capsys.readouterr()
        assert main([*base, "--model", spec, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
    capsys.readouterr()
    assert main([*base, "--model", "tiny_models:tiny_cnn", "--model-args", '{"depth": 3}',
                 "--out", str(tmp_path / "y")]) == 1                      # the factory itself refuses: found later
    err = capsys.readouterr().err
    assert "unexpected keyword argument 'depth'" in err and len(err.splitlines()) == 1


# ---- image folders ------------------------------------------------------------------------------------
def _make_folder(root, rgb=False, square=True, n=12, layout="flat"):
    """Three classes: a bright bar at the top, the bottom, or the left, on dark noise."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(("top", "bottom", "left")):
        for split in (("train", "test") if layout == "split" else ("",)):
            d = os.path.join(root, split, name)
            os.makedirs(d, exist_ok=True)
            for i in range(n):
                h, w = (20, 20) if square else (20, 20 + 4 * (i % 3))
                a = rng.integers(0, 40, (h, w)).astype(np.uint8)
                if k == 0:
                    a[2:6] = 230
                elif k == 1:
                    a[-6:-2] = 230
                else:
                    a[:, 2:6] = 230
                img = Image.fromarray(np.stack([a, a // 2, a], -1) if rgb else a)
                img.save(os.path.join(d, f"{i}.{'jpg' if rgb else 'png'}"))


def test_image_folder_trains_and_the_tools_use_its_test_split(tmp_path, capsys):
    folder = str(tmp_path / "shapes")
    _make_folder(folder, square=False)
    out = str(tmp_path / "run")
    base = ["train", "--data", folder, "--model", f"{TINY_FILE}:tiny_cnn", "--epochs", "3", "--batch-size", "8",
            "--lr", "0.05", "--no-progress", "--no-plots"]
    assert main([*base, "--out", out]) == 1                 # sizes differ: found while reading the images
    err = capsys.readouterr().err
    assert "pass --image-size" in err and len(err.splitlines()) == 1
    assert main([*base, "--out", out, "--image-size", "16", "--val-split", "0.25", "--overwrite"]) == 0
    state = checkpoint.load(os.path.join(out, "checkpoint.npz"))
    assert state["classes"] == ["bottom", "left", "top"] and state["model_config"]["image_size"] == 16
    assert state["model_config"]["in_channels"] == 1 and state["data"]["data"] == folder
    capsys.readouterr()
    assert main(["eval", out]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["test_images"] == 7 and result["data"] == folder          # 20% of 36 images, held out
    wide = np.zeros((20, 40), np.uint8)
    wide[:, 12:16] = 230                                                     # the "left" bar, padded to a square
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert main(["predict", out, str(tmp_path / "wide.png")]) == 0


def test_rgb_folder_with_train_and_test_subfolders(tmp_path, capsys):
    folder = str(tmp_path / "rgb")
    _make_folder(folder, rgb=True, layout="split", n=6)
    out = str(tmp_path / "run")
    assert main(["train", "--data", folder, "--model", f"{TINY_FILE}:tiny_cnn", "--epochs", "1", "--batch-size", "6",
                 "--no-progress", "--out", out]) == 0
    state = checkpoint.load(os.path.join(out, "checkpoint.npz"))
    assert state["model_config"]["in_channels"] == 3 and len(state["normalization"]["mean"]) == 3
    assert os.path.isfile(os.path.join(out, "feature_maps.png"))


def test_load_image_pads_or_crops_and_scales_16_bit(tmp_path):
    wide = np.zeros((10, 20), np.uint8)
    wide[:, :] = 200
    Image.fromarray(wide).save(tmp_path / "wide.png")
    padded = load_image(str(tmp_path / "wide.png"), 1, 20, fit="pad")
    assert padded.shape == (1, 20, 20) and (padded[0, 5:15] == 200).all()   # not squashed: 10 rows stay 10
    assert (load_image(str(tmp_path / "wide.png"), 1, 10, fit="crop") == 200).all()
    deep = np.full((8, 8), 60000, np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert load_image(str(tmp_path / "deep.png"), 1, 8)[0, 0, 0] == round(60000 * 255 / 65535)   # 233, not 255


def test_predict_hints_at_an_inverted_background(file_model_run, tmp_path, capsys):
    _, out = file_model_run
    light = np.full((28, 28), 250, np.uint8)
    light[4:7, 4:24] = 10
    Image.fromarray(light).save(tmp_path / "light.png")
    capsys.readouterr()
    assert main(["predict", out, str(tmp_path / "light.png")]) == 0
    assert "try --invert" in capsys.readouterr().err
    assert main(["predict", out, str(tmp_path / "light.png"), "--invert"]) == 0
    assert "hint" not in capsys.readouterr().err


# ---- the Python API ---------------------------------------------------------------------------------
class TwoLayer(nn.Module):
    """A user's explicit model: its own forward and backward around two built-in layers."""

    def __init__(self):
        super().__init__()
        self.flat, self.fc = nn.Flatten(), nn.Linear(28 * 28, 10, generator=0)

    def forward(self, x):
        return self.fc(self.flat(x))

    def backward(self, grad):
        return self.flat.backward(self.fc.backward(grad))


def _loaders(n=120):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 10
    x = rng.integers(0, 40, (n, 1, 28, 28)).astype(np.uint8)
    for c in range(10):
        x[y == c, 0, 2 + 2 * c:5 + 2 * c] = 220
    return DataLoader(x, y, 16, seed=1), DataLoader(x[:40], y[:40], 40, shuffle=False)


def test_trainer_api_with_a_user_module_writes_the_same_run_directory(tmp_path):
    train, val = _loaders()
    model = TwoLayer()
    out = str(tmp_path / "api")
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.05), nn.CrossEntropyLoss(), out, log=_quiet,
                      checkpoint_every=2)
    history = trainer.fit(train, val, epochs=2, test_loader=val)
    assert len(history) == 2 and history[-1]["val_accuracy"] > 0.5 and history[-1]["test_accuracy"] is not None
    for name in ("checkpoint.npz", "best.npz", "metrics.csv", "steps.csv", "config.json", "results.json",
                 "curves.png", "confusion_matrix.png"):
        assert os.path.isfile(os.path.join(out, name)), name
    # resume through the API: two more epochs continue from the checkpoint
    model2 = TwoLayer()
    again = Trainer(model2, optim.SGD(model2.parameters(), lr=0.05), nn.CrossEntropyLoss(), out, log=_quiet,
                    resume=True, plots=False)
    assert len(again.fit(train, val, epochs=4)) == 4 and again.step == 4 * len(train)


@pytest.mark.skipif(not hasattr(cg, "tensor"), reason="recorded mode (convgrad.tensor) is not in this tree yet")
def test_trainer_trains_a_forward_only_model(tmp_path):
    import tiny_models
    model = tiny_models.forward_only(generator=0)
    train, val = _loaders()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.05), nn.CrossEntropyLoss(), str(tmp_path / "fo"),
                      log=_quiet, plots=False)
    assert not trainer.explicit
    before = model.inner[1].weight.data.copy()
    history = trainer.fit(train, val, epochs=2)
    assert not np.array_equal(before, model.inner[1].weight.data)
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_per_class_metrics_are_valid_json_without_nan():
    counts = metrics.confusion_counts(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    rows = metrics.per_class(counts)
    assert rows[0] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert rows[2]["precision"] is None and rows[2]["recall"] == 0.0          # never predicted: undefined
    json.dumps(rows, allow_nan=False)
    assert "macro mean" in metrics.format_table(rows, ["a", "b", "c"])


@pytest.mark.skipif(not hasattr(cg, "tensor"), reason="recorded mode (convgrad.tensor) is not in this tree yet")
def test_forward_only_model_through_the_command_and_every_tool(tmp_path, capsys):
    """Training, eval, predict, saliency, attack and report of a model with no backward of its own:
    input gradients come from the recorded graph."""
    data_root = make_dataset(str(tmp_path / "data"), n_train=120, n_test=40)
    out = str(tmp_path / "run")
    assert main(["train", "--data-root", data_root, "--model", f"{TINY_FILE}:forward_only", "--epochs", "2",
                 "--batch-size", "20", "--lr", "0.05", "--out", out, "--no-progress", "--val-split", "0.2",
                 "--checkpoint-every", "2"]) == 0
    assert "forward-only, recorded mode" in capsys.readouterr().out
    img = np.zeros((28, 28), np.uint8)
    img[4:7, 4:24] = 220
    Image.fromarray(img).save(tmp_path / "bar.png")
    assert main(["eval", out]) == 0
    assert main(["predict", out, str(tmp_path / "bar.png")]) == 0
    assert main(["saliency", out, str(tmp_path / "bar.png")]) == 0
    assert main(["attack", out, "--limit", "10", "--eps", "0.1", "--examples", "2"]) == 0
    text = capsys.readouterr().out
    assert "clean accuracy" in text and "saliency map" in text


@pytest.mark.parametrize("factory", ["tiny_cnn", "forward_only"])
def test_trainer_api_resumes_mid_epoch_to_the_same_weights(tmp_path, factory):
    """Interrupt fit() by SIGINT at step 5 (epoch 1 of 2), resume with fresh objects: the same weights
    and steps as an uninterrupted run, for an explicit and for a forward-only model."""
    import signal
    import tiny_models
    if factory == "forward_only" and not hasattr(cg, "tensor"):
        pytest.skip("recorded mode (convgrad.tensor) is not in this tree yet")
    from convgrad.train import TrainingInterrupted

    def run(out, interrupt_at=None, resume=False):
        model = getattr(tiny_models, factory)(generator=0)
        train, val = _loaders()
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        trainer = Trainer(model, opt, nn.CrossEntropyLoss(), out, log=_quiet, plots=False, resume=resume,
                          scheduler=optim.lr_scheduler.StepLR(opt, 1, 0.5), scheduler_per_batch=False)
        if interrupt_at:
            original = opt.step

            def step():
                original()
                if trainer.step + 1 == interrupt_at:
                    os.kill(os.getpid(), signal.SIGINT)
            opt.step = step
        trainer.fit(train, val, epochs=2)
        return model.state_dict(), trainer.steps

    weights, steps = run(str(tmp_path / "straight"))
    with pytest.raises(TrainingInterrupted):
        run(str(tmp_path / "cut"), interrupt_at=5)
    got_weights, got_steps = run(str(tmp_path / "cut"), resume=True)
    assert [(s["step"], s["loss"], s["lr"]) for s in got_steps] == [(s["step"], s["loss"], s["lr"]) for s in steps]
    for k in weights:
        np.testing.assert_array_equal(got_weights[k], weights[k], err_msg=k)


@pytest.mark.skipif(not hasattr(nn.Module, "has_backward"), reason="Module.has_backward is not in this tree")
def test_a_sequential_holding_a_forward_only_module_trains_recorded(tmp_path):
    import tiny_models
    model = nn.Sequential(tiny_models.forward_only(generator=0), nn.ReLU())
    train, _ = _loaders()
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.05), nn.CrossEntropyLoss(), str(tmp_path / "r"),
                      log=_quiet, plots=False)
    assert not trainer.explicit
    history = trainer.fit(train, epochs=2)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
