"""convgrad.onnx.export of forward-only models (recorded mode): every forward-only test model of
the recorded-mode tests (tests/test_recorded_models.py, test_recorded_mode.py, test_explain_graph.py,
tiny_models.py), models of several inputs and outputs, constant operands and comparison masks,
run in onnxruntime at another batch size; outputs equal convgrad's (float32, <= 1e-5 relative).
What has no ONNX form is named."""
import numpy as np
import pytest

import test_explain_graph
import test_recorded_mode
import test_recorded_models as R
import tiny_models
from conftest import rel

import convgrad as cg
from convgrad import functional as F
from convgrad import nn
from convgrad.onnx import OnnxError

ort = pytest.importorskip("onnxruntime")
TOL = 1e-5


def reference(model, *xs):
    with cg.no_grad():
        y = model.eval()(*xs)
    if isinstance(y, (tuple, list)):
        return [getattr(v, "data", v) for v in y]
    return y.data if isinstance(y, cg.Tensor) else y


def ort_error(model, shape, tmp_path, opset=17):
    """Export with a batch of 2, run a batch of shape[0] + 3 in onnxruntime and in convgrad."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    cg.onnx.export(model, x[:2], tmp_path / "m.onnx", opset=opset)
    xb = np.random.default_rng(1).standard_normal((shape[0] + 3, *shape[1:])).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": xb})[0]
    return rel(got, reference(model, xb))


class Everything(nn.Module):
    """Tensor ops and functional ops that the test models above do not use."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.up = nn.Conv2d(4, 4, 1)
        self.ln = nn.LayerNorm(4)
        self.gn_w = nn.Parameter(np.linspace(0.5, 1.5, 4).astype(np.float32))
        self.gn_b = nn.Parameter(np.linspace(-0.2, 0.2, 4).astype(np.float32))
        self.scale = cg.tensor(np.float32(0.5))            # a constant Tensor
        self.mix = nn.Parameter(np.eye(4, dtype=np.float32) + 0.1)

    def forward(self, x):
        h = F.leaky_relu(self.conv(x), 0.1)
        h = F.group_norm(h, 2, self.gn_w, self.gn_b)
        h = F.max_pool2d(h, 2, ceil_mode=True) + F.avg_pool2d(h, 2, ceil_mode=True)
        h = F.upsample_nearest(h, 2)[:, :, :6, 1:7]
        h = F.gelu(self.up(h), approximate="tanh") * self.scale - h.sigmoid() / 3.0
        h = h.permute(0, 2, 3, 1)                            # (N, H, W, C)
        h = self.ln(h) @ self.mix
        h = (h.exp().clamp(max=4.0) + h.abs().sqrt() - (-h) ** 2).mean(dim=(1, 2))
        g = cg.stack([h, h.tanh()], dim=1).sum(dim=1)
        return cg.cat([g.softmax(dim=1), g.amax(dim=1, keepdim=True), g[..., None, 2].log_softmax(dim=1)], dim=1)


class Constants(nn.Module):
    """Python numbers and ndarrays as operands of every binary op (reflected too), where with a
    constant branch, and masks from comparisons with numbers, arrays and tensors."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.offset = np.linspace(-1, 1, 4).astype(np.float32)      # a plain array attribute
        self.mix = (np.eye(4) * 0.5 + 0.1).astype(np.float32)

    def forward(self, x):
        h = self.lin(x)
        h = (h + 1.0) * 0.5 - self.offset
        h = 2.0 - h / 3.0 + 1.5 / (h.abs() + 1.0) + h * np.float32(0.25)
        h = h @ self.mix + (self.mix @ h.T).T + 0.5 * h ** 2
        r = h.clamp(min=0)
        step = cg.where(h > 0.1, np.ones(4, np.float32), np.zeros(4, np.float32))   # no gradient: a mask only
        h = cg.where(h < self.offset, h, 0.0) + cg.where(r == 0, -1.0, r) * step
        h = cg.where(h >= x, h, x) + cg.where(h != r, 0.5, h) - cg.where(h <= 0.2, h, x)
        h = cg.where(h > np.full(4, 0.3), h, -h)          # a float64 array: compared in float64 (a Cast)
        h = F.linear(h, self.mix, self.offset) + (h.abs() + 1.0).log()[:, ::-1]    # a constant weight; log; step -1
        return cg.where(np.array([True, False, True, False]), h, self.offset)


class SplitMaxWhere(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.mask = cg.tensor(np.array([True, False, True, True, False, True]))     # a constant Tensor

    def forward(self, x):
        h = self.lin(x)
        a, b = cg.split(h, 3, dim=1)
        c, d = cg.chunk(h, 2, dim=1)
        values, _ = h.max(dim=1)
        return cg.cat([a * d, b - c, values.reshape(-1, 1), cg.where(self.mask, h, h * 0.5)], dim=1)


MODELS = [
    ("reused activation", R.ReusedActivation, (5, 4)),
    ("shared weights", R.SharedConv, (2, 3, 6, 6)),
    ("residual with +", R.PlusResidual, (2, 3, 5, 5)),
    ("channel cat", R.ChannelCat, (2, 2, 6, 6)),
    ("gate", R.Gate, (2, 3, 5, 5)),
    ("channel slices", R.ChannelSlices, (2, 2, 7, 7)),
    ("reshape/permute", R.ReshapePermute, (3, 2, 6, 6)),
    ("detach", R.Detached, (5, 4)),
    ("functional conv net", R.ConvNet, (2, 1, 10, 10)),
    ("conv + BatchNorm", R.ConvBN, (4, 2, 5, 5)),
    ("explicit module inside", R.WithOwnBackward, (4, 3)),
    ("forward-only BasicBlock", lambda: R.ForwardOnlyBasicBlock(3, 4, 2), (2, 3, 8, 8)),
    ("reused ReLU Sequential", lambda: nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3), nn.ReLU()),
     (6, 4)),
    ("many ops", Everything, (2, 3, 6, 8)),
    ("split, chunk, max, where", SplitMaxWhere, (4, 6)),
    ("explicit module with its own backward", R.HandWritten, (4, 3)),
    ("forward-only child in Sequential", lambda: nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), R.Doubler(), nn.ReLU()),
     (2, 2, 4, 4)),
    ("forward-only child in Residual", lambda: nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), R.Doubler())),
     (2, 2, 4, 4)),
    ("forward-only child in Add", lambda: nn.Add(nn.Conv2d(2, 2, 3, padding=1), R.Doubler()), (2, 2, 4, 4)),
    ("forward-only child in Concat", lambda: _concat_with_doubler(), (2, 2, 4, 4)),
    ("gated tanh (test_recorded_mode)", test_recorded_mode.GatedTanh, (2, 2, 5, 5)),
    ("twice (test_explain_graph)", lambda: test_explain_graph.Twice().to(np.float32), (2, 1, 6, 6)),
    ("tiny forward-only CNN (tiny_models)", lambda: tiny_models.forward_only(1, 8, 3, generator=0), (2, 1, 8, 8)),
    ("number operand", lambda: PlusNumber(), (2, 3)),
    ("constants and masks", Constants, (3, 4)),
]


def _concat_with_doubler():
    conv = nn.Conv2d(2, 2, 3, padding=1)
    return nn.Concat(conv, R.Doubler(), conv)


class ThreeInListOut(nn.Module):
    """Three inputs (one without a batch axis), a list of three outputs: a comparison between two
    inputs, an input returned as it is, and one output twice."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x, y, table):
        h = self.lin(x) @ table                        # table: (3, 2), the same for every batch
        z = cg.where(x > y, x, y * 2.0) + cg.where(x == y, 1.0, x)
        return [h, z, y, h]


class Pair(nn.Module):
    def forward(self, x):
        return x.relu(), x.tanh()


MULTI = [
    ("one in, two out", Pair, [(2, 4)]),
    ("two in, two out", R.TwoInTwoOut, [(2, 4), (2, 5)]),
    ("three in, a list out", ThreeInListOut, [(2, 4), (2, 4), (3, 2)]),
]


@pytest.mark.parametrize("make, shapes", [(m, s) for _, m, s in MULTI], ids=[n for n, _, _ in MULTI])
def test_several_inputs_and_outputs(make, shapes, tmp_path):
    """Exported with a batch of 2, run with a batch of 5: every output equals convgrad's."""
    cg.manual_seed(0)
    model = make()
    rng = np.random.default_rng(0)

    def inputs(batch):
        xs = [rng.standard_normal((batch, *s[1:]) if s[0] == 2 else s).astype(np.float32) for s in shapes]
        if len(xs) > 1 and xs[1].shape == xs[0].shape:
            xs[1][:, 1] = xs[0][:, 1]                   # ties for the comparisons
        return xs
    xs = inputs(2)
    names = [f"in{i}" for i in range(len(shapes))]
    cg.onnx.export(model, tuple(xs), tmp_path / "m.onnx", input_names=names)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == names
    assert [i.shape[0] for i in session.get_inputs()] == ["N" if s[0] == 2 else s[0] for s in shapes]
    xb = inputs(5)
    expected = reference(model, *xb)
    expected = expected if isinstance(expected, list) else [expected]
    got = session.run(None, dict(zip(names, xb)))
    assert len(got) == len(expected) == len(session.get_outputs())
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and rel(g, e) <= TOL


def test_output_names(tmp_path):
    import onnx
    cg.manual_seed(0)
    x = np.ones((2, 4), np.float32)
    cg.onnx.export(R.TwoInTwoOut(), (x, np.ones((2, 5), np.float32)), tmp_path / "m.onnx",
                   output_names=["sum", "side"])
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [i.name for i in graph.input] == ["input_0", "input_1"]
    assert [o.name for o in graph.output] == ["sum", "side"]
    assert [[d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output] == [["N", 3],
                                                                                                          ["N", 2]]
    with pytest.raises(OnnxError, match=r"output_names must be 2 distinct non-empty strings, got \['y'\]"):
        cg.onnx.export(R.TwoInTwoOut(), (x, np.ones((2, 5), np.float32)), tmp_path / "n.onnx", output_names=["y"])
    with pytest.raises(OnnxError, match=r"example_input\[1\] must be a float array"):
        cg.onnx.export(R.TwoInTwoOut(), (x, np.ones((2, 5), int)), tmp_path / "n.onnx")
    assert not (tmp_path / "n.onnx").exists()


def test_every_recorded_test_model_is_covered():
    """Each Module class defined in tests/test_recorded_models.py is part of an exported model above."""
    defined = {c for c in vars(R).values() if isinstance(c, type) and issubclass(c, nn.Module)}
    cg.manual_seed(0)
    covered = {type(m) for _, make, _ in MODELS + MULTI for m in make().modules()}
    assert defined <= covered, sorted(c.__name__ for c in defined - covered)


@pytest.mark.parametrize("make, shape", [(m, s) for _, m, s in MODELS], ids=[n for n, _, _ in MODELS])
def test_forward_only_models(make, shape, tmp_path):
    cg.manual_seed(0)
    model = make()
    for m in model.modules():                       # statistics away from (0, 1)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean = np.linspace(-0.3, 0.3, m.num_features).astype(np.float32)
            m.running_var = np.linspace(0.5, 1.5, m.num_features).astype(np.float32)
    assert ort_error(model, shape, tmp_path) <= TOL


def test_opset_18_reductions(tmp_path):
    cg.manual_seed(0)
    assert ort_error(Everything(), (2, 3, 6, 8), tmp_path, opset=18) <= TOL


def test_shared_parameter_written_once(tmp_path):
    import onnx
    cg.onnx.export(R.SharedConv(), np.zeros((1, 3, 6, 6), np.float32), tmp_path / "s.onnx")
    names = [t.name for t in onnx.load(str(tmp_path / "s.onnx")).graph.initializer]
    assert names.count("conv.weight") == 1 and not any(n.startswith("conv.weight_") for n in names)


# ---- what has no ONNX form ---------------------------------------------------------------------------
class PlusNumber(nn.Module):
    def forward(self, x):
        return x + 1.0


class LossInside(nn.Module):
    def forward(self, x):
        return F.mse_loss(x, np.zeros(x.shape, x.dtype))


class OnlyDetached(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2 = nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x):
        return self.l2(self.l1(x).detach()) + self.l2(x)


class NumpyRoundTrip(nn.Module):
    def forward(self, x):
        return x * cg.tensor(np.tanh(x.data))


class ReturnsArray(nn.Module):
    def forward(self, x):
        return np.tanh(x.data)

    def backward(self, grad_out):
        return grad_out


class ArrayFromInput(nn.Module):
    def forward(self, x):
        return x + np.tanh(x.data)


@pytest.mark.parametrize("model, shape, message", [
    (ArrayFromInput(), (2, 3), r"ArrayFromInput, op 0 \(add\): operand 1 changes with the input outside the "
                               r"recorded graph"),
    (LossInside(), (2, 3), r"LossInside, op 0 \(mse_loss\): the op 'mse_loss' has no ONNX form"),
    (OnlyDetached(), (2, 4), r"OnlyDetached, op 0 \(Linear\): input 0 is a tensor computed from the model's input "
                             r"outside the recorded graph"),
    (NumpyRoundTrip(), (2, 4), r"NumpyRoundTrip, op 0 \(mul\): input 1 is a tensor computed from the model's input"),
    (nn.Sequential(nn.ReLU(), ReturnsArray()), (2, 4), r"ReturnsArray.forward returned a ndarray, not a recorded "
                                                       r"Tensor"),
    (R.TwoInTwoOut(), (2, 4), r"TwoInTwoOut.forward on one Tensor of shape \(2, 4\) failed \(TypeError.*a tuple for "
                              r"several"),
    (nn.Sequential(nn.ReLU(), Pair()), (2, 4), r"Pair at '1' returns 2 outputs; inside a container a module "
                                               r"must return one Tensor"),
])
def test_no_onnx_form_is_named(model, shape, message, tmp_path):
    with pytest.raises(OnnxError, match=message):
        cg.onnx.export(model, np.ones(shape, np.float32), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
