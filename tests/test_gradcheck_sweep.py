"""convgrad gradcheck: the sweep over every layer passes on the library, and a user's layer with a
wrong backward, given as package.module:Class, makes it fail with exit status 1."""
import argparse
import textwrap

import numpy as np
import pytest

from convgrad import nn
from convgrad.tools import add_parsers
from convgrad.tools import gradcheck_sweep as S

BROKEN = '''
import numpy as np
from convgrad import nn
from convgrad.functional import conv_input_grad


class MyConv(nn.Conv2d):
    """3x3 convolution whose input gradient forgets to flip the filter (a classic mistake)."""

    def __init__(self, in_channels, out_channels=3):
        super().__init__(in_channels, out_channels, 3, padding=1)
        self._x_shape = None

    def forward(self, x):
        self._x_shape = x.shape
        return super().forward(x)

    def backward(self, grad_out):
        super().backward(grad_out)                       # weight and bias gradients are right
        w = np.ascontiguousarray(self.weight.data[:, :, ::-1, ::-1])
        return conv_input_grad(grad_out, w, self._x_shape, padding=1)


class Scale(nn.Module):
    """y = x * w**2 per channel, with a correct backward."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(np.linspace(0.5, 1.5, channels))
        self._x = None

    def forward(self, x):
        self._x = x
        return x * (self.weight.data ** 2)[None, :, None, None]

    def backward(self, grad_out):
        self.weight.accumulate(2 * self.weight.data * (grad_out * self._x).sum(axis=(0, 2, 3)))
        return grad_out * (self.weight.data ** 2)[None, :, None, None]
'''


def cli(*argv):
    parser = argparse.ArgumentParser(prog="convgrad")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture
def userpkg(tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "layers.py").write_text(textwrap.dedent(BROKEN))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "mypkg.layers"


def test_sweep_of_the_library_passes(capsys):
    assert cli("gradcheck") == 0
    out = capsys.readouterr().out
    assert "all passed" in out and "FAIL" not in out
    for name in ("Conv3d", "ConvTranspose2d", "MaxPool3d", "AvgPool1d", "AdaptiveMaxPool2d", "BatchNorm2d",
                 "LayerNorm", "GroupNorm", "Linear", "GELU", "LogSoftmax", "Dropout", "Flatten", "Upsample",
                 "Downsample", "Residual", "BasicBlock"):
        assert f"\n{name} " in out, name
    assert "mode=train" in out and "mode=eval" in out                # BatchNorm and Dropout both ways
    assert all(mode in out for mode in ("mode=reflect", "mode=replicate", "mode=circular", "p=same"))


def test_broken_user_module_fails(userpkg, capsys):
    code = cli("gradcheck", "--module", f"{userpkg}:MyConv", "--args", '{"in_channels": 2}',
               "--input-shape", "2,2,5,5", "--configs", "2")
    out = capsys.readouterr().out
    assert code == 1
    rows = [line for line in out.splitlines() if line.startswith("MyConv ") and line.rstrip().endswith("L")]
    assert len(rows) == 2 and all(r.rstrip().endswith("FAIL") and "weight" in r for r in rows)
    assert "2 FAILED (MyConv)" in out and "input" in out and "NO" in out     # the failing tensor's details


def test_correct_user_module_passes(userpkg, capsys):
    assert cli("gradcheck", "--module", f"{userpkg}:Scale", "--args", '{"channels": 3}',
               "--input-shape", "2,3,4,4") == 0
    assert "all passed" in capsys.readouterr().out
    assert cli("gradcheck", "--module", "convgrad.nn:Conv2d", "--args",
               '{"in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2}', "--input-shape", "1,2,6,5") == 0


def test_layer_selection(capsys):
    assert cli("gradcheck", "--layer", "maxpool2d", "--layer", "Normalization", "--configs", "2") == 0
    out = capsys.readouterr().out
    names = {line.split()[0] for line in out.splitlines()[2:] if line.endswith("PASS")}
    assert names == {"MaxPool2d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm"}
    assert cli("gradcheck", "--list") == 0
    assert "pooling" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (("--layer", "Conv9d"), "unknown layer 'Conv9d'"),
    (("--module", "mypkg.layers:MyConv"), "--module needs --input-shape"),
    (("--module", "mypkg.layers", "--input-shape", "1,2"), "expects 'package.module:Class'"),
    (("--module", "nowhere.at.all:X", "--input-shape", "1,2"), "cannot import 'nowhere.at.all'"),
    (("--module", "mypkg.layers:Nope", "--input-shape", "1,2"), "has no attribute 'Nope'"),
    (("--module", "mypkg.layers:MyConv", "--args", "{in_channels: 2}", "--input-shape", "1,2,5,5"), "not valid JSON"),
    (("--module", "mypkg.layers:MyConv", "--args", '{"channels": 2}', "--input-shape", "1,2,5,5"), "channels"),
    (("--configs", "0"), "--configs must be >= 1"),
])
def test_usage_errors(userpkg, capsys, argv, message):
    assert cli("gradcheck", *argv) == 2
    assert message in capsys.readouterr().err


def test_configurations_are_reproducible_and_the_same_alone_or_in_the_sweep():
    first = [c.describe() for c in S.cases("Conv2d", 4, seed=7)]
    assert first == [c.describe() for c in S.cases("Conv2d", 4, seed=7)]
    assert first != [c.describe() for c in S.cases("Conv2d", 4, seed=8)]
    swept = [r.config for r in S.sweep(["Conv1d", "Conv2d"], configs=4, seed=7) if r.layer == "Conv2d"]
    assert swept == first


def test_max_pool_inputs_have_no_near_ties():
    for case in S.cases("MaxPool2d", 5):
        v = np.sort(case.x.ravel())
        assert np.diff(v).min() > 1e-3


def test_dropout_in_training_mode_is_checked_with_a_fixed_mask():
    case = next(c for c in S.cases("Dropout", 2) if c.config["mode"] == "train")
    assert isinstance(case.module, S.FixedMask)
    y1, y2 = case.module(case.x), case.module(case.x)
    assert np.array_equal(y1, y2) and (y1 == 0).any()                  # the same mask, which drops units
    assert S.check_case("Dropout", case).passed


def test_a_layer_that_cannot_be_built_is_a_failure_not_a_crash(monkeypatch):
    def broken(rng, i):
        raise ValueError("no such configuration")
    monkeypatch.setitem(S.LAYERS, "Broken", broken)
    (r,) = S.sweep(["Broken"], configs=1)
    assert not r.passed and "no such configuration" in r.error
    assert S.format_row(r).endswith("FAIL")


def test_wrong_parameter_gradient_is_reported_per_tensor():
    class HalfBias(nn.Conv2d):
        def backward(self, grad_out):
            dx = super().backward(grad_out)
            self.bias.grad *= 0.5
            return dx
    case = S.Case(HalfBias(1, 2, 3, generator=0), np.random.default_rng(0).standard_normal((1, 1, 4, 4)), {})
    r = S.check_case("HalfBias", case)
    assert not r.passed and r.errors["bias"] > 0.1 and r.errors["weight"] < 1e-6 and r.errors["input"] < 1e-6
