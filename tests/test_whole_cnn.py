"""A whole CNN built in convgrad and in torch from the same state_dict gives the same logits,
input gradient, parameter gradients and running statistics (float64)."""
import numpy as np
import pytest

from conftest import rel_err
from convgrad import models, nn

torch = pytest.importorskip("torch")


def _pair():
    ours = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, generator=0), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1, generator=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 3 * 3, 10, generator=2)).to(np.float64)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(16 * 3 * 3, 10)).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _step(ours, theirs, x, y):
    tx = torch.tensor(x, requires_grad=True)
    t_logits = theirs(tx)
    torch.nn.functional.cross_entropy(t_logits, torch.tensor(y)).backward()
    crit = nn.CrossEntropyLoss()
    logits = ours(x)
    crit(logits, y)
    dx = ours.backward(crit.backward())
    assert rel_err(logits, t_logits.detach().numpy()) < 1e-10
    assert rel_err(dx, tx.grad.numpy()) < 1e-10
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert rel_err(p.grad, t_params[name].grad.numpy()) < 1e-10, name


def test_whole_cnn_train_then_eval_matches_torch():
    rng = np.random.default_rng(0)
    ours, theirs = _pair()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for _ in range(2):
        x, y = rng.standard_normal((6, 3, 12, 12)), rng.integers(0, 10, size=6)
        ours.zero_grad()
        theirs.zero_grad()
        _step(ours, theirs, x, y)
    for name, value in theirs.state_dict().items():
        assert rel_err(ours.state_dict()[name], value.numpy()) < 1e-10, name
    ours.eval(), theirs.eval()
    ours.zero_grad(), theirs.zero_grad()
    _step(ours, theirs, rng.standard_normal((4, 3, 12, 12)), rng.integers(0, 10, size=4))


@pytest.mark.parametrize("name", ["lenet", "cnn", "resnet"])
def test_library_models_match_torch_twins(name):
    """The models `convgrad train` uses, rebuilt in torch by name, agree in eval mode."""
    ours = models.build(name, generator=0).to(np.float64).eval()
    state = ours.state_dict()
    x = np.random.default_rng(1).standard_normal((3, 1, 28, 28))
    theirs = _torch_twin(name).double().eval()
    theirs.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    tx = torch.tensor(x, requires_grad=True)
    t_logits = theirs(tx)
    t_logits.sum().backward()
    logits = ours(x)
    dx = ours.backward(np.ones_like(logits))
    assert rel_err(logits, t_logits.detach().numpy()) < 1e-10
    assert rel_err(dx, tx.grad.numpy()) < 1e-10


class _TorchBasicBlock(torch.nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c_out)
        self.conv2 = torch.nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = torch.nn.Sequential(torch.nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                                torch.nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))


def _torch_twin(name):
    T = torch.nn
    if name == "lenet":
        return T.Sequential(T.Conv2d(1, 32, 3), T.ReLU(), T.MaxPool2d(2), T.Conv2d(32, 64, 3), T.ReLU(),
                            T.MaxPool2d(2), T.Flatten(), T.Linear(1600, 128), T.ReLU(), T.Linear(128, 10))

    def cbr(i, o):
        return [T.Conv2d(i, o, 3, padding=1, bias=False), T.BatchNorm2d(o), T.ReLU()]
    if name == "cnn":
        return T.Sequential(*cbr(1, 32), *cbr(32, 32), T.MaxPool2d(2), *cbr(32, 64), *cbr(64, 64), T.MaxPool2d(2),
                            T.Flatten(), T.Dropout(0.25), T.Linear(64 * 49, 256), T.ReLU(), T.Dropout(0.5),
                            T.Linear(256, 10))
    return T.Sequential(*cbr(1, 32), _TorchBasicBlock(32, 32), _TorchBasicBlock(32, 64, 2),
                        _TorchBasicBlock(64, 128, 2), T.AdaptiveAvgPool2d(1), T.Flatten(), T.Linear(128, 10))
