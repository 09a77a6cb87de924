"""Typer apps, one per verb group; thin wrappers over the library."""
