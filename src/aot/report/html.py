"""``build_report(data, out_path)``: one self-contained HTML file (no external assets).

Charts are hand-written SVG and every picture is an ``<img>`` with a base64 data URI, so the
file opens anywhere, offline, and a browser can tell whether each image decoded.
"""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path
from typing import Any, Sequence

from ..eval.metrics import mean_ci95
from ..vqa import LETTERS
from .data import validate
from .images import changed_boxes, data_uri, diff_map, display_scale, load_image, outline, upscale
from .svg import grouped_bars, line_chart, stacked_bars

CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 12px}
h1{font-size:22px}h3{font-size:14px;margin:14px 0 6px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f5f5f5;vertical-align:bottom}th.row,td.row{text-align:left;font-weight:bold}
th small{font-weight:normal;color:#666}td.best{background:#e8f4e8;font-weight:bold}
.note{color:#555;font-size:13px}.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0}.gallery{display:flex;flex-wrap:wrap;gap:16px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px;font-size:13px;display:flex;flex-wrap:wrap;gap:12px;width:100%;box-sizing:border-box}
.card .text{flex:1;min-width:260px}.card p{margin-top:0}
.card .imgs{display:flex;gap:6px}.card .imgs figure{text-align:center;font-size:11px;color:#555;max-width:192px}
.card img{max-width:192px;image-rendering:pixelated;border:1px solid #ccc}
#summary{font-size:15px;line-height:1.5;background:#f4f8fc;border-left:4px solid #1f77b4;padding:8px 12px}
.ok{color:#1a7f37;font-weight:bold}.bad{color:#c62828;font-weight:bold}
pre{background:#f7f7f7;padding:4px 6px;font-size:11px;white-space:pre-wrap;margin:6px 0}
"""

LOWER_IS_BETTER = ("success",)
"""Columns whose metric name ends with one of these are better when lower (attack success)."""
NO_BEST = ("yes_ratio", "n")
"""Columns with no better direction (no highlight)."""


def svg_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _cell(vals: list[float], percent: bool) -> tuple[str, float | None]:
    if not vals:
        return "–", None
    m, ci = mean_ci95(vals)
    scale = 100.0 if percent else 1.0
    text = f"{scale * m:.1f}" if percent else f"{m:.4g}"
    if len(vals) > 1:
        text += f" ± {scale * ci:.1f}" if percent else f" ± {ci:.2g}"
    return text, m


def _header(col: str, labels: dict[str, str]) -> str:
    if col in labels:
        return escape(labels[col])
    parts = col.split("/")
    if _mode(col):
        return f"{escape(parts[0])}<br><small>{escape('/'.join(parts[2:]))}</small>"
    return "<br>".join(escape(p) for p in parts)


def _mode(col: str) -> str:
    parts = col.split("/")
    return parts[1] if len(parts) >= 3 and (parts[1] == "greedy" or parts[1].startswith("strict")) else ""


def table_html(table: dict[str, Any]) -> str:
    """The comparison table(s): one per decoding mode when the columns carry one
    (``bench/greedy/...``, ``bench/strict3/...``), rows = arms, cells = mean ± 95% CI."""
    rows = table["rows"]
    cols: list[str] = list(table.get("columns") or [])
    if not cols:
        for r in rows:
            for run in r["runs"]:
                cols += [k for k in run if k not in cols]
    labels = table.get("labels", {})
    nseeds = max((len(r["runs"]) for r in rows), default=0)
    percent = {c: all(0.0 <= float(run[c]) <= 1.0 for r in rows for run in r["runs"] if _is_num(run.get(c))) for c in cols}
    groups: dict[str, list[str]] = {}
    for c in cols:
        groups.setdefault(_mode(c), []).append(c)
    out: list[str] = []
    for gi, (mode, gcols) in enumerate(groups.items()):
        cells = [[_cell([float(run[c]) for run in r["runs"] if _is_num(run.get(c))], percent[c]) for c in gcols] for r in rows]
        best: dict[int, float] = {}
        for j, c in enumerate(gcols):
            name = c.rsplit("/", 1)[-1]
            ms = [row[j][1] for row in cells if row[j][1] is not None]
            if len(ms) < 2 or name in NO_BEST:
                continue
            best[j] = min(ms) if name.endswith(LOWER_IS_BETTER) else max(ms)  # type: ignore[type-var]
        if len(groups) > 1 or mode:
            what = "greedy decoding" if mode == "greedy" else f"strict mode: all {mode[6:]} sampled trials correct" if mode else "other"
            out.append(f"<h3>{escape(what)}</h3>")
        tid = ' id="comparison"' if gi == 0 else ""
        out.append(f'<div class="scroll"><table{tid} class="comparison"><thead><tr><th class="row">model / arm</th>')
        out += [f"<th>{_header(c, labels)}</th>" for c in gcols]
        out.append("</tr></thead><tbody>")
        for r, row in zip(rows, cells):
            out.append(f'<tr><td class="row">{escape(str(r["name"]))} <small>({len(r["runs"])})</small></td>')
            for j, (text, m) in enumerate(row):
                cls = ' class="best"' if j in best and m is not None and m == best[j] else ""
                out.append(f"<td{cls}>{text}</td>")
            out.append("</tr>")
        out.append("</tbody></table></div>")
    unit = "values in % (shares)" if any(percent.values()) else "values"
    ci = f"; mean ± 95% t-interval over runs (up to {nseeds} per row; run count in brackets)" if nseeds > 1 else ""
    out.append(f'<p class="note">{unit}{ci}; best per column highlighted (attack success: lowest).</p>')
    return "".join(out)


def _series(v: Any) -> dict[str, list[Any]] | None:
    if isinstance(v, dict):
        return {str(k): list(s) for k, s in v.items()}
    if isinstance(v, list):
        return None
    raise ValueError("series must be a list or a mapping of lists")


def per_iteration_html(p: dict[str, Any]) -> str:
    metrics: dict[str, Any] = p.get("metrics") or {}
    lengths = [len(s) for v in metrics.values() for s in ((_series(v) or {"": v}).values())]
    if "attacker_success" in p:
        lengths += [len(s) for s in (_series(p["attacker_success"]) or {"": p["attacker_success"]}).values()]
    if p.get("op_mix"):
        lengths.append(len(p["op_mix"]))
    x = list(p.get("iterations") or range(max(lengths, default=0)))
    figs: list[str] = []

    def add(svg: str, alt: str) -> None:
        figs.append(f'<figure><img src="{svg_uri(svg)}" alt="{escape(alt)}" width="360" height="220"></figure>')

    for name, v in metrics.items():
        ser = _series(v) or {name: v}
        add(line_chart(ser, x, name), f"chart: {name}")
    if "attacker_success" in p:
        v = p["attacker_success"]
        if isinstance(v, dict) and len(v) > 1:  # the same attacker against several defenders: bars side by side
            add(grouped_bars(_series(v) or {}, x, "attacker success"), "chart: attacker success, side by side")
        else:
            add(line_chart(_series(v) or {"attacker success": v}, x, "attacker success"), "chart: attacker success")
    if p.get("op_mix"):
        add(stacked_bars(p["op_mix"], x, "attacker operation mix"), "chart: operation mix")
    return '<div class="charts">' + "".join(figs) + "</div>" if figs else '<p class="note">no per-iteration data</p>'


def _resolve_entry(e: dict[str, Any], base_dir: str | Path | None) -> tuple[dict[str, Any], Any, Any]:
    """(question fields, clean array, edited array) from an entry in either form."""
    q = e["question"]
    if isinstance(q, dict):
        fields = {"question": q["text"], "options": list(q["options"]), "answer": q["answer"]}
    else:
        fields = {"question": str(q), "options": list(e.get("options") or []), "answer": e.get("answer")}
    if "clean_image" in e and "edited_image" in e:
        return fields, load_image(e["clean_image"], base_dir, "clean_image"), load_image(e["edited_image"], base_dir, "edited_image")
    from ..backends import get_backend
    from ..vqa import Question

    # the entry's replay key (the world: its scene graph) and program make both images again;
    # the question only rides along, so a text-only one will do
    q_obj = Question("", fields["question"], tuple(fields["options"]), str(fields["answer"] or ""), (), {})
    item, edited = get_backend().replay_image(e, q_obj, e["program"])
    return fields, item.image, edited


def _answer(letter: Any, options: Sequence[str], truth: Any) -> str:
    if letter is None:
        return '<span class="bad">unreadable</span>'
    text = str(letter)
    if letter in LETTERS[: len(options)]:
        text += f" ({options[LETTERS.index(letter)]})"
    cls = "ok" if letter == truth else "bad"
    return f'<span class="{cls}">{escape(text)}</span>'


MAX_OUTLINES = 6
"""More changed regions than this, or boxes over half the image, are not outlined (see the
difference image instead)."""


def _card(i: int, e: dict[str, Any], base_dir: str | Path | None) -> str:
    f, clean, edited = _resolve_entry(e, base_dir)
    k = display_scale(clean)  # 96 px scenes are drawn 2x, each pixel a sharp square
    what = "edited"
    if clean.shape == edited.shape:
        heat, peak = diff_map(clean, edited)
        boxes = changed_boxes(clean, edited)
        area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes)
        # a photometric op (blur, noise) changes edges everywhere: outlines would only clutter
        if len(boxes) > MAX_OUTLINES or area > 0.5 * clean.shape[0] * clean.shape[1]:
            shown, what = upscale(edited, k), "edited (changes all over the image)"
        else:
            shown, what = outline(upscale(edited, k), boxes, k), "edited (changed regions outlined)"
    else:
        heat, peak, shown = edited * 0, 0, upscale(edited, k)
    opts = f["options"]
    truth = f["answer"]
    opt_txt = ", ".join(f"{LETTERS[j]}. {o}" for j, o in enumerate(opts))
    truth_txt = f"{truth} ({opts[LETTERS.index(truth)]})" if truth in LETTERS[: len(opts)] else str(truth)
    answers = "".join(f"<div>{escape(str(who))}: {_answer(a, opts, truth)}</div>" for who, a in (e.get("answers") or {}).items())
    prog = f"<pre>{escape(e['program'])}</pre>" if e.get("program") else ""
    cap = f'<div class="note">{escape(e["caption"])}</div>' if e.get("caption") else ""
    return (
        f'<div class="card"><div class="imgs">'
        f'<figure><img src="{data_uri(upscale(clean, k))}" alt="clean {i}"><figcaption>clean</figcaption></figure>'
        f'<figure><img src="{data_uri(shown)}" alt="edited {i}"><figcaption>{what}</figcaption></figure>'
        f'<figure><img src="{data_uri(upscale(heat, k))}" alt="difference {i}"><figcaption>difference, amplified (max {peak}/255)</figcaption></figure>'
        f"</div><div class=\"text\"><p><b>{escape(f['question'])}</b><br>{escape(opt_txt)}<br>truth: {escape(truth_txt)}</p>{prog}{answers}{cap}</div></div>"
    )


GALLERY_GROUPS = (
    ("gallery-fixed", "Edits that fooled the base defender and no longer fool the final one"),
    ("gallery-both", "Edits that fool both the base and the final defender"),
    ("gallery-other", "Other edits that fooled the base defender (no final answer given)"),
)


def _group(e: dict[str, Any]) -> str:
    answers = e.get("answers") or {}
    if "final" not in answers:
        return "gallery-other"
    truth = e["question"]["answer"] if isinstance(e["question"], dict) else e.get("answer")
    return "gallery-fixed" if answers["final"] == truth else "gallery-both"


def gallery_html(gallery: list[dict[str, Any]] | dict[str, Any], base_dir: str | Path | None) -> str:
    """The attack gallery, grouped by the final defender's answer (the first two groups are
    always shown, an empty one says so: that nothing was fixed is a result too)."""
    entries = gallery.get("entries", []) if isinstance(gallery, dict) else gallery
    note = gallery.get("note") if isinstance(gallery, dict) else None
    out = [f'<p class="note">{escape(note)}</p>'] if note else []
    cards: dict[str, list[str]] = {gid: [] for gid, _ in GALLERY_GROUPS}
    for i, e in enumerate(entries):
        cards[_group(e)].append(_card(i, e, base_dir))
    for gid, title in GALLERY_GROUPS:
        if gid == "gallery-other" and not cards[gid]:
            continue
        out.append(f'<h3 id="{gid}">{escape(title)}</h3>')
        if cards[gid]:
            out.append('<div class="gallery">' + "".join(cards[gid]) + "</div>")
        elif entries or note:  # the note says why (the counts, or why the gallery failed)
            out.append('<p class="note empty">none in this run</p>')
        else:
            out.append('<p class="note empty">none: no attack in this run fooled the base defender</p>')
    return "".join(out)


def render_html(data: dict[str, Any], base_dir: str | Path | None = None) -> str:
    """The report as one HTML string (``base_dir`` resolves relative image paths)."""
    validate(data)
    title = str(data.get("title") or "AOT report")
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if data.get("summary"):
        parts.append(f'<p id="summary">{escape(data["summary"])}</p>')
    if data.get("notes"):
        parts.append(f'<p class="note">{escape(str(data["notes"]))}</p>')
    if data.get("table"):
        parts += ['<section id="table"><h2>Comparison</h2>', table_html(data["table"]), "</section>"]
    if data.get("per_iteration"):
        parts += ['<section id="per-iteration"><h2>Per iteration</h2>', per_iteration_html(data["per_iteration"]), "</section>"]
    if "gallery" in data:
        parts += ['<section id="gallery"><h2>Attacks that fooled the base defender</h2>', gallery_html(data["gallery"] or [], base_dir), "</section>"]
    parts.append('<footer class="note">generated by aot.report</footer></body></html>')
    return "\n".join(parts)


def build_report(data: dict[str, Any], out_path: str | Path, base_dir: str | Path | None = None) -> Path:
    """Write the self-contained ``report.html`` for ``data`` (atomically); returns its path."""
    from ..io import atomic_write_text

    out = Path(out_path)
    atomic_write_text(out, render_html(data, base_dir))
    return out
