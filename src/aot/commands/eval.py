"""`aot eval` (the benchmark suite on one model) and `aot report` (the HTML report)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import BACKEND_HELP, DATA_HELP

console = Console(stderr=True)


def _progress_bar():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)


def eval_command(
    model: str = typer.Option("base", "--model", help="base (the shipped born defender), a tiny registry name (random init), a saved defender folder or a Hugging Face id."),
    suite: str = typer.Option("all", "--suite", help="all, or benchmark names separated by commas (vstar, hr, pope, hallusion, clean, robust, heldout, pope-file, vstar-file)."),
    out: Path = typer.Option(..., "--out", help="Output folder: results.json, table.md, predictions.jsonl."),
    n: Optional[int] = typer.Option(None, "--n", min=1, help="Units per benchmark (questions, groups or base questions); default: each benchmark's own size."),
    size: list[str] = typer.Option([], "--size", help="Units for one benchmark, NAME=N (repeatable); overrides --n for it."),
    seed: int = typer.Option(0, "--seed", min=0, max=99, help="Evaluation seed index 0..99 (an independent draw of every benchmark)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Prompts per generate call."),
    max_new_tokens: int = typer.Option(16, "--max-new-tokens", min=1, help="Generation budget per answer."),
    strict_trials: int = typer.Option(3, "--strict-trials", min=0, help="Sampled trials of strict mode (0: greedy only)."),
    attacker: Optional[str] = typer.Option(None, "--attacker", help="Held-out attacker of the heldout (backend-attacked) benchmark: a registered name or a path (default: heuristic on the world, random on another backend)."),
    pope_questions: Optional[str] = typer.Option(None, "--pope-questions", help="POPE question file(s), comma separated (benchmark pope-file)."),
    pope_images: Optional[Path] = typer.Option(None, "--pope-images", help="Image folder of the POPE files (default: their folder)."),
    vstar: Optional[Path] = typer.Option(None, "--vstar", help="V*-style question file (benchmark vstar-file)."),
    vstar_images: Optional[Path] = typer.Option(None, "--vstar-images", help="Image folder of the V*-style file (default: its folder)."),
    report: bool = typer.Option(False, "--report", help="Also write OUT/report.html (the table of this run)."),
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKEND_HELP + " On another backend the suite is backend-clean and backend-attacked."),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
    set_: list[str] = typer.Option([], "--set", help="Override any evaluation setting (aot.eval.EvalConfig) after the flags, e.g. "
                                   "--set temperature=0.7 --set 'backend.options={config: {judge: {ssim: {threshold: 0.9}}}}'."),
) -> None:
    """Run the evaluation suite on one model: greedy and strict-k metrics per benchmark."""
    from ..eval import EvalConfig, resolve_attacker, resolve_suite, run_suite, write_results
    from ..eval.suite import results_table_md
    from ..backends import DEFAULT_BACKEND
    from . import backend_config, check_out_dir, load_defender_arg

    check_out_dir(out)
    bcfg = backend_config(backend, data)
    if attacker is None:
        attacker = "heuristic" if bcfg.name == DEFAULT_BACKEND else "random"
    names = suite
    extra = [x for x, on in (("pope-file", pope_questions), ("vstar-file", vstar)) if on and x not in suite]
    if extra:  # files given: evaluate them too
        names = ",".join([suite] + extra)
    try:
        resolved = resolve_suite(names, bcfg.name)
        sizes: dict[str, int] = {}
        for spec in size:
            name, _, val = spec.partition("=")
            if name.strip() not in resolve_suite(name, bcfg.name) or not val.strip().isdigit():
                raise ValueError(f"--size expects NAME=N with a benchmark name, got {spec!r}")
            sizes[name.strip()] = int(val)
        cfg = EvalConfig(
            n=n, sizes=sizes, seed=seed, batch_size=batch_size, max_new_tokens=max_new_tokens, strict_trials=strict_trials, attacker=attacker,
            pope_questions=pope_questions, pope_images=str(pope_images) if pope_images else None,
            vstar_file=str(vstar) if vstar else None, vstar_images=str(vstar_images) if vstar_images else None, backend=bcfg,
        )
        if set_:
            from ..config import apply_overrides, from_dict, to_dict

            cfg = from_dict(EvalConfig, apply_overrides(to_dict(cfg), list(set_)))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    from ..eval.adapters import AdapterError, read_records

    files = [("pope-file", "--pope-questions", f) for f in (pope_questions or "").split(",") if f.strip()] + ([("vstar-file", "--vstar", str(vstar))] if vstar else [])
    for bench, hint, f in files:  # unreadable, malformed or empty question files fail before the model loads
        if bench in resolved:
            try:
                read_records(f.strip())
            except AdapterError as e:
                raise typer.BadParameter(str(e), param_hint=hint) from None
    if "heldout" in resolved or "backend-attacked" in resolved:  # fail early, before loading the model
        try:
            from ..backends import build_backend

            cfg.attacker = resolve_attacker(attacker, build_backend(bcfg))
        except (ValueError, OSError) as e:
            raise typer.BadParameter(str(e), param_hint="--attacker") from None
    t0 = time.perf_counter()
    defender = load_defender_arg(model)
    load_s = time.perf_counter() - t0
    with _progress_bar() as bar:
        task = bar.add_task(f"eval {model}", total=None)

        def progress(done: int, total: int, phase: str) -> None:
            bar.update(task, completed=done, total=total, description=f"eval {model}: {phase}")

        results = run_suite(defender, resolved, cfg, progress)
    results["model"] = model
    results["timing"]["load_s"] = round(load_s, 3)
    results["timing"]["total_s"] = round(time.perf_counter() - t0, 3)
    paths = write_results(results, out)
    if report:
        from ..report import build_report, table_from_results

        res = {k: v for k, v in results.items() if k != "predictions"}
        build_report({"title": f"Evaluation: {model}", "table": table_from_results({model: [res]})}, out / "report.html")
        paths["report"] = str(out / "report.html")
    console.print(results_table_md({k: v for k, v in results.items() if k != "predictions"}), markup=False, highlight=False)
    console.print(f"wrote {', '.join(paths.values())} in {results['timing']['total_s']:.1f} s")


def report_command(
    src: Path = typer.Option(..., "--from", help="A folder with report.json, or a folder tree of results.json files (one table row per folder; seedN folders are runs of their parent), or a report JSON file."),
    out: Path = typer.Option(..., "--out", help="The HTML file to write."),
    title: Optional[str] = typer.Option(None, "--title", help="Override the title."),
) -> None:
    """Write a self-contained report.html (table, per-iteration plots, attack gallery)."""
    from ..report import ReportDataError, build_report, load_report_dir
    from . import check_out_file

    check_out_file(out)
    try:
        data, base = load_report_dir(src)
        if title:
            data["title"] = title
        build_report(data, out, base)
    except (ReportDataError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e), param_hint="--from") from None
    console.print(f"wrote {out}")
