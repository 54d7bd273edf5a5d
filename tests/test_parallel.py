"""DataParallel: the batch split across threads gives the unsplit output and gradients (up to
the order of float additions), accumulates like backward; BatchNorm and Dropout see the whole batch
through the parts' meeting point."""
import numpy as np
import pytest

from convgrad import models, nn
from convgrad.parallel import DataParallel

pytest.importorskip("threadpoolctl")


def _lenet():
    return models.lenet(generator=0).to(np.float64)


def _pass(runner, model, x, dy, input_grad=True):
    model.zero_grad()
    y = runner(x)
    dx = runner.backward(dy, input_grad=input_grad)
    return y, dx, {k: p.grad.copy() for k, p in model.named_parameters()}


@pytest.mark.parametrize("threads,batch", [(2, 64), (3, 50), (2, 9), (4, 16)])
def test_split_equals_unsplit(threads, batch):
    rng = np.random.default_rng(0)
    model = _lenet()
    x = rng.standard_normal((batch, 1, 28, 28))
    dy = rng.standard_normal((batch, 10))
    y1, dx1, g1 = _pass(model, model, x, dy)
    runner = DataParallel(model, threads=threads)
    y2, dx2, g2 = _pass(runner, model, x, dy)
    assert runner._parts is not None and len(runner._parts) == min(threads, batch // 4)
    np.testing.assert_allclose(y2, y1, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-12, atol=1e-13)
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-11, atol=1e-13, err_msg=k)


def test_same_threads_same_result_and_accumulation():
    rng = np.random.default_rng(1)
    model = _lenet()
    runner = DataParallel(model, threads=2)
    x, dy = rng.standard_normal((32, 1, 28, 28)), rng.standard_normal((32, 10))
    _, dx_a, g_a = _pass(runner, model, x, dy)
    _, dx_b, g_b = _pass(runner, model, x, dy)
    np.testing.assert_array_equal(dx_a, dx_b)                       # deterministic
    for k in g_a:
        np.testing.assert_array_equal(g_a[k], g_b[k])
    runner(x)
    runner.backward(dy)                                             # no zero_grad: adds, as backward does
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * g_a[k], rtol=1e-12, atol=1e-14)


def test_input_grad_false_returns_none_and_keeps_weight_gradients():
    rng = np.random.default_rng(2)
    model = _lenet()
    x, dy = rng.standard_normal((16, 1, 28, 28)), rng.standard_normal((16, 10))
    _, _, g1 = _pass(model, model, x, dy)
    _, dx, g2 = _pass(DataParallel(model, 2), model, x, dy, input_grad=False)
    assert dx is None
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], rtol=1e-11, atol=1e-13)


def test_parameter_updates_reach_the_replicas():
    rng = np.random.default_rng(3)
    model = _lenet()
    runner = DataParallel(model, 2)
    x = rng.standard_normal((16, 1, 28, 28))
    runner(x)
    for p in model.parameters():
        p.data -= 0.1                                            # in place, as the optimisers do
    model[0].weight.data = model[0].weight.data * 2.0            # or a new array
    np.testing.assert_allclose(runner(x), model(x), rtol=1e-13, atol=1e-13)


def _bn_dropout_net(p_drop=0.5):
    """BatchNorm in a residual block and in a stage, Dropout and Dropout2d, float64."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, generator=0), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Dropout2d(p_drop, generator=1), nn.BasicBlock(4, 6, stride=2, generator=2),
                         nn.Flatten(), nn.Dropout(p_drop, generator=3), nn.Linear(6 * 14 * 14, 10, generator=4),
                         nn.BatchNorm1d(10)).to(np.float64)


@pytest.mark.parametrize("threads,batch", [(2, 16), (3, 13), (4, 32)])
def test_batchnorm_and_dropout_in_training_split_equals_unsplit(threads, batch):
    """The parts meet: BatchNorm uses the whole batch's statistics (forward and backward) and
    Dropout the whole batch's mask from the model's generator, so training in parts equals
    training unsplit, running statistics included, step after step."""
    rng = np.random.default_rng(4)
    whole, parted = _bn_dropout_net(), _bn_dropout_net()
    runner = DataParallel(parted, threads)
    for step in range(3):
        x, dy = rng.standard_normal((batch, 1, 28, 28)), rng.standard_normal((batch, 10))
        y1, dx1, g1 = _pass(whole, whole, x, dy)
        y2, dx2, g2 = _pass(runner, parted, x, dy)
        assert runner._parts is not None and len(runner._parts) == min(threads, batch // 4)
        np.testing.assert_allclose(y2, y1, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(dx2, dx1, rtol=1e-10, atol=1e-12)
        for k in g1:
            np.testing.assert_allclose(g2[k], g1[k], rtol=1e-10, atol=1e-12, err_msg=f"step {step}: {k}")
        for (k, b1), b2 in zip(whole.state_dict().items(), parted.state_dict().values()):
            np.testing.assert_allclose(b2, b1, rtol=1e-12, atol=1e-13, err_msg=f"step {step}: {k}")
        for p1, p2 in zip(whole.parameters(), parted.parameters()):
            p1.data -= 0.1 * p1.grad
            p2.data -= 0.1 * p2.grad


@pytest.mark.parametrize("make", [lambda: models.cnn(generator=0), lambda: models.resnet(generator=0)])
def test_builtin_batchnorm_models_split_in_training_and_eval(make):
    model = make().to(np.float64)
    runner = DataParallel(model, 2)
    x = np.random.default_rng(4).standard_normal((8, 1, 28, 28))
    runner(x)
    assert runner._parts is not None
    model.eval()
    y = runner(x)
    assert runner._parts is not None
    np.testing.assert_allclose(y, model(x), rtol=1e-12, atol=1e-12)   # eval: running statistics, no dropout


def test_dropout_rows_of_a_batch_spread_over_processes_are_kept_by_the_parts():
    """Under GlobalBatch a rank's Dropout computes rows [4, 12) of a batch of 16: split across
    threads, each part uses its rows of that same whole-batch mask."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 1, 28, 28))
    outputs = []
    for threads in (1, 2):
        model = _bn_dropout_net()
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.batch_rows = (slice(4, 12), 16)
        runner = DataParallel(model, threads)
        outputs.append(runner(x))
        assert (runner._parts is not None) == (threads == 2)
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-11, atol=1e-12)


def test_no_grad_reaches_every_part():
    """Grad mode is per thread: under no_grad the parts on the worker threads keep no caches either."""
    import convgrad as cg
    model = _bn_dropout_net().eval()
    runner = DataParallel(model, 2)
    x = np.random.default_rng(7).standard_normal((8, 1, 28, 28))
    runner(x)
    assert runner._replicas[0][0]._cache is not None            # grad enabled: the parts keep caches
    for member in (model, runner._replicas[0]):
        for m in member.modules():
            m.__dict__.pop("_cache", None)
    with cg.no_grad():
        y = runner(x)
    assert runner._parts is not None
    for member in (model, runner._replicas[0]):
        assert all(m.__dict__.get("_cache") is None for m in member.modules())
    np.testing.assert_allclose(y, model(x), rtol=1e-12, atol=1e-12)


def test_a_failing_part_raises_its_own_error_and_the_others_do_not_wait():
    """Part 1 fails inside BatchNorm's forward: part 0, waiting for it at the statistics'
    meeting point, is released, and the caller sees part 1's error."""
    model = _bn_dropout_net()
    runner = DataParallel(model, 2)
    runner(np.zeros((8, 1, 28, 28)))
    bad_replica_bn = runner._replicas[0][1]
    bad_replica_bn._check_input = lambda x: (_ for _ in ()).throw(RuntimeError("part 1 broke"))
    with pytest.raises(RuntimeError, match="part 1 broke"):
        runner(np.zeros((8, 1, 28, 28)))


def test_errors_name_what_was_expected():
    model = _lenet()
    runner = DataParallel(model, 2)
    runner(np.zeros((16, 1, 28, 28)))
    with pytest.raises(ValueError, match="expected grad_output with 16 samples"):
        runner.backward(np.zeros((15, 10)))
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        DataParallel(model, 0)
    with pytest.raises(TypeError, match="expected a Module"):
        DataParallel(lambda x: x)
    with pytest.raises(ValueError, match="channels"):             # a layer's own check, raised on this thread
        runner(np.zeros((16, 3, 28, 28)))


def test_state_dict_and_parameters_are_the_modules():
    model = _lenet()
    runner = DataParallel(model, 2)
    assert [id(p) for p in runner.parameters()] == [id(p) for p in model.parameters()]
    assert list(runner.state_dict()) == [f"module.{k}" for k in model.state_dict()]


def test_nested_data_parallel_runs_the_inner_one_unsplit():
    rng = np.random.default_rng(5)
    inner = DataParallel(_lenet(), 2)
    outer = DataParallel(nn.Sequential(inner), 2)
    x = rng.standard_normal((16, 1, 28, 28))
    y = outer(x)                                  # would deadlock if the inner one waited on the busy pool
    assert outer._parts is not None and inner._parts is None
    np.testing.assert_allclose(y, inner.module(x), rtol=1e-13, atol=1e-13)
