"""The seam between the loop and a world of images: one base class every backend implements.

The self-play loop, AOT-SFT, scoring, the evaluation and the report talk to a
:class:`Backend` and to :class:`aot.vqa.Item`; only a backend imports its world. A backend
gives three things (as lm-evaluation-harness's ``LM`` gives ``loglikelihood`` and
``generate_until``):

- items for a split: ``items(split, n, slot, seed)`` -> lettered questions about images,
  ``train`` and ``eval`` disjoint;
- an editor: ``edit(item, program)`` -> :class:`Edit` (the edited image, the boxes the
  program touched, a mask of changed pixels); editing is deterministic, so an edit's replay
  key is its item's ``replay_key`` plus the program text;
- an integrity judge: ``judge(item, edit, cfg)`` -> :class:`Verdict` (pass or fail, every
  failing reason, per-target scores); the run configs' ``integrity`` thresholds reach it only
  when it declares their class (``judge_settings``), else it judges with its own options.

Attackers read no backend's scene: the random attacker asks ``random_program`` (by default, the
backend's ``box_ops`` on random boxes clear of the targets), a model attacker reads the item's
image, question and target boxes, and decodes under a grammar only where ``edit_grammar`` names
one.

:meth:`Backend.attempt` is the one place the parse -> edit -> judge step is written out; the
call sites read its :class:`Attempt`. Stored curricula and records carry a backend's replay
key (``replay_key``) and the program text, so ``replay`` and ``edit`` make the images again.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ..vqa import Box, Item, Question, box_overlap

SPLITS: tuple[str, ...] = ("train", "eval")
"""Item splits; a backend's train and eval items never share an image."""


@dataclass(frozen=True)
class Edit:
    """What a program did to an item's image."""

    image: np.ndarray
    """(H, W, 3) uint8, the edited image."""
    program: tuple[Any, ...]
    """The ops applied, in order."""
    touched_boxes: tuple[Box, ...]
    """Boxes of the ops that put content at a location, unclipped, in program order."""
    touched_ops: tuple[int, ...]
    """Program index of each touched box."""
    mask: np.ndarray
    """(H, W) bool: the pixels the edit changed."""
    state: Any = None
    """The backend's own record of the edit (the world: its ``EditResult`` with the edited
    scene graph and occluders); the loop passes it back to the judge untouched."""


@dataclass(frozen=True)
class Verdict:
    """``reasons`` lists every failed check (empty iff ``passed``); ``ssim`` maps target id
    to its local SSIM; ``answer_after`` is None when the edited item has no answer (or the
    judge cannot tell)."""

    passed: bool
    reasons: tuple[str, ...]
    ssim: dict[int, float] = field(hash=False)
    answer_before: str
    answer_after: str | None


STAGES: tuple[str, ...] = ("parse", "apply", "integrity")
"""Where :meth:`Backend.attempt` can reject a program, in order."""


@dataclass(frozen=True)
class Attempt:
    """One program text through parse -> edit -> judge. ``stage`` is the first failing stage
    (None: the edit passed); later fields stay None once a stage fails."""

    text: str
    program: tuple[Any, ...] | None
    """The parsed program; None when the text does not parse."""
    edit: Edit | None
    """None when the text does not parse or the program cannot be applied."""
    verdict: Verdict | None
    """None unless the program was applied."""
    stage: str | None
    error: str = ""
    """The parse or apply error's message (empty otherwise)."""

    @property
    def passed(self) -> bool:
        return self.stage is None

    @property
    def reasons(self) -> tuple[str, ...]:
        if self.verdict is not None:
            return self.verdict.reasons
        return (f"{self.stage} error: {self.error}",) if self.stage else ()


@dataclass(frozen=True)
class Grown:
    """AOT-SFT's first steps for one seed: the item, or the stage that rejected it and why."""

    item: Item | None
    stage: str | None = None
    """'question' (no question of the asked kind) or 'extension' (growing it failed)."""
    reasons: tuple[str, ...] = ()


class Backend(ABC):
    """Items, an editor and an integrity judge for one kind of image (see the module doc)."""

    name: ClassVar[str]
    """The registry name (``aot.backends.BACKENDS``)."""
    pools: ClassVar[tuple[str, ...]] = ("attack",)
    """Kinds of item ``items`` can draw: 'attack' (what attackers edit and curricula hold) and,
    where the backend has one, 'replay' (the defender's pre-training distribution, replayed
    against forgetting)."""
    question_kinds: ClassVar[tuple[str, ...]] = ()
    """Question families its items can be asked to hold (``items(kinds=...)``)."""
    regimes: ClassVar[Mapping[str, int]] = {}
    """Settings AOT-SFT can grow items from and into, by name, with their canvas side."""
    replay_fields: ClassVar[tuple[str, ...]] = ()
    """The keys of ``replay_key``; a record store keeps each as a JSON column."""
    edit_errors: ClassVar[tuple[type[Exception], ...]] = ()
    """What ``parse`` and ``edit`` raise for a bad program (an attacker's fault, not a bug)."""
    judge_settings: ClassVar[type | None] = None
    """The class of the run configs' ``integrity`` settings that this backend's ``judge`` reads
    (the world: ``aot.integrity.IntegrityConfig``). None: its judge is set up by the backend's
    own options, and the run configs' integrity settings (the world's thresholds) do not apply
    to it (see ``run_judge_settings``)."""
    box_ops: ClassVar[tuple[str, ...]] = ()
    """Ops of its edit language that need only a box, as program lines with ``{box}`` where
    ``X0 Y0 X1 Y1`` goes (e.g. ``"patch {box} grey"``): what the default ``random_program``
    writes. Empty: the backend writes its own random programs, or has none."""
    edit_grammar: ClassVar[str] = ""
    """The decoding grammar a model attacker can write this backend's programs under ("aot.edits":
    the grammar of :mod:`aot.attack.constrained`). Empty: none; a model attacker decodes freely
    and ``parse`` rejects what does not parse."""

    # --- items ----------------------------------------------------------------------------
    @abstractmethod
    def items(self, split: str, n: int, slot: int, seed: int = 0, *, pool: str = "attack", kinds: Sequence[str] | None = None) -> list[Item]:
        """``n`` items of ``split``. ``slot`` names one of the split's disjoint sets (each use
        in the loop, such as one iteration's curriculum or one monitor set, has its own);
        ``seed`` picks a disjoint slice of that set (a run seed). Deterministic."""

    @abstractmethod
    def grow(self, seed: int, rng: np.random.Generator, kind: str, source: str, target: str) -> Grown:
        """AOT-SFT steps 1-2: an item of question kind ``kind`` in setting ``source`` whose
        question survives growing it into setting ``target`` (the world: a simple scene
        extended into a complex one; ``rng`` draws the question)."""

    @abstractmethod
    def replay_key(self, item: Item) -> dict[str, Any]:
        """JSON-able fields that re-make ``item``'s image (stored beside its question)."""

    @abstractmethod
    def replay(self, key: Mapping[str, Any], question: Question, seed: int = 0, image: np.ndarray | None = None) -> Item:
        """The item again, from a ``replay_key`` (extra fields in ``key`` are ignored);
        ``image``: its image where it was stored with the key (it is then not made again)."""

    # --- the editor and the judge -----------------------------------------------------------
    @abstractmethod
    def parse(self, text: str) -> tuple[Any, ...]:
        """An attacker's program text as ops; raises one of ``edit_errors``."""

    @abstractmethod
    def edit(self, item: Item, program: Sequence[Any]) -> Edit:
        """Apply ``program`` to ``item``'s image; raises one of ``edit_errors``."""

    @abstractmethod
    def judge(self, item: Item, edit: Edit, cfg: Any = None) -> Verdict:
        """Does ``item``'s answer still hold on ``edit``, with its targets left alone?
        ``cfg``: the judge's thresholds (None: its defaults)."""

    def target_check(self, item: Item, edit: Edit) -> tuple[str, ...]:
        """A cheap check AOT-SFT runs before the verdict: reasons the edit changed a target or
        made another instance that fits the question (empty: none found). The default finds
        none and leaves it all to ``judge``."""
        return ()

    def run_judge_settings(self, cfg: Any) -> Any:
        """What to hand ``judge`` from a run config's ``integrity`` settings: ``cfg`` when this
        backend's judge reads settings of its class (``judge_settings``), else None (the judge's
        own, from the backend's options)."""
        return cfg if self.judge_settings is not None and isinstance(cfg, self.judge_settings) else None

    def program_json(self, program: Sequence[Any]) -> list[dict[str, Any]]:
        """A parsed program as JSON-able dicts (what a record's ``edit_json`` holds): each op's
        ``to_json()`` where it has one, else its dataclass fields under its name."""
        out = []
        for op in program:
            if hasattr(op, "to_json"):
                out.append(op.to_json())
            else:
                out.append({"op": getattr(op, "name", type(op).__name__), **(dataclasses.asdict(op) if dataclasses.is_dataclass(op) else {"text": str(op)})})
        return out

    # --- what attackers write ---------------------------------------------------------------
    def random_program(self, item: Item, rng: np.random.Generator, max_ops: int = 2, ops: Sequence[str] | None = None) -> str:
        """A random program for ``item`` in this backend's edit language, as text: the random
        attacker's proposal. ``ops``: op names to draw from (None: all). The default writes 1
        to ``max_ops`` of ``box_ops``, each box drawn inside the image at 10-30% of each side and,
        where one is found, clear of every target box; a backend without ``box_ops`` must
        override it. Deterministic given ``rng``."""
        templates = [t for t in self.box_ops if ops is None or t.split(" ", 1)[0] in ops]
        if not templates:
            raise NotImplementedError(f"backend {self.name!r} declares no box ops and writes no random programs" + (f" of ops {list(ops)}" if ops else "") + " (it must override Backend.random_program)")
        h, w = item.image.shape[:2]
        lines = []
        for _ in range(int(rng.integers(1, max_ops + 1))):
            t = templates[int(rng.integers(len(templates)))]
            lines.append(t.format(box=" ".join(str(v) for v in random_box(rng, w, h, [tg.box for tg in item.targets]))))
        return "\n".join(lines)

    @classmethod
    def default_growth(cls) -> tuple[str, str]:
        """AOT-SFT's (source, target) settings when a build names none: the smallest and the
        largest of ``regimes`` (the world: simple into complex; photos: as in the file, then
        outpainted)."""
        if not cls.regimes:
            raise ValueError(f"backend {cls.name!r} has no regimes to grow AOT-SFT items in")
        order = sorted(cls.regimes, key=lambda r: cls.regimes[r])
        return order[0], order[-1]

    # --- the step, written out once ----------------------------------------------------------
    def attempt(self, item: Item, text: str, cfg: Any = None) -> Attempt:
        """Parse ``text``, apply it to ``item``, judge the edit; never raises on a bad program."""
        try:
            program = tuple(self.parse(text))
        except self.edit_errors as e:
            return Attempt(text, None, None, None, "parse", str(e))
        try:
            edit = self.edit(item, program)
        except self.edit_errors as e:
            return Attempt(text, program, None, None, "apply", str(e))
        verdict = self.judge(item, edit, cfg)
        return Attempt(text, program, edit, verdict, None if verdict.passed else "integrity")

    def edited_or_clean(self, item: Item, text: str, cfg: Any = None) -> np.ndarray:
        """The edited image when ``text`` passes integrity, else the clean one (a void attack)."""
        a = self.attempt(item, text, cfg)
        return a.edit.image if a.passed and a.edit is not None else item.image

    def replay_image(self, key: Mapping[str, Any], question: Question, program: str = "", seed: int = 0) -> tuple[Item, np.ndarray]:
        """The item of a stored row and its image after ``program`` (the clean image when the
        program is empty): how curricula and reports get their pictures back."""
        item = self.replay(key, question, seed)
        return item, (self.edit(item, self.parse(program)).image if program else item.image)


def random_box(rng: np.random.Generator, width: int, height: int, avoid: Sequence[Box], tries: int = 20) -> Box:
    """A box inside a ``width`` x ``height`` image at 10-30% of each side, clear of every box in
    ``avoid`` if one is found in ``tries`` draws (else the last draw: the judge rejects it)."""
    box: Box = (0, 0, 1, 1)
    for _ in range(tries):
        bw, bh = max(1, int(width * rng.uniform(0.1, 0.3))), max(1, int(height * rng.uniform(0.1, 0.3)))
        x0, y0 = int(rng.integers(0, width - bw + 1)), int(rng.integers(0, height - bh + 1))
        box = (x0, y0, x0 + bw, y0 + bh)
        if not any(box_overlap(box, a) > 0 for a in avoid):
            break
    return box
