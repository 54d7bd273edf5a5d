"""convgrad.distributed on real MPI: the tests start `mpiexec -n P` (Open MPI from the `test`
extra) and compare P ranks with one process over the same global batches (float64)."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import rel
from distributed_case import THREADS_BATCH, build, data, global_batches, sgd, whole_batches

from convgrad import nn
from convgrad.distributed import DistributedSampler

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH or beside the Python executable "
                                                       "(pip install 'convgrad[distributed]')")


def mpi_command(n: int, *argv) -> list:
    """mpiexec -n n argv...; Open MPI is told to allow root and more ranks than cores."""
    return [MPIEXEC, "-n", str(n), "--oversubscribe", *argv]


def mpi_env() -> dict:
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def run_mpi(n: int, *argv, timeout=120, check=True, **kwargs):
    proc = subprocess.run(mpi_command(n, *argv), env=mpi_env(), capture_output=True, text=True, timeout=timeout,
                          **kwargs)
    if check:
        assert proc.returncode == 0, f"mpiexec failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def single_process(case: str, world: int) -> dict:
    """One process, the same global batches, BatchNorm over the whole batch, one dropout stream."""
    model = build(case in ("syncbn", "global"), dropout=case == "global")
    opt, loss_fn = sgd(model), nn.CrossEntropyLoss()
    x, y = data()
    batches = {"global": whole_batches(), "threads": whole_batches(THREADS_BATCH)}.get(case) or global_batches(world)
    for idx in batches:
        model.zero_grad()
        loss_fn(model(x[idx]), y[idx])
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
    return model.state_dict()


WORLDS = {2: ["--bucket-mb", "0.001"], 3: ["--overlap", "0"]}   # 2 ranks: 1 kB buckets started during backward


@pytest.fixture(scope="module", params=sorted(WORLDS))
def trained(request, tmp_path_factory):
    """(world, directory of CASE.npz): every case of mpi_worker.py trained on `world` ranks in one launch."""
    if MPIEXEC is None:
        pytest.skip("no mpiexec on PATH or beside the Python executable (pip install 'convgrad[distributed]')")
    world, out = request.param, tmp_path_factory.mktemp(f"ranks{request.param}")
    run_mpi(world, sys.executable, os.path.join(HERE, "mpi_worker.py"), str(out), *WORLDS[world])
    return world, out


@pytest.mark.parametrize("case", ["ddp", "syncbn", "global", "recorded", "threads"])
def test_ranks_train_as_one_process_over_the_global_batch(trained, case):
    world, out = trained
    expected = single_process(case, world)
    got = np.load(os.path.join(out, f"{case}.npz"))
    assert int(got["stats_steps"]) == 3
    if case == "threads":
        assert int(got["split_parts"]) == 2
    if world == 2:                  # 1 kB buckets: several transfers (started during backward but "recorded")
        assert int(got["stats_buckets"]) > 3
    start = build(case in ("syncbn", "global"), dropout=case == "global").state_dict()
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            assert int(got[key]) == int(value) == 3
            continue
        assert not np.allclose(value, start[key]), f"{key} did not change: the test would prove nothing"
        assert rel(got[key], value) <= 1e-10, (key, rel(got[key], value))


@pytest.mark.parametrize("n, world, drop_last", [(10, 1, False), (10, 3, False), (11, 4, False), (5, 8, False),
                                                 (40, 3, False), (7, 7, False), (10, 3, True), (11, 4, True),
                                                 (40, 3, True)])
def test_sampler_shards_cover_every_sample_once_per_epoch(n, world, drop_last):
    for epoch in range(3):
        shards = []
        for rank in range(world):
            s = DistributedSampler(n, num_replicas=world, rank=rank, seed=5, drop_last=drop_last)
            s.set_epoch(epoch)
            shards.append(s.indices())
            assert len(shards[-1]) == len(s)
        assert len({len(sh) for sh in shards}) == 1           # equal shares
        everything = np.concatenate(shards)
        counts = np.bincount(everything, minlength=n)
        if drop_last:
            assert len(everything) == n // world * world and counts.max() == 1
        else:
            padding = -n % world
            assert counts.min() == 1 and counts.sum() == n + padding   # every sample, padded as torch
            assert np.sum(counts == 2) == padding
    # another epoch, another permutation (the same one on every rank)
    first = DistributedSampler(40, 2, 0, seed=5)
    again = DistributedSampler(40, 2, 0, seed=5)
    first.set_epoch(1)
    assert not np.array_equal(first.indices(), again.indices())
    again.set_epoch(1)
    assert np.array_equal(first.indices(), again.indices())


@pytest.mark.parametrize("n, world, drop_last", [(10, 3, False), (11, 4, False), (5, 8, False), (12, 4, False),
                                                 (10, 3, True), (11, 4, True), (12, 4, True)])
def test_sampler_unshuffled_matches_torch(torch, n, world, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler
    for rank in range(world):
        ours = DistributedSampler(n, num_replicas=world, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), num_replicas=world, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank must be an integer in \\[0, 1\\], got 2"):
        DistributedSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1, got 0"):
        DistributedSampler(0, num_replicas=2, rank=0)


def test_convert_sync_batchnorm_keeps_order_parameters_and_buffers():
    from convgrad.distributed import SyncBatchNorm, convert_sync_batchnorm
    model = build(True)
    params, state = list(model.parameters()), model.state_dict()
    names = [name for name, _ in model.named_modules()]
    converted = convert_sync_batchnorm(model)
    assert converted is model and [name for name, _ in model.named_modules()] == names
    assert [type(m).__name__ for m in model] == ["Conv2d", "SyncBatchNorm", "ReLU", "MaxPool2d", "Conv2d", "ReLU",
                                                 "Flatten", "Linear", "SyncBatchNorm", "ReLU", "Linear"]
    assert all(a is b for a, b in zip(model.parameters(), params)) and len(list(model.parameters())) == len(params)
    assert list(model.state_dict()) == list(state)
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in state.items())
    bn = nn.BatchNorm2d(3, momentum=0.3, eps=1e-3)
    sync = convert_sync_batchnorm(bn)
    assert isinstance(sync, SyncBatchNorm) and (sync.momentum, sync.eps) == (0.3, 1e-3) and sync.weight is bn.weight
