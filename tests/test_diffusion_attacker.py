"""The diffusion attacker: proposals as box + description, the reward hand-checked (and equal to
the program attacker's for the same verdict and answers), Flow-GRPO through the CLI with resume,
its evaluation beside the program attackers, one tiny self-play iteration, and bad options."""

from __future__ import annotations

import base64
import json
import re
from functools import partial

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from aot.attack.data import attack_items, eval_attack_items  # noqa: E402
from aot.attack.diffusion import DiffusionAttackerConfig, fill_proposal, fill_reward  # noqa: E402
from aot.attack.scoring import ScoringConfig, score_programs  # noqa: E402
from aot.backends import get_backend  # noqa: E402
from aot.backends.base import random_box  # noqa: E402
from aot.cli import main  # noqa: E402
from aot.editors.box_ops import BoxEdit, box_mask  # noqa: E402
from aot.judge.detections import Detection  # noqa: E402
from aot.judge.verdict import question_refs  # noqa: E402
from aot.rewards import attacker_score  # noqa: E402
from aot.rl.flow_grpo import FillRequest  # noqa: E402

WORLD = get_backend("world")
TINY = ["--editor", "tiny", "--judge", "untrained", "--set", "diffusion.requests_per_step=2", "--set", "diffusion.flow_grpo.group_size=2",
        "--set", "diffusion.sample_steps=2", "--set", "scoring.efficacy=prob", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="module")
def items():
    return attack_items(6, 300)


class Scripted:
    """Right on every clean image; on any other image its k samples follow ``pattern``
    (True = right); ``clean_wrong`` makes it wrong on the clean images too."""

    def __init__(self, clean_images, pattern=(False, False, False), clean_wrong=False):
        self.clean = {im.tobytes() for im in clean_images}
        self.pattern, self.clean_wrong = pattern, clean_wrong

    def answer(self, images, questions, num_return_sequences=1, **_):
        wrong = lambda q: "B" if q.answer != "B" else "A"  # noqa: E731
        out = []
        for im, q in zip(images, questions):
            if im.tobytes() in self.clean:
                out.append([wrong(q) if self.clean_wrong else q.answer] * num_return_sequences)
            else:
                out.append([q.answer if ok else wrong(q) for ok in self.pattern[:num_return_sequences]])
        return out


def _off_target(item, seed=0):
    """A mask clear of every target box, and the image painted grey inside it (pasted back)."""
    box = random_box(np.random.default_rng(seed), 96, 96, [t.box for t in item.question.targets])
    mask = box_mask(item.image.shape[:2], box)
    edited = item.image.copy()
    edited[mask] = 128
    return box, mask, edited


def _request(item, mask, edit, clean_correct=True):
    return FillRequest(item.image, mask, edit.description, {"item": item, "edit": edit, "text": "add ...", "clean_correct": clean_correct})


# --- proposals ---------------------------------------------------------------------------------
def test_a_program_becomes_the_box_and_description_of_its_first_object_op(items):
    it = items[0]
    o = it.scene.objects[0]
    edit, why = fill_proposal(it, "patch 1 1 5 5 grey\nadd small red metal circle 40 12", WORLD)
    assert why == "" and (edit.op, edit.description) == ("add", "small red metal circle")
    x0, y0, x1, y1 = edit.box  # the new object's box grown by one pixel
    assert x0 < 40 < x1 and y0 < 12 < y1 and (x1 - x0) == (y1 - y0)
    removed, _ = fill_proposal(it, f"remove {o.id}", WORLD)
    ob = o.box()
    assert removed == BoxEdit("remove", (max(0, ob[0] - 1), max(0, ob[1] - 1), min(96, ob[2] + 1), min(96, ob[3] + 1)))
    new_colour = "red" if o.color != "red" else "blue"
    replaced, _ = fill_proposal(it, f"replace {o.id} color={new_colour}", WORLD)
    assert replaced.op == "replace" and replaced.description == f"{o.size} {new_colour} {o.material} {o.shape}" and replaced.box == removed.box
    twin, _ = fill_proposal(it, f"twin {o.id} color={new_colour}", WORLD)
    assert twin.op == "add" and twin.description == f"{o.size} {new_colour} {o.material} {o.shape}"
    assert fill_proposal(it, "patch 1 1 5 5 grey", WORLD) == (None, "no fill: the program has no add, twin, replace or remove")
    assert fill_proposal(it, "paint it red", WORLD)[1].startswith("unparseable")
    assert fill_proposal(it, "remove 999", WORLD)[1].startswith("apply error")


# --- the reward ----------------------------------------------------------------------------------
def test_fill_reward_hand_checked_and_equal_to_the_program_attackers(items):
    it = next(i for i in items if i.question.targets)
    scoring = ScoringConfig(k=3, integrity_penalty=-0.25)
    nothing = lambda images: [[] for _ in images]  # noqa: E731  (a judge that sees no object)
    box, mask, edited = _off_target(it)
    edit = BoxEdit("add", box, "small red metal circle")
    reward = partial(fill_reward, scoring=scoring, detect=nothing)

    # a fill over a target, painted over: low SSIM -> the integrity penalty
    t = it.question.targets[0].box
    over = box_mask(it.image.shape[:2], t)
    ruined = it.image.copy()
    ruined[over] = 0
    d = Scripted([it.image])
    assert reward(ruined[None], [_request(it, over, BoxEdit("add", t, "x"))], defender=d) == [-0.25]
    # clear of the targets, every sample wrong on the fill, right on the clean image -> 1
    assert reward(edited[None], [_request(it, mask, edit)], defender=d) == [1.0]
    # wrong, right, wrong: the longest wrong run is 1 of 3
    assert reward(edited[None], [_request(it, mask, edit)], defender=Scripted([it.image], (False, True, False))) == [pytest.approx(1 / 3)]
    # the defender was already wrong on the clean image: nothing to flip -> 0
    assert reward(edited[None], [_request(it, mask, edit, clean_correct=False)], defender=Scripted([it.image], clean_wrong=True)) == [0.0]
    # the judge sees a new object in the fill that fits the question's first reference -> penalty
    ref = question_refs(it.question.spec)[0][1]
    attrs = {"color": "red", "shape": "circle", "material": "metal", "size": "small"} | ref
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    sees_copy = lambda images: [[], [Detection(cx, cy, **attrs)]]  # noqa: E731
    assert fill_reward(edited[None], [_request(it, mask, edit)], defender=d, scoring=scoring, detect=sees_copy) == [-0.25]

    # the same numbers as the program attacker's for the same verdict and answers
    for pattern, want in (((False, False, False), 1.0), ((False, True, False), 1 / 3), ((True, True, True), 0.0)):
        assert attacker_score(True, True, True, pattern) == pytest.approx(want)
        prog = f"patch {box[0]} {box[1]} {box[2]} {box[3]} grey"
        by_program = score_programs(Scripted([it.image], pattern), [it], [prog], [True], scoring)[0]
        by_fill = reward(edited[None], [_request(it, mask, edit)], defender=Scripted([it.image], pattern))[0]
        assert by_program.passed and by_program.reward == pytest.approx(by_fill) == pytest.approx(want)


# --- Flow-GRPO through the CLI ---------------------------------------------------------------------
def _lora(path):
    from safetensors.torch import load_file

    return load_file(str(path / "attacker" / "lora.safetensors"))


def test_two_flow_grpo_steps_through_the_cli_change_the_lora_and_resume_continues(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["attacker", "train", "--kind", "diffusion", "--out", str(a), "--steps", "2", "--items", "6", *TINY]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["attacker/steps"] == 2 and out["resumed_from"] == 0
    lora = _lora(a)
    ups = [k for k in lora if "lora_B" in k]
    assert ups and any(lora[k].abs().sum() > 0 for k in ups)  # LoRA B starts at zero: the steps moved it
    curve = json.loads((a / "curve.json").read_text())["curve"]
    assert [r["step"] for r in curve] == [1, 2] and all(r["policy/ratio_mean"] == pytest.approx(1.0) for r in curve)

    # one step, then resumed to two: the same weights as the unbroken run
    assert main(["attacker", "train", "--kind", "diffusion", "--out", str(b), "--steps", "1", "--items", "6", *TINY]) == 0
    assert main(["attacker", "train", "--kind", "diffusion", "--out", str(b), "--steps", "2", "--items", "6", *TINY]) == 0
    capsys.readouterr()
    assert json.loads((b / "metrics.json").read_text())["resumed_from"] == 1
    assert [r["step"] for r in json.loads((b / "curve.json").read_text())["curve"]] == [1, 2]
    other = _lora(b)
    assert all(torch.equal(lora[k], other[k]) for k in lora)

    # another seed cannot resume this run
    assert main(["attacker", "train", "--kind", "diffusion", "--out", str(b), "--steps", "3", "--items", "6", "--seed", "1", *TINY]) == 1


def test_diffusion_eval_reports_beside_the_program_attackers_on_the_same_items(capsys):
    from aot.attack import make_attacker
    from aot.attack.train import evaluate_attacker
    from aot.models.defender import load_defender

    assert main(["attacker", "eval", "--kind", "diffusion", "--editor", "tiny", "--judge", "untrained", "--n", "4", "--baselines", "random", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    diff, base = res["diffusion"], res["baselines"]["random"]
    assert diff["n"] == base["n"] == 4 and diff["attacker"] == "untrained" and diff["proposer"] == "random"
    assert 0 <= diff["success_rate"] <= diff["integrity_pass_rate"] <= 1
    again = evaluate_attacker(make_attacker("random"), load_defender("base"), eval_attack_items(4, 0))
    assert base["success_rate"] == again["success_rate"] and base["integrity_pass_rate"] == again["integrity_pass_rate"]


# --- the loop -------------------------------------------------------------------------------------
def test_attacker_kind_diffusion_runs_one_self_play_iteration_and_resumes(tmp_path):
    from aot.commands.train import resolve_config
    from aot.config import load_config
    from aot.io import decode_png
    from aot.selfplay import SelfPlayConfig, curriculum_items, phases, run_selfplay
    from aot.world.types import Scene
    from aot.world.render import render

    sets = ["iterations=1", "attacker.kind=diffusion", "attacker.diffusion.judge=untrained", "attacker.diffusion.steps=1",
            "attacker.diffusion.requests_per_step=2", "attacker.diffusion.flow_grpo.group_size=2", "attacker.diffusion.sample_steps=2",
            "attacker.scoring.efficacy=prob", "eval_suite=''"]
    cfg = load_config(SelfPlayConfig, resolve_config("micro"), sets)
    assert phases(cfg) == ["warmup", "iter1.attacker", "iter1.curriculum", "iter1.defender", "eval"]
    out = tmp_path / "run"
    run_selfplay(cfg, out, log=lambda _: None, stop_after="iter1.attacker")
    summary = run_selfplay(cfg, out, resume=True, log=lambda _: None)
    assert summary["phases"] == phases(cfg)
    from safetensors.torch import load_file

    lora = load_file(str(out / "attackers" / "iter1" / "lora.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in lora.items() if "lora_B" in k)
    rows = [json.loads(line) for line in (out / "curricula" / "iter1.jsonl").read_text().splitlines()]
    fills = [r for r in rows if "image_png" in r]
    assert fills, rows
    images = curriculum_items(rows)
    for r, qa in zip(rows, images):
        if "image_png" not in r:
            continue
        clean = render(Scene.from_dict(r["scene"]))
        x0, y0, x1, y1 = r["fill"]["box"]
        outside = np.ones(clean.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(qa.image[outside], clean[outside])  # pasted back: only the box was painted
        assert np.array_equal(qa.image, decode_png(base64.b64decode(r["image_png"])))
        assert r["fill"]["op"] in ("add", "replace", "remove") and r["program"]


# --- bad options ------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, code, words", [
    (["attacker", "train", "--kind", "pixels", "--out", "{t}/a"], 2, "unknown kind 'pixels'"),
    (["attacker", "train", "--out", "{t}/a", "--editor", "tiny"], 2, "only with --kind diffusion"),
    (["attacker", "train", "--kind", "diffusion", "--out", "{t}/a", "--init", "{t}"], 2, "only with --kind program"),
    (["attacker", "train", "--kind", "diffusion", "--out", "{t}/a", "--judge", "untrained", "--proposer", "nobody"], 1, "proposer: 'nobody' is neither fixed"),
    (["attacker", "train", "--kind", "diffusion", "--out", "{t}/a", "--judge", "untrained", "--editor", "{t}"], 1, "is not a saved world editor"),
    (["attacker", "train", "--kind", "diffusion", "--out", "{t}/a", "--judge", "{t}/nojudge"], 1, "nojudge does not exist"),
    (["attacker", "eval", "--kind", "diffusion", "--attacker", "{t}"], 2, "neither untrained nor the folder of a trained diffusion attacker"),
    (["attacker", "eval", "--kind", "diffusion", "--judge", "untrained", "--baselines", "randm"], 2, "unknown attacker 'randm'"),
    (["train", "--config", "micro", "--out", "{t}/r", "--set", "attacker.kind=diffusion", "--set", "attacker.diffusion.judge="], 2, "attacker.diffusion.judge: give a world judge"),
    (["train", "--config", "micro", "--out", "{t}/r", "--set", "attacker.kind=pixels"], 2, "kind must be program or diffusion"),
    (["train", "--config", "micro", "--out", "{t}/r", "--set", "attacker.kind=diffusion", "--set", "attacker.diffusion.judge=untrained",
      "--set", "curriculum.source=random"], 2, "curriculum.source 'random' uses none"),
    (["bench", "flow-grpo", "--editor", "nowhere"], 2, "neither tiny, random nor a saved world editor"),
])
def test_bad_diffusion_options_give_one_line(tmp_path, capfd, monkeypatch, argv, code, words):
    monkeypatch.delenv("AOT_DEBUG", raising=False)
    got = main([a.format(t=tmp_path) for a in argv])
    cap = capfd.readouterr()
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", cap.out + cap.err).split())  # rich's error box unwrapped
    assert "Traceback" not in text and got == code, text
    assert words in text, text
    if code == 1:
        lines = [l for l in cap.err.splitlines() if l.strip()]
        assert lines[-1].startswith("error: ") and sum(l.startswith("error") for l in lines) == 1, cap.err


def test_the_config_check_names_the_key():
    with pytest.raises(ValueError, match="x.judge"):
        DiffusionAttackerConfig(judge="").check("x.")
    DiffusionAttackerConfig(judge="untrained").check()


def test_bench_flow_grpo_reports_rollouts_and_a_step(capsys):
    assert main(["bench", "flow-grpo", "--editor", "tiny", "--requests", "1", "--group-size", "2", "--sample-steps", "2", "--repeats", "1", "--json", "--threads", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (res["size"], res["requests"], res["group_size"]) == (64, 1, 2)
    assert res["rollouts_per_s"] == pytest.approx(2 / res["rollout_seconds"])
    assert res["step_seconds"] == pytest.approx(res["rollout_seconds"] + res["update_seconds"])


def test_the_default_program_attacker_hashes_as_before_the_setting():
    from aot.commands.train import resolve_config
    from aot.config import load_config
    from aot.selfplay import SelfPlayConfig, resume_hash

    micro = load_config(SelfPlayConfig, resolve_config("micro"))
    assert resume_hash(micro) == "463d484acea4e7a4"  # the value before attacker.kind existed
    diffusion = load_config(SelfPlayConfig, resolve_config("micro"), ["attacker.kind=diffusion", "attacker.diffusion.judge=untrained"])
    assert resume_hash(diffusion) != resume_hash(micro)


def test_the_default_judge_is_the_shipped_one_and_reads_a_render():
    """'base' (the default) is the judge in aot/assets/world_judge: on held-out simple scenes it
    places every object and reads its colour and shape (a random judge finds nothing)."""
    from aot.attack.diffusion import DiffusionAttackerConfig, load_detector
    from aot.judge.detections import match, truth_detections
    from aot.judge.model import draw_scenes
    from aot.seeds import eval_item_seed

    assert DiffusionAttackerConfig().judge == "base"
    DiffusionAttackerConfig().check()  # no error: the shipped judge exists
    scenes, images = draw_scenes([eval_item_seed(7, 0, i) for i in range(20)], "simple")
    total = None
    for s, d in zip(scenes, load_detector("base")(images)):
        c = match(d, truth_detections(s, 0.5))
        total = c if total is None else total + c
    summary = total.summary()
    assert summary["precision"] >= 0.95 and summary["recall"] >= 0.95 and summary["exact_recall"] >= 0.9


def test_the_shipped_world_editor_paints_what_it_is_told():
    """The shipped born editor (the default ``editor: base``) fills held-out boxes so that the
    shipped judge reads the described colour and shape (measured 1,000 fills: docs/diffusion-attacker.md)."""
    from aot.attack.diffusion import DiffusionAttackerConfig, load_detector, load_fill_editor
    from aot.editors.world_fidelity import measure_fidelity

    assert DiffusionAttackerConfig().editor == "base"
    DiffusionAttackerConfig().check()  # no error: the shipped editor exists
    editor = load_fill_editor("base", steps=8)
    assert type(editor.pipe.transformer).__name__ == "UNetFillTransformer"
    res = measure_fidelity(editor, load_detector("base"), n=24, regime="simple", ops=("add", "replace"))
    assert res["described"] >= 0.6 and res["outside_identical"] == 1.0
