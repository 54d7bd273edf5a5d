"""convgrad attack / saliency: adversarial examples and saliency maps through the model's own backward,
on a lenet trained for two epochs on a small generated Fashion-MNIST-shaped dataset."""
import argparse
import os

import numpy as np
import pytest
from conftest import make_dataset as make_fashion_like

from convgrad import nn
from convgrad.data import write_cifar_batch
from convgrad.tools import add_parsers
from convgrad.cli_args import UsageError
from convgrad.tools._common import PixelModel, check_eps, load_model, load_test_split, pixels
from convgrad.tools.attack import fgsm, run_attack
from convgrad.tools.saliency import saliency

def make_dataset(root, **kwargs):
    """tests/conftest.py's generated dataset with less contrast, so that small perturbations matter."""
    return make_fashion_like(root, **{"bar": 120, "noise": 80, **kwargs})


_RUN = {}


def train_run(tmp_path_factory):
    """(data_root, run directory) of a lenet trained for 2 epochs with train's plots; trained once
    per test session (tests/test_report.py copies the directory before changing it)."""
    if "run" not in _RUN:
        from convgrad.train_config import TrainConfig, make_trainer
        base = tmp_path_factory.mktemp("lenet")
        data_root = make_dataset(str(base / "data"))
        cfg = TrainConfig(data_root=data_root, model="lenet", epochs=2, batch_size=32, lr=0.05, seed=3,
                          out=str(base / "run"))
        trainer, loaders, _ = make_trainer(cfg, progress=False, log=lambda *_: None)
        trainer.fit(loaders.train, loaders.val, cfg.epochs, loaders.test)          # writes train's plots too
        _RUN["run"] = (data_root, cfg.out)
    return _RUN["run"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_run(tmp_path_factory)


@pytest.fixture(scope="module")
def attacked(run):
    """The trained model from pixel space and the first 100 test images."""
    data_root, out = run
    model, state = load_model(out)
    images, labels, classes = load_test_split(state, data_root=data_root, limit=100)
    return PixelModel.from_state(model, state), pixels(images), labels, classes


@pytest.fixture(scope="module")
def fgsm_results(attacked):
    """FGSM at eps 0, 0.1, 0.2 on the 100 images, every adversarial image kept."""
    pm, x, y, _ = attacked
    return run_attack(pm, x, y, [0.0, 0.1, 0.2], "fgsm", keep=np.arange(len(x)))


def cli(*argv):
    """The tools' subcommands through their own argparse parser (as convgrad.cli wires them)."""
    parser = argparse.ArgumentParser(prog="convgrad")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


# ---- the gradient itself ------------------------------------------------------------------
def _tiny_pixel_model(pool=False):
    layers = [nn.Conv2d(1, 3, 3, generator=1), nn.Tanh()]
    layers += [nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 4, generator=2)] if pool else \
        [nn.Flatten(), nn.Linear(48, 4, generator=2)]
    return PixelModel(nn.Sequential(*layers).double(), mean=[0.3], std=[0.45])


@pytest.mark.parametrize("pool", [False, True])
def test_input_gradient_equals_a_numerical_derivative(pool):
    """dL/dx in pixel space (through the normalisation) against central differences."""
    pm = _tiny_pixel_model(pool)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.2, 0.8, (2, 1, 6, 6)), np.array([1, 3])
    loss, grad, logits = pm.loss_grad(x, y)
    assert grad.shape == x.shape and logits.shape == (2, 4)
    numerical = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        for sign in (1, -1):
            xp = x.copy()
            xp[i] += sign * 1e-6
            numerical[i] += sign * pm.loss_grad(xp, y)[0] / 2e-6
    assert np.allclose(grad, numerical, rtol=1e-5, atol=1e-8)
    # and the saliency's score gradient: d logit[n, k] / dx
    k = np.array([2, 0])
    maps, classes, _ = saliency(pm, x, k)
    eps, num = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = (pm.logits(xp)[i[0], k[i[0]]] - pm.logits(xm)[i[0], k[i[0]]]) / (2 * eps)
    assert np.allclose(maps, np.abs(num).max(axis=1), rtol=1e-5, atol=1e-9)


def test_fgsm_step_is_eps_times_the_gradient_sign():
    pm = _tiny_pixel_model()
    x = np.random.default_rng(1).uniform(0.3, 0.7, (2, 1, 6, 6))
    y = np.array([0, 2])
    _, grad, _ = pm.loss_grad(x, y)
    assert np.allclose(fgsm(pm, x, y, 0.05), x + 0.05 * np.sign(grad))
    _, grad_t, _ = pm.loss_grad(x, np.array([3, 3]))
    assert np.allclose(fgsm(pm, x, y, 0.05, target=3), x - 0.05 * np.sign(grad_t))


# ---- attacks on a trained model --------------------------------------------------------------
def test_fgsm_lowers_accuracy_and_stays_within_eps(attacked, fgsm_results):
    pm, x, y, _ = attacked
    clean, results, kept = fgsm_results
    clean_acc = float(np.mean(clean == y))
    assert clean_acc > 0.8, clean_acc
    assert results[0].accuracy == pytest.approx(clean_acc)               # eps 0 changes nothing
    assert results[2].accuracy < clean_acc - 0.3, [r.accuracy for r in results]
    assert results[2].accuracy <= results[1].accuracy < clean_acc
    for r in results:
        x_adv = kept[r.eps]
        assert np.abs(x_adv - x).max() <= r.eps + 1e-6 and r.max_perturbation <= r.eps + 1e-6
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
        assert np.array_equal(pm.predict(x_adv), r.predictions)


def test_pgd_is_at_least_as_strong_as_fgsm(attacked, fgsm_results):
    pm, x, y, _ = attacked
    _, (_, fg, _), _ = fgsm_results
    _, (pg,), kept = run_attack(pm, x, y, [0.1], "pgd", steps=10, keep=np.arange(len(x)))
    assert pg.accuracy <= fg.accuracy, (pg.accuracy, fg.accuracy)
    x_adv = kept[0.1]
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1


def test_targeted_attack_reaches_the_target(attacked):
    pm, x, y, _ = attacked
    target = 3
    for method in ("fgsm", "pgd"):
        _, results, _ = run_attack(pm, x, y, [0.2], method, steps=5, target=target)
        r = results[0]
        assert r.success_rate is not None and r.success_rate > 0, (method, r)
        eligible = y != target
        assert r.success_rate == pytest.approx(np.mean(r.predictions[eligible] == target))


# ---- the commands -----------------------------------------------------------------------------
def test_attack_command(run, tmp_path, capsys):
    data_root, out = run
    assert cli("attack", out, "--data-root", data_root, "--eps", "0.1", "0.2", "--limit", "50",
               "--out", tmp_path) == 0
    text = capsys.readouterr().out
    assert "clean accuracy:" in text and "0.2" in text
    png = tmp_path / "attack_fgsm.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]
    assert cli("attack", os.path.join(out, "checkpoint.npz"), "--data-root", data_root, "--method", "pgd",
               "--eps", "0.15", "--steps", "5", "--target", "Dress", "--limit", "60", "--examples", "3") == 0
    text = capsys.readouterr().out
    assert "targeted at class 3 (Dress)" in text and "success (-> Dress)" in text
    assert os.path.isfile(os.path.join(out, "attack_pgd_target3.png"))   # default: the run directory


def test_attack_errors(run, tmp_path, capsys):
    data_root, out = run
    assert cli("attack", out, "--data-root", data_root, "--eps", "8") == 2
    assert "eps must be in [0, 1] (pixel units; did you mean 8/255" in capsys.readouterr().err
    assert cli("attack", str(tmp_path / "nowhere"), "--data-root", data_root) == 2
    assert "no checkpoint or run directory" in capsys.readouterr().err
    assert cli("attack", out, "--data-root", data_root, "--target", "Unicorn", "--limit", "10") == 2  # checked first
    assert "Unicorn" in capsys.readouterr().err
    # a dataset whose images do not fit the checkpoint's model: CIFAR-10 (3, 32, 32) for a (1, 28, 28) lenet
    cifar = tmp_path / "cifar-10"
    cifar.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        write_cifar_batch(cifar / name, rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8), np.arange(4))
    assert cli("attack", out, "--data", "cifar-10", "--data-root", cifar) == 1     # found while working
    err = capsys.readouterr().err
    assert "expects images of shape (C, H, W) = (1, 28, 28)" in err and "(3, 32, 32)" in err
    with pytest.raises(UsageError, match="did you mean 8/255"):
        check_eps(8)


def test_saliency_command(run, tmp_path, capsys):
    from PIL import Image
    data_root, out = run
    img = np.zeros((56, 56), np.uint8)
    img[8:14, 8:48] = 230                                    # class 1's bar (rows 4-6 at 28 px)
    path = tmp_path / "bar.png"
    Image.fromarray(img).save(path)
    assert cli("saliency", out, path) == 0
    text = capsys.readouterr().out
    assert "predicted" in text and (tmp_path / "bar_saliency.png").read_bytes()[:4] == b"\x89PNG"
    assert cli("saliency", out, path, "--out", tmp_path / "s.png") == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert cli("saliency", out, tmp_path / "bad.png") == 1
    assert "could not read image" in capsys.readouterr().err


def test_saliency_map_shape_and_focus(attacked):
    """The map is (N, H, W), non-negative, for the predicted classes."""
    pm, x, y, _ = attacked
    maps, pred, probs = saliency(pm, x[:8])
    assert maps.shape == (8, 28, 28) and (maps >= 0).all() and np.all((probs > 0) & (probs <= 1))
    assert np.array_equal(pred, pm.predict(x[:8]))
