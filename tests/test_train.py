"""The training command end to end on a small generated Fashion-MNIST-shaped dataset: metrics,
steps, checkpoints, plots, determinism, interrupt (SIGINT, SIGTERM, SIGKILL) and resume
mid-epoch, run directories never replaced, validation and early stopping, wrong checkpoints."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import make_dataset

from convgrad import checkpoint, models, nn, optim, rundir
from convgrad.cli import main
from convgrad.data import DataLoader
from convgrad.train import METRIC_COLUMNS, Trainer, TrainingInterrupted

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_models.py:tiny_cnn")


@pytest.fixture
def data_root(tmp_path):
    return make_dataset(str(tmp_path / "data"))


def _read(path):
    return rundir.read_csv(path)


def _train_args(data_root, out, *extra):
    return ["train", "--data-root", data_root, "--model", "lenet", "--batch-size", "32", "--lr", "0.05",
            "--seed", "3", "--out", out, "--no-progress", *extra]


def _without(rows, *keys):
    return [{k: v for k, v in r.items() if k not in keys} for r in rows]


def test_train_writes_metrics_steps_checkpoint_config_and_plots(data_root, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(_train_args(data_root, out, "--epochs", "2", "--batch-size", "16", "--limit-train", "304")) == 0
    rows = _read(os.path.join(out, "metrics.csv"))
    assert list(rows[0]) == list(METRIC_COLUMNS) and [r["epoch"] for r in rows] == ["1", "2"]
    assert rows[0]["test_accuracy"] == "" and float(rows[-1]["test_accuracy"]) > 0.5   # test once, at the end
    steps = _read(os.path.join(out, "steps.csv"))
    assert list(steps[0]) == list(rundir.STEP_COLUMNS)
    assert [int(r["step"]) for r in steps] == list(range(1, 2 * 19 + 1))             # 600 images / 32 = 19 steps
    assert {r["epoch"] for r in steps} == {"1", "2"} and all(float(r["images_per_s"]) > 0 for r in steps)
    for name in ("checkpoint.npz", "config.json", "curves.png", "confusion_matrix.png", "filters.png",
                 "feature_maps.png", "results.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["model_config"]["name"] == "lenet" and config["data"]["data"] == "fashion-mnist"
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]
    printed = capsys.readouterr().out
    assert "test accuracy:" in printed and "thread" in printed.splitlines()[0]


def test_same_seed_same_metrics(data_root, tmp_path):
    runs = []
    for name in ("a", "b"):
        out = str(tmp_path / name)
        main(_train_args(data_root, out, "--epochs", "2", "--no-plots", "--model", TINY, "--limit-train", "300"))
        runs.append(_without(_read(os.path.join(out, "metrics.csv")), "seconds"))
    assert runs[0] == runs[1]


# ---- interrupted runs -----------------------------------------------------------------------------
def _popen(args):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, "-m", "convgrad.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_steps(proc, path, n, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(path) and len(_read(path)) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"no {n} steps in {path} (exit {proc.poll()}): {proc.stderr.read() if proc.poll() else ''}")


def _run_state(out):
    state = checkpoint.load(os.path.join(out, "checkpoint.npz"))
    return state["model"], _without(_read(os.path.join(out, "metrics.csv")), "seconds"), \
        _without(_read(os.path.join(out, "steps.csv")), "images_per_s")


RESUME_ARGS = ("--epochs", "2", "--no-plots", "--model", TINY, "--model-args", '{"pause": 0.04}', "--augment", "crop-flip", "--scheduler", "onecycle",
               "--limit-train", "320", "--val-split", "0.1", "--checkpoint-every", "3", "--threads", "1")


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted run of RESUME_ARGS: (data_root, final weights, metrics, steps)."""
    base = tmp_path_factory.mktemp("straight")
    data_root = make_dataset(str(base / "data"))
    out = str(base / "run")
    assert main(_train_args(data_root, out, *RESUME_ARGS)) == 0
    return (data_root, *_run_state(out))


def _assert_same_run(out, straight):
    _, weights, metrics, steps = straight
    got_weights, got_metrics, got_steps = _run_state(out)
    assert got_metrics == metrics and got_steps == steps
    for k in weights:
        np.testing.assert_array_equal(got_weights[k], weights[k], err_msg=k)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_a_checkpoint_mid_epoch_and_resume_is_identical(straight, tmp_path, sig):
    """Ctrl-C (or SIGTERM) in epoch 2: one line naming the resume command, exit 130, no traceback, a
    checkpoint at that step; --resume then ends with the uninterrupted run's weights, metrics and steps."""
    data_root = straight[0]
    out = str(tmp_path / "run")
    args = _train_args(data_root, out, *RESUME_ARGS)
    proc = _popen(args)
    _wait_for_steps(proc, os.path.join(out, "steps.csv"), 12)        # 9 steps per epoch: inside epoch 2
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert f"interrupted by {signal.Signals(sig).name} at step" in stderr and "--resume" in stderr
    assert "\r" not in stdout + stderr                                 # no progress bar off a terminal
    state = checkpoint.load(os.path.join(out, "checkpoint.npz"))
    assert state["partial"] is not None and 0 < state["partial"]["batch"] < 9
    assert state["step"] == len(_read(os.path.join(out, "steps.csv")))
    assert main([*args, "--resume"]) == 0
    _assert_same_run(out, straight)


def test_killed_run_resumes_to_the_same_weights_metrics_and_steps(straight, tmp_path):
    """SIGKILL mid-epoch (no chance to save): resume from the last --checkpoint-every checkpoint."""
    data_root = straight[0]
    out = str(tmp_path / "run")
    args = _train_args(data_root, out, *RESUME_ARGS)
    proc = _popen(args)
    _wait_for_steps(proc, os.path.join(out, "steps.csv"), 12)
    proc.kill()
    proc.wait()
    open(os.path.join(out, ".tmp-stale-checkpoint.npz"), "wb").close()   # what a kill mid-write leaves
    assert len(_read(os.path.join(out, "metrics.csv"))) < 2
    assert main([*args, "--resume"]) == 0
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]
    _assert_same_run(out, straight)


def test_trainer_api_interrupt_raises_after_saving(data_root, tmp_path):
    """In Python, the first SIGINT finishes the step, saves and raises TrainingInterrupted (a KeyboardInterrupt)."""
    model = models.lenet(generator=0)
    x = np.random.default_rng(0).integers(0, 255, (64, 1, 28, 28)).astype(np.uint8)
    loader = DataLoader(x, np.arange(64) % 10, 8, seed=0)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.01), nn.CrossEntropyLoss(), str(tmp_path / "r"),
                      log=lambda *_: None, plots=False)
    calls = []
    original = trainer.optimizer.step

    def step_then_signal():
        original()
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
    trainer.optimizer.step = step_then_signal
    with pytest.raises(TrainingInterrupted, match="at step 3 .*batch 3 of 8"):
        trainer.fit(loader, epochs=1)
    assert checkpoint.load(trainer.checkpoint_path)["step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler          # handlers restored


# ---- run directories ---------------------------------------------------------------------------------
def test_a_used_run_directory_is_never_silently_replaced(data_root, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(_train_args(data_root, out, "--epochs", "1", "--no-plots", "--limit-train", "64")) == 0
    before = open(os.path.join(out, "checkpoint.npz"), "rb").read()
    capsys.readouterr()
    assert main(_train_args(data_root, out, "--epochs", "1", "--no-plots", "--limit-train", "64")) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert open(os.path.join(out, "checkpoint.npz"), "rb").read() == before
    assert main(_train_args(data_root, out, "--epochs", "1", "--no-plots", "--limit-train", "64", "--seed", "5",
                            "--overwrite")) == 0
    assert open(os.path.join(out, "checkpoint.npz"), "rb").read() != before
    # the Python API (and the command's default --out) goes to a fresh versioned directory instead
    model = models.lenet(generator=0)
    logged = []
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.01), nn.CrossEntropyLoss(), out, log=logged.append)
    assert trainer.out == out + "-2" and "goes to" in logged[0]


def test_the_default_run_directory_is_versioned(data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--data-root", data_root, "--epochs", "1", "--no-plots", "--limit-train", "64", "--no-progress"]
    assert main(args) == 0 and main(args) == 0
    assert os.path.isfile("runs/lenet/checkpoint.npz") and os.path.isfile("runs/lenet-2/checkpoint.npz")
    assert "runs/lenet already holds a run; this run goes to runs/lenet-2" in capsys.readouterr().out


def test_resume_with_different_options_is_refused(data_root, tmp_path, capsys):
    out = str(tmp_path / "run")
    main(_train_args(data_root, out, "--epochs", "1", "--no-plots", "--limit-train", "64"))
    code = main(_train_args(data_root, out, "--epochs", "2", "--no-plots", "--limit-train", "64", "--lr", "0.1",
                            "--resume"))
    assert code == 1 and "different options ['lr']" in capsys.readouterr().err


# ---- validation, best.npz, early stopping --------------------------------------------------------------
def test_validation_split_best_checkpoint_and_early_stopping(data_root, tmp_path, capsys):
    out = str(tmp_path / "run")
    # an lr of 1e-9 leaves the float32 weights as they are: no epoch after the first is better
    assert main(_train_args(data_root, out, "--epochs", "6", "--no-plots", "--val-split", "0.2", "--lr", "1e-9",
                            "--early-stopping", "2", "--limit-train", "200")) == 0
    rows = _read(os.path.join(out, "metrics.csv"))
    assert all(r["val_accuracy"] != "" for r in rows) and len(rows) < 6      # stopped early
    printed = capsys.readouterr().out
    assert "early stopping" in printed
    results = json.load(open(os.path.join(out, "results.json")))
    best = checkpoint.load(os.path.join(out, "best.npz"))
    assert best["epoch"] == results["best"]["epoch"]
    assert 0 <= results["best"]["test_accuracy"] <= 1
    state = checkpoint.load(os.path.join(out, "checkpoint.npz"))
    assert len(state["data"]["classes"]) == 10 and state["data"]["val_split"] == 0.2
    # held out: 40 of the 200 training images, none of them trained on
    assert state["loader"]["num_samples"] == 160


# ---- checkpoints from elsewhere ----------------------------------------------------------------------
def test_checkpoint_into_the_wrong_model_is_a_clear_error(data_root, tmp_path):
    out = str(tmp_path / "run")
    main(_train_args(data_root, out, "--epochs", "1", "--no-plots", "--limit-train", "64"))
    state = checkpoint.load(os.path.join(out, "checkpoint.npz"))
    with pytest.raises(checkpoint.CheckpointError, match="saved from model .*'lenet'.* the model to load it into is .*'cnn'"):
        checkpoint.load_model_state(models.cnn(), state, {"name": "cnn"}, "ckpt")
    state["model_config"] = {"name": "cnn", "in_channels": 1, "image_size": 28, "num_classes": 10}
    with pytest.raises(checkpoint.CheckpointError, match="does not fit the model"):
        checkpoint.load_model_state(models.cnn(), state, state["model_config"], "ckpt")


def test_truncated_or_foreign_checkpoint_is_one_line_exit_1(data_root, tmp_path, capsys):
    out = str(tmp_path / "run")
    main(_train_args(data_root, out, "--epochs", "1", "--no-plots", "--limit-train", "64"))
    path = os.path.join(out, "checkpoint.npz")
    blob = open(path, "rb").read()
    open(path, "wb").write(blob[: len(blob) // 2])
    capsys.readouterr()
    assert main(["eval", path]) == 1
    err = capsys.readouterr().err
    assert "corrupt or truncated" in err and path in err and len(err.strip().splitlines()) == 1
    np.savez(str(tmp_path / "foreign.npz"), a=np.zeros(3))
    assert main(["predict", str(tmp_path / "foreign.npz"), path]) == 1
    assert "not a convgrad checkpoint" in capsys.readouterr().err


def test_uncreatable_output_directory_is_one_line(data_root, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    out = str(tmp_path / "a_file" / "run")
    assert main(_train_args(data_root, out, "--epochs", "1", "--no-plots", "--limit-train", "64")) == 1
    err = capsys.readouterr().err
    assert "cannot create the run directory" in err and out in err and len(err.splitlines()) == 1


def test_full_disk_while_saving_names_the_file(tmp_path, monkeypatch):
    """An OSError during an atomic write (ENOSPC) names the target and leaves no temporary file."""
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    target = str(tmp_path / "checkpoint.npz")
    with pytest.raises(OSError, match=f"cannot write {target}: No space left on device"):
        checkpoint.atomic_write_bytes(target, b"x" * 10)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_atomic_write_fsyncs_the_file_then_its_directory(tmp_path, monkeypatch):
    import stat
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)), real(fd)))
    checkpoint.atomic_write_bytes(str(tmp_path / "a.bin"), b"data")
    assert synced == [False, True] and (tmp_path / "a.bin").read_bytes() == b"data"
