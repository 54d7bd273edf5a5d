"""convgrad.save / convgrad.load: .safetensors both ways with torch for every built-in model
(torch's own safetensors.torch reader and writer, load_state_dict strict), .npz, and bad files."""
import os

import numpy as np
import pytest

from conftest import rel
from torch_twins import randomise_statistics, torch_model

import convgrad
from convgrad import models
from convgrad.checkpoint import CheckpointError

safetensors_torch = pytest.importorskip("safetensors.torch")
TOL = 1e-10


def _randomised_convgrad(name, seed=0):
    """A built-in model with BatchNorm parameters and statistics away from their start values."""
    model = models.build(name, generator=seed)
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for key, value in state.items():
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
        elif key.endswith("running_mean") or (value.ndim == 1 and "bn" in key):
            state[key] = (rng.standard_normal(value.shape) * 0.3).astype(value.dtype)
        elif key.endswith("num_batches_tracked"):
            state[key] = np.array(5, np.int64)
    model.load_state_dict(state)
    return model


def _outputs_agree(ours, theirs, torch, seed=1):
    ours.double().eval()
    theirs.double().eval()
    x = np.random.default_rng(seed).standard_normal((3, 1, 28, 28))
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    return rel(ours(x), expected)


@pytest.mark.parametrize("name", models.MODELS)
def test_convgrad_to_torch(name, torch, tmp_path):
    ours = _randomised_convgrad(name)
    path = tmp_path / "w.safetensors"
    convgrad.save(ours.state_dict(), path)
    theirs = torch_model(torch, name)
    theirs.load_state_dict(safetensors_torch.load_file(str(path)), strict=True)
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ours.state_dict()[key], err_msg=key)
        assert value.numpy().dtype == ours.state_dict()[key].dtype, key
        assert value.numpy().shape == ours.state_dict()[key].shape, key
    assert _outputs_agree(ours, theirs, torch) <= TOL


@pytest.mark.parametrize("name", models.MODELS)
def test_torch_to_convgrad(name, torch, tmp_path):
    torch.manual_seed(0)
    theirs = randomise_statistics(torch_model(torch, name), torch)
    path = tmp_path / "w.safetensors"
    safetensors_torch.save_file(theirs.state_dict(), str(path))
    ours = models.build(name, generator=3)
    ours.load_state_dict(convgrad.load(path), strict=True)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, theirs.state_dict()[key].numpy(), err_msg=key)
    assert _outputs_agree(ours, theirs, torch) <= TOL


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_round_trip_keeps_names_order_dtypes(ext, tmp_path):
    model = _randomised_convgrad("resnet")
    path = tmp_path / f"w{ext}"
    convgrad.save(model.state_dict(), path)
    loaded = convgrad.load(path)
    state = model.state_dict()
    assert sorted(loaded) == sorted(state)
    for key in state:
        assert loaded[key].dtype == state[key].dtype and loaded[key].shape == state[key].shape, key
        np.testing.assert_array_equal(loaded[key], state[key], err_msg=key)
    assert [f for f in os.listdir(tmp_path)] == [f"w{ext}"]       # no temporary file left behind


def test_parameters_are_accepted(tmp_path):
    model = models.lenet(generator=0)
    convgrad.save(dict(model.named_parameters()), tmp_path / "p.safetensors")
    loaded = convgrad.load(tmp_path / "p.safetensors")
    np.testing.assert_array_equal(loaded["0.weight"], model[0].weight.data)


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_truncated_file_is_named(ext, tmp_path):
    path = tmp_path / f"w{ext}"
    convgrad.save(models.lenet(generator=0).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"w{ext}.*truncated or of another format"):
        convgrad.load(path)


@pytest.mark.parametrize("ext", [".safetensors", ".npz"])
def test_foreign_file_is_named(ext, tmp_path):
    path = tmp_path / f"notes{ext}"
    path.write_text("these are not weights, just a text file of some length " * 4)
    with pytest.raises(CheckpointError, match=f"notes{ext}"):
        convgrad.load(path)


def test_single_npy_array_is_refused(tmp_path):
    path = tmp_path / "one.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(CheckpointError, match="one.npz.*single .npy array"):
        convgrad.load(path)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(CheckpointError, match="absent.safetensors.*does not exist"):
        convgrad.load(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match=r"w\.pt.*\.safetensors or \.npz"):
        convgrad.save({"a": np.zeros(2)}, tmp_path / "w.pt")


def test_shape_mismatch_on_load_names_the_tensor(tmp_path):
    convgrad.save(models.lenet(generator=0, num_classes=5).state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match=r"9.weight expects shape \(10, 128\).*\(5, 128\)"):
        models.lenet(generator=0).load_state_dict(convgrad.load(tmp_path / "w.safetensors"))
