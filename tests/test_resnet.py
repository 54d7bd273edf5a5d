"""BasicBlock and a small ResNet end to end: torch oracle in float64 (train steps, running
statistics, eval), state_dict names, loading torch weights, gradcheck in train and eval mode."""
import numpy as np
import pytest

from conftest import rel

from convgrad import gradcheck
from convgrad.nn.activation import ReLU
from convgrad.nn.blocks import BasicBlock
from convgrad.nn.conv import Conv2d
from convgrad.nn.linear import Linear
from convgrad.nn.module import Sequential
from convgrad.nn.normalization import BatchNorm2d
from convgrad.nn.pooling import AdaptiveAvgPool2d
from convgrad.nn.shape import Flatten

from torch_twins import torch_basic_block

TOL = 1e-10


def torch_block(torch, in_channels, out_channels, stride=1):
    """torch's BasicBlock as common torch code writes it (kuangliu/pytorch-cifar), float64."""
    return torch_basic_block(torch, in_channels, out_channels, stride).double()


def _randomise_affine(theirs, torch, rng):
    """torch model's 1-D parameters (BatchNorm weights/biases) away from (1, 0), so they matter."""
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if p.ndim == 1:
                weight = name.endswith("weight")
                values = rng.uniform(0.5, 1.5, p.shape) if weight else rng.standard_normal(p.shape) * 0.3
                p.copy_(torch.from_numpy(values))


def _compare_steps(ours, theirs, torch, rng, shape, steps=3, lr=0.1):
    """Forward/backward in both, then a plain SGD update in both; everything must agree."""
    for _ in range(steps):
        x = rng.standard_normal(shape)
        xt = torch.from_numpy(x).requires_grad_()
        y, yt = ours(x), theirs(xt)
        assert rel(y, yt.detach().numpy()) < TOL
        g = rng.standard_normal(y.shape)
        ours.zero_grad()
        theirs.zero_grad()
        dx = ours.backward(g)
        yt.backward(torch.from_numpy(g))
        assert rel(dx, xt.grad.numpy()) < TOL
        t_params = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert rel(p.grad, t_params[name].grad.numpy()) < TOL, name
            p.data = p.data - lr * p.grad
            with torch.no_grad():
                t_params[name] -= lr * t_params[name].grad
    t_state = theirs.state_dict()
    for name, b in ours.named_buffers():
        assert rel(b, t_state[name].numpy()) < TOL, name


BLOCKS = [(4, 4, 1), (4, 6, 1), (4, 4, 2), (3, 5, 2)]


@pytest.mark.parametrize("c_in,c_out,stride", BLOCKS)
def test_basic_block_matches_torch(c_in, c_out, stride, torch, rng):
    theirs = torch_block(torch, c_in, c_out, stride)
    ours = BasicBlock(c_in, c_out, stride, generator=0, dtype=np.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert (ours.shortcut is None) == (stride == 1 and c_in == c_out)
    _randomise_affine(theirs, torch, rng)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    _compare_steps(ours, theirs, torch, rng, (3, c_in, 7, 6))
    ours.eval()
    theirs.eval()
    _compare_steps(ours, theirs, torch, rng, (2, c_in, 5, 5), steps=1)
    assert ours(rng.standard_normal((1, c_in, 7, 6))).shape == (1, c_out, -(-7 // stride), -(-6 // stride))


def test_basic_block_loads_torch_weights_for_eval(torch, rng):
    theirs = torch_block(torch, 3, 6, 2)
    with torch.no_grad():
        for _ in range(3):
            theirs(torch.from_numpy(rng.standard_normal((4, 3, 6, 6))))
    theirs.eval()
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    x = rng.standard_normal((2, 3, 6, 6))
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    ours = BasicBlock(3, 6, 2, dtype=np.float64)
    ours.load_state_dict(state)
    ours.eval()
    assert rel(ours(x), expected) < TOL
    assert int(ours.shortcut[1].num_batches_tracked) == 3
    ours32 = BasicBlock(3, 6, 2)               # a float32 layer: the state is cast on load
    ours32.load_state_dict(state)
    y32 = ours32.eval()(x.astype(np.float32))
    assert y32.dtype == np.float32 and rel(y32, expected) < 1e-5


def test_basic_block_backward_before_forward():
    with pytest.raises(RuntimeError, match="BasicBlock.backward\\(\\) called before forward"):
        BasicBlock(2, 2).backward(np.zeros((1, 2, 3, 3), np.float32))


# ---------------------------------------------------------------------------------------
# A small ResNet end to end
# ---------------------------------------------------------------------------------------
def small_resnet(torch=None, in_channels=2, width=4, classes=3):
    """stem conv-BN-ReLU, BasicBlock(w, w), BasicBlock(w, 2w, stride 2), global average
    pooling, Linear: (ours, torch's with the same names, or None without torch)."""
    ours = Sequential(Conv2d(in_channels, width, 3, padding=1, bias=False, generator=1, dtype=np.float64),
                      BatchNorm2d(width, dtype=np.float64), ReLU(),
                      BasicBlock(width, width, generator=2, dtype=np.float64),
                      BasicBlock(width, 2 * width, stride=2, generator=3, dtype=np.float64),
                      AdaptiveAvgPool2d(1), Flatten(), Linear(2 * width, classes, generator=4, dtype=np.float64))
    if torch is None:
        return ours, None
    T = torch.nn
    theirs = T.Sequential(T.Conv2d(in_channels, width, 3, padding=1, bias=False), T.BatchNorm2d(width), T.ReLU(),
                          torch_block(torch, width, width), torch_block(torch, width, 2 * width, 2),
                          T.AdaptiveAvgPool2d(1), T.Flatten(), T.Linear(2 * width, classes))
    return ours, theirs.double()


def test_small_resnet_matches_torch(torch, rng):
    ours, theirs = small_resnet(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _randomise_affine(theirs, torch, rng)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    _compare_steps(ours, theirs, torch, rng, (4, 2, 6, 6))
    ours.eval()
    theirs.eval()
    _compare_steps(ours, theirs, torch, rng, (2, 2, 6, 6), steps=1)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_small_resnet_gradcheck(training, rng):
    ours, _ = small_resnet(width=3)
    for name, p in ours.named_parameters():
        if p.data.ndim == 1:
            p.data = rng.uniform(0.5, 1.5, p.shape) if name.endswith("weight") else rng.standard_normal(p.shape) * 0.3
    for m in ours.modules():
        if isinstance(m, BatchNorm2d):
            m.running_mean[...] = rng.standard_normal(m.num_features) * 0.3
            m.running_var[...] = rng.uniform(0.5, 2.0, m.num_features)
    ours.train(training)
    report = gradcheck(ours, rng.standard_normal((2, 2, 5, 5)))
    assert report.passed, str(report)


@pytest.mark.parametrize("c_in,c_out,stride", [(3, 3, 1), (2, 3, 2)])
def test_basic_block_gradcheck(c_in, c_out, stride):
    x = np.random.default_rng(0).standard_normal((2, c_in, 5, 4))
    report = gradcheck(BasicBlock(c_in, c_out, stride, generator=0), x)
    assert report.passed, str(report)
