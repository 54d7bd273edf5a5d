"""convgrad: convolutional networks on NumPy, every operation a forward/backward pair.

For example::

    import convgrad as cg
    model = cg.nn.Sequential(cg.nn.Conv2d(1, 8, 3), ...)
"""
from . import autograd, functional, nn, onnx, optim
from .autograd import Tensor, cat, chunk, enable_grad, from_numpy, is_grad_enabled, no_grad, split, stack, tensor, where
from ._dtype import get_default_dtype, set_default_dtype
from ._threads import get_num_threads, set_num_threads
from .nn.init import manual_seed
from .nn.module import Module, Parameter
from .weights import load, save

__version__ = "0.1.0"
from .gradcheck import GradcheckReport, gradcheck  # noqa: E402  (the function shadows the module name, as in torch)
from .summary import summary  # noqa: E402
