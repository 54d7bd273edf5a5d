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


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `export` to an argparse subparsers object."""
    p = subparsers.add_parser("export", help="a run's model as ONNX or its weights as safetensors",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a run directory or checkpoint.npz")
    p.add_argument("--format", choices=sorted(FORMATS), default="onnx")
    p.add_argument("--out", default=None, help="output file (default: RUN/model.onnx or RUN/model.safetensors)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (17..21)")
    p.set_defaults(func=lambda a: guarded("export", _cmd, a))
    return p


def main(argv=None) -> int:
    """`python -m convgrad.tools.export RUN ...` without the main CLI."""
    from . import run_standalone
    return run_standalone(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
