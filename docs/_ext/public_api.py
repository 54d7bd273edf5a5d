"""What counts as convgrad's public API: the one rule the API pages and the docstring tests share.

A module's public names are its ``__all__`` when it has one; otherwise every name not starting with
an underscore whose value is a function or class defined in that module or, for a package, in one
of its submodules (helpers a module imports from a sibling, NumPy, argparse, ... are not).
"""
from __future__ import annotations

import importlib
import inspect
import re

# The pages of the API reference and the modules each documents, in order. An object is
# documented where it first appears in this order; later modules that re-export it link to it.
PAGES = {
    "nn": ["convgrad.nn", "convgrad.nn.init"],
    "autograd": ["convgrad.autograd"],
    "functional": ["convgrad.functional"],
    "optim": ["convgrad.optim", "convgrad.optim.lr_scheduler"],
    "data": ["convgrad.data"],
    "train": ["convgrad.train", "convgrad.models", "convgrad.checkpoint", "convgrad.plots"],
    "gradcheck": ["convgrad.gradcheck"],
    "reference": ["convgrad.reference"],
    "explain": ["convgrad.explain"],
    "io": ["convgrad.weights", "convgrad.onnx"],
    "tools": ["convgrad.tools", "convgrad.tools.gradcheck_sweep", "convgrad.tools.attack",
              "convgrad.tools.saliency", "convgrad.tools.report", "convgrad.tools.export", "convgrad.cli"],
    "convgrad": ["convgrad.summary", "convgrad", "convgrad.parallel", "convgrad.memory"],
    "distributed": ["convgrad.distributed"],
}
MODULES = [name for names in PAGES.values() for name in names]


def load(module_name: str):
    return importlib.import_module(module_name)


def public_names(module) -> list[str]:
    """The module's public names in a stable order (``__all__``'s order, else alphabetical)."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        home = getattr(value, "__module__", None) or ""
        inside = home == module.__name__ or (hasattr(module, "__path__") and home.startswith(module.__name__ + "."))
        if (inspect.isclass(value) or inspect.isfunction(value)) and inside:
            names.append(name)
    return sorted(names)


def canonical_places() -> dict[int, str]:
    """id(object) -> the dotted name under which the reference documents it (its first appearance)."""
    places = {}
    for module_name in MODULES:
        module = load(module_name)
        for name in public_names(module):
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                places.setdefault(id(value), f"{module_name}.{name}")
    return places


def all_public_objects():
    """(dotted name, object) for every public name of every documented module."""
    for module_name in MODULES:
        module = load(module_name)
        for name in public_names(module):
            yield f"{module_name}.{name}", getattr(module, name)


def constant_doc(module_name: str, name: str) -> str:
    """The ``#:`` comment above a constant's assignment, in the module or (for a package) the
    submodule that defines it; "" when there is none."""
    import pkgutil
    module = load(module_name)
    candidates = [module]
    if hasattr(module, "__path__"):
        candidates += [load(f"{module_name}.{m.name}") for m in pkgutil.iter_modules(module.__path__)]
    pattern = re.compile(rf"^{re.escape(name)}\s*[:=]")
    for candidate in candidates:
        lines = inspect.getsource(candidate).splitlines()
        for i, line in enumerate(lines):
            if pattern.match(line):
                doc = []
                while i > 0 and lines[i - 1].lstrip().startswith("#:"):
                    i -= 1
                    doc.insert(0, lines[i].lstrip()[2:].strip())
                if doc:
                    return " ".join(doc)
    return ""
