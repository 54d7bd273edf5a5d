"""convgrad._threads: the parts a route splits into, nested regions that do not split again,
errors from any part, and the public set_num_threads/get_num_threads."""
import threading

import numpy as np
import pytest

import convgrad
from convgrad import _threads, nn
from convgrad.parallel import DataParallel


@pytest.fixture
def threads(monkeypatch):
    def use(n):
        monkeypatch.setitem(_threads._state, "threads", n)
    return use


def test_parts_cover_the_range_once(threads):
    threads(3)
    parts = _threads.parts(10, 2)
    assert [(s.start, s.stop) for s in parts] == [(0, 3), (3, 6), (6, 10)]
    assert _threads.parts(10, 4) == [slice(0, 5), slice(5, 10)]     # fewer parts when they would be small
    assert _threads.parts(10, 6) is None
    threads(1)
    assert _threads.parts(100, 1) is None


def test_no_splitting_inside_a_parallel_region(threads):
    threads(2)
    with _threads.parallel_region():
        assert _threads.parts(100, 1) is None
    assert _threads.parts(100, 1) is not None
    seen = _threads.run_parts(lambda _: (_threads.parts(100, 1), threading.current_thread().name), [0, 1])
    assert [s[0] for s in seen] == [None, None]                        # both parts, caller and worker
    assert seen[1][1].startswith("convgrad")


def test_results_in_order_and_errors_raised_after_every_part(threads):
    threads(2)
    done = []

    def work(i):
        if i == 0:
            raise ValueError("part 0 failed")
        done.append(i)
        return i
    with pytest.raises(ValueError, match="part 0 failed"):
        _threads.run_parts(work, [0, 1])
    assert done == [1]                                                 # the other part finished first
    assert _threads.run_parts(lambda i: i * i, [1, 2, 3]) == [1, 4, 9]


def test_set_num_threads():
    before = convgrad.get_num_threads()
    try:
        convgrad.set_num_threads(1)
        assert convgrad.get_num_threads() == 1
        with pytest.raises(ValueError, match="positive integer"):
            convgrad.set_num_threads(0)
    finally:
        convgrad.set_num_threads(before)


def test_depthwise_inside_data_parallel_does_not_split_again(threads, monkeypatch):
    pytest.importorskip("threadpoolctl")
    from convgrad.functional.convolution import depthwise
    threads(2)
    monkeypatch.setattr(depthwise, "MIN_CHANNELS", 2)
    layer = nn.Conv2d(8, 8, 3, padding=1, groups=8).to(np.float64)
    x = np.random.default_rng(0).standard_normal((8, 8, 6, 6))
    y = layer(x)
    assert any(isinstance(k, tuple) for k in layer._workspace)      # alone: split over the batch
    runner = DataParallel(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8)).to(np.float64), 2)
    runner.module[0].load_state_dict(layer.state_dict())
    np.testing.assert_allclose(runner(x), y, rtol=1e-13, atol=1e-13)
    assert runner._parts is not None
    assert not any(isinstance(k, tuple) for k in runner.module[0]._workspace)
