"""Golden tests: every numeric example of the seed decks (shared/seeds) reproduced by a
`convgrad` command, its printed numbers compared with values this test computes on its own
(plain loops and NumPy, not convgrad), and, where a slide prints a number, with the slide.

    000/002  UBC "CNNs: Back Propagation": the 3x3/2x2 worked example (v, the dv/dw slices,
             dJ/dw with the slide's 12 that should be 14, dJ/dx), max-pool 4x4, gradient
             checking y = x1*x2*x3 at (2, 1, 3), the planted 2*w2 bug in z = w2 x2 + w1 x1 + b
    001      recitation: output size floor((W - K + 2P)/S) + 1, max and average pooling 4x4
    003      Applied DL ch. 4: dR/dx5 = w4 dz1 + w3 dz2 + w2 dz3 + w1 dz4, mean-pool backward with
             overlapping windows, bias/activation/batch, 1-D / 3-D / depthwise, transposed conv
"""
import contextlib
import io
import itertools
import re
import subprocess
import sys

import numpy as np
import pytest

X = [[2, -3, 4], [1, -1, 2], [-1, 2, 3]]        # the slides' numbers (000, slides 30-70)
W = [[3, -1], [4, 2]]
G = [[3, -2], [1, -1]]


def convgrad(*argv):
    """Run the `convgrad` command line in this process; returns (exit status, stdout, stderr)."""
    from convgrad.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def test_the_command_itself_prints_the_worked_example():
    p = subprocess.run([sys.executable, "-m", "convgrad.cli", "explain", "conv"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and p.stdout == convgrad("explain", "conv")[1]


def printed(out, name):
    """{index tuple: value} of every equation line 'name[i,j] = ... = value' in the output."""
    found = {}
    for m in re.finditer(rf"^{re.escape(name)}\[([\d,]+)\] = .* = (-?[\d.e+-]+)(?:\s{{2,}}.*)?$", out, re.M):
        found[tuple(int(i) for i in m.group(1).split(","))] = float(m.group(2))
    return found


def grid(found):
    """{(i, j): v} -> 2-D array."""
    shape = tuple(max(k[a] for k in found) + 1 for a in range(len(next(iter(found)))))
    a = np.full(shape, np.nan)
    for k, v in found.items():
        a[k] = v
    return a


# independent references: the definitions, one loop each
def corr2d(x, w, s=1):
    x, w = np.asarray(x, float), np.asarray(w, float)
    ho, wo = (x.shape[0] - w.shape[0]) // s + 1, (x.shape[1] - w.shape[1]) // s + 1
    return np.array([[np.sum(x[i * s:i * s + w.shape[0], j * s:j * s + w.shape[1]] * w) for j in range(wo)]
                     for i in range(ho)])


def input_grad(g, w, shape):
    dx = np.zeros(shape)
    g, w = np.asarray(g, float), np.asarray(w, float)
    for i, j in itertools.product(*map(range, g.shape)):
        dx[i:i + w.shape[0], j:j + w.shape[1]] += g[i, j] * w
    return dx


# ---------------------------------------------------------------------------------------
# 000: the worked example
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def worked():
    code, out, _ = convgrad("explain", "conv")
    assert code == 0
    return out


def test_worked_example_forward(worked):
    assert np.array_equal(grid(printed(worked, "v")), corr2d(X, W))
    assert np.array_equal(corr2d(X, W), [[11, -13], [4, 9]])                   # as the slide prints v


def test_worked_example_weight_gradient_and_the_slides_12(worked):
    mine = corr2d(X, G)                                                          # dJ/dw = conv(x, dJ/dv)
    assert np.array_equal(grid(printed(worked, "dJ/dw")), mine)
    slide = np.array([[12, -20], [2, -8]])                                       # slides 64-67
    assert np.array_equal(mine != slide, [[True, False], [False, False]])       # only dJ/dw11 differs ...
    line = next(q for q in worked.splitlines() if q.startswith("dJ/dw[0,0] = 2*3 + (-3)*(-2) + 1*1 + (-1)*(-1)"))
    assert line.split("   <-")[0].endswith(f"= {int(mine[0, 0])}")                 # ... it is 14
    assert "prints 12" in line and "slide 64" in line                            # and the page says so


def test_worked_example_dv_dw_slices_are_the_slides(worked):
    from convgrad.explain import explain_conv
    jw = explain_conv(x=X, w=W, grad=G).results["dv/dw"][0]
    slides = {(0, 0): [[2, -3], [1, -1]], (0, 1): [[-3, 4], [-1, 2]], (1, 0): [[1, -1], [-1, 2]],
              (1, 1): [[-1, 2], [2, 3]]}                                         # dv/dw11 ... dv/dw22
    for (a, b), s in slides.items():
        assert np.array_equal(jw[a, b], np.asarray(X)[a:a + 2, b:b + 2]) and np.array_equal(jw[a, b], s)
    assert "dv/dw[:,:,0,0]" in worked


def test_worked_example_input_gradient(worked):
    mine = input_grad(G, W, (3, 3))
    assert np.array_equal(grid(printed(worked, "dJ/dx")), mine)
    # 003's formula with numbers: dR/dx5 = w4 dz1 + w3 dz2 + w2 dz3 + w1 dz4
    (w1, w2), (w3, w4) = W
    (z1, z2), (z3, z4) = G
    assert mine[1, 1] == w4 * z1 + w3 * z2 + w2 * z3 + w1 * z4


# ---------------------------------------------------------------------------------------
# 000 / 001 / 003: pooling
# ---------------------------------------------------------------------------------------
def pool(x, k, s, f):
    x = np.asarray(x, float)
    n = [(d - k) // s + 1 for d in x.shape]
    return np.array([[f(x[i * s:i * s + k, j * s:j * s + k]) for j in range(n[1])] for i in range(n[0])])


def test_max_pool_example_of_000():
    code, out, _ = convgrad("explain", "pool")
    x = [[1, 3, 10, 0], [8, 4, 2, 9], [7, 2, 1, 3], [1, 1, 0, 4]]
    assert code == 0 and np.array_equal(grid(printed(out, "y")), pool(x, 2, 2, np.max))
    assert np.array_equal(pool(x, 2, 2, np.max), [[8, 10], [7, 4]])            # the slide's result


@pytest.mark.parametrize("mode,f,slide", [("max", np.max, [[16, 9], [67, 13]]),
                                          ("avg", np.mean, [[9.5, 4.75], [25.75, 7.75]])])
def test_pooling_example_of_001(mode, f, slide):
    x = [[4, 8, 3, 9], [16, 10, 0, 7], [6, 12, 13, 8], [67, 18, 3, 7]]
    code, out, _ = convgrad("explain", "pool", "--input", ";".join(",".join(map(str, r)) for r in x), "--mode", mode)
    assert code == 0
    assert np.allclose(grid(printed(out, "y")), pool(x, 2, 2, f), rtol=0, atol=5e-4)
    assert np.array_equal(pool(x, 2, 2, f), slide)


def test_mean_pool_backward_with_overlapping_windows_003():
    # 2x2 windows, stride 1, on a 3x3 map: the centre is in all four windows, a corner in one
    code, out, _ = convgrad("explain", "pool", "--input", "1,2,3;4,5,6;7,8,9", "--mode", "avg", "--stride", "1",
                            "--grad", "1,2;3,4")
    dx = grid(printed(out, "dJ/dx"))
    assert code == 0 and dx[1, 1] == (1 + 2 + 3 + 4) / 4 and dx[0, 0] == 1 / 4 and dx[0, 1] == (1 + 2) / 4


# ---------------------------------------------------------------------------------------
# 001: the output size, with the user's numbers
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,k,s,p,d", [(4, 2, 1, 0, 1), (4, 2, 2, 0, 1), (4, 2, 1, 1, 1), (7, 3, 2, 1, 1),
                                       (9, 3, 2, 0, 2)])
def test_output_size_formula(n, k, s, p, d):
    x = ";".join([",".join(["1"] * n)] * n)
    kern = ";".join([",".join(["1"] * k)] * k)
    code, out, _ = convgrad("explain", "conv", "--input", x, "--kernel", kern, "--stride", str(s), "--padding", str(p),
                            "--dilation", str(d))
    extent = d * (k - 1) + 1
    expected = (n - extent + 2 * p) // s + 1
    assert code == 0
    line = next(q for q in out.splitlines() if q.startswith("rows (H): floor("))
    assert line.startswith(f"rows (H): floor(({n} - {extent} + 2*{p}) / {s}) + 1") and line.endswith(f"= {expected}")
    assert len(printed(out, "v")) == expected * expected


# ---------------------------------------------------------------------------------------
# 000: gradient checking as the lecture does it
# ---------------------------------------------------------------------------------------
def test_gradcheck_x1_x2_x3_at_2_1_3():
    code, out, _ = convgrad("gradcheck", "--expr", "x1*x2*x3", "--at", "2,1,3", "--eps", "1e-5")
    assert code == 0
    rows = {m.group(1): (float(m.group(2)), float(m.group(3)), float(m.group(4)))
            for m in re.finditer(r"^dy/d(\w+)\s+(\S+)\s+(\S+)\s+(\S+)\s+yes$", out, re.M)}
    x1, x2, x3, h = 2.0, 1.0, 3.0, 1e-5
    f = lambda a, b, c: a * b * c  # noqa: E731
    mine = {"x1": (f(x1 + h, x2, x3) - f(x1 - h, x2, x3)) / (2 * h),
            "x2": (f(x1, x2 + h, x3) - f(x1, x2 - h, x3)) / (2 * h),
            "x3": (f(x1, x2, x3 + h) - f(x1, x2, x3 - h)) / (2 * h)}
    assert {k: v[0] for k, v in rows.items()} == {"x1": 3.0, "x2": 6.0, "x3": 2.0}   # the slide's 3, 6, 2
    for k, (analytic, numerical, rel) in rows.items():
        assert abs(numerical - mine[k]) < 1e-12 and rel == pytest.approx(abs(analytic - numerical) / analytic, rel=1e-3)


def test_the_planted_bug_is_caught_with_the_slides_numbers():
    x2, x1, w2, w1, b = map(float, np.random.RandomState(0).randn(5))   # the slide's values: seed 0, this order
    at = f"x2={x2!r},x1={x1!r},w2={w2!r},w1={w1!r},b={b!r}"
    code, out, _ = convgrad("gradcheck", "--expr", "w2*x2 + w1*x1 + b", "--at", at, "--eps", "1e-5",
                            "--analytic", "x2=2*w2")
    assert code == 1 and "MISMATCH in dy/dx2" in out
    rows = {m.group(1): (float(m.group(2)), float(m.group(3)), m.group(4))
            for m in re.finditer(r"^dy/d(\w+)\s+(\S+)\s+(\S+)\s+\S+\s+(yes|NO)$", out, re.M)}
    # the slide: dz_dx2 numerical: 0.97873798412529 analytic: 1.95747596821148 (with the mistake)
    assert rows["x2"] == (pytest.approx(2 * w2, abs=1e-14), pytest.approx(0.97873798412529, abs=1e-13), "NO")
    slide_correct = {"x1": 2.24089319917908, "w2": 1.76405234597610, "w1": 0.40015720834674, "b": 1.00000000000655}
    for k, v in slide_correct.items():
        analytic, numerical, ok = rows[k]
        assert ok == "yes" and numerical == pytest.approx(v, abs=1e-13)
        assert analytic == pytest.approx({"x1": w1, "w2": x2, "w1": x1, "b": 1.0}[k], abs=1e-14)  # printed to 14 decimals


def test_gradcheck_expr_rejects_python():
    code, out, err = convgrad("gradcheck", "--expr", "__import__('os').getcwd()", "--at", "1")
    assert code == 2 and "error" in err and "Traceback" not in err and out == ""


# ---------------------------------------------------------------------------------------
# 000 / 003: the layer around the convolution — bias, activation, a batch of m samples
# ---------------------------------------------------------------------------------------
def test_bias_relu_and_batch_of_two():
    code, out, _ = convgrad("explain", "conv", "--bias", "1", "--activation", "relu", "--batch", "2")
    assert code == 0 and "Check result: OK" in out
    from convgrad.explain import explain_conv
    r = explain_conv(bias=[1], activation="relu", batch=2).results      # for sample 1's random x and dJ/da
    xb = r["batch x"][:, 0]
    assert np.array_equal(xb[0], X)
    z = np.stack([corr2d(xb[n], W) + 1 for n in range(2)])               # z = v + b
    lines = re.findall(r"^z\[(\d),(\d)\] = v\[\d,\d\] \+ b = \S+ \+ 1 = (\S+);  a\[\d,\d\] = relu\(\S+\) = (\S+)$",
                       out, re.M)
    assert len(lines) == 4
    for i, j, zv, av in lines:
        assert float(zv) == z[0, int(i), int(j)] and float(av) == max(z[0, int(i), int(j)], 0)
    dz0 = np.asarray(G, float) * (z[0] > 0)                              # dJ/dz = dJ/da * relu'(z)
    assert np.array_equal(grid(printed(out, "dJ/dz")), dz0)
    dz1 = r["batch dJ/dv"][1, 0]                                          # sample 1: its dJ/da is random ...
    assert np.all(dz1[z[1] <= 0] == 0)                                    # ... but relu' zeroes it where z <= 0
    dw = corr2d(xb[0], dz0) + corr2d(xb[1], dz1)                          # summed over the batch
    eqs = dict(re.findall(r"^(dJ/dw\[\d,\d\]|dJ/db) = \S+ \+ \S+ = (\S+)$", out, re.M))
    assert {k: float(v) for k, v in eqs.items() if k.startswith("dJ/dw")} == {
        f"dJ/dw[{a},{b}]": dw[a, b] for a in range(2) for b in range(2)}
    assert float(eqs["dJ/db"]) == dz0.sum() + dz1.sum()


@pytest.mark.parametrize("act,deriv", [("sigmoid", lambda a: a * (1 - a)), ("tanh", lambda a: 1 - a * a)])
def test_activation_backward_is_dy_times_f_prime(act, deriv):
    from convgrad.explain import explain_conv
    r = explain_conv(activation=act).results
    z = corr2d(X, W)
    a = 1 / (1 + np.exp(-z)) if act == "sigmoid" else np.tanh(z)
    assert np.allclose(r["dJ/dv"][0], np.asarray(G) * deriv(a), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------------------
# 003: 1-D, 3-D, depthwise; transposed convolution
# ---------------------------------------------------------------------------------------
def test_1d_convolution():
    code, out, _ = convgrad("explain", "conv", "--dims", "1", "--input", "1,2,-1,3,0", "--kernel", "2,-1,1",
                            "--grad", "1,-2,3")
    x, w, g = np.array([1, 2, -1, 3, 0.]), np.array([2, -1, 1.]), np.array([1, -2, 3.])
    assert code == 0
    assert [printed(out, "v")[(i,)] for i in range(3)] == list(np.correlate(x, w, "valid"))
    assert [printed(out, "dJ/dw")[(i,)] for i in range(3)] == list(np.correlate(x, g, "valid"))
    assert [printed(out, "dJ/dx")[(i,)] for i in range(5)] == list(np.convolve(g, w, "full"))


def test_3d_and_depthwise_agree_with_loops():
    from convgrad.explain import explain_conv_nd
    r = explain_conv_nd(3, seed=4).results
    x, w, g = r["x"][0], r["w"][0, 0], r["dJ/dv"][0]
    out = [n - k + 1 for n, k in zip(x.shape, w.shape)]
    v = np.array([np.sum(x[t:t + w.shape[0], i:i + w.shape[1], j:j + w.shape[2]] * w)
                  for t, i, j in itertools.product(*map(range, out))]).reshape(out)
    assert np.array_equal(r["v"][0], v)
    positions = list(itertools.product(*map(range, out)))
    dw = np.zeros(w.shape)
    dx = np.zeros(x.shape)
    for (t, i, j) in positions:                     # each window: dw += window * g, dx[window] += w * g
        dw += x[t:t + w.shape[0], i:i + w.shape[1], j:j + w.shape[2]] * g[t, i, j]
        dx[t:t + w.shape[0], i:i + w.shape[1], j:j + w.shape[2]] += w * g[t, i, j]
    assert np.array_equal(r["dJ/dw"][0, 0], dw) and np.array_equal(r["dJ/dx"][0], dx)
    code, text, _ = convgrad("explain", "conv", "--groups", "3", "--channels", "3", "--filters", "3", "--seed", "2")
    from convgrad.explain import explain_conv_nd as nd
    d = nd(2, groups=3, channels=3, filters=3, seed=2).results
    assert code == 0 and "depthwise" in text
    for c in range(3):                                          # each channel with its own filter, no channel sum
        assert np.array_equal(d["v"][c], corr2d(d["x"][c], d["w"][c, 0]))
        assert np.array_equal(d["dJ/dw"][c, 0], corr2d(d["x"][c], d["dJ/dv"][c]))
        assert np.array_equal(d["dJ/dx"][c], input_grad(d["dJ/dv"][c], d["w"][c, 0], d["x"][c].shape))


def test_transposed_convolution_is_the_conv_input_gradient():
    code, out, _ = convgrad("explain", "transposed", "--input", "1,2;3,4", "--kernel", "1,0,-1;2,1,0;0,1,1",
                            "--stride", "2", "--grad", ";".join([",".join(["1"] * 5)] * 5))
    x, w = np.array([[1, 2], [3, 4.]]), np.array([[1, 0, -1], [2, 1, 0], [0, 1, 1.]])
    y = np.zeros((5, 5))
    for i, j in itertools.product(range(2), range(2)):                          # each x[i,j] stamps x[i,j]*w
        y[2 * i:2 * i + 3, 2 * j:2 * j + 3] += x[i, j] * w
    assert code == 0 and np.array_equal(grid(printed(out, "y")), y)
    assert np.array_equal(grid(printed(out, "dJ/dx")), corr2d(np.ones((5, 5)), w, s=2))   # backward = the conv


def test_jacobian_size_of_alexnet_from_000(worked):
    n = 5 * 5 * 256 * 27 * 27
    assert f"(5, 5, 256, 27, 27) = {n:,} numbers" in worked.replace("\n", " ") and round(n / 1e6, 1) == 4.7


def test_stride_2_drops_the_intermediates_001():
    # the recitation's 3x3 kernel: the stride-2 output is the stride-1 output without the intermediate windows
    kernel = [[9, -9, 7], [2, 5, 6], [-7, 9, -10]]
    x = [[1, 2, 3, 4, 5], [0, 1, 0, 1, 0], [2, 2, 2, 2, 2], [1, 0, 1, 0, 1], [3, 1, 4, 1, 5]]
    code, out, _ = convgrad("explain", "resample", "--kernel", "9,-9,7;2,5,6;-7,9,-10", "--input",
                            ";".join(",".join(map(str, r)) for r in x))
    from convgrad.explain import explain_resample
    r = explain_resample(x=np.asarray(x, float), w=np.asarray(kernel, float)).results
    assert code == 0 and "dSample(conv(x, w, stride 1), 2)" in out.replace("\n", " ")
    assert np.array_equal(r["v1"], corr2d(x, kernel)) and np.array_equal(r["v"], corr2d(x, kernel, s=2))
    assert np.array_equal(corr2d(x, kernel, s=2), corr2d(x, kernel)[::2, ::2])
