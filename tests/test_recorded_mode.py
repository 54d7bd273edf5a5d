"""Recorded mode's mechanics: the graph's lifetime, no_grad, frozen parameters, explicit repeat
calls, torch habits (load_state_dict, torch tensors, summary) and its errors."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import convgrad as cg
from convgrad import models, nn
from convgrad.autograd import graph_nodes
from conftest import rel


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 3))


def batch(seed=0, n=8):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, n)


def test_backward_twice_is_a_clear_error_unless_retained():
    model, loss_fn = small_net(), nn.CrossEntropyLoss()
    x, y = batch()
    loss = loss_fn(model(cg.tensor(x)), y)
    assert loss.shape == () and loss.grad_fn.op == "CrossEntropyLoss"
    loss.backward(retain_graph=True)
    first = model[0].weight.grad.copy()
    loss.backward()
    assert rel(model[0].weight.grad, 2 * first) < 1e-6
    with pytest.raises(RuntimeError, match="second time.*freed"):
        loss.backward()


def test_recorded_gradients_equal_explicit_ones():
    model, loss_fn = small_net(), nn.CrossEntropyLoss()
    x, y = batch()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    explicit = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    loss_fn(model(cg.tensor(x)), y).backward()
    for g, p in zip(explicit, model.parameters()):
        assert np.array_equal(g, p.grad)


def test_graph_is_freed_when_its_output_is_dropped():
    model = small_net()
    out = model(cg.tensor(batch()[0]))
    node = weakref.ref(out.grad_fn)
    del out
    gc.collect()
    assert node() is None
    assert model[0]._cache is None          # the module itself holds no cache of a recorded call


def test_memory_stays_flat_over_1000_training_iterations():
    model, loss_fn = small_net(), nn.CrossEntropyLoss()
    opt = cg.optim.SGD(model.parameters(), lr=0.01)
    x, y = batch(n=4)

    def steps(k):
        for _ in range(k):
            opt.zero_grad()
            loss = loss_fn(model(cg.tensor(x)), y)
            loss.backward()
            opt.step()

    steps(20)
    gc.collect()
    tracemalloc.start()
    steps(100)
    gc.collect()
    after_100 = tracemalloc.get_traced_memory()[0]
    steps(900)
    gc.collect()
    after_1000 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after_1000 - after_100 < 64 * 1024, (after_100, after_1000)


def test_no_grad_records_nothing_and_keeps_no_cache():
    model = small_net()
    with cg.no_grad():
        out = model(cg.tensor(batch()[0], requires_grad=True))
        explicit = model(batch()[0])
    assert out.grad_fn is None and not out.requires_grad
    assert isinstance(explicit, np.ndarray)
    assert all(getattr(m, "_cache", None) is None for m in model.modules())
    assert not cg.is_grad_enabled() is True or cg.is_grad_enabled()


def _memory(fn) -> tuple[int, int]:
    """(peak, still held after fn) of the memory fn allocates, in bytes (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    result = fn()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak, held


def test_no_grad_inference_peak_memory_against_train_mode():
    """A ResNet's forward keeping every layer's cache (as training needs) against the same
    forward under no_grad: nothing but the output is held after it, and the peak is lower."""
    model = models.resnet()
    x = np.random.default_rng(0).standard_normal((16, 1, 28, 28)).astype(np.float32)
    dy = np.ones((16, 10), np.float32)
    model(x)
    model.backward(dy)                       # warm the workspaces; backward releases their claim
    trained_peak, trained_held = _memory(lambda: model(x))
    model.backward(dy)

    def inference():
        with cg.no_grad():
            return model(x)
    inferred_peak, inferred_held = _memory(inference)
    assert inferred_held < trained_held / 100, (inferred_held, trained_held)
    assert inferred_peak < 0.6 * trained_peak, (inferred_peak, trained_peak)


def test_frozen_parameters_get_no_gradient_and_the_optimiser_skips_them(monkeypatch):
    model, loss_fn = small_net(), nn.CrossEntropyLoss()
    model[0].requires_grad_(False)
    calls = []
    from convgrad.nn import conv as conv_module
    original = conv_module.F.conv_backward
    monkeypatch.setattr(conv_module.F, "conv_backward",
                        lambda *a, **k: calls.append(k.get("weight_grad", True)) or original(*a, **k))
    before = model[0].weight.data.copy()
    opt = cg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for mode in ("explicit", "recorded"):
        x, y = batch()
        if mode == "explicit":
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
        else:
            loss_fn(model(cg.tensor(x)), y).backward()
        opt.step()
    assert calls == [False, False]            # the frozen first layer skips its weight-gradient GEMM
    assert model[0].weight.grad is None and np.array_equal(model[0].weight.data, before)
    assert model[4].weight.grad is not None
    assert "requires_grad=False" in repr(model[0].weight)


def test_explicit_repeat_calls_are_last_in_first_out(torch):
    act = nn.Sigmoid()
    x = np.random.default_rng(0).standard_normal((3, 4))
    y1 = act(x) if False else None
    seq = nn.Sequential(act, nn.Linear(4, 4, dtype=np.float64), act)
    out = seq(x)
    dx = seq.backward(np.ones_like(out))
    xt = torch.tensor(x, requires_grad=True)
    lin = seq[1]
    torch.sigmoid(torch.sigmoid(xt) @ torch.tensor(lin.weight.data).T + torch.tensor(lin.bias.data)).sum().backward()
    assert y1 is None and rel(dx, xt.grad.numpy()) < 1e-12


def test_reuse_across_top_level_calls_is_an_error_not_a_wrong_gradient():
    act, lin = nn.Tanh(), nn.Linear(3, 3)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    out = act(lin(act(x)))                    # three separate top-level calls: act's first cache is replaced
    g = act.backward(np.ones_like(out))
    g = lin.backward(g)
    with pytest.raises(RuntimeError, match=r"Tanh\.backward\(\): this module was called again"):
        act.backward(g)
    # inference calls (no backward) between training steps stay fine, and so does a repeated
    # backward of one forward
    for _ in range(2):
        for _ in range(3):
            act(x)
        y = act(x)
        first = act.backward(np.ones_like(y))
    y = act(x)
    first = act.backward(np.ones_like(y))
    assert np.array_equal(act.backward(np.ones_like(y)), first)


def test_graph_nodes_lists_the_recorded_calls_in_forward_order():
    model, loss_fn = small_net(), nn.CrossEntropyLoss()
    x, y = batch()
    loss = loss_fn(model(cg.tensor(x)), y)
    nodes = graph_nodes(loss)
    assert [n.op for n in nodes] == ["Sequential", "CrossEntropyLoss"]
    assert nodes[0].module is model and nodes[1].inputs[0].grad_fn is nodes[0]


def test_constant_operands_are_kept_in_the_node():
    x = cg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    offset = np.array([1.0, 2.0, 3.0])
    y = (2.0 - x) * offset
    sub, mul = graph_nodes(y)
    assert sub.inputs[0] is None and sub.constants[0].dtype == np.float64 and sub.constants[0] == 2.0
    assert mul.inputs[1] is None and np.array_equal(mul.constants[1], offset) and 0 not in mul.constants
    conv = cg.functional.conv2d(cg.tensor(np.ones((1, 1, 3, 3)), requires_grad=True), np.ones((2, 1, 3, 3)))
    (node,) = graph_nodes(conv)
    assert node.inputs[1] is None and node.constants[1].shape == (2, 1, 3, 3) and 2 not in node.constants


def test_comparisons_are_recorded_without_a_gradient(torch):
    xv = np.array([[-1.0, 0.0, 2.0], [3.0, -4.0, 0.5]])
    x = cg.tensor(xv, requires_grad=True)
    mask = x > 0
    assert mask.dtype == bool and not mask.requires_grad and mask.is_leaf
    assert mask.grad_fn.op == "gt" and not mask.grad_fn.differentiable and mask.grad_fn.constants[0 + 1] == 0
    for op, fn, expected in [("lt", lambda t: t < 0.5, xv < 0.5), ("le", lambda t: t <= 0, xv <= 0),
                             ("ge", lambda t: t >= xv[0], xv >= xv[0]), ("eq", lambda t: t == 0, xv == 0),
                             ("ne", lambda t: t != t.abs(), xv != np.abs(xv)), ("gt", lambda t: 1.0 < t, xv > 1)]:
        m = fn(x)
        assert m.grad_fn.op == op and np.array_equal(m.data, expected), op
    y = cg.where(mask, x * 3.0, x.exp())
    assert [n.op for n in graph_nodes(y)] == ["gt", "mul", "exp", "where"]
    step = cg.where(mask, np.ones(3), np.zeros(3))      # only a mask recorded: a node without a gradient
    assert not step.requires_grad and step.grad_fn.op == "where" and not step.grad_fn.differentiable
    (y * step + y).sum().backward()
    xt = torch.tensor(xv, requires_grad=True)
    yt = torch.where(xt > 0, xt * 3.0, xt.exp())
    (yt * (xt > 0).double() + yt).sum().backward()
    assert rel(x.grad, xt.grad.numpy()) <= 1e-12
    with cg.no_grad():
        assert (x > 0).grad_fn is None
    assert (cg.tensor(xv) > 0).grad_fn is None                 # nothing recorded reads it
    with pytest.raises(RuntimeError, match="does not require grad"):
        mask.backward()
    step.requires_grad = True                                  # a leaf, as in torch: its .grad fills
    (step * 2.0).sum().backward()
    assert np.array_equal(step.grad, np.full((2, 3), 2.0))
    with pytest.raises(ValueError, match=r"gt: shapes \(2, 3\) and \(2,\) do not broadcast"):
        x > np.zeros(2)


def test_load_state_dict_as_torch(torch):
    model = small_net()
    state = model.state_dict()
    del state["4.bias"]
    state["extra.weight"] = np.zeros(3)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["4.bias"] and unexpected == ["extra.weight"]
    torch_state = {k: torch.tensor(v) for k, v in small_net().state_dict().items()}
    assert model.load_state_dict(torch_state) == ([], [])
    assert np.array_equal(model[0].weight.data, torch_state["0.weight"].numpy())
    bad = dict(torch_state, **{"0.bias": np.array(["a", "b", "c", "d"])})
    with pytest.raises(TypeError, match=r"0\.bias must be numeric"):
        model.load_state_dict(bad)
    with pytest.raises(ValueError, match=r"4\.weight expects shape \(3, 36\)"):
        model.load_state_dict(dict(torch_state, **{"4.weight": np.zeros((2, 2))}))
    with pytest.raises(TypeError, match="expected a dict"):
        model.load_state_dict([1, 2])


def test_tensors_from_torch_are_accepted_without_importing_it(torch):
    t = cg.tensor(torch.arange(6.0).reshape(2, 3), requires_grad=True)
    assert isinstance(t.data, np.ndarray) and t.shape == (2, 3)
    p = nn.Parameter(torch.ones(2))
    assert isinstance(p.data, np.ndarray) and p.requires_grad
    model = small_net()
    x = batch()[0]
    assert np.array_equal(model(torch.tensor(x)), model(x))


def test_summary_lists_layers_shapes_and_parameters():
    model = small_net()
    model[4].requires_grad_(False)
    text = cg.summary(model, (2, 1, 8, 8), print_fn=None)
    assert "Conv2d" in text and "[2, 4, 6, 6]" in text and "[2, 4, 3, 3]" in text and "[2, 3]" in text
    assert "Total params: 151" in text and "Trainable params: 40" in text and "Non-trainable params: 111" in text
    with pytest.raises(TypeError, match="input_shape must be a sequence of ints"):
        cg.summary(model, "abc")


def test_lecture_scalar_example_gradcheck():
    report = cg.gradcheck(lambda x1, x2, x3: x1 * x2 * x3, np.array(2.0), np.array(1.0), np.array(3.0),
                          grad_output=1.0)
    assert report.passed
    assert [float(c.analytic) for c in report.checks] == [3.0, 6.0, 2.0]
    assert np.allclose([float(c.numerical) for c in report.checks], [3.0, 6.0, 2.0], rtol=1e-8)


class GatedTanh(nn.Module):
    """Forward-only: one Tanh object applied twice, gated by a slice of the input."""
    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(2, 3, 3), nn.Tanh()

    def forward(self, x):
        return self.act(self.act(self.conv(x)) * x[:, :1, 1:-1, 1:-1])


def test_gradcheck_of_a_forward_only_module():
    report = cg.gradcheck(GatedTanh(), np.random.default_rng(0).standard_normal((2, 2, 5, 5)))
    assert report.passed, report
    assert [c.name for c in report.checks] == ["input", "conv.weight", "conv.bias"]


BAD = [
    ("dtypes", lambda: cg.tensor(np.ones(2, np.float32)) + cg.tensor(np.ones(2)), TypeError,
     r"add: .*float32 and float64"),
    ("array dtype", lambda: cg.tensor(np.ones(2, np.float32)) * np.ones(2), TypeError, r"mul: .*float32 and float64"),
    ("broadcast", lambda: cg.tensor(np.ones((2, 3))) - cg.tensor(np.ones((4,))), ValueError,
     r"sub: shapes \(2, 3\) and \(4,\) do not broadcast"),
    ("matmul", lambda: cg.tensor(np.ones((2, 3))) @ cg.tensor(np.ones((2, 3))), ValueError,
     r"matmul: shapes \(2, 3\) and \(2, 3\)"),
    ("non-scalar backward", lambda: (cg.tensor(np.ones(3), requires_grad=True) * 2).backward(), RuntimeError,
     r"one-element output, got shape \(3,\)"),
    ("int grad", lambda: cg.tensor(np.arange(3), requires_grad=True), TypeError,
     "only floating-point tensors can require gradients, got dtype int64"),
    ("no graph", lambda: cg.tensor(np.ones(1)).backward(), RuntimeError, "does not require grad"),
    ("grad shape", lambda: (cg.tensor(np.ones(3), requires_grad=True) * 2).backward(np.ones(2)), ValueError,
     r"grad has shape \(2,\), expected the output's shape \(3,\)"),
    ("reshape", lambda: cg.tensor(np.ones(6)).reshape(4, 2), ValueError, r"shape \(6,\) into \(4, 2\)"),
    ("permute", lambda: cg.tensor(np.ones((2, 3))).permute(0, 0), ValueError, "not a permutation"),
    ("dim", lambda: cg.tensor(np.ones((2, 3))).sum(dim=2), IndexError, "dim 2 is out of range"),
    ("cat", lambda: cg.cat([cg.tensor(np.ones((2, 3))), cg.tensor(np.ones((3, 3)))], dim=1), ValueError,
     r"cat: tensors must match in every dim but 1, got shapes \[\(2, 3\), \(3, 3\)\]"),
    ("numpy of grad tensor", lambda: np.asarray(cg.tensor(np.ones(2), requires_grad=True)), TypeError,
     "would drop its gradient"),
    ("pow", lambda: cg.tensor(np.ones(2)) ** cg.tensor(np.ones(2)), TypeError, "exponent must be a Python number"),
    ("where", lambda: cg.where(np.ones(2), cg.tensor(np.ones(2)), 0.0), TypeError, "condition must be boolean"),
    ("index", lambda: cg.tensor(np.ones((2, 3)))[5], IndexError, r"does not fit a tensor of shape \(2, 3\)"),
    ("forward-only backward", lambda: nn.Module().backward(np.ones(1)), NotImplementedError, "forward-only"),
]


@pytest.mark.parametrize("name,fn,exc,match", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_clear_error(name, fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()


def test_recorded_data_input_skips_the_first_layers_input_gradient(monkeypatch):
    """Data (a Tensor without requires_grad) needs no gradient: the model's node runs its backward
    with input_grad=False, as explicit training does, so the first conv spares its col2im."""
    model, loss_fn = small_net(), nn.CrossEntropyLoss()
    seen = []
    original = type(model[0]).backward
    monkeypatch.setattr(type(model[0]), "backward",
                        lambda self, g, input_grad=True: seen.append(input_grad) or original(self, g, input_grad))
    x, y = batch()
    loss_fn(model(cg.tensor(x)), y).backward()
    xt = cg.tensor(x, requires_grad=True)
    loss_fn(model(xt), y).backward()
    assert seen == [False, True] and xt.grad is not None
