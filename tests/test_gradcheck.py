"""gradcheck on every layer of this family, and proof that it catches a wrong backward."""
import numpy as np
import pytest

from convgrad import functional as F
from convgrad import gradcheck, nn
from convgrad.functional import resample as R

LAYERS = [
    ("conv1d", lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1, generator=0), (2, 2, 7)),
    ("conv2d", lambda: nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), generator=0), (2, 2, 6, 7)),
    ("conv2d groups", lambda: nn.Conv2d(4, 6, 3, groups=2, generator=0), (1, 4, 5, 5)),
    ("conv2d depthwise", lambda: nn.Conv2d(3, 3, 3, groups=3, padding="same", generator=0), (2, 3, 5, 4)),
    ("conv2d reflect", lambda: nn.Conv2d(2, 2, 3, padding=2, padding_mode="reflect", generator=0), (1, 2, 5, 5)),
    ("conv2d replicate", lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="replicate", generator=0), (1, 2, 4, 5)),
    ("conv2d circular", lambda: nn.Conv2d(2, 2, 3, padding=(1, 2), padding_mode="circular", generator=0), (1, 2, 4, 5)),
    ("conv3d", lambda: nn.Conv3d(2, 2, 2, stride=(1, 2, 1), padding=1, generator=0), (1, 2, 3, 4, 3)),
    ("convT1d", lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, output_padding=1, generator=0), (2, 2, 4)),
    ("convT2d", lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, groups=2, generator=0), (1, 4, 3, 4)),
    ("convT3d", lambda: nn.ConvTranspose3d(2, 2, 2, stride=2, generator=0), (1, 2, 2, 2, 3)),
    ("upsample nearest", lambda: nn.Upsample(2), (1, 2, 3, 3)),
    ("upsample zeros", lambda: nn.Upsample((2, 3), mode="zeros"), (1, 2, 3, 3)),
    ("downsample", lambda: nn.Downsample(2), (1, 2, 5, 4)),
]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[l[0] for l in LAYERS])
def test_gradcheck_every_layer(name, make, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    report = gradcheck(make(), x)
    assert report.passed, str(report)
    assert report.checks[0].max_rel_error < 1e-6


class _BrokenConv(nn.Conv2d):
    """A deliberately wrong backward: the filter is not flipped in the input gradient."""

    def backward(self, grad_out):
        super().backward(grad_out)
        geo = self._cache[0]
        w = self.weight.data[:, :, ::-1, ::-1]
        return F.conv_input_grad(grad_out, np.ascontiguousarray(w), geo.in_shape)


def test_gradcheck_catches_a_broken_backward():
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 5))
    report = gradcheck(_BrokenConv(1, 1, 3, generator=3), x)
    assert not report.passed
    assert not report["input"].passed and report["weight"].passed
    assert "FAILED" in str(report) and "NO" in str(report)


def test_gradcheck_catches_a_missing_accumulation():
    class DropsBiasGrad(nn.Conv2d):
        def backward(self, grad_out):
            dx = super().backward(grad_out)
            self.bias.grad *= 0.5
            return dx
    report = gradcheck(DropsBiasGrad(1, 2, 3, generator=0), np.random.default_rng(1).standard_normal((1, 1, 4, 4)))
    assert not report["bias"].passed and report["weight"].passed


def test_gradcheck_on_functions():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))

    def backward(g, x, w):
        _, cache = F.conv_forward(x, w, stride=2)
        dx, dw, _ = F.conv_backward(g, cache)
        return dx, dw

    assert gradcheck(lambda x, w: F.conv2d(x, w, stride=2), x, w, backward=backward).passed
    wrong = gradcheck(lambda x: R.downsample(x, 2), x, backward=lambda g, x: R.upsample_nearest(g, 2)[..., :5, :5])
    assert not wrong.passed


def test_gradcheck_leaves_the_module_untouched():
    layer = nn.Conv2d(1, 1, 3, generator=0)
    before = layer.weight.data.copy()
    gradcheck(layer, np.ones((1, 1, 4, 4)))
    assert layer.weight.dtype == np.float32 and np.array_equal(layer.weight.data, before)
    assert layer.weight.grad is None


def test_report_prints_lecture_table_for_small_tensors():
    text = str(gradcheck(nn.Conv2d(1, 1, 2, generator=0), np.ones((1, 1, 3, 3))))
    assert "numerical vs analytic" in text and "weight" in text and "PASSED" in text
