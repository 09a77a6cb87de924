"""Only a backend imports its world: an import walk over every module of ``src/aot``.

Every module is parsed (never imported) and its ``import`` / ``from ... import`` statements,
function-level ones included, are resolved to absolute module names. A module may import
``aot.world`` only if it belongs to the world's side of the seam, to the born defender's
pretraining recipe, to the world-specific benchmarks, or to the short list below, each entry
with its reason. An entry that stops importing the world must leave the list.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
WORLD = "aot.world"

WORLD_SIDE = ("aot.world", "aot.backends.world", "aot.edits", "aot.integrity")
"""The world backend and what it is made of: the world, its editor and edit language, its judge."""
RECIPE = ("aot.pretrain", "aot.grounding")
"""The born defender's pretraining recipe draws world scenes by design."""
WORLD_BENCHMARKS = ("aot.eval.benchmarks",)
"""The world-specific benchmarks (V*-like, POPE-like, Hallusion-like, robust, held-out)."""
ALLOWED = {
    "aot.attack.heuristic": "the world's own attacker: it reads the scene graph to place its edits",
    "aot.commands.world": "`aot world sample|bench`: the world's own verbs",
    "aot.models.tokenizer": "the born defender's vocabulary is built from the world's words",
    "aot.models.evaluation": "`aot defender eval`: the born defender's accuracy per world regime",
    "aot.study": "the headroom oracle renders its replay scenes itself; it should take them from clean_items",
    # the world's learned editor and judge: world-specific parts that belong with the world
    # backend (move them under aot.backends and these entries go)
    "aot.editors.world_data": "training scenes and captions of the world's diffusion editor",
    "aot.editors.world_editor": "the world's diffusion editor speaks the world's vocabulary",
    "aot.judge.detections": "the world judge's truth comes from the scene graph",
    "aot.judge.model": "the world judge's labels come from the scene graph",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (``from a import b`` yields a and a.b)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _imports_world(path: Path) -> bool:
    return any(m == WORLD or m.startswith(WORLD + ".") for m in _imports(path))


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


MODULES = {_module_name(p): p for p in sorted((SRC / "aot").rglob("*.py"))}


def test_the_walk_resolves_relative_imports():
    """The walk itself: relative and function-level imports resolve to absolute names."""
    assert "aot.world.questions" in _imports(MODULES["aot.integrity"])
    assert "aot.world.render" in _imports(MODULES["aot.backends.world"])
    assert "aot.world.questions" in _imports(MODULES["aot.world"])  # an __init__'s "from .questions"
    assert "aot.world.contact" in _imports(MODULES["aot.commands.world"])  # inside a function


def test_no_module_above_the_backends_imports_the_world():
    offenders = sorted(
        name for name, path in MODULES.items()
        if _imports_world(path) and not _under(name, WORLD_SIDE + RECIPE + WORLD_BENCHMARKS) and name not in ALLOWED
    )
    assert offenders == [], f"these import aot.world; go through aot.backends (or aot.vqa for Question/Target/LETTERS): {offenders}"


def test_the_allow_list_is_still_needed():
    stale = sorted(name for name in ALLOWED if name not in MODULES or not _imports_world(MODULES[name]))
    assert stale == [], f"no longer import aot.world; remove them from ALLOWED: {stale}"


def test_the_seam_itself_knows_no_world():
    """The protocol, the registry and the neutral modules import neither the world nor a backend."""
    for name in ("aot.backends", "aot.backends.base", "aot.vqa", "aot.seeds", "aot.contact"):
        mods = _imports(MODULES[name])
        assert not any(m == WORLD or m.startswith(WORLD + ".") for m in mods), name
        assert not any(m.startswith(("aot.edits", "aot.integrity", "aot.backends.world")) for m in mods), name


WORLD_PACKAGES = ("aot.world", "aot.edits", "aot.integrity", "aot.backends.world")
"""The world and what it is made of: none of it may load behind the photo backend."""


def test_the_photo_backend_loads_nothing_of_the_world():
    """Transitively, not only in its own files: a fresh interpreter imports the photo backend,
    builds it on the shipped sample and edits a photo with a pixel op and a global op, and none
    of the world's modules is loaded (an indirect import, say of a helper that lives beside the
    world's editor, would pull them all in)."""
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys\n"
        "from aot.backends.photos import PhotoBackend\n"
        "from aot.backends import get_backend\n"
        "b = get_backend('photos')\n"
        "it = b.items('train', 1, 0)[0]\n"
        "a = b.attempt(it, 'patch 0 0 8 8 grey\\nphoto brightness=1.1 blur=0.5')\n"
        "assert a.edit is not None, a.reasons\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('aot'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "aot.backends.photos.judge" in loaded and "aot.imageops" in loaded  # the probe did load the backend
    assert [m for m in loaded if _under(m, WORLD_PACKAGES)] == []
