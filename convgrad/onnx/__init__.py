"""ONNX in and out (the optional extra `pip install 'convgrad[onnx]'`).

    convgrad.onnx.export(model, example_input, "model.onnx", opset=17)   # run it in onnxruntime
    model = convgrad.onnx.load("model.onnx")      # a trainable convgrad Module from an ONNX graph

    export.py           the module tree walked on an example input; containers wired
    export_layers.py    each layer as ONNX operators
    export_recorded.py  any other Module (forward-only or custom): its recorded graph translated
    load.py             OnnxModel: an ONNX graph as a Module (forward, backward, state_dict)
    import_ops.py       each ONNX operator as a forward/backward pair on convgrad's functional ops
    import_spatial.py   the spatial ones (Conv, ConvTranspose, pools, Resize, Pad) and ONNX's padding rules

The command `convgrad export RUN --format onnx` is convgrad/tools/export.py. onnxruntime is
not needed by either direction; the tests use it as the oracle.
"""
from ._proto import DEFAULT_OPSET, OnnxError
from .export import export, to_model_proto
from .load import OnnxModel, load
