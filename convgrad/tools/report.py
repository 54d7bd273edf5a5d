"""`convgrad report`: one self-contained HTML page about a training run.

The page holds the run's options and metrics, the training curves, the confusion matrix, the
first layer's filters and feature maps (the PNGs `convgrad train` wrote, regenerated from the
checkpoint when missing), saliency maps of a few test images, FGSM adversarial examples with
the accuracy they leave, and a gradient check of every layer type the model is built from.
Inline CSS, every image a base64 data: URI, no scripts and no external resources: the file
can be mailed, archived or opened offline.
"""
from __future__ import annotations

import argparse
import base64
import html
import os
import sys
import tempfile
import time

import numpy as np

from ..cli_args import HelpFormatter, UsageError, integer, run_path, non_empty
from ._common import PixelModel, eps_rule, guarded, load_model, load_test_split, pixels, run_dir

PLOTS = (("curves.png", "Training curves"), ("confusion_matrix.png", "Confusion matrix (test set)"),
         ("filters.png", "First-layer filters"), ("feature_maps.png", "First-layer feature maps (one test image)"))

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1080px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:8px 0 2px}h2{font-size:20px;margin:34px 0 8px;border-bottom:2px solid #dde2ea;padding-bottom:4px}
.sub{color:#5a6375;margin:0 0 14px}
nav a{margin-right:14px;color:#2456b8;text-decoration:none}nav{margin:10px 0 6px;font-size:14px}
table{border-collapse:collapse;margin:8px 0 12px;background:#fff;font-size:13.5px}
th,td{border:1px solid #d7dce4;padding:4px 9px;text-align:right}th{background:#eef1f6}
td.l,th.l{text-align:left}
.card{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:12px 14px;margin:10px 0}
figure{margin:10px 0}figure img{max-width:100%;height:auto;border:1px solid #e3e6ec;background:#fff}
figcaption{color:#5a6375;font-size:13px}
.pass{color:#17803d;font-weight:600}.fail{color:#c0262d;font-weight:600}.note{color:#8a5a00}
pre{background:#fff;border:1px solid #dde2ea;padding:10px;overflow:auto;font-size:12px}
.kpi{display:inline-block;margin:4px 22px 4px 0}.kpi b{font-size:22px;display:block}
"""


# ---------------------------------------------------------------------------------------
# Pieces of the page
# ---------------------------------------------------------------------------------------
def _e(value) -> str:
    return html.escape(str(value))


def img_tag(png: bytes, alt: str) -> str:
    """An <img> element with the PNG embedded as a data URI (the page stays one file)."""
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def figure(png: bytes, caption: str) -> str:
    """A <figure> of the embedded PNG with its caption."""
    return f"<figure>{img_tag(png, caption)}<figcaption>{_e(caption)}</figcaption></figure>"


def table(header, rows, left=1) -> str:
    """An HTML table; the first `left` columns are left-aligned, cells are escaped."""
    def cells(row, tag):
        return "".join(f"<{tag}{' class=l' if i < left else ''}>{_e(v)}</{tag}>" for i, v in enumerate(row))
    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return f"<table><tr>{cells(header, 'th')}</tr>{body}</table>"


def _regenerate(name: str, make) -> bytes:
    """Run a plots.py function that writes `name` into a scratch directory; return the PNG bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        make(path)
        with open(path, "rb") as f:
            return f.read()


class Section:
    """One section of the report page: an anchor, a title and the HTML fragments added to it."""
    def __init__(self, anchor: str, title: str):
        self.anchor, self.title, self.parts = anchor, title, []

    def add(self, fragment: str) -> "Section":
        """Append an HTML fragment; returns the section (for chaining)."""
        self.parts.append(fragment)
        return self

    def note(self, text: str) -> "Section":
        """Append a paragraph of (escaped) text in the note style."""
        return self.add(f'<p class="note">{_e(text)}</p>')

    def render(self) -> str:
        """The section as HTML."""
        return f'<section id="{self.anchor}"><h2>{_e(self.title)}</h2>{"".join(self.parts)}</section>'


def _last_checkpoint(directory: str, state: dict) -> dict:
    """The run's checkpoint.npz state (its full history) when the model came from best.npz."""
    from ..checkpoint import CheckpointError, load
    last = os.path.join(directory, "checkpoint.npz")
    if os.path.isfile(last):
        try:
            return load(last)
        except CheckpointError:
            pass
    return state


def steps_of(state: dict) -> list:
    """The per-step rows of a checkpoint (stored as columns), [] for runs from before steps.csv."""
    cols = state.get("steps") or {}
    return [dict(zip(cols, values)) for values in zip(*cols.values())] if cols else []


def gradcheck_summary(model, configs: int = 1, seed: int = 0):
    """gradcheck small float64 instances of each layer type in the model (the sweep's random
    configurations of that type). Returns rows (type, count in the model, configs, worst input
    error, worst parameter error, PASS/FAIL/not covered) and whether all passed."""
    from .gradcheck_sweep import LAYERS, sweep
    counts: dict = {}
    for m in model.modules():
        counts[type(m).__name__] = counts.get(type(m).__name__, 0) + 1
    rows, ok = [], True
    for name, count in counts.items():
        if name not in LAYERS:
            rows.append((name, count, 0, "-", "-", "not covered by the sweep"))
            continue
        results = sweep([name], configs=configs, seed=seed)
        inp = max((r.errors.get("input", 0.0) for r in results), default=0.0)
        par = max((v for r in results for k, v in r.errors.items() if k != "input"), default=None)
        passed = all(r.passed for r in results)
        ok &= passed
        rows.append((name, count, len(results), f"{inp:.1e}", "-" if par is None else f"{par:.1e}",
                     "PASS" if passed else "FAIL: " + "; ".join(r.error or r.config for r in results if not r.passed)))
    return rows, ok


# ---------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------
def build_report(path: str, attack_eps: float = 0.1, limit: int = 200, data: str | None = None,
                 data_root: str | None = None, examples: int = 6, gradcheck_configs: int = 2, log=print) -> str:
    """The HTML page (a str) of the run in `path` (a run directory or its checkpoint.npz)."""
    from .. import plots
    from ..train_config import checkpoint_file
    from ._common import check_eps
    from .attack import example_indices, run_attack
    from .figures import adversarial_grid, saliency_grid
    from .saliency import saliency
    check_eps(attack_eps, "--attack-eps")
    if limit < 1 or examples < 1:
        raise UsageError(f"--limit and --examples must be >= 1, got {limit} and {examples}")
    start = time.perf_counter()
    directory = run_dir(path)
    model, state = load_model(path)
    model_file = checkpoint_file(path)
    pm = PixelModel.from_state(model, state)
    cfg, mc = state.get("config", {}), state["model_config"]
    progress = _last_checkpoint(directory, state)        # the model may be best.npz; the history is the whole run's
    history = list(progress.get("history", []))
    classes = list(state.get("classes") or range(mc["num_classes"]))
    n_params = sum(p.data.size for p in model.parameters())
    sections = []

    # -- data (the test split the run was evaluated on) ---------------------------------
    try:
        images, labels, classes = load_test_split(state, data, data_root, cfg.get("limit_test"))
        x = pixels(images)
        data_error = None
    except (ValueError, OSError) as exc:
        x = labels = None
        data_error = f"test data unavailable ({exc}); the sections that need it are left out"
        log(f"report: {data_error}")
    predictions = pm.predict(x) if x is not None else None

    # -- overview --------------------------------------------------------------------------
    s = Section("overview", "Run")
    final = history[-1] if history else None
    kpis = [("epochs", len(history)), ("parameters", f"{n_params:,}"), ("model from", os.path.basename(model_file))]
    if final and final.get("test_accuracy") is not None:
        kpis += [("test accuracy", f"{final['test_accuracy']:.4f}"), ("test loss", f"{final['test_loss']:.4f}")]
    s.add("<div class=card>" + "".join(f'<span class="kpi"><b>{_e(v)}</b>{_e(k)}</span>' for k, v in kpis)
          + "</div>")
    options = [(k, v) for k, v in cfg.items() if k != "extra"]
    s.add(table(("option", "value"), options + [("model_config", mc)], left=2))
    s.add(f"<details><summary>architecture</summary><pre>{_e(repr(model))}</pre></details>")
    if data_error:
        s.note(data_error)
    sections.append(s)

    # -- metrics -----------------------------------------------------------------------------
    s = Section("metrics", "Metrics per epoch")
    if history:
        from ..train import METRIC_COLUMNS
        cols = [c for c in METRIC_COLUMNS if any(r.get(c) is not None for r in history)]
        cell = lambda r, c: "" if r.get(c) is None else (r[c] if c == "epoch" else  # noqa: E731
                                                          f"{r[c]:.1f}" if c == "seconds" else f"{r[c]:.4g}" if c == "lr"
                                                          else f"{r[c]:.4f}")
        s.add(table(cols, [[cell(r, c) for c in cols] for r in history]))
    else:
        s.note("the checkpoint holds no finished epoch")
    sections.append(s)

    # -- the PNGs train writes --------------------------------------------------------------
    s = Section("plots", "Curves, confusion matrix, filters, feature maps")
    makers = {
        "curves.png": (lambda p: plots.curves(history, p, steps_of(progress))) if history else None,
        "confusion_matrix.png": (lambda p: plots.confusion_matrix(labels, predictions, classes, p))
        if x is not None else None,
        "filters.png": lambda p: plots.filters(model, p),
        "feature_maps.png": (lambda p: plots.feature_maps(model, pm.normalise(x[:1])[0], p)) if x is not None else None,
    }
    for name, caption in PLOTS:
        on_disk = os.path.join(directory, name)
        try:
            if os.path.isfile(on_disk):
                with open(on_disk, "rb") as f:
                    s.add(figure(f.read(), f"{caption} ({name})"))
            elif makers[name] is not None:
                s.add(figure(_regenerate(name, makers[name]), f"{caption} (regenerated from the checkpoint: "
                                                             f"{name} was missing)"))
            else:
                s.note(f"{name} is missing and cannot be regenerated without the test data")
        except (ValueError, OSError) as exc:
            s.note(f"{name}: {exc}")
    sections.append(s)

    # -- saliency and adversarial examples ------------------------------------------------------
    if x is not None:
        s = Section("saliency", "Saliency maps")
        s.add("<p>|d score / d pixel| of the predicted class's logit, one backward pass each "
              "(max over colour channels): bright pixels change the score most.</p>")
        idx = np.arange(min(examples, len(x)))
        maps, pred, probs = saliency(pm, x[idx])
        s.add(figure(saliency_grid(x[idx], maps, pred, classes, labels[idx], probs), "saliency maps of test images"))
        sections.append(s)

        s = Section("adversarial", f"Adversarial examples (FGSM, eps = {attack_eps:g})")
        n = min(limit, len(x))
        xa, ya = x[:n], labels[:n]
        show = example_indices(ya, predictions[:n], min(examples, n))
        _, results, kept = run_attack(pm, xa, ya, [attack_eps], "fgsm", keep=show, clean=predictions[:n])
        r = results[0]
        clean_acc = float(np.mean(predictions[:n] == ya))
        s.add(f"<p>x' = clip(x + eps sign(dL/dx), 0, 1) on the first {n} test images, pixels in [0, 1]; "
              "dL/dx from the model's own backward, through the input normalisation.</p>")
        s.add(table(("images", "eps", "clean accuracy", "adversarial accuracy", "change", "max |x' - x|"),
                    [(n, f"{attack_eps:g}", f"{clean_acc:.4f}", f"{r.accuracy:.4f}",
                      f"{100 * (r.accuracy - clean_acc):+.1f} points", f"{r.max_perturbation:.4f}")], left=0))
        png = adversarial_grid(xa[show], ya[show], predictions[:n][show], [(attack_eps, kept[attack_eps],
                                                                             r.predictions[show])], classes,
                               per_row=2)
        s.add(figure(png, "original | perturbation (blue -eps .. red +eps) | adversarial image"))
        sections.append(s)

    # -- gradient check -------------------------------------------------------------------------
    s = Section("gradcheck", "Gradient check of the model's layer types")
    rows, ok = gradcheck_summary(model, configs=gradcheck_configs)
    s.add(f"<p>Central differences in float64 on small random instances of each layer type in the model "
          f"(the configurations of <code>convgrad gradcheck</code>): "
          f"<span class=\"{'pass' if ok else 'fail'}\">{'all passed' if ok else 'FAILED'}</span>.</p>")
    s.add(table(("layer type", "in model", "configs", "max rel. err input", "max rel. err params", "result"), rows))
    sections.append(s)

    title = f"convgrad run report: {os.path.basename(os.path.abspath(directory))}"
    nav = "".join(f'<a href="#{sec.anchor}">{_e(sec.title.split(" (")[0])}</a>' for sec in sections)
    subtitle = (f"{_e(mc['name'])} on {_e((state.get('data') or {}).get('data', cfg.get('data', '?')))} &middot; {_e(os.path.abspath(directory))} &middot; "
                f"generated {time.strftime('%Y-%m-%d %H:%M')} in {time.perf_counter() - start:.1f} s")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
            f"<h1>{_e(title)}</h1><p class=\"sub\">{subtitle}</p><nav>{nav}</nav>"
            + "".join(sec.render() for sec in sections) + "</main></body></html>\n")


def write_report(path: str, out: str | None = None, **kwargs) -> str:
    """Build the page and write it atomically (default RUN_DIR/report.html); returns its path."""
    from ..checkpoint import atomic_write_text
    out = out or os.path.join(run_dir(path), "report.html")
    atomic_write_text(out, build_report(path, **kwargs))
    return out


def _cmd(args) -> int:
    out = write_report(args.run_dir, args.out, attack_eps=args.attack_eps, limit=args.limit, data=args.data,
                       data_root=args.data_root, examples=args.examples)
    with open(out, encoding="utf-8") as f:
        page = f.read()
    print(f"wrote {out} ({len(page) / 1024:.0f} KiB, {page.count('<img ')} images)")
    return 0


def _data_rule(value):
    from ..data.source import check_data
    return check_data(value)


RULES = {"run_dir": run_path, "out": non_empty, "attack_eps": eps_rule, "limit": integer(1),
         "examples": integer(1), "data": _data_rule, "data_root": non_empty}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `report` to an argparse subparsers object."""
    p = subparsers.add_parser("report", help="one self-contained HTML page about a training run",
                              description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("run_dir", help="a run directory (or its checkpoint.npz)")
    p.add_argument("--out", default=None, help="output HTML file (default RUN_DIR/report.html)")
    p.add_argument("--attack-eps", type=float, default=0.1, help="FGSM budget in pixel units (default 0.1)")
    p.add_argument("--limit", type=int, default=200, help="test images attacked (default 200)")
    p.add_argument("--examples", type=int, default=6, help="images in the saliency and attack figures (default 6)")
    p.add_argument("--data", default=None, help="dataset (default: the one the run trained on)")
    p.add_argument("--data-root", default=None, help="directory holding the dataset (default: the run's)")
    p.set_defaults(func=lambda a: guarded("report", _cmd, a, RULES, positional=("run_dir",)))
    return p


def main(argv=None) -> int:
    """`python -m convgrad.tools.report RUN_DIR` without the main CLI."""
    from . import run_standalone
    return run_standalone(add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
