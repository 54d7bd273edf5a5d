"""`convgrad gradcheck`: every layer over random configurations, checked by central differences.

For each layer and each of --configs random configurations (small shapes, float64) the
library's gradcheck compares the input gradient and every parameter gradient of backward()
with (L(t + eps) - L(t - eps)) / 2 eps of L = sum(forward(x) * g). A table row per
configuration gives the largest relative error of each gradient and PASS/FAIL; the exit status
is 1 when any configuration fails. A user's layer is checked the same way::

    convgrad gradcheck --module mypkg.layers:MyConv --args '{"in_channels": 2}' --input-shape 2,2,5,5

The configurations themselves (and how inputs avoid the kinks of max pooling and ReLU, and
how dropout's mask is held fixed in training mode) are in sweep_cases.py.
"""
from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import os
import sys
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..gradcheck import gradcheck
from ..nn.module import Module
from ..cli_args import UsageError
from .sweep_cases import (FAMILIES, LAYERS, BrokenCase, Case, FixedMask, cases, layer_rng,  # noqa: F401 (re-exported)
                          normal_input)

MAX_INPUT_ENTRIES = 1_000_000      # --input-shape: entries a gradient check perturbs one by one


# ---------------------------------------------------------------------------------------
# Running and printing
# ---------------------------------------------------------------------------------------
@dataclass
class Result:
    """One configuration: the max relative error per checked tensor ('input', 'weight', ...)."""
    layer: str
    config: str
    errors: dict = field(default_factory=dict)
    passed: bool = False
    report: object = field(default=None, repr=False)
    error: str = ""
    note: str = ""


def check_case(layer: str, case, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0) -> Result:
    """gradcheck one case; an exception (a layer that cannot even run) is a failure, not a crash."""
    config = case.describe()
    if isinstance(case, BrokenCase):
        return Result(layer, config, error=case.error)
    try:
        report = gradcheck(case.module, np.asarray(case.x, dtype=np.float64), eps=eps, atol=atol, rtol=rtol,
                           seed=seed)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        return Result(layer, config, error=f"{type(exc).__name__}: {exc}", note=case.note)
    errors = {c.name: c.max_rel_error for c in report.checks}
    return Result(layer, config, errors, report.passed, report, note=case.note)


def resolve_layers(names) -> list[str]:
    """Registered names (case-insensitive) or families ('pooling') -> layer names, in order."""
    if not names:
        return list(LAYERS)
    lower = {n.lower(): n for n in LAYERS}
    out = []
    for name in names:
        key = name.lower()
        if key in lower:
            out.append(lower[key])
        elif key in FAMILIES:
            out.extend(FAMILIES[key])
        else:
            close = [n for n in LAYERS if key[:4] in n.lower()] or list(FAMILIES)
            raise UsageError(f"unknown layer {name!r}; known layers include {', '.join(close[:12])} "
                            f"(--list shows them all)")
    return list(dict.fromkeys(out))


def sweep(layers=None, configs: int = 5, seed: int = 0, eps=1e-6, atol=1e-5, rtol=1e-3, on_result=None) -> list:
    """gradcheck every configuration of the given layers (default: all). Returns [Result]."""
    if configs < 1:
        raise UsageError(f"--configs must be >= 1, got {configs}")
    results = []
    for name in resolve_layers(layers):
        for case in cases(name, configs, seed):
            result = check_case(name, case, eps, atol, rtol, seed)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


# ---- a user's module ---------------------------------------------------------------------
def load_object(spec: str):
    """'package.module:Class' (or 'package.module:factory', 'module:Outer.Inner') -> the object.
    The current directory is importable, as with `python -m`."""
    if ":" not in spec:
        raise UsageError(f"--module expects 'package.module:Class', got {spec!r}")
    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--module {spec}: cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--module {spec}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"--module {spec}: {attr!r} is not a class or function")
    return obj


def user_cases(spec: str, kwargs: dict, input_shape, configs: int = 5, seed: int = 0, train: bool = True):
    """Cases of a user's module: `configs` instances (seeded init) on random inputs of input_shape."""
    factory = load_object(spec)
    rng = np.random.default_rng([seed, zlib.crc32(spec.encode())])
    for i in range(configs):
        nn.manual_seed(seed * 1000 + i)
        try:
            module = factory(**kwargs)
        except TypeError as exc:
            raise UsageError(f"--module {spec} --args {json.dumps(kwargs)}: {exc}") from exc
        if not isinstance(module, Module):
            raise UsageError(f"--module {spec} built a {type(module).__name__}, not a convgrad.nn.Module")
        module.train(train)
        yield Case(module, normal_input(rng, tuple(input_shape)), {"args": json.dumps(kwargs, separators=(",", ":")),
                                                              "mode": "train" if train else "eval", "instance": i})


COLUMNS = f"{'layer':<18} {'configuration':<70} {'input':>8}  {'parameters (max rel. error)':<36} result"


def _params_summary(errors: dict) -> str:
    params = {k: v for k, v in errors.items() if k != "input"}
    if len(params) <= 2:
        return " ".join(f"{k} {v:.1e}" for k, v in params.items()) or "-"
    worst = max(params, key=params.get)
    return f"{len(params)} tensors, worst {worst} {params[worst]:.1e}"


def format_row(r: Result) -> str:
    """layer | configuration | input grad error | parameter grad errors | PASS/FAIL."""
    config = r.config if len(r.config) <= 70 else r.config[:67] + "..."
    if r.error:
        return f"{r.layer:<18} {config:<70} {'-':>8}  {'ERROR (see below)':<36} FAIL"
    inp = f"{r.errors['input']:.1e}" if "input" in r.errors else "-"
    return f"{r.layer:<18} {config:<70} {inp:>8}  {_params_summary(r.errors):<36} {'PASS' if r.passed else 'FAIL'}"


def failure_details(results) -> str:
    """The failed sweep results as text: layer, configuration and the error or report."""
    lines = []
    for r in results:
        if r.passed:
            continue
        lines.append(f"\n{r.layer} {r.config}:")
        lines.append(f"  {r.error}" if r.error else "  " + str(r.report).split("\n\n")[0].replace("\n", "\n  "))
    return "\n".join(lines)


def _parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 2,3,5,5, got {text!r}") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 2,3,5,5, got {text!r}")
    if math.prod(shape) > MAX_INPUT_ENTRIES:
        raise argparse.ArgumentTypeError(f"{text!r} has {math.prod(shape):,} entries; a gradient check perturbs "
                                         f"each one, so at most {MAX_INPUT_ENTRIES:,}")
    return shape


def _runs_on(spec: str, case, input_shape) -> None:
    """A user's module must run forward on --input-shape (a copy, in float64): a shape it cannot
    take is an argument error, not a failed gradient."""
    module = copy.deepcopy(case.module).to(np.float64)
    try:
        with no_grad():
            module(np.asarray(case.x, dtype=np.float64))
    except (ValueError, TypeError, IndexError) as exc:
        raise UsageError(f"--module {spec} cannot run on --input-shape {','.join(map(str, input_shape))}: "
                         f"{type(exc).__name__}: {exc}") from None


def _cmd(args) -> int:
    if args.expr is not None:                    # the lectures' scalar example (convgrad.explain.expression)
        from ..explain.expression import report
        if args.at is None:
            raise UsageError("--expr needs --at, e.g. --expr 'x1*x2*x3' --at 2,1,3")
        from ..explain.expression import ExpressionError
        try:
            lines, ok = report(args.expr, args.at, h=args.eps, analytic_texts=args.analytic or ())
        except ExpressionError as exc:            # the formula or the point: an argument error
            raise UsageError(f"--expr: {exc}") from exc
        print("\n".join(lines))
        return 0 if ok else 1
    if args.model is not None:
        return _check_model(args)
    if args.list:
        for family, names in FAMILIES.items():
            print(f"{family:<14} {' '.join(names)}")
        return 0
    if args.configs < 1:
        raise UsageError(f"--configs must be >= 1, got {args.configs}")
    if args.module:
        if args.input_shape is None:
            raise UsageError("--module needs --input-shape, e.g. --input-shape 2,3,5,5")
        try:
            kwargs = json.loads(args.args)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--args is not valid JSON ({exc}): {args.args!r}") from None
        if not isinstance(kwargs, dict):
            raise UsageError(f"--args must be a JSON object of constructor arguments, got {args.args!r}")
        name = args.module.rpartition(":")[2][:18]
        todo = [(name, c) for c in user_cases(args.module, kwargs, args.input_shape, args.configs, args.seed,
                                              train=not args.eval)]
        _runs_on(args.module, todo[0][1], args.input_shape)
    else:
        names = resolve_layers(args.layer)
        todo = ((n, c) for n in names for c in cases(n, args.configs, args.seed))
    print(f"gradcheck sweep: central differences in float64 (eps {args.eps:g}, atol {args.atol:g}, "
          f"rtol {args.rtol:g}), {args.configs} configuration(s) per layer, seed {args.seed}")
    print(COLUMNS)
    start, results = time.perf_counter(), []
    for name, case in todo:
        r = check_case(name, case, args.eps, args.atol, args.rtol, args.seed)
        results.append(r)
        print(format_row(r), flush=True)
    failed = [r for r in results if not r.passed]
    if failed:
        print(failure_details(failed))
    layers = len({r.layer for r in results})
    print(f"\n{len(results)} configurations of {layers} layer(s) in {time.perf_counter() - start:.1f} s: "
          + (f"{len(failed)} FAILED ({', '.join(sorted({r.layer for r in failed}))})" if failed else "all passed"))
    return 1 if failed else 0


def _check_model(args) -> int:
    """A whole model of convgrad.models on a random batch, a seeded sample of entries per tensor."""
    from ..models import build
    model = build(args.model, generator=args.seed)
    if args.eval:
        model.eval()
    from ..nn import Dropout, Dropout2d
    dropouts = [m for m in model.modules() if isinstance(m, (Dropout, Dropout2d)) and m.training]
    for m in dropouts:                  # a fresh mask every forward would make the differences noise
        m.eval()
    x = np.random.default_rng(args.seed).standard_normal((2, 1, 28, 28))
    k = args.sample or 10
    n = sum(p.data.size for p in model.parameters())
    print(f"gradcheck {args.model}: {n} parameters in {len(list(model.parameters()))} tensors; {k} entries per "
          f"tensor drawn with seed {args.seed}, central differences in float64 (eps {args.eps:g})"
          + (f"; its {len(dropouts)} Dropout layer(s) in eval mode (a new mask every forward would make the "
             "differences noise)" if dropouts else ""), flush=True)
    tty = sys.stderr.isatty()

    def progress(name, done, total):
        if tty or done == total:
            print(f"  {name:<24} {done}/{total}", end="\r" if tty and done < total else "\n", file=sys.stderr,
                  flush=True)

    report = gradcheck(model, x, eps=args.eps, atol=args.atol, rtol=args.rtol, seed=args.seed, sample=k,
                       progress=progress)
    print(report)
    return 0 if report.passed else 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `gradcheck` to an argparse subparsers object."""
    p = subparsers.add_parser("gradcheck", help="check every layer's backward numerically (float64 sweep)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layer", action="append", default=None, metavar="NAME",
                   help="only this layer or family (repeatable; case-insensitive); --list shows the names")
    p.add_argument("--module", default=None, metavar="PKG.MOD:CLASS", help="check your own Module class instead")
    p.add_argument("--args", default="{}", metavar="JSON", help="constructor arguments of --module (JSON object)")
    p.add_argument("--input-shape", type=_parse_shape, default=None, metavar="N,C,...",
                   help="input shape for --module, e.g. 2,2,5,5")
    p.add_argument("--eval", action="store_true", help="check --module in eval mode (default: training mode)")
    p.add_argument("--configs", type=int, default=5, help="random configurations per layer (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps", type=float, default=1e-6, help="central-difference step (default 1e-6)")
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--list", action="store_true", help="list the layers and families and exit")
    p.add_argument("--model", default=None, choices=("lenet", "cnn", "resnet"),
                   help="check a whole model on a random batch, --sample entries per tensor")
    p.add_argument("--sample", type=int, default=None, metavar="K",
                   help="with --model: entries checked per tensor, drawn with --seed (default 10)")
    p.add_argument("--expr", default=None, metavar="FORMULA",
                   help="check a formula instead, as the lectures do: 'x1*x2*x3' (+ - * / **, exp log sqrt tanh "
                        "sigmoid relu; parsed, never evaluated as Python)")
    p.add_argument("--at", default=None, metavar="VALUES",
                   help="the point for --expr: '2,1,3' (variables in order of appearance) or 'x1=2,x2=1,x3=3'")
    p.add_argument("--analytic", action="append", default=None, metavar="NAME=FORMULA",
                   help="use this formula as the analytic gradient of NAME (e.g. the lecture's bug x2=2*w2)")
    from ..cli_args import integer, number
    from ._common import guarded
    rules = {"seed": integer(0), "eps": number(above=0), "atol": number(at_least=0),
             "rtol": number(at_least=0), "sample": integer(1)}
    p.set_defaults(func=lambda a: guarded("gradcheck", _cmd, a, rules))
    return p


def main(argv=None) -> int:
    """`python -m convgrad.tools.gradcheck_sweep ...` without the main CLI."""
    from . import run_standalone
    return run_standalone(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
