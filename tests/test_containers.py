"""Residual / Add / Concat: fan-out gradients add; torch oracle in float64, names, gradcheck,
and the custom-graph example of the containers docstring."""
import textwrap

import numpy as np
import pytest

from conftest import rel

from convgrad import gradcheck, nn
from convgrad.nn import containers
from convgrad.nn.containers import Add, Concat, Residual
from convgrad.nn.module import Module, Sequential
from convgrad.nn.normalization import BatchNorm2d

TOL = 1e-10


def conv(c_in, c_out, k=3, seed=0, **kw):
    return nn.Conv2d(c_in, c_out, k, padding=k // 2, generator=seed, dtype=np.float64, **kw)


def bn(c):
    return BatchNorm2d(c, dtype=np.float64)


def torch_conv(torch, c):
    """A torch Conv2d with c's configuration and weights (float64)."""
    t = torch.nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, padding=c.padding).double()
    with torch.no_grad():
        t.weight.copy_(torch.tensor(c.weight.data))
        t.bias.copy_(torch.tensor(c.bias.data))
    return t


# ---------------------------------------------------------------------------------------
# The equivalent torch modules (same attribute names, so the state_dicts match)
# ---------------------------------------------------------------------------------------
def torch_classes(torch):
    class TResidual(torch.nn.Module):
        def __init__(self, body, shortcut=None):
            super().__init__()
            self.body, self.shortcut = body, shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    class TAdd(torch.nn.ModuleList):
        def forward(self, x):
            return sum(m(x) for m in self)

    class TConcat(torch.nn.ModuleList):
        def __init__(self, modules, dim=1):
            super().__init__(modules)
            self.dim = dim

        def forward(self, x):
            return torch.cat([m(x) for m in self], dim=self.dim)

    return TResidual, TAdd, TConcat


def _torch_pair(case, torch):
    """(ours, torch's) for a case. A conv right before a BatchNorm has no bias here: that
    gradient is exactly zero, so both libraries would return only rounding noise."""
    T = torch.nn
    TResidual, TAdd, TConcat = torch_classes(torch)
    if case == "residual identity":
        return (Residual(Sequential(conv(3, 3, bias=False), bn(3), conv(3, 3, seed=1))),
                TResidual(T.Sequential(T.Conv2d(3, 3, 3, padding=1, bias=False), T.BatchNorm2d(3),
                                       T.Conv2d(3, 3, 3, padding=1))))
    if case == "residual projection":
        return (Residual(Sequential(conv(3, 4, bias=False), bn(4)),
                         Sequential(conv(3, 4, 1, seed=2, bias=False), bn(4))),
                TResidual(T.Sequential(T.Conv2d(3, 4, 3, padding=1, bias=False), T.BatchNorm2d(4)),
                          T.Sequential(T.Conv2d(3, 4, 1, bias=False), T.BatchNorm2d(4))))
    if case == "add":
        return (Add(conv(3, 4), conv(3, 4, 1, seed=1), Sequential(conv(3, 4, 5, seed=2, bias=False), bn(4))),
                TAdd([T.Conv2d(3, 4, 3, padding=1), T.Conv2d(3, 4, 1),
                      T.Sequential(T.Conv2d(3, 4, 5, padding=2, bias=False), T.BatchNorm2d(4))]))
    if case == "concat channels":
        return (Concat(conv(3, 2), Sequential(conv(3, 5, 1, seed=1, bias=False), bn(5)), conv(3, 1, 5, seed=2)),
                TConcat([T.Conv2d(3, 2, 3, padding=1), T.Sequential(T.Conv2d(3, 5, 1, bias=False), T.BatchNorm2d(5)),
                         T.Conv2d(3, 1, 5, padding=2)]))
    if case == "concat last dim":
        return (Concat(conv(3, 2), conv(3, 2, 1, seed=1), dim=-1),
                TConcat([T.Conv2d(3, 2, 3, padding=1), T.Conv2d(3, 2, 1)], dim=-1))
    if case == "nested":
        inner = Residual(Sequential(conv(3, 3, bias=False), bn(3)))
        t_inner = TResidual(T.Sequential(T.Conv2d(3, 3, 3, padding=1, bias=False), T.BatchNorm2d(3)))
        return (Residual(Sequential(inner, Add(conv(3, 3, seed=4), conv(3, 3, 1, seed=5)))),
                TResidual(T.Sequential(t_inner, TAdd([T.Conv2d(3, 3, 3, padding=1), T.Conv2d(3, 3, 1)]))))
    raise KeyError(case)


CASES = ["residual identity", "residual projection", "add", "concat channels", "concat last dim", "nested"]


@pytest.mark.parametrize("case", CASES)
def test_matches_torch_forward_backward_and_names(case, torch, rng):
    ours, theirs = _torch_pair(case, torch)
    theirs = theirs.double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for step in range(2):
        ours.zero_grad()
        theirs.zero_grad()
        x = rng.standard_normal((2, 3, 5, 4))
        xt = torch.from_numpy(x).requires_grad_()
        y, yt = ours(x), theirs(xt)
        g = rng.standard_normal(y.shape)
        yt.backward(torch.from_numpy(g))
        dx = ours.backward(g)
        assert rel(y, yt.detach().numpy()) < TOL
        assert rel(dx, xt.grad.numpy()) < TOL
        t_params = dict(theirs.named_parameters())
        assert [n for n, _ in ours.named_parameters()] == list(t_params)
        for name, p in ours.named_parameters():
            assert rel(p.grad, t_params[name].grad.numpy()) < TOL, name
    for name, b in ours.named_buffers():     # BatchNorm running statistics followed along
        assert rel(b, theirs.state_dict()[name].numpy()) < TOL, name


def test_input_gradient_is_the_sum_over_branches(rng):
    a, b, c = conv(2, 3), conv(2, 3, 1, seed=1), conv(2, 3, 5, seed=2)
    x, g = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((1, 3, 4, 4))
    separately = []
    for m in (a, b, c):
        m(x)
        separately.append(m.backward(g))
        m.zero_grad()
    add = Add(a, b, c)
    add(x)
    assert np.allclose(add.backward(g), sum(separately), rtol=1e-13, atol=1e-13)
    res_conv = Residual(conv(3, 3, seed=7))
    x3 = rng.standard_normal((1, 3, 4, 4))
    res_conv(x3)
    dx = res_conv.backward(g)
    res_conv.body(x3)
    assert np.allclose(dx, res_conv.body.backward(g) + g, rtol=1e-13, atol=1e-13)


def test_shared_parameter_in_two_branches_accumulates(torch, rng):
    """Tied weights: one Parameter in two branches gets the sum of both gradients, as in torch."""
    a, b = conv(2, 2, seed=0), conv(2, 2, seed=1)
    b.weight = a.weight
    model = Add(a, b)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    ta, tb = torch.nn.Conv2d(2, 2, 3, padding=1).double(), torch.nn.Conv2d(2, 2, 3, padding=1).double()
    with torch.no_grad():
        ta.weight.copy_(torch.from_numpy(a.weight.data))
        ta.bias.copy_(torch.from_numpy(a.bias.data))
        tb.bias.copy_(torch.from_numpy(b.bias.data))
    tb.weight = ta.weight
    x, g = rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((2, 2, 4, 4))
    xt = torch.from_numpy(x).requires_grad_()
    (ta(xt) + tb(xt)).backward(torch.from_numpy(g))
    model(x)
    dx = model.backward(g)
    assert rel(dx, xt.grad.numpy()) < TOL
    assert rel(a.weight.grad, ta.weight.grad.numpy()) < TOL
    assert rel(b.bias.grad, tb.bias.grad.numpy()) < TOL


def test_same_module_in_two_branches_is_one_module_called_twice(rng, torch):
    """A module object in two branches: each call keeps its own cache (last in, first out), so
    the gradients are torch's — the weights get the sum of both calls'."""
    c, d = conv(2, 2), conv(2, 2)
    x = rng.standard_normal((2, 2, 5, 5))
    tc, td = torch_conv(torch, c), torch_conv(torch, d)
    cases = [(Add(c, c), lambda t: tc(t) + tc(t)), (Residual(c, c), lambda t: tc(t) + tc(t)),
             (Concat(c, d, c), lambda t: torch.cat([tc(t), td(t), tc(t)], dim=1))]
    for model, reference in cases:
        model.zero_grad()
        tc.zero_grad()
        y = model(x)
        g = rng.standard_normal(y.shape)
        dx = model.backward(g)
        xt = torch.tensor(x, requires_grad=True)
        (reference(xt) * torch.tensor(g)).sum().backward()
        assert rel(dx, xt.grad.numpy()) < TOL
        assert rel(c.weight.grad, tc.weight.grad.numpy()) < TOL
    with pytest.raises(TypeError, match="expected Module branches"):
        Add(c, np.zeros(3))


def test_shape_errors_and_backward_before_forward(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    with pytest.raises(ValueError, match="Residual \\(body, shortcut\\): branch outputs must have one shape"):
        Residual(conv(2, 3))(x)
    with pytest.raises(ValueError, match="Add: branch outputs must have one shape"):
        Add(conv(2, 3), conv(2, 2))(x)
    with pytest.raises(ValueError, match="Concat: branch outputs must match in every dim but 1"):
        Concat(conv(2, 3), nn.Conv2d(2, 3, 3, dtype=np.float64))(x)
    with pytest.raises(ValueError, match="dim=4 is out of range"):
        Concat(conv(2, 3), dim=4)(x)
    cat = Concat(conv(2, 3), conv(2, 1))
    for m in (Residual(conv(2, 2)), Add(conv(2, 2)), cat):
        with pytest.raises(RuntimeError, match="before forward"):
            m.backward(np.zeros((1, 2, 4, 4)))
    cat(x)
    with pytest.raises(ValueError, match="Concat backward: expected grad_output of shape \\(1, 4, 4, 4\\)"):
        cat.backward(np.zeros((1, 3, 4, 4)))


def test_submodules_register_by_assignment_and_modes_propagate():
    model = Residual(Sequential(conv(2, 2), bn(2)), Add(conv(2, 2), bn(2)))
    assert [n for n, _ in model.named_children()] == ["body", "shortcut"]
    assert "shortcut.1.running_mean" in model.state_dict()
    model.eval()
    assert not model.body[1].training and not model.shortcut[1].training
    assert len(model.shortcut) == 2 and isinstance(model.shortcut[0], nn.Conv2d)


# ---------------------------------------------------------------------------------------
# gradcheck, including the docstring's custom graph
# ---------------------------------------------------------------------------------------
def _docstring_example():
    """Exec the example class of the containers module docstring, so it stays correct."""
    doc = containers.__doc__
    start = doc.index("    class Gated")
    lines = []
    for line in doc[start:].splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line)
    namespace = {"Module": Module}
    exec(textwrap.dedent("\n".join(lines)), namespace)
    return namespace["Gated"]


GRADCHECK = [
    ("residual identity", lambda: Residual(Sequential(conv(2, 2), bn(2))), (2, 2, 3, 3)),
    ("residual projection", lambda: Residual(conv(2, 3), conv(2, 3, 1, seed=1)), (1, 2, 3, 4)),
    ("add", lambda: Add(conv(2, 2), Sequential(conv(2, 2, 1, seed=1), bn(2)), conv(2, 2, seed=2)), (2, 2, 3, 3)),
    ("concat", lambda: Concat(conv(2, 1), Sequential(conv(2, 2, 1, seed=1), bn(2))), (2, 2, 3, 3)),
    ("nested", lambda: Residual(Sequential(Residual(conv(2, 2)), bn(2), Add(conv(2, 2, seed=1), bn(2)))),
     (2, 2, 3, 3)),
    ("docstring Gated", lambda: _docstring_example()(conv(2, 2), Sequential(conv(2, 2, seed=1), bn(2))),
     (2, 2, 3, 3)),
]


@pytest.mark.parametrize("name,make,shape", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_gradcheck(name, make, shape):
    report = gradcheck(make(), np.random.default_rng(5).standard_normal(shape))
    assert report.passed, str(report)


def test_free_caches_drops_each_cache_once_used_and_keeps_the_gradients(rng, torch):
    """Inside nn.free_caches() each module's cache goes as soon as its backward has run (as
    torch frees its graph): the gradients are those of a backward outside it — also for a
    module called twice in one pass and for DataParallel's parts — and no module holds a cache
    afterwards; a second backward of that forward is an error naming the module, a new forward
    differentiates again, and outside the block a second backward stays allowed."""
    from convgrad import models
    from convgrad.parallel import DataParallel
    c, d = conv(2, 2), conv(2, 2)
    reused = Sequential(Concat(c, d, c), BatchNorm2d(6).to(np.float64), nn.ReLU(), nn.Conv2d(6, 3, 3, generator=1).to(np.float64))
    x4 = rng.standard_normal((4, 2, 6, 6))
    lenet = models.build("lenet", generator=0).to(np.float64)
    x28 = rng.standard_normal((8, 1, 28, 28))
    for model, runner, x in ((reused, reused, x4), (lenet, DataParallel(lenet, 2), x28)):
        grads = []
        for freeing in (False, True):
            model.zero_grad()
            y = runner(x)
            g = np.random.default_rng(1).standard_normal(y.shape)
            with nn.free_caches(freeing):
                dx = runner.backward(g)
            grads.append([dx] + [p.grad.copy() for p in model.parameters()])
        for a, b in zip(*grads):
            np.testing.assert_array_equal(a, b)
        members = [model, *getattr(runner, "_replicas", [])]
        assert [m for member in members for m in member.modules() if getattr(m, "_cache", None) is not None] == []
        with pytest.raises(RuntimeError, match=r"(Sequential|Conv2d|Linear)\.backward\(\): the cache of its forward "
                                               r"was freed .*free_caches\(\)"):
            runner.backward(g)
        runner(x)
        runner.backward(g)                 # a new forward: fine
        runner.backward(g)                 # outside free_caches: a second backward is allowed


def test_free_caches_is_per_thread():
    import threading
    seen = {}
    with nn.free_caches():
        t = threading.Thread(target=lambda: seen.setdefault("other", nn.calls.freeing_caches()))
        t.start()
        t.join()
        seen["this"] = nn.calls.freeing_caches()
    assert seen == {"other": False, "this": True} and not nn.calls.freeing_caches()
