"""The bad-input catalogue (issue 11): every case must raise the exception type it names, with
a message naming what was wrong and where — never a raw NumPy/Python error, never a silent
result. Cases: tests/bad_input_cases.py (tables: layer x argument x bad value, ...).

Cases in the engine helper's files (convolution, pooling, padding, resample, im2col and their
layers) that do not pass yet are listed with the behaviour observed in
tests/bad_inputs_engine_xfail.py and run as strict xfails: each must keep failing until the
engine is fixed, and then the entry must be removed.
"""
from __future__ import annotations

import re
import warnings

import pytest

from bad_input_cases import all_cases
from bad_inputs_engine_xfail import ENGINE_XFAIL

CASES = all_cases()


def check(case) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(case.exc) as info:
            case.fn()
    message = str(info.value)
    for pattern in case.names:
        assert re.search(pattern, message, re.IGNORECASE), f"{case.id}: message {message!r} does not name {pattern!r}"


def _param(case):
    marks = []
    if case.id in ENGINE_XFAIL:
        assert case.owner != "mine", f"{case.id} is in this helper's own files: fix it, do not xfail it"
        marks.append(pytest.mark.xfail(strict=True, reason=ENGINE_XFAIL[case.id]))
    return pytest.param(case, id=case.id, marks=marks)


def test_catalogue_is_large_and_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(ids) >= 1000
    assert set(ENGINE_XFAIL) <= set(ids), sorted(set(ENGINE_XFAIL) - set(ids))[:5]


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case):
    check(case)
