import pytest
import torch

from aot.rewards import completion_text, defender_reward, defender_score
from aot.rl import RLConfig, keep_completions, keep_groups

OPTS = ("left", "right", "above", "below")


@pytest.mark.parametrize(
    "completion,answer,expected",
    [
        (r"\boxed{B}", "B", 1.0),  # correct, exact format
        (r"right \boxed{B}", "B", 1.0),  # text before the box is fine; the box holds exactly the letter
        (r"\boxed{right}", "B", 0.8),  # correct by option text, not the exact letter format
        (r"\boxed{B. right}", "B", 0.8),
        (r"\boxed{A}", "B", 0.0),  # wrong
        (r"\boxed{left}", "B", 0.0),
        ("B", "B", 0.0),  # no box: no extracted choice
        (r"\boxed{A} no wait \boxed{B}", "B", 1.0),  # the last box counts
        (r"\boxed{B} no wait \boxed{A}", "B", 0.0),
        (r"\boxed{b}", "B", 0.8),  # lower-case letter extracts but is not the exact format
        (r"\boxed{E}", "B", 0.0),
        ("", "B", 0.0),
    ],
)
def test_defender_score(completion, answer, expected):
    assert defender_score(completion, answer, OPTS) == pytest.approx(expected)


def test_defender_reward_trl_signature():
    comps = [[{"role": "assistant", "content": r"\boxed{A}"}], r"\boxed{right}", [{"role": "assistant", "content": [{"type": "text", "text": r"\boxed{C}"}]}]]
    out = defender_reward(comps, answer=["A", "B", "D"], options=[OPTS] * 3, prompts=None, trainer_state=None)
    assert out == pytest.approx([1.0, 0.8, 0.0])
    with pytest.raises(TypeError):
        completion_text(42)


def test_dynamic_sampling_drops_exactly_saturated_groups():
    # 4 groups of 5: all wrong, all perfect, mixed, all 0.8 (correct, unformatted: mean 0.8 is kept)
    r = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0.8, 0, 0, 0.8, 0.8, 0.8, 0.8, 0.8], dtype=torch.float)
    assert keep_groups(r, 5).tolist() == [False, False, True, True]
    assert keep_completions(r, 5).tolist() == [False] * 10 + [True] * 10
    # thresholds are inclusive for dropping: mean exactly 0.01 / 0.99 is dropped
    edge = torch.tensor([0.05, 0, 0, 0, 0, 1, 1, 1, 1, 0.95])
    assert keep_groups(edge, 5).tolist() == [False, False]
    with pytest.raises(ValueError):
        keep_groups(torch.zeros(7), 5)


def test_rl_config_validation():
    with pytest.raises(ValueError, match="num_generations"):
        RLConfig(num_generations=1)
    with pytest.raises(ValueError, match="ds_low"):
        RLConfig(ds_low=0.5, ds_high=0.4)
    c = RLConfig()
    assert (c.loss_type, c.beta, c.epsilon_low, c.epsilon_high, c.num_generations, c.temperature) == ("dapo", 0.0, 0.2, 0.28, 5, 1.0)


from aot.rewards import attacker_score, longest_wrong_run


@pytest.mark.parametrize(
    "seq,run", [([], 0), ([True, True, True], 0), ([False, True, False], 1), ([False, False, True], 2), ([True, False, False], 2), ([False] * 3, 3)]
)
def test_longest_wrong_run(seq, run):
    assert longest_wrong_run(seq) == run


@pytest.mark.parametrize(
    "parsed,passed,clean,edited,expected",
    [
        (False, True, True, [False] * 3, -1.0),  # unparseable: fixed penalty
        (True, False, True, [False] * 3, 0.0),  # integrity fails: no credit however effective
        (True, True, False, [False] * 3, 0.0),  # defender wrong on clean anyway: nothing flipped
        (True, True, True, [True] * 3, 0.0),  # useless edit
        (True, True, True, [False, True, True], 1 / 3),
        (True, True, True, [False, True, False], 1 / 3),  # not consecutive
        (True, True, True, [True, False, False], 2 / 3),
        (True, True, True, [False] * 3, 1.0),  # all k wrong: maximal
    ],
)
def test_attacker_score(parsed, passed, clean, edited, expected):
    assert attacker_score(parsed, passed, clean, edited) == pytest.approx(expected)


def test_attacker_score_penalties_configurable():
    assert attacker_score(False, True, True, [False], parse_penalty=-0.5) == -0.5
    assert attacker_score(True, False, True, [False], integrity_penalty=-0.2) == -0.2


def test_attacker_score_probability_efficacy():
    # efficacy 1 - p(right option): the expected share of wrong samples
    assert attacker_score(True, True, True, [True], p_correct=0.25) == pytest.approx(0.75)
    assert attacker_score(True, True, True, [False], p_correct=1.0) == pytest.approx(0.0)
    # the gates come first: penalties and the clean-wrong case ignore the probability
    assert attacker_score(False, True, True, [True], p_correct=0.0) == -1.0
    assert attacker_score(True, False, True, [True], integrity_penalty=-0.5, p_correct=0.0) == -0.5
    assert attacker_score(True, True, False, [True], p_correct=0.0) == 0.0
    with pytest.raises(ValueError, match="probability"):
        attacker_score(True, True, True, [True], p_correct=1.5)


def test_std_mode_drops_constant_groups():
    r = torch.tensor([0, 0, 0, -1, -1, -1, 0, 0.5, 0, 1, 1, 1], dtype=torch.float)
    assert keep_completions(r, 3, mode="std").view(-1, 3)[:, 0].tolist() == [False, False, True, False]
    with pytest.raises(ValueError):
        keep_completions(r, 3, mode="nope")
    RLConfig(ds_mode="std", ds_low=-5, ds_high=5)  # thresholds unused in std mode
