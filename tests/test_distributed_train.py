"""`convgrad train` under `mpiexec -n 2`: the same metrics as one process over the same global
batches (float32: up to the order of additions), a rank killed mid-run ends the job with a clear
message on rank 0 and an intact checkpoint, and --resume then gives the uninterrupted run's metrics."""
import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import make_dataset
from test_distributed import mpi_command, mpi_env, needs_mpi, run_mpi

from convgrad import checkpoint
from convgrad.cli import main

CONVGRAD = [sys.executable, "-m", "convgrad.cli"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp("data")), n_train=128, n_test=32)


def _args(data_root, out, *extra, model="cnn", epochs=2):
    return ["train", "--data-root", data_root, "--model", model, "--batch-size", "32", "--lr", "0.05",
            "--seed", "3", "--epochs", str(epochs), "--augment", "crop-flip", "--scheduler", "onecycle",
            "--threads", "1", "--out", out, "--no-progress", "--no-plots", *extra]


def _metrics(out):
    with open(os.path.join(out, "metrics.csv")) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def _wait_for(path: str, seconds: float = 120) -> None:
    """Poll until the running job has written path (or the time is up)."""
    deadline = time.time() + seconds
    while time.time() < deadline and not os.path.exists(path):
        time.sleep(0.02)


def _rank_pid(rank: int, marker: str):
    """The pid of the MPI rank whose command line contains marker (from /proc), or None."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if marker in cmdline and f"OMPI_COMM_WORLD_RANK={rank}" in environ:
            return int(pid)
    return None


@needs_mpi
def test_two_ranks_give_the_metrics_of_one_process(data_root, tmp_path):
    """lenet on 2 ranks, the global batch split: one process's numbers up to float32 rounding."""
    two, one = str(tmp_path / "two"), str(tmp_path / "one")
    proc = run_mpi(2, *CONVGRAD, *_args(data_root, two, model="lenet"))
    assert proc.stdout.count("epoch 2/2:") == 1, proc.stdout          # rank 0 alone prints
    assert main(_args(data_root, one, model="lenet")) == 0
    ours, single = _metrics(two), _metrics(one)
    assert [r["epoch"] for r in ours] == [r["epoch"] for r in single] == ["1", "2"]
    for a, b in zip(ours, single):
        for column in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert (a[column] == "") == (b[column] == ""), (column, a, b)     # the test set: last epoch only
            if b[column] == "":
                continue
            assert abs(float(a[column]) - float(b[column])) <= 1e-4 * max(1.0, abs(float(b[column]))), (column, a, b)


@needs_mpi
def test_a_dying_rank_ends_the_job_and_resume_gives_the_uninterrupted_metrics(data_root, tmp_path):
    """cnn (SyncBatchNorm, dropout, augmentation, per-step schedule) on 2 ranks: rank 1 is killed
    in epoch 2; rank 0 says so and which checkpoint is intact; --resume ends as the straight run."""
    straight = str(tmp_path / "straight")
    run_mpi(2, *CONVGRAD, *_args(data_root, straight))
    expected = _metrics(straight)
    assert [r["epoch"] for r in expected] == ["1", "2"]

    killed = str(tmp_path / "killed")
    job = subprocess.Popen(mpi_command(2, *CONVGRAD, *_args(data_root, killed)), env=mpi_env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(os.path.join(killed, "metrics.csv"))
    victim = _rank_pid(1, killed)
    assert victim is not None, "rank 1 not found"
    os.kill(victim, signal.SIGKILL)
    out, err = job.communicate(timeout=60)
    assert job.returncode != 0
    done = len(_metrics(killed))
    assert done == 1, "the run finished epoch 2 before rank 1 was killed; make the dataset larger"
    assert "mpiexec is ending the job (SIGTERM) during epoch 2" in err and "another rank died" in err, err
    assert f"The checkpoint {os.path.join(killed, 'checkpoint.npz')} (after epoch 1) is intact" in err, err
    assert "Traceback" not in err, err
    state = checkpoint.load(os.path.join(killed, "checkpoint.npz"))     # loads: not half-written
    assert int(state["epoch"]) == 1
    assert not [f for f in os.listdir(killed) if f.startswith(".tmp-")]

    run_mpi(2, *CONVGRAD, *_args(data_root, killed, "--resume"))
    assert _metrics(killed) == expected


def test_without_mpi4py_the_command_says_what_to_install(data_root, tmp_path, monkeypatch, capsys):
    from convgrad.distributed import comm
    monkeypatch.setitem(sys.modules, "mpi4py", None)        # `from mpi4py import MPI` fails as if not installed
    monkeypatch.setattr(comm, "_comm", None)
    assert main(_args(data_root, str(tmp_path / "run"), "--distributed")) == 2
    err = capsys.readouterr().err
    assert "pip install 'convgrad[distributed]'" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "run")


def test_mpi_launch_is_detected_from_the_environment():
    from convgrad.distributed import launched_by_mpi
    assert launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2"}) and launched_by_mpi({"PMI_SIZE": "4"})
    assert not launched_by_mpi({"PATH": "/usr/bin"})


@needs_mpi
def test_a_batch_too_small_to_share_is_one_clear_error(data_root, tmp_path):
    proc = run_mpi(2, *CONVGRAD, *_args(data_root, str(tmp_path / "run"), "--limit-train", "97", model="lenet"),
                   check=False)
    assert proc.returncode != 0
    assert "with 2 ranks every batch needs at least 2 images, but a training batch has 1" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def _steps(out):
    with open(os.path.join(out, "steps.csv")) as f:
        return [{k: v for k, v in row.items() if k != "images_per_s"} for row in csv.DictReader(f)]


@needs_mpi
def test_ctrl_c_on_rank_0_stops_every_rank_at_one_step_and_resume_continues_mid_epoch(data_root, tmp_path):
    """SIGINT reaches rank 0 alone: rank 0 broadcasts the stop, every rank stops after the same
    step, rank 0 writes the checkpoint (mid-epoch, --checkpoint-every also decided on rank 0), and
    --resume ends as the straight run. Rank 1 claims and writes nothing: one run directory each."""
    extra = ("--checkpoint-every", "3")
    straight = str(tmp_path / "straight")
    run_mpi(2, *CONVGRAD, *_args(data_root, straight, *extra, model="lenet", epochs=30))
    stopped = str(tmp_path / "stopped")
    job = subprocess.Popen(mpi_command(2, *CONVGRAD, *_args(data_root, stopped, *extra, model="lenet",
                                                             epochs=30)),
                           env=mpi_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(os.path.join(stopped, "steps.csv"))
    leader = _rank_pid(0, stopped)
    assert leader is not None, "rank 0 not found"
    os.kill(leader, signal.SIGINT)
    out, err = job.communicate(timeout=60)
    assert job.returncode != 0, out
    assert "interrupted by SIGINT at step" in err and "Traceback" not in err, err
    state = checkpoint.load(os.path.join(stopped, "checkpoint.npz"))
    done = int(state["step"])
    assert 0 < done < 120, "the run finished before the signal; make it longer"
    assert len(_steps(stopped)) == done
    assert sorted(os.listdir(tmp_path)) == ["stopped", "straight"]      # no stopped-2: rank 1 claimed nothing
    run_mpi(2, *CONVGRAD, *_args(data_root, stopped, *extra, "--resume", model="lenet", epochs=30))
    assert _metrics(stopped) == _metrics(straight)
    assert _steps(stopped) == _steps(straight)


TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_models.py")


@needs_mpi
def test_a_factory_model_trains_on_two_ranks_as_in_one_process(data_root, tmp_path):
    """--model FILE.py:FACTORY (BatchNorm -> SyncBatchNorm, dropout) on 2 ranks: one process's metrics."""
    two, one = str(tmp_path / "two"), str(tmp_path / "one")
    run_mpi(2, *CONVGRAD, *_args(data_root, two, model=f"{TINY}:tiny_cnn"))
    assert main(_args(data_root, one, model=f"{TINY}:tiny_cnn")) == 0
    ours, single = _metrics(two), _metrics(one)
    assert [r["epoch"] for r in ours] == [r["epoch"] for r in single] == ["1", "2"]
    for a, b in zip(ours, single):
        for column in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            assert (a[column] == "") == (b[column] == ""), (column, a, b)
            if b[column] != "":
                assert abs(float(a[column]) - float(b[column])) <= 1e-4 * max(1.0, abs(float(b[column]))), \
                    (column, a, b)


@needs_mpi
def test_a_forward_only_model_is_refused_under_mpiexec_with_one_clear_error(data_root, tmp_path):
    out = str(tmp_path / "run")
    proc = run_mpi(2, *CONVGRAD, *_args(data_root, out, model=f"{TINY}:forward_only"), check=False)
    assert proc.returncode != 0
    assert "forward-only (recorded mode), which is not supported across ranks yet" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(out)


@needs_mpi
def test_a_validation_split_best_model_and_plots_on_two_ranks_give_one_processes_results(data_root, tmp_path):
    """--val-split: every rank joins the sharded validation and the best model's test evaluation
    (best epoch before the last); rank 0 writes best.npz, results.json and the plots."""
    import json
    two, one = str(tmp_path / "two"), str(tmp_path / "one")
    args = ["--val-split", "0.25", "--lr", "0.5"]
    with_plots = [a for a in _args(data_root, two, *args, model="lenet", epochs=4) if a != "--no-plots"]
    run_mpi(2, *CONVGRAD, *with_plots)
    assert main(_args(data_root, one, *args, model="lenet", epochs=4)) == 0
    with open(os.path.join(two, "results.json")) as f:
        ours = json.load(f)
    with open(os.path.join(one, "results.json")) as f:
        single = json.load(f)
    assert ours["best"]["epoch"] == single["best"]["epoch"] < 4, (ours, single)    # the best-model evaluation ran
    for which in ("last", "best"):
        for key, value in single[which].items():
            assert abs(ours[which][key] - value) <= 1e-4 * max(1.0, abs(value)), (which, key, ours, single)
    assert os.path.isfile(os.path.join(two, "best.npz"))
    assert sorted(os.listdir(tmp_path)) == ["one", "two"]
