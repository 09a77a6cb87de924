"""`aot.cli.main(argv)` returns the app's exit code: `typer.Exit(n)` from a command gives n."""

from __future__ import annotations

import typer

from aot import cli
from aot.cli import main


def test_typer_exit_code_propagates_through_main(tmp_path, monkeypatch):
    """`aot train` turns a failing run into `typer.Exit(2)`; main must return 2, not 0."""
    import aot.selfplay

    def boom(*args, **kwargs):
        raise ValueError("broken run")

    monkeypatch.setattr(aot.selfplay, "run_selfplay", boom)
    assert main(["train", "--out", str(tmp_path / "run")]) == 2


def test_exit_codes_of_a_command(capsys):
    def probe(code: int = typer.Option(0, "--code"), fail: bool = typer.Option(False, "--fail")) -> None:
        if fail:
            raise typer.BadParameter("nope", param_hint="--fail")
        if code:
            raise typer.Exit(code)
        print("ran")

    n = len(cli.app.registered_commands)
    cli.app.command("exit-probe")(probe)
    try:
        assert main(["exit-probe", "--code", "3"]) == 3
        assert main(["exit-probe", "--fail"]) == 2  # usage error
        assert main(["exit-probe", "--no-such-option"]) == 2
        assert main(["exit-probe"]) == 0
        assert "ran" in capsys.readouterr().out
    finally:
        del cli.app.registered_commands[n:]
