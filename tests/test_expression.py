"""The formula parser and scalar backprop behind `convgrad gradcheck --expr`, and gradcheck's
seeded sampling of entries for large models."""
import math

import numpy as np
import pytest

from convgrad import gradcheck, nn
from convgrad.explain.expression import (ExpressionError, check_expression, parse, parse_at, recorded_grads,
                                        value_and_grad, variables)


@pytest.mark.parametrize("text,env,value", [
    ("1 + 2 * 3", {}, 7), ("(1 + 2) * 3", {}, 9), ("2 ** 3 ** 2", {}, 512), ("-2 ** 2", {}, -4),
    ("8 / 4 / 2", {}, 1), ("x - y - 1", {"x": 5, "y": 2}, 2), ("--x", {"x": 3}, 3), ("2 * -x", {"x": 3}, -6),
    ("exp(log(x))", {"x": 2.5}, 2.5), ("relu(x) + relu(-x)", {"x": -1.5}, 1.5), (".5e1 + 1.", {}, 6)])
def test_precedence_and_values(text, env, value):
    assert parse(text).forward({k: float(v) for k, v in env.items()}) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text", ["x*y + exp(x/y) - x**3", "sigmoid(x) * tanh(y)", "sqrt(x*x + y*y)",
                                  "x / (1 + y) ** 2", "2 ** x * y", "x * x * x - 3 * x * y", "log(x) - y"])
def test_backprop_matches_the_derivative_everywhere(text):
    tree = parse(text)
    rng = np.random.default_rng(0)
    for _ in range(5):
        env = {"x": float(rng.uniform(0.5, 2)), "y": float(rng.uniform(0.5, 2))}
        _, grads = value_and_grad(tree, env)
        recorded = recorded_grads(tree, env)                   # convgrad.Tensor, recorded mode
        for name in variables(tree):
            assert recorded[name] == pytest.approx(grads[name], rel=1e-12, abs=1e-15)
            h = 1e-6
            up, down = dict(env), dict(env)
            up[name] += h
            down[name] -= h
            numerical = (tree.forward(up) - tree.forward(down)) / (2 * h)
            assert grads[name] == pytest.approx(numerical, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("x,grad", [(2.0, 1.0), (-1.0, 0.0)])
def test_recorded_relu_on_a_0d_tensor(x, grad):
    assert recorded_grads(parse("relu(x)"), {"x": x}) == {"x": grad}


def test_a_variable_used_twice_gets_the_sum_of_its_gradients():
    _, grads = value_and_grad(parse("x*y + x"), {"x": 2.0, "y": 5.0})
    assert grads == {"x": 6.0, "y": 2.0}


@pytest.mark.parametrize("text,message", [
    ("", "empty"), ("x +", "expected a number"), ("(x", "expected ')'"), ("x y", "unexpected 'y'"),
    ("x ^ 2", "unexpected character '^'"), ("os.system(1)", "unexpected character '.'"), ("foo(x)", "unknown function"),
    ("exp", "is a function"), ("x" * 600, "at most")])
def test_parse_errors_are_clear(text, message):
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
                       .replace("^", r"\^")):
        parse(text)


def test_evaluation_errors_and_missing_values():
    with pytest.raises(ExpressionError, match="not defined"):
        check_expression("log(x)", {"x": -1.0})
    with pytest.raises(ExpressionError, match="no value for x2"):
        check_expression("x1*x2", {"x1": 1.0})
    with pytest.raises(ExpressionError, match="do\\(es\\) not appear"):
        check_expression("x1", {"x1": 1.0, "z": 2.0})
    with pytest.raises(ExpressionError, match="2 value\\(s\\) for 3"):
        parse_at("1,2", ["a", "b", "c"])
    assert parse_at("b=2,a=1", ["a", "b"]) == {"a": 1.0, "b": 2.0}


def test_an_analytic_override_is_compared_not_trusted():
    _, rows = check_expression("x*y", {"x": 3.0, "y": 4.0}, analytic={"x": "2*y"})
    by = {r.name: r for r in rows}
    assert by["x"].analytic == 8.0 and by["x"].numerical == pytest.approx(4.0, rel=1e-9)
    assert by["x"].rel_error == pytest.approx(0.5, rel=1e-9) and by["y"].rel_error < 1e-9
    assert math.isclose(by["y"].analytic, 3.0)


def test_sampled_gradcheck_checks_k_seeded_entries_and_reports_progress():
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, generator=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3, generator=2))
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    calls = []
    report = gradcheck(model, x, sample=5, progress=lambda name, done, total: calls.append((name, done, total)))
    full = gradcheck(model, x)
    assert report.passed
    for c in report.checks:
        whole = full[c.name]
        if c.size > 5:
            assert c.indices.size == 5 and c.numerical.shape == (5,) and len(set(c.indices.tolist())) == 5
            assert np.allclose(c.numerical, whole.numerical.reshape(-1)[c.indices], rtol=0, atol=1e-12)
            assert np.allclose(c.analytic, whole.analytic.reshape(-1)[c.indices], rtol=0, atol=1e-12)
        else:
            assert c.indices is None and c.numerical.shape == whole.numerical.shape
    assert [(n, t) for n, d, t in calls if d == t] == [(c.name, min(c.size, 5)) for c in report.checks]
    again = gradcheck(model, x, sample=5)
    assert all(np.array_equal(a.indices, b.indices) for a, b in zip(report.checks, again.checks)
               if a.indices is not None)                                     # seeded: the same entries


def test_sampled_gradcheck_catches_a_wrong_gradient():
    class Broken(nn.Linear):
        def backward(self, grad):
            dx = super().backward(grad)
            self.weight.grad *= 1.5
            return dx
    report = gradcheck(Broken(20, 20, generator=0), np.random.default_rng(1).standard_normal((3, 20)), sample=4)
    assert not report.passed and not report["weight"].passed and report["input"].passed


def test_gradcheck_command_on_a_whole_model_with_progress():
    import contextlib
    import io

    from convgrad.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["gradcheck", "--model", "lenet", "--sample", "2"])
    text = out.getvalue()
    assert code == 0 and "PASSED" in text and "0.weight (2 of 288)" in text and "7.weight (2 of 204800)" in text
    assert "  9.bias" in err.getvalue() and "2/2" in err.getvalue()                  # progress, per tensor
