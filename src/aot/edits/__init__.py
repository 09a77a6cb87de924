"""Typed image edits for the attacker: ops, text / JSON forms, the editor, random programs.

A program is a tuple of ops (at most ``MAX_OPS`` = 4 when parsed)::

    from aot.edits import parse_program, apply_program
    prog = parse_program("add small red metal circle 40 12\\npatch 10 10 20 20 grey")
    result = apply_program(scene, prog)   # result.scene, result.image, result.occluders, ...
"""

from .apply import EditResult, apply_program, gaussian_blur, place_beside
from .jsonio import program_from_json, program_to_json
from .ops import (
    ABSOLUTE_OPS,
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
    MimicPatch,
    MoveObject,
    OccludingPatch,
    Op,
    Perturb,
    Photometric,
    Program,
    RemoveObject,
    RELATIVE_OPS,
    ReplaceAttrs,
    TwinObject,
)
from .sampling import random_program
from .text import format_program, parse_program

__all__ = [
    "ABSOLUTE_OPS", "MAX_COORD", "MAX_OPS", "OP_NAMES", "OP_TYPES", "OPS_BY_NAME", "PATCH_COLORS",
    "AddObject", "BackgroundChange", "EditApplyError", "EditError", "EditParseError", "EditResult",
    "EditValueError", "MimicPatch", "MoveObject", "OccludingPatch", "Op", "Perturb", "Photometric", "Program",
    "RELATIVE_OPS", "RemoveObject", "ReplaceAttrs", "TwinObject", "apply_program", "format_program", "gaussian_blur", "parse_program",
    "place_beside", "program_from_json", "program_to_json", "random_program",
]
