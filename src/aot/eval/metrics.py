"""Metric functions: small, pure, hand-checked (POPE, HallusionBench-style, strict-k, CIs)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Hashable, Sequence


def accuracy(correct: Sequence[bool]) -> float:
    return sum(map(bool, correct)) / len(correct) if correct else float("nan")


def strict_accuracy(trials: Sequence[Sequence[bool]]) -> float:
    """Paper's strict mode: an item counts only when every one of its trials is correct."""
    return accuracy([bool(t) and all(t) for t in trials])


def pope_metrics(predictions: Sequence[str | None], labels: Sequence[str]) -> dict[str, float]:
    """POPE: 'yes' is the positive class. An unreadable prediction (None) counts as wrong, and
    as neither yes nor no for precision. Returns accuracy, precision, recall, f1, yes_ratio."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    if any(l not in ("yes", "no") for l in labels):
        raise ValueError("POPE labels must be 'yes' or 'no'")
    tp = sum(p == "yes" and l == "yes" for p, l in zip(predictions, labels))
    fp = sum(p == "yes" and l == "no" for p, l in zip(predictions, labels))
    fn = sum(p != "yes" and l == "yes" for p, l in zip(predictions, labels))
    correct = sum(p == l for p, l in zip(predictions, labels))
    n = len(labels)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": correct / n if n else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "yes_ratio": sum(p == "yes" for p in predictions) / n if n else float("nan"),
    }


def hallusion_metrics(records: Sequence[tuple[Hashable, Hashable, Hashable, bool]]) -> dict[str, float]:
    """HallusionBench-style accuracies from (group, variant, question, correct) records.

    A *figure* is one (group, variant) image; a *question* is one (group, question) asked of
    every variant of the group.
    - aAcc: share of all answers that are correct;
    - fAcc: share of figures whose questions are all correct;
    - qAcc: share of questions answered correctly on every variant.
    """
    if not records:
        return {"aAcc": float("nan"), "fAcc": float("nan"), "qAcc": float("nan")}
    figs: dict[tuple, list[bool]] = defaultdict(list)
    qs: dict[tuple, list[bool]] = defaultdict(list)
    for g, v, q, ok in records:
        figs[(g, v)].append(bool(ok))
        qs[(g, q)].append(bool(ok))
    return {
        "aAcc": accuracy([r[3] for r in records]),
        "fAcc": accuracy([all(v) for v in figs.values()]),
        "qAcc": accuracy([all(v) for v in qs.values()]),
    }


# two-sided 95% Student t quantiles for df = 1..30
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t confidence interval (0 for a single value)."""
    vals = [float(v) for v in values]
    if not vals:
        return float("nan"), float("nan")
    m = sum(vals) / len(vals)
    if len(vals) == 1:
        return m, 0.0
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
    df = len(vals) - 1
    t = _T95[df - 1] if df <= 30 else 1.96
    return m, t * sd / math.sqrt(len(vals))
