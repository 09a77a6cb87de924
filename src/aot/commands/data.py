"""`aot build-sft` and `aot data export|show|verify`: thin wrappers over ``aot.data``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import BACKEND_HELP, DATA_HELP

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


def _fail(msg: str) -> None:
    """Exit with status 1 and the message (a ClickException: `main(argv)` returns its code)."""
    raise click.ClickException(msg)


def _sets_key(config: Optional[Path], overrides: list[str], key: str) -> bool:
    """Whether the user set ``key`` in a --set or at the top of the --config file."""
    if any(o.split("=", 1)[0].strip() == key for o in overrides):
        return True
    if config is None or not config.is_file():
        return False  # load_config reports a missing or bad file
    import yaml

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and key in data


def build_sft(
    n: Optional[int] = typer.Option(None, "--n", min=1, help="Records to write (default 1000)."),
    out: Path = typer.Option(..., "--out", help="Dataset directory (shards, sidecars, manifest.json)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Parallel shard builders; >1 runs on Ray (a local Ray unless --address)."),
    address: Optional[str] = typer.Option(None, "--address", help="Address of an existing Ray cluster (e.g. ray://head:10001 or auto)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Torch threads per worker (1 is fastest on small models; content does not depend on it)."),
    resume: bool = typer.Option(False, "--resume", help="Keep complete shards, rebuild missing, truncated or corrupt ones."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Base seed (default 0)."),
    shard_size: Optional[int] = typer.Option(None, "--shard-size", min=1, help="Records per shard (default 500)."),
    attacker: Optional[str] = typer.Option(None, "--attacker", help="Proposer: random or heuristic (default random)."),
    defender: Optional[str] = typer.Option(None, "--defender", help="base (shipped born defender), a tiny model name, a directory, or scripted."),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="Defender answers per edited question: 1 greedy + k-1 sampled (default 3); min_wrong follows it down to k unless set."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with SFTBuildConfig fields."),
    overrides: list[str] = typer.Option([], "--set", help="Override a config field, e.g. --set keep_useless=0.5 --set integrity.ssim_threshold=0.9."),
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKEND_HELP + " Same as --set backend.name=NAME."),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP + " Same as --set backend.data=FILE."),
) -> None:
    """Build the AOT-SFT dataset: extend scenes, propose distractors, check them, ask the defender."""
    from ..config import ConfigError, load_config
    from ..data.build import BuildError, build_sft as build, describe_manifest
    from ..data.sft import SFTBuildConfig
    from . import backend_sets, check_backend, check_out_dir

    check_out_dir(out)
    flags = {"n": n, "seed": seed, "shard_size": shard_size, "attacker": attacker, "defender": defender, "k": k}
    sets = list(overrides) + [f"{key}={val}" for key, val in flags.items() if val is not None] + backend_sets(backend, data)
    if k is not None and not _sets_key(config, overrides, "min_wrong"):
        sets.append(f"min_wrong={min(SFTBuildConfig().min_wrong, k)}")  # --k 1 alone is valid: greedy answer wrong
    try:
        cfg = load_config(SFTBuildConfig, config, sets)
    except (ConfigError, ValueError) as e:
        raise typer.BadParameter(str(e)) from None
    check_backend(cfg.backend)
    with Progress(
        TextColumn("[bold]build-sft"), BarColumn(), MofNCompleteColumn(), TextColumn("records"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    ) as bar:
        task = bar.add_task("records", total=cfg.n)

        def log(msg: str) -> None:
            bar.console.print(msg)

        try:
            manifest = build(cfg, out, workers=workers, address=address, resume=resume, threads=threads, log=log, on_records=lambda d: bar.advance(task, d))
        except (BuildError, FileNotFoundError) as e:
            _fail(str(e))
            return
    console.print(describe_manifest(manifest))
    console.print(f"wrote {out}/manifest.json")


@app.command("export")
def export_cmd(
    src: Path = typer.Argument(..., help="Dataset directory built by `aot build-sft`."),
    fmt: str = typer.Option(..., "--format", help="easyr1, llava or trl."),
    out: Path = typer.Option(..., "--out", help="Output directory (must be new or empty)."),
    categories: str = typer.Option("effective,useless,clean", "--categories", help="Comma-separated record categories to export."),
) -> None:
    """Write the dataset for EasyR1/verl (with reward.py), LLaVA, or TRL."""
    from ..data.export import EXPORT_FORMATS, ExportError, export
    from ..data.store import ShardError
    from . import check_out_dir

    check_out_dir(out)
    if fmt not in EXPORT_FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}", param_hint="--format")
    cats = [c.strip() for c in categories.split(",") if c.strip()]
    try:
        res = export(src, fmt, out, cats)
    except (ExportError, ShardError, FileNotFoundError) as e:
        _fail(str(e))
        return
    console.print(f"exported {res['records']} records as {fmt} to {out} ({', '.join(res['files'])})")


@app.command("show")
def show_cmd(
    src: Path = typer.Argument(..., help="Dataset directory."),
    n: int = typer.Option(16, "--n", min=1, help="Pairs to show (effective ones first)."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
) -> None:
    """Contact sheet of clean | edited pairs with the defender's answers."""
    from ..data.show import contact_pairs
    from ..data.store import ShardError
    from . import check_out_file

    check_out_file(out)
    try:
        contact_pairs(src, n, out)
    except (ShardError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
        return
    console.print(f"wrote {out}")


@app.command("verify")
def verify_cmd(src: Path = typer.Argument(..., help="Dataset directory.")) -> None:
    """Check every shard against its sidecar and the manifest; print the manifest summary."""
    from ..data.build import describe_manifest, verify
    from ..data.store import ShardError, load_manifest

    try:
        problems = verify(src)
        m = load_manifest(src)
    except (FileNotFoundError, ShardError) as e:
        _fail(str(e))
        return
    console.print(describe_manifest(m))
    if problems:
        for p in problems:
            console.print(f"[red]{p}[/red]")
        _fail(f"{len(problems)} problem(s); `aot build-sft --resume --out {src}` (same settings) rebuilds them")
    console.print(f"{len(m['shards'])} shard(s) intact")
