"""`aot defender ...` and `aot pretrain` (owned by the defender work; placeholder wiring)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def pretrain(out: str = typer.Option(..., "--out", help="Directory for the trained born defender.")) -> None:
    raise typer.BadParameter("pretrain is not implemented yet")
