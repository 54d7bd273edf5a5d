"""Slow, obviously-correct versions straight from the lectures: test oracles and teaching material.
Never used by the fast path."""
from .conv import (conv_loops, conv_loops_backward, chain_rule_dx, chain_rule_dw, jacobian_dv_dw,
                   jacobian_dv_dx)
