"""The report's input structure: checks, and builders from evaluation results.

The structure is plain JSON (see ``aot.report`` for the full description)::

    {"title": str?, "summary": str?, "notes": str?,
     "table": {"rows": [{"name": str, "runs": [{metric: number|null}, ...]}], "columns": [..]?, "labels": {..}?},
     "per_iteration": {"iterations": [..]?, "metrics": {metric: series}, "attacker_success": series?,
                       "op_mix": [{op: number}, ...]?},
     "gallery": [{"question": str, "options": [..], "answer": letter, "clean_image": IMAGE,
                  "edited_image": IMAGE, "program": str?, "answers": {defender: letter|null}, "caption": str?}]
                or {"entries": [...as above], "note": str?}}
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence


class ReportDataError(ValueError):
    """The report input does not follow the documented structure; the message names the path."""


def _series_ok(v: Any) -> bool:
    def point(p: Any) -> bool:
        return p is None or isinstance(p, (int, float)) or (isinstance(p, list) and all(x is None or isinstance(x, (int, float)) for x in p))

    if isinstance(v, dict):
        return all(isinstance(s, list) and all(point(p) for p in s) for s in v.values())
    return isinstance(v, list) and all(point(p) for p in v)


def validate(data: dict[str, Any]) -> None:
    """Raise :class:`ReportDataError` naming the first offending path."""
    if not isinstance(data, dict):
        raise ReportDataError(f"report data: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - {"title", "summary", "notes", "table", "per_iteration", "gallery"}
    if unknown:
        raise ReportDataError(f"report data: unknown key(s) {sorted(unknown)}; expected title, summary, notes, table, per_iteration, gallery")
    if data.get("summary") is not None and not isinstance(data["summary"], str):
        raise ReportDataError(f"summary: expected a string, got {type(data['summary']).__name__}")
    t = data.get("table")
    if t is not None:
        if not isinstance(t, dict) or not isinstance(t.get("rows"), list):
            raise ReportDataError("table: expected {'rows': [...], 'columns'?: [...]}")
        for i, r in enumerate(t["rows"]):
            if not isinstance(r, dict) or "name" not in r or not isinstance(r.get("runs"), list):
                raise ReportDataError(f"table.rows[{i}]: expected {{'name': str, 'runs': [{{metric: value}}, ...]}}")
            for j, run in enumerate(r["runs"]):
                if not isinstance(run, dict):
                    raise ReportDataError(f"table.rows[{i}].runs[{j}]: expected a mapping metric -> number")
                bad = [k for k, v in run.items() if v is not None and not isinstance(v, (int, float))]
                if bad:
                    raise ReportDataError(f"table.rows[{i}].runs[{j}]: non-numeric value for {bad[0]!r}")
    p = data.get("per_iteration")
    if p is not None:
        if not isinstance(p, dict):
            raise ReportDataError("per_iteration: expected a mapping")
        for k, v in (p.get("metrics") or {}).items():
            if not _series_ok(v):
                raise ReportDataError(f"per_iteration.metrics[{k!r}]: expected a list of numbers / per-seed lists, or a mapping of such lists")
        if "attacker_success" in p and not _series_ok(p["attacker_success"]):
            raise ReportDataError("per_iteration.attacker_success: expected a list of numbers / per-seed lists")
        mix = p.get("op_mix")
        if mix is not None and not (isinstance(mix, list) and all(isinstance(m, dict) for m in mix)):
            raise ReportDataError("per_iteration.op_mix: expected a list of {op: count} mappings, one per iteration")
    g = data.get("gallery")
    if isinstance(g, dict):
        if not isinstance(g.get("entries"), list) or not isinstance(g.get("note", ""), str) or set(g) - {"entries", "note"}:
            raise ReportDataError("gallery: expected a list of entries or {'entries': [...], 'note'?: str}")
        g = g["entries"]
    if g is not None:
        if not isinstance(g, list):
            raise ReportDataError("gallery: expected a list (or {'entries': [...], 'note'?: str})")
        for i, e in enumerate(g):
            if not isinstance(e, dict):
                raise ReportDataError(f"gallery[{i}]: expected a mapping")
            has_images = "clean_image" in e and "edited_image" in e
            has_scene = "scene" in e and "program" in e
            if not (has_images or has_scene):
                raise ReportDataError(f"gallery[{i}]: needs clean_image and edited_image (or scene and program)")
            if "question" not in e:
                raise ReportDataError(f"gallery[{i}]: missing 'question'")


def table_from_results(runs: dict[str, Sequence[dict[str, Any]]], columns: Sequence[str] | None = None) -> dict[str, Any]:
    """A report table from evaluation results: ``{arm: [results, ...]}`` (one results dict per
    seed, as returned by ``run_suite``). Columns default to the first run's headline metrics."""
    rows = [{"name": arm, "runs": [dict(r.get("metrics", {})) for r in rs]} for arm, rs in runs.items()]
    if columns is None:
        columns = []
        for rs in runs.values():
            for r in rs:
                columns += [c for c in r.get("headline", []) if c not in columns]
    return {"columns": list(columns), "rows": rows}


_SEED_DIR = re.compile(r"^seed[-_]?\d+$")


def load_report_dir(path: str | Path) -> tuple[dict[str, Any], Path]:
    """Report data from a folder: ``report.json`` when present (image paths relative to it);
    otherwise every ``results.json`` below it, one table row per folder (a ``seedN`` folder
    counts as a run of its parent's row). Returns (data, base folder for relative paths)."""
    root = Path(path)
    if root.is_file():
        return json.loads(root.read_text()), root.parent
    rep = root / "report.json"
    if rep.exists():
        return json.loads(rep.read_text()), root
    runs: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(root.rglob("results.json")):
        rel = f.parent.relative_to(root)
        parts = list(rel.parts)
        if parts and _SEED_DIR.match(parts[-1]):
            parts = parts[:-1]
        name = "/".join(parts) or root.name
        res = json.loads(f.read_text())
        runs.setdefault(name, []).append(res)
    if not runs:
        raise ReportDataError(f"{root}: no report.json and no results.json below it")
    first = next(iter(runs.values()))[0]
    title = f"Evaluation: {', '.join(runs)}" if len(runs) > 1 else f"Evaluation: {first.get('model', next(iter(runs)))}"
    return {"title": title, "table": table_from_results(runs)}, root
