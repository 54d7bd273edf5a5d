"""The run's figures are readable: maps on one diverging scale centred on zero with a colour bar,
numbered, the input image first; curves drawn by step."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from convgrad import models, plots  # noqa: E402


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the plot functions save (kept open for inspection)."""
    kept = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: kept.append(fig) or path)
    yield kept
    plots._pyplot().close("all")


def _images(fig):
    return [ax.images[0] for ax in fig.axes if ax.images]


def test_feature_maps_diverging_centred_numbered_with_the_input(figures):
    model = models.lenet(generator=0)
    image = np.random.default_rng(0).standard_normal((1, 28, 28)).astype(np.float32)
    pixels = np.random.default_rng(1).integers(0, 256, (1, 28, 28)).astype(np.uint8)
    plots.feature_maps(model, image, "unused.png", pixels)
    fig = figures[0]
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert titled[0].get_title() == "input" and [ax.get_title() for ax in titled[1:]] == [str(i) for i in range(32)]
    maps = _images(fig)[1:]
    lo, hi = maps[0].get_clim()
    assert lo == -hi and hi > 0 and all(m.get_clim() == (lo, hi) for m in maps)
    assert all(m.get_cmap().name == plots.DIVERGING for m in maps)
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    np.testing.assert_allclose(_images(fig)[0].get_array(), pixels[0] / 255.0)


def test_filters_and_curves(figures):
    model = models.lenet(generator=0)
    plots.filters(model, "unused.png")
    lo, hi = _images(figures[0])[0].get_clim()
    assert lo == -hi == -float(np.abs(model[0].weight.data).max())
    steps = [{"step": s, "epoch": 1, "loss": 2.0 / s, "accuracy": 0.1 * (s % 10)} for s in range(1, 41)]
    history = [{"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.5, "val_loss": 0.4, "val_accuracy": 0.6,
                "test_loss": None, "test_accuracy": None}]
    plots.curves(history, "unused.png", steps)
    ax_loss = figures[1].axes[0]
    assert ax_loss.get_xlabel() == "step" and len(ax_loss.lines[0].get_xdata()) == 40     # one point per step
    assert [ln.get_label() for ln in ax_loss.lines][-1] == "val"
