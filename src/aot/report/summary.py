"""The report's opening paragraph: what changed from the base to the final defender, in words.

Generated from the two evaluations' per-item predictions, never written by hand: both defenders
answer the *same* items, so each change is a paired difference with a bootstrap interval
(``aot.eval.paired``). An interval that includes 0 is reported as "no measurable change".
"""

from __future__ import annotations

import math
from typing import Any

from ..eval.paired import PAIRED_METRICS, bench_rows, paired_bootstrap

SUMMARY_METRICS: dict[str, str] = {
    "vstar/greedy/accuracy": "V*-like accuracy",
    "hr/greedy/accuracy": "HR-like accuracy",
    "robust/greedy/attacked/accuracy": "accuracy on attacked images (robust)",
    "pope/greedy/adversarial/f1": "POPE adversarial F1",
    "clean/greedy/accuracy": "clean accuracy",
}
"""Metric (a key of ``PAIRED_METRICS``) -> its name in the paragraph, in the order told."""


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _pts(v: float) -> str:
    return f"{100 * v:+.1f}"


def _measured(res: dict[str, Any], bench: str) -> bool:
    return bench in res.get("benchmarks", {}) and any(r.get("bench") == bench for r in res.get("predictions", ()))


def change_summary(base: dict[str, Any], final: dict[str, Any], metrics: dict[str, str] | None = None, n_boot: int = 4000, seed: int = 0,
                   lead: str | None = None) -> str:
    """One paragraph on ``final`` vs ``base`` (two ``run_suite`` results with ``predictions`` over
    the same items): each metric of ``metrics`` (default :data:`SUMMARY_METRICS`) that both
    measured, as "rose" / "fell" when its paired 95% interval excludes 0, else "no measurable
    change"; then the metrics this run did not measure. ``lead`` replaces the opening words."""
    metrics = SUMMARY_METRICS if metrics is None else metrics
    up, down, flat, missing = [], [], [], []
    for name, label in metrics.items():
        metric = PAIRED_METRICS[name]
        if not (_measured(base, metric.bench) and _measured(final, metric.bench)):
            missing.append(label)
            continue
        a, b = bench_rows(base, metric.bench), bench_rows(final, metric.bench)
        d = paired_bootstrap([(a, b)], metric, n_boot=n_boot, seed=seed)
        va, vb = metric(a), metric(b)
        # robust rows come in units of a base question with its attacks (as the bootstrap draws them)
        unit = "base questions with their attacks" if any("base" in r.get("meta", {}) for r in a) else "questions"
        if not (math.isfinite(va) and math.isfinite(vb) and math.isfinite(d["lo"])):
            missing.append(f"{label} (undefined on these {d['units']} {unit})")
            continue
        ci = f"95% CI {_pts(d['lo'])} to {_pts(d['hi'])}, n = {d['units']} {unit}"
        if d["lo"] > 0:
            up.append(f"{label} rose from {_pct(va)} to {_pct(vb)} ({_pts(d['diff'])} points; {ci})")
        elif d["hi"] < 0:
            down.append(f"{label} fell from {_pct(va)} to {_pct(vb)} ({_pts(d['diff'])} points; {ci})")
        else:
            flat.append(f"{label} ({_pct(va)} → {_pct(vb)}, {_pts(d['diff'])} points; {ci})")
    if not (up or down or flat):
        return "No metric was measured on both defenders with per-item predictions, so there is no paired comparison to report."
    text = lead or ("From the base defender to the final one (the same held-out items; differences in percentage points "
                    "with paired 95% bootstrap intervals), ")
    moved = up + down
    if moved:
        text += _join(moved, "and") + "."
        if flat:
            text += " No measurable change (the interval includes 0) in " + _join(flat, "or") + "."
    else:
        text += "nothing changed measurably (every interval includes 0): " + _join(flat, "and") + "."
    if missing:
        text += f" Not measured in this run: {_join(missing, 'and')}."
    return text


def _join(parts: list[str], word: str) -> str:
    return parts[0] if len(parts) == 1 else "; ".join(parts[:-1]) + f"; {word} " + parts[-1]
