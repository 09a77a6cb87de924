"""The self-play curriculum builder (effective edits first, clean-replay share, opponent pool)
with stand-in attackers and a scripted defender, and the training seed bases of the loop."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from aot.attack import HeuristicAttacker, RandomAttacker
from aot.commands.train import resolve_config
from aot.config import load_config
from aot.edits import apply_program, parse_program
from aot.eval.seeds import is_eval_seed
from aot.integrity import check
from aot.selfplay import SelfPlayConfig, build_curriculum
from aot.world.questions import Question
from aot.world.types import Scene


def _cfg(**over):
    return load_config(SelfPlayConfig, resolve_config("micro"), [f"{k}={v}" for k, v in over.items()])


def _flips(image: np.ndarray) -> bool:
    """The scripted defender is fooled by about half of the edited images (by a hash)."""
    return hashlib.sha256(image.tobytes()).digest()[0] % 2 == 0


class FirstCallClean:
    """A scripted defender. The builder asks about the clean images first (one call), then the
    edited ones: right on those clean images; on an edited image wrong iff ``_flips``."""

    def __init__(self):
        self.clean: set[bytes] | None = None

    def answer(self, images, questions, num_return_sequences=1, **_):
        if self.clean is None:
            self.clean = {im.tobytes() for im in images}
        wrong = lambda q: "B" if q.answer != "B" else "A"
        return [[q.answer if im.tobytes() in self.clean or not _flips(im) else wrong(q)] * num_return_sequences for im, q in zip(images, questions)]


class Tagged:
    """A stand-in pool attacker: proposes what ``inner`` would, and remembers for which items."""

    def __init__(self, inner):
        self.inner, self.asked = inner, []

    def propose(self, items):
        self.asked += [it.seed for it in items]
        return self.inner.propose(items)


def _edited_image(row):
    sc = Scene.from_dict(row["scene"])
    return sc, apply_program(sc, parse_program(row["program"])).image


def test_curriculum_effective_first_then_the_rest_then_clean_replay():
    cfg = _cfg(**{"curriculum.proposals": 16, "curriculum.size": 10, "curriculum.clean_replay": 0.5})
    rows, stats = build_curriculum(HeuristicAttacker(), FirstCallClean(), cfg, 1, [])
    edited = [r for r in rows if r["source"] != "replay"]
    replay = [r for r in rows if r["source"] == "replay"]
    assert rows == edited + replay  # replay after every edited row
    assert len(replay) == round(10 * 0.5) == stats["curriculum/clean_replay"] and all(r["program"] == "" for r in replay)
    assert len(edited) == min(10, stats["curriculum/passing"]) == stats["curriculum/edited"]
    eff = [r["effective"] for r in edited]
    assert any(eff) and not all(eff) and eff == sorted(eff, reverse=True)  # effective ones first
    for r in edited:  # every kept edit passes integrity, and "effective" is what the defender did
        from aot.world.render import render

        sc, img = _edited_image(r)
        q = Question.from_dict(r["question"])
        assert check(sc, render(sc), q, apply_program(sc, parse_program(r["program"]), render(sc))).passed
        assert r["effective"] == _flips(img)
    assert stats["curriculum/effective"] == sum(eff)
    # no replay share: no replay rows
    rows0, _ = build_curriculum(HeuristicAttacker(), FirstCallClean(), _cfg(**{"curriculum.proposals": 8, "curriculum.clean_replay": 0.0}), 1, [])
    assert all(r["source"] != "replay" for r in rows0)


@pytest.mark.parametrize("on", [True, False])
def test_opponent_pool_proposes_its_share(on):
    cfg = _cfg(**{"curriculum.proposals": 8, "curriculum.size": 8, "curriculum.clean_replay": 0.0,
                  "curriculum.opponent_pool": on, "curriculum.pool_share": 0.5})
    pool = [Tagged(RandomAttacker()), Tagged(HeuristicAttacker(relative=True))]
    current = Tagged(HeuristicAttacker())
    rows, _ = build_curriculum(current, FirstCallClean(), cfg, 2, pool)
    if not on:
        assert pool[0].asked == pool[1].asked == [] and len(current.asked) == 8
        assert {r["source"] for r in rows} == {"current"}
        return
    # 4 of 8 proposals from the pool, dealt round-robin; the current attacker gets the rest
    assert len(pool[0].asked) == len(pool[1].asked) == 2 and len(current.asked) == 4
    assert not set(current.asked) & set(pool[0].asked + pool[1].asked)
    by_seed = {r["seed"]: r for r in rows}
    for j, att in enumerate(pool):
        for s in att.asked:
            if s in by_seed:  # kept (it passed integrity): labelled with the pool attacker that wrote it
                assert by_seed[s]["source"] == f"pool{j}"
    assert any(r["source"].startswith("pool") for r in rows)


class _StubModel:
    """Stands in for the defender / attacker models in a loop run with training stubbed out."""

    def __init__(self):
        self.inner = HeuristicAttacker()
        self.defender = FirstCallClean()

    def propose(self, items):
        return self.inner.propose(items)

    def answer(self, *a, **k):
        self.defender.clean = None  # each scoring call starts with its clean images
        return self.defender.answer(*a, **k)

    def save(self, path):
        from pathlib import Path

        Path(path).mkdir(parents=True, exist_ok=True)


def test_seeds_whose_scene_bases_would_collide_or_reach_evaluation_are_rejected():
    """Seed bases are BASE + 10 * seed + iteration: seed 10 would reuse the next base (seed 10's
    replay is seed 0's attacker base) and seeds 20+ reach the evaluation range."""
    from aot.selfplay import SelfPlayConfig

    for seed in (10, 20, 35, 45, -1):
        with pytest.raises(ValueError, match="seed"):
            SelfPlayConfig(seed=seed)
    with pytest.raises(ValueError, match="iterations"):
        SelfPlayConfig(iterations=10)


@pytest.mark.parametrize("seed", [0, 1, 9])
def test_self_play_training_scenes_never_come_from_the_evaluation_range(seed, tmp_path, monkeypatch):
    """Every scene the loop trains on (warm-up, attacker RL, curricula and their clean replay)
    is recorded where scenes are sampled; none may be an evaluation seed. The loop runs for real
    with the models and optimisers stubbed out."""
    import aot.backends.world as bw
    import aot.data.build
    import aot.selfplay as sp

    cfg = _cfg(seed=seed, iterations=9, eval_suite="")
    seen: list[int] = []

    def recording(fn):
        def wrapped(s, *a, **k):
            seen.append(int(s))
            return fn(s, *a, **k)
        return wrapped

    monkeypatch.setattr(bw, "sample_scene", recording(bw.sample_scene))  # where every item of the loop is drawn
    trained: list[int] = []
    stub = _StubModel()
    monkeypatch.setattr(sp, "load_defender", lambda *_a, **_k: stub)
    monkeypatch.setattr(sp, "init_attacker", lambda *_a, **_k: stub)
    monkeypatch.setattr(sp, "monitor_sets", lambda _cfg: {"simple": [], "complex": [], "attack": []})  # eval range by design, never trained on
    monkeypatch.setattr(sp, "cold_start_examples", lambda *_a, **_k: ([], 0))
    monkeypatch.setattr(sp, "cold_start", lambda *_a, **_k: {})
    monkeypatch.setattr(sp, "train_defender", lambda d, items, c, *a, **k: trained.append(len(items)) or {})
    monkeypatch.setattr(sp, "train_attacker", lambda att, d, items, c, *a, **k: trained.append(len(items)) or {})
    monkeypatch.setattr(sp, "evaluate_attacker", lambda *_a, **_k: {"success_rate": 0.0, "integrity_pass_rate": 0.0, "parse_rate": 0.0, "op_mix": {}})
    monkeypatch.setattr(sp, "attacked_accuracy", lambda *_a, **_k: (0.0, {"success_rate": 0.0}))
    monkeypatch.setattr(aot.data.build, "build_sft", lambda *_a, **_k: {"records": 0})
    sp.run_selfplay(cfg, tmp_path / "run", log=lambda _s: None)
    assert len(trained) == 1 + 2 * 9  # warm-up, then attacker and defender RL per iteration
    assert len(seen) >= 8 + 9 * (4 + 8)  # at least the items asked for
    assert [s for s in seen if is_eval_seed(s)] == []
