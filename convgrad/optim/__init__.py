"""Optimisers, learning-rate schedulers and gradient clipping, with torch.optim's update rules.

For example::

    opt = cg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = cg.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=1000)
    ...; model.backward(grad); cg.optim.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); sched.step(); opt.zero_grad()
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "clip_grad_norm_", "clip_grad_value_"]
