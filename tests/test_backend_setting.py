"""The ``backend`` setting and the backend-neutral attackers: a run, an AOT-SFT build and an
evaluation on a second backend registered here, and the world's bytes and hashes unchanged."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import pytest

from aot.attack import RandomAttacker, make_attacker
from aot.attack.base import item_rng
from aot.attack.data import sft_examples
from aot.attack.model import has_grammar, item_prompt
from aot.attack.random_attacker import RANDOM_TAG
from aot.backends import BACKENDS, Backend, BackendConfig, Edit, Grown, Verdict, build_backend, get_backend
from aot.config import ConfigError, load_config, to_dict
from aot.data import SFTBuildConfig, build_sft
from aot.edits import format_program, random_program
from aot.seeds import EVAL_BASES, RUN_STRIDE, item_seed
from aot.vqa import Item, Question, Target

COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255)}


class BadFill(ValueError):
    pass


@dataclass(frozen=True)
class Shade:
    """An option given as a mapping in a config: the backend's background grey."""

    grey: int = 128


class Tiles(Backend):
    """A stand-in backend: grey 24x24 tiles with one coloured square (the target) whose colour
    the question asks. One op, ``fill X0 Y0 X1 Y1`` (paints black); the judge fails an edit that
    touches the target. ``data``: a file of colour names, one a line (default: red, blue)."""

    name: ClassVar[str] = "tiles"
    pools: ClassVar[tuple[str, ...]] = ("attack", "replay")
    question_kinds: ClassVar[tuple[str, ...]] = ("colour",)
    regimes: ClassVar[Mapping[str, int]] = {"tile": 24}
    replay_fields: ClassVar[tuple[str, ...]] = ("tile",)
    edit_errors: ClassVar[tuple[type[Exception], ...]] = (BadFill,)
    box_ops: ClassVar[tuple[str, ...]] = ("fill {box}",)

    def __init__(self, data: str | None = None, shade: Shade | None = None):
        self.colours = Path(data).read_text().split() if data else list(COLOURS)
        self.shade = shade or Shade()

    def _item(self, colour: str, x: int, seed: int) -> Item:
        img = np.full((24, 24, 3), self.shade.grey, np.uint8)
        img[8:14, x : x + 6] = COLOURS[colour]
        q = Question("colour", "What colour is the square?", ("red", "blue"), "AB"[list(COLOURS).index(colour)], (Target(0, (x, 8, x + 6, 14), "square"),), {})
        return Item(None, img, q, seed, meta={"colour": colour, "x": x})

    def items(self, split: str, n: int, slot: int, seed: int = 0, *, pool: str = "attack", kinds: Sequence[str] | None = None) -> list[Item]:
        base = slot if split == "train" else EVAL_BASES[0] + slot
        return [self._item(self.colours[i % len(self.colours)], 2 + (i * 5) % 14, item_seed(base, seed * RUN_STRIDE + i)) for i in range(n)]

    def grow(self, seed: int, rng: np.random.Generator, kind: str, source: str, target: str) -> Grown:
        return Grown(self._item(self.colours[int(rng.integers(len(self.colours)))], int(rng.integers(0, 18)), seed))

    def replay_key(self, item: Item) -> dict[str, Any]:
        return {"tile": {"colour": item.meta["colour"], "x": item.meta["x"]}}

    def replay(self, key: Mapping[str, Any], question: Question, seed: int = 0, image: np.ndarray | None = None) -> Item:
        return self._item(key["tile"]["colour"], key["tile"]["x"], seed)

    def parse(self, text: str) -> tuple[Any, ...]:
        ops = []
        for line in text.splitlines():
            w = line.split()
            if len(w) != 5 or w[0] != "fill" or not all(v.isdigit() for v in w[1:]):
                raise BadFill(f"not a fill: {line!r}")
            ops.append(Fill(*(int(v) for v in w[1:])))
        return tuple(ops)

    def edit(self, item: Item, program: Sequence[Any]) -> Edit:
        img = item.image.copy()
        for op in program:
            if op.x1 > 24 or op.y1 > 24:
                raise BadFill("off the tile")
            img[op.y0 : op.y1, op.x0 : op.x1] = 0
        mask = (img != item.image).any(axis=-1)
        boxes = tuple((op.x0, op.y0, op.x1, op.y1) for op in program)
        return Edit(img, tuple(program), boxes, tuple(range(len(program))), mask)

    def judge(self, item: Item, edit: Edit, cfg: Any = None) -> Verdict:
        assert cfg is None  # the world's integrity settings never reach another backend's judge
        t = item.question.targets[0].box
        hit = bool(edit.mask[t[1] : t[3], t[0] : t[2]].any())
        return Verdict(not hit, ("target painted",) if hit else (), {}, item.question.answer_text, None if hit else item.question.answer_text)


@dataclass(frozen=True)
class Fill:
    x0: int
    y0: int
    x1: int
    y1: int
    name: ClassVar[str] = "fill"


@pytest.fixture
def tiles(monkeypatch):
    monkeypatch.setitem(BACKENDS, "tiles", Tiles)
    return BackendConfig("tiles")


# --- the setting ----------------------------------------------------------------------------
def test_the_setting_names_a_registered_backend_and_an_existing_file(tiles, tmp_path):
    with pytest.raises(ValueError, match="unknown backend 'photo'.*did you mean photos"):
        BackendConfig("photo")
    with pytest.raises(ValueError, match="backend data file .*nope.jsonl does not exist"):
        BackendConfig("tiles", data=str(tmp_path / "nope.jsonl"))
    with pytest.raises(ValueError, match="is a folder"):
        BackendConfig("tiles", data=str(tmp_path))
    with pytest.raises(ValueError, match="'world' takes no data file"):
        (tmp_path / "x.txt").write_text("red\n")
        build_backend(BackendConfig("world", data=str(tmp_path / "x.txt")))
    with pytest.raises(ValueError, match="no option 'colour'; its options: shade"):
        build_backend(BackendConfig("tiles", options={"colour": 1}))


def test_options_are_built_into_the_constructors_dataclasses_once(tiles, tmp_path):
    (tmp_path / "c.txt").write_text("blue\n")
    cfg = load_config(SFTBuildConfig, None, ["backend.name=tiles", f"backend.data={tmp_path / 'c.txt'}", "backend.options={shade: {grey: 40}}", "attacker=random"])
    b = build_backend(cfg.backend)
    assert isinstance(b, Tiles) and b.shade == Shade(40) and b.colours == ["blue"]
    assert build_backend(cfg.backend) is b  # built once per setting
    assert b.items("train", 1, 0)[0].image[0, 0, 0] == 40
    with pytest.raises(ConfigError, match=r"unknown key\(s\) backend.options.shade.gray; known: grey"):
        build_backend(BackendConfig("tiles", options={"shade": {"gray": 1}}))


def test_the_default_backend_is_left_out_of_every_hash(tiles):
    """The world's hashes are what they were before the setting; another backend moves them."""
    from aot.selfplay import SelfPlayConfig, full_hash, resume_hash

    sft = SFTBuildConfig()
    assert "backend" not in sft.to_dict() and "backend" in dataclasses.asdict(sft)
    cfg = SelfPlayConfig()
    d = to_dict(cfg)
    assert d.pop("backend") == d["sft"].pop("backend") == {"name": "world", "data": "", "options": {}}
    assert d["attacker"].pop("kind") == "program" and d["attacker"].pop("diffusion")  # the default attacker: left out too
    old = lambda x: hashlib.sha256(json.dumps(x, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert full_hash(cfg) == old(d)
    assert resume_hash(cfg) == old({k: v for k, v in d.items() if k not in ("eval_suite", "eval_n", "eval_attacker_n")})  # evaluation-only fields
    other = SelfPlayConfig(backend=tiles, attacker_sft_teacher="random", sft=SFTBuildConfig(attacker="random"), eval_suite="all")
    assert resume_hash(other) != resume_hash(cfg)
    assert SFTBuildConfig(backend=tiles, attacker="random").to_dict()["backend"]["name"] == "tiles"


def test_another_backend_gets_its_own_kinds_and_regimes_and_world_only_attackers_are_refused(tiles):
    from aot.selfplay import SelfPlayConfig

    cfg = SFTBuildConfig(backend=tiles, attacker="random")
    assert cfg.question_kinds == ("colour",) and (cfg.source_regime, cfg.target_regime) == ("tile", "tile")
    with pytest.raises(ValueError, match="attacker 'heuristic' reads the world's scene graph"):
        SFTBuildConfig(backend=tiles, attacker="heuristic")
    with pytest.raises(ValueError, match="attacker_sft_teacher: attacker 'heuristic'"):
        SelfPlayConfig(backend=tiles, sft=SFTBuildConfig(attacker="random"))
    with pytest.raises(ValueError, match="sft.attacker: attacker 'heuristic'"):
        SelfPlayConfig(backend=tiles, attacker_sft_teacher="random")
    with pytest.raises(ValueError, match="eval_suite: benchmark 'vstar' generates world scenes"):
        SelfPlayConfig(backend=tiles, attacker_sft_teacher="random", sft=SFTBuildConfig(attacker="random"), eval_suite="vstar")
    with pytest.raises(ValueError, match="sft.backend: the AOT-SFT build uses the run's backend"):
        SelfPlayConfig(sft=SFTBuildConfig(backend=tiles, attacker="random"))
    with pytest.raises(ValueError, match="works on the world backend only"):
        make_attacker("heuristic", backend="tiles")


# --- attackers that do not read the scene -----------------------------------------------------
def test_the_random_attacker_writes_the_world_programs_it_always_wrote():
    world = get_backend("world")
    items = world.items("train", 6, 310)
    want = [format_program(random_program(it.scene, item_rng(it, RANDOM_TAG), 2)) for it in items]
    assert RandomAttacker().propose(items) == want == RandomAttacker(backend="world").propose(items)
    assert make_attacker("random", world).propose(items) == want


def test_the_random_attacker_writes_box_programs_on_another_backend(tiles):
    b = build_backend(tiles)
    items = b.items("train", 12, 3)
    texts = RandomAttacker(backend=b).propose(items)
    assert texts == RandomAttacker(backend="tiles").propose(items)  # seeded per item
    assert texts != RandomAttacker(backend=b).propose(b.items("train", 12, 4))
    attempts = [b.attempt(it, t) for it, t in zip(items, texts)]
    assert all(a.program is not None and a.edit is not None for a in attempts)
    assert all(1 <= len(a.program) <= 2 for a in attempts) and any(len(a.program) == 2 for a in attempts)
    assert sum(a.passed for a in attempts) >= 10  # boxes are drawn clear of the target
    with pytest.raises(NotImplementedError, match="no box ops"):
        RandomAttacker(backend=b, kinds=("twin",)).propose(items[:1])


def test_the_model_attackers_prompt_and_grammar_need_no_scene(tiles):
    world_item = get_backend("world").items("train", 1, 311)[0]
    assert f"Canvas: {world_item.scene.width} {world_item.scene.height}\n" in item_prompt(world_item)
    tile = build_backend(tiles).items("train", 1, 0)[0]
    assert "Canvas: 24 24\n" in item_prompt(tile) and "Targets: id 0 box 2 8 8 14" in item_prompt(tile)
    assert has_grammar(None) and has_grammar("world") and not has_grammar("tiles")


# --- the loop's pieces on another backend -------------------------------------------------------
class FooledByBlack:
    """Right on an image without black pixels; wrong (the other letter) on one with them."""

    def answer(self, images, questions, num_return_sequences=1, **_):
        return [[(q.answer if not (im == 0).all(axis=-1).any() else "AB"[1 - "AB".index(q.answer)])] * num_return_sequences for im, q in zip(images, questions)]


def test_an_aot_sft_build_on_another_backend_stores_and_replays_its_key(tiles, tmp_path):
    cfg = SFTBuildConfig(n=6, shard_size=6, chunk=4, defender="scripted", backend=tiles, attacker="random", keep_useless=1.0, keep_clean=0.5)
    m = build_sft(cfg, tmp_path, workers=1, resume=False, log=lambda _: None)
    assert m["counts"]["records"] == 6 and m["config"]["backend"]["name"] == "tiles"
    again = build_sft(cfg, tmp_path / "again", workers=1, resume=False, log=lambda _: None)
    assert again["content_hash"] == m["content_hash"]
    examples = sft_examples(tmp_path, min_examples=6, backend=build_backend(tiles))
    assert examples and all(it.meta["colour"] in COLOURS and text.startswith("fill ") for it, text in examples)


def test_a_curriculum_on_another_backend_is_made_and_replayed(tiles):
    from aot.selfplay import SelfPlayConfig, build_curriculum, curriculum_items

    cfg = load_config(SelfPlayConfig, None, [
        "backend.name=tiles", "attacker_sft_teacher=random", "sft.attacker=random", "curriculum.proposals=8", "curriculum.size=6",
        "curriculum.clean_replay=0.5", "attacker.scoring.k=1", "attacker.scoring.temperature=0.0", "eval_suite=all",
    ])
    b = build_backend(cfg.backend)
    rows, stats = build_curriculum(RandomAttacker(backend=b), FooledByBlack(), cfg, 1, [])
    assert stats["curriculum/passing"] >= 1 and stats["curriculum/clean_replay"] == 3
    assert all("tile" in r and "scene" not in r for r in rows)
    items = curriculum_items(rows, b)
    edited = [r for r in rows if r["program"]]
    assert edited and all(r["effective"] for r in edited)  # any black fill fools this defender
    assert all((it.image == 0).all(axis=-1).any() == bool(r["program"]) for it, r in zip(items, rows))


def test_the_evaluation_runs_the_any_backend_benchmarks_on_another_backend(tiles):
    from aot.eval import EvalConfig, resolve_suite, run_suite

    assert resolve_suite("all", "tiles") == ["backend-clean", "backend-attacked"]
    assert "backend-clean" not in resolve_suite("all")  # the world's 'all' is what it was
    with pytest.raises(ValueError, match="'pope' generates world scenes; on backend 'tiles'"):
        resolve_suite("pope", "tiles")

    res = run_suite(_LetterDefender(), "all", EvalConfig(n=6, strict_trials=0, backend=tiles, attacker="random"))
    m = res["metrics"]
    assert m["backend-clean/greedy/accuracy"] == 1.0 and res["config"]["backend"]["name"] == "tiles"
    assert m["backend-attacked/greedy/clean/accuracy"] == 1.0
    assert m["backend-attacked/info/integrity_pass_rate"] > 0
    # every edit that passes paints black, and this defender is fooled by black
    assert m["backend-attacked/greedy/success"] == pytest.approx(m["backend-attacked/info/integrity_pass_rate"])


class _LetterDefender:
    """``generate`` (the eval engine's defender interface) reading a tile: the square's colour,
    answered wrongly once the image has a black pixel."""

    def generate(self, images, prompts, num_return_sequences=1, **_):
        out = []
        for im in images:
            right = "A" if (im == COLOURS["red"]).all(axis=-1).any() else "B"
            fooled = (im == 0).all(axis=-1).any()
            out.append([f"\\boxed{{{'AB'[1 - 'AB'.index(right)] if fooled else right}}}"] * num_return_sequences)
        return out


# --- the command line -----------------------------------------------------------------------------
def test_build_sft_and_eval_take_backend_and_data_flags(tiles, tmp_path):
    from aot.cli import main

    colours = tmp_path / "colours.txt"
    colours.write_text("red\nblue\nblue\n")
    ds = tmp_path / "ds"
    assert main(["build-sft", "--out", str(ds), "--n", "4", "--shard-size", "4", "--defender", "scripted", "--backend", "tiles", "--data", str(colours)]) == 0
    cfg = json.loads((ds / "config.json").read_text())["config"]
    assert cfg["backend"] == {"name": "tiles", "data": str(colours), "options": {}} and cfg["question_kinds"] == ["colour"]
    out = tmp_path / "eval"
    assert main(["eval", "--model", "tiny-qwen2.5-vl", "--backend", "tiles", "--data", str(colours), "--n", "3", "--strict-trials", "0", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["suite"] == ["backend-clean", "backend-attacked"] and res["config"]["backend"]["name"] == "tiles"
    assert res["config"]["attacker"] == "random" and res["benchmarks"]["backend-clean"]["info"]["n"] == 3
