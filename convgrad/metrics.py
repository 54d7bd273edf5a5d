"""Classification metrics from a confusion matrix: per-class precision, recall, F1.

    counts = confusion_counts(labels, predictions, k)        # (K, K), row = true, column = predicted
    rows = per_class(counts)                                 # [{"precision", "recall", "f1", "support"}]

A ratio with a zero denominator (a class never predicted, or absent from the labels) is None,
never NaN, so the result is valid JSON.
"""
from __future__ import annotations

import numpy as np



def confusion_counts(labels: np.ndarray, predictions: np.ndarray, k: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    return np.bincount(labels * k + predictions, minlength=k * k).reshape(k, k)


def _ratio(num: float, den: float):
    return float(num / den) if den else None


def per_class(counts: np.ndarray) -> list:
    """One dict per class: precision = TP / predicted, recall = TP / true, F1 their harmonic mean, support."""
    rows = []
    for k in range(len(counts)):
        tp = counts[k, k]
        precision, recall = _ratio(tp, counts[:, k].sum()), _ratio(tp, counts[k].sum())
        f1 = None
        if precision is not None and recall is not None:
            f1 = _ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0
        rows.append({"precision": precision, "recall": recall, "f1": f1, "support": int(counts[k].sum())})
    return rows


def macro(rows: list, key: str):
    """The mean of a per-class metric over the classes where it is defined (None if none is)."""
    values = [r[key] for r in rows if r[key] is not None]
    return float(np.mean(values)) if values else None


def format_table(rows: list, classes) -> str:
    width = max(12, *(len(str(c)) for c in classes))
    fmt = lambda v: "   -  " if v is None else f"{v:6.4f}"          # noqa: E731
    lines = [f"{'class':<{width}}  precision  recall     f1      support"]
    for name, r in zip(classes, rows):
        lines.append(f"{str(name):<{width}}  {fmt(r['precision']):>9}  {fmt(r['recall']):>6}  "
                     f"{fmt(r['f1']):>6}  {r['support']:>9}")
    lines.append(f"{'macro mean':<{width}}  {fmt(macro(rows, 'precision')):>9}  {fmt(macro(rows, 'recall')):>6}  "
                 f"{fmt(macro(rows, 'f1')):>6}  {sum(r['support'] for r in rows):>9}")
    return "\n".join(lines)
