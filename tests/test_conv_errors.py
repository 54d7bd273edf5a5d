"""Bad input gets a clear error naming the layer, what was expected and what came."""
import numpy as np
import pytest

from convgrad import functional as F
from convgrad import nn


def x4(*shape, dtype=np.float32):
    return np.zeros(shape, dtype=dtype)


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(stride=0), ValueError, "stride must be >= 1, got 0"),
    (dict(stride=-2), ValueError, "stride must be >= 1"),
    (dict(stride=1.5), TypeError, "stride must be an int"),
    (dict(stride=(1, 2.0)), TypeError, "stride must contain integers"),
    (dict(dilation=0), ValueError, "dilation must be >= 1"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(padding="full"), ValueError, "padding must be an int, a tuple, 'same' or 'valid'"),
    (dict(padding="same", stride=2), ValueError, "padding='same' needs stride 1"),
    (dict(groups=3), ValueError, "divisible by groups=3"),
    (dict(padding_mode="mirror"), ValueError, "padding_mode must be one of"),
    (dict(kernel_size=(3, 3, 3)), TypeError, "kernel_size must be an int or a tuple of 2 ints"),
])
def test_bad_constructor_arguments(kwargs, exc, message):
    args = dict(in_channels=4, out_channels=4, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(exc, match=message.replace("(", "\\(").replace(")", "\\)")):
        nn.Conv2d(**args)


def test_wrong_rank_names_layout():
    with pytest.raises(ValueError, match=r"Conv2d: expected input of rank 4 \(N, C, H, W\), got shape \(3, 8, 8\)"):
        nn.Conv2d(3, 4, 3)(x4(3, 8, 8))


def test_channel_mismatch():
    with pytest.raises(ValueError, match=r"expected input with 3 channels .* got shape \(2, 5, 8, 8\)"):
        nn.Conv2d(3, 4, 3)(x4(2, 5, 8, 8))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel \(size 5, dilation 1, extent 5\) is larger than the padded input \(4\)"):
        nn.Conv2d(1, 1, 5, padding=1)(x4(1, 1, 2, 8))
    with pytest.raises(ValueError, match="extent 7"):
        nn.Conv1d(1, 1, 3, dilation=3)(x4(1, 1, 6))


def test_wrong_dtype_and_type():
    with pytest.raises(TypeError, match="expected input of dtype float32 or float64, got int64"):
        nn.Conv2d(1, 1, 3)(np.zeros((1, 1, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="expected input as a numpy.ndarray, got list"):
        nn.Conv2d(1, 1, 3)([[[[0.0]]]])
    with pytest.raises(TypeError, match="input has dtype float64 but weight has dtype float32"):
        nn.Conv2d(1, 1, 3)(x4(1, 1, 4, 4, dtype=np.float64))


def test_nan_input_propagates_to_the_windows_that_hold_it():
    # a value, not an error (torch): NaN reaches exactly the outputs whose window holds it
    x = x4(1, 1, 5, 5)
    x[0, 0, 0, 0] = np.nan
    y = nn.Conv2d(1, 1, 3)(x)
    assert np.isnan(y[0, 0, 0, 0]) and np.isfinite(y[0, 0].ravel()[1:]).all()


def test_bad_grad_output_shape():
    layer = nn.Conv2d(1, 2, 3)
    layer(x4(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"expected grad_output of shape \(1, 2, 3, 3\), got \(1, 2, 4, 4\)"):
        layer.backward(x4(1, 2, 4, 4))


def test_reflect_padding_too_large():
    with pytest.raises(ValueError, match="reflect padding \\(4, 4\\) must be at most 3"):
        nn.Conv2d(1, 1, 3, padding=4, padding_mode="reflect")(x4(1, 1, 4, 8))


def test_functional_weight_rank_and_bias_shape():
    with pytest.raises(ValueError, match="conv2d: expected a weight of rank 4"):
        F.conv2d(x4(1, 1, 4, 4), x4(1, 1, 3))
    with pytest.raises(ValueError, match=r"expected bias of shape \(2,\), got \(3,\)"):
        F.conv2d(x4(1, 1, 4, 4), x4(2, 1, 3, 3), x4(3))


def test_conv_transpose_arguments():
    with pytest.raises(ValueError, match="output_padding must be smaller than stride or dilation"):
        nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="only padding_mode='zeros'"):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"expected input with 2 channels"):
        nn.ConvTranspose2d(2, 1, 3)(x4(1, 3, 4, 4))
