"""``run_suite``: build the named benchmarks, score them in one batched pass, compute metrics.

The results dict (what ``aot eval`` writes as ``results.json``)::

    {
      "suite": ["vstar", ...],
      "model": "base",                       # set by the caller (CLI / study), optional
      "config": {...},                       # EvalConfig.to_dict()
      "benchmarks": {
        "vstar": {"greedy": {"accuracy": 0.5, "attribute/accuracy": ...},
                  "strict3": {...}, "info": {"n": 16.0}, "about": {...}?,
                  "headline": ["accuracy"], "seconds": 0.1},
        ...
      },
      "metrics": {"vstar/greedy/accuracy": 0.5, ...},    # every number above, flattened
      "headline": ["vstar/greedy/accuracy", "vstar/strict3/accuracy", ...],
      "timing": {"build_s": ..., "score_s": ..., "queries": ...},
      "predictions": [{"bench", "text", "options", "answer", "pred", "correct", "trials", "meta"}, ...]
    }

Metric names are ``bench/mode/metric`` with mode ``greedy`` or ``strictK``; values are shares
in [0, 1] (NaN, written as null, when undefined).
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

from .benchmarks import BENCHMARKS, resolve_suite
from .core import EvalConfig, Item, Outcome, Progress, score_items


def build_items(suite: str | Sequence[str], cfg: EvalConfig) -> dict[str, list[Item]]:
    """The items of each named benchmark (no model needed)."""
    return {name: BENCHMARKS[name].build(cfg, cfg.size(name, BENCHMARKS[name].default_n)) for name in resolve_suite(suite, cfg.backend.name)}


def flatten(benchmarks: dict[str, dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for bench, res in benchmarks.items():
        for mode, block in res.items():
            if not isinstance(block, dict) or mode == "about":
                continue
            for k, v in block.items():
                if isinstance(v, (int, float)):
                    out[f"{bench}/{mode}/{k}"] = float(v)
    return out


def _json_num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_num(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_num(x) for x in v]
    return v


def run_suite(defender, suite: str | Sequence[str], cfg: EvalConfig | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Evaluate ``defender`` (an ``aot.models.Defender`` or anything with its ``generate``) on the
    named benchmarks; returns the results dict described in this module's docstring."""
    cfg = cfg or EvalConfig()
    names = resolve_suite(suite, cfg.backend.name)
    t0 = time.perf_counter()
    per: dict[str, list[Item]] = {}
    build_s: dict[str, float] = {}
    for name in names:
        t = time.perf_counter()
        per[name] = BENCHMARKS[name].build(cfg, cfg.size(name, BENCHMARKS[name].default_n))
        build_s[name] = time.perf_counter() - t
    flat_items = [it for name in names for it in per[name]]
    t1 = time.perf_counter()
    outcomes = score_items(defender, flat_items, cfg, progress)
    t2 = time.perf_counter()
    benches: dict[str, dict[str, Any]] = {}
    preds: list[dict[str, Any]] = []
    pos = 0
    for name in names:
        items = per[name]
        outs: list[Outcome] = outcomes[pos : pos + len(items)]
        pos += len(items)
        res = BENCHMARKS[name].metrics(items, outs, cfg)
        res["headline"] = list(BENCHMARKS[name].headline)
        res["build_s"] = round(build_s[name], 4)
        benches[name] = res
        if cfg.keep_predictions:
            for it, o in zip(items, outs):
                preds.append({
                    "bench": name, "text": it.question.text, "options": list(it.question.options), "answer": it.question.answer,
                    "pred": o.pred, "correct": o.correct, "trials": o.trials, "trial_preds": o.trial_preds,
                    "completion": o.completion, "meta": it.meta,
                })
    modes = ["greedy"] + ([cfg.strict_mode] if cfg.strict_trials else [])
    headline = [f"{b}/{m}/{h}" for b in names for h in BENCHMARKS[b].headline for m in modes]
    queries = len(flat_items) + sum(len(o.trials) for o in outcomes)
    results: dict[str, Any] = {
        "suite": names,
        "config": cfg.to_dict(),
        "benchmarks": benches,
        "metrics": flatten(benches),
        "headline": headline,
        "timing": {"build_s": round(t1 - t0, 3), "score_s": round(t2 - t1, 3), "items": len(flat_items), "queries": queries},
    }
    if cfg.keep_predictions:
        results["predictions"] = preds
    return _json_num(results)


# --- writing ------------------------------------------------------------------------------
def fmt_pct(v: float | None, ci: float | None = None) -> str:
    """0.4567 -> '45.7'; with a CI half-width: '45.7 ± 3.2'; None/NaN -> '–'."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    s = f"{100 * v:.1f}"
    if ci is not None and math.isfinite(ci) and ci > 0:
        s += f" ± {100 * ci:.1f}"
    return s


def results_table_md(results: dict[str, Any]) -> str:
    """A Markdown table of one run: benchmark, metric, greedy, strict-k (percent)."""
    cfg = results.get("config", {})
    k = cfg.get("strict_trials", 3)
    strict = f"strict{k}"
    lines = [f"# Evaluation: {results.get('model', '?')}", ""]
    lines.append(f"suite: {', '.join(results['suite'])}; seed {cfg.get('seed')}; values in %; strict-{k}: all {k} sampled trials (T={cfg.get('temperature')}) correct")
    lines.append("")
    lines.append(f"| benchmark | metric | greedy | strict-{k} |" if k else "| benchmark | metric | greedy |")
    lines.append("|---|---|---:|---:|" if k else "|---|---|---:|")
    for bench in results["suite"]:
        res = results["benchmarks"][bench]
        g = res.get("greedy", {})
        for key in g:
            row = f"| {bench} | {key} | {fmt_pct(g.get(key))} |"
            if k:
                row += f" {fmt_pct(res.get(strict, {}).get(key))} |"
            lines.append(row)
    lines.append("")
    lines.append("| benchmark | info |")
    lines.append("|---|---|")
    for bench in results["suite"]:
        res = results["benchmarks"][bench]
        info = ", ".join(f"{k2}={v:.3g}" if isinstance(v, (int, float)) else f"{k2}={v}" for k2, v in res.get("info", {}).items() if v is not None)
        about = ", ".join(f"{k2}={v}" for k2, v in res.get("about", {}).items())
        lines.append(f"| {bench} | {'; '.join(x for x in (info, about) if x)} |")
    t = results.get("timing", {})
    if t:
        lines += ["", f"{t.get('items')} items, {t.get('queries')} model queries; build {t.get('build_s')} s, scoring {t.get('score_s')} s."]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], out_dir) -> dict[str, str]:
    """``results.json``, ``table.md`` and (when present) ``predictions.jsonl``, atomically."""
    from pathlib import Path

    from ..io import atomic_write_json, atomic_write_jsonl, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = dict(results)
    preds = res.pop("predictions", None)
    paths = {"results": str(out / "results.json"), "table": str(out / "table.md")}
    atomic_write_json(out / "results.json", res)
    atomic_write_text(out / "table.md", results_table_md(res))
    if preds is not None:
        atomic_write_jsonl(out / "predictions.jsonl", preds)
        paths["predictions"] = str(out / "predictions.jsonl")
    return paths
