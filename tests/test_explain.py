"""`convgrad explain`: the walk-through's numbers are computed (they agree with the fast path,
the reference loops and the lectures' worked example), the text has its sections, the HTML
page is self-contained with players (step/back/play/pause), and bad options exit with status 2."""
import argparse
import itertools
import os
import re
import sys

import numpy as np
import pytest

from conftest import rel_err
from convgrad import functional as F
from convgrad import reference as ref
from convgrad.explain import (ExplainError, add_parser, explain_conv, explain_pool, explain_resample, parse_kernel,
                              parse_maps, parse_matrix, render_text, write_html)
from convgrad.explain.steps import fmt
from convgrad.functional.resample import upsample_zeros

from conftest import DJ_DV, DJ_DW, DJ_DX, V, W, X  # the lectures' worked example


def run_cli(argv, capsys):
    """Run `convgrad explain ...` through a parser built here; returns (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="convgrad")
    add_parser(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["explain", *argv])
        code = args.func(args)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------------------------------
# conv: the worked example
# ---------------------------------------------------------------------------------------
def test_worked_example_is_the_default_and_gives_the_known_values():
    wt = explain_conv()
    r = wt.results
    assert np.array_equal(r["x"][0], X) and np.array_equal(r["w"][0, 0], W) and np.array_equal(r["dJ/dv"][0], DJ_DV)
    assert np.array_equal(r["v"][0], V)
    for key in ("dJ/dw", "dJ/dw (Jacobian)"):
        assert np.array_equal(r[key][0, 0], DJ_DW), key
    for key in ("dJ/dx", "dJ/dx (Jacobian)"):
        assert np.array_equal(r[key][0], DJ_DX), key
    assert wt.passed and [c.name for c in wt.checks] == ["v", "dJ/dw", "dJ/dx"]


def test_worked_example_jacobians_and_intermediate_maps():
    r = explain_conv().results
    assert np.array_equal(r["dv/dx"][0, 0], ref.jacobian_dv_dx(X, W))
    assert np.array_equal(r["dv/dw"][0], ref.jacobian_dv_dw(X, W))
    assert np.array_equal(r["dJ/dv padded"][0], np.pad(DJ_DV, 1))          # pad by f-1 = 1
    assert np.array_equal(r["W-dagger"][0, 0], W[::-1, ::-1])               # rot180(w)


def test_worked_example_given_explicitly_matches_the_default():
    a, b = explain_conv(), explain_conv(x=X, w=W, grad=DJ_DV)
    for key in ("v", "dJ/dw", "dJ/dx"):
        assert np.array_equal(a.results[key], b.results[key])


def test_numbers_follow_the_inputs():
    """Nothing is typed in: scaling x scales v and dJ/dw, scaling dJ/dv scales both gradients."""
    base = explain_conv().results
    r = explain_conv(x=2 * X, w=W, grad=3 * DJ_DV).results
    assert np.array_equal(r["v"], 2 * base["v"])
    assert np.array_equal(r["dJ/dw"], 6 * base["dJ/dw"]) and np.array_equal(r["dJ/dx"], 3 * base["dJ/dx"])


# ---------------------------------------------------------------------------------------
# conv: random configurations against the fast path and the reference loops
# ---------------------------------------------------------------------------------------
CONFIGS = list(itertools.product([0, 1, 2], [1, 2, 3], [0, 1], [1, 2], [(1, 1), (2, 3)]))


@pytest.mark.parametrize("seed,stride,padding,dilation,ck", CONFIGS)
def test_random_configurations_agree_with_fast_path_and_reference(seed, stride, padding, dilation, ck):
    wt = explain_conv(stride=stride, padding=padding, dilation=dilation, channels=ck[0], filters=ck[1], seed=seed)
    r = wt.results
    x, w, g = r["x"][None], r["w"], r["dJ/dv"][None]
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    y, cache = F.conv_forward(x, w, **kw)
    dx, dw, _ = F.conv_backward(g, cache)
    rdx, rdw, _ = ref.conv_loops_backward(g, x, w, **kw)
    assert rel_err(r["v"], y[0]) < 1e-12 and rel_err(r["v"], ref.conv_loops(x, w, **kw)[0]) < 1e-12
    for key in ("dJ/dx", "dJ/dx (Jacobian)"):
        assert rel_err(r[key], dx[0]) < 1e-12 and rel_err(r[key], rdx[0]) < 1e-12, key
    for key in ("dJ/dw", "dJ/dw (Jacobian)"):
        assert rel_err(r[key], dw) < 1e-12 and rel_err(r[key], rdw) < 1e-12, key
    assert wt.passed
    assert x.shape[1] == ck[0] and w.shape[0] == ck[1]


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_jacobians_match_the_reference_with_stride(stride, rng):
    x, w = rng.integers(-3, 4, (7, 8)).astype(float), rng.integers(-3, 4, (3, 3)).astype(float)
    r = explain_conv(x=x, w=w, stride=stride, seed=1).results
    assert np.array_equal(r["dv/dx"][0, 0], ref.jacobian_dv_dx(x, w, stride))
    assert np.array_equal(r["dv/dw"][0], ref.jacobian_dv_dw(x, w, stride))


def test_stride_shows_the_gradient_dilated_then_padded():
    wt = explain_conv(stride=2, seed=4)
    r, f = wt.results, wt.results["w"].shape[-1]
    dil = upsample_zeros(r["dJ/dv"][None], 2)[0]
    padded = r["dJ/dv padded"]
    assert np.array_equal(padded[:, f - 1:f - 1 + dil.shape[1], f - 1:f - 1 + dil.shape[2]], dil)
    assert padded[:, :f - 1].sum() == 0 and padded[:, :, :f - 1].sum() == 0
    names = [n for n, _ in wt.step("shortcut_dx").matrices]
    assert names.index("dJ/dv dilated") < names.index("dJ/dv padded") < names.index("dJ/dx")


def test_multi_channel_w_dagger_sums_flipped_kernels_over_filters():
    wt = explain_conv(channels=3, filters=2, padding=1, seed=5)
    r = wt.results
    w, wdag, padded = r["w"], r["W-dagger"], r["dJ/dv padded"]
    assert wdag.shape == (3, 2, *w.shape[2:])
    for c, o in itertools.product(range(3), range(2)):
        assert np.array_equal(wdag[c, o], w[o, c, ::-1, ::-1])
    for c in range(3):
        total = sum(F.conv_general(padded[o][None, None], np.ascontiguousarray(w[o, c, ::-1, ::-1])[None, None])[0, 0]
                    for o in range(2))
        assert rel_err(r["dJ/dx"][c], total) < 1e-12
    assert "W-dagger" in render_text(wt)


def test_defaults_are_not_the_worked_example_when_they_cannot_be():
    r = explain_conv(seed=7).results
    assert r["x"].shape != (1, 3, 3) or not np.array_equal(r["x"][0], X)
    r = explain_conv(x=np.arange(16.0).reshape(4, 4)).results          # worked w, dJ/dv random 3x3
    assert np.array_equal(r["w"][0, 0], W) and r["dJ/dv"].shape == (1, 3, 3)


# ---------------------------------------------------------------------------------------
# conv: text
# ---------------------------------------------------------------------------------------
def test_text_has_the_key_sections_in_order():
    text = render_text(explain_conv())
    keys = ["Forward", "4-D Jacobians", "dv/dw[:,:,0,1]", "dv/dx[:,:,1,1]", "chain rule", "tensordot",
            "dJ/dw = conv(x, dJ/dv)", "dJ/dx = conv(pad(dJ/dv, f-1), rot180(w))", "dJ/dv padded",
            "fast path", "Check result: OK"]
    positions = [text.index(k) for k in keys]
    assert positions == sorted(positions)
    assert [n for n, _ in explain_conv().step("shortcut_dx").matrices] == ["dJ/dv", "dJ/dv padded", "w", "rot180(w)",
                                                                          "dJ/dx"]
    # the forward windows with their computed sums
    assert "v[0,0] = 2*3 + (-3)*(-1) + 1*4 + (-1)*2 = 11" in text
    assert "dJ/dw[0,0] = 2*3 + (-3)*(-2) + 1*1 + (-1)*(-1) = 14" in text


def test_text_mentions_dilation_for_stride():
    text = render_text(explain_conv(stride=2, seed=1))
    assert "dilated" in text and "stride-1" in text


# ---------------------------------------------------------------------------------------
# pool
# ---------------------------------------------------------------------------------------
def _pooling():
    return pytest.importorskip("convgrad.functional.pooling")


def test_pool_default_is_the_lectures_max_pool_example():
    wt = explain_pool()
    assert np.array_equal(wt.results["y"], [[8, 10], [7, 4]])
    g, dx = wt.results["dJ/dy"], wt.results["dJ/dx"]
    # each gradient lands on its window's arg-max: x[1,0]=8, x[0,2]=10, x[2,0]=7, x[3,3]=4
    expect = np.zeros((4, 4))
    expect[1, 0], expect[0, 2], expect[2, 0], expect[3, 3] = g[0, 0], g[0, 1], g[1, 0], g[1, 1]
    assert np.array_equal(dx, expect) and wt.passed


@pytest.mark.parametrize("seed,k,s,mode", list(itertools.product([0, 1, 2], [2, 3], [1, 2, 3], ["max", "avg"])))
def test_pool_matches_the_library(seed, k, s, mode):
    P = _pooling()
    wt = explain_pool(kernel_size=k, stride=s, mode=mode, seed=seed)
    r = wt.results
    fwd, bwd = (P.max_pool_forward, P.max_pool_backward) if mode == "max" else (P.avg_pool_forward,
                                                                              P.avg_pool_backward)
    y, cache = fwd(r["x"][None, None], k, s)
    assert rel_err(r["y"], y[0, 0]) < 1e-12
    assert rel_err(r["dJ/dx"], bwd(r["dJ/dy"][None, None], cache)[0, 0]) < 1e-12
    assert wt.passed and "convgrad.functional.pooling" in wt.checks[-1].routes


def test_pool_overlapping_windows_accumulate():
    x = np.array([[1, 2, 3], [4, 9, 5], [6, 7, 8]], dtype=float)
    g = np.array([[1, 2], [3, 4]], dtype=float)
    wt = explain_pool(x=x, kernel_size=2, stride=1, mode="max", grad=g)
    expect = np.zeros((3, 3))
    expect[1, 1] = g.sum()                      # 9 is the max of all four windows
    assert np.array_equal(wt.results["dJ/dx"], expect)
    assert np.array_equal(wt.results["coverage"], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    text = render_text(wt)
    assert "overlap" in text and "dJ/dx[1,1] = dJ/dy[0,0] + dJ/dy[0,1] + dJ/dy[1,0] + dJ/dy[1,1]" in text
    avg = explain_pool(x=x, kernel_size=2, stride=1, mode="avg", grad=g)
    assert avg.results["dJ/dx"][1, 1] == pytest.approx(g.sum() / 4) and avg.passed
    assert "Mean-pool backward is a convolution" in render_text(avg)


def test_pool_ties_go_to_the_first_maximum():
    wt = explain_pool(x=np.ones((2, 2)), kernel_size=2, grad=np.array([[5.0]]))
    assert np.array_equal(wt.results["dJ/dx"], [[5, 0], [0, 0]])


# ---------------------------------------------------------------------------------------
# resample
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,stride", list(itertools.product([0, 1, 2], [1, 2, 3, (2, 3)])))
def test_resample_strided_conv_is_stride1_then_downsample(seed, stride):
    wt = explain_resample(stride=stride, seed=seed)
    r = wt.results
    x, w, g = r["x"][None, None], r["w"][None, None], r["dJ/dv"][None, None]
    y, cache = F.conv_forward(x, w, stride=stride)
    dx, dw, _ = F.conv_backward(g, cache)
    rdx, rdw, _ = ref.conv_loops_backward(g, x, w, stride=stride)
    assert rel_err(r["v"], y[0, 0]) < 1e-12
    assert rel_err(r["dJ/dx"], dx[0, 0]) < 1e-12 and rel_err(r["dJ/dx"], rdx[0, 0]) < 1e-12
    assert rel_err(r["dJ/dw"], dw[0, 0]) < 1e-12 and rel_err(r["dJ/dw"], rdw[0, 0]) < 1e-12
    s = (stride, stride) if isinstance(stride, int) else stride
    assert np.array_equal(r["dJ/dx (down)"][::s[0], ::s[1]], r["dJ/dz"])      # zero insertion ...
    assert r["dJ/dx (down)"].sum() == r["dJ/dz"].sum()                          # ... and nothing else
    assert np.array_equal(r["dJ/dz (up)"], r["dJ/du"][::s[0], ::s[1]])
    assert wt.passed


# ---------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------
def _players(page):
    """The JSON of every player on the page."""
    import json
    return [json.loads(d) for d in re.findall(r'<script type="application/json">(.*?)</script>', page, re.S)]


def _assert_self_contained(page):
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<img" not in page
    assert "src=" not in page                                                  # no external script or image


@pytest.mark.parametrize("build,count", [
    (lambda: explain_conv(), 3),
    (lambda: explain_conv(stride=2, padding=1, channels=2, filters=2, seed=3), 8),   # 2 forward, 2 dJ/dx, 4 dJ/dw
    (lambda: explain_pool(stride=1), 2),
    (lambda: explain_resample(), 3)])
def test_html_is_self_contained_with_players(build, count, tmp_path):
    path = tmp_path / "walk.html"
    wt = build()
    write_html(wt, path)
    page = path.read_text(encoding="utf-8")
    _assert_self_contained(page)
    players = _players(page)
    assert len(players) == count == page.count('class="player"')
    anims = [a for s in wt.steps for a in s.animations]
    for data, anim in zip(players, anims):
        assert len(data["frames"]) == len(anim.frames) > 1 and data["sums"] == anim.sums
        for frame, panels in zip(data["frames"], anim.frames):
            for d, p in zip(frame, panels):       # each panel's cells are the computed values
                assert [[v for v, _ in row] for row in data["maps"][d["map"]]] == [[fmt(v) for v in r] for r in p.values]
                assert d["win"] == ([] if p.window is None else np.argwhere(p.window).tolist())
    for cls in ("back", "step", "play", "pause"):
        assert page.count(f'<button class="{cls}"') == count
    assert os.listdir(tmp_path) == ["walk.html"]                               # no temporary file left behind
    assert "<table" in page and "background:rgb" in page                        # matrices as coloured grids


def test_html_conv_players_for_forward_dx_and_dw(tmp_path, capsys):
    path = tmp_path / "conv.html"
    code, out, _ = run_cli(["conv", "--html", str(path)], capsys)
    assert code == 0 and "wrote" in out
    players = _players(path.read_text(encoding="utf-8"))
    captions = [p["caption"] for p in players]
    assert captions[0].startswith("forward")
    assert any(c.startswith("dJ/dx") and "padded" in c for c in captions)
    assert any(c.startswith("dJ/dw") and "over x" in c for c in captions)
    # frames: one blank frame, then one per output of the 2x2 map (dJ/dx: 3x3)
    assert [len(p["frames"]) for p in players] == [5, 5, 10]
    assert players[0]["sums"][1] == "v[0,0] = 2*3 + (-3)*(-1) + 1*4 + (-1)*2 = 11"
    assert "slide 64 prints 12" in players[1]["sums"][1] and players[1]["sums"][1].startswith("dJ/dw[0,0] = ")


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
def test_cli_conv_without_arguments_prints_the_worked_example(capsys):
    code, out, _ = run_cli(["conv"], capsys)
    assert code == 0 and "Check result: OK" in out and "v[1,1] = (-1)*3 + 2*(-1) + 2*4 + 3*2 = 9" in out


def test_cli_options_reach_the_walkthrough(capsys):
    code, out, _ = run_cli(["conv", "--input", "1,2,3;4,5,6;7,8,9", "--kernel", "1,0;0,-1", "--grad", "1,1;1,1"],
                           capsys)
    assert code == 0 and "v[0,0] = 1*1 + 2*0 + 4*0 + 5*(-1) = -4" in out
    code, out, _ = run_cli(["conv", "--input", "1,2,3;4,5,6;7,8,9|0,1,0;1,0,1;0,1,0", "--kernel", "1,0;0,1|1,1;1,1",
                            "--stride", "2", "--padding", "1"], capsys)
    assert code == 0 and "x[1] padded" in out
    for argv in (["pool", "--mode", "avg", "--stride", "1", "--seed", "2"], ["resample", "--stride", "3"]):
        code, out, _ = run_cli(argv, capsys)
        assert code == 0 and "Check result: OK" in out, argv


@pytest.mark.parametrize("argv,message", [
    (["conv", "--input", "1,2;3"], "not rectangular"),
    (["conv", "--input", "1,a;3,4"], "could not convert"),
    (["conv", "--input", "1,2;3,4", "--kernel", "1,2,3;4,5,6;7,8,9"], "larger than"),
    (["conv", "--padding", "1", "--input", "1,2;3,4", "--kernel", "1,2,3,4;1,2,3,4;1,2,3,4;1,2,3,4",
      "--dilation", "2"], "larger than"),
    (["conv", "--grad", "1,2,3;4,5,6"], "dJ/dv must have the output's shape 2x2"),
    (["conv", "--stride", "0"], "stride"),
    (["conv", "--stride", "x"], "expected an integer"),
    (["conv", "--channels", "2", "--input", "1,2;3,4"], "--channels 2 does not match"),
    (["conv", "--input", "1,2,3;4,5,6;7,8,9", "--kernel", "1,2;3,4|1,1;1,1"], "2 channel(s) but the input has 1"),
    (["conv", "--input", "1,2;3,4|1,2,3;4,5,6"], "different shapes"),
    (["conv", "--filters", "9"], "between 1 and"),
    (["conv", "--bias", "1,2"], "one value per filter (1), got 2"),
    (["conv", "--batch", "0"], "batch must be an integer between 1 and 8"),
    (["conv", "--activation", "softmax"], "invalid choice"),
    (["conv", "--dims", "3", "--input", "1,2;3,4"], "--dims 3 draws its maps at random"),
    (["conv", "--dims", "1", "--input", "1,2;3,4"], "one row per channel"),
    (["conv", "--groups", "2", "--channels", "3"], "must be divisible by groups"),
    (["conv", "--groups", "2", "--bias", "1"], "part of the 2-D walk-through"),
    (["transposed", "--input", "1,2;3,4", "--grad", "1,2;3,4"], "output's shape 5x5"),
    (["transposed", "--input", "1", "--kernel", "1", "--padding", "1"], "crops more than"),
    (["pool", "--input", "1,2;3,4", "--kernel-size", "3"], "larger than"),
    (["pool", "--mode", "min"], "invalid choice"),
    (["pool", "--grad", "1,2,3;4,5,6"], "output's shape 2x2"),
    (["resample", "--input", "1,2;3,4", "--kernel", "1,2,3;4,5,6;7,8,9"], "larger than"),
    ([], "required"),
])
def test_cli_errors_exit_2_with_a_message(argv, message, capsys):
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert "Check result" not in out


def test_parsers():
    assert parse_matrix(" 1 2; 3,4 ").shape == (2, 2)
    assert parse_maps("1;2|3;4").shape == (2, 2, 1)
    assert parse_kernel("1|2/3|4").shape == (2, 2, 1, 1)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_matrix("1,2;;3,4")
    with pytest.raises(ExplainError):
        explain_conv(x=np.ones((20, 20)))
