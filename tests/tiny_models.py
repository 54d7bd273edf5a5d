"""Small models for fast training tests, loaded by the tests as `tests/tiny_models.py:FACTORY`."""
import time

from convgrad import nn
from convgrad.nn.init import make_rng


class Pause(nn.Module):
    """Identity that sleeps `seconds` per training forward: a run slow enough to be interrupted mid-epoch."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        if self.training and self.seconds:
            time.sleep(self.seconds)
        return x

    def backward(self, grad_out, input_grad=True):
        return grad_out


def tiny_cnn(in_channels=1, image_size=28, num_classes=10, generator=None, width=4, pause=0.0):
    """Conv-BN-ReLU-pool, conv-ReLU-pool, dropout, linear: BatchNorm statistics and dropout masks
    make resuming depend on every state the checkpoint holds."""
    g = make_rng(generator)
    side = image_size // 4
    return nn.Sequential(
        Pause(pause), nn.Conv2d(in_channels, width, 3, padding=1, generator=g), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1, generator=g), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.2, generator=g), nn.Linear(2 * width * side * side, num_classes, generator=g))


class Doubler(nn.Module):
    """A forward-only module (no backward of its own): recorded mode differentiates it."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x) * 2.0


def forward_only(in_channels=1, image_size=28, num_classes=10, generator=None):
    return Doubler(tiny_cnn(in_channels, image_size, num_classes, generator))
