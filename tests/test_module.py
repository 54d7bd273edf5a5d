"""Module, Parameter, Sequential: names, accumulation, state_dict, modes, dtype conversion."""
import numpy as np
import pytest

import convgrad as cg
from convgrad import nn


def _net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, generator=0), nn.Conv2d(4, 2, 3, stride=2, generator=1))


def test_named_parameters_follow_torch():
    assert [n for n, _ in _net().named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert len(list(_net().children())) == 2


def test_names_and_shapes_match_torch():
    torch = pytest.importorskip("torch")
    ours = _net()
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(4, 2, 3, stride=2))
    assert [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()] == \
           [(k, v.shape) for k, v in ours.state_dict().items()]


def test_backward_accumulates_over_repeated_use(rng):
    layer = nn.Conv2d(2, 2, 3, padding=1, generator=0).double()
    x = rng.standard_normal((1, 2, 5, 5))
    layer(x)
    g = rng.standard_normal((1, 2, 5, 5))
    layer.backward(g)
    once = layer.weight.grad.copy()
    layer(x)
    layer.backward(g)
    assert np.allclose(layer.weight.grad, 2 * once)
    layer.zero_grad()
    assert layer.weight.grad is None


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Conv2d(1, 1, 3).backward(np.zeros((1, 1, 3, 3), np.float32))


def test_state_dict_round_trip_and_strict_checks():
    a, b = _net(), nn.Sequential(nn.Conv2d(1, 4, 3, generator=5), nn.Conv2d(4, 2, 3, stride=2, generator=6))
    b.load_state_dict(a.state_dict())
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.data, q.data)
    state = a.state_dict()
    state["0.weight"][...] = 7          # a copy: the model is untouched
    assert not np.all(a[0].weight.data == 7)
    with pytest.raises(KeyError, match="missing keys \\['1.bias'\\]"):
        b.load_state_dict({k: v for k, v in a.state_dict().items() if k != "1.bias"})
    with pytest.raises(KeyError, match="unexpected keys \\['2.weight'\\]"):
        b.load_state_dict({**a.state_dict(), "2.weight": np.zeros(1)})
    wrong = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Conv2d(8, 2, 3))
    with pytest.raises(ValueError, match="0.weight expects shape \\(4, 1, 3, 3\\), the state has \\(8, 1, 3, 3\\)"):
        b.load_state_dict(wrong.state_dict())


def test_train_eval_flags_recurse():
    net = _net().eval()
    assert not net.training and not net[1].training
    assert net.train().training and net[0].training


def test_default_dtype_and_conversion():
    assert cg.get_default_dtype() == np.float32
    assert nn.Conv2d(1, 1, 3).weight.dtype == np.float32
    cg.set_default_dtype(np.float64)
    try:
        assert nn.Conv2d(1, 1, 3).weight.dtype == np.float64
    finally:
        cg.set_default_dtype(np.float32)
    net = _net().to(np.float64)
    assert all(p.dtype == np.float64 for p in net.parameters())
    with pytest.raises(TypeError, match="float32 or float64"):
        cg.set_default_dtype(np.int32)


def test_seeded_initialisation_is_reproducible_and_torch_like():
    a, b = nn.Conv2d(3, 8, 3, generator=42), nn.Conv2d(3, 8, 3, generator=42)
    assert np.array_equal(a.weight.data, b.weight.data)
    bound = 1 / np.sqrt(3 * 9)
    assert np.abs(a.weight.data).max() <= bound and np.abs(a.weight.data).max() > 0.8 * bound
    g = np.random.default_rng(0)
    assert not np.array_equal(nn.Conv2d(3, 8, 3, generator=g).weight.data, nn.Conv2d(3, 8, 3, generator=g).weight.data)


def test_float32_stays_float32(rng):
    layer = nn.Conv2d(2, 3, 3)
    y = layer(rng.standard_normal((2, 2, 6, 6)).astype(np.float32))
    assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32
    assert layer.weight.grad.dtype == np.float32


def test_repr_mentions_arguments():
    assert "Conv2d(1, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))" in repr(
        nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1)))


@pytest.mark.parametrize("first", [
    lambda: nn.Conv2d(1, 4, 3, generator=0),                          # per-sample route
    lambda: nn.Conv2d(8, 4, 3, padding=1, generator=0),               # channel-major route
    lambda: nn.Conv2d(4, 4, 3, groups=4, padding=1, generator=0),     # depthwise route
    lambda: nn.ConvTranspose2d(2, 4, 3, generator=0),                 # cannot skip: still correct
])
def test_backward_without_input_grad_gives_the_same_parameter_grads(first, rng):
    a = nn.Sequential(first(), nn.ReLU(), nn.Conv2d(4, 2, 3, generator=1)).double()
    b = nn.Sequential(first(), nn.ReLU(), nn.Conv2d(4, 2, 3, generator=1)).double()
    x = rng.standard_normal((2, a[0].in_channels, 9, 9))
    ya = a(x)
    b(x)
    g = rng.standard_normal(ya.shape)
    assert a.backward(g).shape == x.shape
    assert b.backward(g, input_grad=False) is None
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.grad, q.grad), name
