"""Losses: torch oracle (float64, ~1e-10 relative) for every reduction, class weights, label
smoothing, ignore_index, spatial and probability targets; gradcheck; API and errors."""
import itertools
import warnings
import zlib

import numpy as np
import pytest

import convgrad
from convgrad import functional as F, nn
from convgrad.functional import loss as FL
from convgrad.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-10, 1e-13
REDUCTIONS = ("mean", "sum", "none")
# (input shape, target shape); the class dim is 1 (or 0 for the unbatched (C,))
CLASS_SHAPES = [((6, 5), (6,)), ((3, 4, 5, 2), (3, 5, 2)), ((2, 3, 7), (2, 7)), ((5,), ())]
SHAPE_IDS = ["NC", "NCHW", "NCL", "C"]


def seed_of(*args):
    """A seed fixed across runs (hash() of strings is salted per process)."""
    return zlib.crc32(repr(args).encode())


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def t(a):
    return None if a is None else torch.tensor(a)


def run_pair(ours, theirs, pred, target, reduction, rng):
    """Loss and dLoss/dpred from both, with a random upstream gradient."""
    loss = ours(pred, target)
    pt = torch.tensor(pred, requires_grad=True)
    lt = theirs(pt, torch.tensor(target))
    g = rng.standard_normal(np.shape(lt.detach().numpy()))
    lt.backward(torch.tensor(g))
    grad = ours.backward(g if reduction == "none" else float(g))
    close(loss, lt.detach().numpy())
    close(grad, pt.grad.numpy())
    assert grad.shape == pred.shape
    return loss, grad


def class_targets(rng, shape, n_classes, ignore):
    tgt = rng.integers(0, n_classes, size=shape)
    if ignore is not None and tgt.size > 1:
        tgt.flat[rng.choice(tgt.size, size=max(1, tgt.size // 3), replace=False)] = ignore
    return tgt


# ---- cross-entropy, class-index targets -----------------------------------------------
@pytest.mark.parametrize("shapes", CLASS_SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,smoothing,ignore", list(itertools.product(
    [False, True], [0.0, 0.2], [None, -100, 2])))
def test_cross_entropy_index_targets(shapes, reduction, weighted, smoothing, ignore):
    x_shape, t_shape = shapes
    rng = np.random.default_rng(seed_of(x_shape, reduction, weighted, smoothing, ignore))
    n_classes = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    x = rng.standard_normal(x_shape) * 3
    tgt = class_targets(rng, t_shape, n_classes, ignore)
    w = rng.uniform(0.2, 2.0, n_classes) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing, ignore_index=-100 if ignore is None else ignore)
    run_pair(CrossEntropyLoss(w, **kw), torch.nn.CrossEntropyLoss(t(w), **kw), x, tgt, reduction, rng)


# ---- cross-entropy, probability targets -----------------------------------------------
@pytest.mark.parametrize("shapes", CLASS_SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,smoothing", list(itertools.product([False, True], [0.0, 0.3])))
def test_cross_entropy_probability_targets(shapes, reduction, weighted, smoothing):
    x_shape, _ = shapes
    rng = np.random.default_rng(seed_of(x_shape, reduction, weighted, smoothing))
    class_dim = 0 if len(x_shape) == 1 else 1
    x = rng.standard_normal(x_shape) * 3
    q = rng.uniform(size=x_shape)
    q /= q.sum(axis=class_dim, keepdims=True)
    w = rng.uniform(0.2, 2.0, x_shape[class_dim]) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    run_pair(CrossEntropyLoss(w, **kw), torch.nn.CrossEntropyLoss(t(w), **kw), x, q, reduction, rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_extreme_logits_finite(reduction, smoothing):
    rng = np.random.default_rng(0)
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4], [-1e4, 0.0, 1e4]])
    tgt = np.array([1, 2, 0, 0])
    w = np.array([0.5, 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = run_pair(CrossEntropyLoss(w, reduction=reduction, label_smoothing=smoothing),
                              torch.nn.CrossEntropyLoss(t(w), reduction=reduction, label_smoothing=smoothing),
                              x, tgt, reduction, rng)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert np.max(loss) > 1e3            # wrong classes cost ~1e4..2e4 each, not inf
    x32 = x.astype(np.float32)
    crit = CrossEntropyLoss(reduction=reduction)
    assert np.isfinite(crit(x32, tgt)).all() and np.isfinite(crit.backward()).all()


def test_cross_entropy_all_ignored_is_nan_as_torch():
    x = np.random.default_rng(0).standard_normal((3, 4))
    tgt = np.full(3, -100)
    crit = CrossEntropyLoss()
    assert np.isnan(crit(x, tgt))
    np.testing.assert_array_equal(crit.backward(), np.zeros_like(x))   # torch: zero gradient
    assert np.isnan(torch.nn.CrossEntropyLoss()(torch.tensor(x), torch.tensor(tgt)).item())


# ---- NLL ------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", CLASS_SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,ignore", list(itertools.product([False, True], [None, -1, 0])))
def test_nll_loss(shapes, reduction, weighted, ignore):
    x_shape, t_shape = shapes
    rng = np.random.default_rng(seed_of(x_shape, reduction, weighted, ignore))
    n_classes = x_shape[0] if len(x_shape) == 1 else x_shape[1]
    logp = torch.log_softmax(torch.tensor(rng.standard_normal(x_shape)), dim=0 if len(x_shape) == 1 else 1).numpy()
    tgt = class_targets(rng, t_shape, n_classes, ignore)
    w = rng.uniform(0.2, 2.0, n_classes) if weighted else None
    kw = dict(reduction=reduction, ignore_index=-100 if ignore is None else ignore)
    run_pair(NLLLoss(w, **kw), torch.nn.NLLLoss(t(w), **kw), logp, tgt, reduction, rng)


def test_log_softmax_then_nll_equals_cross_entropy():
    rng = np.random.default_rng(1)
    x, tgt = rng.standard_normal((5, 4, 3)), rng.integers(0, 4, (5, 3))
    from convgrad.nn.activation import LogSoftmax
    ls, nll, ce = LogSoftmax(dim=1), NLLLoss(), CrossEntropyLoss()
    close(nll(ls(x), tgt), ce(x, tgt))
    close(ls.backward(nll.backward()), ce.backward())


# ---- regression losses ----------------------------------------------------------------
@pytest.mark.parametrize("cls", [MSELoss, L1Loss])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4, 5), ()])
def test_regression_losses(cls, reduction, shape):
    rng = np.random.default_rng(len(shape))
    x, y = rng.standard_normal(shape), rng.standard_normal(shape)
    if x.size > 2:
        y.flat[:2] = x.flat[:2]                  # ties: L1's subgradient 0 at 0, as torch
    run_pair(cls(reduction=reduction), getattr(torch.nn, cls.__name__)(reduction=reduction), x, y, reduction, rng)


def test_l1_subgradient_zero_at_tie():
    crit = L1Loss(reduction="sum")
    crit(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0]))
    np.testing.assert_array_equal(crit.backward(), [0.0, 1.0, -1.0])


# ---- BCE with logits ------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [None, "class", "full"])
@pytest.mark.parametrize("pos_weight", [None, "class"])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3, 4)])
def test_bce_with_logits(reduction, weight, pos_weight, shape):
    rng = np.random.default_rng(seed_of(reduction, weight, pos_weight, shape))
    x = rng.standard_normal(shape) * 4
    y = rng.uniform(size=shape)
    y.flat[::3] = np.round(y.flat[::3])
    shapes = {None: None, "class": (shape[-1],), "full": shape}
    w = None if weight is None else rng.uniform(0.1, 2, shapes[weight])
    pw = None if pos_weight is None else rng.uniform(0.1, 3, shapes[pos_weight])
    ours = BCEWithLogitsLoss(weight=w, reduction=reduction, pos_weight=pw)
    theirs = torch.nn.BCEWithLogitsLoss(weight=t(w), reduction=reduction, pos_weight=t(pw))
    run_pair(ours, theirs, x, y, reduction, rng)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_extreme_logits(reduction):
    rng = np.random.default_rng(0)
    x = np.array([[1e4, -1e4, 0.0, 50.0], [-1e4, 1e4, -50.0, 1e-9]])
    y = np.array([[0.0, 1.0, 0.5, 0.0], [0.0, 1.0, 1.0, 0.3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, grad = run_pair(BCEWithLogitsLoss(reduction=reduction, pos_weight=np.array([1, 2, 3, 0.5])),
                              torch.nn.BCEWithLogitsLoss(reduction=reduction,
                                                         pos_weight=torch.tensor([1, 2, 3, 0.5], dtype=torch.float64)),
                              x, y, reduction, rng)
    assert np.isfinite(loss).all() and np.isfinite(grad).all()


# ---- gradcheck on every loss ----------------------------------------------------------
def _loss_fn(crit, target):
    def f(x):
        return np.asarray(crit(x, target))

    def back(g, x):
        crit(x, target)
        return crit.backward(g)
    return f, back


GRADCHECK_CASES = {
    "ce": lambda r, rng: (CrossEntropyLoss(rng.uniform(0.5, 2, 4), reduction=r, label_smoothing=0.1, ignore_index=1),
                          rng.standard_normal((3, 4, 2)), rng.integers(0, 4, (3, 2))),
    "ce_probs": lambda r, rng: (CrossEntropyLoss(reduction=r, label_smoothing=0.2), rng.standard_normal((3, 4)),
                                rng.dirichlet(np.ones(4), 3)),
    "nll": lambda r, rng: (NLLLoss(rng.uniform(0.5, 2, 4), reduction=r), rng.standard_normal((5, 4)),
                           rng.integers(0, 4, 5)),
    "mse": lambda r, rng: (MSELoss(reduction=r), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
    "l1": lambda r, rng: (L1Loss(reduction=r), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))),
    "bce": lambda r, rng: (BCEWithLogitsLoss(rng.uniform(0.5, 2, 4), reduction=r, pos_weight=rng.uniform(0.5, 2, 4)),
                           rng.standard_normal((3, 4)), rng.uniform(size=(3, 4))),
}


@pytest.mark.parametrize("name", list(GRADCHECK_CASES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(name, reduction):
    crit, x, target = GRADCHECK_CASES[name](reduction, np.random.default_rng(4))
    f, back = _loss_fn(crit, target)
    report = convgrad.gradcheck(f, x, backward=back)
    assert report.passed, report


# ---- API ------------------------------------------------------------------------------
def test_api_scalar_loss_and_default_backward():
    rng = np.random.default_rng(0)
    x, tgt = rng.standard_normal((4, 3)).astype(np.float32), rng.integers(0, 3, 4)
    crit = CrossEntropyLoss()
    loss = crit(x, tgt)
    assert isinstance(float(loss), float) and np.ndim(loss) == 0 and loss.dtype == np.float32
    g1 = crit.backward()
    assert g1.dtype == np.float32 and g1.shape == x.shape
    np.testing.assert_allclose(crit.backward(2.0), 2 * g1, rtol=1e-6)
    np.testing.assert_allclose(crit.backward(np.array(2.0)), 2 * g1, rtol=1e-6)
    assert crit.forward(x, tgt) == loss


@pytest.mark.parametrize("cls,target", [(CrossEntropyLoss, "int"), (NLLLoss, "int"), (MSELoss, "float"),
                                        (L1Loss, "float"), (BCEWithLogitsLoss, "float")])
def test_api_none_reduction_backward_default_ones(cls, target):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    tgt = rng.integers(0, 3, 4) if target == "int" else rng.uniform(size=(4, 3))
    per = cls(reduction="none")
    losses = per(x, tgt)
    assert isinstance(losses, np.ndarray) and losses.shape == ((4,) if target == "int" else (4, 3))
    total = cls(reduction="sum")
    close(total(x, tgt), losses.sum())
    close(per.backward(), total.backward())
    with pytest.raises(ValueError, match=f"{cls.__name__} backward: reduction='none'.*shape"):
        per.backward(np.ones(7))
    with pytest.raises(ValueError, match=f"{cls.__name__} backward: reduction='sum' gives a scalar"):
        total.backward(np.ones(3))
    assert per(x.astype(np.float32), tgt if target == "int" else tgt.astype(np.float32)).dtype == np.float32
    assert per.backward().dtype == np.float32


def test_weight_buffers_state_dict_as_torch():
    w = np.array([1.0, 2.0, 0.5], np.float32)
    for ours, theirs in [(CrossEntropyLoss(w), torch.nn.CrossEntropyLoss(torch.tensor(w))),
                         (NLLLoss(w), torch.nn.NLLLoss(torch.tensor(w))),
                         (BCEWithLogitsLoss(w, pos_weight=w), torch.nn.BCEWithLogitsLoss(torch.tensor(w),
                                                                                         pos_weight=torch.tensor(w))),
                         (CrossEntropyLoss(), torch.nn.CrossEntropyLoss()), (MSELoss(), torch.nn.MSELoss())]:
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict({k: v.numpy() * 2 for k, v in theirs.state_dict().items()})
        for k, v in theirs.state_dict().items():
            np.testing.assert_array_equal(ours.state_dict()[k], v.numpy() * 2)
    crit = CrossEntropyLoss([1, 2, 3])
    assert crit.weight.dtype == np.float32
    assert crit.double().weight.dtype == np.float64


def test_legacy_size_average_reduce():
    with pytest.warns(DeprecationWarning):
        assert MSELoss(reduce=False).reduction == "none"
    with pytest.warns(DeprecationWarning):
        assert CrossEntropyLoss(None, False).reduction == "sum"


def test_functional_forms():
    rng = np.random.default_rng(0)
    x, tgt, y = rng.standard_normal((4, 3)), rng.integers(0, 3, 4), rng.uniform(size=(4, 3))
    close(FL.cross_entropy(x, tgt, label_smoothing=0.1), CrossEntropyLoss(label_smoothing=0.1)(x, tgt))
    close(FL.nll_loss(x, tgt, reduction="sum"), NLLLoss(reduction="sum")(x, tgt))
    close(FL.mse_loss(x, y), MSELoss()(x, y))
    close(FL.l1_loss(x, y), L1Loss()(x, y))
    close(FL.binary_cross_entropy_with_logits(x, y), BCEWithLogitsLoss()(x, y))


# ---- errors ---------------------------------------------------------------------------
def test_class_target_errors():
    x = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: target value 7 is out of range: class indices "
                                         r"must be in \[0, 4\] \(C=5\) or equal ignore_index=-100"):
        CrossEntropyLoss()(x, np.array([0, 7, 1, 2]))
    with pytest.raises(ValueError, match=r"NLLLoss: target value -1 is out of range.*\[0, 4\]"):
        NLLLoss()(x, np.array([0, -1, 1, 2]))
    NLLLoss(ignore_index=-1)(x, np.array([0, -1, 1, 2]))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: expected target of shape \(4,\).*got \(3,\)"):
        CrossEntropyLoss()(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: expected target of shape \(4, 2\)"):
        CrossEntropyLoss()(np.zeros((4, 5, 2)), np.zeros((4, 3), np.int64))
    with pytest.raises(TypeError, match="NLLLoss: expected class-index targets of an integer dtype, got dtype bool"):
        NLLLoss()(x, np.array([True, False, True, True]))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: class-probability targets must have the input's "
                                         r"shape \(4, 5\), got \(4,\)"):
        CrossEntropyLoss()(x, np.array([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(TypeError, match="NLLLoss: expected class-index targets of an integer dtype, got dtype float64"):
        NLLLoss()(x, np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: expected weight of shape \(5,\) \(one per class\)"):
        CrossEntropyLoss(np.ones(3))(x, np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="CrossEntropyLoss: expected input of dtype float32 or float64"):
        CrossEntropyLoss()(np.zeros((4, 5), np.int64), np.zeros(4, np.int64))


def test_argument_and_regression_errors():
    with pytest.raises(ValueError, match=r"MSELoss: target shape \(3,\) does not match input shape \(3, 1\)"):
        MSELoss()(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(TypeError, match="L1Loss: expected a floating target.*int64"):
        L1Loss()(np.zeros(3), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"BCEWithLogitsLoss: pos_weight of shape \(3,\) does not broadcast"):
        BCEWithLogitsLoss(pos_weight=np.ones(3))(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="CrossEntropyLoss: label_smoothing must be <= 1.0, got 1.5"):
        CrossEntropyLoss(label_smoothing=1.5)
    for cls in (CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, BCEWithLogitsLoss):
        with pytest.raises(RuntimeError, match=f"{cls.__name__}.backward.*before forward"):
            cls().backward()


# ---------------------------------------------------------------------------------------
# recorded mode: a target that requires grad gets torch's gradient (module and functional)
# ---------------------------------------------------------------------------------------
_TARGET_LOSSES = {
    "mse": (lambda r: nn.MSELoss(reduction=r), lambda r: torch.nn.MSELoss(reduction=r),
            lambda x, y, r: F.mse_loss(x, y, reduction=r), "normal"),
    "l1": (lambda r: nn.L1Loss(reduction=r), lambda r: torch.nn.L1Loss(reduction=r),
           lambda x, y, r: F.l1_loss(x, y, reduction=r), "normal"),
    "bce": (lambda r: nn.BCEWithLogitsLoss(reduction=r), lambda r: torch.nn.BCEWithLogitsLoss(reduction=r),
            lambda x, y, r: F.binary_cross_entropy_with_logits(x, y, reduction=r), "prob"),
    "bce-weighted": (lambda r: nn.BCEWithLogitsLoss(weight=np.array([1.0, 3.0, 0.2]), reduction=r,
                                                    pos_weight=np.array([2.0, 0.5, 1.0])),
                     lambda r: torch.nn.BCEWithLogitsLoss(weight=torch.tensor([1.0, 3.0, 0.2], dtype=torch.float64),
                                                          reduction=r,
                                                          pos_weight=torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)),
                     lambda x, y, r: F.binary_cross_entropy_with_logits(x, y, weight=np.array([1.0, 3.0, 0.2]), reduction=r,
                                                                        pos_weight=np.array([2.0, 0.5, 1.0])), "prob"),
}


@pytest.mark.parametrize("route", ["module", "functional"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(_TARGET_LOSSES))
def test_a_target_that_requires_grad_gets_torchs_gradient(name, reduction, route):
    cg = convgrad
    make, tmake, functional, kind = _TARGET_LOSSES[name]
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, 3))
    y0 = rng.standard_normal((4, 3)) if kind == "normal" else rng.uniform(0, 1, (4, 3))
    g = rng.standard_normal((4, 3)) if reduction == "none" else None
    x, y = cg.tensor(x0.copy(), requires_grad=True), cg.tensor(y0.copy(), requires_grad=True)
    loss = make(reduction)(x, y) if route == "module" else functional(x, y, reduction)
    loss.backward(g)
    tx, ty = torch.from_numpy(x0.copy()).requires_grad_(), torch.from_numpy(y0.copy()).requires_grad_()
    tmake(reduction)(tx, ty).backward(None if g is None else torch.from_numpy(g))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), rtol=1e-10, atol=1e-12)
