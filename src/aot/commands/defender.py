"""`aot defender ...` and `aot pretrain`: thin wrappers over aot.models and aot.pretrain."""

from __future__ import annotations

import json

import typer

app = typer.Typer(no_args_is_help=True)


def pretrain(
    out: str = typer.Option(..., "--out", help="Directory for the trained born defender."),
    single: bool = typer.Option(False, "--single", help="Run one phase with the options below instead of the shipped multi-phase recipe."),
    model: str = typer.Option("tiny-aot-vlm", "--model", help="Built-in tiny model to train (--single)."),
    steps: int = typer.Option(None, "--steps", help="Question-stage steps (--single)."),
    stop_after: int = typer.Option(None, "--stop-after", help="Stop after this many question steps, keeping the schedule of --steps (--single)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Questions per step (--single)."),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (--single)."),
    warmup: int = typer.Option(None, "--warmup", help="Warm-up steps (--single)."),
    vision_steps: int = typer.Option(None, "--vision-steps", help="Stage-1 steps: vision tower and merger on dense labels (--single)."),
    caption_frac: float = typer.Option(None, "--caption-frac", help="Share of each batch that is the describe-the-scene task (--single)."),
    letter_weight: float = typer.Option(None, "--letter-weight", help="Loss weight of the boxed letter (--single)."),
    copy_batch: int = typer.Option(None, "--copy-batch", help="Text-only letter-copy examples per step (--single)."),
    init_from: str = typer.Option("", "--init-from", help="Start from a saved defender directory (--single)."),
    seed: int = typer.Option(0, "--seed", help="Seed of init and scene stream."),
    eval_every: int = typer.Option(None, "--eval-every", help="Steps between held-out evaluations (0: end only)."),
    time_budget_min: float = typer.Option(0.0, "--time-budget-min", help="Stop a phase and save after this many minutes (0: no limit)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide the progress bar."),
) -> None:
    """Train the born defender on simple scenes (reproduces the shipped weights)."""
    from ..pretrain import PretrainConfig, pretrain_recipe
    from ..pretrain import pretrain as run

    common = {k: v for k, v in dict(eval_every=eval_every).items() if v is not None}
    if time_budget_min:
        common["time_budget_min"] = time_budget_min
    if not single:
        results = pretrain_recipe(out, seed=seed, progress=not no_progress, **common)
        res = results[-1]
        minutes = sum(r["minutes"] for r in results)
    else:
        given = dict(steps=steps, stop_after=stop_after, batch_size=batch_size, lr=lr, warmup=warmup, vision_steps=vision_steps,
                     caption_frac=caption_frac, letter_weight=letter_weight, copy_batch=copy_batch)
        kw = {k: v for k, v in given.items() if v is not None} | common
        res = run(PretrainConfig(out=out, model=model, seed=seed, init_from=init_from, progress=not no_progress, **kw))
        minutes = res["minutes"]
    last = res["curve"][-1] if res["curve"] else {}
    typer.echo(json.dumps({"out": out, "steps": res["steps_done"], "minutes": round(minutes, 2), "final": last}))


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("base", "--model", help="'base' (the shipped born defender), a tiny registry name, a local path or a Hugging Face id."),
    regime: str = typer.Option("simple", "--regime", help="Scene regime: simple or complex."),
    n: int = typer.Option(1000, "--n", min=1, help="Held-out questions (one per scene)."),
    seed: int = typer.Option(0, "--seed", help="Evaluation seed 0..98 (scenes from the held-out seed range)."),
    batch_size: int = typer.Option(128, "--batch-size", min=1, help="Prompts per generate call."),
    strict_k: int = typer.Option(3, "--strict-k", min=0, help="Sampled trials for strict accuracy (0: skip)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Accuracy (greedy), strict-3 accuracy, format rate and questions/s on held-out questions."""
    import torch

    from ..models.evaluation import EVAL_SEED_STRIDE, EVAL_SEEDS, evaluate_defender
    from . import load_defender_arg
    from ..backends import backend_class

    regimes = backend_class("world").regimes  # the born defender is evaluated on world scenes
    if regime not in regimes:
        raise typer.BadParameter(f"unknown regime {regime!r}; choose from {sorted(regimes)}", param_hint="--regime")
    n_seeds = (EVAL_SEEDS[1] - EVAL_SEEDS[0]) // EVAL_SEED_STRIDE  # 99; the option's help restates it
    if not 0 <= seed < n_seeds:
        raise typer.BadParameter(f"{seed} is outside the evaluation seeds 0..{n_seeds - 1}", param_hint="--seed")
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    d = load_defender_arg(model)
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
