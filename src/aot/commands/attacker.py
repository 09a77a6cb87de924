"""`aot attacker train|eval`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import BACKEND_HELP, DATA_HELP

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


def _load_attacker(spec: str, seed: int, constrained: bool = True, temperature: float = 0.0, backend=None):
    from ..attack import ATTACKERS, make_attacker
    from ..attack.model import ModelAttacker

    if spec in ATTACKERS:
        try:
            return make_attacker(spec, backend, seed=seed)
        except TypeError:
            return make_attacker(spec, backend)
    p = Path(spec)
    if not p.is_dir():
        raise typer.BadParameter(f"{spec!r} is neither a registered attacker ({', '.join(sorted(ATTACKERS))}) nor a directory", param_hint="--attacker")
    if not any(p.iterdir()):
        raise typer.BadParameter(f"{spec} is an empty folder, not a saved attacker", param_hint="--attacker")
    try:
        return ModelAttacker.load(p, constrained=constrained, do_sample=temperature > 0, temperature=temperature or 1.0, backend=backend)
    except (OSError, ValueError) as e:
        raise typer.BadParameter(f"cannot load an attacker from {spec}: " + " ".join(str(e).split()), param_hint="--attacker") from None


KINDS = ("program", "diffusion")


def _diffusion_attacker(spec: str, editor: str | None, judge: str | None, proposer: str | None, hint: str = "--attacker"):
    """An untrained diffusion attacker from the options, or a saved one (options override its settings)."""
    from ..attack.diffusion import DiffusionAttacker, DiffusionAttackerConfig, is_saved

    given = {k: v for k, v in dict(editor=editor, judge=judge, proposer=proposer).items() if v is not None}
    if spec == "untrained":
        cfg = DiffusionAttackerConfig(**given)
        cfg.check()
        return DiffusionAttacker(cfg)
    if not is_saved(spec):
        raise typer.BadParameter(f"{spec!r} is neither untrained nor the folder of a trained diffusion attacker (OUT/attacker of `aot attacker train --kind diffusion`)", param_hint=hint)
    return DiffusionAttacker.load(spec, **given)


def _eval_diffusion(spec, editor, judge, proposer, baselines, defender, n, seed, as_json, backend, data) -> None:
    from ..attack import ATTACKERS
    from ..attack.data import eval_attack_items
    from ..attack.diffusion_train import evaluate_diffusion
    from ..attack.train import evaluate_attacker
    from . import load_defender_arg

    if backend not in (None, "world") or data is not None:
        raise typer.BadParameter("the diffusion attacker works on the world backend only (its judge reads world objects)", param_hint="--backend" if data is None else "--data")
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    for b in names:
        if b not in ATTACKERS:
            raise typer.BadParameter(f"unknown attacker {b!r}; choose from {', '.join(sorted(ATTACKERS))}", param_hint="--baselines")
    try:
        att = _diffusion_attacker(spec, editor, judge, proposer)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--attacker" if spec != "untrained" else "--judge") from None
    d = load_defender_arg(defender, "--defender")
    items = eval_attack_items(n, seed)
    res, _ = evaluate_diffusion(att, d, items)
    res |= {"defender": defender, "attacker": spec, "editor": att.cfg.editor, "judge": att.cfg.judge, "proposer": att.cfg.proposer}
    base = {b: evaluate_attacker(_load_attacker(b, seed), d, items) for b in names}
    if as_json:
        print(json.dumps({"diffusion": res, "baselines": base, "n": n, "seed": seed}, indent=2, sort_keys=True))
        return
    print(f"{n} held-out items (seed {seed}), defender {defender}, greedy")
    print(f"{'attacker':28s} {'success':>8s} {'integrity':>9s} {'proposal':>8s} {'clean':>6s}")
    rows = [(f"diffusion ({att.cfg.proposer} proposer)", res)] + [(b, r) for b, r in base.items()]
    for name, r in rows:
        print(f"{name:28s} {r['success_rate']:8.3f} {r['integrity_pass_rate']:9.3f} {r['parse_rate']:8.3f} {r['clean_correct_rate']:6.3f}")
    print("diffusion fill ops      " + ", ".join(f"{k} {v:.2f}" for k, v in res["op_mix"].items()))
    print("diffusion rejections    " + ", ".join(f"{k} {v}" for k, v in res["reject_reasons"].items()))


@app.command("eval")
def eval_cmd(
    attacker: Optional[str] = typer.Option(None, "--attacker", help="random (default) | random-all | heuristic | heuristic-relative (registered attackers) | PATH of a trained model attacker. With --kind diffusion: untrained (default: the editor without LoRA) | PATH of a trained diffusion attacker (OUT/attacker)."),
    kind: str = typer.Option("program", "--kind", help="program (an edit-program writer) or diffusion (a program proposer's box and description, painted by a diffusion editor)."),
    editor: Optional[str] = typer.Option(None, "--editor", help="--kind diffusion: the fill editor (base: the shipped born world editor, a saved world editor, tiny or random); default: the attacker's own, else base."),
    judge: Optional[str] = typer.Option(None, "--judge", help="--kind diffusion: the world judge (a saved one or untrained); default: the attacker's own."),
    proposer: Optional[str] = typer.Option(None, "--proposer", help="--kind diffusion: random | fixed | a registered attacker | PATH of a model attacker; default: the attacker's own, else random."),
    baselines: str = typer.Option("random,heuristic", "--baselines", help="--kind diffusion: program attackers scored on the same items, beside it (comma-separated; empty: none)."),
    defender: str = typer.Option("base", "--defender", help="base | PATH | HF-ID of the frozen defender."),
    n: int = typer.Option(500, "--n", min=1, help="Held-out questions (seeds in the evaluation range)."),
    seed: int = typer.Option(0, "--seed", min=0, max=99, help="Evaluation run seed (picks a slice of held-out scenes)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    constrained: bool = typer.Option(True, "--constrained/--unconstrained", help="A model attacker decodes under the edit-language grammar (every proposal parses)."),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="A model attacker samples its programs at this temperature (seeded by the items); 0: greedy, its single most likely program."),
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKEND_HELP),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP),
) -> None:
    """Success rate (proposals that pass integrity and flip a clean-correct greedy answer),
    integrity pass rate, parse rate and operation mix, against a frozen defender."""
    from ..attack.data import eval_attack_items
    from ..attack.train import evaluate_attacker
    from ..backends import build_backend
    from . import backend_config, load_defender_arg

    if kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}; choose program or diffusion", param_hint="--kind")
    if kind == "diffusion":
        return _eval_diffusion(attacker or "untrained", editor, judge, proposer, baselines, defender, n, seed, as_json, backend, data)
    for name, value in (("--editor", editor), ("--judge", judge), ("--proposer", proposer)):
        if value is not None:
            raise typer.BadParameter("only with --kind diffusion", param_hint=name)
    attacker = attacker or "random"
    b = build_backend(backend_config(backend, data))
    att = _load_attacker(attacker, seed, constrained, temperature, b)  # both checked before the items are made
    d = load_defender_arg(defender, "--defender")
    items = eval_attack_items(n, seed, backend=b)
    res = evaluate_attacker(att, d, items, backend=b)
    res["defender"] = defender
    res["attacker"] = attacker
    res["temperature"] = temperature
    if as_json:
        print(json.dumps(res, indent=2, sort_keys=True))
        return
    for k in ("attacker", "n", "success_rate", "integrity_pass_rate", "parse_rate", "clean_correct_rate", "seconds"):
        v = res[k]
        print(f"{k:22s} {v:.3f}" if isinstance(v, float) else f"{k:22s} {v}")
    print("op_mix                 " + ", ".join(f"{k} {v:.2f}" for k, v in res["op_mix"].items()))
    for part in ("by_op", "by_kind"):
        print(f"{part}: n, integrity pass, success, flips among passing clean-correct")
        for k, v in res[part].items():
            print(f"  {k:20s} {v['n']:6d} {v['integrity_pass_rate']:7.3f} {v['success_rate']:7.3f} {v['flip_rate_passing']:7.3f}")


@app.command("train")
def train_cmd(
    out: Path = typer.Option(..., "--out", help="Output directory (the trained attacker goes to OUT/attacker)."),
    defender: str = typer.Option("base", "--defender", help="Frozen defender: base | PATH | HF-ID."),
    init: str = typer.Option("cold-start", "--init", help="cold-start (SFT on AOT-SFT effective edits first) or PATH of a saved attacker."),
    sft_data: Path = typer.Option(None, "--sft-data", help="AOT-SFT dataset for the cold start; built into OUT/sft with the heuristic proposer when absent."),
    sft_n: int = typer.Option(1000, "--sft-n", help="Records to build when --sft-data is absent."),
    config: Path = typer.Option(None, "--config", help="YAML with attacker settings (sections sft, rl)."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set attacker_rl.rl.max_steps=40 or --set attacker_rl.constrained=false; with --kind diffusion --set diffusion.flow_grpo.learning_rate=1e-4 (repeatable)."),
    items: int = typer.Option(256, "--items", min=0, help="Training questions for attacker RL (0: cold start only, no RL)."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKEND_HELP + " Same as --set backend.name=NAME."),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP + " Same as --set backend.data=FILE."),
    kind: str = typer.Option("program", "--kind", help="program (cold start + GRPO of an edit-program writer) or diffusion (Flow-GRPO on a diffusion editor's LoRA; --set keys then read DiffusionTrainConfig, e.g. diffusion.flow_grpo.group_size=4)."),
    editor: Optional[str] = typer.Option(None, "--editor", help="--kind diffusion: base (the shipped born world editor, the default), a saved world editor (aot pretrain-editor), tiny or random. Same as --set diffusion.editor=..."),
    judge: Optional[str] = typer.Option(None, "--judge", help="--kind diffusion: a saved world judge (aot pretrain-judge) or untrained. Same as --set diffusion.judge=..."),
    proposer: Optional[str] = typer.Option(None, "--proposer", help="--kind diffusion: random | fixed | a registered attacker | PATH of a model attacker. Same as --set diffusion.proposer=..."),
    steps: Optional[int] = typer.Option(None, "--steps", min=0, help="--kind diffusion: Flow-GRPO steps. Same as --set diffusion.steps=N."),
    no_resume: bool = typer.Option(False, "--no-resume", help="--kind diffusion: start afresh even if OUT holds a checkpoint."),
    no_progress: bool = typer.Option(False, "--no-progress", help="--kind diffusion: hide the progress bar."),
    threads: int = typer.Option(2, "--threads", min=1, help="--kind diffusion: torch CPU threads."),
) -> None:
    """Cold start (SFT on effective AOT-SFT edits) then GRPO against the frozen defender; or,
    with --kind diffusion, Flow-GRPO of the diffusion attacker (checkpointed, resumable)."""
    from ..attack.train import train_attacker_run
    from . import backend_sets, check_out_dir

    check_out_dir(out)
    if kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}; choose program or diffusion", param_hint="--kind")
    diffusion_only = dict(editor=("--editor", editor), judge=("--judge", judge), proposer=("--proposer", proposer), steps=("--steps", steps))
    if kind == "program":
        for hint, value in diffusion_only.values():
            if value is not None:
                raise typer.BadParameter("only with --kind diffusion", param_hint=hint)
    else:
        from ..attack.diffusion_train import train_diffusion_run
        from ..config import ConfigError

        for hint, bad in (("--init", init != "cold-start"), ("--sft-data", sft_data is not None), ("--sft-n", sft_n != 1000)):
            if bad:
                raise typer.BadParameter("only with --kind program (the diffusion attacker has no cold start)", param_hint=hint)
        if backend not in (None, "world") or data is not None:
            raise typer.BadParameter("the diffusion attacker works on the world backend only (its judge reads world objects)", param_hint="--backend" if data is None else "--data")
        sets = list(set_) + [f"diffusion.{k}={json.dumps(v)}" for k, (_, v) in diffusion_only.items() if v is not None]
        try:
            metrics = train_diffusion_run(out, defender, config, sets, items, seed, resume=not no_resume, progress=not no_progress, threads=threads, log=console.print)
        except ConfigError as e:
            raise typer.BadParameter(str(e)) from None
        print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=2, sort_keys=True))
        return
    metrics = train_attacker_run(out, defender, init, sft_data, sft_n, config, list(set_) + backend_sets(backend, data), items, seed, log=console.print)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=2, sort_keys=True))
