"""`convgrad export RUN --format onnx|safetensors`: a trained run's model for use outside convgrad::

    onnx          RUN/model.onnx: the model (input: normalised images (N, C, H, W), output: logits);
                  its metadata holds the classes and the normalisation mean/std
    safetensors   RUN/model.safetensors: the weights under torch's names (convgrad.save)

RUN is a run directory or a checkpoint.npz. --out chooses another file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ._common import guarded, load_model, run_dir

FORMATS = {"onnx": "model.onnx", "safetensors": "model.safetensors"}


def _cmd(args) -> int:
    try:
        __import__("safetensors" if args.format == "safetensors" else "onnx")
    except ImportError:
        extra = "safetensors" if args.format == "safetensors" else "onnx"
        print(f"convgrad export: error: --format {args.format} needs the {extra} package: "
              f"pip install 'convgrad[{extra}]'", file=sys.stderr)
        return 2
    model, state = load_model(args.run)
    out = args.out or os.path.join(run_dir(args.run), FORMATS[args.format])
    if args.format == "safetensors":
        from ..weights import save
        save(model.state_dict(), out)
    else:
        from ..onnx import export
        mcfg = state["model_config"]
        dtype = next(model.parameters()).dtype
        example = np.zeros((1, mcfg["in_channels"], mcfg["image_size"], mcfg["image_size"]), dtype)
        metadata = {"classes": json.dumps(state.get("classes", [])),
                    "normalization": json.dumps(state.get("normalization", {})),
                    "model_config": json.dumps(mcfg)}
        export(model, example, out, opset=args.opset, metadata=metadata)
    print(f"wrote {out}")
    return 0


def _opset_rule(opset: int):
    from ..onnx._proto import OPSETS
    return None if opset in OPSETS else f"must be in {OPSETS.start}..{OPSETS.stop - 1}, got {opset}"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `export` to an argparse subparsers object."""
    p = subparsers.add_parser("export", help="a run's model as ONNX or its weights as safetensors",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a run directory or checkpoint.npz")
    p.add_argument("--format", choices=sorted(FORMATS), default="onnx")
    p.add_argument("--out", default=None, help="output file (default: RUN/model.onnx or RUN/model.safetensors)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17..21)")
    from ..cli_args import non_empty, run_path
    rules = {"run": run_path, "out": non_empty, "opset": _opset_rule}
    p.set_defaults(func=lambda a: guarded("export", _cmd, a, rules, positional=("run",)))
    return p


def main(argv=None) -> int:
    """`python -m convgrad.tools.export RUN ...` without the main CLI."""
    from . import run_standalone
    return run_standalone(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
