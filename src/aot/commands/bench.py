"""`aot bench eval|sampled|grpo|flow-grpo`: figures for the README (medians, ratios), not timed tests."""

from __future__ import annotations

import json

import typer

app = typer.Typer(no_args_is_help=True)


def _print(res: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(res, indent=2))
        return
    for k, v in res.items():
        print(f"{k:26s} {v:.3f}" if isinstance(v, float) else f"{k:26s} {v}")


@app.command("eval")
def bench_eval(
    model: str = typer.Option("base", "--model", help="base | PATH | HF-ID | tiny name."),
    n: int = typer.Option(256, "--n", min=8, help="Questions per timed run."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Prompts per generate call."),
    regime: str = typer.Option("simple", "--regime", help="simple or complex."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Greedy evaluation throughput, batched vs one at a time."""
    from ..bench import eval_throughput

    _print(eval_throughput(model, n, batch_size, regime=regime), as_json)


@app.command("sampled")
def bench_sampled(
    model: str = typer.Option("base", "--model", help="base | PATH | HF-ID | tiny name."),
    n: int = typer.Option(128, "--n", min=8, help="Questions per timed run (held-out evaluation items)."),
    k: int = typer.Option(3, "--k", min=2, help="Samples per question."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Questions per generate call."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Timed runs per path; the median is reported."),
    regime: str = typer.Option("simple", "--regime", help="simple or complex."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sampled generation (k per question): plain num_return_sequences vs shared prefill, questions/s and ratio."""
    from ..bench import sampled_throughput

    _print(sampled_throughput(model, n, k, batch_size, repeats, regime), as_json)


@app.command("grpo")
def bench_grpo(
    model: str = typer.Option("base", "--model", help="base | PATH | HF-ID | tiny name."),
    steps: int = typer.Option(5, "--steps", min=1, help="GRPO steps to time."),
    prompts: int = typer.Option(8, "--prompts", min=1, help="Prompts per step."),
    generations: int = typer.Option(5, "--generations", min=2, help="Rollouts per prompt (paper: 5)."),
    repeats: int = typer.Option(1, "--repeats", min=1, help="Timed runs per path, interleaved; medians are reported."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Defender GRPO steps/s (paper settings), rollouts from a repeated prompt (as TRL) vs one
    shared prefill per prompt, and the share of a step spent in generation."""
    from ..bench import grpo_speed

    _print(grpo_speed(model, steps, prompts, generations, repeats=repeats), as_json)


@app.command("flow-grpo")
def bench_flow_grpo(
    editor: str = typer.Option("tiny", "--editor", help="tiny | random (the born world editor's size, random weights) | base (the shipped born world editor) | PATH of a saved world editor."),
    size: int = typer.Option(64, "--size", min=16, help="Image side in pixels (a multiple of 16)."),
    requests: int = typer.Option(2, "--requests", min=1, help="Fill requests per step."),
    group_size: int = typer.Option(4, "--group-size", min=2, help="Fills per request (the GRPO group)."),
    sample_steps: int = typer.Option(8, "--sample-steps", min=1, help="Denoising steps per fill (all SDE steps)."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Timed steps after a warm-up; medians are reported."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Flow-GRPO on the diffusion attacker's editor: rollouts/s and a training step's seconds."""
    import torch

    from ..attack.diffusion import EDITOR_ASSET_DIR, EDITOR_SPECS
    from ..bench import flow_grpo_speed
    from ..editors.diffusers_editor import is_world_editor

    if editor == "base":  # the shipped born world editor
        editor = str(EDITOR_ASSET_DIR)
    if editor not in EDITOR_SPECS and not is_world_editor(editor):
        raise typer.BadParameter(f"{editor!r} is neither tiny, random nor a saved world editor", param_hint="--editor")
    if size % 16:
        raise typer.BadParameter(f"{size} is not a multiple of 16", param_hint="--size")
    torch.set_num_threads(threads)
    _print(flow_grpo_speed(editor, size, requests, group_size, sample_steps, repeats), as_json)
