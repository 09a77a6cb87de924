"""`aot train` (the self-play loop from a config) and `aot demo` (the whole pipeline)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import BACKEND_HELP, DATA_HELP

console = Console(stderr=True)


def resolve_config(spec: str | None) -> Path | None:
    """A YAML path, or the name of a shipped preset (demo, micro, photos)."""
    if spec is None:
        return None
    p = Path(spec)
    if p.exists():
        if p.is_dir():
            raise typer.BadParameter(f"{spec!r} is a directory; give a YAML file or a preset (demo, micro, photos)", param_hint="--config")
        return p
    preset = resources.files("aot") / "configs" / f"{spec}.yaml"
    if preset.is_file():
        return Path(str(preset))
    presets = sorted(p.name[:-5] for p in (resources.files("aot") / "configs").iterdir() if p.name.endswith(".yaml"))
    raise typer.BadParameter(f"{spec!r} is neither a file nor a preset ({', '.join(presets)})", param_hint="--config")


def train(
    out: Path = typer.Option(..., "--out", help="Run directory: config.yaml, metrics.jsonl, metrics.json, checkpoints/."),
    config: str = typer.Option(None, "--config", help="YAML file or preset name (demo, micro, photos: the loop on photos with tiny models; --data FILE or the shipped sample)."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set iterations=2 --set defender_rl.max_steps=10."),
    resume: bool = typer.Option(False, "--resume", help="Continue after the last completed phase."),
    overwrite: bool = typer.Option(False, "--overwrite", help="OUT holds an earlier run: remove all of it and start again."),
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKEND_HELP + " Same as --set backend.name=NAME."),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP + " Same as --set backend.data=FILE."),
) -> None:
    """Run the AOT self-play loop: AOT-SFT, attacker cold start, warm-up, N iterations, evaluation."""
    from ..config import ConfigError, load_config
    from ..selfplay import RunDirError, SelfPlayConfig, run_selfplay

    from . import backend_config, backend_sets, check_backend, check_out_dir

    check_out_dir(out)
    if resume and overwrite:
        raise typer.BadParameter("--resume and --overwrite exclude each other", param_hint="--overwrite")
    path = resolve_config(config)
    sets = list(set_) + backend_sets(backend, data)
    try:
        if backend is None and data is not None:
            # --data alone is for the config's backend (a preset may name one): check that it
            # takes a file before the run config's own checks see the file
            backend_config(None, data, load_config(SelfPlayConfig, path, list(set_)).backend)
        cfg = load_config(SelfPlayConfig, path, sets)
    except ConfigError as e:
        raise typer.BadParameter(str(e)) from None
    check_backend(cfg.backend)
    try:
        summary = run_selfplay(cfg, out, resume=resume, overwrite=overwrite, log=console.print)
    except RunDirError as e:  # refused before anything was written: a usage error
        raise typer.BadParameter(str(e), param_hint="--out") from None
    console.print(f"done: {len(summary['phases'])} phases; metrics in {out / 'metrics.json'}")


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Output directory."),
    set_: list[str] = typer.Option([], "--set", help="Override a demo setting."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted demo."),
    overwrite: bool = typer.Option(False, "--overwrite", help="OUT holds an earlier run: remove all of it and start again."),
) -> None:
    """The whole pipeline on the embedded world, from the shipped born defender (preset 'demo')."""
    train(out=out, config="demo", set_=set_, resume=resume, overwrite=overwrite, backend=None, data=None)
