"""Every subcommand with a table of bad arguments: one line `convgrad CMD: error: ...` on stderr,
no traceback, exit 2 for arguments (checked before any work), 1 for errors found while working."""
import os
import subprocess
import sys

import pytest

from convgrad.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """A directory that looks like a run (an empty checkpoint.npz) and an image file: argument checks
    must reject the bad values below before anything reads them (reading would fail differently)."""
    d = tmp_path_factory.mktemp("fake")
    (d / "checkpoint.npz").write_bytes(b"")
    (d / "img.png").write_bytes(b"")
    return str(d)


def _run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:                    # argparse's own errors (types, choices)
        code = exc.code
    err = capsys.readouterr().err
    return code, err


CASES = [
    # train
    (["train", "--lr", "nan"], 2, "convgrad train: error: --lr must be a finite number > 0, got nan"),
    (["train", "--lr", "-0.1"], 2, "--lr must be a finite number > 0, got -0.1"),
    (["train", "--lr", "inf"], 2, "--lr must be a finite number > 0, got inf"),
    (["train", "--epochs", "-1"], 2, "--epochs must be an integer >= 1, got -1"),
    (["train", "--epochs", "0"], 2, "--epochs must be an integer >= 1, got 0"),
    (["train", "--epochs", "two"], 2, "argument --epochs: invalid int value: 'two'"),
    (["train", "--batch-size", "0"], 2, "--batch-size must be an integer >= 1"),
    (["train", "--eval-batch-size", "0"], 2, "--eval-batch-size must be an integer >= 1"),
    (["train", "--limit-train", "0"], 2, "--limit-train must be an integer >= 1, got 0"),
    (["train", "--limit-test", "-5"], 2, "--limit-test must be an integer >= 1, got -5"),
    (["train", "--clip-grad-norm", "0"], 2, "--clip-grad-norm must be a finite number > 0, got 0"),
    (["train", "--momentum", "1"], 2, "--momentum must be a finite number >= 0 and < 1, got 1"),
    (["train", "--weight-decay", "-1"], 2, "--weight-decay must be a finite number >= 0"),
    (["train", "--label-smoothing", "1.5"], 2, "--label-smoothing must be a finite number >= 0 and < 1"),
    (["train", "--val-split", "1"], 2, "--val-split must be a finite number >= 0 and < 1, got 1"),
    (["train", "--early-stopping", "3"], 2, "--early-stopping needs a validation split"),
    (["train", "--early-stopping", "0", "--val-split", "0.1"], 2, "--early-stopping must be an integer >= 1"),
    (["train", "--checkpoint-every", "0"], 2, "--checkpoint-every must be an integer >= 1"),
    (["train", "--threads", "0"], 2, "--threads must be an integer in 1..256, got 0"),
    (["train", "--seed", "-1"], 2, "--seed must be an integer >= 0"),
    (["train", "--data-root", ""], 2, "--data-root must not be empty"),
    (["train", "--data", ""], 2, "--data must not be empty"),
    (["train", "--data", "imagenet-22k"], 2, "is neither a dataset (cifar-10, fashion-mnist, mnist) nor a directory"),
    (["train", "--image-size", "0"], 2, "--image-size must be an integer in 4..512, got 0"),
    (["train", "--image-size", "32"], 2, "apply to an image folder (--data DIR), not to the dataset"),
    (["train", "--channels", "2"], 2, "argument --channels: invalid choice: 2"),
    (["train", "--model", "resnet9000"], 2, "--model expected one of lenet, cnn, resnet"),
    (["train", "--model-args", "[1]"], 2, "--model-args must be a JSON object (keyword arguments)"),
    (["train", "--model-args", "{width: 3}"], 2, "--model-args must be a JSON object such as"),
    (["train", "--model", "lenet", "--model-args", '{"width": 3}'], 2, "--model-args apply to a factory spec"),
    (["train", "--optimizer", "lbfgs"], 2, "argument --optimizer: invalid choice: 'lbfgs'"),
    (["train", "--out", ""], 2, "--out must not be empty"),
    (["train", "--resume", "--out", "{tmp}/nothing"], 2, "--resume: no checkpoint.npz in"),
    (["train", "--resume", "--overwrite"], 2, "--resume and --overwrite exclude each other"),
    (["train", "--data-root", "{tmp}/junk", "--out", "{tmp}/r"], 1, "train-images-idx3-ubyte.gz: bad IDX magic"),
    # eval
    (["eval", "{tmp}/nowhere"], 2, "CHECKPOINT: no checkpoint or run directory at"),
    (["eval", "{tmp}"], 2, "holds no checkpoint.npz (not a run directory)"),
    (["eval", "{run}", "--limit", "0"], 2, "--limit must be an integer >= 1, got 0"),
    (["eval", "{run}", "--batch-size", "-2"], 2, "--batch-size must be an integer >= 1"),
    (["eval", "{run}", "--data-root", ""], 2, "--data-root must not be empty"),
    (["eval", "{run}", "--data", "nowhere-data"], 2, "is neither a dataset"),
    (["eval", "{run}"], 1, "checkpoint.npz' is empty (0 bytes)"),
    # predict
    (["predict", "{run}"], 2, "the following arguments are required: images"),
    (["predict", "{run}", "{tmp}/missing.png"], 2, "IMAGES: '"),
    (["predict", "{run}", "{run}/img.png", "--top", "0"], 2, "--top must be an integer >= 1, got 0"),
    (["predict", "{run}", "{run}/img.png", "--fit", "squash"], 2, "argument --fit: invalid choice"),
    # attack
    (["attack", "{run}", "--examples", "-3"], 2, "--examples must be an integer >= 1, got -3"),
    (["attack", "{run}", "--eps", "8"], 2, "--eps must be in [0, 1] (pixel units; did you mean 8/255"),
    (["attack", "{run}", "--eps", "0.1", "nan"], 2, "--eps must be in [0, 1]"),
    (["attack", "{run}", "--steps", "0"], 2, "--steps must be an integer >= 1"),
    (["attack", "{run}", "--alpha", "-1"], 2, "--alpha must be in [0, 1]"),
    (["attack", "{run}", "--limit", "0"], 2, "--limit must be an integer >= 1"),
    (["attack", "{run}", "--method", "cw"], 2, "argument --method: invalid choice"),
    (["attack", "{run}", "--data-root", ""], 2, "--data-root must not be empty"),
    (["attack", "{tmp}/nowhere"], 2, "no checkpoint or run directory"),
    # saliency
    (["saliency", "{run}", "{tmp}/missing.png"], 2, "IMAGE: '"),
    (["saliency", "{tmp}/nowhere", "{run}/img.png"], 2, "no checkpoint or run directory"),
    (["saliency", "{run}", "{run}/img.png", "--out", ""], 2, "--out must not be empty"),
    # report
    (["report", "{run}", "--attack-eps", "2"], 2, "--attack-eps must be in [0, 1]"),
    (["report", "{run}", "--limit", "0"], 2, "--limit must be an integer >= 1"),
    (["report", "{run}", "--examples", "-3"], 2, "--examples must be an integer >= 1"),
    (["report", "{tmp}/nowhere"], 2, "no checkpoint or run directory"),
    # demo, gradcheck, the top level
    (["demo", "--seed", "-4"], 2, "--seed must be an integer >= 0"),
    (["gradcheck", "--configs", "0"], 2, "--configs must be"),
    (["gradcheck", "--eps", "nan"], 2, "--eps must be a finite number > 0, got nan"),
    (["gradcheck", "--rtol", "-1"], 2, "--rtol must be a finite number >= 0"),
    (["frobnicate"], 2, "argument command: invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize("argv,code,message", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_arguments_are_one_line_with_the_exit_code(fake_run, tmp_path, capsys, argv, code, message):
    junk = tmp_path / "junk" / "fashion-mnist"                 # a dataset whose files are not IDX files
    junk.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (junk / name).write_text("junk")
    argv = [a.replace("{run}", fake_run).replace("{tmp}", str(tmp_path)) for a in argv]
    got, err = _run(capsys, argv)
    assert got == code, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"convgrad {argv[0]}: error: " if argv[0] != "frobnicate" else "convgrad: error: "), err


def test_the_command_line_shows_no_traceback_and_knows_its_version():
    env = {**os.environ, "PYTHONPATH": ROOT}
    bad = subprocess.run([sys.executable, "-m", "convgrad.cli", "train", "--lr", "nan"], capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 2 and bad.stderr == "convgrad train: error: --lr must be a finite number > 0, got nan\n"
    version = subprocess.run([sys.executable, "-m", "convgrad.cli", "--version"], capture_output=True, text=True,
                             env=env)
    assert version.returncode == 0 and version.stdout.startswith("convgrad ")


@pytest.mark.parametrize("command", ["train", "eval", "predict", "attack", "saliency", "report"])
def test_help_shows_every_default(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: " in text
    if command == "train":
        for default in ("(default: 0.01)", "(default: 1)", "(default: sgd)", "(default: 0.0)", "(default: 64)"):
            assert default in text, default
