"""convgrad.onnx.export checked in onnxruntime (CPU): every built-in model and every exportable
layer with its options; logits equal convgrad's (float32, relative error <= 1e-5) at a batch
size other than the example's (the batch axis is dynamic). Errors name the layer."""
import numpy as np
import pytest

from conftest import rel

import convgrad
from convgrad import models, nn
from convgrad.onnx import OnnxError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
TOL = 1e-5


def run_ort(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def exported_matches(model, shape, tmp_path, seed=0, opset=17):
    """Export with a batch of 2, run a batch of shape[0] in both; return the relative error."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    path = tmp_path / "m.onnx"
    convgrad.onnx.export(model, x[:2], path, opset=opset)
    expected = model.eval()(x)
    got = run_ort(path, x)
    assert got.shape == expected.shape and got.dtype == np.float32
    return rel(got, expected)


def _with_statistics(model, seed=0):
    """BatchNorm affine parameters and running statistics set away from their start values."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)):
            if m.weight is not None:
                m.weight.data = rng.uniform(0.5, 1.5, m.weight.shape).astype(np.float32)
            if getattr(m, "bias", None) is not None:
                m.bias.data = (rng.standard_normal(m.bias.shape) * 0.3).astype(np.float32)
            if getattr(m, "running_mean", None) is not None:
                m.running_mean = (rng.standard_normal(m.running_mean.shape) * 0.3).astype(np.float32)
                m.running_var = rng.uniform(0.5, 1.5, m.running_var.shape).astype(np.float32)
    return model


@pytest.mark.parametrize("name", models.MODELS)
def test_builtin_models(name, tmp_path):
    model = _with_statistics(models.build(name, generator=0))
    assert exported_matches(model, (5, 1, 28, 28), tmp_path) <= TOL


def test_initializers_keep_state_dict_names_and_batch_is_dynamic(tmp_path):
    model = models.resnet(generator=0)
    convgrad.onnx.export(model, np.zeros((1, 1, 28, 28), np.float32), tmp_path / "r.onnx")
    proto = onnx.load(str(tmp_path / "r.onnx"))
    names = {t.name for t in proto.graph.initializer}
    assert {k for k in model.state_dict() if not k.endswith("num_batches_tracked")} <= names
    assert proto.ir_version == 10
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    out = proto.graph.output[0].type.tensor_type.shape.dim
    assert out[0].dim_param == "N" and out[1].dim_value == 10


g = np.random.default_rng(7)
LAYERS = [
    ("conv stride/pad/dilation/groups", lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1),
                                                           groups=2, generator=g), (3, 4, 11, 9)),
    ("conv no bias", lambda: nn.Conv2d(3, 5, 1, bias=False, generator=g), (3, 3, 6, 6)),
    ("conv same, even kernel", lambda: nn.Conv2d(3, 4, 4, padding="same", dilation=2, generator=g), (3, 3, 9, 8)),
    ("conv valid", lambda: nn.Conv2d(3, 4, 3, padding="valid", generator=g), (3, 3, 7, 7)),
    ("conv reflect", lambda: nn.Conv2d(3, 4, 3, padding=2, padding_mode="reflect", generator=g), (3, 3, 7, 8)),
    ("conv replicate", lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="replicate", generator=g), (3, 3, 7, 8)),
    ("conv1d", lambda: nn.Conv1d(3, 4, 5, stride=2, padding=2, generator=g), (3, 3, 17)),
    ("conv3d", lambda: nn.Conv3d(2, 3, 3, padding=1, stride=(1, 2, 2), generator=g), (3, 2, 5, 6, 6)),
    ("depthwise", lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4, generator=g), (3, 4, 8, 8)),
    ("conv transpose all options", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                                              groups=2, dilation=2, generator=g), (3, 4, 5, 6)),
    ("conv transpose 1d", lambda: nn.ConvTranspose1d(3, 2, 4, stride=3, bias=False, generator=g), (3, 3, 7)),
    ("max pool", lambda: nn.MaxPool2d(3, stride=2, padding=1, dilation=1), (3, 2, 9, 10)),
    ("max pool dilated", lambda: nn.MaxPool2d(2, stride=1, dilation=2), (3, 2, 7, 7)),
    ("max pool ceil", lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True), (3, 2, 8, 8)),
    ("max pool 1d", lambda: nn.MaxPool1d(3, 2, 1), (3, 2, 11)),
    ("avg pool", lambda: nn.AvgPool2d(3, stride=2, padding=1), (3, 2, 9, 9)),
    ("avg pool no pad count", lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (3, 2, 9, 9)),
    ("avg pool 3d", lambda: nn.AvgPool3d(2), (3, 2, 4, 4, 6)),
    ("adaptive avg to global", lambda: nn.AdaptiveAvgPool2d(1), (3, 5, 7, 6)),
    ("adaptive avg even", lambda: nn.AdaptiveAvgPool2d((2, 3)), (3, 2, 8, 9)),
    ("adaptive max to global", lambda: nn.AdaptiveMaxPool2d((1, 1)), (3, 5, 7, 6)),
    ("adaptive max even", lambda: nn.AdaptiveMaxPool1d(4), (3, 2, 12)),
    ("batch norm 2d", lambda: nn.BatchNorm2d(5), (3, 5, 4, 4)),
    ("batch norm 1d", lambda: nn.BatchNorm1d(5, eps=1e-3), (3, 5)),
    ("batch norm no affine", lambda: nn.BatchNorm2d(5, affine=False), (3, 5, 4, 4)),
    ("layer norm", lambda: nn.LayerNorm((4, 5)), (3, 2, 4, 5)),
    ("layer norm no bias", lambda: nn.LayerNorm(5, bias=False), (3, 4, 5)),
    ("group norm", lambda: nn.GroupNorm(3, 6), (3, 6, 4, 5)),
    ("group norm no affine", lambda: nn.GroupNorm(2, 6, affine=False, eps=1e-3), (3, 6, 7)),
    ("linear", lambda: nn.Linear(7, 4, generator=g), (3, 7)),
    ("linear on 3-d input, no bias", lambda: nn.Linear(7, 4, bias=False, generator=g), (3, 5, 7)),
    ("relu", lambda: nn.ReLU(), (3, 4, 5)),
    ("leaky relu", lambda: nn.LeakyReLU(0.2), (3, 4, 5)),
    ("elu", lambda: nn.ELU(0.7), (3, 4, 5)),
    ("gelu", lambda: nn.GELU(), (3, 4, 5)),
    ("gelu tanh", lambda: nn.GELU("tanh"), (3, 4, 5)),
    ("sigmoid", lambda: nn.Sigmoid(), (3, 4, 5)),
    ("tanh", lambda: nn.Tanh(), (3, 4, 5)),
    ("softplus", lambda: nn.Softplus(beta=2.0, threshold=1.5), (3, 4, 5)),
    ("silu", lambda: nn.SiLU(), (3, 4, 5)),
    ("softmax", lambda: nn.Softmax(dim=1), (3, 4, 5)),
    ("log softmax", lambda: nn.LogSoftmax(dim=-1), (3, 4, 5)),
    ("dropout is identity", lambda: nn.Sequential(nn.Dropout(0.5), nn.Dropout2d(0.3), nn.ReLU()), (3, 4, 5, 5)),
    ("flatten default", lambda: nn.Flatten(), (3, 2, 3, 4)),
    ("flatten middle", lambda: nn.Flatten(2, 3), (3, 2, 3, 4, 5)),
    ("flatten all", lambda: nn.Flatten(0), (3, 2, 3)),
    ("unflatten", lambda: nn.Unflatten(1, (2, 6)), (3, 12, 2)),
    ("upsample nearest", lambda: nn.Upsample(scale_factor=2), (3, 2, 4, 5)),
    ("upsample nearest 1d", lambda: nn.Upsample(scale_factor=3), (3, 2, 4)),
    ("upsample zeros", lambda: nn.Upsample(scale_factor=2, mode="zeros"), (3, 2, 4, 5)),
    ("downsample", lambda: nn.Downsample(2), (3, 2, 7, 6)),
    ("zero pad", lambda: nn.ZeroPad2d((1, 2, 0, 3)), (3, 2, 4, 5)),
    ("constant pad", lambda: nn.ConstantPad1d((2, 1), 0.5), (3, 2, 6)),
    ("reflection pad", lambda: nn.ReflectionPad2d((2, 1, 1, 2)), (3, 2, 4, 5)),
    ("replication pad 3d", lambda: nn.ReplicationPad3d(1), (3, 2, 3, 4, 4)),
    ("residual identity", lambda: nn.Residual(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1, generator=g), nn.ReLU())),
     (3, 3, 6, 6)),
    ("residual projection", lambda: nn.Residual(nn.Conv2d(3, 4, 3, stride=2, padding=1, generator=g),
                                                nn.Conv2d(3, 4, 1, stride=2, generator=g)), (3, 3, 6, 6)),
    ("add of three", lambda: nn.Add(nn.Conv2d(3, 2, 1, generator=g), nn.Conv2d(3, 2, 3, padding=1, generator=g),
                                    nn.Identity() if False else nn.Conv2d(3, 2, 1, bias=False, generator=g)),
     (3, 3, 5, 5)),
    ("concat", lambda: nn.Concat(nn.Conv2d(3, 2, 1, generator=g), nn.MaxPool2d(3, 1, 1), dim=1), (3, 3, 5, 5)),
    ("basic block", lambda: nn.BasicBlock(4, 6, stride=2, generator=g), (3, 4, 8, 8)),
    ("identity model", lambda: nn.Identity(), (3, 4)),
]


@pytest.mark.parametrize("make, shape", [(m, s) for _, m, s in LAYERS], ids=[n for n, _, _ in LAYERS])
def test_layer(make, shape, tmp_path):
    model = _with_statistics(make())
    assert exported_matches(model, shape, tmp_path) <= TOL


def test_opset_21_and_float64(tmp_path):
    model = _with_statistics(models.cnn(generator=0))
    assert exported_matches(model, (3, 1, 28, 28), tmp_path, opset=21) <= TOL
    # (onnxruntime's CPU Conv has no float64 kernel)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 49, 8, generator=0), nn.Tanh(), nn.Linear(8, 4, generator=0))
    model.double()
    x = np.random.default_rng(0).standard_normal((3, 2, 7, 7))
    convgrad.onnx.export(model, x, tmp_path / "d.onnx")
    assert run_ort(tmp_path / "d.onnx", x).dtype == np.float64
    assert rel(run_ort(tmp_path / "d.onnx", x), model(x)) <= 1e-12


def test_circular_padding_needs_opset_19(tmp_path):
    model = nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode="circular", generator=0)
    assert exported_matches(model, (3, 3, 7, 8), tmp_path, opset=19) <= TOL
    with pytest.raises(OnnxError, match="Conv2d \\(the model itself\\).*circular.*opset 19 \\(asked: 17\\)"):
        convgrad.onnx.export(model, np.zeros((1, 3, 7, 8), np.float32), tmp_path / "c.onnx", opset=17)
    pad = nn.Sequential(nn.CircularPad2d((1, 2, 2, 0)), nn.Conv2d(3, 2, 1, generator=0))
    assert exported_matches(pad, (3, 3, 5, 6), tmp_path, opset=19) <= TOL
    with pytest.raises(OnnxError, match=r"CircularPad2d at '0': circular padding below opset 19 \(asked: 17\)"):
        convgrad.onnx.export(pad, np.zeros((1, 3, 5, 6), np.float32), tmp_path / "p.onnx", opset=17)


class Twice(nn.Module):
    """A custom explicit module: exported through its forward run on Tensors (recorded)."""
    def forward(self, x):
        return x * 2

    def backward(self, grad_out):
        return grad_out * 2


class NumpyInside(Twice):
    def forward(self, x):
        return np.tanh(x)


def test_custom_module_and_layer_without_onnx_form(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, generator=0), Twice())
    assert exported_matches(model, (3, 1, 5, 5), tmp_path) <= TOL
    model = nn.Sequential(nn.Conv2d(1, 2, 3, generator=0), NumpyInside())
    with pytest.raises(OnnxError, match=r"NumpyInside.forward on one Tensor of shape \(1, 2, 3, 3\) failed"):
        convgrad.onnx.export(model, np.zeros((1, 1, 5, 5), np.float32), tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
    with pytest.raises(OnnxError, match="AdaptiveAvgPool2d at '0'.*uneven windows"):
        convgrad.onnx.export(nn.Sequential(nn.AdaptiveAvgPool2d(3)), np.zeros((1, 1, 5, 5), np.float32),
                             tmp_path / "bad.onnx")
    with pytest.raises(OnnxError, match=r"MaxUnpool2d at '1': max unpooling \(it reads MaxPool's indices"):
        convgrad.onnx.export(nn.Sequential(nn.ReLU(), nn.MaxUnpool2d(2)), np.zeros((1, 1, 4, 4), np.float32),
                             tmp_path / "bad.onnx")
    with pytest.raises(OnnxError, match="MaxPool2d.*return_indices"):
        convgrad.onnx.export(nn.MaxPool2d(2, return_indices=True), np.zeros((1, 1, 4, 4), np.float32),
                             tmp_path / "bad.onnx")
    with pytest.raises(OnnxError, match="opset must be in 17..21, got 9"):
        convgrad.onnx.export(nn.ReLU(), np.zeros((1, 3), np.float32), tmp_path / "bad.onnx", opset=9)
