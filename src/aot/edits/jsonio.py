"""JSON form of a program: a list of objects, each with an ``"op"`` key naming the op
(the same keywords as the text form) and one key per field, e.g.
``{"op": "add", "size": "small", "color": "red", "material": "metal", "shape": "circle", "x": 40, "y": 12}``,
``{"op": "replace", "id": 3, "attrs": {"color": "blue"}}``. ``photo`` fields may be
omitted (defaults); every other field is required, and unknown keys are errors.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from typing import Any, Iterable

from .ops import MAX_OPS, OP_NAMES, OPS_BY_NAME, EditParseError, EditValueError, Op


def program_to_json(ops: Iterable[Op]) -> list[dict[str, Any]]:
    out = []
    for op in ops:
        if not isinstance(op, Op):
            raise TypeError(f"expected an edit op, got {type(op).__name__}")
        out.append(op.to_json())
    return out


def _err(i: int, detail: str) -> EditParseError:
    return EditParseError(i, 0, detail, where=f"op {i}")


def program_from_json(data: str | bytes | list[Any], max_ops: int = MAX_OPS) -> tuple[Op, ...]:
    """Strict inverse of :func:`program_to_json`; accepts the list or its JSON text.
    Raises only :class:`EditParseError` (``line`` = 1-based op index, ``col`` = 0)."""
    if isinstance(data, (str, bytes, bytearray)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as e:
            lineno, colno = getattr(e, "lineno", 1), getattr(e, "colno", 1)
            raise EditParseError(lineno, colno, f"invalid JSON: {getattr(e, 'msg', str(e))}") from None
    if not isinstance(data, list):
        raise EditParseError(1, 0, f"expected a JSON list of ops, got {type(data).__name__}", where="program")
    if not data:
        raise EditParseError(1, 0, "empty program; expected at least one op", where="program")
    if len(data) > max_ops:
        raise EditParseError(max_ops + 1, 0, f"too many ops: {len(data)}, at most {max_ops} allowed", where="program")
    return tuple(_op_from_json(i, d) for i, d in enumerate(data, 1))


def _op_from_json(i: int, d: Any) -> Op:
    if not isinstance(d, dict):
        raise _err(i, f"expected an object with an 'op' key, got {type(d).__name__}")
    name = d.get("op")
    cls = OPS_BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _err(i, f"unknown or missing 'op' {str(name)[:20]!r}; expected one of {', '.join(OP_NAMES)}")
    allowed = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for k in d:
        if k != "op" and k not in allowed:
            raise _err(i, f"{name}: unknown key {str(k)[:20]!r}; expected {', '.join(allowed)}")
    kwargs: dict[str, Any] = {}
    for k, f in allowed.items():
        if k in d:
            kwargs[k] = d[k]
        elif f.default is MISSING and f.default_factory is MISSING:
            raise _err(i, f"{name}: missing key {k!r}")
    if cls.KEYS is not None and "attrs" in kwargs and not isinstance(kwargs["attrs"], dict):  # replace, twin
        raise _err(i, f"{name}: 'attrs' must be an object, got {type(kwargs['attrs']).__name__}")
    try:
        return cls(**kwargs)
    except EditValueError as e:
        raise _err(i, str(e)) from None
