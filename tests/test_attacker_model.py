"""The model attacker: prompt, malformed output handling, cold start and a 2-step GRPO run."""

import numpy as np
import pytest
import torch

from aot.attack import AttackItem, RandomAttacker
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
    assert " ".join(str(v) for v in it.question.targets[0].box) in p


def test_malformed_programs_score_penalty_without_crashing():
    items = _items(4)
    d = ScriptedDefender(items)
    texts = ["", "add purple unicorn 1 2", "\x00\x01garbage", RandomAttacker().propose(items[3:])[0]]
    scored = score_programs(d, items, texts, [True] * 4, ScoringConfig(k=3))
    assert [s.reward for s in scored[:3]] == [-1.0, -1.0, -1.0]
    assert all(not s.parsed and s.reasons for s in scored[:3])
    assert scored[3].parsed and scored[3].reward >= 0.0
    # a passing edit that changes pixels fools the scripted defender: full efficacy
    s = summarize(scored)
    assert s["parse_rate"] == 0.25 and s["n"] == 4


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
