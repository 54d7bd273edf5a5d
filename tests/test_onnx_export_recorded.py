"""convgrad.onnx.export of forward-only models (recorded mode): every forward-only test model of
tests/test_recorded_models.py and a few more Tensor/functional ops, run in onnxruntime at another
batch size; logits equal convgrad's (float32, <= 1e-5 relative). What has no ONNX form is named."""
import numpy as np
import pytest

import test_recorded_models as R
from conftest import rel

import convgrad as cg
from convgrad import functional as F
from convgrad import nn
from convgrad.onnx import OnnxError

ort = pytest.importorskip("onnxruntime")
TOL = 1e-5


def reference(model, x):
    with cg.no_grad():
        y = model.eval()(x)
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
]


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


@pytest.mark.parametrize("model, shape, message", [
    (PlusNumber(), (2, 3), r"PlusNumber, op 0 \(add\): a constant operand given as a number or array is not kept"),
    (LossInside(), (2, 3), r"LossInside, op 0 \(mse_loss\): the op 'mse_loss' has no ONNX form"),
    (OnlyDetached(), (2, 4), r"OnlyDetached, op 0 \(Linear\): input 0 is a tensor computed from the model's input "
                             r"outside the recorded graph"),
    (NumpyRoundTrip(), (2, 4), r"NumpyRoundTrip, op 0 \(mul\): input 1 is a tensor computed from the model's input"),
    (nn.Sequential(nn.ReLU(), ReturnsArray()), (2, 4), r"ReturnsArray.forward returned a ndarray, not one recorded "
                                                       r"Tensor"),
    (R.TwoInTwoOut(), (2, 4), r"TwoInTwoOut.forward on one Tensor of shape \(2, 4\) failed \(TypeError"),
])
def test_no_onnx_form_is_named(model, shape, message, tmp_path):
    with pytest.raises(OnnxError, match=message):
        cg.onnx.export(model, np.ones(shape, np.float32), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
