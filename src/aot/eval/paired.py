"""Paired differences between two defenders evaluated on the same items, with bootstrap CIs.

The study evaluates every arm on the *same* benchmark items, so an arm's difference from another
is measured item by item: a paired comparison is far tighter than two independent intervals.

The interval: a percentile bootstrap over *units* (a question; for ``robust`` a base question
with its attacked variants, which move together). Training seeds are combined inside each
replicate: one resample of the units is drawn, both arms' metrics are computed on it for every
training seed, and the replicate's difference is the mean over seeds of (metric B - metric A).
So the interval covers the item sampling and averages over the training seeds run; the spread
between seeds is reported beside it (``seed_diffs``), not folded in.

Metrics are computed from the ``predictions`` rows of ``run_suite`` results (``keep_predictions``):
``{"bench", "answer", "pred", "correct", "options", "meta"}``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np


Rows = Sequence[dict[str, Any]]


# --- metrics as sums of per-row features -------------------------------------------------
# Every paired metric is a function of column sums of a per-row feature matrix, so a bootstrap
# replicate is one matrix product: (replicates, units) counts @ (units, features) sums.
def _text(r: dict[str, Any], letter: str | None) -> str | None:
    if letter is None:
        return None
    i = ord(letter) - ord("A")
    return r["options"][i] if 0 <= i < len(r["options"]) else None


class Metric:
    """``features(rows) -> (n, k)`` float array; ``value(sums (..., k)) -> (...)`` metric."""

    def __init__(self, bench: str, features: Callable[[Rows], np.ndarray], value: Callable[[np.ndarray], np.ndarray]):
        self.bench, self.features, self.value = bench, features, value

    def __call__(self, rows: Rows) -> float:
        return float(self.value(self.features(rows).sum(axis=0)))


def _ratio(s: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s[..., 1] > 0, s[..., 0] / np.maximum(s[..., 1], 1e-300), np.nan)


def _accuracy(select: Callable[[dict[str, Any]], bool] = lambda r: True) -> Callable[[Rows], np.ndarray]:
    def f(rows: Rows) -> np.ndarray:  # (n, 2): [correct and selected, selected]
        sel = np.array([select(r) for r in rows], dtype=float)
        ok = np.array([bool(r["correct"]) for r in rows], dtype=float)
        return np.stack([ok * sel, sel], axis=1).reshape(len(rows), 2)

    return f


POPE_SUBSETS = ("random", "popular", "adversarial")


def _pope_features(rows: Rows) -> np.ndarray:
    """(n, 9): [tp, fp, fn] for each subset in ``POPE_SUBSETS`` ('yes' is positive)."""
    out = np.zeros((len(rows), 3 * len(POPE_SUBSETS)))
    for i, r in enumerate(rows):
        s = POPE_SUBSETS.index(r["meta"]["subset"])
        p, label = _text(r, r["pred"]), _text(r, r["answer"])
        out[i, 3 * s : 3 * s + 3] = [p == "yes" and label == "yes", p == "yes" and label == "no", p != "yes" and label == "yes"]
    return out


def _f1(s: np.ndarray, subset: int) -> np.ndarray:
    """POPE's F1 from [tp, fp, fn]: 2tp / (2tp + fp + fn), 0 when tp = 0 (as ``pope_metrics``)."""
    tp, fp, fn = s[..., 3 * subset], s[..., 3 * subset + 1], s[..., 3 * subset + 2]
    return np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-300), 0.0)


def _attacked_or_clean(rows: Rows) -> np.ndarray:
    """heldout (n, 2): a base question counts once, by its attacked row when the attacker's edit
    passed integrity (``valid``) and by its clean row when it did not (the void attack leaves
    the clean image), as ``heldout/greedy/attacked/accuracy``."""
    out = np.zeros((len(rows), 2))
    for i, r in enumerate(rows):
        m = r["meta"]
        if m.get("role") == "attacked" or (m.get("role") == "clean" and not m.get("valid")):
            out[i] = [bool(r["correct"]), 1.0]
    return out


PAIRED_METRICS: dict[str, Metric] = {
    "vstar/greedy/accuracy": Metric("vstar", _accuracy(), _ratio),
    "hr/greedy/accuracy": Metric("hr", _accuracy(), _ratio),
    "clean/greedy/accuracy": Metric("clean", _accuracy(), _ratio),
    "robust/greedy/attacked/accuracy": Metric("robust", _accuracy(lambda r: r["meta"].get("op") != "clean"), _ratio),
    "heldout/greedy/attacked/accuracy": Metric("heldout", _attacked_or_clean, _ratio),
    "pope/greedy/adversarial/f1": Metric("pope", _pope_features, lambda s: _f1(s, POPE_SUBSETS.index("adversarial"))),
    "pope/greedy/mean/f1": Metric("pope", _pope_features, lambda s: np.mean([_f1(s, k) for k in range(len(POPE_SUBSETS))], axis=0)),
}
"""Metric name (as in results.json) -> its benchmark and how to compute it from that
benchmark's prediction rows (the same numbers ``run_suite`` reports, tested)."""


# --- units ---------------------------------------------------------------------------------
def unit_keys(rows: Rows) -> list[Any]:
    """The unit each row belongs to: a robust row's base question (``meta["base"]``), else the
    row itself (one question)."""
    return [(r["meta"]["base"] if "base" in r.get("meta", {}) else ("row", i)) for i, r in enumerate(rows)]


def _unit_matrix(rows: Rows) -> np.ndarray:
    """(units, rows) 0/1 membership, units in order of first appearance."""
    keys = unit_keys(rows)
    index: dict[Any, int] = {}
    for k in keys:
        index.setdefault(k, len(index))
    m = np.zeros((len(index), len(rows)))
    m[[index[k] for k in keys], np.arange(len(rows))] = 1.0
    return m


def _identity(rows: Rows) -> list[tuple[Any, ...]]:
    return [(r.get("bench"), r.get("text"), tuple(r.get("options", ())), r.get("answer"), tuple(sorted((k, str(v)) for k, v in r.get("meta", {}).items()))) for r in rows]


# --- the bootstrap ---------------------------------------------------------------------------
def paired_bootstrap(
    pairs: Sequence[tuple[Rows, Rows]],
    metric: Metric,
    n_boot: int = 4000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Difference B - A of ``metric`` between two arms, one (rows A, rows B) pair per training
    seed, every pair over the *same* items in the same order (checked).

    Returns ``{"diff", "lo", "hi", "units", "seeds", "seed_diffs"}``: the observed difference
    (mean over seeds), the percentile interval at ``level``, the number of units, the number
    of seeds and each seed's own difference."""
    if not pairs:
        raise ValueError("paired_bootstrap needs at least one (A, B) pair")
    ref = _identity(pairs[0][0])
    for a, b in pairs:
        if _identity(a) != ref or _identity(b) != ref:
            raise ValueError("paired comparison needs both arms (and every seed) evaluated on the same items in the same order")
    membership = _unit_matrix(pairs[0][0])  # (U, n)
    n_units = membership.shape[0]
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, n_units, n_units), minlength=n_units) for _ in range(n_boot)]).astype(float)  # (B, U)
    seed_diffs, reps = [], np.zeros(n_boot)
    for a, b in pairs:
        fa, fb = membership @ metric.features(a), membership @ metric.features(b)  # (U, k) per-unit sums
        seed_diffs.append(float(metric.value(fb.sum(0)) - metric.value(fa.sum(0))))
        reps += metric.value(counts @ fb) - metric.value(counts @ fa)  # (B,)
    reps /= len(pairs)
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(reps, [alpha, 1 - alpha]) if np.isfinite(reps).any() else (math.nan, math.nan)
    return {
        "diff": float(np.mean(seed_diffs)),
        "lo": float(lo),
        "hi": float(hi),
        "units": n_units,
        "seeds": len(pairs),
        "seed_diffs": seed_diffs,
    }


def bench_rows(results: dict[str, Any], bench: str) -> list[dict[str, Any]]:
    """The prediction rows of one benchmark from ``run_suite`` results."""
    if "predictions" not in results:
        raise ValueError("results have no per-item predictions (run_suite with keep_predictions)")
    return [r for r in results["predictions"] if r["bench"] == bench]


def paired_rate_difference(a: Sequence[float], b: Sequence[float], n_boot: int = 4000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Difference mean(b) - mean(a) of two per-item outcomes on the same items (0/1 successes,
    say), with a percentile bootstrap interval that resamples items (pairs kept together).

    Returns ``{"a", "b", "diff", "lo", "hi", "n"}``."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.shape != y.shape or x.ndim != 1 or not len(x):
        raise ValueError(f"paired_rate_difference needs two equally long non-empty 1-d outcomes, got {x.shape} and {y.shape}")
    d = y - x
    idx = np.random.default_rng(seed).integers(0, len(d), (n_boot, len(d)))  # (B, n) items drawn with replacement
    alpha = (1 - level) / 2
    lo, hi = np.quantile(d[idx].mean(1), [alpha, 1 - alpha])
    return {"a": float(x.mean()), "b": float(y.mean()), "diff": float(d.mean()), "lo": float(lo), "hi": float(hi), "n": int(len(d))}
