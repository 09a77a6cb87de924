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
    from .commands import editor as editor_cmd
    from .commands import eval as eval_cmd
    from .commands import study as study_cmd
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
    app.command("study", help="All baselines at equal compute over several seeds: paired differences with bootstrap CIs.")(study_cmd.study)
    app.command("eval", help="Evaluate a model on the benchmark suite: results.json and table.md.")(eval_cmd.eval_command)
    app.command("report", help="Write a self-contained report.html from results or report data.")(eval_cmd.report_command)
    editor_cmd.register(app)  # pretrain-editor, pretrain-judge


_register()


DEBUG_ENV = "AOT_DEBUG"
"""Set to 1 (or pass ``--debug``) to see the Python traceback of a failing command."""


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help=f"Show the Python traceback when a command fails (also ${DEBUG_ENV}=1; accepted anywhere on the line)."),
) -> None:
    """Adversarial Opponent Training: self-play between an image-editing attacker and a vision-language defender."""
    # ``main`` strips --debug before Typer sees it; the option is declared here for --help.


def _debug_wanted(args: list[str]) -> bool:
    """Remove every ``--debug`` before a ``--`` from ``args``; True if one was there or $AOT_DEBUG is set."""
    end = args.index("--") if "--" in args else len(args)
    found = "--debug" in args[:end]
    args[:end] = [a for a in args[:end] if a != "--debug"]
    return found or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def error_message(e: BaseException) -> str:
    """One line for a failed command: the message of a domain error (every ``aot`` error is a
    ValueError or OSError subclass whose text says what is wrong), the file of an OSError, or
    the type and text of an unexpected exception with a pointer to ``--debug``."""
    if isinstance(e, OSError) and e.strerror and e.filename:
        msg = f"{e.strerror}: {e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
    else:
        msg = str(e) or type(e).__name__
    if isinstance(e, KeyError) or not isinstance(e, (ValueError, OSError, RuntimeError)):
        msg = f"{type(e).__name__}: {msg} (unexpected; rerun with --debug or {DEBUG_ENV}=1 to see the traceback)"
    return " ".join(line.strip() for line in msg.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (defaults to sys.argv[1:]); returns the exit code.

    Runs in Click's standalone mode, as the ``aot`` script does, so every exit path has one
    code: ``typer.Exit(n)`` gives ``n``, usage errors 2 (bad options and values, shown with the
    usage line), an abort 1, success 0. Any other exception a command raises (a bad file, a
    corrupt dataset, a full disk) is printed as one line ``error: ...`` on stderr and gives 1 (2 for a
    bad config value, ``ConfigError``, like any usage error);
    ``--debug`` anywhere on the line (or ``AOT_DEBUG=1``) lets it propagate with its traceback.
    Exceptions of the separate ``click`` package (Typer vendors its own copy, so it does not
    handle them) give their ``exit_code`` and message."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_wanted(args)
    try:
        app(args=args, prog_name="aot", standalone_mode=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return int(e.code or 0)
        print(e.code, file=sys.stderr)  # sys.exit("message")
        return 1
    except Exception as e:
        code = getattr(e, "exit_code", None)
        if isinstance(code, int) and hasattr(e, "show"):  # e.g. click.ClickException raised by a command
            e.show()
            return code
        if debug:
            raise
        from .config import ConfigError

        print(f"error: {error_message(e)}", file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 1  # a bad config value is a usage error
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
