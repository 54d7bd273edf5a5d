"""The models `convgrad train` knows, defined in the library so they can be imported::

    lenet   Conv(1,32,3) ReLU MaxPool2 Conv(32,64,3) ReLU MaxPool2 Flatten Linear(1600,128) ReLU Linear(128,10)
            (the reference model for timing against torch)
    cnn     two VGG-style stages (conv-BN-ReLU x2, max-pool) and a dropout-regularised classifier
    resnet  a small ResNet: conv-BN-ReLU stem, three BasicBlock stages (32, 64, 128 channels),
            global average pooling, Linear

Every builder takes in_channels, image_size, num_classes and a generator (seed or
numpy Generator) so the same seed gives the same initial weights.
"""
from __future__ import annotations

from . import nn
from ._checks import MAX_IMAGE_SIZE, check_int
from .nn.init import make_rng

MODELS = ("lenet", "cnn", "resnet")
# the smallest image each one maps to a non-empty feature map (lenet: two valid 3x3 convs and
# two 2x2 pools; cnn: two 2x2 pools)
MIN_IMAGE_SIZE = {"lenet": 10, "cnn": 4, "resnet": 1}


def lenet(in_channels: int = 1, image_size: int = 28, num_classes: int = 10, generator=None) -> nn.Sequential:
    """LeNet-style: two conv-ReLU-maxpool stages (32, 64 channels, 3x3) and two Linear layers.
    x (N, in_channels, image_size, image_size) -> logits (N, num_classes)."""
    g = make_rng(generator)
    side = ((image_size - 2) // 2 - 2) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, generator=g), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, generator=g), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * side * side, 128, generator=g), nn.ReLU(),
        nn.Linear(128, num_classes, generator=g))


def _conv_bn_relu(c_in: int, c_out: int, g) -> list:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False, generator=g), nn.BatchNorm2d(c_out), nn.ReLU()]


def cnn(in_channels: int = 1, image_size: int = 28, num_classes: int = 10, generator=None) -> nn.Sequential:
    """Two VGG-style stages (conv-BN-ReLU twice, then 2x2 max-pool; 32 and 64 channels) and a
    dropout-regularised classifier. x (N, in_channels, image_size, image_size) -> (N, num_classes)."""
    g = make_rng(generator)
    side = image_size // 4
    return nn.Sequential(
        *_conv_bn_relu(in_channels, 32, g), *_conv_bn_relu(32, 32, g), nn.MaxPool2d(2),
        *_conv_bn_relu(32, 64, g), *_conv_bn_relu(64, 64, g), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25, generator=g),
        nn.Linear(64 * side * side, 256, generator=g), nn.ReLU(), nn.Dropout(0.5, generator=g),
        nn.Linear(256, num_classes, generator=g))


def resnet(in_channels: int = 1, image_size: int = 28, num_classes: int = 10, generator=None) -> nn.Sequential:
    """A small ResNet: conv-BN-ReLU stem, BasicBlock stages of 32, 64 and 128 channels, global
    average pooling, Linear. x (N, in_channels, image_size, image_size) -> (N, num_classes)."""
    g = make_rng(generator)
    return nn.Sequential(
        *_conv_bn_relu(in_channels, 32, g),
        nn.BasicBlock(32, 32, generator=g), nn.BasicBlock(32, 64, stride=2, generator=g),
        nn.BasicBlock(64, 128, stride=2, generator=g),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes, generator=g))


def build(name: str, in_channels: int = 1, image_size: int = 28, num_classes: int = 10, generator=None):
    """A model by name (one of MODELS)."""
    builders = {"lenet": lenet, "cnn": cnn, "resnet": resnet}
    if name not in builders:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    where = f"models.build({name!r})"
    check_int(where, "in_channels", in_channels, minimum=1)
    check_int(where, "image_size", image_size, minimum=MIN_IMAGE_SIZE[name], maximum=MAX_IMAGE_SIZE)
    check_int(where, "num_classes", num_classes, minimum=1)
    return builders[name](in_channels, image_size, num_classes, generator)
