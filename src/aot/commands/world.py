"""`aot world sample|bench`."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import track

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


@app.command("sample")
def sample(
    n: int = typer.Option(16, "--n", min=1, help="Number of scenes."),
    regime: str = typer.Option("complex", "--regime", help="simple or complex."),
    seed: int = typer.Option(0, "--seed", help="Base seed; scene i uses seed*10^7+i."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    questions: int = typer.Option(4, "--questions", min=1, help="Questions per scene."),
    grid: bool = typer.Option(False, "--grid", help="Also write DIR/grid.png, a labelled contact sheet."),
) -> None:
    """Write DIR/images/*.png and DIR/scenes.jsonl (scene graph, questions, answers, targets)."""
    from ..io import atomic_write_bytes, png_bytes
    from ..world import get_regime
    from ..world.contact import contact_sheet
    from ..world.dataset import iter_samples, write_samples

    from . import check_out_dir

    try:
        get_regime(regime)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--regime") from None
    check_out_dir(out)
    samples = list(track(iter_samples(n, regime, seed, questions), total=n, description="sampling", console=console, transient=True))
    write_samples(samples, out)
    if grid:
        k = min(n, 16)
        caps = [f"{s.questions[0].text} -> {s.questions[0].answer_text}" if s.questions else "(no question)" for s in samples[:k]]
        sheet = contact_sheet([s.image for s in samples[:k]], caps, cols=4, scale=2 if regime == "complex" else 3)
        atomic_write_bytes(out / "grid.png", png_bytes(sheet))
    console.print(f"wrote {n} {regime} scenes to {out}")


def _median_rate(fn, items, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for it in items:
            fn(it)
        rates.append(len(items) / (time.perf_counter() - t))
    return statistics.median(rates)


def world_bench(n: int = 500, repeats: int = 5) -> dict:
    """Medians over ``repeats`` runs, single process; caches warmed on other seeds first."""
    import numpy as np

    from ..world import render, sample_scene

    warm = [sample_scene(10_000_000 + i, "complex") for i in range(n)]
    for s in warm:
        render(s)
    scenes = [sample_scene(i, "complex") for i in range(n)]
    res = {
        "resolution": f"{scenes[0].width}x{scenes[0].height}",
        "objects_mean": float(np.mean([len(s.objects) for s in scenes])),
        "render_per_s": _median_rate(render, scenes, repeats),
        "sample_per_s": _median_rate(lambda i: sample_scene(i, "complex"), list(range(20_000_000, 20_000_000 + n)), repeats),
    }
    try:
        from ..backends import get_backend
        from ..edits import random_program
        from ..integrity import IntegrityConfig
        from ..vqa import Item
        from ..world import sample_question
    except ImportError:
        return res
    cfg = IntegrityConfig()
    backend = get_backend("world")  # timed through the seam, as the loop pays for it
    rng = np.random.default_rng(0)
    jobs = []
    for s in scenes:
        q = sample_question(s, rng)
        if q is not None:
            jobs.append((Item(s, render(s), q, s.seed), random_program(s, rng)))

    def one(job):
        item, prog = job
        backend.judge(item, backend.edit(item, prog), cfg)

    res["edit_render_integrity_per_s"] = _median_rate(one, jobs, repeats)
    return res


@app.command("bench")
def bench(
    n: int = typer.Option(500, "--n", min=10, help="Scenes per timed run."),
    repeats: int = typer.Option(5, "--repeats", min=1, help="Timed runs; the median is reported."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Complex-regime throughput on one core: renders/s and edit+render+integrity/s (medians)."""
    res = world_bench(n, repeats)
    if as_json:
        print(json.dumps(res, indent=2))
        return
    for k, v in res.items():
        print(f"{k:32s} {v:.1f}" if isinstance(v, float) else f"{k:32s} {v}")
