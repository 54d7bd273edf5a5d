"""The `convgrad` command: train, eval, predict, gradcheck, explain, demo."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _cmd_demo(args) -> int:
    """A stack of convolutions forward and backward on a realistic batch, then a gradient check."""
    from . import gradcheck, nn
    rng = np.random.default_rng(args.seed)
    net = nn.Sequential(nn.Conv2d(1, 32, 3, generator=1), nn.Conv2d(32, 64, 3, stride=2, padding=1, generator=2),
                        nn.Conv2d(64, 64, 3, padding="same", groups=64, generator=3),
                        nn.Conv2d(64, 10, 1, generator=4))
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    start = time.perf_counter()
    y = net(x)
    dx = net.backward(np.ones_like(y) / y.size)
    ms = (time.perf_counter() - start) * 1e3
    print(f"forward+backward of {len(net)} convolutions on a batch {x.shape} -> {y.shape}: {ms:.1f} ms")
    for name, p in net.named_parameters():
        print(f"  {name:<10} {str(p.shape):<16} |grad| = {np.linalg.norm(p.grad):.4e}")
    print(f"  input grad {dx.shape}, |dx| = {np.linalg.norm(dx):.4e}")
    small = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1, generator=5), nn.Conv2d(3, 2, 2, generator=6))
    report = gradcheck(small, rng.standard_normal((2, 2, 7, 7)))
    print(report)
    return 0 if report.passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convgrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run convolutions forward and backward and a gradient check")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
