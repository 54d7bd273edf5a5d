"""Models named on the command line: a built-in name, `package.module:factory` or
`path/to/file.py:factory` (a function or class returning a Module), with keyword arguments.

    config = model_config("my_nets.py:small_cnn", {"width": 16}, in_channels=1, image_size=28, num_classes=10)
    model = build(config, seed=0)

The config (a JSON-able dict) is what a run records, so every tool rebuilds the model from the
run directory alone. A factory receives its `args` plus, when its signature names them and the
args do not, `in_channels`, `image_size`, `num_classes` and `generator` (the seed); otherwise the
library's global generator is seeded (convgrad.manual_seed) before the call.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys

from . import models
from .nn.module import Module

DATA_ARGS = ("in_channels", "image_size", "num_classes")


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved or built."""


def _is_file_spec(module_part: str) -> bool:
    return module_part.endswith(".py") or os.sep in module_part or "/" in module_part


def normalise(spec: str) -> str:
    """The spec with a file path made absolute (so the run can be rebuilt from anywhere)."""
    if ":" in spec:
        module_part, _, attr = spec.rpartition(":")
        if _is_file_spec(module_part):
            return f"{os.path.abspath(module_part)}:{attr}"
    return spec


def _load_file(path: str):
    if not os.path.isfile(path):
        raise ModelSpecError(f"{path} does not exist" if not os.path.exists(path) else f"{path} is not a file")
    name = "convgrad_user_" + hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def resolve(spec: str, cwd: str | None = None):
    """The factory a spec names (a built-in name gives models.build's builder)."""
    if spec in models.MODELS:
        return getattr(models, spec)
    if ":" not in spec:
        raise ModelSpecError(f"expected one of {', '.join(models.MODELS)}, 'package.module:factory' or "
                             f"'path/to/file.py:factory', got {spec!r}")
    module_part, _, attr = spec.rpartition(":")
    if not module_part or not attr:
        raise ModelSpecError(f"expected 'package.module:factory' or 'file.py:factory', got {spec!r}")
    try:
        if _is_file_spec(module_part):
            module = _load_file(module_part)
        else:
            for d in (cwd, os.getcwd()):
                if d and d not in sys.path:
                    sys.path.insert(0, d)
            module = importlib.import_module(module_part)
    except ModelSpecError:
        raise
    except Exception as exc:          # the user's module failed to import: say so in one line
        raise ModelSpecError(f"cannot import {module_part!r}: {type(exc).__name__}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelSpecError(f"{module_part!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelSpecError(f"{spec}: {attr!r} is not a function or class")
    return obj


def model_config(spec: str, args: dict | None, in_channels: int, image_size: int, num_classes: int) -> dict:
    """What a run records about its model."""
    config = {"name": normalise(spec), "in_channels": int(in_channels), "image_size": int(image_size),
              "num_classes": int(num_classes)}
    if spec not in models.MODELS:
        config["args"] = dict(args or {})
        config["cwd"] = os.getcwd()
    elif args:
        raise ModelSpecError(f"--model-args apply to a factory spec, not to the built-in model {spec!r}")
    return config


def build(config: dict, seed=None) -> Module:
    """The model a config describes, initialised from `seed` (None: the global generator)."""
    name = config["name"]
    if name in models.MODELS:
        return models.build(name, config["in_channels"], config["image_size"], config["num_classes"], generator=seed)
    factory = resolve(name, config.get("cwd"))
    kwargs = dict(config.get("args") or {})
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    for key in DATA_ARGS:
        if key in params and key not in kwargs:
            kwargs[key] = config[key]
    if "generator" in params and "generator" not in kwargs:
        kwargs["generator"] = seed
    elif seed is not None:
        from .nn.init import manual_seed
        manual_seed(seed)
    try:
        model = factory(**kwargs)
    except Exception as exc:
        raise ModelSpecError(f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) failed: "
                             f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(model, Module):
        raise ModelSpecError(f"{name} returned {type(model).__name__}, not a convgrad Module")
    return model
