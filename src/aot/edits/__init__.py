"""Typed image edits for the attacker: ops, text / JSON forms, the editor, random programs.

A program is a tuple of ops (at most ``MAX_OPS`` = 4 when parsed)::

    from aot.edits import parse_program, apply_program
    prog = parse_program("add small red metal circle 40 12\\npatch 10 10 20 20 grey")
    result = apply_program(scene, prog)   # result.scene, result.image, result.occluders, ...
"""

from .apply import EditResult, apply_program, gaussian_blur
from .jsonio import program_from_json, program_to_json
from .ops import (
    MAX_COORD,
    MAX_OPS,
    OP_NAMES,
    OP_TYPES,
    OPS_BY_NAME,
    PATCH_COLORS,
    AddObject,
    BackgroundChange,
    EditApplyError,
    EditError,
    EditParseError,
    EditValueError,
    MoveObject,
    OccludingPatch,
    Op,
    Perturb,
    Photometric,
    Program,
    RemoveObject,
    ReplaceAttrs,
)
from .sampling import random_program
from .text import format_program, parse_program

__all__ = [
    "MAX_COORD", "MAX_OPS", "OP_NAMES", "OP_TYPES", "OPS_BY_NAME", "PATCH_COLORS",
    "AddObject", "BackgroundChange", "EditApplyError", "EditError", "EditParseError", "EditResult",
    "EditValueError", "MoveObject", "OccludingPatch", "Op", "Perturb", "Photometric", "Program",
    "RemoveObject", "ReplaceAttrs", "apply_program", "format_program", "gaussian_blur", "parse_program",
    "program_from_json", "program_to_json", "random_program",
]
