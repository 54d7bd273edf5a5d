"""Stateless math: every operation a forward function and its backward."""
from .convolution import (conv, conv_backward, conv_forward, conv_general, conv_input_grad, conv_input_grad_by_conv,
                   conv_output_shape, conv_route, conv_transpose, conv_transpose_backward, conv_transpose_forward,
                   conv_weight_grad, conv_weight_grad_by_conv, flip_swap)
from .padding import pad, pad_backward


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv1d: x (N, C_in, L), w (C_out, C_in/g, k)."""
    _expect_rank(w, 3, "conv1d")
    return conv(x, w, b, stride, padding, dilation, groups)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d: x (N, C_in, H, W), w (C_out, C_in/g, kh, kw), b (C_out,) or None
    -> (N, C_out, H_out, W_out), H_out = floor((H + 2p - d(kh - 1) - 1)/s) + 1 (see nn.Conv2d).

    Example:
        >>> from convgrad import functional as F
        >>> x = np.array([[[[2., -3, 4], [1, -1, 2], [-1, 2, 3]]]])      # the lectures' example
        >>> F.conv2d(x, np.array([[[[3., -1], [4, 2]]]]))
        array([[[[ 11., -13.],
                 [  4.,   9.]]]])
    """
    _expect_rank(w, 4, "conv2d")
    return conv(x, w, b, stride, padding, dilation, groups)


def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv3d: x (N, C_in, D, H, W), w (C_out, C_in/g, kd, kh, kw)."""
    _expect_rank(w, 5, "conv3d")
    return conv(x, w, b, stride, padding, dilation, groups)


def _expect_rank(w, rank, where):
    if getattr(w, "ndim", None) != rank:
        raise ValueError(f"{where}: expected a weight of rank {rank}, got shape {getattr(w, 'shape', None)}")


from .activation import (elu, elu_backward, elu_forward, erf, erfc, gelu, gelu_backward, gelu_forward,  # noqa: E402
                         leaky_relu, leaky_relu_backward, leaky_relu_forward, log_softmax, log_softmax_backward,
                         log_softmax_forward, relu, relu_backward, relu_forward, sigmoid, sigmoid_backward,
                         sigmoid_forward, silu, silu_backward, silu_forward, softmax, softmax_backward,
                         softmax_forward, softplus, softplus_backward, softplus_forward, tanh, tanh_backward,
                         tanh_forward)
from .dense import (dropout, dropout2d, dropout_backward, dropout_forward, linear, linear_backward,  # noqa: E402
                     linear_forward)
from .loss import (binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_backward,  # noqa: E402
                   binary_cross_entropy_with_logits_forward, cross_entropy, cross_entropy_backward,
                   cross_entropy_forward, l1_loss, l1_loss_backward, l1_loss_forward, mse_loss, mse_loss_backward,
                   mse_loss_forward, nll_loss, nll_loss_backward, nll_loss_forward)
from .resample import (downsample, downsample_backward, upsample_nearest, upsample_nearest_backward,  # noqa: E402
                       upsample_zeros, upsample_zeros_backward)
from .pooling import (adaptive_avg_pool_backward, adaptive_avg_pool_forward, adaptive_max_pool_backward,  # noqa: E402
                      adaptive_max_pool_forward, max_pool_indices, max_unpool_backward, max_unpool_forward)
from .pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d, adaptive_max_pool1d,  # noqa: E402
                      adaptive_max_pool2d, adaptive_max_pool3d, avg_pool1d, avg_pool2d, avg_pool3d, avg_pool_backward,
                      avg_pool_forward, max_pool1d, max_pool2d, max_pool3d, max_pool_backward, max_pool_forward,
                      max_unpool1d, max_unpool2d, max_unpool3d)
from .normalization import (batch_norm, batch_norm_backward, batch_norm_forward, group_norm,  # noqa: E402
                            group_norm_backward, group_norm_forward, layer_norm, layer_norm_backward,
                            layer_norm_forward)


# ---------------------------------------------------------------------------------------
# Called with convgrad Tensors, every op above that has a backward records one node
# (functional/recordable.py); with arrays it is the plain function.
# ---------------------------------------------------------------------------------------
from . import activation as _act, convolution as _conv, dense as _dense, loss as _loss  # noqa: E402
from . import normalization as _norm, pooling as _pool, resample as _resample  # noqa: E402
from .recordable import recordable as _recordable  # noqa: E402


def _conv_nd_forward(rank, name):
    def forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
        _expect_rank(w, rank, name)
        return _conv.conv_forward(x, w, b, stride, padding, dilation, groups)
    return forward


def _pool_forward(forward, n, **fixed):
    """A pooling forward of torch's functional signature: y or (y, indices) with the cache."""
    def pool(x, *args, return_indices=False, **kwargs):
        y, cache = forward(x, *args, n_dims=n, **fixed, **kwargs)
        return ((y, _pool.max_pool_indices(cache)) if return_indices else y), cache
    return pool


def _dropout_forward(channelwise, name):
    def forward(x, p=0.5, training=True, generator=None):
        return _dense.dropout_forward(x, p, training, _dense._rng(generator, name), channelwise=channelwise, where=name)
    return forward


def _resample_pair(forward, backward, keeps_shape: bool):
    def fwd(x, factor, **names):                 # names: where= (and name=) for the messages
        return forward(x, factor, **names), (factor, x.shape[2:])

    def bwd(dy, cache):
        factor, in_spatial = cache
        return backward(dy, factor, in_spatial) if keeps_shape else backward(dy, factor)
    return fwd, bwd


def _pad_forward(x, pads, mode="zeros", where="pad", value=0.0):
    return pad(x, pads, mode, where, value), (pads, mode, x.shape)


def _pad_backward(dy, cache):
    pads, mode, x_shape = cache
    return pad_backward(dy, pads, mode, x_shape)


def _with_target(backward, target_backward):
    """A loss's backward giving (dx, dtarget): the target's only when it requires grad."""
    def both(dy, cache, needs=(True, True)):
        return backward(dy, cache), (target_backward(dy, cache) if needs[1] else None)
    both.takes_needs = True
    return both


_recorded_ops = {  # plain function: (forward of the same arguments -> (y, cache), backward, gradients it returns)
    pad: (_pad_forward, _pad_backward, ("x",)),
    relu: (_act.relu_forward, _act.relu_backward, ("x",)),
    leaky_relu: (_act.leaky_relu_forward, _act.leaky_relu_backward, ("x",)),
    elu: (_act.elu_forward, _act.elu_backward, ("x",)),
    gelu: (_act.gelu_forward, _act.gelu_backward, ("x",)),
    sigmoid: (_act.sigmoid_forward, _act.sigmoid_backward, ("x",)),
    tanh: (_act.tanh_forward, _act.tanh_backward, ("x",)),
    softplus: (_act.softplus_forward, _act.softplus_backward, ("x",)),
    silu: (_act.silu_forward, _act.silu_backward, ("x",)),
    softmax: (_act.softmax_forward, _act.softmax_backward, ("x",)),
    log_softmax: (_act.log_softmax_forward, _act.log_softmax_backward, ("x",)),
    linear: (_dense.linear_forward, _dense.linear_backward, ("x", "w", "b")),
    conv: (_conv.conv_forward, _conv.conv_backward, ("x", "w", "b")),
    conv_transpose: (_conv.conv_transpose_forward, _conv.conv_transpose_backward, ("x", "w", "b")),
    conv1d: (_conv_nd_forward(3, "conv1d"), _conv.conv_backward, ("x", "w", "b")),
    conv2d: (_conv_nd_forward(4, "conv2d"), _conv.conv_backward, ("x", "w", "b")),
    conv3d: (_conv_nd_forward(5, "conv3d"), _conv.conv_backward, ("x", "w", "b")),
    dropout: (_dropout_forward(False, "dropout"), _dense.dropout_backward, ("x",)),
    dropout2d: (_dropout_forward(True, "dropout2d"), _dense.dropout_backward, ("x",)),
    cross_entropy: (_loss.cross_entropy_forward, _loss.cross_entropy_backward, ("x",)),
    nll_loss: (_loss.nll_loss_forward, _loss.nll_loss_backward, ("x",)),
    mse_loss: (_loss.mse_loss_forward, _with_target(_loss.mse_loss_backward, _loss.mse_loss_target_backward),
               ("x", "target")),
    l1_loss: (_loss.l1_loss_forward, _with_target(_loss.l1_loss_backward, _loss.l1_loss_target_backward),
              ("x", "target")),
    binary_cross_entropy_with_logits: (_loss.binary_cross_entropy_with_logits_forward,
                                       _with_target(_loss.binary_cross_entropy_with_logits_backward,
                                                    _loss.binary_cross_entropy_with_logits_target_backward),
                                       ("x", "target")),
    batch_norm: (_norm.batch_norm_forward, _norm.batch_norm_backward, ("x", "weight", "bias")),
    layer_norm: (_norm.layer_norm_forward, _norm.layer_norm_backward, ("x", "weight", "bias")),
    group_norm: (_norm.group_norm_forward, _norm.group_norm_backward, ("x", "weight", "bias")),
    downsample: (*_resample_pair(_resample.downsample, _resample.downsample_backward, True), ("x",)),
    upsample_zeros: (*_resample_pair(_resample.upsample_zeros, _resample.upsample_zeros_backward, False), ("x",)),
    upsample_nearest: (*_resample_pair(_resample.upsample_nearest, _resample.upsample_nearest_backward, False),
                       ("x",)),
}
for _n, _f in enumerate([max_pool1d, max_pool2d, max_pool3d], 1):
    _recorded_ops[_f] = (_pool_forward(_pool.max_pool_forward, _n), _pool.max_pool_backward, ("x",))
for _n, _f in enumerate([avg_pool1d, avg_pool2d, avg_pool3d], 1):
    _recorded_ops[_f] = (_pool_forward(_pool.avg_pool_forward, _n), _pool.avg_pool_backward, ("x",))
for _n, _f in enumerate([adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d], 1):
    _recorded_ops[_f] = (_pool_forward(_pool.adaptive_avg_pool_forward, _n), _pool.adaptive_avg_pool_backward,
                           ("x",))
for _n, _f in enumerate([adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d], 1):
    _recorded_ops[_f] = (_pool_forward(_pool.adaptive_max_pool_forward, _n), _pool.adaptive_max_pool_backward,
                           ("x",))
for _n, _f in enumerate([max_unpool1d, max_unpool2d, max_unpool3d], 1):
    _recorded_ops[_f] = (_pool_forward(_pool.max_unpool_forward, _n), _pool.max_unpool_backward, ("x",))

for _plain, (_forward, _backward, _grads) in _recorded_ops.items():
    globals()[_plain.__name__] = _recordable(_plain, _forward, _backward, _grads)
del _n, _f, _plain, _forward, _backward, _grads
