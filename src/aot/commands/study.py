"""`aot study`: the baselines at equal compute, paired differences over shared items."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def study(
    out: Path = typer.Option(..., "--out", help="Study directory: study.yaml, seedN/<arm>/, eval/, study.json, table.md, report.html."),
    config: str = typer.Option("study", "--config", help="A study YAML or preset (study, study-micro), or a run YAML/preset (demo, micro) the arms derive from."),
    set_: list[str] = typer.Option([], "--set", help="Override a study setting, e.g. --set eval_n=200 --set run.defender_rl.max_steps=40 --set arms=[base,clean,aot]."),
    seeds: int = typer.Option(None, "--seeds", min=1, help="Training seeds 0..N-1 (default: the config's `seeds`)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the study in --out: finished runs, arms and evaluations are kept; --seeds and arms may change, nothing else."),
) -> None:
    """Every baseline at equal defender training compute over several seeds; paired differences
    with bootstrap intervals (table.md leads with them), absolute values after."""
    import yaml

    from ..config import ConfigError, apply_overrides, from_dict, load_config, to_dict
    from ..selfplay import SelfPlayConfig
    from ..study import StudyConfig, StudyDirError, run_study
    from . import check_out_dir
    from .train import resolve_config

    check_out_dir(out)
    path = resolve_config(config)
    overrides = list(set_) + ([f"seeds={seeds}"] if seeds else [])
    try:
        raw = yaml.safe_load(path.read_text()) if path else None
        if isinstance(raw, dict) and "run" not in raw:
            # a run config (demo, micro, a train YAML): the study's defaults around it
            data = to_dict(StudyConfig()) | {"run": to_dict(load_config(SelfPlayConfig, path))}
            cfg = from_dict(StudyConfig, apply_overrides(data, overrides))
        else:
            cfg = load_config(StudyConfig, path, overrides)
    except (ConfigError, ValueError, yaml.YAMLError) as e:
        raise typer.BadParameter(" ".join(str(e).split()), param_hint="--config/--set") from None
    try:
        run_study(cfg, out, resume=resume, log=console.print)
    except StudyDirError as e:
        raise typer.BadParameter(str(e), param_hint="--out") from None
    console.print((out / "table.md").read_text())
