"""Forward-only models (recorded mode) against torch autograd in float64: output, input gradients
and every parameter gradient to 1e-10 relative (issue 9's list of graph shapes)."""
import numpy as np
import pytest

import convgrad as cg
from convgrad import functional as F
from convgrad import nn
from conftest import rel

TOL = 1e-10


@pytest.fixture(autouse=True)
def float64():
    previous = cg.get_default_dtype()
    cg.set_default_dtype(np.float64)
    yield
    cg.set_default_dtype(previous)


def compare(torch, model, torch_forward, *xs, losses=None):
    """Run model on Tensors of xs and torch_forward(params, *xs) on torch tensors; the loss is
    sum(out * g) over the outputs (or losses(outs) for both); compare outputs and gradients."""
    rng = np.random.default_rng(0)
    xs_cg = [cg.tensor(x, requires_grad=True) for x in xs]
    outs = model(*xs_cg)
    outs = outs if isinstance(outs, tuple) else (outs,)
    gs = [rng.standard_normal(o.shape) for o in outs]
    params = {n: torch.tensor(p.data.copy(), requires_grad=p.requires_grad) for n, p in model.named_parameters()}
    xs_t = [torch.tensor(x, requires_grad=True) for x in xs]
    outs_t = torch_forward(params, *xs_t)
    outs_t = outs_t if isinstance(outs_t, tuple) else (outs_t,)
    if losses is None:
        loss = outs[0] * gs[0]
        loss = loss.sum()
        for o, g in zip(outs[1:], gs[1:]):
            loss = loss + (o * g).sum()
        loss_t = sum((o * torch.tensor(g)).sum() for o, g in zip(outs_t, gs))
    else:
        loss, loss_t = losses(outs, cg), losses(outs_t, torch)
    loss.backward()
    loss_t.backward()
    assert rel(loss.data, loss_t.detach().numpy()) <= TOL
    for o, ot in zip(outs, outs_t):
        assert rel(o.data, ot.detach().numpy()) <= TOL
    for x, xt in zip(xs_cg, xs_t):
        assert rel(x.grad, xt.grad.numpy()) <= TOL
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
            assert rel(p.grad, params[name].grad.numpy()) <= TOL, name
        else:
            assert p.grad is None, name
    return params


def tF(torch):
    return torch.nn.functional


class ReusedActivation(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin1, self.lin2, self.act = nn.Linear(4, 6), nn.Linear(6, 3), nn.Tanh()

    def forward(self, x):
        return self.act(self.lin2(self.act(self.lin1(x))))


def test_activation_object_reused(torch, rng):
    F_ = tF(torch)
    compare(torch, ReusedActivation(),
            lambda p, x: torch.tanh(F_.linear(torch.tanh(F_.linear(x, p["lin1.weight"], p["lin1.bias"])),
                                              p["lin2.weight"], p["lin2.bias"])),
            rng.standard_normal((5, 4)))


class SharedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + self.conv(x.relu()) * 2.0


def test_weights_shared_by_two_branches(torch, rng):
    F_ = tF(torch)

    def ref(p, x):
        return F_.conv2d(x, p["conv.weight"], p["conv.bias"], padding=1) + \
            F_.conv2d(torch.relu(x), p["conv.weight"], p["conv.bias"], padding=1) * 2.0
    compare(torch, SharedConv(), ref, rng.standard_normal((2, 3, 6, 6)))


class PlusResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv2(F.relu(self.conv1(x))) + x


def test_residual_written_with_plus(torch, rng):
    F_ = tF(torch)

    def ref(p, x):
        h = torch.relu(F_.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1))
        return F_.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1) + x
    compare(torch, PlusResidual(), ref, rng.standard_normal((2, 3, 5, 5)))


class ChannelCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 3, 1), nn.Conv2d(2, 2, 3, padding=1)
        self.c = nn.Conv2d(5, 2, 3)

    def forward(self, x):
        return self.c(cg.cat([self.a(x), self.b(x)], dim=1))


def test_channel_concatenation(torch, rng):
    F_ = tF(torch)

    def ref(p, x):
        h = torch.cat([F_.conv2d(x, p["a.weight"], p["a.bias"]),
                       F_.conv2d(x, p["b.weight"], p["b.bias"], padding=1)], dim=1)
        return F_.conv2d(h, p["c.weight"], p["c.bias"])
    compare(torch, ChannelCat(), ref, rng.standard_normal((2, 2, 6, 6)))


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid()), nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.a(x) * self.b(x) + x


def test_gate(torch, rng):
    F_ = tF(torch)

    def ref(p, x):
        return torch.sigmoid(F_.conv2d(x, p["a.0.weight"], p["a.0.bias"], padding=1)) * \
            F_.conv2d(x, p["b.weight"], p["b.bias"]) + x
    compare(torch, Gate(), ref, rng.standard_normal((2, 3, 5, 5)))


class ChannelSlices(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 5, 3)

    def forward(self, x):
        h = self.conv(x)
        return h[:, :2] * h[:, 2:4] + h[:, 1:3, ::2].sum(dim=2, keepdim=True)


def test_channel_slicing(torch, rng):
    F_ = tF(torch)

    def ref(p, x):
        h = F_.conv2d(x, p["conv.weight"], p["conv.bias"])
        return h[:, :2] * h[:, 2:4] + h[:, 1:3, ::2].sum(dim=2, keepdim=True)
    compare(torch, ChannelSlices(), ref, rng.standard_normal((2, 2, 7, 7)))


class TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(4, 3), nn.Linear(5, 3), nn.Linear(4, 2)

    def forward(self, x1, x2):
        return self.l1(x1) + self.l2(x2), self.l3(x1)


def test_two_inputs_two_outputs_two_losses(torch, rng):
    F_ = tF(torch)
    target_c = np.array([0, 2, 1, 1, 0, 2])
    target_r = rng.standard_normal((6, 2))

    def ref(p, x1, x2):
        return (F_.linear(x1, p["l1.weight"], p["l1.bias"]) + F_.linear(x2, p["l2.weight"], p["l2.bias"]),
                F_.linear(x1, p["l3.weight"], p["l3.bias"]))

    def losses(outs, lib):
        if lib is cg:
            return nn.CrossEntropyLoss()(outs[0], target_c) + nn.MSELoss()(outs[1], target_r)
        return (F_.cross_entropy(outs[0], torch.tensor(target_c)) + F_.mse_loss(outs[1], torch.tensor(target_r)))
    compare(torch, TwoInTwoOut(), ref, rng.standard_normal((6, 4)), rng.standard_normal((6, 5)), losses=losses)


class ReshapePermute(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.lin = nn.Conv2d(2, 3, 3), nn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        h = self.conv(x).permute(0, 2, 3, 1)
        h = h.reshape(h.shape[0], -1)
        return self.lin(h).transpose(0, 1).flatten()


def test_reshape_permute_between_layers(torch, rng):
    F_ = tF(torch)

    def ref(p, x):
        h = F_.conv2d(x, p["conv.weight"], p["conv.bias"]).permute(0, 2, 3, 1)
        return F_.linear(h.reshape(h.shape[0], -1), p["lin.weight"], p["lin.bias"]).transpose(0, 1).flatten()
    compare(torch, ReshapePermute(), ref, rng.standard_normal((3, 2, 6, 6)))


class Detached(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(4, 4), nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        y = self.l1(x)
        return self.l2(y.detach()) + self.l3(y)


def test_detach(torch, rng):
    F_ = tF(torch)

    def ref(p, x):
        y = F_.linear(x, p["l1.weight"], p["l1.bias"])
        return F_.linear(y.detach(), p["l2.weight"], p["l2.bias"]) + F_.linear(y, p["l3.weight"], p["l3.bias"])
    compare(torch, Detached(), ref, rng.standard_normal((5, 4)))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 3, 3), nn.Conv2d(3, 4, 3), nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return self.fc(self.conv2(h).flatten(1))


def test_frozen_layer(torch, rng):
    F_ = tF(torch)
    model = ConvNet()
    model.conv1.requires_grad_(False)

    def ref(p, x):
        h = F_.max_pool2d(torch.relu(F_.conv2d(x, p["conv1.weight"], p["conv1.bias"])), 2)
        return F_.linear(F_.conv2d(h, p["conv2.weight"], p["conv2.bias"]).flatten(1), p["fc.weight"], p["fc.bias"])
    compare(torch, model, ref, rng.standard_normal((2, 1, 10, 10)))
    assert model.conv1.weight.grad is None and model.conv1.bias.grad is None


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def test_batchnorm_in_train_mode(torch, rng):
    F_ = tF(torch)
    model = ConvBN()
    running = {k: torch.tensor(v.copy()) for k, v in model.state_dict().items() if "running" in k}

    def ref(p, x):
        h = F_.conv2d(x, p["conv.weight"], padding=1)
        return torch.relu(F_.batch_norm(h, running["bn.running_mean"], running["bn.running_var"], p["bn.weight"],
                                        p["bn.bias"], training=True))
    compare(torch, model, ref, rng.standard_normal((4, 2, 5, 5)))
    assert rel(model.bn.running_mean, running["bn.running_mean"].numpy()) <= TOL
    assert rel(model.bn.running_var, running["bn.running_var"].numpy()) <= TOL


class HandWritten(nn.Module):
    """An explicit module (its own backward) that applies one activation object twice."""

    def __init__(self):
        super().__init__()
        self.lin, self.act = nn.Linear(3, 3), nn.Tanh()

    def forward(self, x):
        return self.act(self.lin(self.act(x)))

    def backward(self, grad_out):
        return self.act.backward(self.lin.backward(self.act.backward(grad_out)))


class WithOwnBackward(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre, self.block = nn.Linear(3, 3), HandWritten()

    def forward(self, x):
        h = self.pre(x)
        return self.block(h) * self.block(h * 0.5)       # the explicit block is itself called twice


def test_module_with_own_backward_inside_recorded_graph(torch, rng):
    F_ = tF(torch)

    def ref(p, x):
        h = F_.linear(x, p["pre.weight"], p["pre.bias"])

        def block(z):
            return torch.tanh(F_.linear(torch.tanh(z), p["block.lin.weight"], p["block.lin.bias"]))
        return block(h) * block(h * 0.5)
    compare(torch, WithOwnBackward(), ref, rng.standard_normal((4, 3)))


def test_explicit_module_calling_its_activation_twice_passes_gradcheck():
    report = cg.gradcheck(HandWritten(), np.random.default_rng(0).standard_normal((4, 3)))
    assert report.passed, report
    assert report["input"].max_rel_error < 1e-6


class ForwardOnlyBasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
        self.down_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.down_bn(self.down(x)))


def test_resnet_basic_block_forward_only(torch, rng):
    F_ = tF(torch)
    model = ForwardOnlyBasicBlock(3, 4, 2)
    running = {k: torch.tensor(v.copy()) for k, v in model.state_dict().items() if "running" in k}

    def bn(h, p, name):
        return F_.batch_norm(h, running[f"{name}.running_mean"], running[f"{name}.running_var"], p[f"{name}.weight"],
                             p[f"{name}.bias"], training=True)

    def ref(p, x):
        out = torch.relu(bn(F_.conv2d(x, p["conv1.weight"], stride=2, padding=1), p, "bn1"))
        out = bn(F_.conv2d(out, p["conv2.weight"], padding=1), p, "bn2")
        return torch.relu(out + bn(F_.conv2d(x, p["down.weight"], stride=2), p, "down_bn"))
    compare(torch, model, ref, rng.standard_normal((2, 3, 8, 8)))


def test_reused_relu_sequential(torch, rng):
    F_ = tF(torch)
    relu = nn.ReLU()
    lin1, lin2 = nn.Linear(4, 5), nn.Linear(5, 3)
    model = nn.Sequential(lin1, relu, lin2, relu)

    def ref(p, x):
        return torch.relu(F_.linear(torch.relu(F_.linear(x, p["0.weight"], p["0.bias"])), p["2.weight"], p["2.bias"]))
    compare(torch, model, ref, rng.standard_normal((6, 4)))
    # the same model in explicit mode: the reused ReLU's second call no longer hides the first
    model.zero_grad()
    x = rng.standard_normal((6, 4))
    y = model(x)
    dx = model.backward(np.ones_like(y))
    xt = torch.tensor(x, requires_grad=True)
    p = {n: torch.tensor(q.data) for n, q in model.named_parameters()}
    ref(p, xt).sum().backward()
    assert rel(dx, xt.grad.numpy()) <= TOL


class Doubler(nn.Module):
    """Forward-only: no backward of its own."""

    def forward(self, x):
        return x * x.sigmoid()


@pytest.mark.parametrize("container", ["Sequential", "Residual", "Add", "Concat"])
def test_containers_with_a_forward_only_child(torch, rng, container):
    """A container whose child is forward-only runs forward-only itself (has_backward() False)."""
    F_ = tF(torch)
    conv = nn.Conv2d(2, 2, 3, padding=1)
    model = {"Sequential": lambda: nn.Sequential(conv, Doubler(), nn.ReLU()),
             "Residual": lambda: nn.Residual(nn.Sequential(conv, Doubler())),
             "Add": lambda: nn.Add(conv, Doubler()),
             "Concat": lambda: nn.Concat(conv, Doubler(), conv)}[container]()
    assert not model.has_backward()

    def silu(t):
        return t * torch.sigmoid(t)

    def ref(p, x):
        name = next(iter(p))[:-len("weight")]
        c = F_.conv2d(x, p[name + "weight"], p[name + "bias"], padding=1)
        return {"Sequential": lambda: torch.relu(silu(c)), "Residual": lambda: silu(c) + x,
                "Add": lambda: c + silu(x), "Concat": lambda: torch.cat([c, silu(x), c], dim=1)}[container]()
    compare(torch, model, ref, rng.standard_normal((2, 2, 4, 4)))
