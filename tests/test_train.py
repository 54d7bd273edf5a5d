"""The training command end to end on a small generated Fashion-MNIST-shaped dataset:
metrics, checkpoints, plots, determinism, kill-and-resume, eval/predict, wrong checkpoints."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import make_dataset

from convgrad import checkpoint, models
from convgrad.cli import main
from convgrad.train import METRIC_COLUMNS, TrainConfig, Trainer

@pytest.fixture
def data_root(tmp_path):
    return make_dataset(str(tmp_path / "data"))


def _read_metrics(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _train_args(data_root, out, *extra):
    return ["train", "--data-root", data_root, "--model", "lenet", "--batch-size", "32", "--lr", "0.05",
            "--seed", "3", "--out", out, "--no-progress", *extra]


def test_train_writes_metrics_checkpoint_config_and_plots(data_root, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(_train_args(data_root, out, "--epochs", "2")) == 0
    rows = _read_metrics(os.path.join(out, "metrics.csv"))
    assert list(rows[0]) == list(METRIC_COLUMNS) and [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[-1]["test_accuracy"]) > 0.5        # the bars are easy: well above chance (0.1)
    for name in ("checkpoint.npz", "config.json", "curves.png", "confusion_matrix.png", "filters.png",
                 "feature_maps.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]
    assert "test accuracy:" in capsys.readouterr().out


def test_same_seed_same_metrics(data_root, tmp_path):
    runs = []
    for name in ("a", "b"):
        out = str(tmp_path / name)
        main(_train_args(data_root, out, "--epochs", "2", "--no-plots", "--model", "cnn"))
        runs.append([{k: v for k, v in r.items() if k != "seconds"}
                     for r in _read_metrics(os.path.join(out, "metrics.csv"))])
    assert runs[0] == runs[1]


def test_killed_run_resumes_to_the_same_metrics(data_root, tmp_path):
    """Kill a run (SIGKILL) mid-way through an epoch, resume it, compare with an uninterrupted run."""
    straight = str(tmp_path / "straight")
    args = _train_args(data_root, straight, "--epochs", "3", "--no-plots", "--model", "cnn", "--augment", "crop-flip",
                       "--scheduler", "onecycle")
    main(args)
    expected = [{k: v for k, v in r.items() if k != "seconds"}
                for r in _read_metrics(os.path.join(straight, "metrics.csv"))]

    killed = str(tmp_path / "killed")
    args = _train_args(data_root, killed, "--epochs", "3", "--no-plots", "--model", "cnn", "--augment", "crop-flip",
                       "--scheduler", "onecycle")
    proc = subprocess.Popen([sys.executable, "-m", "convgrad.cli", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = os.path.join(killed, "metrics.csv")
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.exists(metrics) and len(_read_metrics(metrics)) >= 1):
        time.sleep(0.05)
    time.sleep(0.3)                                          # into epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(_read_metrics(metrics))
    assert done < 3, "the run finished before it could be killed; make the dataset larger"
    assert main([*args, "--resume"]) == 0
    resumed = [{k: v for k, v in r.items() if k != "seconds"} for r in _read_metrics(metrics)]
    assert resumed == expected


def test_resume_with_different_options_is_refused(data_root, tmp_path, capsys):
    out = str(tmp_path / "run")
    main(_train_args(data_root, out, "--epochs", "1", "--no-plots"))
    code = main(_train_args(data_root, out, "--epochs", "2", "--no-plots", "--lr", "0.1", "--resume"))
    assert code == 2 and "different options ['lr']" in capsys.readouterr().err


def test_checkpoint_into_the_wrong_model_is_a_clear_error(data_root, tmp_path):
    out = str(tmp_path / "run")
    main(_train_args(data_root, out, "--epochs", "1", "--no-plots"))
    state = checkpoint.load(os.path.join(out, "checkpoint.npz"))
    with pytest.raises(checkpoint.CheckpointError, match="saved from model .*'lenet'.* the model to load it into is .*'cnn'"):
        checkpoint.load_model_state(models.cnn(), state, {"name": "cnn"}, "ckpt")
    state["model_config"] = {"name": "cnn", "in_channels": 1, "image_size": 28, "num_classes": 10}
    with pytest.raises(checkpoint.CheckpointError, match="does not fit the model"):
        checkpoint.load_model_state(models.cnn(), state, state["model_config"], "ckpt")


def test_truncated_checkpoint_is_a_clear_error(data_root, tmp_path, capsys):
    out = str(tmp_path / "run")
    main(_train_args(data_root, out, "--epochs", "1", "--no-plots"))
    path = os.path.join(out, "checkpoint.npz")
    with open(path, "rb") as f:
        blob = f.read()
    with open(path, "wb") as f:
        f.write(blob[: len(blob) // 2])
    assert main(["eval", path, "--data-root", data_root]) == 2
    assert "corrupt or truncated" in capsys.readouterr().err


def test_eval_and_predict(data_root, tmp_path, capsys):
    pytest.importorskip("PIL")
    from PIL import Image
    out = str(tmp_path / "run")
    main(_train_args(data_root, out, "--epochs", "2", "--no-plots"))
    capsys.readouterr()
    assert main(["eval", out, "--data-root", data_root]) == 0
    printed = capsys.readouterr().out
    final = _read_metrics(os.path.join(out, "metrics.csv"))[-1]
    assert f'"test_accuracy": {round(float(final["test_accuracy"]), 6)}' in printed
    img = np.zeros((56, 56), np.uint8)
    img[8:14, 8:48] = 230                                     # class 1's bar (rows 4-6 at 28 px)
    path = str(tmp_path / "bar.png")
    Image.fromarray(img).save(path)
    assert main(["predict", out, path]) == 0
    line = capsys.readouterr().out
    assert line.startswith(path) and line.count(",") == 2    # top-3 with probabilities


def test_trainer_api(data_root, tmp_path):
    cfg = TrainConfig(data_root=data_root, epochs=1, batch_size=50, out=str(tmp_path / "api"), limit_train=200)
    history = Trainer(cfg, progress=False, log=lambda *_: None).run()
    assert len(history) == 1 and 0 <= history[0]["test_accuracy"] <= 1
