"""What the ONNX exporter and importer share: the onnx package (an optional extra), the
versions written, and the one error type for files, ops and tensors that do not fit."""
from __future__ import annotations

IR_VERSION = 10          # onnxruntime 1.31 reads IR versions up to 10
DEFAULT_OPSET = 17       # LayerNormalization needs 17
OPSETS = range(17, 22)   # the opsets whose operators export.py writes unchanged


class OnnxError(ValueError):
    """An ONNX file, operator or tensor convgrad cannot read or write; the message names it."""


def onnx_package():
    """The onnx package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("convgrad.onnx needs the onnx package: pip install 'convgrad[onnx]'") from exc
    return onnx
