"""Backends by name: ``get_backend("world")``; the loop never imports one directly.

A backend supplies items, an editor and an integrity judge (:class:`Backend`). Entries are
``"module:Class"`` strings, imported on first use, so naming a backend costs nothing until it is
built and a backend with heavy dependencies (diffusion pipelines, detectors) loads only when
asked for. ``register_backend`` adds one (a test's stand-in, a user's own photos).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from .base import SPLITS, STAGES, Attempt, Backend, Edit, Grown, Verdict

BACKENDS: dict[str, str | type[Backend]] = {
    "world": "aot.backends.world:WorldBackend",
    "photos": "aot.backends.photos:PhotoBackend",
}
"""Registered backends: a class, or where to import it from."""
DEFAULT_BACKEND = "world"
"""The backend of every entry point that is not told another (configs written before there
was a choice name none)."""

_shared: dict[str, Backend] = {}


def register_backend(name: str, target: str | type[Backend]) -> None:
    """Register a backend class (or its ``"module:Class"`` path) under ``name``."""
    if name in BACKENDS:
        raise ValueError(f"backend {name!r} is already registered")
    BACKENDS[name] = target


def check_backend_name(name: str) -> None:
    """Raise for a name that is not registered, naming the close ones (imports nothing)."""
    if name not in BACKENDS:
        near = difflib.get_close_matches(name, list(BACKENDS), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join(sorted(BACKENDS))}{hint}")


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name``; an unknown name is answered with the close ones."""
    check_backend_name(name)
    target = BACKENDS[name]
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
        BACKENDS[name] = target
    return target  # type: ignore[return-value]


def get_backend(name: str | Backend | None = None, **options: Any) -> Backend:
    """A backend by name (None: ``DEFAULT_BACKEND``); an instance is passed through. Without
    options one instance per name is shared (backends hold no per-run state)."""
    if isinstance(name, Backend):
        return name
    name = name or DEFAULT_BACKEND
    if options:
        return backend_class(name)(**options)
    if name not in _shared:
        _shared[name] = backend_class(name)()
    return _shared[name]


from .config import BackendConfig, build_backend, without_default_backend  # noqa: E402  (it reads the registry above)

__all__ = [
    "BACKENDS", "DEFAULT_BACKEND", "BackendConfig", "build_backend", "check_backend_name", "without_default_backend", "SPLITS", "STAGES", "Attempt", "Backend", "Edit", "Grown", "Verdict",
    "backend_class", "get_backend", "register_backend",
]
