"""`aot pretrain-editor` and `aot pretrain-judge`: thin wrappers over aot.editors.world_train and aot.judge.train."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _fidelity(out: Path, judge: str, n: int, regime: str, sample_steps: int, seed: int, threads: int) -> dict:
    import torch

    from ..editors.world_editor import load_world_editor
    from ..editors.world_fidelity import measure_fidelity
    from ..editors.world_loop import write_json
    from ..judge.model import load_judge

    torch.set_num_threads(threads)
    editor = load_world_editor(out, steps=sample_steps, seed=seed)
    res = measure_fidelity(editor, load_judge(judge).detect, n=n, regime=regime, seed=seed)
    res |= {"judge": judge, "sample_steps": sample_steps}
    write_json(out / f"fidelity_{regime}.json", res)
    return res


def pretrain_editor(
    out: Path = typer.Option(..., "--out", help="Folder of the checkpoint, world_editor.safetensors, curve.json and config.json."),
    steps: int = typer.Option(None, "--steps", min=1, help="Optimizer steps (default: EditorTrainConfig.steps)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Triples per step (default: EditorTrainConfig.batch_size)."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default: EditorTrainConfig.lr)."),
    time_budget_min: float = typer.Option(0.0, "--time-budget-min", min=0.0, help="Stop and save after this many minutes (0: no limit)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights, the data stream and the noise."),
    fidelity_n: int = typer.Option(0, "--fidelity-n", min=0, help="Held-out fills to measure at the end (needs --judge; 0: skip)."),
    judge: str = typer.Option("", "--judge", help="A saved world judge (folder or .safetensors) for the fidelity measurement."),
    regime: str = typer.Option("complex", "--regime", help="Regime of the held-out fills: simple or complex."),
    sample_steps: int = typer.Option(8, "--sample-steps", min=1, help="Denoising steps per fill in the fidelity measurement."),
    eval_only: bool = typer.Option(False, "--eval-only", help="Do not train: measure the editor saved in --out."),
    no_resume: bool = typer.Option(False, "--no-resume", help="Start afresh even if --out holds a checkpoint."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads (1 is faster when another job shares the cores)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bar."),
) -> None:
    """Train the born world editor on exact world fills (resumable), optionally measure its fidelity."""
    from ..editors.world_train import EditorTrainConfig, pretrain_editor as run

    from . import check_out_dir

    check_out_dir(out)
    if fidelity_n and not judge:
        raise typer.BadParameter("measuring fidelity needs a saved world judge", param_hint="--judge")
    if regime not in ("simple", "complex"):
        raise typer.BadParameter(f"unknown regime {regime!r}; choose simple or complex", param_hint="--regime")
    res: dict = {"out": str(out)}
    if not eval_only:
        given = {k: v for k, v in dict(steps=steps, batch_size=batch_size, lr=lr).items() if v is not None}
        res = run(EditorTrainConfig(out=str(out), seed=seed, time_budget_min=time_budget_min, resume=not no_resume,
                                    threads=threads, progress=not no_progress, **given))
    if fidelity_n:
        res["fidelity"] = _fidelity(out, judge, fidelity_n, regime, sample_steps, seed, threads)
    typer.echo(json.dumps(res))


def pretrain_judge(
    out: Path = typer.Option(..., "--out", help="Folder of the checkpoint, world_judge.safetensors, curve.json and config.json."),
    steps: int = typer.Option(None, "--steps", min=1, help="Optimizer steps (default: JudgeTrainConfig.steps)."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Scenes per step (default: JudgeTrainConfig.batch_size)."),
    time_budget_min: float = typer.Option(0.0, "--time-budget-min", min=0.0, help="Stop and save after this many minutes (0: no limit)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights and the scene stream."),
    eval_n: int = typer.Option(500, "--eval-n", min=0, help="Held-out scenes per regime for precision/recall at the end (0: skip)."),
    eval_only: bool = typer.Option(False, "--eval-only", help="Do not train: measure the judge saved in --out."),
    no_resume: bool = typer.Option(False, "--no-resume", help="Start afresh even if --out holds a checkpoint."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads (1 is faster when another job shares the cores)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bar."),
) -> None:
    """Train the world judge (a dense labeller) on exact renders; precision/recall against the renderer's truth."""
    from ..editors.world_loop import write_json
    from ..judge.model import load_judge
    from ..judge.train import JudgeTrainConfig, evaluate_judge, pretrain_judge as run

    from . import check_out_dir

    check_out_dir(out)
    if eval_only:
        import torch

        torch.set_num_threads(threads)
        res = {"out": str(out), "eval": evaluate_judge(load_judge(out), eval_n or 500, seed=seed)}
        write_json(out / "eval.json", res["eval"])
    else:
        given = {k: v for k, v in dict(steps=steps, batch_size=batch_size).items() if v is not None}
        res = run(JudgeTrainConfig(out=str(out), seed=seed, eval_n=eval_n, time_budget_min=time_budget_min,
                                   resume=not no_resume, threads=threads, progress=not no_progress, **given))
    typer.echo(json.dumps(res))


def register(app: typer.Typer) -> None:
    """Add both verbs to the ``aot`` app."""
    app.command("pretrain-editor", help="Train the born world editor (a small pixel-space FluxFill) on exact world fills.")(pretrain_editor)
    app.command("pretrain-judge", help="Train the world judge that reads pixel edits; precision/recall against the renderer.")(pretrain_judge)
