"""The model attacker: prompt, malformed output handling, cold start and a 2-step GRPO run."""

import numpy as np
import pytest
import torch

from aot.attack import AttackItem, HeuristicAttacker, RandomAttacker
from aot.attack.model import ModelAttacker, attacker_prompt
from aot.attack.scoring import ScoringConfig, score_programs, summarize
from aot.attack.train import AttackerRLConfig, SFTConfig, cold_start, evaluate_attacker, train_attacker
from aot.models.defender import load_defender
from aot.rl import RLConfig
from aot.world import render, sample_question, sample_scene


def _items(n, regime="simple"):
    rng = np.random.default_rng(0)
    out = []
    for s in range(n):
        sc = sample_scene(s, regime)
        out.append(AttackItem(sc, render(sc), sample_question(sc, rng, "attribute"), s))
    return out


class ScriptedDefender:
    """Answers A on every image whose top-left pixel is unchanged from the clean render, else B:
    a deterministic stand-in for the frozen defender."""

    def __init__(self, items):
        self.clean = {it.image.tobytes(): it for it in items}

    def answer(self, images, questions, num_return_sequences=1, **_):
        return [[q.answer if im.tobytes() in self.clean else ("B" if q.answer != "B" else "A")] * num_return_sequences for im, q in zip(images, questions)]


def test_prompt_names_question_answer_targets():
    it = _items(1)[0]
    p = attacker_prompt(it.question, 64, 64)
    assert it.question.text in p and f"Answer: {it.question.answer_text}" in p
    t = it.question.targets[0]
    assert f"id {t.id} box " + " ".join(str(v) for v in t.box) in p  # the id the relative ops name


def test_malformed_programs_score_penalty_without_crashing():
    items = _items(4)
    d = ScriptedDefender(items)
    texts = ["", "add purple unicorn 1 2", "\x00\x01garbage", HeuristicAttacker().propose(items[3:])[0]]
    scored = score_programs(d, items, texts, [True] * 4, ScoringConfig(k=3))
    assert [s.reward for s in scored[:3]] == [-1.0, -1.0, -1.0]
    assert all(not s.parsed and s.reasons for s in scored[:3])
    # the heuristic's edit passes integrity and changes pixels, so the scripted defender is
    # wrong on all 3 samples: full efficacy, a success
    assert scored[3].parsed and scored[3].passed and scored[3].edited_correct == (False, False, False)
    assert scored[3].reward == 1.0 and scored[3].success
    s = summarize(scored)
    assert s["parse_rate"] == 0.25 and s["n"] == 4 and s["success_rate"] == 0.25


def test_diversity_bonus_by_hand():
    """bonus x (1 - share of the program's first op among the batch's passing programs), added to
    passing programs only."""
    items = _items(8)
    heur = HeuristicAttacker().propose(items[:5])  # first ops: add, add, add, add, perturb
    texts = heur + ["", "move 1 22 48", "patch 38 0 51 3 blue\nreplace 2 shape=triangle"]
    clean = [True] + [False] * 7  # item 0 earns efficacy 1 on top of its bonus; the rest 0
    plain = score_programs(ScriptedDefender(items), items, texts, clean, ScoringConfig(k=3))
    assert [s.ops[:1] for s in plain] == [("AddObject",)] * 4 + [("Perturb",), (), ("MoveObject",), ("OccludingPatch",)]
    assert [s.passed for s in plain] == [True] * 5 + [False, True, False]
    assert [s.reward for s in plain] == [1.0, 0, 0, 0, 0, -1.0, 0, 0]
    bonus = score_programs(ScriptedDefender(items), items, texts, clean, ScoringConfig(k=3, diversity_bonus=0.3))
    # 6 passing programs: 4 add (share 4/6), 1 perturb, 1 move (1/6 each)
    add, rare = 0.3 * (1 - 4 / 6), 0.3 * (1 - 1 / 6)
    assert [s.reward for s in bonus] == pytest.approx([1.0 + add, add, add, add, rare, -1.0, rare, 0.0])


def test_scripted_success_counts_only_passing_clean_correct():
    items = _items(6)
    d = ScriptedDefender(items)
    progs = RandomAttacker().propose(items)
    scored = score_programs(d, items, progs, [True, True, True, False, False, False], ScoringConfig(k=3))
    for s, cc in zip(scored, [True, True, True, False, False, False]):
        if s.passed and cc:
            assert s.reward == 1.0 and s.success
        elif s.passed:
            assert s.reward == 0.0 and not s.success


class ProbDefender(ScriptedDefender):
    """Believes the right option with probability 0.9 on a clean image and ``edited`` on an
    edited one (the rest spread over the other options)."""

    def __init__(self, items, edited):
        super().__init__(items)
        self.edited = edited

    def option_probs(self, images, questions, **_):
        out = []
        for im, q in zip(images, questions):
            m, right = len(q.options), "ABCD".index(q.answer)
            pr = 0.9 if im.tobytes() in self.clean else self.edited
            p = np.full(m, (1 - pr) / (m - 1))
            p[right] = pr
            out.append(p)
        return out


def test_breakdown_by_group_hand_counted():
    from aot.attack.scoring import Scored, breakdown

    def sc(passed, clean, wrong):
        return Scored("", True, passed, (), ("AddObject",), clean, (not wrong,) if passed and clean else (), 0.0)

    # group a: 4 proposals, 3 pass, 2 of those on clean-correct questions, 1 flipped
    # group b: 1 proposal that fails integrity
    scored = [sc(True, True, True), sc(True, True, False), sc(True, False, False), sc(False, True, False), sc(False, True, False)]
    out = breakdown(scored, ["a", "a", "a", "a", "b"])
    assert out["a"] == {"n": 4, "integrity_pass_rate": 0.75, "success_rate": 0.25, "flip_rate_passing": 0.5}
    assert out["b"]["n"] == 1 and out["b"]["success_rate"] == 0.0 and np.isnan(out["b"]["flip_rate_passing"])
    with pytest.raises(ValueError, match="5 proposals but 1 keys"):
        breakdown(scored, ["a"])


@pytest.mark.parametrize("edited,flips", [(0.6, False), (0.1, True)])
def test_probability_efficacy_scores_one_minus_p_right(edited, flips):
    items = _items(6)
    progs = HeuristicAttacker().propose(items)  # passes integrity: the defender is asked
    clean = [True, True, True, False, False, False]
    scored = score_programs(ProbDefender(items, edited), items, progs, clean, ScoringConfig(efficacy="prob"))
    assert any(s.passed and cc for s, cc in zip(scored, clean))
    for s, cc in zip(scored, clean):
        if s.passed and cc:  # 1 - p(right); a flip when a wrong option becomes the most likely
            assert s.reward == pytest.approx(1 - edited) and s.success == flips
        elif s.passed:
            assert s.reward == 0.0
    with pytest.raises(ValueError, match="efficacy"):
        ScoringConfig(efficacy="vibes")


def test_option_probs_match_one_question_at_a_time():
    items = _items(3)
    d = load_defender("base")
    ims, qs = [it.image for it in items], [it.question for it in items]
    batched = d.option_probs(ims, qs)
    for p, q in zip(batched, qs):
        assert p.shape == (len(q.options),) and p.sum() == pytest.approx(1.0) and (p >= 0).all()
    # left padding and batching do not change a row's figures
    for i in range(3):
        np.testing.assert_allclose(d.option_probs(ims[i : i + 1], qs[i : i + 1], batch_size=1)[0], batched[i], atol=1e-4)
    with pytest.raises(ValueError, match="2 images but 3 questions"):
        d.option_probs(ims[:2], qs)


@pytest.mark.slow
def test_cold_start_then_two_grpo_steps_change_parameters():
    torch.manual_seed(0)
    items = _items(8)
    att = ModelAttacker(load_defender("tiny-qwen2.5-vl"), max_new_tokens=8)
    # one short program for every item: a few SFT steps make sampled outputs parse sometimes
    res = cold_start(att, [(it, "remove 0") for it in items], SFTConfig(learning_rate=5e-3, max_steps=12, batch_size=8))
    assert res["attacker/sft_loss_last"] < res["attacker/sft_loss_first"]
    before = {k: v.detach().clone() for k, v in att.model.named_parameters()}
    cfg = AttackerRLConfig(rl=RLConfig(learning_rate=1e-3, weight_decay=0.0, num_generations=4, prompts_per_step=4, max_steps=2, max_completion_length=8, ds_mode="std"))
    m = train_attacker(att, ScriptedDefender(items), items, cfg)
    assert m["attacker/steps"] == 2
    delta = sum((before[k] - v.detach()).abs().sum().item() for k, v in att.model.named_parameters())
    assert m["attacker/kept_groups"] > 0 and delta > 0
    ev = evaluate_attacker(att, ScriptedDefender(items), items)
    assert set(ev) >= {"success_rate", "integrity_pass_rate", "parse_rate", "op_mix"}


def test_clean_correct_items_keeps_only_attackable_questions():
    from aot.attack.train import clean_correct_items

    items, clean = clean_correct_items(["a", "b", "c", "d"], [True, False, True, False])
    assert items == ["a", "c"] and clean == [True, True]
    # none right: keep everything rather than train on nothing
    items, clean = clean_correct_items(["a", "b"], [False, False])
    assert items == ["a", "b"] and clean == [False, False]
    # fewer than one batch of prompts: cycled up to it (else GRPO would take no step)
    items, clean = clean_correct_items(["a", "b", "c"], [False, True, False], min_items=4)
    assert items == ["b", "b", "b", "b"] and clean == [True] * 4
    items, clean = clean_correct_items(["a", "b", "c"], [True, True, False], min_items=3)
    assert items == ["a", "b", "a"]


@pytest.mark.slow
def test_attacker_train_run_pads_the_cold_start_with_heuristic_edits(tmp_path):
    import json

    from aot.attack.data import sft_examples
    from aot.attack.train import train_attacker_run
    from aot.data.build import build_sft
    from aot.data.sft import SFTBuildConfig

    build_sft(SFTBuildConfig(n=6, attacker="heuristic", defender="scripted:0.5"), tmp_path / "sft")
    own = len(sft_examples(tmp_path / "sft", min_examples=100))
    assert own < 20  # 6 records cannot fill it: the heuristic tops it up
    m = train_attacker_run(
        tmp_path / "run", "base", "cold-start", tmp_path / "sft", 0, None,
        ["sft_min_examples=20", "sft.max_steps=1", "sft.batch_size=4"], 0, 0, log=lambda *_: None,
    )
    assert m["attacker/sft_heuristic_examples"] == 20 - own and m["attacker/sft_examples"] == 20
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["attacker/sft_examples"] == 20
    assert ModelAttacker.load(tmp_path / "run" / "attacker").propose(_items(2))[0].strip()
