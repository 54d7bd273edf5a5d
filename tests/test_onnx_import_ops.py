"""convgrad.onnx.load of operator variants torch and other exporters write: asymmetric and
auto_pad padding of pools and convolutions, ConvTranspose's output_shape, BatchNormalization in
training mode, Gather on float data, nearest Resize by non-integer scales or sizes. Each is a
one-node graph built with onnx.helper, run in onnxruntime (the oracle, float32 <= 1e-5) and in
convgrad, then gradient-checked in float64. What stays unsupported names the op and attribute."""
import numpy as np
import pytest

from conftest import rel

import convgrad
from convgrad.onnx import OnnxError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
h = onnx.helper
TOL32 = 1e-5


def one_node(tmp_path, op, x_shape, attrs=None, inputs=(), name="node", unused_outputs=()):
    """A graph x -> op(x, *inputs) -> y saved to tmp_path; inputs: arrays (initializers) or "" (left
    out); unused_outputs: further outputs of the node that nothing reads."""
    names, inits = ["x"], []
    for i, value in enumerate(inputs):
        if isinstance(value, str):
            names.append(value)
            continue
        names.append(f"in{i}")
        inits.append(onnx.numpy_helper.from_array(np.asarray(value), f"in{i}"))
    node = h.make_node(op, names, ["y", *unused_outputs], name=name, **(attrs or {}))
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", *x_shape[1:]])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=10)
    model = onnx.shape_inference.infer_shapes(model)
    path = tmp_path / f"{op}.onnx"
    onnx.save(model, str(path))
    return path


def check(path, x_shape, seed=0, gradcheck=True):
    """convgrad's output equals onnxruntime's (float32); the float64 model passes gradcheck."""
    x = np.random.default_rng(seed).standard_normal(x_shape).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    model = convgrad.onnx.load(path).eval()
    got = model(x)
    assert got.shape == expected.shape
    assert rel(got, expected) <= TOL32
    if gradcheck:
        report = convgrad.gradcheck(model, x[:2].astype(np.float64))
        assert report.passed, str(report)
    return model


W = np.random.default_rng(5).standard_normal((3, 2, 3, 3)).astype(np.float32)     # ConvTranspose: C_in 3 -> 2
B = np.array([0.5, -0.25], np.float32)

CASES = [
    ("max pool asymmetric pads", "MaxPool", (2, 3, 7, 8), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0]),
     ()),
    ("max pool SAME_UPPER", "MaxPool", (2, 3, 7, 8), dict(kernel_shape=[3, 2], strides=[2, 3], auto_pad="SAME_UPPER"),
     ()),
    ("avg pool asymmetric, pad not counted", "AveragePool", (2, 3, 7, 8),
     dict(kernel_shape=[3, 3], strides=[2, 1], pads=[2, 0, 0, 1]), ()),
    ("avg pool asymmetric, pad counted", "AveragePool", (2, 3, 7, 8),
     dict(kernel_shape=[3, 3], strides=[2, 1], pads=[1, 0, 0, 2], count_include_pad=1), ()),
    ("avg pool SAME_LOWER", "AveragePool", (2, 3, 6, 7),
     dict(kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_LOWER"), ()),
    ("conv SAME_UPPER", "Conv", (2, 3, 7, 8), dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
     (np.transpose(W, (1, 0, 2, 3)).copy(), B)),
    ("conv transpose output_shape smaller", "ConvTranspose", (2, 3, 4, 5), dict(strides=[2, 2], output_shape=[8, 10]),
     (W, B)),
    ("conv transpose output_shape, no bias", "ConvTranspose", (2, 3, 4, 5), dict(strides=[2, 3], output_shape=[7, 13]),
     (W,)),
    ("conv transpose output_shape SAME_UPPER", "ConvTranspose", (2, 3, 4, 5),
     dict(strides=[2, 2], output_shape=[8, 9], auto_pad="SAME_UPPER"), (W, B)),
    ("conv transpose output_shape and output_padding", "ConvTranspose", (2, 3, 4, 5),
     dict(strides=[2, 2], output_padding=[1, 1], output_shape=[9, 10]), (W, B)),
    ("conv transpose asymmetric pads", "ConvTranspose", (2, 3, 4, 5), dict(strides=[2, 1], pads=[1, 0, 0, 2]), (W, B)),
    ("conv transpose SAME_LOWER", "ConvTranspose", (2, 3, 4, 5), dict(strides=[2, 2], auto_pad="SAME_LOWER"), (W, B)),
    ("gather on float data", "Gather", (2, 5, 3), dict(axis=1), (np.array([[0, 4], [-1, 0]], np.int64),)),
    ("gather one index, last axis", "Gather", (2, 5, 3), dict(axis=-1), (np.array(2, np.int64),)),
    ("resize by 1.5 and 0.5", "Resize", (2, 2, 5, 6), dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                                             nearest_mode="floor"),
     ("", np.array([1, 1, 1.5, 0.5], np.float32))),
    ("resize to sizes", "Resize", (2, 2, 5, 6), dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                                                     nearest_mode="floor"),
     ("", "", np.array([2, 2, 7, 13], np.int64))),
]


@pytest.mark.parametrize("op, shape, attrs, inputs", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_variant_matches_onnxruntime(op, shape, attrs, inputs, tmp_path):
    check(one_node(tmp_path, op, shape, attrs, inputs), shape)


def test_batch_norm_training_mode(tmp_path):
    """training_mode=1: batch statistics even in eval(); the stored statistics are read, not changed."""
    c = 3
    rng = np.random.default_rng(2)
    scale, bias = rng.uniform(0.5, 1.5, c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    mean, var = rng.standard_normal(c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
    path = one_node(tmp_path, "BatchNormalization", (4, c, 3, 3), dict(training_mode=1, epsilon=1e-3),
                    (scale, bias, mean, var),
                    unused_outputs=("new_mean", "new_var"))
    model = check(path, (4, c, 3, 3), gradcheck=False)
    x = np.random.default_rng(0).standard_normal((4, c, 3, 3)).astype(np.float32)
    batch_mean, batch_var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    by_hand = (x - batch_mean[:, None, None]) / np.sqrt(batch_var[:, None, None] + 1e-3) * scale[:, None, None] \
        + bias[:, None, None]
    assert rel(model(x), by_hand) <= TOL32
    state = model.state_dict()
    assert np.array_equal(state["in2"], mean) and np.array_equal(state["in3"], var)
    report = convgrad.gradcheck(model, x[:2].astype(np.float64))
    assert report.passed, str(report)


@pytest.mark.parametrize("op, attrs, inputs, message", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1), (),
     r"node 'node' \(MaxPool\): ceil_mode=1 with asymmetric pads \[\(0, 1\), \(0, 1\)\] is not supported"),
    ("Resize", dict(mode="linear"), ("", np.array([1, 1, 2, 2], np.float32)),
     r"node 'node' \(Resize\): attribute mode='linear' is not supported \(supported: \('nearest',\)\)"),
    ("Resize", dict(mode="nearest", coordinate_transformation_mode="half_pixel"),
     ("", np.array([1, 1, 2, 2], np.float32)),
     r"node 'node' \(Resize\): attribute coordinate_transformation_mode='half_pixel' is not supported"),
    ("Resize", dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
     ("", np.array([1, 2, 1, 1], np.float32)), r"node 'node' \(Resize\): only the spatial axes can be resized"),
])
def test_unsupported_variant_names_op_and_attribute(op, attrs, inputs, message, tmp_path):
    path = one_node(tmp_path, op, (2, 2, 6, 6), attrs, inputs)
    with pytest.raises(OnnxError, match=message):
        convgrad.onnx.load(path)(np.zeros((2, 2, 6, 6), np.float32))
