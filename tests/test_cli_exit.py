"""`aot.cli.main(argv)` returns the app's exit code: `typer.Exit(n)` from a command gives n, a usage
error 2, any other failure 1 with one `error:` line (the traceback only with --debug or AOT_DEBUG=1)."""

from __future__ import annotations

import pytest
import typer

from aot import cli
from aot.cli import main


def test_a_failing_run_is_one_error_line_and_exit_1(tmp_path, monkeypatch, capfd):
    """A runtime failure inside a command: exit 1, one `error:` line, no traceback."""
    import aot.selfplay

    def boom(*args, **kwargs):
        raise ValueError("broken run")

    monkeypatch.setattr(aot.selfplay, "run_selfplay", boom)
    monkeypatch.delenv("AOT_DEBUG", raising=False)
    assert main(["train", "--out", str(tmp_path / "run")]) == 1
    err = capfd.readouterr().err
    assert err.strip() == "error: broken run"


def test_a_refused_run_folder_is_a_usage_error(tmp_path, monkeypatch):
    import aot.selfplay

    def refuse(*args, **kwargs):
        raise aot.selfplay.RunDirError("holds a run")

    monkeypatch.setattr(aot.selfplay, "run_selfplay", refuse)
    assert main(["train", "--out", str(tmp_path / "run")]) == 2


def test_debug_flag_or_env_shows_the_traceback(tmp_path, monkeypatch, capfd):
    import aot.selfplay

    def boom(*args, **kwargs):
        raise KeyError("deep bug")

    monkeypatch.setattr(aot.selfplay, "run_selfplay", boom)
    monkeypatch.delenv("AOT_DEBUG", raising=False)
    assert main(["train", "--out", str(tmp_path / "run")]) == 1
    err = capfd.readouterr().err
    assert "KeyError" in err and "--debug" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    for argv in (["--debug", "train", "--out", str(tmp_path / "run")], ["train", "--out", str(tmp_path / "run"), "--debug"]):
        with pytest.raises(KeyError):
            main(argv)
    monkeypatch.setenv("AOT_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["train", "--out", str(tmp_path / "run")])


def test_error_message_is_one_line():
    assert cli.error_message(OSError(28, "No space left on device", "/x/y")) == "No space left on device: /x/y"
    assert cli.error_message(ValueError("a\n  b")) == "a b"
    assert "unexpected" in cli.error_message(AssertionError("x"))


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
