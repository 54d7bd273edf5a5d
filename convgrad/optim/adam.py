"""Adam and AdamW (torch's rules, including amsgrad and maximize)."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_bool, check_real


def _lerp_(a: np.ndarray, b: np.ndarray, w: float) -> None:
    """a <- a + w (b - a) in place, with torch's two-sided formula for rounding."""
    if w < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


class Adam(Optimizer):
    """torch.optim.Adam. Per parameter, at step t, with g = grad (-grad if maximize)::

        p = p * (1 - lr * weight_decay)   if decoupled_weight_decay (AdamW)
        g = g + weight_decay * p          otherwise
        m = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
        v_hat = max(v_max, v) if amsgrad else v   (v_max keeps the running maximum)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v_hat) / sqrt(1 - beta2^t) + eps)

    State per parameter: "step" (int), "exp_avg", "exp_avg_sq", and "max_exp_avg_sq" with amsgrad.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_group(self, group):
        where = type(self).__name__
        check_real(where, "lr", group["lr"], minimum=0.0)
        check_real(where, "eps", group["eps"], minimum=0.0)
        check_real(where, "weight_decay", group["weight_decay"], minimum=0.0)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{where}: betas must be a pair of floats, got {betas!r}")
        for i, b in enumerate(betas):
            check_real(where, f"betas[{i}]", b, minimum=0.0, below=1.0)
        group["betas"] = (float(betas[0]), float(betas[1]))
        for key in ("amsgrad", "maximize", "decoupled_weight_decay"):
            check_bool(where, key, group[key])

    def step(self, closure=None):
        """One update of every parameter with a grad; returns closure() if given."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = float(group["lr"])
            beta1, beta2 = (float(b) for b in group["betas"])
            eps = float(group["eps"])
            weight_decay = float(group["weight_decay"])
            amsgrad = bool(group["amsgrad"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = self._grad(p, bool(group["maximize"]))
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {"step": 0, "exp_avg": np.zeros_like(p.data),
                                             "exp_avg_sq": np.zeros_like(p.data)}
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                step = state["step"]
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        p.data *= 1 - lr * weight_decay
                    else:
                        g = g + weight_decay * p.data
                m, v = state["exp_avg"], state["exp_avg_sq"]
                _lerp_(m, g, 1 - beta1)
                v *= beta2
                v += (1 - beta2) * g * g
                step_size = lr / (1 - beta1 ** step)
                bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
                if amsgrad:
                    np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                    v = state["max_exp_avg_sq"]
                denom = np.sqrt(v) / bias_correction2_sqrt
                denom += eps
                p.data -= step_size * (m / denom)
        return loss


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay, p <- p (1 - lr weight_decay)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)

    def _check_group(self, group):
        super()._check_group(group)
        group["decoupled_weight_decay"] = True  # as torch's AdamW, also for a loaded Adam state
