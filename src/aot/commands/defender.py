"""`aot defender ...` and `aot pretrain`: thin wrappers over aot.models and aot.pretrain."""

from __future__ import annotations

import json

import typer

app = typer.Typer(no_args_is_help=True)


def pretrain(
    out: str = typer.Option(..., "--out", help="Directory for the trained born defender."),
    model: str = typer.Option("tiny-qwen2.5-vl", "--model", help="Built-in tiny model to train."),
    steps: int = typer.Option(None, "--steps", help="Optimiser steps (default: the shipped recipe)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Questions per step."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed of init and scene stream."),
    eval_every: int = typer.Option(None, "--eval-every", help="Steps between held-out evaluations (0: end only)."),
    time_budget_min: float = typer.Option(0.0, "--time-budget-min", help="Stop and save after this many minutes (0: no limit)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bar."),
) -> None:
    """Train the born defender on simple scenes (reproduces the shipped weights)."""
    from ..pretrain import PretrainConfig
    from ..pretrain import pretrain as run

    kw = {k: v for k, v in dict(steps=steps, batch_size=batch_size, lr=lr, eval_every=eval_every).items() if v is not None}
    cfg = PretrainConfig(out=out, model=model, seed=seed, time_budget_min=time_budget_min, progress=not no_progress, **kw)
    res = run(cfg)
    last = res["curve"][-1] if res["curve"] else {}
    typer.echo(json.dumps({"out": out, "steps": res["steps_done"], "minutes": res["minutes"], "final": last}))


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("base", "--model", help="'base' (the shipped born defender), a tiny registry name, a local path or a Hugging Face id."),
    regime: str = typer.Option("simple", "--regime", help="Scene regime: simple or complex."),
    n: int = typer.Option(1000, "--n", help="Held-out questions (one per scene)."),
    seed: int = typer.Option(0, "--seed", help="Evaluation seed (scenes from the held-out seed range)."),
    batch_size: int = typer.Option(128, "--batch-size", help="Prompts per generate call."),
    strict_k: int = typer.Option(3, "--strict-k", help="Sampled trials for strict accuracy (0: skip)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Accuracy (greedy), strict-3 accuracy, format rate and questions/s on held-out questions."""
    import torch

    from ..models import load_defender
    from ..models.evaluation import evaluate_defender
    from ..world import REGIMES

    if regime not in REGIMES:
        raise typer.BadParameter(f"unknown regime {regime!r}; choose from {sorted(REGIMES)}", param_hint="--regime")
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    d = load_defender(model)
    res = evaluate_defender(d, regime=regime, n=n, seed=seed, strict_k=strict_k, batch_size=batch_size)
    res["model"] = model
    if as_json:
        typer.echo(json.dumps(res))
        return
    typer.echo(f"model {model}  regime {regime}  n {res['n']}  seed {seed}")
    typer.echo(f"accuracy (greedy)   {res['accuracy']:.3f}")
    if strict_k:
        typer.echo(f"strict-{strict_k} accuracy   {res[f'strict{strict_k}_accuracy']:.3f}")
    typer.echo(f"format rate         {res['format_rate']:.3f}")
    typer.echo(f"questions/s         {res['questions_per_s']:.1f}")
    for k, v in res["accuracy_by_kind"].items():
        typer.echo(f"  {k:<10} {v:.3f}")
