"""Gradient checking as the lectures teach it, on a formula typed by the user:

    y = x1*x2*x3 at (2, 1, 3):  analytic dy/dx1 = x2*x3 = 3, dy/dx2 = 6, dy/dx3 = 2 (backprop),
    numerical (f(x + h) - f(x - h)) / 2h, and their relative error |a - n| / max(|a|, |n|).

The formula is parsed by a small recursive-descent parser (no eval): numbers, named variables,
+ - * / ** (right-associative), unary minus, parentheses and the functions exp, log, sqrt,
tanh, sigmoid, relu. Each node has a forward and a backward (the local derivative times the
upstream gradient); a variable used twice receives the sum of its gradients. An analytic
gradient may be replaced by a formula of the user's (`x2=2*w2`), which is how the lecture
plants a bug for the check to catch.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

FUNCTIONS = {
    "exp": (math.exp, lambda x, y: y),
    "log": (math.log, lambda x, y: 1.0 / x),
    "sqrt": (math.sqrt, lambda x, y: 0.5 / y),
    "tanh": (math.tanh, lambda x, y: 1.0 - y * y),
    "sigmoid": (lambda x: 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x)),
                lambda x, y: y * (1.0 - y)),
    "relu": (lambda x: max(x, 0.0), lambda x, y: 1.0 if x > 0 else 0.0),
}
TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_]\w*)|(\*\*|[-+*/()]))")
MAX_LENGTH = 500


class ExpressionError(ValueError):
    """A formula that cannot be parsed or evaluated (the message says where and why)."""


# ---------------------------------------------------------------------------------------
# The tree: each node computes its value forward and sends gradients to its children backward
# ---------------------------------------------------------------------------------------
@dataclass
class Num:
    value: float

    def forward(self, env):
        return self.value

    def backward(self, g, grads):
        pass

    def names(self):
        return []


@dataclass
class Var:
    name: str

    def forward(self, env):
        self.value = env[self.name]
        return self.value

    def backward(self, g, grads):
        grads[self.name] = grads.get(self.name, 0.0) + g

    def names(self):
        return [self.name]


@dataclass
class Unary:
    op: str           # "-" or a function name
    arg: object

    def forward(self, env):
        a = self.arg.forward(env)
        try:
            self.value = -a if self.op == "-" else FUNCTIONS[self.op][0](a)
        except (ValueError, OverflowError) as e:
            raise ExpressionError(f"{self.op}({a:g}) is not defined: {e}") from None
        return self.value

    def backward(self, g, grads):
        a = self.arg.value
        local = -1.0 if self.op == "-" else FUNCTIONS[self.op][1](a, self.value)
        self.arg.backward(g * local, grads)

    def names(self):
        return self.arg.names()


@dataclass
class Binary:
    op: str
    left: object
    right: object

    def forward(self, env):
        a, b = self.left.forward(env), self.right.forward(env)
        try:
            if self.op == "+":
                v = a + b
            elif self.op == "-":
                v = a - b
            elif self.op == "*":
                v = a * b
            elif self.op == "/":
                v = a / b
            else:
                v = a ** b
        except (ZeroDivisionError, OverflowError) as e:
            raise ExpressionError(f"{a:g} {self.op} {b:g}: {e}") from None
        if isinstance(v, complex):
            raise ExpressionError(f"{a:g} ** {b:g} is not a real number")
        self.value = float(v)
        return self.value

    def backward(self, g, grads):
        a, b = self.left.value, self.right.value
        if self.op == "+":
            da, db = g, g
        elif self.op == "-":
            da, db = g, -g
        elif self.op == "*":
            da, db = g * b, g * a
        elif self.op == "/":
            da, db = g / b, -g * a / (b * b)
        else:                                        # d(a^b)/da = b a^(b-1); d/db = a^b log a
            da = g * b * a ** (b - 1) if b != 0 else 0.0
            db = g * self.value * math.log(a) if self.right.names() and a > 0 else 0.0
            if self.right.names() and a <= 0:
                raise ExpressionError(f"the derivative of {a:g} ** b with respect to the exponent needs a base > 0")
        self.left.backward(da, grads)
        self.right.backward(db, grads)

    def names(self):
        return self.left.names() + self.right.names()


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------
def _tokens(text):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExpressionError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position "
                                  f"{len(text[:pos]) + len(text[pos:]) - len(text[pos:].lstrip()) + 1} of {text!r}")
        number, name, op = m.groups()
        out.append(("num", float(number)) if number else ("name", name) if name else ("op", op))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text):
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"the formula is {len(text)} characters long (at most {MAX_LENGTH})")
        self.text, self.toks, self.i = text, _tokens(text), 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("end", None)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            want = value or kind
            got = "the end" if tok[0] == "end" else repr(tok[1])
            raise ExpressionError(f"expected {want!r} but found {got} in {self.text!r}")
        self.i += 1
        return tok

    def parse(self):
        if not self.toks:
            raise ExpressionError("the formula is empty")
        node = self.expr()
        if self.peek()[0] != "end":
            raise ExpressionError(f"unexpected {self.peek()[1]!r} after a complete formula in {self.text!r}")
        return node

    def expr(self):
        node = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            node = Binary(self.take()[1], node, self.term())
        return node

    def term(self):
        node = self.unary()
        while self.peek() in (("op", "*"), ("op", "/")):
            node = Binary(self.take()[1], node, self.unary())
        return node

    def unary(self):
        if self.peek() in (("op", "-"), ("op", "+")):
            op = self.take()[1]
            arg = self.unary()
            return Unary("-", arg) if op == "-" else arg
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek() == ("op", "**"):
            self.take()
            return Binary("**", base, self.unary())         # right-associative, binds tighter than unary minus
        return base

    def atom(self):
        kind, value = self.peek()
        if kind == "num":
            self.take()
            return Num(value)
        if kind == "name":
            self.take()
            if self.peek() == ("op", "("):
                if value not in FUNCTIONS:
                    raise ExpressionError(f"unknown function {value!r} (known: {', '.join(FUNCTIONS)})")
                self.take()
                arg = self.expr()
                self.take("op", ")")
                return Unary(value, arg)
            if value in FUNCTIONS:
                raise ExpressionError(f"{value} is a function: write {value}(...)")
            return Var(value)
        if (kind, value) == ("op", "("):
            self.take()
            node = self.expr()
            self.take("op", ")")
            return node
        raise ExpressionError(f"expected a number, a name or '(' but found "
                              f"{'the end' if kind == 'end' else repr(value)} in {self.text!r}")


def parse(text: str):
    """The formula as a tree of Num / Var / Unary / Binary nodes, or ExpressionError."""
    return _Parser(text).parse()


def variables(tree) -> list:
    """Variable names in order of first appearance."""
    seen = []
    for n in tree.names():
        if n not in seen:
            seen.append(n)
    return seen


def value_and_grad(tree, env: dict):
    """(f(env), {name: df/dname}) by one forward and one backward pass over the tree."""
    y = tree.forward(env)
    grads = {n: 0.0 for n in variables(tree)}
    tree.backward(1.0, grads)
    return y, grads


def _on_tensors(node, leaves):
    """The formula rebuilt on convgrad Tensors (recorded mode): each op records a node of the tape."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Var):
        return leaves[node.name]
    if isinstance(node, Unary):
        a = _on_tensors(node.arg, leaves)
        if not hasattr(a, "backward"):
            return node.forward({})
        return -a if node.op == "-" else getattr(a, node.op)()
    a, b = _on_tensors(node.left, leaves), _on_tensors(node.right, leaves)
    if node.op == "**":
        if not hasattr(b, "backward"):
            return a ** b if hasattr(a, "backward") else node.forward({})
        return (b * a.log()).exp() if hasattr(a, "backward") else (b * math.log(a)).exp()   # a**b = exp(b log a)
    return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b}[node.op]()


def recorded_grads(tree, env: dict) -> dict:
    """{name: df/dname} from convgrad's recorded mode: the formula on 0-d Tensors, then backward()."""
    import numpy as np

    from .. import tensor
    leaves = {n: tensor(np.array(float(env[n])), requires_grad=True) for n in variables(tree)}
    y = _on_tensors(tree, leaves)
    if not hasattr(y, "backward"):
        return {n: 0.0 for n in leaves}
    y.backward()
    return {n: 0.0 if t.grad is None else float(np.asarray(t.grad)) for n, t in leaves.items()}


# ---------------------------------------------------------------------------------------
# The check
# ---------------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    analytic: float
    numerical: float
    plus: float
    minus: float
    source: str             # "backprop" or the user's formula
    recorded: float = float("nan")      # the same gradient from convgrad's recorded mode

    @property
    def rel_error(self) -> float:
        scale = max(abs(self.analytic), abs(self.numerical))
        return 0.0 if scale == 0 else abs(self.analytic - self.numerical) / scale


def check_expression(text, at, h=1e-5, analytic=None):
    """Analytic (backprop, or the user's formula per variable) and numerical gradients of the formula.
    at: {name: value}; analytic: {name: formula text}. Returns (value, [Row])."""
    tree = parse(text)
    names = variables(tree)
    if not names:
        raise ExpressionError(f"{text!r} has no variables to differentiate")
    missing = [n for n in names if n not in at]
    if missing:
        raise ExpressionError(f"no value for {', '.join(missing)} (give --at {','.join(f'{n}=...' for n in names)})")
    unknown = [n for n in at if n not in names]
    if unknown:
        raise ExpressionError(f"{', '.join(unknown)} do(es) not appear in {text!r} (its variables: {', '.join(names)})")
    env = {n: float(at[n]) for n in names}
    y, grads = value_and_grad(tree, env)
    recorded = recorded_grads(tree, env)
    overrides = {}
    for name, formula in (analytic or {}).items():
        if name not in names:
            raise ExpressionError(f"--analytic {name}=...: {name} is not a variable of {text!r}")
        overrides[name] = (formula, parse(formula))
    rows = []
    for n in names:
        shifted = dict(env)
        shifted[n] = env[n] + h
        plus = tree.forward(shifted)
        shifted[n] = env[n] - h
        minus = tree.forward(shifted)
        if n in overrides:
            formula, ftree = overrides[n]
            extra = [v for v in variables(ftree) if v not in env]
            if extra:
                raise ExpressionError(f"--analytic {n}={formula}: {', '.join(extra)} has no value")
            a, source = ftree.forward(env), formula
        else:
            a, source = grads[n], "backprop"
        rows.append(Row(n, a, (plus - minus) / (2 * h), plus, minus, source, recorded[n]))
    return y, rows


def parse_at(text: str, names: list) -> dict:
    """'2,1,3' (values in the order the variables first appear) or 'x1=2,x2=1,x3=3'."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        if any("=" in p for p in parts):
            raise ExpressionError(f"--at {text!r}: give all values by name (x1=2,...) or none")
        values = [float(p) for p in parts]
    except ValueError as e:
        raise ExpressionError(f"--at {text!r}: {e}") from None
    if len(values) != len(names):
        raise ExpressionError(f"--at {text!r} gives {len(values)} value(s) for {len(names)} variable(s) "
                              f"({', '.join(names)}, in order of appearance)")
    return dict(zip(names, values))


def report(text, at_text, h=1e-5, analytic_texts=(), tol=1e-6):
    """The lecture's table as lines, and whether every relative error is within tol."""
    names = variables(parse(text))
    at = parse_at(at_text, names)
    analytic = {}
    for a in analytic_texts:
        name, sep, formula = a.partition("=")
        if not sep or not name.strip() or not formula.strip():
            raise ExpressionError(f"--analytic {a!r}: expected NAME=FORMULA, e.g. x2=2*w2")
        analytic[name.strip()] = formula.strip()
    y, rows = check_expression(text, at, h, analytic)
    point = ", ".join(f"{n} = {at[n]:g}" for n in names)
    out = "f" if "y" in names else "y"
    lines = [f"{out} = {text}   at {point}:   {out} = {y:.10g}",
             f"numerical: d{out}/dv ~ (f(v + h) - f(v - h)) / 2h with h = {h:g}; analytic: backprop through the formula"
             + (" (or the formula you gave)" if analytic else ""),
             "",
             f"{'':<12} {'analytic':>20} {'numerical':>20} {'relative error':>16}  ok"]
    for r in rows:
        ok = r.rel_error <= tol
        lines.append(f"d{out}/d{r.name:<8} {r.analytic:>20.14f} {r.numerical:>20.14f} {r.rel_error:>16.3e}  "
                     f"{'yes' if ok else 'NO'}")
    lines.append("")
    for r in rows:
        lines.append(f"d{out}/d{r.name}: numerical = ({r.plus:.10g} - {r.minus:.10g}) / {2 * h:g} = {r.numerical:.14g};"
                     f" analytic ({r.source}) = {r.analytic:.14g}")
    bad = [r for r in rows if r.rel_error > tol]
    agree = all(math.isclose(r.recorded, value_and_grad(parse(text), at)[1][r.name], rel_tol=1e-12, abs_tol=1e-15)
                for r in rows)
    lines.append(f"recorded mode (the formula on convgrad Tensors, {out}.backward()): "
                 + ", ".join(f"d/d{r.name} = {r.recorded:.14g}" for r in rows)
                 + ("  (the same as backprop through the formula)" if agree else "  DIFFERS from the backprop above"))
    lines.append("")
    lines.append(f"relative error |a - n| / max(|a|, |n|) <= {tol:g}: " + (
        "all gradients agree" if not bad else
        "MISMATCH in " + ", ".join(f"d{out}/d{r.name} (analytic {r.analytic:.14g} from {r.source}, numerical "
                                   f"{r.numerical:.14g}, difference {r.analytic - r.numerical:.14g})" for r in bad)))
    return lines, not bad and agree
