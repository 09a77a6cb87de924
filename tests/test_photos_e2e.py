"""AOT on the shipped sample photos, end to end through the command line, with tiny models.

``aot build-sft``, ``aot train --config photos`` and ``aot eval`` with ``--backend photos --data
FILE`` (the photo backend's default editor, a tiny FluxFill build; a tiny random-weight
Qwen2.5-VL defender and attacker in the ``photos`` preset). What is checked is what the pipeline promises, not how
well tiny random models do:

- AOT-SFT records carry a photo replay key that makes the clean image again, byte for byte; the
  edit program re-applied gives the stored edited image; every target box is bit-identical after
  an edit without a global op; targets keep their labels, also when a record is read back as an
  item (what the detector check and the attacker's cold start read);
- one self-play iteration (random-attacker curriculum) holds edited items whose edits pass the
  photo judge when replayed, and the images the defender trains on are those edits;
- the preset as shipped runs every AOT phase on photos (cold start from the records above, the
  learned attacker's GRPO, its curriculum, defender RL);
- the evaluation reports both photo benchmarks with their unit counts.

The AOT-SFT build answers with the scripted stand-in: a random-weight defender is right on no
clean photo, so no edit would be kept and there would be nothing to check.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aot.attack.data import record_item
from aot.backends import BackendConfig, build_backend
from aot.backends.photos import SAMPLE, load_records, parse_program
from aot.cli import main
from aot.data.store import iter_records
from aot.io import decode_png
from aot.selfplay import curriculum_items
from aot.vqa import Question

N_RECORDS = 6


def _png(v) -> np.ndarray:
    return decode_png(v["bytes"] if isinstance(v, dict) else v, what="test image")


def _targets_untouched(clean: np.ndarray, edited: np.ndarray, q: Question) -> bool:
    return all(np.array_equal(clean[y0:y1, x0:x1], edited[y0:y1, x0:x1]) for x0, y0, x1, y1 in (t.box for t in q.targets))


@pytest.fixture(scope="module")
def backend():
    return build_backend(BackendConfig("photos", str(SAMPLE)))


@pytest.fixture(scope="module")
def sft(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("photos") / "sft"
    argv = ["build-sft", "--backend", "photos", "--data", str(SAMPLE), "--out", str(out), "--n", str(N_RECORDS),
            "--shard-size", str(N_RECORDS), "--defender", "scripted", "--k", "2", "--set", "chunk=8", "--set", "keep_useless=1.0"]
    assert main(argv) == 0
    return out


def test_aot_sft_records_replay_their_photos_and_edits_with_targets_untouched_and_labelled(sft, backend):
    manifest = json.loads((sft / "manifest.json").read_text())
    assert manifest["counts"]["records"] == N_RECORDS and manifest["config"]["backend"] == {"name": "photos", "data": str(SAMPLE), "options": {}}
    labels = {r.id: [t.label for t in r.question.targets] for r in load_records(SAMPLE)}
    rows = list(iter_records(sft))
    edited = [r for r in rows if r["edit_program"]]
    assert edited, "the build kept no edit"
    for r in rows:
        key = json.loads(r["photo"])
        assert set(key) == {"image", "pad", "extend_seed", "extend_prompt"} and key["image"].startswith("skimage:")
        q_id = json.loads(r["question_spec"])["id"]
        assert [t["label"] for t in r["targets"]] == labels[q_id]  # the file's labels, in the record
        item = record_item(r, backend)  # the record read back as an item (the cold start's reader)
        assert [t.label for t in item.targets] == labels[q_id]
        clean = _png(r["clean_image"])
        again = backend.replay({"photo": key}, item.question, int(r["scene_seed"]))  # no stored image: made again
        assert np.array_equal(again.image, clean), r["id"]
        if r["edit_program"]:
            stored = _png(r["edited_image"])
            assert np.array_equal(backend.edit(again, parse_program(r["edit_program"])).image, stored), r["id"]
            assert not np.array_equal(stored, clean)
            if "photo" not in r["edit_ops"]:  # a global op may touch every pixel; the others never a target's
                assert _targets_untouched(clean, stored, item.question), r["id"]


def test_one_iteration_trains_on_edits_that_pass_the_judge_and_the_evaluation_counts_its_units(sft, backend, tmp_path):
    run = tmp_path / "run"
    # the random attacker writes the curriculum: a random-weight model attacker writes no program
    # that parses, so its curriculum would hold clean items only (the next test runs it)
    assert main(["train", "--config", "photos", "--data", str(SAMPLE), "--out", str(run),
                 "--set", "curriculum.source=random", "--set", "curriculum.proposals=12", "--set", 'eval_suite=""']) == 0
    phases = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["phase"] for m in phases] == ["warmup", "iter1.curriculum", "iter1.defender", "eval"]
    cur = next(m for m in phases if m["phase"] == "iter1.curriculum")
    rows = [json.loads(line) for line in (run / "curricula" / "iter1.jsonl").read_text().splitlines()]
    edited = [r for r in rows if r["program"]]
    assert edited and len(edited) == cur["curriculum/edited"] <= cur["curriculum/passing"]
    assert len(rows) - len(edited) == cur["curriculum/clean_replay"] > 0
    images = [it.image for it in curriculum_items(rows, backend)]  # what the defender trained on
    for r, image in zip(rows, images):
        q = Question.from_dict(r["question"])
        item = backend.replay(r, q, int(r["seed"]))
        if not r["program"]:
            assert np.array_equal(image, item.image)
            continue
        a = backend.attempt(item, r["program"])
        assert a.passed, (r["program"], a.reasons)
        assert np.array_equal(image, a.edit.image) and not np.array_equal(image, item.image)
        if not a.edit.state.result.global_ops:
            assert _targets_untouched(item.image, image, q)

    defender = sorted((run / "checkpoints").glob("*/defender"))[-1]
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(defender), "--backend", "photos", "--data", str(SAMPLE), "--n", "4", "--strict-trials", "0", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["suite"] == ["backend-clean", "backend-attacked"] and res["config"]["attacker"] == "random"
    clean, attacked = res["benchmarks"]["backend-clean"], res["benchmarks"]["backend-attacked"]
    assert clean["info"]["n"] == 4 and attacked["info"]["n"] == 4
    assert 0.0 <= clean["greedy"]["accuracy"] <= 1.0 and 0.0 <= attacked["greedy"]["attacked/accuracy"] <= 1.0
    assert attacked["info"]["parse_rate"] == 1.0 and 0.0 < attacked["info"]["integrity_pass_rate"] <= 1.0  # random programs always parse
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert sum(p["bench"] == "backend-clean" for p in predictions) == 4


def test_the_photos_preset_runs_every_aot_phase_on_the_records(sft, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--config", "photos", "--data", str(SAMPLE), "--out", str(run), "--set", f"sft_data={json.dumps(str(sft))}", "--set", 'eval_suite=""']) == 0
    phases = {json.loads(line)["phase"]: json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()}
    assert list(phases) == ["sft", "cold_start", "warmup", "iter1.attacker", "iter1.curriculum", "iter1.defender", "eval"]
    cold = phases["cold_start"]
    from_records = cold["attacker/sft_examples"] - cold.get("attacker/sft_heuristic_examples", 0)
    edits = sum(bool(r["edit_program"]) for r in iter_records(sft, columns=["edit_program"]))
    assert from_records == min(edits, 8)  # the AOT-SFT edits first (the preset's minimum is 8), then the random teacher's
    assert phases["iter1.attacker"]["attacker/train_items"] == 4 and phases["iter1.curriculum"]["curriculum/proposals"] == 8
    assert (run / "attackers" / "iter1" / "model.safetensors").is_file()
