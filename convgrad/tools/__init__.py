"""Tools around a model's gradients: the commands `convgrad gradcheck`, `attack`, `saliency`, `report`.

    gradcheck_sweep.py   every layer over random configurations, central differences in float64
    sweep_cases.py       those configurations: per layer a sampler of small random instances
    attack.py            FGSM / PGD adversarial examples through the model's own backward
    saliency.py          |d score / d pixel| maps
    report.py            one self-contained HTML page of a training run
    figures.py           their matplotlib figures, as PNG bytes
    _common.py           a checkpoint's model seen from pixel space (PixelModel), input checks

Each command module has add_parser(subparsers), the pattern of convgrad.explain; add_parsers
adds all four.
"""
from __future__ import annotations

import argparse


def add_parsers(subparsers) -> None:
    """Add gradcheck, attack, saliency and report to an argparse subparsers object."""
    from . import attack, gradcheck_sweep, report, saliency
    for module in (gradcheck_sweep, attack, saliency, report):
        module.add_parser(subparsers)


def run_standalone(add_parser, argv=None) -> int:
    """Parse argv for the one command add_parser adds (`python -m convgrad.tools.attack ...`)."""
    import sys
    parser = argparse.ArgumentParser(prog="convgrad")
    sub = parser.add_subparsers(dest="command", required=True)
    command = add_parser(sub).prog.split()[-1]
    args = parser.parse_args([command, *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)
