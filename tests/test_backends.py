"""The backend seam: the registry, the world backend's splits, editor, judge and replay, and a
second, tiny backend that the scoring code drives without knowing it."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pytest

from aot.attack import HeuristicAttacker
from aot.attack.scoring import ScoringConfig, clean_correctness, score_programs
from aot.backends import BACKENDS, Backend, Edit, Grown, Verdict, backend_class, get_backend, register_backend
from aot.backends.world import WorldBackend
from aot.seeds import is_eval_seed
from aot.vqa import Item, Question, Target


@pytest.fixture(scope="module")
def world() -> WorldBackend:
    return get_backend("world")  # type: ignore[return-value]


# --- registry -----------------------------------------------------------------------------
def test_registry_builds_by_name_and_suggests_close_names(world):
    assert isinstance(world, WorldBackend) and get_backend() is world and get_backend(world) is world
    with pytest.raises(ValueError, match="unknown backend 'wrld'.*did you mean world"):
        backend_class("wrld")
    with pytest.raises(ValueError, match="already registered"):
        register_backend("world", WorldBackend)


# --- the world backend ---------------------------------------------------------------------
def test_train_and_eval_splits_are_disjoint_and_deterministic(world):
    train = world.items("train", 4, 300)
    again = world.items("train", 4, 300)
    ev = world.items("eval", 4, 90, seed=1)
    assert [it.seed for it in train] == [it.seed for it in again]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(train, again))
    assert not any(is_eval_seed(it.seed) for it in train) and all(is_eval_seed(it.seed) for it in ev)
    # another run seed is another slice of the same slot
    assert not {it.seed for it in ev} & {it.seed for it in world.items("eval", 4, 90, seed=2)}
    replay = world.items("train", 3, 600, pool="replay")
    assert {it.scene.regime for it in replay} == {"simple"} and {it.scene.regime for it in train} == {"complex"}
    with pytest.raises(ValueError, match="train slot 900 outside"):
        world.items("train", 1, 900)
    with pytest.raises(ValueError, match="unknown split"):
        world.items("dev", 1, 0)
    with pytest.raises(ValueError, match="kinds applies to the attack pool"):
        world.items("train", 1, 0, pool="replay", kinds=("count",))


def _target_box_patch(item: Item) -> str:
    x0, y0, x1, y1 = item.question.targets[0].box
    return f"patch {x0} {y0} {x1} {y1} grey"


def test_attempt_reports_the_first_failing_stage(world):
    item = world.items("train", 1, 301)[0]
    parse = world.attempt(item, "paint it red")
    assert parse.stage == "parse" and parse.program is None and parse.edit is None and parse.reasons[0].startswith("parse error:")
    apply = world.attempt(item, "remove 99")
    assert apply.stage == "apply" and apply.program is not None and apply.edit is None and "99" in apply.error
    covered = world.attempt(item, _target_box_patch(item))
    assert covered.stage == "integrity" and not covered.passed
    assert any("overlaps target" in r for r in covered.reasons) and covered.verdict.reasons == covered.reasons


def test_an_edit_carries_its_image_boxes_and_mask(world):
    item = world.items("train", 1, 302)[0]
    a = world.attempt(item, "patch 0 0 6 6 grey")
    ed = a.edit
    assert ed is not None and ed.touched_boxes == ((0, 0, 6, 6),) and ed.touched_ops == (0,)
    assert ed.mask.shape == item.image.shape[:2] and ed.mask.dtype == bool
    assert np.array_equal(ed.mask, (ed.image != item.image).any(axis=-1))
    assert ed.mask[:6, :6].any() and not ed.mask[6:, :].any() and not ed.mask[:, 6:].any()
    # the pixel op leaves the scene graph alone: the judge recomputes the same answer
    assert a.verdict.answer_after == item.question.answer_text


def test_replay_key_and_program_make_the_same_images(world):
    item = world.items("train", 1, 303)[0]
    text = HeuristicAttacker().propose([item])[0]
    edited = world.attempt(item, text).edit
    key = world.replay_key(item)
    assert set(key) == set(world.replay_fields) == {"scene"}
    again, image = world.replay_image(key, item.question, text, item.seed)
    assert np.array_equal(again.image, item.image) and np.array_equal(image, edited.image)
    assert np.array_equal(world.replay_image(key, item.question)[1], item.image)  # no program: the clean image


# --- a second backend through the same code --------------------------------------------------
class BadProgram(ValueError):
    pass


class Squares(Backend):
    """A stand-in backend: grey images with one coloured square (the target); the question asks
    its colour. The edit language has one op, ``fill x0 y0 x1 y1``, which paints black; the
    judge fails an edit that touches the target's box."""

    name: ClassVar[str] = "squares"
    edit_errors: ClassVar[tuple[type[Exception], ...]] = (BadProgram,)
    replay_fields: ClassVar[tuple[str, ...]] = ("colour",)
    COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255)}

    def _item(self, colour: str, seed: int) -> Item:
        img = np.full((16, 16, 3), 128, np.uint8)
        img[4:8, 4:8] = self.COLOURS[colour]
        q = Question("colour", "What colour is the square?", ("red", "blue"), "AB"[list(self.COLOURS).index(colour)], (Target(0, (4, 4, 8, 8), "square"),), {})
        return Item(None, img, q, seed, meta={"colour": colour})

    def items(self, split: str, n: int, slot: int, seed: int = 0, *, pool: str = "attack", kinds: Sequence[str] | None = None) -> list[Item]:
        return [self._item(("red", "blue")[i % 2], slot * 1000 + i) for i in range(n)]

    def grow(self, seed: int, rng: np.random.Generator, kind: str, source: str, target: str) -> Grown:
        return Grown(self._item("red", seed))

    def replay_key(self, item: Item) -> dict[str, Any]:
        return {"colour": item.meta["colour"]}

    def replay(self, key: Mapping[str, Any], question: Question, seed: int = 0, image: np.ndarray | None = None) -> Item:
        return self._item(key["colour"], seed)

    def parse(self, text: str) -> tuple[Any, ...]:
        words = text.split()
        if len(words) != 5 or words[0] != "fill":
            raise BadProgram(f"not a fill: {text!r}")
        return (tuple(int(w) for w in words[1:]),)

    def edit(self, item: Item, program: Sequence[Any]) -> Edit:
        img = item.image.copy()
        for x0, y0, x1, y1 in program:
            if x1 > 16 or y1 > 16:
                raise BadProgram("off the canvas")
            img[y0:y1, x0:x1] = 0
        mask = (img != item.image).any(axis=-1)
        return Edit(img, tuple(program), tuple(program), tuple(range(len(program))), mask)

    def judge(self, item: Item, edit: Edit, cfg: Any = None) -> Verdict:
        t = item.question.targets[0]
        hit = bool(edit.mask[t.box[1]:t.box[3], t.box[0]:t.box[2]].any())
        return Verdict(not hit, ("target painted",) if hit else (), {}, item.question.answer_text, None if hit else item.question.answer_text)


class FooledByBlack:
    """Right on an image without black pixels; wrong (the other letter) on one with them."""

    def answer(self, images, questions, num_return_sequences=1, **_):
        return [[(q.answer if not (im == 0).all(axis=-1).any() else "AB"[1 - "AB".index(q.answer)])] * num_return_sequences for im, q in zip(images, questions)]


def test_scoring_runs_on_another_backend_through_the_seam():
    b = Squares()
    items = b.items("train", 4, 1)
    texts = ["fill 0 0 2 2", "fill 3 3 9 9", "nonsense", "fill 0 0 20 2"]
    cfg = ScoringConfig(k=1, temperature=0.0)
    clean = clean_correctness(FooledByBlack(), items, cfg)
    scored = score_programs(FooledByBlack(), items, texts, clean, cfg, backend=b)
    assert clean == [True] * 4
    assert [(s.parsed, s.passed, s.success) for s in scored] == [(True, True, True), (True, False, False), (False, False, False), (False, False, False)]
    assert scored[1].reasons == ("target painted",) and scored[2].reasons[0].startswith("unparseable: not a fill")
    assert scored[0].reward > scored[1].reward > scored[2].reward
    assert "squares" not in BACKENDS  # nothing was registered to get here
