"""The documentation site (docs/): it builds with warnings as errors, every code example in the
docstrings and the tutorials runs and prints what it shows, every public name has a docstring and
every layer's docstring has PyTorch's sections."""
from __future__ import annotations

import doctest
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys

import numpy as np
import pytest

import convgrad
from convgrad import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
sys.path.insert(0, os.path.join(DOCS, "_ext"))
import public_api  # noqa: E402  (docs/_ext: the rule of what is public, shared with the API pages)

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# What every docstring example may assume, as PyTorch's assume `import torch` (docs/api/index.md says so).
EXAMPLE_GLOBALS = {"np": np, "cg": convgrad, "nn": nn}
# The base class: it has no computation of its own to describe.
CONTAINERS = (nn.Module,)
PYTORCH_SECTIONS = ("Args:", "Shape:", "Example")


# ---------------------------------------------------------------------------------------------
# The checks (functions, so the tests below can show that each one catches what it is for)
# ---------------------------------------------------------------------------------------------
def own_doc(value) -> str:
    """The docstring an object has itself (a class's, not inherited from its base)."""
    doc = value.__dict__.get("__doc__") if inspect.isclass(value) else getattr(value, "__doc__", None)
    return (doc or "").strip()


def undocumented(named_objects) -> list[str]:
    """Dotted names among (dotted name, object) pairs whose object has no docstring of its own
    (a constant: no ``#:`` comment)."""
    missing = []
    for dotted, value in named_objects:
        if inspect.ismodule(value):
            documented = bool((value.__doc__ or "").strip())
        elif inspect.isclass(value) or inspect.isfunction(value):
            documented = bool(own_doc(value))
        else:
            module_name, name = dotted.rsplit(".", 1)
            documented = bool(public_api.constant_doc(module_name, name))
        if not documented:
            missing.append(dotted)
    return missing


def undocumented_methods(cls) -> list[str]:
    """Public methods and properties a class defines whose docstring is missing, also in its bases
    (an override of a documented method, such as a layer's forward, inherits the base's)."""
    missing = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        function = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        if not inspect.isfunction(function):
            continue
        docs = [getattr(base.__dict__[name], "__doc__", None) for base in cls.__mro__ if name in base.__dict__]
        if not any((doc or "").strip() for doc in docs):
            missing.append(f"{cls.__name__}.{name}")
    return missing


def layer_doc_problems(cls) -> list[str]:
    """What a layer's docstring lacks of PyTorch's pattern: a one-line summary, Args (when the
    constructor takes arguments), Shape:, and an Example with doctest lines."""
    doc, problems = own_doc(cls), []
    if not doc:
        return ["no docstring"]
    first = doc.splitlines()[0]
    if not first.strip() or len(doc.splitlines()) > 1 and doc.splitlines()[1].strip():
        problems.append("the summary is not one line followed by a blank line")
    takes_args = len(inspect.signature(cls.__init__).parameters) > 1
    for section in PYTORCH_SECTIONS:
        if section == "Args:" and not takes_args:
            continue
        if not re.search(rf"^\s*{re.escape(section)}", doc, re.MULTILINE):
            problems.append(f"no {section.rstrip(':')} section")
    if ">>>" not in doc:
        problems.append("no example (>>> lines)")
    return problems


def layers():
    """Every layer class convgrad.nn exports (containers included), the base class aside."""
    return [getattr(nn, name) for name in public_api.public_names(nn)
            if inspect.isclass(getattr(nn, name)) and issubclass(getattr(nn, name), nn.Module)
            and getattr(nn, name) not in CONTAINERS]


# ---------------------------------------------------------------------------------------------
# Public names and layer docstrings
# ---------------------------------------------------------------------------------------------
def test_every_public_name_has_a_docstring():
    objects = list(public_api.all_public_objects())
    assert len(objects) > 250, f"only {len(objects)} public names found: is the rule in docs/_ext broken?"
    assert undocumented(objects) == []
    assert undocumented([(m, public_api.load(m)) for m in public_api.MODULES]) == []


def test_every_public_method_has_a_docstring():
    classes = {id(v): v for _, v in public_api.all_public_objects() if inspect.isclass(v)}
    missing = [m for cls in classes.values() for m in undocumented_methods(cls)]
    assert missing == []


@pytest.mark.parametrize("cls", layers(), ids=lambda c: c.__name__)
def test_layer_docstring_follows_pytorch_pattern(cls):
    assert layer_doc_problems(cls) == []


def test_the_checks_catch_what_they_are_for():
    class Bare(nn.Module):
        def __init__(self, k):
            super().__init__()

    class NoShape(nn.Module):
        """y = x.

        Args:
            k: unused.

        Example::

            >>> 1
            1
        """

        def __init__(self, k):
            super().__init__()

    def no_doc():
        pass

    class Methods:
        """A class."""

        def documented(self):
            """Yes."""

        def bare(self):
            pass

        @property
        def bare_property(self):
            return 1

    class Override(Methods):
        """It inherits documented's docstring."""

        def documented(self):
            pass

    assert undocumented([("x.Bare", Bare), ("x.no_doc", no_doc), ("convgrad.nn.Conv2d", nn.Conv2d)]) == \
        ["x.Bare", "x.no_doc"]
    assert undocumented([("convgrad.data.NOT_A_CONSTANT", 1)]) == ["convgrad.data.NOT_A_CONSTANT"]
    assert layer_doc_problems(Bare) == ["no docstring"]
    assert layer_doc_problems(NoShape) == ["no Shape section"]
    assert nn.Conv2d in layers() and nn.Sequential in layers() and nn.Module not in layers()
    assert undocumented_methods(Methods) == ["Methods.bare", "Methods.bare_property"]
    assert undocumented_methods(Override) == []


# ---------------------------------------------------------------------------------------------
# Every example runs and prints what it shows
# ---------------------------------------------------------------------------------------------
def _convgrad_modules():
    names = ["convgrad"]
    for info in pkgutil.walk_packages(convgrad.__path__, "convgrad."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def _module_tests():
    finder = doctest.DocTestFinder()
    found = []
    for name in _convgrad_modules():
        module = importlib.import_module(name)
        tests = [t for t in finder.find(module, name, extraglobs=EXAMPLE_GLOBALS) if t.examples]
        if tests:
            found.append(pytest.param(name, tests, id=name))
    return found


MODULE_TESTS = _module_tests()


@pytest.fixture
def global_state():
    """NumPy's print options and convgrad's default dtype, put back after an example run."""
    printing, dtype = np.get_printoptions(), convgrad.get_default_dtype()
    yield
    np.set_printoptions(**printing)
    convgrad.set_default_dtype(dtype)


def _run(tests) -> str:
    """Run doctests; returns the failure report ('' when all pass)."""
    out = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    for test in tests:
        runner.run(test, out=out.append)
    assert runner.tries > 0
    return "".join(out)


def test_docstring_examples_exist():
    examples = sum(len(t.examples) for p in MODULE_TESTS for t in p.values[1])
    assert examples >= 100, f"only {examples} docstring examples found"


@pytest.mark.parametrize("module_name, tests", MODULE_TESTS)
def test_docstring_examples_run(module_name, tests, global_state):
    failures = _run(tests)
    assert not failures, failures


TUTORIALS = sorted(f for f in os.listdir(os.path.join(DOCS, "tutorials")) if f.endswith(".md"))
FENCE = re.compile(r"^```(python|pycon)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def tutorial_blocks(text: str):
    """(kind, code, line) of each ```python (run as a script) and ```pycon (a doctest) block."""
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 2) for m in FENCE.finditer(text)]


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_runs(name, tmp_path, monkeypatch, global_state):
    """Every block of the page, in order, in one namespace (in a scratch directory)."""
    path = os.path.join(DOCS, "tutorials", name)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for line in re.findall(r"^% requires: (.*)$", text, re.MULTILINE):      # optional packages a page needs
        for package in line.split():
            pytest.importorskip(package, reason=f"{name} needs {package} (the test extra installs it)")
    blocks = tutorial_blocks(text)
    assert len(blocks) >= 5, f"{name}: only {len(blocks)} code blocks"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"tutorial_{name[:-3].replace('-', '_')}"}
    parser = doctest.DocTestParser()
    tests = []
    for kind, code, line in blocks:
        if kind == "python":
            exec(compile(code, f"{path}:{line}", "exec"), namespace)   # an exception fails the test
        else:
            test = parser.get_doctest(code, namespace, name, path, line - 1)
            tests.append(test)
            runner = doctest.DocTestRunner(optionflags=OPTIONS)
            out = []
            runner.run(test, out=out.append, clear_globs=False)
            namespace.update(test.globs)          # a DocTest runs in a copy of the namespace
            assert "".join(out) == "", f"{name}, block at line {line}:\n" + "".join(out)
    assert sum(len(t.examples) for t in tests) >= 10


# ---------------------------------------------------------------------------------------------
# The site
# ---------------------------------------------------------------------------------------------
def test_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e '.[docs]'; the test extra has it)")
    pytest.importorskip("myst_parser", reason="myst-parser is not installed (pip install -e '.[docs]')")
    out = tmp_path / "html"
    result = subprocess.run([sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
                             DOCS, str(out), "-d", str(tmp_path / "doctrees")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-5000:]
    pages = {p: (out / p).read_text(encoding="utf-8") for p in
             ("api/nn.html", "api/functional.html", "cli.html", "architecture.html", "index.html")}
    assert 'id="convgrad.nn.Conv2d"' in pages["api/nn.html"]
    assert 'id="convgrad.functional.conv_general"' in pages["api/functional.html"]
    for option in ("--batch-size", "--scheduler", "--eps", "--kernel-size", "--module"):
        assert option in pages["cli.html"], option
    assert "The convolution family on one primitive" in pages["architecture.html"]
    for name in TUTORIALS:
        assert (out / "tutorials" / name.replace(".md", ".html")).exists(), name
