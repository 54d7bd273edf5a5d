"""ResNet building blocks, written as custom graphs: forward calls the submodules, backward
calls their backward in reverse order and adds the gradients where the input fanned out."""
from __future__ import annotations

from ..functional.activation import relu_backward, relu_forward
from . import init
from .conv import Conv2d
from .module import Module, Sequential
from .normalization import BatchNorm2d


class BasicBlock(Module):
    """The ResNet-18/34 residual block: two 3x3 convolutions with batch norm, plus a shortcut.

    The computation::

        out = relu(bn1(conv1(x)))          conv1: 3x3, stride, padding 1, no bias
        out = bn2(conv2(out))              conv2: 3x3, padding 1, no bias
        y   = relu(out + shortcut(x))      shortcut: identity, or 1x1 conv (stride) + BN
                                           when the shape changes

    backward: the gradient after the last ReLU goes down both paths, and
    ``dx = (main path's dx) + (shortcut's dx)`` — where x fanned out, the gradients add.

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        stride (int): the first convolution's (and the projection shortcut's) stride. Default: 1.
        generator: None, an int seed or a numpy Generator for the initial weights.
        dtype: the parameters' dtype. Default: :func:`convgrad.get_default_dtype`.

    Shape:
        - Input: ``(N, C_in, H, W)``
        - Output: ``(N, C_out, H_out, W_out)`` with ``H_out = floor((H - 1) / stride) + 1 = ceil(H / stride)``.

    Attributes:
        conv1, bn1, conv2, bn2: the main path (state_dict names as in common torch code).
        shortcut: None for the identity, else ``Sequential(Conv2d 1x1, BatchNorm2d)`` (names ``shortcut.0``,
            ``shortcut.1``).

    Example:
        >>> block = nn.BasicBlock(16, 32, stride=2, generator=0)
        >>> y = block(np.zeros((2, 16, 15, 15), dtype=np.float32))
        >>> y.shape
        (2, 32, 8, 8)
        >>> block.backward(np.ones_like(y)).shape
        (2, 16, 15, 15)
    """
    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1, generator=None, dtype=None):
        super().__init__()
        rng = init.make_rng(generator)
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False,
                            generator=rng, dtype=dtype)
        self.bn1 = BatchNorm2d(out_channels, dtype=dtype)
        self.conv2 = Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False,
                            generator=rng, dtype=dtype)
        self.bn2 = BatchNorm2d(out_channels, dtype=dtype)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = Sequential(
                Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, generator=rng, dtype=dtype),
                BatchNorm2d(out_channels, dtype=dtype))
        else:
            self.shortcut = None
        self._cache = None

    def forward(self, x):
        out, relu1 = relu_forward(self.bn1(self.conv1(x)), where="BasicBlock")
        out = self.bn2(self.conv2(out))
        y, relu2 = relu_forward(out + (x if self.shortcut is None else self.shortcut(x)), where="BasicBlock")
        self._cache = (relu1, relu2)
        return y

    def backward(self, grad_out):
        relu1, relu2 = self._cached(self._cache)
        g = relu_backward(grad_out, relu2)
        dx_short = g if self.shortcut is None else self.shortcut.backward(g)
        g = self.conv2.backward(self.bn2.backward(g))
        g = self.conv1.backward(self.bn1.backward(relu_backward(g, relu1)))
        return g + dx_short
