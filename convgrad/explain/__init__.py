"""`convgrad explain`: backprop through convolution, pooling and resampling, the lectures' way.

Each walk-through is computed as data (a Walkthrough of Steps with named matrices, checks
and animation frames; see steps.py) by conv.py, pool.py and resample.py, and drawn by
render_text.py (the terminal) or render_html.py (one self-contained page whose players step
through the animations with step / back / play / pause controls). For example::

    from convgrad.explain import explain_conv
    wt = explain_conv()                  # the lectures' worked example
    wt.results["dJ/dx"]                  # (C, H, W), computed
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .conv import explain_conv
from .convnd import explain_conv_nd
from .transposed import explain_transposed
from .pool import explain_pool
from .resample import explain_resample
from .render_text import render as render_text
from .steps import ExplainError, Walkthrough

__all__ = ["explain_conv", "explain_conv_nd", "explain_transposed", "explain_pool", "explain_resample", "render_text", "write_html", "add_parser", "main",
           "ExplainError", "Walkthrough", "parse_matrix", "parse_maps", "parse_kernel"]


def write_html(wt: Walkthrough, path) -> None:
    """The walk-through as one self-contained HTML page (inline CSS and JavaScript, no images)."""
    from .render_html import write
    write(wt, path)


# ---------------------------------------------------------------------------------------
# Option parsing: "2,-3,4;1,-1,2" is a matrix, "|" separates channels, "/" filters
# ---------------------------------------------------------------------------------------
def parse_matrix(text: str) -> np.ndarray:
    """'a,b,c;d,e,f' (commas or spaces between entries, ';' between rows) -> (rows, cols) float64."""
    rows = [r.replace(",", " ").split() for r in text.strip().strip(";").split(";")]
    if not rows or not all(rows):
        raise argparse.ArgumentTypeError(f"empty row in matrix {text!r} (expected e.g. '1,2;3,4')")
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != len(rows[0]):
            raise argparse.ArgumentTypeError(f"matrix {text!r} is not rectangular: row 1 has {len(rows[0])} "
                                             f"entries, row {n} has {len(r)}")
    try:
        m = np.array([[float(v) for v in r] for r in rows])
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"matrix {text!r}: {e}") from None
    if not np.isfinite(m).all():
        raise argparse.ArgumentTypeError(f"matrix {text!r} contains NaN or infinity")
    return m


def _stack(parts, what, text):
    ms = [parse_matrix(p) for p in parts]
    if any(m.shape != ms[0].shape for m in ms):
        raise argparse.ArgumentTypeError(f"the {what} in {text!r} have different shapes: "
                                         f"{', '.join('x'.join(map(str, m.shape)) for m in ms)}")
    return np.stack(ms)


def parse_maps(text: str) -> np.ndarray:
    """One matrix (H, W), or several separated by '|' -> (C, H, W)."""
    parts = text.split("|")
    return parse_matrix(parts[0]) if len(parts) == 1 else _stack(parts, "channels", text)


def parse_kernel(text: str) -> np.ndarray:
    """One matrix (f, f); or filters separated by '/', each with channels separated by '|'
    -> (K, C, fh, fw)."""
    if "/" not in text and "|" not in text:
        return parse_matrix(text)
    filters = [_stack(f.split("|"), "channels", text) for f in text.split("/")]
    if any(f.shape != filters[0].shape for f in filters):
        raise argparse.ArgumentTypeError(f"the filters in {text!r} have different shapes")
    return np.stack(filters)


def parse_values(text: str) -> np.ndarray:
    """'1' or '1,-2' -> a 1-D float64 array."""
    m = parse_matrix(text)
    if m.shape[0] != 1:
        raise argparse.ArgumentTypeError(f"expected values separated by commas, got {text!r}")
    return m[0]


def parse_pair(text: str):
    """'2' -> 2, '2,1' -> (2, 1)."""
    try:
        vals = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or two separated by a comma, got {text!r}") from None
    if len(vals) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected an integer or two separated by a comma, got {text!r}")
    return vals[0] if len(vals) == 1 else tuple(vals)


# ---------------------------------------------------------------------------------------
# The subcommand
# ---------------------------------------------------------------------------------------
def _run(args, build, **kwargs) -> int:
    where = f"convgrad explain {args.explain_command}"
    try:
        wt = build(**kwargs)
        if args.html:
            write_html(wt, args.html)
            n = sum(len(s.animations) for s in wt.steps)
            print(f"wrote {args.html}: {len(wt.steps)} sections, {n} animation players; "
                  f"check result: {'OK' if wt.passed else 'FAILED'}")
        else:
            sys.stdout.write(render_text(wt))
    except ExplainError as e:
        print(f"{where}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:                          # atomic_write_text's message names the page
        print(f"{where}: error: {e}", file=sys.stderr)
        return 1
    return 0 if wt.passed else 1


def _rows_as_1d(a, what):
    """A parsed matrix read as 1-D signals: (1, n) -> (n,), channels (C, 1, n) -> (C, n)."""
    if a is None:
        return None
    if a.shape[-2] != 1:
        raise ExplainError(f"--dims 1: {what} must be one row per channel (e.g. '1,2,3' or '1,2,3|4,5,6'), "
                           f"got {a.shape[-2]} rows")
    return a[..., 0, :]


def _cmd_conv(args) -> int:
    if args.dims != 2 or args.groups != 1:
        def build(**kw):
            if args.dims == 3 and any(v is not None for v in (args.input, args.kernel, args.grad)):
                raise ExplainError("--dims 3 draws its maps at random (--seed); --input/--kernel/--grad are 2-D")
            if args.bias is not None or args.activation or args.batch != 1:
                raise ExplainError("--bias, --activation and --batch are part of the 2-D walk-through "
                                   "(without --dims 1|3 and --groups)")
            if args.dims == 1:
                kw.update(x=_rows_as_1d(kw["x"], "--input"), w=_rows_as_1d(kw["w"], "--kernel"),
                          grad=_rows_as_1d(kw["grad"], "--grad"))
            return explain_conv_nd(**kw)
        return _run(args, build, dims=args.dims, x=args.input, w=args.kernel, grad=args.grad, stride=args.stride,
                    padding=args.padding, dilation=args.dilation, groups=args.groups, channels=args.channels,
                    filters=args.filters, seed=args.seed)
    return _run(args, explain_conv, x=args.input, w=args.kernel, grad=args.grad, stride=args.stride,
                padding=args.padding, dilation=args.dilation, channels=args.channels, filters=args.filters,
                seed=args.seed, bias=args.bias, activation=args.activation, batch=args.batch)


def _cmd_transposed(args) -> int:
    return _run(args, explain_transposed, x=args.input, w=args.kernel, grad=args.grad, stride=args.stride,
                padding=args.padding, seed=args.seed)


def _cmd_graph(args) -> int:
    from .graph import explain_graph
    try:
        sys.stdout.write(explain_graph(args.target, args.input_shape))
    except (ExplainError, ValueError, TypeError) as e:
        print(f"convgrad explain graph: error: {e}", file=sys.stderr)
        return 2
    return 0


def _shape(text: str) -> tuple:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 1,3,8,8, got {text!r}") from None
    if len(shape) < 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 1,3,8,8, got {text!r}")
    return shape


def _cmd_layer(args) -> int:
    from .run_layer import explain_run_layer, passed, render_html, render_text as layer_text
    from .render_html import write_page
    try:
        r = explain_run_layer(args.run, args.layer, args.image, args.window, args.target, args.invert)
        sys.stdout.write(layer_text(r))
        if args.html:
            write_page(render_html(r), args.html)
            print(f"wrote {args.html}")
    except (ExplainError, ValueError) as e:
        print(f"convgrad explain: error: {e}", file=sys.stderr)
        return 2
    except (OSError, ImportError) as e:
        print(f"convgrad explain: error: {e}", file=sys.stderr)
        return 1
    return 0 if passed(r) else 1


SUBCOMMANDS = ("conv", "transposed", "pool", "resample", "graph", "layer")


def normalise_argv(argv):
    """`explain RUN --layer NAME ...` is `explain layer RUN --layer NAME ...`."""
    argv = list(argv)
    if len(argv) > 1 and argv[0] == "explain" and argv[1] not in SUBCOMMANDS and not argv[1].startswith("-"):
        argv.insert(1, "layer")
    return argv


def _window(text: str) -> tuple:
    try:
        t = tuple(int(v) for v in text.split(","))
    except ValueError:
        t = ()
    if len(t) != 3:
        raise argparse.ArgumentTypeError(f"expected the output channel, row and column like 0,5,7, got {text!r}")
    return t


def _cmd_pool(args) -> int:
    return _run(args, explain_pool, x=args.input, kernel_size=args.kernel_size, stride=args.stride,
                mode=args.mode, grad=args.grad, seed=args.seed)


def _cmd_resample(args) -> int:
    return _run(args, explain_resample, x=args.input, w=args.kernel, grad=args.grad, stride=args.stride,
                seed=args.seed)


_MATRIX_HELP = ("matrices: entries separated by ',' and rows by ';', e.g. '2,-3,4;1,-1,2;-1,2,3' (quote it; "
                "write --input=-1,2;3,4 when it starts with '-')")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `explain` with its sub-commands conv / pool / resample to an argparse subparsers object."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("explain", help="walk through backprop in CNNs step by step, the lectures' way",
                              description=__doc__.split("\n\n")[0] + "\n\n" + _MATRIX_HELP, formatter_class=fmt)
    sub = p.add_subparsers(dest="explain_command", metavar="{conv,transposed,pool,resample,graph,layer}", required=True)

    def common(q, seed_help):
        q.add_argument("--seed", type=int, default=None, help=seed_help)
        q.add_argument("--html", metavar="FILE", default=None,
                       help="write the walk-through as one self-contained HTML page with step/back/play/pause players")

    c = sub.add_parser("conv", formatter_class=fmt, help="forward windows, 4-D Jacobians, chain rule, shortcuts",
                       description="Backprop through a convolution: the forward windows, the 4-D Jacobians dv/dw "
                       "and dv/dx as slices, the chain rule as a tensor contraction, and the shortcuts "
                       "dJ/dw = conv(x, dJ/dv) and dJ/dx = conv(pad(dJ/dv, f-1), rot180(w)), checked against "
                       "the fast path. With no options: the lectures' worked example.\n\n" + _MATRIX_HELP +
                       "; several input channels are separated by '|', filters of the kernel by '/'.")
    c.add_argument("--input", type=parse_maps, metavar="X", help="the input x: (H, W) or channels 'A|B'")
    c.add_argument("--kernel", type=parse_kernel, metavar="W",
                   help="the filter w: (f, f), or filters 'A|B/C|D' (filter / channel)")
    c.add_argument("--grad", type=parse_maps, metavar="DJDV", help="dJ/dv, the output's shape ('|' between filters)")
    c.add_argument("--stride", type=parse_pair, default=1, help="int or 'sh,sw' (default 1)")
    c.add_argument("--padding", type=parse_pair, default=0, help="zero padding, int or 'ph,pw' (default 0)")
    c.add_argument("--dilation", type=parse_pair, default=1, help="kernel dilation, int or 'dh,dw' (default 1)")
    c.add_argument("--bias", type=parse_values, default=None, metavar="B",
                   help="bias, one value per filter ('1' or '1,-2'): z = v + b, and dJ/db")
    c.add_argument("--activation", choices=("relu", "sigmoid", "tanh"), default=None,
                   help="activation after the bias: a = f(z), and dJ/dz = dJ/da * f'(z)")
    c.add_argument("--batch", type=int, default=1, metavar="M",
                   help="a batch of M samples (sample 0 is --input, the others random): gradients summed")
    c.add_argument("--dims", type=int, choices=(1, 2, 3), default=2,
                   help="spatial dimensions: 1 (signals, one row per channel), 2 (default) or 3 (random volumes)")
    c.add_argument("--groups", type=int, default=1,
                   help="grouped convolution; groups = channels = filters is the depthwise convolution")
    c.add_argument("--channels", type=int, default=None, help="input channels (random maps when not given)")
    c.add_argument("--filters", type=int, default=None, help="number of filters (random maps when not given)")
    common(c, "random small integers for every map not given (default: the worked example)")
    c.set_defaults(func=_cmd_conv)

    t = sub.add_parser("transposed", formatter_class=fmt, help="transposed convolution as the backward of a conv",
                       description="A transposed convolution is the input gradient of the convolution it transposes: "
                       "the scatter of scaled kernels, the same numbers as dJ/du of conv(u, w) with dJ/dv = x, and "
                       "its own backward, which is that strided convolution.\n\n" + _MATRIX_HELP)
    t.add_argument("--input", type=parse_matrix, metavar="X", help="the input (h, w) (default: random 2x2)")
    t.add_argument("--kernel", type=parse_matrix, metavar="W", help="the filter (default: random 3x3)")
    t.add_argument("--grad", type=parse_matrix, metavar="DJDY", help="dJ/dy, the output's shape")
    t.add_argument("--stride", type=parse_pair, default=2, help="int or 'sh,sw' (default 2)")
    t.add_argument("--padding", type=parse_pair, default=0, help="int or 'ph,pw' (default 0)")
    common(t, "seed of the random maps (default 0)")
    t.set_defaults(func=_cmd_transposed)

    g = sub.add_parser("graph", formatter_class=fmt, help="a model's recorded graph in the order backward runs it",
                       description="Run a model once in recorded mode (then a cross-entropy loss) and list the tape "
                       "from the loss backwards: which backward runs when, where its gradients go, which parameters "
                       "it fills, and where gradients add (a value read by several nodes).")
    g.add_argument("target", help="a run directory or checkpoint, a model name (lenet, cnn, resnet) or "
                   "'pkg.module:factory' returning a Module")
    g.add_argument("--input-shape", type=_shape, default=None, metavar="N,C,H,W",
                   help="the input shape (default: the run's, or 1,1,28,28)")
    g.set_defaults(func=_cmd_graph)

    lay = sub.add_parser("layer", formatter_class=fmt, help="one conv layer of a trained run on a real image",
                         description="convgrad explain RUN --layer NAME --image x.png: the layer's real input feature "
                         "map, its forward sum at a window, its backward from the real loss gradient (one weight's "
                         "gradient, the bias gradient, one input cell's gradient) by plain loops, checked against the "
                         "layer's fast path; --html adds heat maps of the maps.")
    lay.add_argument("run", help="a run directory or checkpoint")
    lay.add_argument("--layer", required=True, help="the name of a Conv2d of the run's model (e.g. 0 or 3 for lenet)")
    lay.add_argument("--image", required=True, help="a PNG/JPEG image")
    lay.add_argument("--window", type=_window, default=None, metavar="O,I,J",
                     help="output channel, row, column (default: the largest |dJ/dv|)")
    lay.add_argument("--target", type=int, default=None, help="loss at this class (default: the prediction)")
    lay.add_argument("--invert", action="store_true", help="invert grey levels (dark object on light background)")
    lay.add_argument("--html", metavar="FILE", default=None, help="also write a page with heat maps")
    lay.set_defaults(func=_cmd_layer)

    q = sub.add_parser("pool", formatter_class=fmt, help="max/mean pooling: routing and spreading the gradient",
                       description="Backprop through pooling: max routes the gradient to the arg-max of each window, "
                       "mean spreads 1/k^2 of it over the window; overlapping windows (stride < kernel) add up. "
                       "With no options: the lectures' max-pooling example.\n\n" + _MATRIX_HELP)
    q.add_argument("--input", type=parse_matrix, metavar="X", help="the input (H, W)")
    q.add_argument("--kernel-size", type=parse_pair, default=2, help="window size, int or 'kh,kw' (default 2)")
    q.add_argument("--stride", type=parse_pair, default=None, help="int or 'sh,sw' (default: the kernel size)")
    q.add_argument("--mode", choices=("max", "avg"), default="max", help="max or avg (mean) pooling")
    q.add_argument("--grad", type=parse_matrix, metavar="DJDY", help="dJ/dy, the output's shape")
    common(q, "random small integers for the maps not given")
    q.set_defaults(func=_cmd_pool)

    r = sub.add_parser("resample", formatter_class=fmt, help="stride as down-/up-sampling and their backward",
                       description="Down-sampling's backward is up-sampling by zero insertion and vice versa; a "
                       "strided convolution is a stride-1 convolution followed by down-sampling, and its gradient "
                       "is the zero-inserted dJ/dv pushed through the stride-1 backward.\n\n" + _MATRIX_HELP)
    r.add_argument("--input", type=parse_matrix, metavar="X", help="the input (H, W) (default: random 5x5)")
    r.add_argument("--kernel", type=parse_matrix, metavar="W", help="the filter (default: random 3x3)")
    r.add_argument("--grad", type=parse_matrix, metavar="DJDV", help="dJ/dv of the strided convolution")
    r.add_argument("--stride", type=parse_pair, default=2, help="int or 'sh,sw' (default 2)")
    common(r, "seed of the random maps (default 0)")
    r.set_defaults(func=_cmd_resample)
    return p


def main(argv=None) -> int:
    """Stand-alone entry point (`python -m convgrad.explain conv ...`); argparse errors exit 2."""
    parser = argparse.ArgumentParser(prog="convgrad")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["explain", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)
