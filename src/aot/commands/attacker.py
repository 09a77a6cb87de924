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


@app.command("eval")
def eval_cmd(
    attacker: str = typer.Option("random", "--attacker", help="random | random-all | heuristic | heuristic-relative (registered attackers) | PATH of a trained model attacker."),
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
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set attacker_rl.rl.max_steps=40 or --set attacker_rl.constrained=false (repeatable)."),
    items: int = typer.Option(256, "--items", min=0, help="Training questions for attacker RL (0: cold start only, no RL)."),
    seed: int = typer.Option(0, "--seed", help="Seed."),
    backend: Optional[str] = typer.Option(None, "--backend", help=BACKEND_HELP + " Same as --set backend.name=NAME."),
    data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP + " Same as --set backend.data=FILE."),
) -> None:
    """Cold start (SFT on effective AOT-SFT edits) then GRPO against the frozen defender."""
    from ..attack.train import train_attacker_run
    from . import backend_sets, check_out_dir

    check_out_dir(out)
    metrics = train_attacker_run(out, defender, init, sft_data, sft_n, config, list(set_) + backend_sets(backend, data), items, seed, log=console.print)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=2, sort_keys=True))
