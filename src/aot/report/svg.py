"""Hand-written SVG charts (no plotting library): line charts with CI bands, stacked bars.

Each function returns a complete ``<svg>`` document with explicit ``width``/``height`` so it
can be embedded as an ``<img>`` data URI and report a natural size.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Sequence

from ..eval.metrics import mean_ci95

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
W, H = 360, 220
ML, MR, MT, MB = 44, 12, 28, 34  # margins: left, right, top, bottom


def _svg(body: list[str], width: int = W, height: int = H) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="11">'
        f'<rect width="{width}" height="{height}" fill="white"/>' + "".join(body) + "</svg>"
    )


def point_stats(v: Any) -> tuple[float, float] | None:
    """A number -> (v, 0); a list of per-seed numbers -> (mean, 95% CI half-width); None/NaN -> None."""
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        vals = [float(x) for x in v if x is not None and math.isfinite(float(x))]
        if not vals:
            return None
        return mean_ci95(vals)
    f = float(v)
    return (f, 0.0) if math.isfinite(f) else None


def _nice_range(lo: float, hi: float, percent: bool) -> tuple[float, float]:
    if percent and lo >= 0 and hi <= 1:
        return 0.0, 1.0
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.08 * (hi - lo)
    return lo - pad, hi + pad


def _fmt(v: float, percent: bool) -> str:
    return f"{100 * v:.0f}%" if percent else f"{v:.3g}"


def line_chart(series: dict[str, Sequence[Any]], x: Sequence[Any], title: str, percent: bool = True) -> str:
    """One line per series over ``x``; a value may be a number, None (gap) or a list of per-seed
    numbers (the mean is drawn with a shaded 95% CI band)."""
    pts = {name: [point_stats(v) for v in vals] for name, vals in series.items()}
    allv = [m + s * c for ps in pts.values() for p in ps if p for m, c in [p] for s in (-1, 1)]
    lo, hi = _nice_range(min(allv, default=0.0), max(allv, default=1.0), percent)
    n = max(len(x), 1)
    pw, ph = W - ML - MR, H - MT - MB

    def sx(i: int) -> float:
        return ML + (pw * i / (n - 1) if n > 1 else pw / 2)

    def sy(v: float) -> float:
        return MT + ph * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    body = [f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    for k in range(5):  # grid and y labels
        v = lo + (hi - lo) * k / 4
        y = sy(v)
        body.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        body.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_fmt(v, percent)}</text>')
    for i, xv in enumerate(x):
        body.append(f'<text x="{sx(i):.1f}" y="{H - MB + 14}" text-anchor="middle" fill="#555">{escape(str(xv))}</text>')
    body.append(f'<text x="{ML + pw / 2}" y="{H - 4}" text-anchor="middle" fill="#555">iteration</text>')
    body.append(f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for si, (name, ps) in enumerate(pts.items()):
        col = PALETTE[si % len(PALETTE)]
        band_up = [(sx(i), sy(p[0] + p[1])) for i, p in enumerate(ps) if p and p[1] > 0]
        band_dn = [(sx(i), sy(p[0] - p[1])) for i, p in enumerate(ps) if p and p[1] > 0]
        if len(band_up) >= 2:
            poly = " ".join(f"{a:.1f},{b:.1f}" for a, b in band_up + band_dn[::-1])
            body.append(f'<polygon points="{poly}" fill="{col}" fill-opacity="0.15" stroke="none"/>')
        seg: list[str] = []
        for i, p in enumerate(ps):
            if p is None:
                if len(seg) > 1:
                    body.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{col}" stroke-width="2"/>')
                seg = []
                continue
            seg.append(f"{sx(i):.1f},{sy(p[0]):.1f}")
            body.append(f'<circle cx="{sx(i):.1f}" cy="{sy(p[0]):.1f}" r="3" fill="{col}"><title>{escape(name)} @ {escape(str(x[i]) if i < len(x) else str(i))}: {_fmt(p[0], percent)}</title></circle>')
            if p[1] > 0:
                body.append(f'<line x1="{sx(i):.1f}" x2="{sx(i):.1f}" y1="{sy(p[0] - p[1]):.1f}" y2="{sy(p[0] + p[1]):.1f}" stroke="{col}"/>')
        if len(seg) > 1:
            body.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{col}" stroke-width="2"/>')
    if len(pts) > 1 or (len(pts) == 1 and next(iter(pts)) != title):
        for si, name in enumerate(pts):  # legend
            y = MT + 12 + 13 * si
            col = PALETTE[si % len(PALETTE)]
            body.append(f'<rect x="{ML + 6}" y="{y - 8}" width="10" height="3" fill="{col}"/>')
            body.append(f'<text x="{ML + 20}" y="{y - 4}" fill="#333">{escape(name)}</text>')
    return _svg(body)


def stacked_bars(mix: Sequence[dict[str, float]], x: Sequence[Any], title: str) -> str:
    """One bar per ``x`` entry, stacked by key, each bar normalised to 100%."""
    keys: list[str] = []
    for m in mix:
        keys += [k for k in m if k not in keys]
    pw, ph = W - ML - MR - 80, H - MT - MB
    n = max(len(mix), 1)
    bw = pw / n * 0.7
    body = [f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    for k in range(5):
        y = MT + ph * (1 - k / 4)
        body.append(f'<line x1="{ML}" x2="{ML + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        body.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{25 * k}%</text>')
    for i, m in enumerate(mix):
        total = sum(max(float(v), 0.0) for v in m.values())
        cx = ML + pw * (i + 0.5) / n
        y = MT + ph
        for ki, key in enumerate(keys):
            share = max(float(m.get(key, 0.0)), 0.0) / total if total else 0.0
            h = ph * share
            if h > 0:
                y -= h
                body.append(
                    f'<rect x="{cx - bw / 2:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{h:.1f}" fill="{PALETTE[ki % len(PALETTE)]}">'
                    f'<title>{escape(key)}: {100 * share:.1f}%</title></rect>'
                )
        label = x[i] if i < len(x) else i
        body.append(f'<text x="{cx:.1f}" y="{H - MB + 14}" text-anchor="middle" fill="#555">{escape(str(label))}</text>')
    body.append(f'<text x="{ML + pw / 2}" y="{H - 4}" text-anchor="middle" fill="#555">iteration</text>')
    for ki, key in enumerate(keys):
        y = MT + 10 + 13 * ki
        body.append(f'<rect x="{ML + pw + 10}" y="{y - 8}" width="9" height="9" fill="{PALETTE[ki % len(PALETTE)]}"/>')
        body.append(f'<text x="{ML + pw + 23}" y="{y}" fill="#333">{escape(key)}</text>')
    return _svg(body)


def grouped_bars(series: dict[str, Sequence[Any]], x: Sequence[Any], title: str) -> str:
    """Shares in [0, 1] as bars side by side, one group per ``x`` entry and one bar per series
    (a value may be a number, None for no bar, or per-seed numbers: mean with a 95% CI whisker).
    Each bar is labelled with its value, so a 0% bar is still seen to be there."""
    pts = {name: [point_stats(v) for v in vals] for name, vals in series.items()}
    pw, ph = W - ML - MR, H - MT - MB
    n, k = max(len(x), 1), max(len(pts), 1)
    gw = pw / n
    bw = gw * 0.8 / k

    def sy(v: float) -> float:
        return MT + ph * (1 - min(max(v, 0.0), 1.0))

    body = [f'<text x="{W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    for j in range(5):
        y = sy(j / 4)
        body.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        body.append(f'<text x="{ML - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{25 * j}%</text>')
    for i, xv in enumerate(x):
        body.append(f'<text x="{ML + gw * (i + 0.5):.1f}" y="{H - MB + 14}" text-anchor="middle" fill="#555">{escape(str(xv))}</text>')
    body.append(f'<text x="{ML + pw / 2}" y="{H - 4}" text-anchor="middle" fill="#555">iteration</text>')
    for si, (name, ps) in enumerate(pts.items()):
        col = PALETTE[si % len(PALETTE)]
        for i, p in enumerate(ps[: len(x)]):
            if p is None:
                continue
            bx = ML + gw * i + gw * 0.1 + bw * si
            m, ci = p
            body.append(f'<rect x="{bx:.1f}" y="{sy(m):.1f}" width="{bw:.1f}" height="{sy(0) - sy(m):.1f}" fill="{col}">'
                        f'<title>{escape(name)} @ {escape(str(x[i]))}: {_fmt(m, True)}</title></rect>')
            if ci > 0:
                body.append(f'<line x1="{bx + bw / 2:.1f}" x2="{bx + bw / 2:.1f}" y1="{sy(m - ci):.1f}" y2="{sy(m + ci):.1f}" stroke="#333"/>')
            body.append(f'<text x="{bx + bw / 2:.1f}" y="{sy(m) - 3:.1f}" text-anchor="middle" font-size="9" fill="#333">{_fmt(m, True)}</text>')
    for si, name in enumerate(pts):  # legend, top left inside the plot
        y = MT + 12 + 13 * si
        body.append(f'<rect x="{ML + 6}" y="{y - 8}" width="9" height="9" fill="{PALETTE[si % len(PALETTE)]}"/>')
        body.append(f'<text x="{ML + 19}" y="{y}" fill="#333">{escape(name)}</text>')
    body.append(f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    return _svg(body)
