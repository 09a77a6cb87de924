"""Typer apps, one per verb group; thin wrappers over the library.

Helpers here turn the commonest user mistakes into usage errors (exit 2) before any work is
done; anything else a command raises becomes one ``error: ...`` line in ``aot.cli.main``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def check_out_dir(path: Path, hint: str = "--out") -> Path:
    """``path`` may be created as a folder: refuse an existing file (or a file on the way)."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise typer.BadParameter(f"{p} exists and is not a folder", param_hint=hint)
            break
    return path


def check_out_file(path: Path, hint: str = "--out") -> Path:
    """``path`` may be written as a file: refuse a folder."""
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder; give a file name", param_hint=hint)
    check_out_dir(path.parent, hint)
    return path


def load_defender_arg(spec: str, hint: str = "--model") -> Any:
    """``load_defender(spec)``; a missing, empty or unreadable model is a usage error naming ``hint``."""
    from ..models.defender import load_defender

    p = Path(spec)
    if p.is_dir() and not any(p.iterdir()):
        raise typer.BadParameter(f"{spec} is an empty folder, not a saved model", param_hint=hint)
    try:
        return load_defender(spec)
    except (OSError, ValueError) as e:  # missing folder, no config.json, unknown hub id offline
        from ..models.registry import TINY_MODELS

        if p.exists():
            msg = f"cannot load a model from {spec}: " + " ".join(str(e).split())
        else:
            msg = f"{spec!r} is neither base, a tiny model name ({', '.join(sorted(TINY_MODELS))}), a folder, nor a Hugging Face id available here"
        raise typer.BadParameter(msg, param_hint=hint) from None


BACKEND_HELP = "Backend of items, editor and judge: world (default), photos, or one registered with aot.backends.register_backend."
DATA_HELP = "The backend's item file (photos: JSON lines or parquet of image, question, options, answer, target boxes)."


def backend_config(backend: str | None, data: Path | None, default: Any = None) -> Any:
    """``--backend NAME --data FILE`` as a :class:`aot.backends.BackendConfig` over ``default``'s
    (None: the world). An unknown name (with the close ones) or a missing file raises
    ValueError: one ``error:`` line, before anything loads."""
    from ..backends import BackendConfig

    from ..backends.config import check_constructor

    base = default or BackendConfig()
    if backend is None and data is None:
        return base
    cfg = BackendConfig(backend if backend is not None else base.name, str(data) if data is not None else base.data, dict(base.options))
    check_constructor(cfg)
    return cfg


def backend_sets(backend: str | None, data: Path | None, prefix: str = "") -> list[str]:
    """The same flags as dotted config overrides (``backend.name=...``, ``backend.data=...``),
    checked as :func:`backend_config` checks them. ``--data`` without ``--backend`` goes to the
    backend the config names (a preset such as ``photos`` may name one): only the file is checked
    here; :func:`check_backend` checks it against that backend once the config is loaded."""
    import json

    from ..backends import BackendConfig

    if backend is not None:
        backend_config(backend, data)
    elif data is not None:
        BackendConfig(data=str(data))  # a missing file or a folder: one error line now
    return ([f"{prefix}backend.name={json.dumps(backend)}"] if backend is not None else []) + (
        [f"{prefix}backend.data={json.dumps(str(data))}"] if data is not None else [])


def check_backend(cfg: Any) -> None:
    """Raise (one ``error:`` line) when a loaded config's backend does not take its data file or
    options; nothing is built (the backend's module is imported)."""
    from ..backends.config import check_constructor

    check_constructor(cfg)
