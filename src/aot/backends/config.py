"""The ``backend`` setting of a run: which backend, its item file, its options.

Every entry point that makes items (the self-play loop, the AOT-SFT build, the evaluation)
carries one :class:`BackendConfig` and builds its backend with :func:`build_backend`::

    backend: {name: photos, data: my_items.jsonl, options: {config: {eval_fraction: 0.2}}}

The default (the world, no file, no options) is left out of every config hash
(:func:`without_default_backend`), so runs and datasets made before there was a choice keep
their hashes: resume and the pinned AOT-SFT hash see no new field.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import DEFAULT_BACKEND, backend_class, check_backend_name, get_backend
from .base import Backend


@dataclass(frozen=True)
class BackendConfig:
    """Which backend makes the items, carries out the edits and judges them."""

    name: str = DEFAULT_BACKEND
    """A registered backend (``aot.backends.BACKENDS``): world (the procedural scenes), photos
    (a VQA file of photos with target boxes), or one registered with ``register_backend``."""
    data: str = ""
    """The backend's item file (photos: JSON lines or parquet); empty: its default (photos: the
    shipped sample). The world generates its items and takes none."""
    options: dict[str, Any] = field(default_factory=dict)
    """Further constructor arguments by name; a mapping given for a dataclass argument is built
    into it (photos: ``{config: {eval_fraction: 0.2, editor: {work_size: 1024}}}``)."""

    def __post_init__(self) -> None:
        check_backend_name(self.name)
        if self.data and not Path(self.data).is_file():
            what = "is a folder, not a file" if Path(self.data).is_dir() else "does not exist"
            raise ValueError(f"backend data file {self.data} {what}")

    @property
    def is_default(self) -> bool:
        """The world with no file and no options: what configs written before the setting meant."""
        return self == BackendConfig()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "data": self.data, "options": json.loads(json.dumps(self.options, sort_keys=True, default=str))}


_built: dict[str, Backend] = {}


def build_backend(cfg: BackendConfig | Backend | None = None) -> Backend:
    """The backend ``cfg`` names, built once per distinct setting (a backend holds no per-run
    state; the photo backend loads its file and pipelines once). An instance passes through."""
    if isinstance(cfg, Backend):
        return cfg
    cfg = cfg or BackendConfig()
    if cfg.is_default:
        return get_backend(cfg.name)
    key = json.dumps(cfg.to_dict(), sort_keys=True)
    if key not in _built:
        cls = backend_class(cfg.name)
        _built[key] = get_backend(cfg.name, **_constructor_kwargs(cls, cfg))
    return _built[key]


def check_constructor(cfg: BackendConfig) -> None:
    """Raise what building ``cfg`` would for its data and options, without building it (the
    backend's module is imported)."""
    _constructor_kwargs(backend_class(cfg.name), cfg)


def _constructor_kwargs(cls: type[Backend], cfg: BackendConfig) -> dict[str, Any]:
    """``cfg``'s data and options as ``cls``'s keyword arguments; a name it does not take is an
    error that lists the ones it does."""
    from ..config import from_dict

    params = {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    hints = typing.get_type_hints(cls.__init__)
    kwargs: dict[str, Any] = {}
    if cfg.data:
        if "data" not in params:
            raise ValueError(f"backend {cfg.name!r} takes no data file (it makes its own items); drop backend.data / --data")
        kwargs["data"] = cfg.data
    for k, v in cfg.options.items():
        if k not in params or k == "data":
            takes = ", ".join(p for p in params if p != "data") or "none"
            raise ValueError(f"backend {cfg.name!r} has no option {k!r}; its options: {takes}" + (" (the item file is backend.data)" if k == "data" else ""))
        kwargs[k] = _build_value(hints.get(k), v, f"backend.options.{k}", from_dict)
    return kwargs


def _build_value(tp: Any, value: Any, path: str, from_dict: Any) -> Any:
    """A mapping given for a dataclass-typed argument (or an optional one) becomes that dataclass."""
    if not isinstance(value, dict):
        return value
    arms = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    for a in arms:
        if dataclasses.is_dataclass(a):
            return from_dict(a, value, path)
    return value


def without_default_backend(d: Any) -> Any:
    """``d`` (a config as a dict) with every ``backend`` entry that is the default removed, at any
    depth: what config hashes read, so adding the setting moved no existing hash."""
    if isinstance(d, dict):
        default = BackendConfig().to_dict()
        return {k: without_default_backend(v) for k, v in d.items() if not (k == "backend" and _as_dict(v) == default)}
    if isinstance(d, list):
        return [without_default_backend(v) for v in d]
    return d


def _as_dict(v: Any) -> Any:
    if isinstance(v, BackendConfig):
        return v.to_dict()
    if isinstance(v, dict) and set(v) == {"name", "data", "options"}:
        return {"name": v["name"], "data": v["data"], "options": v["options"]}
    return v
