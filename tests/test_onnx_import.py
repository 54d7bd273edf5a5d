"""convgrad.onnx.load: models exported by torch.onnx.export (a lenet and a ResNet-18 layout) and
by convgrad.onnx.export run in convgrad with torch's logits (<= 1e-5 in float32), train one
step exactly as torch does (float64, <= 1e-10), pass a gradient check; bad files are named."""
import warnings

import numpy as np
import pytest

from conftest import rel
from torch_twins import randomise_statistics, torch_model

import convgrad
from convgrad import models, nn, optim
from convgrad.onnx import OnnxError

onnx = pytest.importorskip("onnx")
TOL32, TOL64 = 1e-5, 1e-10


def resnet18_layout(torch, width=16, in_channels=3, num_classes=10):
    """torchvision's ResNet-18 topology (7x7/2 stem, 3x3/2 max-pool, four stages of two BasicBlocks
    with downsample.0/1 projections, global average pool, fc), channels width..8*width."""
    T = torch.nn

    class Block(T.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = T.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = T.BatchNorm2d(c_out)
            self.relu = T.ReLU()
            self.conv2 = T.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = T.BatchNorm2d(c_out)
            self.downsample = None
            if stride != 1 or c_in != c_out:
                self.downsample = T.Sequential(T.Conv2d(c_in, c_out, 1, stride, bias=False), T.BatchNorm2d(c_out))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet18(T.Module):
        def __init__(self):
            super().__init__()
            w = width
            self.conv1 = T.Conv2d(in_channels, w, 7, 2, 3, bias=False)
            self.bn1 = T.BatchNorm2d(w)
            self.relu = T.ReLU()
            self.maxpool = T.MaxPool2d(3, 2, 1)
            self.layer1 = T.Sequential(Block(w, w, 1), Block(w, w, 1))
            self.layer2 = T.Sequential(Block(w, 2 * w, 2), Block(2 * w, 2 * w, 1))
            self.layer3 = T.Sequential(Block(2 * w, 4 * w, 2), Block(4 * w, 4 * w, 1))
            self.layer4 = T.Sequential(Block(4 * w, 8 * w, 2), Block(8 * w, 8 * w, 1))
            self.avgpool = T.AdaptiveAvgPool2d((1, 1))
            self.fc = T.Linear(8 * w, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet18()


def torch_export(torch, model, x, path, fold=True):
    """torch.onnx.export (TorchScript exporter), batch axis dynamic. fold=False keeps BatchNorm
    nodes (and torch's parameter names) instead of folding them into the convolutions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=fold)
    return str(path)


CASES = {"lenet": ((1, 28, 28), lambda torch: torch_model(torch, "lenet")),
         "resnet18": ((3, 32, 32), lambda torch: resnet18_layout(torch))}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("fold", [True, False], ids=["folded", "unfolded"])
def test_torch_logits(name, fold, torch, tmp_path):
    shape, build = CASES[name]
    torch.manual_seed(0)
    theirs = randomise_statistics(build(torch), torch).eval()
    path = torch_export(torch, theirs, torch.zeros(2, *shape), tmp_path / "m.onnx", fold)
    ours = convgrad.onnx.load(path).eval()
    x = torch.randn(5, *shape)
    with torch.no_grad():
        expected = theirs(x).numpy()
    got = ours(x.numpy())
    assert got.dtype == np.float32
    assert rel(got, expected) <= TOL32


@pytest.mark.parametrize("name", CASES)
def test_training_step_equals_torch(name, torch, tmp_path):
    """Unfolded export of a float64 torch model; one SGD step (momentum, weight decay) in train
    mode (BatchNorm on batch statistics, running statistics updated) in both; then the logits."""
    shape, build = CASES[name]
    torch.manual_seed(1)
    theirs = randomise_statistics(build(torch), torch).double()
    path = torch_export(torch, theirs.eval(), torch.zeros(2, *shape, dtype=torch.float64), tmp_path / "m.onnx",
                        fold=False)
    ours = convgrad.onnx.load(path)
    names = [k for k in theirs.state_dict() if not k.endswith("num_batches_tracked")]
    assert sorted(ours.state_dict()) == sorted(names)          # torch's names, nothing else
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((4, *shape)), np.array([1, 0, 3, 1])
    ours.train()
    theirs.train()
    opt = optim.SGD(ours.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(2):
        logits = ours(x)
        loss = loss_fn(logits, labels)
        opt.zero_grad()
        ours.backward(loss_fn.backward())
        opt.step()
        tx = torch.from_numpy(x)
        tlogits = theirs(tx)
        tloss = torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(labels))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        assert rel(logits, tlogits.detach().numpy()) <= TOL64
        assert abs(loss - tloss.item()) <= TOL64 * abs(tloss.item())
    state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        assert rel(value, state[key].numpy()) <= TOL64, key
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        assert rel(ours(x), theirs(torch.from_numpy(x)).numpy()) <= TOL64


def test_gradcheck_imported(torch, tmp_path):
    torch.manual_seed(2)
    T = torch.nn
    theirs = T.Sequential(T.Conv2d(2, 3, 3, padding=1), T.BatchNorm2d(3), T.Tanh(), T.AvgPool2d(2),
                          T.Flatten(), T.Linear(3 * 9, 4), T.LogSoftmax(dim=1)).double()
    path = torch_export(torch, randomise_statistics(theirs, torch).eval(), torch.zeros(2, 2, 6, 6, dtype=torch.float64),
                        tmp_path / "g.onnx", fold=False)
    ours = convgrad.onnx.load(path)
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    for mode in (ours.eval(), ours.train()):
        report = convgrad.gradcheck(mode, x)
        assert report.passed, str(report)


@pytest.mark.parametrize("name", models.MODELS)
def test_convgrad_round_trip(name, tmp_path):
    model = models.build(name, generator=0).eval()
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    convgrad.onnx.export(model, x, tmp_path / "m.onnx")
    back = convgrad.onnx.load(tmp_path / "m.onnx").eval()
    assert rel(back(x), model(x)) <= TOL32
    assert set(back.state_dict()) == {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}


# ---- bad input ---------------------------------------------------------------------------------
def _small_file(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3, generator=0))
    path = tmp_path / "small.onnx"
    convgrad.onnx.export(model, np.zeros((1, 3, 4), np.float32), path)
    return path


def test_truncated_and_foreign_files_are_named(tmp_path):
    path = _small_file(tmp_path)
    data = path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(OnnxError, match="cut.onnx"):
        convgrad.onnx.load(tmp_path / "cut.onnx")
    (tmp_path / "notes.onnx").write_text("not a model at all, only some words\n" * 3)
    with pytest.raises(OnnxError, match="notes.onnx"):
        convgrad.onnx.load(tmp_path / "notes.onnx")
    with pytest.raises(OnnxError, match="absent.onnx.*does not exist"):
        convgrad.onnx.load(tmp_path / "absent.onnx")


def test_unsupported_op_is_named(tmp_path):
    h = onnx.helper
    graph = h.make_graph([h.make_node("Hardmax", ["x"], ["y"], name="the_hardmax")], "g",
                         [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])])
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=10), str(tmp_path / "h.onnx"))
    with pytest.raises(OnnxError, match=r"h.onnx: node 'the_hardmax' \(Hardmax\): operator Hardmax has no "
                                        r"convgrad form"):
        convgrad.onnx.load(tmp_path / "h.onnx")


def test_shape_mismatches_are_named(tmp_path):
    path = _small_file(tmp_path)
    model = convgrad.onnx.load(path)
    with pytest.raises(ValueError, match=r"small.onnx: input 'input' expects shape \('N', 3, 4\), got \(2, 4, 3\)"):
        model(np.zeros((2, 4, 3), np.float32))
    proto = onnx.load(str(path))
    weight = next(t for t in proto.graph.initializer if t.name == "1.weight")
    weight.CopyFrom(onnx.numpy_helper.from_array(np.zeros((3, 11), np.float32), "1.weight"))
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(OnnxError, match="bad.onnx"):
        convgrad.onnx.load(tmp_path / "bad.onnx")
    with pytest.raises(ValueError, match=r"1.weight expects shape \(3, 12\), the state has \(3, 11\)"):
        model.load_state_dict({"1.weight": np.zeros((3, 11), np.float32), "1.bias": np.zeros(3, np.float32)})


# ---- every layer and forward-only model convgrad exports comes back, and differentiates -----------------
def _export_cases():
    import test_onnx_export as E
    import test_onnx_export_recorded as ER
    cases = [(f"layer: {n}", m, s) for n, m, s in E.LAYERS]
    cases += [(f"forward-only: {n}", m, s) for n, m, s in ER.MODELS]
    return cases


@pytest.mark.parametrize("make, shape", [(m, s) for _, m, s in _export_cases()],
                         ids=[n for n, _, _ in _export_cases()])
def test_export_then_load(make, shape, tmp_path):
    import test_onnx_export as E
    convgrad.manual_seed(0)
    model = E._with_statistics(make())
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    convgrad.onnx.export(model, x[:2], tmp_path / "m.onnx", opset=19)
    back = convgrad.onnx.load(tmp_path / "m.onnx").eval()
    with convgrad.no_grad():
        expected = model.eval()(x)
    expected = getattr(expected, "data", expected)
    assert rel(back(x), expected) <= TOL32
    report = convgrad.gradcheck(back, x[:2].astype(np.float64))      # input and every initializer
    assert report.passed, str(report)


def test_recorded_mode_training_equals_explicit(tmp_path):
    """An imported model called with a Tensor is one recorded node: loss.backward() gives the
    same parameter and input gradients as the explicit backward."""
    model = models.resnet(generator=0)
    convgrad.onnx.export(model, np.zeros((2, 1, 28, 28), np.float32), tmp_path / "r.onnx")
    ours = convgrad.onnx.load(tmp_path / "r.onnx").double().train()
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28))
    labels = np.array([2, 7, 1])
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(ours(x), labels)
    dx = ours.backward(loss_fn.backward())
    explicit = {n: p.grad.copy() for n, p in ours.named_parameters()}
    ours.zero_grad()
    xt = convgrad.tensor(x, requires_grad=True)
    loss = loss_fn(ours(xt), labels)
    assert isinstance(loss, convgrad.Tensor)
    loss.backward()
    assert rel(xt.grad, dx) <= TOL64
    for name, p in ours.named_parameters():
        assert rel(p.grad, explicit[name]) <= TOL64, name


def test_torch_shape_arithmetic_resize_dropout_concat(torch, tmp_path):
    """x.view(x.size(0), -1) exports as Shape/Gather/Unsqueeze/Concat/Reshape on integers; with
    F.interpolate (Resize), Dropout, torch.cat and LeakyReLU/Sigmoid/Softmax the graph runs in
    convgrad at other batch sizes with torch's outputs."""
    T = torch.nn

    class Net(T.Module):
        def __init__(self):
            super().__init__()
            self.conv = T.Conv2d(2, 3, 3, padding=1)
            self.drop = T.Dropout(0.3)
            self.fc = T.Linear(6 * 4 * 4, 5)

        def forward(self, x):
            h = torch.nn.functional.leaky_relu(self.conv(x), 0.2)
            h = torch.cat([h, torch.sigmoid(h)], dim=1)
            h = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(h, 2), scale_factor=2, mode="nearest")
            h = self.drop(torch.nn.functional.max_pool2d(h, 2))
            return torch.softmax(self.fc(h.view(h.size(0), -1)), dim=1)

    torch.manual_seed(3)
    theirs = Net().eval()
    path = torch_export(torch, theirs, torch.zeros(2, 2, 8, 8), tmp_path / "n.onnx")
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"Shape", "Gather", "Reshape", "Resize"} <= ops
    ours = convgrad.onnx.load(path).eval()
    for batch in (1, 6):
        x = torch.randn(batch, 2, 8, 8)
        with torch.no_grad():
            assert rel(ours(x.numpy()), theirs(x).numpy()) <= TOL32


# ---- several inputs and outputs ----------------------------------------------------------------------
def _multi_cases():
    import test_onnx_export_recorded as ER
    return ER.MULTI


@pytest.mark.parametrize("make, shapes", [(m, s) for _, m, s in _multi_cases()], ids=[n for n, _, _ in _multi_cases()])
def test_several_inputs_and_outputs_come_back(make, shapes, tmp_path):
    """convgrad's export of a model of several inputs and outputs, loaded: the same outputs (float32),
    and in float64 the explicit backward (a tuple of output gradients) gives the original recorded
    model's input and parameter gradients."""
    convgrad.manual_seed(0)
    model = make()
    rng = np.random.default_rng(0)

    def inputs(batch, dtype):
        return [rng.standard_normal((batch, *s[1:]) if s[0] == 2 else s).astype(dtype) for s in shapes]
    convgrad.onnx.export(model, tuple(inputs(2, np.float32)), tmp_path / "m.onnx")
    back = convgrad.onnx.load(tmp_path / "m.onnx").eval()
    xs = inputs(4, np.float32)
    with convgrad.no_grad():
        expected = [o.data for o in model.eval()(*xs)]
    got = back(*xs)
    assert isinstance(got, tuple) and len(got) == len(expected)
    for g, e in zip(got, expected):
        assert rel(g, e) <= TOL32
    model.to(np.float64)
    back.double()
    xs = inputs(3, np.float64)
    ts = [convgrad.tensor(x, requires_grad=True) for x in xs]
    outs = model(*ts)
    gs = [rng.standard_normal(o.shape) for o in outs]
    loss = (outs[0] * gs[0]).sum()
    for o, g in zip(outs[1:], gs[1:]):
        loss = loss + (o * g).sum()
    loss.backward()
    back.zero_grad()
    for g, o in zip(back(*xs), outs):
        assert rel(g, o.data) <= TOL64
    dxs = back.backward(tuple(gs))
    dxs = dxs if len(xs) > 1 else (dxs,)                 # one input: one array, as every Module
    for dx, t in zip(dxs, ts):
        assert rel(dx, t.grad) <= TOL64
    theirs = dict(model.named_parameters())
    for name, p in back.named_parameters():
        assert rel(p.grad, theirs[name].grad) <= TOL64, name
    with pytest.raises(ValueError, match=rf"m.onnx: backward of a graph of {len(outs)} outputs takes a tuple of "
                                         rf"{len(outs)} gradients"):
        back(*[convgrad.tensor(x, requires_grad=True) for x in xs])[0].sum().backward()
    with pytest.raises(ValueError, match=rf"m.onnx: the graph takes {len(xs)} input\(s\)"):
        back(*xs, xs[0])


def test_torch_two_inputs_two_outputs(torch, tmp_path):
    T = torch.nn

    class Two(T.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = T.Linear(4, 3), T.Linear(5, 3)

        def forward(self, x, y):
            h = self.a(x) + self.b(y)
            return torch.relu(h), torch.where(h > 0, h, x[:, :3])

    torch.manual_seed(4)
    theirs = Two().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(theirs, (torch.zeros(2, 4), torch.zeros(2, 5)), str(tmp_path / "t.onnx"), dynamo=False,
                          input_names=["x", "y"], output_names=["p", "q"],
                          dynamic_axes={n: {0: "N"} for n in ("x", "y", "p", "q")})
    ours = convgrad.onnx.load(tmp_path / "t.onnx")
    assert ours.input_names == ["x", "y"] and ours.output_names == ["p", "q"]
    x, y = torch.randn(6, 4), torch.randn(6, 5)
    with torch.no_grad():
        expected = theirs(x, y)
    for got, e in zip(ours(x.numpy(), y.numpy()), expected):
        assert rel(got, e.numpy()) <= TOL32
