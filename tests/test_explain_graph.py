"""`convgrad explain graph`: the recorded graph listed in backward order, with the places where
gradients add, for a chain (lenet) and a forward-only module that reads a value twice."""
import contextlib
import io
import re

import numpy as np

from convgrad import nn
from convgrad.explain.graph import explain_graph


class Twice(nn.Module):
    """Forward-only: h is read by relu and by the add, so its gradient is a sum of two."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, generator=0).to(np.float64)
        self.fc = nn.Linear(2 * 4 * 4, 3, generator=1).to(np.float64)

    def forward(self, x):
        h = self.conv(x)
        return self.fc((h.relu() + h).flatten(1))


def twice():
    return Twice()


def run(*argv):
    from convgrad.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def steps(text):
    return [m.groups() for m in re.finditer(r"^\s+(\d+)\s+#(\d+) (\S+)", text, re.M)]


def test_lenet_is_a_chain_listed_from_the_loss_back_to_the_first_conv():
    code, out, _ = run("explain", "graph", "lenet")
    s = steps(out)
    assert code == 0 and s[0][2] == "CrossEntropyLoss" and s[-1][2] == "Conv2d"
    assert [int(k) for _, k, _ in s] == list(range(len(s) - 1, -1, -1))         # reverse creation order
    assert [op for *_, op in s][1:] == ["Linear", "ReLU", "Linear", "Flatten", "MaxPool2d", "ReLU", "Conv2d",
                                        "MaxPool2d", "ReLU", "Conv2d"]
    assert "the input x; fills .grad of weight, bias" in out and "no value is read twice" in out


def test_a_value_read_twice_is_where_gradients_add():
    code, out, _ = run("explain", "graph", f"{__name__}:twice", "--input-shape", "1,1,6,6")
    assert code == 0
    add = [q for q in out.splitlines() if q.startswith("gradients add:")]
    assert len(add) == 1 and "the output of #0" in add[0] and "sum of their 2 contributions" in add[0]
    ops = {k: op for _, k, op in steps(out)}
    assert ops["0"] == "Conv2d" and sorted(ops[k] for k in re.findall(r"#(\d+)", add[0].split("read by")[1])) == [
        "add", "relu"]


def test_errors():
    code, _, err = run("explain", "graph", "tests.nothing:here", "--input-shape", "1,1,6,6")
    assert code == 2 and "cannot load" in err
    code, _, err = run("explain", "graph", f"{__name__}:twice")
    assert code == 2 and "--input-shape" in err
    assert "lenet" in explain_graph("lenet")
