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
    """torch.nn.functional.conv2d: x (N, C_in, H, W), w (C_out, C_in/g, kh, kw)."""
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
