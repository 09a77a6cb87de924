"""Grammar-constrained decoding of the edit language: the automaton agrees with the parser,
the logits processor masks what it should, and a random-init attacker's constrained samples
all parse (while its unconstrained ones do not)."""

import random

import numpy as np
import pytest
import torch

from aot.attack import AttackItem
from aot.attack.constrained import EditGrammar, EditProgramLogitsProcessor, scene_bounds, token_strings
from aot.attack.model import init_attacker
from aot.edits import EditParseError, format_program, parse_program, random_program
from aot.world import render, sample_question, sample_scene


def _parses(text: str, max_ops: int = 4) -> bool:
    try:
        parse_program(text, max_ops=max_ops)
        return True
    except EditParseError:
        return False


def _items(n):
    rng = np.random.default_rng(0)
    out = []
    for s in range(n):
        sc = sample_scene(s, "simple")
        out.append(AttackItem(sc, render(sc), sample_question(sc, rng, "attribute"), s))
    return out


@pytest.fixture(scope="module")
def attacker():
    return init_attacker("tiny-qwen2.5-vl", seed=0, max_new_tokens=24, batch_size=32)


@pytest.fixture(scope="module")
def tok(attacker):
    return attacker.vlm.tokenizer


# --- the automaton ---------------------------------------------------------------------
def test_grammar_agrees_with_parser_on_mutated_programs():
    g = EditGrammar()
    rng, r = np.random.default_rng(0), random.Random(0)
    texts = [format_program(random_program(sample_scene(s, "simple"), rng, max_ops=4)) for s in range(60)]
    texts += ["photo", "photo seed=2 blur=0.5 noise=31.9999", "replace 3 shape=ring color=blue", "patch 9 99 10 100 grey", "perturb 1023 0 1024 1 32 2147483647"]
    assert all(g.accepts(t) for t in texts)
    alpha = sorted(g.alphabet)
    accepted = 0
    for _ in range(4000):
        t = r.choice(texts)
        for _ in range(r.randint(1, 3)):
            i, c, op = r.randrange(len(t) + 1), r.choice(alpha), r.random()
            t = t[:i] + c + t[i:] if op < 0.4 else t[:i] + t[i + 1 :] if op < 0.7 else t[:i] + c + t[i + 1 :]
        assert g.accepts(t) == _parses(t), repr(t)
        accepted += g.accepts(t)
    assert 0 < accepted < 4000


@pytest.mark.parametrize("text", ["patch 1024 0 1025 1 grey", "patch 5 5 5 6 grey", "photo ", "photo seed=1 seed=2", "remove 01", "remove 10000",
                                  "photo blur=3.0001", "photo brightness=0.4999", "replace 3", "remove 3\n\n", "photo\nphoto\nphoto\nphoto\nphoto", "photo blur=.5"])
def test_grammar_rejects_what_the_parser_rejects(text):
    assert not _parses(text) and not EditGrammar().accepts(text)


def test_random_walks_parse_and_min_chars_is_exact():
    """Every prefix the automaton accepts can be finished, and ``min_chars`` drops by exactly one
    along some character (what keeps the token budget from dead-ending)."""
    g, r = EditGrammar(max_ops=2), random.Random(1)
    alpha = sorted(g.alphabet)
    for _ in range(300):
        s, text = g.start, ""
        while True:
            nxt = [(c, s2) for c in alpha if (s2 := g.step(s, c)) is not None]
            m = g.min_chars(s)
            assert (m == 0) == g.can_end(s)
            assert m == 0 or min(g.min_chars(s2) for _, s2 in nxt) == m - 1
            if m == 0 and (r.random() < 0.15 or not nxt):
                break
            c, s = r.choice(nxt)
            text += c
        assert _parses(text, max_ops=2), repr(text)


# --- the processor ---------------------------------------------------------------------
def _allowed(proc, tok, prefix: str, prompt_len: int = 5) -> set[int]:
    """Token ids the processor allows after ``prefix`` (fed one token at a time, as generate does)."""
    ids = tok(prefix, add_special_tokens=False)["input_ids"] if prefix else []
    proc.reset()
    seq = torch.full((1, prompt_len), tok.pad_token_id, dtype=torch.long)
    for t in [None] + ids:
        if t is not None:
            seq = torch.cat([seq, torch.tensor([[t]])], dim=1)
        out = proc(seq, torch.zeros(1, len(tok)))
    return set(torch.nonzero(torch.isfinite(out[0])).flatten().tolist())


def test_processor_masks_hand_checked_cases(tok):
    proc = EditProgramLogitsProcessor(tok)
    strings = token_strings(tok)
    eos = tok.eos_token_id
    # after 'remove ': exactly the tokens made of digits, never '0' followed by more digits
    after = _allowed(proc, tok, "remove ")
    digit_toks = {i for i, s in enumerate(strings) if s and s.isdigit() and (s == "0" or s[0] != "0")}
    assert after == digit_toks and eos not in after
    # after 'remove 3': more digits, a newline or EOS; no space (remove takes one argument)
    after = _allowed(proc, tok, "remove 3")
    assert eos in after and tok.convert_tokens_to_ids("Ċ") in after and tok.convert_tokens_to_ids("Ġ") not in after
    assert all(strings[i].isdigit() for i in after - {eos, tok.convert_tokens_to_ids("Ċ")})
    # x0 must leave room for x1 > x0: 'patch 102' may not go on with '4' (x0 <= 1023)
    after = _allowed(proc, tok, "patch 102")
    assert tok.convert_tokens_to_ids("3") in after and tok.convert_tokens_to_ids("4") not in after
    # the first token: op names and their prefixes only, never EOS or a space
    first = {strings[i] for i in _allowed(proc, tok, "")}
    assert {"add", "remove", "photo"} <= first and all(s.isalpha() for s in first)


def test_relative_ops_take_only_the_rows_ids():
    g = EditGrammar(ids=[3, 5])
    assert g.accepts("twin 3 color=red shape=ring\nmimic 5") and g.accepts("mimic 3\nmimic 3")
    assert not g.accepts("mimic 4") and not g.accepts("twin 3") and not g.accepts("twin 3 color=teal")
    g = EditGrammar(ids=[])  # no object: the ops that name one are left out
    assert not g.accepts("mimic 0") and g.accepts("patch 0 0 1 1 grey")


def test_scene_bounds_limit_ids_and_coordinates(tok):
    items = _items(3)
    b = scene_bounds([it.scene for it in items], max_ops=1)
    assert b == {"max_id": max(it.scene.next_id() for it in items) - 1, "max_coord": 64}
    proc = EditProgramLogitsProcessor(tok, max_ops=1, max_id=3, max_coord=64)
    strings = token_strings(tok)
    assert {strings[i] for i in _allowed(proc, tok, "remove ")} == {"0", "1", "2", "3"}
    assert tok.convert_tokens_to_ids("4") not in _allowed(proc, tok, "patch 6")  # x0 <= 63
    assert tok.convert_tokens_to_ids("4") in _allowed(proc, tok, "patch 0 0 6")  # x1 <= 64


def test_processor_budget_forces_a_finished_program(tok):
    """With a budget of 6 tokens every row ends in a complete program, whatever the logits."""
    proc = EditProgramLogitsProcessor(tok, max_new_tokens=6)
    g = torch.Generator().manual_seed(0)
    ids = torch.full((32, 4), tok.pad_token_id, dtype=torch.long)
    for _ in range(6):
        scores = proc(ids, torch.randn(32, len(tok), generator=g) * 5)
        ids = torch.cat([ids, torch.multinomial(torch.softmax(scores, -1), 1, generator=g)], dim=1)
    texts = tok.batch_decode(ids[:, 4:], skip_special_tokens=True)
    assert all(_parses(t) for t in texts), texts


@pytest.mark.parametrize("budget,seed", [(7, 1), (9, 2), (12, 3), (24, 4)])
def test_token_budget_never_dead_ends(tok, budget, seed):
    """Whole-word tokens count as one against the budget (so ``add`` lines fit), and still
    every row of random logits ends in a complete program within the budget."""
    proc = EditProgramLogitsProcessor(tok, max_new_tokens=budget, max_coord=96)
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((48, 4), tok.pad_token_id, dtype=torch.long)
    for _ in range(budget):
        scores = proc(ids, torch.randn(48, len(tok), generator=g) * 5)
        ids = torch.cat([ids, torch.multinomial(torch.softmax(scores, -1), 1, generator=g)], dim=1)
    texts = tok.batch_decode(ids[:, 4:], skip_special_tokens=True)
    assert all(_parses(t) for t in texts), texts


def test_add_lines_fit_a_24_token_budget(tok):
    """Regression: counting characters, ``add small red matte ring 0 0`` (28 characters) never
    fitted 24 tokens, so the constrained attacker could not add an object. Each token of a
    three-line add program (21 tokens) is allowed in turn."""
    proc = EditProgramLogitsProcessor(tok, max_new_tokens=24, max_coord=96)
    text = "add small red matte ring 10 12\nadd large blue metal circle 40 50\nadd medium cyan matte square 7 9"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) <= 23, len(ids)
    seq = torch.full((1, 4), tok.pad_token_id, dtype=torch.long)
    for t in ids:
        out = proc(seq, torch.zeros(1, len(tok)))
        assert torch.isfinite(out[0, t]), (tok.decode(seq[0, 4:]), tok.decode([t]))
        seq = torch.cat([seq, torch.tensor([[t]])], dim=1)
    assert torch.isfinite(proc(seq, torch.zeros(1, len(tok)))[0, tok.eos_token_id])
    # with characters counted (no whole-word costs) the first token could not be "add"
    g = EditGrammar(max_coord=96)
    assert g.min_chars(g.step(g.step(g.step(g.start, "a"), "d"), "d")) > 23


# --- a random-init attacker --------------------------------------------------------------
def test_constrained_random_attacker_samples_all_parse(attacker):
    attacker.constrained, attacker.do_sample = True, True
    texts = attacker.propose(_items(20))
    assert len(texts) == 20 and all(_parses(t) for t in texts), texts
    assert len(set(texts)) > 1  # sampled, not one forced string


def test_constrained_generate_with_several_samples_per_prompt(attacker):
    """``Defender.generate`` passes the processor through with ``num_return_sequences > 1`` too."""
    items = _items(4)
    proc = EditProgramLogitsProcessor(attacker.vlm.tokenizer, max_new_tokens=12)
    outs = attacker.vlm.generate([it.image for it in items], ["Write an edit program."] * 4, num_return_sequences=3, do_sample=True,
                                 max_new_tokens=12, seed=0, logits_processor=proc)
    assert [len(o) for o in outs] == [3] * 4 and all(_parses(t) for o in outs for t in o), outs


def _batch_allowed(proc, tok, prefix: str, rows: int, prompt_len: int = 5) -> list[set[str]]:
    """Per row, the token strings the processor allows after ``prefix`` (the same text in every row)."""
    ids = tok(prefix, add_special_tokens=False)["input_ids"]
    strings = token_strings(tok)
    seq = torch.full((rows, prompt_len), tok.pad_token_id, dtype=torch.long)
    for t in [None] + ids:
        if t is not None:
            seq = torch.cat([seq, torch.full((rows, 1), t)], dim=1)
        out = proc(seq, torch.zeros(rows, len(tok)))
    return [{strings[i] for i in torch.nonzero(torch.isfinite(r)).flatten().tolist()} for r in out]


def test_per_row_id_sets_follow_prompts_and_chunks(tok):
    """Row r of a call with k samples per prompt takes prompt r // k's ids; the next generate call
    (the next chunk of ``Defender.generate``) takes the following prompts; an empty set drops
    the ops that need an id."""
    proc = EditProgramLogitsProcessor(tok, max_ops=1, max_coord=64, row_ids=[[0, 2], [1], [3, 12], []], num_return_sequences=2)
    a = _batch_allowed(proc, tok, "remove ", rows=4)
    assert a[0] == a[1] == {"0", "2"} and a[2] == a[3] == {"1"}
    a = _batch_allowed(proc, tok, "move 1", rows=2, prompt_len=6)  # second call (chunk): prompt 2, ids 3 and 12
    assert a[0] == a[1] == {"2"}  # '1' may only go on to '12'
    first = _batch_allowed(proc, tok, "", rows=2, prompt_len=12)  # a new call: prompt 3, no objects
    assert {"add", "photo"} <= first[0] and not any(s.startswith(("rem", "mov", "rep")) for s in first[0] if s)
    with pytest.raises(ValueError, match="per-row id sets"):
        _batch_allowed(proc, tok, "", rows=2, prompt_len=5)  # past the last prompt
    proc.set_rows(None)
    assert _batch_allowed(proc, tok, "remove ", rows=3)[2] >= {"0", "1", "9"}
    # a removed object cannot be named again later in the program
    proc = EditProgramLogitsProcessor(tok, max_ops=3, max_coord=64, row_ids=[[0, 2], [0, 5]])
    a = _batch_allowed(proc, tok, "remove 0\nmove ", rows=2)
    assert a[0] == {"2"} and a[1] == {"5"}
    proc.reset()
    first = _batch_allowed(proc, tok, "remove 0\nremove 5\n", rows=2)[1]  # prompt 1 has no object left
    assert {"add", "photo"} <= first and not any(s.startswith(("rem", "mov", "rep")) for s in first if s)


def test_per_row_bounds_sampled_programs_name_own_ids_and_apply(attacker, monkeypatch):
    """``propose`` bounds each row to its own scene's ids: on items with 2-4 objects (and one
    with a gap in its ids) every sampled program names only ids of its scene and applies (no
    removed object named again). Chunks of ``batch_size`` keep the row-to-item mapping."""
    from aot.edits import apply_program
    from aot.edits.ops import MoveObject, RemoveObject, ReplaceAttrs

    items = _items(20)
    sc = items[1].scene  # 4 objects: drop id 1 -> ids 0, 2, 3
    sc = sc.with_objects(tuple(o for o in sc.objects if o.id != 1))
    items.append(AttackItem(sc, render(sc), sample_question(sc, np.random.default_rng(1), "attribute"), 99))
    assert len({len(it.scene.objects) for it in items}) >= 3
    for name, v in dict(constrained=True, do_sample=True, scene_bounds=True, batch_size=8).items():
        monkeypatch.setattr(attacker, name, v)
    named_total = 0
    for max_ops in (4, 1):
        monkeypatch.setattr(attacker, "max_ops", max_ops)
        texts = attacker.propose(items * 2)
        for it, t in zip(items * 2, texts):
            prog = parse_program(t, max_ops=max_ops)
            named = {op.id for op in prog if isinstance(op, (RemoveObject, ReplaceAttrs, MoveObject))}
            assert named <= {o.id for o in it.scene.objects}, (t, sorted(o.id for o in it.scene.objects))
            named_total += len(named)
            apply_program(it.scene, prog, it.image)  # raises if it does not apply
    assert named_total > 0  # some programs did name objects


def test_unconstrained_random_attacker_mostly_fails_to_parse(attacker):
    attacker.constrained, attacker.do_sample = False, True
    texts = attacker.propose(_items(20))
    assert sum(map(_parses, texts)) <= 2, texts


class _ScriptedDefender:
    """Answers correctly on the clean image, wrongly on any edited one (a stand-in for the frozen defender)."""

    def __init__(self, items):
        self.clean = {it.image.tobytes() for it in items}

    def answer(self, images, questions, num_return_sequences=1, **_):
        return [[q.answer if im.tobytes() in self.clean else ("B" if q.answer != "B" else "A")] * num_return_sequences for im, q in zip(images, questions)]


def test_grpo_rollouts_are_constrained(attacker, monkeypatch):
    """TRL's rollout generation goes through the processor: every rollout parses, and with
    scene bounds and one op every rollout also applies (runs last: it trains the shared attacker)."""
    from aot.attack import train
    from aot.rl import RLConfig

    seen: list[str] = []
    score = train.AttackerReward.__call__

    def record(self, completions, item_id, **kw):
        seen.extend(train.completion_text(c) for c in completions)
        return score(self, completions, item_id, **kw)

    monkeypatch.setattr(train.AttackerReward, "__call__", record)
    items = [it for it in _items(8) if it.scene.next_id() == 4][:2]  # same ids everywhere: in-bounds ids exist
    rl = RLConfig(learning_rate=1e-4, num_generations=4, prompts_per_step=2, max_steps=1, max_completion_length=10, ds_mode="std")
    m = train.train_attacker(attacker, _ScriptedDefender(items), items, train.AttackerRLConfig(rl=rl, max_ops=1))
    assert m["attacker/steps"] == 1 and len(seen) == 8
    assert all(_parses(t, max_ops=1) for t in seen), seen
    assert m["attacker/rollout_parse_rate"] == 1.0  # parsed and applied
