"""AOT-SFT builder: records, determinism, resume after a kill, truncated shards, Ray parity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest

from aot.attack import make_attacker
from aot.cli import main
from aot.data import BuildError, SFTBuildConfig, build_sft, verify
from aot.data.answerers import ScriptedAnswerer
from aot.data.sft import build_shard
from aot.data.store import COLUMNS, ShardError, check_shard, load_manifest
from aot.edits import parse_program, program_from_json

CFG = dict(n=24, shard_size=8, defender="scripted", chunk=16)


def quiet(_msg: str) -> None:
    pass


def build(out: Path, **kw) -> dict:
    logs: list[str] = []
    m = build_sft(SFTBuildConfig(**{**CFG, **{k: v for k, v in kw.items() if k not in ("workers", "resume")}}), out, workers=kw.get("workers", 1), resume=kw.get("resume", False), log=logs.append)
    m["_logs"] = logs
    return m


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ref")
    return out, build(out)


def test_records_have_the_issue_fields_and_are_consistent(ref):
    out, m = ref
    ds = datasets.load_dataset("parquet", data_files=sorted(str(p) for p in out.glob("shard-*.parquet")), split="train")
    assert len(ds) == 24 == m["counts"]["records"]
    assert set(COLUMNS) <= set(ds.column_names)
    assert isinstance(ds.features["clean_image"], datasets.Image) and isinstance(ds.features["edited_image"], datasets.Image)
    assert len({r for r in ds["id"]}) == 24
    cats = set(ds["category"])
    assert cats <= {"effective", "useless", "clean"} and "effective" in cats
    for r in ds:
        assert r["clean_image"].size == (96, 96) and r["answer"] in tuple("ABCD"[: len(r["options"])])
        assert r["config_hash"] == m["config_hash"] and r["aot_version"]
        if r["category"] == "clean":
            assert r["edit_program"] == "" and r["defender_edited"] == []
            continue
        prog = parse_program(r["edit_program"])
        assert program_from_json(r["edit_json"]) == prog and r["edit_ops"] == [op.name for op in prog]
        assert len(r["defender_clean"]) == 1 and len(r["defender_edited"]) == 3  # greedy; greedy + 2 sampled
        assert r["clean_correct"] and r["defender_clean_choice"] == [r["answer"]]  # edits only where the defender was right
        assert r["integrity_passed"] and {s["id"] for s in r["integrity_ssim"]} == {t["id"] for t in r["targets"]}
        assert r["effective"] == (r["defender_edited_choice"][0] != r["answer"] and r["edited_wrong"] >= 2)


def test_manifest_reports_rates_reasons_and_balance(ref):
    out, m = ref
    m2 = load_manifest(out)
    assert m2["content_hash"] == m["content_hash"]
    e = m2["effectiveness"]
    assert e["attacker"] == "random" and 0 < e["effective"] <= e["evaluated"] and e["rate"] == round(e["effective"] / e["evaluated"], 4)
    assert sum(v["evaluated"] for v in e["by_question_kind"].values()) == e["evaluated"]
    assert set(m2["rejections"]["scene"]) == {"question", "extension"}
    assert set(m2["rejections"]["edit"]) == {"parse", "apply", "box", "description", "integrity"}
    assert m2["integrity"]["checked"] >= m2["integrity"]["passed"] == e["evaluated"] > 0
    c = m2["counts"]
    assert c["edits"]["proposed"] == 2 * c["scenes"]["clean_correct"]  # edits_per_scene = 2
    assert c["edits"]["proposed"] == e["evaluated"] + sum(v["count"] for v in m2["rejections"]["edit"].values())
    assert sum(v["count"] for v in m2["answer_balance"].values()) == 24
    assert verify(out) == []


def test_shard_is_a_function_of_config_index_and_size():
    cfg = SFTBuildConfig(**{**CFG, "chunk": 8})
    a, sa = build_shard(cfg, 2, 8, ScriptedAnswerer(), make_attacker("random"), "h")
    b, sb = build_shard(cfg, 2, 8, ScriptedAnswerer(), make_attacker("random"), "h")
    assert a == b and sa == sb and len(a) == 8
    assert all(r["id"].startswith("aot-sft-0-00002-") for r in a)


def test_config_rejects_bad_values_with_a_message():
    with pytest.raises(ValueError, match="min_wrong"):
        SFTBuildConfig(k=2, min_wrong=3)
    with pytest.raises(ValueError, match="unknown attacker"):
        SFTBuildConfig(attacker="nope")
    with pytest.raises(ValueError, match="keep_clean"):
        SFTBuildConfig(keep_clean=1.5)
    with pytest.raises(ValueError, match="raise shard_size"):
        SFTBuildConfig(n=10**6, shard_size=1)


def test_refuses_to_overwrite_without_resume(ref, tmp_path):
    out, _ = ref
    with pytest.raises(BuildError, match="--resume"):
        build_sft(SFTBuildConfig(**CFG), out, log=quiet)


def test_truncated_shard_is_detected_and_rebuilt_on_resume(ref, tmp_path):
    src, m = ref
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    p = tmp_path / "shard-00001.parquet"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(ShardError, match="truncated"):
        check_shard(tmp_path, 1, 8, m["config_hash"])
    m2 = build(tmp_path, resume=True)
    logs = "\n".join(m2["_logs"])
    assert "shard-00001.parquet: truncated" in logs and "rebuilding" in logs
    assert "shard-00000.parquet: complete" in logs and "shard-00002.parquet: complete" in logs
    assert m2["content_hash"] == m["content_hash"] and m2["build"]["shards_built"] == 1


def test_resume_after_interruption_gives_the_same_content_hash(ref, tmp_path):
    _, m = ref

    class Killed(Exception):
        pass

    def die_after_first_shard(msg: str) -> None:
        if msg.startswith("shard-00000:"):
            raise Killed

    with pytest.raises(Killed):
        build_sft(SFTBuildConfig(**CFG), tmp_path, log=die_after_first_shard)
    assert not (tmp_path / "manifest.json").exists() and not (tmp_path / "shard-00001.parquet").exists()
    (tmp_path / ".shard-00001.parquet.abc.tmp").write_bytes(b"partial")  # what a kill mid-write leaves
    m2 = build(tmp_path, resume=True)
    logs = "\n".join(m2["_logs"])
    assert "shard-00001.parquet: missing" in logs and "removing .shard-00001.parquet.abc.tmp" in logs
    assert m2["content_hash"] == m["content_hash"]


def test_sigkill_midway_then_resume_from_the_cli(ref, tmp_path):
    _, m = ref
    args = ["build-sft", "--n", "24", "--shard-size", "8", "--defender", "scripted", "--set", "chunk=16", "--out", str(tmp_path)]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-c", f"import sys; from aot.cli import main; sys.exit(main({args!r}))"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "shard-00000.json").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert (tmp_path / "shard-00000.json").exists()
    assert not (tmp_path / "manifest.json").exists()  # killed midway, not after the end
    assert main([*args, "--resume"]) == 0
    assert load_manifest(tmp_path)["content_hash"] == m["content_hash"]


def test_cli_build_show_verify(tmp_path):
    out = tmp_path / "ds"
    assert main(["build-sft", "--n", "6", "--shard-size", "6", "--defender", "scripted", "--attacker", "heuristic", "--out", str(out), "--set", "chunk=16"]) == 0
    assert json.loads((out / "manifest.json").read_text())["effectiveness"]["attacker"] == "heuristic"
    assert main(["data", "verify", str(out)]) == 0
    assert main(["data", "show", str(out), "--n", "4", "--out", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 1000
    assert main(["build-sft", "--n", "6", "--out", str(tmp_path / "x"), "--set", "k=0"]) == 2  # bad config: usage error


def test_shuffle_options_balances_letters_and_keeps_answers_right():
    cfg = SFTBuildConfig(**{**CFG, "chunk": 32, "shuffle_options": True, "question_kinds": ("existence", "count")})
    rows, st = build_shard(cfg, 0, 40, ScriptedAnswerer(), make_attacker("random"), "h")
    for r in rows:
        assert r["options"][ord(r["answer"]) - ord("A")] == r["answer_text"]
    assert max(st["answers"].values()) < 0.6 * len(rows)  # unshuffled, existence and count answers are mostly A


# --- content hash: an independent recount, sensitivity to one record, and verify()'s branch ---
def _sha(b: bytes) -> str:
    import hashlib

    return hashlib.sha256(b).hexdigest()


def test_content_hash_recounted_from_the_parquet_records(ref):
    """The documented recipe, written out here: a record's digest is the sha256 of its canonical
    JSON with each image replaced by the sha256 of its PNG bytes; a shard's hash chains its
    records' digests (each + newline); the dataset's chains the shards' hashes."""
    import pyarrow.parquet as pq

    out, m = ref
    shard_hashes = []
    for f in sorted(out.glob("shard-*.parquet")):
        digests = []
        for row in pq.read_table(f).to_pylist():
            flat = {k: (_sha(v["bytes"]) if k in ("clean_image", "edited_image") else v) for k, v in row.items()}
            digests.append(_sha(json.dumps(flat, sort_keys=True, separators=(",", ":")).encode()))
        shard_hashes.append(_sha("".join(d + "\n" for d in digests).encode()))
    assert [s["content_hash"] for s in m["shards"]] == shard_hashes
    assert m["content_hash"] == _sha("".join(h + "\n" for h in shard_hashes).encode())


@pytest.mark.parametrize("change", ["answer_after", "edited_image"])
def test_one_changed_record_changes_the_hash_and_verify_reports_it(ref, tmp_path, change):
    import pyarrow.parquet as pq

    from aot.data.store import image_value, shard_payload, write_payload

    src, m = ref
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    rows = pq.read_table(tmp_path / "shard-00001.parquet").to_pylist()
    side = json.loads((tmp_path / "shard-00001.json").read_text())
    if change == "answer_after":
        rows[3]["answer_after"] = rows[3]["answer_after"] + "?"
    else:  # one pixel of one image
        from aot.io import png_bytes
        import io

        import numpy as np
        from PIL import Image

        img = np.array(Image.open(io.BytesIO(rows[3]["edited_image"]["bytes"])).convert("RGB"))
        img[0, 0, 0] ^= 1
        rows[3]["edited_image"] = image_value(png_bytes(img))
    # rewrite the shard the way the builder does, with a sidecar that agrees with the new file
    data, info = shard_payload(rows, 1, side["config_hash"], side["stats"], side["seconds"])
    assert info.content_hash != side["content_hash"]
    write_payload(tmp_path, data, info)
    assert verify(src) == []
    assert verify(tmp_path) == ["shard-00001.parquet: content hash differs from the manifest"]


class UnreadableOnEdits:
    """Right (in the born defender's format) on the first image it sees for a question -- the
    builder always asks about the clean image first -- and unreadable on any other image."""

    name = "unreadable-on-edits"

    def __init__(self):
        self.clean: dict[int, bytes] = {}
        self.keep: list = []  # hold the questions so their ids are not reused

    def __call__(self, images, questions, n, seed, temperature):
        from aot.data.answerers import completion_for

        out = []
        for img, q in zip(images, questions, strict=True):
            self.keep.append(q)
            first = self.clean.setdefault(id(q), img.tobytes())
            li = "ABCD".index(q.answer)
            out.append([completion_for(q.options[li], q.answer) if img.tobytes() == first else " ???"] * n)
        return out


@pytest.mark.parametrize("unreadable_is_wrong", [True, False])
def test_unreadable_is_wrong_decides_whether_a_broken_answer_is_effective(unreadable_is_wrong):
    cfg = SFTBuildConfig(**{**CFG, "chunk": 16, "unreadable_is_wrong": unreadable_is_wrong, "keep_useless": 1.0})
    rows, st = build_shard(cfg, 0, 12, UnreadableOnEdits(), make_attacker("heuristic"), "h")
    e = st["edits"]
    assert e["evaluated"] > 0 and st["scenes"]["clean_correct"] == st["scenes"]["extended"]  # right on every clean image
    edited = [r for r in rows if r["category"] != "clean"]
    assert edited and all(c == [None] * 3 for c in (r["defender_edited_choice"] for r in edited))
    if unreadable_is_wrong:  # every checked edit broke the answer: all effective
        assert e["effective"] == e["effective_unreadable"] == e["evaluated"]
        assert {r["category"] for r in edited} == {"effective"}
    else:  # no wrong *choice* anywhere: nothing is effective
        assert e["effective"] == 0 and {r["category"] for r in edited} == {"useless"}
