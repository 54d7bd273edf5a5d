"""The convolution family against torch in float64: forward, dx, dweight, dbias over
hundreds of randomised configurations (1-D/2-D/3-D, odd sizes, stride > kernel, sizes not
divisible by the stride, padding incl. 'same'/'valid', dilation, groups incl. depthwise,
every padding mode, transposed convolution with output_padding)."""
import numpy as np
import pytest

from conftest import rel_err
from convgrad import nn
from convgrad.functional.convolution import ROUTES

torch = pytest.importorskip("torch")
TOL = 1e-10


def _conv_config(seed):
    rng = np.random.default_rng(seed)
    n_sp = [1, 2, 3][seed % 3] if seed % 7 else 2
    groups = int(rng.choice([1, 1, 2, 3]))
    depthwise = seed % 11 == 0
    c_in = groups * int(rng.integers(1, 4))
    c_out = groups * int(rng.integers(1, 4))
    if depthwise:
        groups = c_in = int(rng.integers(2, 6))
        c_out = c_in * int(rng.integers(1, 3))
    kernel = tuple(int(k) for k in rng.integers(1, 5 if n_sp < 3 else 4, size=n_sp))
    stride = tuple(int(s) for s in rng.integers(1, 5, size=n_sp))          # often larger than the kernel
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=n_sp))
    mode = ["zeros", "zeros", "reflect", "replicate", "circular"][int(rng.integers(0, 5))]
    padding = tuple(int(p) for p in rng.integers(0, 3, size=n_sp))
    if seed % 13 == 0:
        padding, stride = "same", (1,) * n_sp
    elif seed % 17 == 0:
        padding = "valid"
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    lo = 6 if n_sp < 3 else 3
    size = tuple(int(max(e, 1) + rng.integers(lo // 2, lo + 6)) for e in extent)   # odd sizes included
    batch = int(rng.integers(1, 4))
    return dict(n_sp=n_sp, batch=batch, c_in=c_in, c_out=c_out, kernel=kernel, stride=stride,
                padding=padding, dilation=dilation, groups=groups, mode=mode, size=size, bias=bool(seed % 5))


def _compare(ours, theirs, x, rng):
    ours.to(np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    y = ours(x)
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    dx = ours.backward(dy)
    errors = {"forward": rel_err(y, ty.detach().numpy()), "dx": rel_err(dx, tx.grad.numpy()),
              "dweight": rel_err(ours.weight.grad, theirs.weight.grad.numpy())}
    if theirs.bias is not None:
        errors["dbias"] = rel_err(ours.bias.grad, theirs.bias.grad.numpy())
    return errors


@pytest.mark.parametrize("seed", range(260))
def test_conv_matches_torch(seed):
    cfg = _conv_config(seed)
    n = cfg["n_sp"]
    ours = getattr(nn, f"Conv{n}d")(cfg["c_in"], cfg["c_out"], cfg["kernel"], cfg["stride"], cfg["padding"],
                                    cfg["dilation"], cfg["groups"], cfg["bias"], cfg["mode"])
    theirs = getattr(torch.nn, f"Conv{n}d")(cfg["c_in"], cfg["c_out"], cfg["kernel"], cfg["stride"],
                                           cfg["padding"], cfg["dilation"], cfg["groups"], cfg["bias"],
                                           cfg["mode"], dtype=torch.float64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["batch"], cfg["c_in"], *cfg["size"]))
    errors = _compare(ours, theirs, x, rng)
    assert max(errors.values()) < TOL, (cfg, errors)


@pytest.mark.parametrize("seed", range(80))
def test_conv_transpose_matches_torch(seed):
    rng = np.random.default_rng(10_000 + seed)
    n = [1, 2, 3][seed % 3]
    groups = int(rng.choice([1, 1, 2]))
    c_in, c_out = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=n))
    stride = tuple(int(s) for s in rng.integers(1, 4, size=n))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=n))
    padding = tuple(int(rng.integers(0, max(1, (d * (k - 1)) // 2 + 1))) for k, d in zip(kernel, dilation))
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    size = tuple(int(v) for v in rng.integers(2, 7 if n < 3 else 4, size=n))
    bias = bool(seed % 4)
    args = (c_in, c_out, kernel, stride, padding, output_padding, groups, bias, dilation)
    ours = getattr(nn, f"ConvTranspose{n}d")(*args)
    theirs = getattr(torch.nn, f"ConvTranspose{n}d")(*args, dtype=torch.float64)
    x = rng.standard_normal((int(rng.integers(1, 3)), c_in, *size))
    errors = _compare(ours, theirs, x, rng)
    assert max(errors.values()) < TOL, (args, errors)


def test_configuration_coverage():
    """The randomised set really covers what the oracle tests claim to cover."""
    cfgs = [_conv_config(s) for s in range(260)]
    assert {c["n_sp"] for c in cfgs} == {1, 2, 3}
    assert {c["mode"] for c in cfgs} == {"zeros", "reflect", "replicate", "circular"}
    assert any(c["padding"] == "same" for c in cfgs) and any(c["padding"] == "valid" for c in cfgs)
    assert any(c["groups"] == c["c_in"] > 1 for c in cfgs)                       # depthwise
    assert any(c["groups"] > 1 and c["groups"] < c["c_in"] for c in cfgs)
    assert any(max(c["dilation"]) > 1 for c in cfgs)
    assert any(any(s > k for s, k in zip(c["stride"], c["kernel"])) for c in cfgs)
    assert any(any((sz - 1) % s for sz, s in zip(c["size"], c["stride"])) for c in cfgs)


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("seed", range(0, 260, 3))
def test_every_route_matches_torch(seed, route):
    """The same configurations forced through every route (conv_route); where the route
    cannot compute the configuration, the forward says so."""
    from convgrad.functional import conv_route
    from convgrad.functional.convolution import ROUTES, conv_geometry
    from convgrad.functional.padding import resolve_padding
    cfg = _conv_config(seed)
    n = cfg["n_sp"]
    args = (cfg["c_in"], cfg["c_out"], cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"],
            cfg["bias"], cfg["mode"])
    ours = getattr(nn, f"Conv{n}d")(*args)
    theirs = getattr(torch.nn, f"Conv{n}d")(*args, dtype=torch.float64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["batch"], cfg["c_in"], *cfg["size"]))
    pads = resolve_padding(cfg["padding"], cfg["kernel"], cfg["stride"], cfg["dilation"], "test")
    geo = conv_geometry(x.shape, ours.weight.shape, cfg["stride"], pads, cfg["dilation"], cfg["groups"])
    with conv_route(route):
        if not ROUTES[route].applies(geo):
            with pytest.raises(ValueError, match=f"forced route '{route}' cannot compute"):
                ours.to(np.float64)(x)
            return
        errors = _compare(ours, theirs, x, rng)
    assert max(errors.values()) < TOL, (cfg, errors)
    assert ours._cache.route == route


def test_every_route_is_forced_somewhere():
    """The forced-route sweep really runs each route on some configurations (not only raises)."""
    from convgrad.functional.convolution import ROUTES, conv_geometry
    from convgrad.functional.padding import resolve_padding
    ran = {name: 0 for name in ROUTES}
    for seed in range(0, 260, 3):
        cfg = _conv_config(seed)
        w_shape = (cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel"])
        pads = resolve_padding(cfg["padding"], cfg["kernel"], cfg["stride"], cfg["dilation"], "test")
        geo = conv_geometry((cfg["batch"], cfg["c_in"], *cfg["size"]), w_shape, cfg["stride"], pads,
                            cfg["dilation"], cfg["groups"])
        for name, route in ROUTES.items():
            ran[name] += route.applies(geo)
    # winograd (2-d 3x3 stride 1 only) is rarely if ever drawn here (it refuses the others, above):
    # test_conv_winograd.py is its sweep; depthwise also has its own sweep below
    ran.pop("winograd")
    assert min(ran.values()) >= 3, ran


@pytest.mark.parametrize("route", ["channel-major", "per-sample"])
@pytest.mark.parametrize("nbytes", [1, 3000])
@pytest.mark.parametrize("seed", range(0, 260, 10))
def test_routes_in_batch_chunks_match_torch(seed, nbytes, route):
    """A workspace budget too small for one sample (chunks of one) or for a few: the
    channel-major and per-sample routes work the batch in chunks, with the same results."""
    from convgrad.functional import conv_route
    from convgrad.functional.convolution import budget
    cfg = _conv_config(seed)
    if route == "per-sample":
        cfg["c_out"], cfg["groups"] = cfg["c_out"] // cfg["groups"] * cfg["groups"], 1
        if cfg["padding"] == "same" and seed % 2:
            cfg["padding"] = "valid"
    cfg["batch"] += 2
    n = cfg["n_sp"]
    args = (cfg["c_in"], cfg["c_out"], cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"],
            cfg["bias"], cfg["mode"])
    ours = getattr(nn, f"Conv{n}d")(*args)
    theirs = getattr(torch.nn, f"Conv{n}d")(*args, dtype=torch.float64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["batch"], cfg["c_in"], *cfg["size"]))
    with conv_route(route), budget(nbytes):
        errors = _compare(ours, theirs, x, rng)
    assert max(errors.values()) < TOL, (cfg, errors)
    assert ours._cache.route == route


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("seed", range(40))
def test_depthwise_route_matches_torch(seed, threads, monkeypatch):
    """Also split across threads (convgrad._threads; stride 1 only): by samples, or by channels
    for a batch smaller than the thread count."""
    from convgrad import _threads
    from convgrad.functional.convolution import depthwise
    monkeypatch.setitem(_threads._state, "threads", threads)
    monkeypatch.setattr(depthwise, "MIN_CHANNELS", 2)
    rng = np.random.default_rng(20_000 + seed)
    c = int(rng.integers(2, 6)) if threads == 1 else int(rng.integers(4, 12))
    kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
    stride = tuple(int(s) for s in rng.integers(1, 4, size=2)) if seed % 2 else (1, 1)
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=2))
    padding = "same" if seed % 5 == 0 and stride == (1, 1) else tuple(int(p) for p in rng.integers(0, 3, size=2))
    size = tuple(int(d * (k - 1) + 1 + rng.integers(0, 9)) for k, d in zip(kernel, dilation))
    args = (c, c, kernel, stride, padding, dilation, c, bool(seed % 3))
    ours, theirs = nn.Conv2d(*args), torch.nn.Conv2d(*args, dtype=torch.float64)
    x = rng.standard_normal((int(rng.integers(1, 4)), c, *size))
    errors = _compare(ours, theirs, x, rng)
    assert ours._cache.route == "depthwise"
    assert max(errors.values()) < TOL, (args, errors)
    split = any(isinstance(k, tuple) for k in ours._workspace)
    assert split == (threads > 1 and depthwise.is_stride1(ours._cache.geo)), (args, threads)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("samples", [1, 2])
@pytest.mark.parametrize("seed", range(8))
def test_depthwise_in_batch_chunks_matches_torch(seed, samples, threads, monkeypatch):
    """Stride 1 works the batch in chunks of its row stack (at most STACK_CHUNK_BYTES): chunks
    of one sample, or of a few with a shorter last one. The layer then runs again on another
    batch size, reusing its buffers (their padding zeros are written once per geometry)."""
    from convgrad import _threads
    from convgrad.functional.convolution import depthwise
    from convgrad.functional.convolution.geometry import conv_geometry
    monkeypatch.setitem(_threads._state, "threads", threads)
    monkeypatch.setattr(depthwise, "MIN_CHANNELS", 2)
    rng = np.random.default_rng(30_000 + seed)
    c = int(rng.integers(4, 9))
    kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=2))
    reach = [d * (k - 1) for k, d in zip(kernel, dilation)]
    padding = "same" if seed % 4 == 0 else tuple(int(rng.integers(0, r + 1)) for r in reach)
    size = tuple(int(d * (k - 1) + 1 + rng.integers(0, 7)) for k, d in zip(kernel, dilation))
    args = (c, c, kernel, 1, padding, dilation, c, bool(seed % 2))
    ours, theirs = nn.Conv2d(*args), torch.nn.Conv2d(*args, dtype=torch.float64)
    geo = conv_geometry((1, c, *size), (c, 1, *kernel), 1, padding, dilation, c)
    stack_bytes = c * kernel[1] * geo.padded[0] * geo.out[1] * 8          # the forward's, one sample
    monkeypatch.setattr(depthwise, "STACK_CHUNK_BYTES", samples * stack_bytes)
    for batch in (5, 3):
        x = rng.standard_normal((batch, c, *size))
        ours.zero_grad()
        theirs.zero_grad()
        errors = _compare(ours, theirs, x, rng)
        assert ours._cache.route == "depthwise" and depthwise.is_stride1(ours._cache.geo)
        assert max(errors.values()) < TOL, (args, batch, errors)
        workspaces = [ws for key, ws in ours._workspace.items() if isinstance(key, tuple)] or [ours._workspace]
        assert len(workspaces) == threads
        chunks = [ws["stack_taps"].shape[0] for ws in workspaces] + [ws["stack_t"].shape[0] for ws in workspaces]
        assert batch < 5 or max(chunks) < batch, chunks       # several chunks (the forward's and backward's)


@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_backward_without_input_grad(threads, monkeypatch):
    """input_grad=False skips the stride-1 input gradient (also split across threads): dx is
    None, dw and db are those of the full backward."""
    from convgrad import _threads
    from convgrad.functional import conv_backward, conv_forward
    from convgrad.functional.convolution import depthwise
    monkeypatch.setitem(_threads._state, "threads", threads)
    monkeypatch.setattr(depthwise, "MIN_CHANNELS", 2)
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((3, 6, 7, 8)), rng.standard_normal((6, 1, 3, 3)), rng.standard_normal(6)
    dy = rng.standard_normal((3, 6, 7, 8))
    _, cache = conv_forward(x, w, b, 1, 1, 1, 6, workspace={})
    assert cache.route == "depthwise"
    dx, dw, db = conv_backward(dy, cache)
    none, dw2, db2 = conv_backward(dy, cache, input_grad=False)
    assert none is None and dx.shape == x.shape
    assert np.array_equal(dw, dw2) and np.array_equal(db, db2)


@pytest.mark.parametrize("seed", range(12))
def test_row_stack_is_the_padded_input_shifted_by_each_tap_column(seed):
    """banded.row_stack (taps first, stride 1) against np.pad and slicing, fresh and again on
    its buffer for another x (zero_borders=False: the padding zeros are not rewritten, the flat
    copies' wrapped columns are): planes as wide as the input (flat shifted copies, shifts
    beyond the width included) and not."""
    from convgrad.functional.convolution import banded
    rng = np.random.default_rng(40_000 + seed)
    n, c, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(1, 6)), int(rng.integers(1, 7))
    kw, dil = int(rng.integers(1, 6)), int(rng.integers(1, 3))
    reach = dil * (kw - 1)
    if seed % 2:                                     # 'same' width (Wo == W), the left pad from 0 to the reach
        left = int(rng.integers(0, reach + 1))
        right = reach - left
    else:
        left, right = int(rng.integers(0, 3)), int(rng.integers(0, 3))
    out_w = w + left + right - reach
    if out_w < 1:
        left, right, out_w = left + 1 - out_w, right, 1
        right = reach + out_w - w - left
    top, bottom = int(rng.integers(0, 3)), int(rng.integers(0, 3))
    x = rng.standard_normal((n, c, h, w))
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    expected = np.stack([xp[..., b * dil:b * dil + out_w] for b in range(kw)], axis=2)
    buf = banded.row_stack(x, ((top, bottom), (left, right)), kw, 1, dil, out_w, taps_first=True)
    np.testing.assert_array_equal(buf, expected)
    x2 = rng.standard_normal(x.shape)
    xp2 = np.pad(x2, ((0, 0), (0, 0), (top, bottom), (left, right)))
    expected2 = np.stack([xp2[..., b * dil:b * dil + out_w] for b in range(kw)], axis=2)
    again = banded.row_stack(x2, ((top, bottom), (left, right)), kw, 1, dil, out_w, out=buf, zero_borders=False,
                             taps_first=True)
    assert again is buf
    np.testing.assert_array_equal(again, expected2)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("seed", range(10))
def test_depthwise_same_width_matches_torch(seed, threads, monkeypatch):
    """Stride 1 with outputs as wide as the input (the flat row stack), odd and even kernels
    (torch's asymmetric 'same'), dilation, inputs narrower than the kernel, N = 1, a
    non-contiguous input; split across threads or not."""
    from convgrad import _threads
    from convgrad.functional.convolution import depthwise
    monkeypatch.setitem(_threads._state, "threads", threads)
    monkeypatch.setattr(depthwise, "MIN_CHANNELS", 2)
    rng = np.random.default_rng(50_000 + seed)
    c = int(rng.integers(4, 8))
    kernel = tuple(int(k) for k in rng.integers(1, 6, size=2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=2))
    size = tuple(int(s) for s in rng.integers(1, 9, size=2))
    args = (c, c, kernel, 1, "same", dilation, c, bool(seed % 3))
    ours, theirs = nn.Conv2d(*args), torch.nn.Conv2d(*args, dtype=torch.float64)
    batch = 1 if seed % 4 == 0 else int(rng.integers(2, 5))
    x = rng.standard_normal((batch, *size, c)).transpose(0, 3, 1, 2)     # channels-last memory
    if seed % 2:
        x = np.ascontiguousarray(x)
    errors = _compare(ours, theirs, x, rng)
    assert ours._cache.route == "depthwise" and depthwise.is_stride1(ours._cache.geo)
    assert max(errors.values()) < TOL, (args, size, errors)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("where", ["x", "dy"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_depthwise_nan_inf_match_torch(value, where, threads, monkeypatch):
    """A NaN or inf in x or dy: the stride-1 route finds it while working (NotFinite) and the
    dispatch redoes the call on channel-major: torch's values, NaN where torch has NaN."""
    from convgrad import _threads
    from convgrad.functional.convolution import depthwise
    monkeypatch.setitem(_threads._state, "threads", threads)
    monkeypatch.setattr(depthwise, "MIN_CHANNELS", 2)
    rng = np.random.default_rng(11)
    args = (6, 6, 3, 1, 1, 1, 6, True)
    ours, theirs = nn.Conv2d(*args), torch.nn.Conv2d(*args, dtype=torch.float64)
    ours.to(np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((3, 6, 5, 7))
    dy = rng.standard_normal((3, 6, 5, 7))
    (x if where == "x" else dy)[1, 4, 0, 6] = value
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    ty.backward(torch.tensor(dy))
    y = ours(x)
    assert ours._cache.route == ("channel-major" if where == "x" else "depthwise")
    dx = ours.backward(dy)
    for a, b in ((y, ty), (dx, tx.grad), (ours.weight.grad, theirs.weight.grad), (ours.bias.grad, theirs.bias.grad)):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=TOL, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_cache_keeps_its_own_copy_of_x(threads, monkeypatch):
    """The route copies x for the cache (chunk by chunk, per thread part): writing into the
    caller's x between forward and backward changes no gradient."""
    from convgrad import _threads
    from convgrad.functional.convolution import depthwise
    monkeypatch.setitem(_threads._state, "threads", threads)
    monkeypatch.setattr(depthwise, "MIN_CHANNELS", 2)
    monkeypatch.setattr(depthwise, "STACK_CHUNK_BYTES", 1)          # chunks of one sample
    from convgrad.functional import conv_route
    rng = np.random.default_rng(12)
    layer = nn.Conv2d(6, 6, 3, padding=1, groups=6, dtype=np.float64)
    x, dy = rng.standard_normal((3, 6, 5, 7)), rng.standard_normal((3, 6, 5, 7))
    with conv_route("channel-major"):
        layer(x.copy())
        dx = layer.backward(dy)
    dw = layer.weight.grad.copy()
    layer.zero_grad()
    scribbled = x.copy()
    layer(scribbled)
    assert layer._cache.route == "depthwise" and not np.shares_memory(layer._cache.x, scribbled)
    scribbled[...] = 7.0
    assert rel_err(layer.backward(dy), dx) < TOL and rel_err(layer.weight.grad, dw) < TOL


@pytest.mark.parametrize("n, k, s, p, d, in_size, out_size", [
    (2, 3, 2, 1, 1, (4, 5), (8, 10)), (2, 3, 2, 1, 1, (4, 5), (7, 9)), (2, 4, 3, 0, 2, (3, 3), (14, 15)),
    (2, 3, 2, 0, 1, (4, 4), (1, 3, 10, 9)), (1, 3, 3, 1, 1, (5,), (15,)), (3, 2, 2, 0, 1, (2, 3, 2), (5, 6, 4))])
def test_conv_transpose_output_size_matches_torch(n, k, s, p, d, in_size, out_size):
    cls = getattr(nn, f"ConvTranspose{n}d")
    ours = cls(2, 3, k, stride=s, padding=p, dilation=d, generator=0, dtype=np.float64)
    theirs = getattr(torch.nn, f"ConvTranspose{n}d")(2, 3, k, stride=s, padding=p, dilation=d).double()
    theirs.load_state_dict({key: torch.from_numpy(np.array(v)) for key, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((1, 2) + in_size)
    y = ours(x, output_size=out_size)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = theirs(tx, output_size=list(out_size))
    g = np.random.default_rng(1).standard_normal(y.shape)
    dx = ours.backward(g)
    ty.backward(torch.from_numpy(g))
    assert y.shape == tuple(ty.shape)
    assert rel_err(y, ty.detach().numpy()) <= 1e-10 and rel_err(dx, tx.grad.numpy()) <= 1e-10
    assert rel_err(ours.weight.grad, theirs.weight.grad.numpy()) <= 1e-10
    assert rel_err(ours.bias.grad, theirs.bias.grad.numpy()) <= 1e-10
