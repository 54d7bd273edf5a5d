"""convgrad.optim against torch.optim: optimisers, schedulers, clipping, state dicts."""
import io
import itertools
import json
import math

import numpy as np
import pytest

import convgrad as cg
from convgrad.nn.module import Parameter
from convgrad.optim import SGD, Adam, AdamW, Optimizer, clip_grad_norm_, clip_grad_value_
from convgrad.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, StepLR

torch = pytest.importorskip("torch")

RTOL = 1e-12
SHAPES = [(3, 4), (5,), (2, 3, 2)]


# ---- helpers ------------------------------------------------------------------------------
def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    return [Parameter(a.copy()) for a in init], [torch.tensor(a.copy(), requires_grad=True) for a in init]


def grads_for(step, rng, dtype=np.float64):
    """Random grads for one step; parameter 2 has no grad on steps 1 and 3 (it must be skipped)."""
    return [None if (i == 2 and step in (1, 3)) else rng.standard_normal(s).astype(dtype)
            for i, s in enumerate(SHAPES)]


def set_grads(cps, tps, grads):
    for cp, tp, g in zip(cps, tps, grads):
        cp.grad = None if g is None else g.copy()
        tp.grad = None if g is None else torch.tensor(g.copy())


def run_both(copt, topt, cps, tps, steps, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    for step in range(steps):
        set_grads(cps, tps, grads_for(step, rng, dtype))
        copt.step()
        topt.step()


def assert_params_close(cps, tps, rtol=RTOL, atol=0.0):
    for cp, tp in zip(cps, tps):
        np.testing.assert_allclose(cp.data, tp.detach().numpy(), rtol=rtol, atol=atol)


def run_steps(opt, params, steps, rng):
    for step in range(steps):
        for p, g in zip(params, grads_for(step, rng)):
            p.grad = g
        opt.step()


def npz_json_roundtrip(state_dict):
    """Save arrays to an .npz and everything else to JSON, as a checkpoint would; load back."""
    arrays = {}

    def strip(obj, path):
        if isinstance(obj, np.ndarray):
            arrays[path] = obj
            return {"__array__": path}
        if isinstance(obj, dict):
            return {str(k): strip(v, f"{path}/{k}") for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [strip(v, f"{path}/{i}") for i, v in enumerate(obj)]
        assert obj is None or isinstance(obj, (bool, int, float, str)), type(obj)
        return obj

    meta = json.dumps(strip(state_dict, "sd"))
    buf = io.BytesIO()
    np.savez(buf, **{k.replace("/", "."): v for k, v in arrays.items()})
    buf.seek(0)
    loaded = np.load(buf, allow_pickle=False)

    def restore(obj):
        if isinstance(obj, dict):
            if set(obj) == {"__array__"}:
                return loaded[obj["__array__"].replace("/", ".")]
            return {k: restore(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [restore(v) for v in obj]
        return obj

    return restore(json.loads(meta))


# ---- optimiser grids ------------------------------------------------------------------------
def sgd_grid():
    for momentum, dampening, nesterov, wd, maximize in itertools.product(
            (0.0, 0.9), (0.0, 0.3), (False, True), (0.0, 0.01), (False, True)):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        yield dict(lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov,
                   weight_decay=wd, maximize=maximize)


def adam_grid(default_wd):
    for amsgrad, wd, maximize, betas in itertools.product(
            (False, True), (0.0, default_wd), (False, True), ((0.9, 0.999), (0.5, 0.9))):
        yield dict(lr=0.01, betas=betas, eps=1e-8, weight_decay=wd, amsgrad=amsgrad, maximize=maximize)


OPTIMISERS = ([(SGD, torch.optim.SGD, kw) for kw in sgd_grid()]
              + [(Adam, torch.optim.Adam, kw) for kw in adam_grid(0.1)]
              + [(AdamW, torch.optim.AdamW, kw) for kw in adam_grid(0.1)])
IDS = [f"{c.__name__}-" + "-".join(f"{k}={v}" for k, v in kw.items()) for c, _, kw in OPTIMISERS]


@pytest.mark.parametrize("cls,tcls,kwargs", OPTIMISERS, ids=IDS)
def test_matches_torch_float64(cls, tcls, kwargs):
    cps, tps = make_params()
    copt, topt = cls(cps, **kwargs), tcls(tps, **kwargs)
    run_both(copt, topt, cps, tps, steps=7)
    assert_params_close(cps, tps)
    # The state matches torch's too, under the same keys and indices.
    ours, theirs = copt.state_dict(), topt.state_dict()
    assert set(ours["state"]) == set(theirs["state"])
    for idx, entry in theirs["state"].items():
        assert set(ours["state"][idx]) == set(entry)
        for key, value in entry.items():
            np.testing.assert_allclose(ours["state"][idx][key], value.numpy(), rtol=RTOL)
    assert [g["params"] for g in ours["param_groups"]] == [g["params"] for g in theirs["param_groups"]]


@pytest.mark.parametrize("cls,tcls,kwargs", [OPTIMISERS[i] for i in (3, 10, 25, 40)])
def test_matches_torch_float32(cls, tcls, kwargs):
    cps, tps = make_params(dtype=np.float32)
    copt, topt = cls(cps, **kwargs), tcls(tps, **kwargs)
    run_both(copt, topt, cps, tps, steps=6, dtype=np.float32)
    for cp in cps:
        assert cp.data.dtype == np.float32
    assert_params_close(cps, tps, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,tcls", [(SGD, torch.optim.SGD), (Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)])
def test_param_groups_match_torch(cls, tcls):
    cps, tps = make_params()
    extra = {"momentum": 0.9} if cls is SGD else {"betas": (0.8, 0.99)}
    copt = cls([{"params": cps[:2]}, {"params": cps[2:], "lr": 0.2, **extra}], lr=0.01)
    topt = tcls([{"params": tps[:2]}, {"params": tps[2:], "lr": 0.2, **extra}], lr=0.01)
    run_both(copt, topt, cps, tps, steps=6)
    assert_params_close(cps, tps)


def test_step_keeps_dtype_and_leaves_grad_untouched():
    p = Parameter(np.ones((2, 3), np.float32))
    for opt in (SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1, maximize=True),
                Adam([p], weight_decay=0.1, maximize=True, amsgrad=True), AdamW([p])):
        g = np.full((2, 3), 0.5)          # a float64 grad on a float32 parameter
        p.grad = g.copy()
        data = p.data
        opt.step()
        opt.step()
        assert p.data is data and p.data.dtype == np.float32
        np.testing.assert_array_equal(p.grad, g)
        for value in opt.state[p].values():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32


def test_zero_grad_and_closure():
    cps, _ = make_params()
    opt = SGD(cps, lr=0.1)
    for p in cps:
        p.grad = np.ones_like(p.data)
    grads = [p.grad for p in cps]
    opt.zero_grad(set_to_none=False)
    for p, g in zip(cps, grads):
        assert p.grad is g and not p.grad.any()
    opt.zero_grad()
    assert all(p.grad is None for p in cps)
    before = [p.data.copy() for p in cps]
    assert opt.step(lambda: 3.5) == 3.5      # no grads: nothing moves
    for p, b in zip(cps, before):
        np.testing.assert_array_equal(p.data, b)


def test_with_a_module_and_named_parameters():
    model = cg.nn.Conv2d(2, 3, 3)
    opt = SGD(model.named_parameters(), lr=0.1, momentum=0.9)
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    w = model.weight.data.copy()
    opt.step()
    np.testing.assert_allclose(model.weight.data, w - np.float32(0.1), rtol=1e-6)


# ---- state dicts ----------------------------------------------------------------------------
@pytest.mark.parametrize("cls,tcls,kwargs", [OPTIMISERS[i] for i in (0, 5, 14, 20, 31, 44)])
@pytest.mark.parametrize("via_files", [False, True])
def test_state_dict_resume(cls, tcls, kwargs, via_files):
    straight, _ = make_params()
    opt = cls(straight, **kwargs)
    run_steps(opt, straight, 6, np.random.default_rng(7))

    resumed, _ = make_params()
    rng = np.random.default_rng(7)
    opt = cls(resumed, **kwargs)
    run_steps(opt, resumed, 3, rng)
    saved = opt.state_dict()
    if via_files:
        saved = npz_json_roundtrip(saved)
    saved_params = [p.data.copy() for p in resumed]
    resumed, _ = make_params(seed=99)                  # fresh parameters and optimiser
    for p, d in zip(resumed, saved_params):
        p.data[...] = d
    opt = cls(resumed, lr=123.0)                       # options must come from the state
    opt.load_state_dict(saved)
    for step in range(3, 6):
        for p, g in zip(resumed, grads_for(step, rng)):
            p.grad = g
        opt.step()
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.data, b.data)


def test_state_dict_is_plain_and_a_copy():
    cps, _ = make_params()
    opt = Adam([{"params": cps[:1]}, {"params": cps[1:], "lr": 0.1}], amsgrad=True)
    run_steps(opt, cps, 2, np.random.default_rng(0))
    sd = opt.state_dict()
    assert sd["param_groups"][1]["params"] == [1, 2]
    assert sd["state"][0]["step"] == 2 and type(sd["state"][0]["step"]) is int
    sd["state"][0]["exp_avg"][...] = 0
    assert opt.state[cps[0]]["exp_avg"].any()
    npz_json_roundtrip(sd)                             # raises on any non-plain leaf


def test_load_torch_state_dict_continues_like_torch():
    """A torch Adam state (tensors converted to arrays) loads and continues identically."""
    cps, tps = make_params()
    topt = torch.optim.Adam(tps, lr=0.01, amsgrad=True, weight_decay=0.1)
    rng = np.random.default_rng(3)
    for step in range(3):
        set_grads(cps, tps, grads_for(step, rng))
        topt.step()
    for cp, tp in zip(cps, tps):
        cp.data[...] = tp.detach().numpy()
    tsd = topt.state_dict()
    sd = {"state": {k: {n: v.numpy().copy() for n, v in e.items()} for k, e in tsd["state"].items()},
          "param_groups": tsd["param_groups"]}
    copt = Adam(cps)
    copt.load_state_dict(sd)
    assert copt.param_groups[0]["amsgrad"] is True and copt.param_groups[0]["lr"] == 0.01
    for step in range(3, 6):
        set_grads(cps, tps, grads_for(step, rng))
        copt.step()
        topt.step()
    assert_params_close(cps, tps)


def test_load_state_dict_rejects_mismatches():
    cps, _ = make_params()
    opt = SGD(cps, lr=0.1, momentum=0.9)
    run_steps(opt, cps, 1, np.random.default_rng(0))
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="param groups"):
        SGD([{"params": cps[:1]}, {"params": cps[1:]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="param group 0"):
        SGD(cps[:2], lr=0.1).load_state_dict(sd)
    bad = opt.state_dict()
    bad["state"][0]["momentum_buffer"] = np.zeros(7)
    with pytest.raises(ValueError, match="shape"):
        SGD(cps, lr=0.1).load_state_dict(bad)
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="lr"):
        SGD(cps, lr=0.1).load_state_dict(bad)
    with pytest.raises(ValueError):
        opt.load_state_dict({"state": {}})


# ---- schedulers ------------------------------------------------------------------------------
def scheduler_pair(cls, tcls, opt_kwargs=None, opt_cls=SGD, topt_cls=None, **kwargs):
    opt_kwargs = opt_kwargs or {"lr": 0.1, "momentum": 0.9}
    topt_cls = topt_cls or {SGD: torch.optim.SGD, Adam: torch.optim.Adam}[opt_cls]
    cps, tps = make_params()
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": opt_kwargs["lr"] * 3}]
    copt, topt = opt_cls(groups(cps), **opt_kwargs), topt_cls(groups(tps), **opt_kwargs)
    return copt, topt, cls(copt, **kwargs), tcls(topt, **kwargs)


def assert_sequences_match(copt, topt, csched, tsched, steps, keys=("lr",)):
    for step in range(steps + 1):
        assert np.allclose(csched.get_last_lr(), tsched.get_last_lr(), rtol=RTOL, atol=0), step
        for cg_group, t_group in zip(copt.param_groups, topt.param_groups):
            for key in keys:
                np.testing.assert_allclose(cg_group[key], t_group[key], rtol=RTOL, atol=0,
                                           err_msg=f"{key} at step {step}")
        if step < steps:
            copt.step()
            topt.step()
            csched.step()
            tsched.step()


@pytest.mark.parametrize("step_size,gamma", [(1, 0.9), (3, 0.1), (7, 0.5)])
def test_steplr_matches_torch(step_size, gamma):
    pair = scheduler_pair(StepLR, torch.optim.lr_scheduler.StepLR, step_size=step_size, gamma=gamma)
    assert_sequences_match(*pair, steps=30)


@pytest.mark.parametrize("T_max,eta_min", [(10, 0.0), (7, 1e-3), (30, 0.05), (1, 0.0)])
def test_cosine_matches_torch(T_max, eta_min):
    # 40 steps pass T_max, the trough branch and the rise after it.
    pair = scheduler_pair(CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR,
                          T_max=T_max, eta_min=eta_min)
    assert_sequences_match(*pair, steps=40)


ONECYCLE = [
    dict(max_lr=0.1, total_steps=30),
    dict(max_lr=[0.1, 0.3], epochs=4, steps_per_epoch=9, pct_start=0.25, anneal_strategy="linear"),
    dict(max_lr=0.2, total_steps=40, three_phase=True, div_factor=10.0, final_div_factor=100.0),
    dict(max_lr=0.2, total_steps=31, three_phase=True, anneal_strategy="linear", pct_start=0.4,
         base_momentum=0.8, max_momentum=[0.9, 0.99]),
    dict(max_lr=0.1, total_steps=25, cycle_momentum=False),
]


@pytest.mark.parametrize("kwargs", ONECYCLE)
def test_onecycle_sgd_matches_torch(kwargs):
    pair = scheduler_pair(OneCycleLR, torch.optim.lr_scheduler.OneCycleLR, **kwargs)
    keys = ("lr", "momentum", "initial_lr", "max_lr", "min_lr")
    total = kwargs.get("total_steps") or kwargs["epochs"] * kwargs["steps_per_epoch"]
    assert_sequences_match(*pair, steps=total, keys=keys)


@pytest.mark.parametrize("kwargs", ONECYCLE[:3])
def test_onecycle_adam_cycles_beta1_like_torch(kwargs):
    pair = scheduler_pair(OneCycleLR, torch.optim.lr_scheduler.OneCycleLR, opt_cls=Adam,
                          opt_kwargs={"lr": 0.01}, **kwargs)
    copt, topt, csched, tsched = pair
    total = kwargs.get("total_steps") or kwargs["epochs"] * kwargs["steps_per_epoch"]
    for _ in range(total):
        assert copt.param_groups[0]["betas"][1] == 0.999
        np.testing.assert_allclose(copt.param_groups[0]["betas"], topt.param_groups[0]["betas"],
                                   rtol=RTOL, atol=0)
        for o in (copt, topt, csched, tsched):
            o.step()
    assert np.allclose(csched.get_last_lr(), tsched.get_last_lr(), rtol=RTOL, atol=0)


def test_onecycle_drives_adam_like_torch():
    """Parameters after a OneCycle run with Adam (beta1 cycled) match torch's."""
    cps, tps = make_params()
    copt, topt = Adam(cps, lr=0.01), torch.optim.Adam(tps, lr=0.01)
    csched = OneCycleLR(copt, max_lr=0.05, total_steps=12)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=12)
    rng = np.random.default_rng(5)
    for step in range(12):
        set_grads(cps, tps, grads_for(step, rng))
        copt.step(), topt.step(), csched.step(), tsched.step()
    assert_params_close(cps, tps)


def test_onecycle_rejects_stepping_past_total():
    copt = SGD(make_params()[0], lr=0.1, momentum=0.9)
    sched = OneCycleLR(copt, max_lr=0.1, total_steps=5)
    for _ in range(5):
        sched.step()
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()


@pytest.mark.parametrize("cls,kwargs", [
    (StepLR, dict(step_size=4, gamma=0.5)),
    (CosineAnnealingLR, dict(T_max=8, eta_min=1e-3)),
    (OneCycleLR, dict(max_lr=0.3, total_steps=20, three_phase=True)),
])
@pytest.mark.parametrize("adam", [False, True])
def test_scheduler_state_dict_resume(cls, kwargs, adam):
    def build():
        cps, _ = make_params()
        opt = Adam(cps, lr=0.01) if adam else SGD(cps, lr=0.1, momentum=0.9)
        return opt, cls(opt, **kwargs)

    opt, sched = build()
    straight = []
    for _ in range(12):
        opt.step()
        sched.step()
        straight.append((sched.get_last_lr(), [dict((k, g[k]) for k in g if k != "params")
                                              for g in opt.param_groups]))
    opt, sched = build()
    for _ in range(5):
        opt.step()
        sched.step()
    saved_opt = npz_json_roundtrip(opt.state_dict())
    saved_sched = json.loads(json.dumps(sched.state_dict()))
    opt, sched = build()
    opt.load_state_dict(saved_opt)
    sched.load_state_dict(saved_sched)
    resumed = []
    for _ in range(5, 12):
        opt.step()
        sched.step()
        resumed.append((sched.get_last_lr(), [dict((k, g[k]) for k in g if k != "params")
                                             for g in opt.param_groups]))
    assert resumed == straight[5:]


# ---- clipping --------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    cps, tps = make_params()
    set_grads(cps, tps, grads_for(1, np.random.default_rng(2)))   # parameter 2 has no grad
    total = clip_grad_norm_(cps, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert math.isclose(total, t_total.item(), rel_tol=RTOL)
    assert cps[2].grad is None
    for cp, tp in zip(cps[:2], tps[:2]):
        np.testing.assert_allclose(cp.grad, tp.grad.numpy(), rtol=RTOL, atol=0)


def test_clip_grad_norm_edge_cases():
    p = Parameter(np.zeros(3))
    assert clip_grad_norm_([p], 1.0) == 0.0                 # no grads at all
    p.grad = np.array([np.inf, 1.0, 0.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_(p, -1.0)
    q = Parameter(np.zeros(2, np.float32))
    q.grad = np.array([3.0, 4.0], np.float32)
    assert math.isclose(clip_grad_norm_(q, 1.0), 5.0)
    assert q.grad.dtype == np.float32


def test_clip_grad_value_matches_torch():
    cps, tps = make_params()
    set_grads(cps, tps, grads_for(0, np.random.default_rng(4)))
    clip_grad_value_(cps, 0.7)
    torch.nn.utils.clip_grad_value_(tps, 0.7)
    for cp, tp in zip(cps, tps):
        np.testing.assert_array_equal(cp.grad, tp.grad.numpy())
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_(cps, -1.0)


# ---- bad arguments -------------------------------------------------------------------------
@pytest.mark.parametrize("build,match", [
    (lambda ps: SGD(ps, lr=-0.1), r"lr.*-0\.1"),
    (lambda ps: SGD(ps, lr=0.1, momentum=-0.5), r"momentum.*-0\.5"),
    (lambda ps: SGD(ps, lr=0.1, weight_decay=-1e-4), r"weight_decay.*-0\.0001"),
    (lambda ps: SGD(ps, lr=0.1, nesterov=True), "nesterov"),
    (lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
    (lambda ps: SGD(ps, lr=float("nan")), "lr"),
    (lambda ps: SGD([{"params": ps[:1]}, {"params": ps[1:], "lr": -2.0}], lr=0.1), r"lr.*-2\.0"),
    (lambda ps: Adam(ps, lr=-1e-3), r"lr.*-0\.001"),
    (lambda ps: Adam(ps, eps=-1.0), r"eps.*-1\.0"),
    (lambda ps: Adam(ps, betas=(1.0, 0.999)), r"betas\[0\].*1\.0"),
    (lambda ps: Adam(ps, betas=(0.9, -0.1)), r"betas\[1\].*-0\.1"),
    (lambda ps: AdamW(ps, weight_decay=-0.01), r"weight_decay.*-0\.01"),
    (lambda ps: SGD([], lr=0.1), "empty"),
    (lambda ps: SGD([{"params": ps}, {"params": ps[:1]}], lr=0.1), "more than one"),
    (lambda ps: SGD(ps + ps[:1], lr=0.1), "twice"),
    (lambda ps: StepLR(SGD(ps, lr=0.1), step_size=0), "step_size"),
    (lambda ps: CosineAnnealingLR(SGD(ps, lr=0.1), T_max=0), "T_max"),
    (lambda ps: OneCycleLR(SGD(ps, lr=0.1), max_lr=0.1), "total_steps"),
    (lambda ps: OneCycleLR(SGD(ps, lr=0.1), max_lr=0.1, total_steps=10, pct_start=1.5), "pct_start"),
    (lambda ps: OneCycleLR(SGD(ps, lr=0.1), max_lr=0.1, total_steps=10, pct_start=0.1), "zero steps"),
    (lambda ps: OneCycleLR(SGD(ps, lr=0.1), max_lr=0.1, total_steps=10, anneal_strategy="exp"),
     "anneal_strategy"),
    (lambda ps: OneCycleLR(SGD(ps, lr=0.1), max_lr=[0.1, 0.2], total_steps=10), "max_lr"),
])
def test_bad_arguments_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build(make_params()[0])


def test_bad_types_raise_type_error():
    ps = make_params()[0]
    with pytest.raises(TypeError):
        SGD(ps[0], lr=0.1)                                  # a single Parameter, not an iterable
    with pytest.raises(TypeError):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError):
        SGD(set(ps), lr=0.1)
    with pytest.raises(TypeError):
        SGD(ps, lr=0.1, nesterov="yes")
    with pytest.raises(TypeError):
        StepLR(object(), step_size=2)
    with pytest.raises(TypeError):
        SGD([Parameter(np.zeros(3, np.int64))], lr=0.1)


def test_grad_shape_mismatch_and_momentumless_onecycle():
    p = Parameter(np.zeros((2, 2)))
    p.grad = np.zeros(4)
    with pytest.raises(ValueError, match="shape"):
        SGD([p], lr=0.1).step()

    class Plain(Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1})

    with pytest.raises(ValueError, match="momentum"):
        OneCycleLR(Plain([p]), max_lr=0.1, total_steps=10)
