"""Command-line argument checking: one line per error, every value checked before any work.

    parser = OneLineParser(prog="convgrad")            # its subparsers are OneLineParsers too
    check_args(args, TRAIN_RULES)                       # raises UsageError("--lr must be ...")

A rule maps an argparse destination to a check; a check takes the value and returns an error
message or None. `convgrad.cli.main` prints `convgrad train: error: MESSAGE` and exits 2.
"""
from __future__ import annotations

import argparse
import math
import os


class UsageError(ValueError):
    """A command-line argument that is out of range or inconsistent: exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line `PROG: error: MESSAGE` on stderr (no usage block), exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Docstrings keep their layout; every option with a default value shows it (flags and options
    whose absence means something else say so in their help)."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = action.default is not None and action.default is not False and action.default != argparse.SUPPRESS
        if "(default" in text or not shown or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)".lstrip()


def option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


# ---- checks: value -> message or None -----------------------------------------------------------
def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def integer(minimum: int | None = None, maximum: int | None = None):
    def check(v):
        if not isinstance(v, int) or isinstance(v, bool) or (minimum is not None and v < minimum) \
                or (maximum is not None and v > maximum):
            bounds = (f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}") if minimum is not None \
                else f"<= {maximum}"
            return f"must be an integer {bounds}, got {v}"
        return None
    return check


def number(above=None, at_least=None, below=None, at_most=None):
    """A finite float within the given bounds (`above`/`below` exclusive, `at_least`/`at_most` inclusive)."""
    parts = [f"> {above:g}" if above is not None else None, f">= {at_least:g}" if at_least is not None else None,
             f"< {below:g}" if below is not None else None, f"<= {at_most:g}" if at_most is not None else None]
    wanted = " and ".join(p for p in parts if p)

    def check(v):
        ok = _is_number(v) and math.isfinite(v) and (above is None or v > above) \
            and (at_least is None or v >= at_least) and (below is None or v < below) \
            and (at_most is None or v <= at_most)
        return None if ok else f"must be a finite number{' ' + wanted if wanted else ''}, got {v}"
    return check


def non_empty(v):
    return "must not be empty" if isinstance(v, str) and not v.strip() else None


def existing_path(v):
    if isinstance(v, str) and not v.strip():
        return "must not be empty"
    return None if os.path.exists(v) else f"{v!r} does not exist"


def run_path(v):
    """A run directory (holding checkpoint.npz or best.npz) or a checkpoint file."""
    if isinstance(v, str) and not v.strip():
        return "must not be empty"
    if not os.path.exists(v):
        return f"no checkpoint or run directory at {v!r}"
    if os.path.isdir(v) and not any(os.path.isfile(os.path.join(v, f)) for f in ("checkpoint.npz", "best.npz")):
        return f"{v!r} holds no checkpoint.npz (not a run directory)"
    return None


def existing_files(values):
    for v in values:
        if not os.path.isfile(v):
            return f"{v!r} is not a file" if os.path.exists(v) else f"{v!r} does not exist"
    return None


def each(check):
    def check_all(values):
        for v in values:
            message = check(v)
            if message:
                return message
        return None
    return check_all


def check_args(args, rules: dict, positional=()) -> None:
    """Apply {dest: check} to the parsed args (a None value is an absent optional, skipped).
    Positional arguments (named in `positional`) are called by their name, options by --name."""
    for dest, check in rules.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        message = check(value)
        if message:
            raise UsageError(f"{dest.upper()}: {message}" if dest in positional else f"{option(dest)} {message}")
