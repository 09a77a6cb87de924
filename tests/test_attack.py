"""Attackers: programs always parse and apply; heuristic distractors keep clear of the targets."""

from __future__ import annotations

import numpy as np
import pytest

from aot.attack import ATTACKERS, AttackItem, HeuristicAttacker, make_attacker
from aot.attack.heuristic import matches_any, question_refs
from aot.edits import AddObject, MimicPatch, TwinObject, apply_program, parse_program
from aot.integrity import check
from aot.world import render, sample_question, sample_scene
from aot.world.dataset import scene_seed
from aot.world.extend import extend_scene
from aot.world.types import box_overlap


def items(n: int, kind: str | None = None) -> list[AttackItem]:
    out = []
    for i in range(n * 2):
        s = scene_seed(7, i)
        src = sample_scene(s, "simple")
        q = sample_question(src, np.random.default_rng(s), kind)
        if q is None:
            continue
        ext = extend_scene(src, q, s)
        if ext.ok:
            out.append(AttackItem(ext.scene, render(ext.scene), ext.question, s))
        if len(out) == n:
            break
    return out


@pytest.fixture(scope="module")
def batch() -> list[AttackItem]:
    return items(120)


@pytest.mark.parametrize("name", sorted(ATTACKERS))
def test_programs_always_parse_and_apply(batch, name):
    att = make_attacker(name)
    texts = att.propose(batch)
    assert len(texts) == len(batch)
    for it, t in zip(batch, texts):
        prog = parse_program(t)
        apply_program(it.scene, prog, it.image)


@pytest.mark.parametrize("name", sorted(ATTACKERS))
def test_proposals_depend_on_the_item_not_the_batch(batch, name):
    att = make_attacker(name)
    whole = att.propose(batch[:20])
    assert [att.propose([it])[0] for it in batch[:20]] == whole
    assert att.propose(batch[:20][::-1]) == whole[::-1]


def test_heuristic_distractors_avoid_targets_and_copies(batch):
    att = HeuristicAttacker()
    passed = 0
    for it in batch:
        prog = parse_program(att.propose([it])[0])
        res = apply_program(it.scene, prog, it.image)
        for b in res.touched_boxes:
            assert all(box_overlap(b, t.box) == 0 for t in it.question.targets), (prog, it.question.targets)
        for op in prog:
            if isinstance(op, AddObject):
                attrs = {"size": op.size, "color": op.color, "material": op.material, "shape": op.shape}
                assert not matches_any(attrs, question_refs(it.question.spec))
        passed += check(it.scene, it.image, it.question, res).passed
    assert passed >= 0.9 * len(batch)  # the integrity verdict agrees almost always


def test_heuristic_uses_the_question():
    att = HeuristicAttacker(p_pixel=0.0)
    rel = items(30, "relation")
    adds = [op for it in rel for op in parse_program(att.propose([it])[0]) if isinstance(op, AddObject)]
    assert len(adds) >= 15
    # attribute questions: decoys show one of the question's wrong options for the asked attribute
    attr = items(40, "attribute")
    shown = 0
    for it in attr:
        for op in parse_program(att.propose([it])[0]):
            if isinstance(op, AddObject) and getattr(op, it.question.spec["attr"]) in set(it.question.options) - {it.question.answer_text}:
                shown += 1
    assert shown >= 10


def test_heuristic_relative_names_targets_and_leaves_placement_to_the_editor(batch):
    att = make_attacker("heuristic-relative")
    rel, passed = 0, 0
    for it in batch:
        prog = parse_program(att.propose([it])[0])
        target_ids = {t.id for t in it.question.targets}
        for op in prog:
            if isinstance(op, (TwinObject, MimicPatch)):
                rel += 1
                assert op.id in target_ids  # a lookalike / mimic of a question target
            if isinstance(op, TwinObject):  # the twin never fits the question's description
                src = it.scene.get(op.id)
                attrs = {**{k: getattr(src, k) for k in ("size", "color", "material", "shape")}, **op.attr_dict}
                assert not matches_any(attrs, question_refs(it.question.spec))
        passed += check(it.scene, it.image, it.question, apply_program(it.scene, prog, it.image)).passed
    assert rel >= len(batch) // 2 and passed >= 0.9 * len(batch)


def test_unknown_attacker_is_named():
    with pytest.raises(ValueError, match="heuristic"):
        make_attacker("diffusion")


def test_cold_start_teacher_pads_with_its_own_edits():
    from aot.attack.data import teacher_examples

    ex = teacher_examples(12, 801, teacher="heuristic-relative")
    assert len(ex) == 12
    ops = [op for _, text in ex for op in parse_program(text)]
    assert any(isinstance(op, (TwinObject, MimicPatch)) for op in ops)
    for it, text in ex:  # each passes integrity on its own item
        assert check(it.scene, it.image, it.question, apply_program(it.scene, parse_program(text), it.image)).passed
    with pytest.raises(ValueError, match="unknown attacker"):
        teacher_examples(2, 801, teacher="nope")


def test_propose_once_writes_each_items_program_once():
    from types import SimpleNamespace

    from aot.attack import ProposeOnce

    calls = []

    class Counter:
        name = "counter"

        def propose(self, batch):
            calls.append([it.seed for it in batch])
            return [f"p{it.seed}.{len(calls)}" for it in batch]

    items = [SimpleNamespace(seed=s) for s in (3, 5, 7)]
    once = ProposeOnce(Counter())
    first = once.propose(items)
    assert once.propose(items[::-1]) == first[::-1] and once.name == "counter"
    assert once.propose(items + [SimpleNamespace(seed=9)])[-1] == "p9.2" and calls == [[3, 5, 7], [9]]
