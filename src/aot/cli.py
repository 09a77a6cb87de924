"""The `aot` command line: thin verbs over the library.

Each verb group lives in ``aot.commands.<name>`` as a Typer app; this module only wires them
together. ``main(argv)`` runs the CLI in-process (tests call it directly).
"""

from __future__ import annotations

import os
import sys

import typer

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    name="aot",
    help="Adversarial Opponent Training: self-play between an image-editing attacker and a vision-language defender.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from .commands import attacker as attacker_cmd
    from .commands import bench as bench_cmd
    from .commands import data as data_cmd
    from .commands import defender as defender_cmd
    from .commands import eval as eval_cmd
    from .commands import train as train_cmd
    from .commands import world as world_cmd

    app.add_typer(world_cmd.app, name="world", help="Sample, render and benchmark the procedural scene world.")
    app.add_typer(defender_cmd.app, name="defender", help="Evaluate and train the vision-language defender.")
    app.add_typer(attacker_cmd.app, name="attacker", help="Train and evaluate the edit-proposing attacker.")
    app.command("pretrain", help="Train the born defender on simple scenes (reproduces the shipped weights).")(defender_cmd.pretrain)
    app.add_typer(bench_cmd.app, name="bench", help="Throughput benchmarks (figures for the README).")
    app.add_typer(data_cmd.app, name="data", help="Export, show and verify AOT-SFT datasets.")
    app.command("build-sft", help="Build the AOT-SFT adversarial dataset (sharded parquet, resumable, Ray).")(data_cmd.build_sft)
    app.command("train", help="Run the AOT self-play loop from a config (resumable).")(train_cmd.train)
    app.command("demo", help="The whole AOT pipeline on the embedded world (what `make demo` runs).")(train_cmd.demo)
    app.command("study", help="All baselines at equal compute over several seeds: mean and 95% CI.")(train_cmd.study)
    app.command("eval", help="Evaluate a model on the benchmark suite: results.json and table.md.")(eval_cmd.eval_command)
    app.command("report", help="Write a self-contained report.html from results or report data.")(eval_cmd.report_command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (defaults to sys.argv[1:]); returns the exit code.

    Runs in Click's standalone mode, as the ``aot`` script does, so every exit path has one
    code: ``typer.Exit(n)`` gives ``n``, usage errors 2, other Click exceptions their own
    code (message shown), an abort 1, success 0. (Outside standalone mode Click hands an
    ``Exit``'s code back as the command's return value, which used to be dropped.)
    Exceptions of the separate ``click`` package (Typer vendors its own copy, so it does not
    handle them) give their ``exit_code`` too; any other exception propagates."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="aot", standalone_mode=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return int(e.code or 0)
        print(e.code, file=sys.stderr)  # sys.exit("message")
        return 1
    except Exception as e:  # e.g. click.ClickException raised by a command
        code = getattr(e, "exit_code", None)
        if not isinstance(code, int):
            raise
        if hasattr(e, "show"):
            e.show()
        return code
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
