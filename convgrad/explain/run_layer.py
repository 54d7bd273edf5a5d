"""`convgrad explain RUN --layer NAME --image x.png`: one convolution layer of a trained run,
on a real image, with the lectures' sums on the real numbers.

The run's model (float64 copy, eval mode) reads the image; the layers of its top-level
Sequential run one at a time, so the chosen Conv2d's input x (C, H, W) is the real feature
map. The loss is cross-entropy at the predicted class (or --target); backward through the
layers above gives the real dJ/dv (K, Ho, Wo) at the layer's output. For the window
(o, i, j) the user picks:

    v[o,i,j]    = b[o] + sum_c sum_{a,b} x[c, i*s + a*d, j*s + b*d] * w[o,c,a,b]  (per channel)
    dJ/dw[o,c,a,b] = sum_{i,j} x[c, i*s + a*d, j*s + b*d] * dJ/dv[o,i,j]     (one weight, all positions)
    dJ/db[o]    = sum_{i,j} dJ/dv[o,i,j]
    dJ/dx[c,p,q] = sum of w[o,c,a,b] * dJ/dv[o,i,j] over the windows that read x[c,p,q]

each computed here by plain loops and checked against the layer's own forward/backward
(the fast path). The rest of the maps are shown as heat maps on the HTML page.
"""
from __future__ import annotations

import base64
import copy
import html
import itertools

import numpy as np

from .steps import ExplainError, fmt

MAX_TERMS = 12


def _load(run, image, invert):
    from ..data.images import load_image
    from ..train import load_for_inference
    model, state = load_for_inference(run)
    mc, norm = state["model_config"], state["normalization"]
    pixels = load_image(image, mc["in_channels"], mc["image_size"], invert=invert)
    mean = np.asarray(norm["mean"], dtype=np.float64).reshape(-1, 1, 1)
    std = np.asarray(norm["std"], dtype=np.float64).reshape(-1, 1, 1)
    x = ((pixels / 255.0 - mean) / std)[None]
    return copy.deepcopy(model).to(np.float64).eval(), x, state.get("classes"), pixels


def _layers(model):
    from .. import nn
    if not isinstance(model, nn.Sequential):
        raise ExplainError("the run's model is not a Sequential; explain RUN --layer walks a Sequential's layers")
    return list(model.named_children())


def conv_layers(model) -> list:
    from .. import nn
    return [n for n, m in _layers(model) if isinstance(m, nn.Conv2d)]


def _pads(layer, x_shape):
    from ..functional.convolution import conv_geometry
    if getattr(layer, "padding_mode", "zeros") != "zeros" or layer.groups != 1:
        raise ExplainError("this walk-through handles zero padding and groups = 1")
    return conv_geometry(x_shape, layer.weight.data.shape, layer.stride, layer.padding, layer.dilation, 1)


def explain_run_layer(run, layer_name, image, window=None, target=None, invert=False) -> dict:
    """Everything the text and the page show, as data (see the module docstring)."""
    model, x0, classes, pixels = _load(run, image, invert)
    layers = _layers(model)
    names = [n for n, _ in layers]
    convs = conv_layers(model)
    if layer_name not in names or layer_name not in convs:
        raise ExplainError(f"--layer {layer_name!r}: the run's convolution layers are {', '.join(convs)} "
                           f"(top-level layers: {', '.join(f'{n} {type(m).__name__}' for n, m in layers)})")
    k = names.index(layer_name)
    h = x0
    for _, m in layers[:k]:                      # forward up to the layer: its real input
        h = m(h)
    x = h
    conv = layers[k][1]
    v = conv(x)
    out = v
    for _, m in layers[k + 1:]:
        out = m(out)
    logits = out[0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    pred = int(np.argmax(p))
    label = pred if target is None else int(target)
    if not 0 <= label < len(p):
        raise ExplainError(f"--target must be a class index between 0 and {len(p) - 1}, got {target}")
    dlogits = p.copy()
    dlogits[label] -= 1.0                        # d cross-entropy / d logits
    g = dlogits[None]
    for _, m in reversed(layers[k + 1:]):        # backward down to the layer's output: the real dJ/dv
        g = m.backward(g)
    dv = g
    conv.zero_grad()
    dx_fast = conv.backward(dv)                  # the fast path's gradients
    geo = _pads(conv, x.shape)
    (pt, pb), (pl, pr) = geo.pads
    xp = np.pad(x[0], ((0, 0), (pt, pb), (pl, pr)))
    w, b = conv.weight.data, (None if conv.bias is None else conv.bias.data)
    K, C, fh, fw = w.shape
    (sh, sw), (dh, dw_), (ho, wo) = geo.stride, geo.dilation, geo.out
    if window is None:
        o, i, j = np.unravel_index(int(np.argmax(np.abs(dv[0]))), dv[0].shape)
    else:
        o, i, j = window
        if not (0 <= o < K and 0 <= i < ho and 0 <= j < wo):
            raise ExplainError(f"--window {o},{i},{j} is outside the output ({K} channels of {ho}x{wo})")
    o, i, j = int(o), int(i), int(j)
    # the forward sum at the window, channel by channel
    per_channel = [float(np.sum(xp[c, i * sh:i * sh + dh * (fh - 1) + 1:dh, j * sw:j * sw + dw_ * (fw - 1) + 1:dw_]
                                * w[o, c])) for c in range(C)]
    v_loop = (0.0 if b is None else float(b[o])) + sum(per_channel)
    terms = [f"x[{c},{i * sh + a * dh - pt},{j * sw + bb * dw_ - pl}]*w[{o},{c},{a},{bb}] = "
             f"{fmt(xp[c, i * sh + a * dh, j * sw + bb * dw_])}*{fmt(w[o, c, a, bb])}"
             for c, a, bb in itertools.product(range(min(C, 1)), range(fh), range(fw))]
    # the weight gradient of one weight (channel c0, tap a0, b0): the sum over every output position
    c0 = int(np.argmax(np.abs(conv.weight.grad[o]).reshape(C, -1).max(axis=1)))
    a0, b0 = np.unravel_index(int(np.argmax(np.abs(conv.weight.grad[o, c0]))), (fh, fw))
    patch = xp[c0, a0 * dh:a0 * dh + (ho - 1) * sh + 1:sh, b0 * dw_:b0 * dw_ + (wo - 1) * sw + 1:sw]
    dw_loop = float(np.sum(patch * dv[0, o]))
    db_loop = float(dv[0, o].sum())
    # the input gradient at the input cell under the window's first tap of channel c0
    pq = (i * sh - pt, j * sw - pl)
    dx_terms = [(oo, ii, jj, a, bb) for oo, ii, jj, a, bb in itertools.product(range(K), range(ho), range(wo),
                                                                                   range(fh), range(fw))
                if ii * sh + a * dh - pt == pq[0] and jj * sw + bb * dw_ - pl == pq[1]] if 0 <= pq[0] and 0 <= pq[1] \
        else []
    dx_loop = float(sum(w[oo, c0, a, bb] * dv[0, oo, ii, jj] for oo, ii, jj, a, bb in dx_terms))
    checks = {
        f"v[{o},{i},{j}]": (v_loop, float(v[0, o, i, j])),
        f"dJ/dw[{o},{c0},{a0},{b0}]": (dw_loop, float(conv.weight.grad[o, c0, a0, b0])),
    }
    if b is not None:
        checks[f"dJ/db[{o}]"] = (db_loop, float(conv.bias.grad[o]))
    if dx_terms:
        checks[f"dJ/dx[{c0},{pq[0]},{pq[1]}]"] = (dx_loop, float(dx_fast[0, c0, pq[0], pq[1]]))
    return dict(layer=layer_name, conv=conv, x=x[0], v=v[0], dv=dv[0], dw=conv.weight.grad, dx=dx_fast[0],
                window=(o, i, j), c0=c0, tap=(int(a0), int(b0)), per_channel=per_channel, terms=terms,
                bias=None if b is None else float(b[o]), pred=pred, label=label, probs=p, classes=classes,
                checks=checks, dx_cell=pq, dx_count=len(dx_terms), positions=ho * wo, pixels=pixels)


def _cls(r, k):
    return f"{k} ({r['classes'][k]})" if r["classes"] else str(k)


def render_text(r) -> str:
    o, i, j = r["window"]
    C = r["x"].shape[0]
    lines = [f"Layer {r['layer']}: {r['conv']!r} on the real image; input x {r['x'].shape}, output v {r['v'].shape}.",
             f"prediction {_cls(r, r['pred'])} (p = {r['probs'][r['pred']]:.3f}); loss = cross-entropy at class "
             f"{_cls(r, r['label'])}; dJ/dv is that loss's gradient at this layer's output.",
             "",
             f"Forward at the window (o, i, j) = ({o}, {i}, {j}): v[{o},{i},{j}] = b[{o}] + sum over the {C} input "
             f"channels of (window of x[c]) * w[{o},c]."]
    lines += ["  channel 0, product by product: " + "; ".join(r["terms"][:MAX_TERMS])
              + (" ..." if len(r["terms"]) > MAX_TERMS else "")]
    shown = ", ".join(f"c{c}: {s:.6g}" for c, s in enumerate(r["per_channel"][:8]))
    lines.append(f"  per channel: {shown}{' ...' if C > 8 else ''}")
    bias = "" if r["bias"] is None else f"b[{o}] {r['bias']:.6g} + "
    lines.append(f"  v[{o},{i},{j}] = {bias}(the {C} channel sums: {sum(r['per_channel']):.6g}) = "
                 f"{(r['bias'] or 0.0) + sum(r['per_channel']):.10g}")
    c0, (a0, b0) = r["c0"], r["tap"]
    lines += ["",
              f"Backward: dJ/dw[{o},{c0},{a0},{b0}] (the largest in filter {o}) = sum over all {r['positions']} output "
              f"positions of x[{c0}, i*s + {a0}*d, j*s + {b0}*d] * dJ/dv[{o},i,j] = conv(x, dJ/dv) at that tap.",
              f"dJ/db[{o}] = sum of dJ/dv[{o}] over the positions.",
              f"dJ/dx[{c0},{r['dx_cell'][0]},{r['dx_cell'][1]}] = sum over the {r['dx_count']} (filter, window) pairs "
              "that read that cell of w * dJ/dv (the full convolution with the flipped filters).",
              "",
              "Checked against the layer's own forward/backward (the fast path):"]
    for name, (mine, fast) in r["checks"].items():
        rel = abs(mine - fast) / max(abs(fast), 1e-300)
        lines.append(f"  {name:<22} loops {mine:>16.10g}   fast path {fast:>16.10g}   relative difference {rel:.2e}  "
                     f"{'OK' if rel <= 1e-9 or abs(mine - fast) <= 1e-12 else 'DIFFERS'}")
    return "\n".join(lines) + "\n"


def passed(r) -> bool:
    return all(abs(m - f) <= 1e-9 * max(abs(f), 1e-3) for m, f in r["checks"].values())


def _heat(a, title, diverging=True) -> str:
    from ..plots import _pyplot
    from ..tools.figures import png_bytes
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2.4, 2.4))
    s = float(np.abs(a).max()) or 1.0
    im = ax.imshow(a, cmap="RdBu_r" if diverging else "gray", vmin=-s if diverging else None,
                   vmax=s if diverging else None, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046)
    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    return f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}"></figure>'


def render_html(r) -> str:
    o, i, j = r["window"]
    c0 = r["c0"]
    figs = [_heat(r["pixels"][0], "the image", diverging=False), _heat(r["x"][c0], f"x[{c0}] (layer input)"),
            _heat(r["v"][o], f"v[{o}] (layer output)"), _heat(r["dv"][o], f"dJ/dv[{o}]"),
            _heat(r["dw"][o, c0], f"dJ/dw[{o},{c0}]"), _heat(r["dx"][c0], f"dJ/dx[{c0}]")]
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{m:.10g}</td><td>{f:.10g}</td></tr>"
                   for n, (m, f) in r["checks"].items())
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>layer "
            f"{html.escape(r['layer'])}</title><style>body{{font-family:system-ui,sans-serif;max-width:1100px;"
            "margin:2em auto}} .maps{display:flex;flex-wrap:wrap;gap:1em} pre{background:#f6f6f6;padding:.6em;"
            "white-space:pre-wrap} td{padding:.2em .8em;border-bottom:1px solid #eee}</style></head><body>"
            f"<h1>Layer {html.escape(r['layer'])} on the real image</h1><pre>{html.escape(render_text(r))}</pre>"
            f"<h2>Heat maps (window ({o}, {i}, {j}))</h2><div class=\"maps\">{''.join(figs)}</div>"
            f"<h2>Checked against the fast path</h2><table><tr><th>value</th><th>loops</th><th>fast path</th></tr>"
            f"{rows}</table></body></html>")
