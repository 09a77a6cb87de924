"""Exports (EasyR1, LLaVA, TRL) round-trip; EasyR1 reward.py; corrupt images name the record."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aot.cli import main
from aot.data import SFTBuildConfig, build_sft
from aot.data.export import EXPORTERS, ExportError, export
from aot.data.store import iter_records
from aot.io import decode_png
from aot.rewards import defender_score


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    out = tmp_path_factory.mktemp("sft")
    build_sft(SFTBuildConfig(n=12, shard_size=6, defender="scripted", chunk=16), out, log=lambda _m: None)
    return out, {r["id"]: r for r in iter_records(out)}


def load_parquet(path: Path):
    return datasets.load_dataset("parquet", data_files=str(path), split="train")


def same_pixels(pil_image, png: bytes) -> bool:
    return np.array_equal(np.asarray(pil_image.convert("RGB")), decode_png(png))


def test_easyr1_round_trip(ds, tmp_path):
    src, recs = ds
    res = export(src, "easyr1", tmp_path / "e")
    assert res["records"] == len(recs)
    d = load_parquet(tmp_path / "e" / "data" / "train.parquet")
    assert isinstance(d.features["images"].feature, datasets.Image)
    for row in d:
        r = recs[row["id"]]
        assert row["problem"] == "<image>" + r["prompt"] and row["problem"].count("<image>") == 1
        gt = json.loads(row["answer"])
        assert gt == {"answer": r["answer"], "options": r["options"]}
        assert len(row["images"]) == 1 and same_pixels(row["images"][0], r["edited_image"]["bytes"])
    assert "compute_score" in (tmp_path / "e" / "reward.py").read_text()
    assert "data.prompt_key=problem" in (tmp_path / "e" / "README.md").read_text()


def test_llava_round_trip(ds, tmp_path):
    src, recs = ds
    export(src, "llava", tmp_path / "l")
    items = json.loads((tmp_path / "l" / "llava.json").read_text())
    assert len(items) == len(recs)
    for it in items:
        r = recs[it["id"]]
        human, gpt = it["conversations"]
        assert human["from"] == "human" and human["value"] == "<image>\n" + r["prompt"]
        assert gpt["from"] == "gpt" and gpt["value"].endswith(f"\\boxed{{{r['answer']}}}")
        assert defender_score(gpt["value"], r["answer"], r["options"]) == 1.0
        assert (tmp_path / "l" / it["image"]).read_bytes() == r["edited_image"]["bytes"]


def test_trl_round_trip(ds, tmp_path):
    src, recs = ds
    export(src, "trl", tmp_path / "t")
    d = load_parquet(tmp_path / "t" / "train.parquet")
    for row in d:
        r = recs[row["id"]]
        user, assistant = row["messages"]
        assert user["role"] == "user" and [p["type"] for p in user["content"]] == ["image", "text"]
        assert user["content"][1]["text"] == r["prompt"]
        assert assistant["role"] == "assistant" and defender_score(assistant["content"][0]["text"], row["answer"], row["options"]) == 1.0
        assert (row["answer"], row["options"]) == (r["answer"], r["options"])
        assert same_pixels(row["images"][0], r["edited_image"]["bytes"])


def test_export_filters_categories_and_refuses_a_full_directory(ds, tmp_path):
    src, recs = ds
    res = export(src, "llava", tmp_path / "x", categories=["clean"])
    assert res["records"] == sum(r["category"] == "clean" for r in recs.values())
    with pytest.raises(ExportError, match="not an empty folder"):
        export(src, "llava", tmp_path / "x")


def test_corrupt_image_fails_export_naming_the_record(ds, tmp_path):
    src, _ = ds
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in src.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    t = pq.read_table(bad / "shard-00001.parquet")
    rows = t.to_pylist()
    victim = rows[2]["id"]
    rows[2]["edited_image"] = {"bytes": rows[2]["edited_image"]["bytes"][:40] + b"\x00garbage", "path": None}
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), bad / "shard-00001.parquet")
    for fmt in ("easyr1", "llava", "trl"):
        # the exporters themselves (past the manifest check, as if the sidecar agreed)
        with pytest.raises(ExportError, match=f"record {victim}"):
            EXPORTERS[fmt](bad, tmp_path / f"direct-{fmt}")
        # export() refuses the altered shard before writing anything, and leaves no folder
        with pytest.raises(ExportError, match="shard-00001.parquet"):
            export(bad, fmt, tmp_path / f"out-{fmt}")
        assert not (tmp_path / f"out-{fmt}").exists()
    assert main(["data", "export", str(bad), "--format", "trl", "--out", str(tmp_path / "cli")]) == 1


# --- the EasyR1 reward file ----------------------------------------------------------------------
def load_reward_module(path: Path):
    spec = importlib.util.spec_from_file_location("custom_reward_fn", path)  # as EasyR1 loads it
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def reward(ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("e")
    export(ds[0], "easyr1", out / "x")
    text = (out / "x" / "reward.py").read_text()
    assert "import aot" not in text and "from aot" not in text and "from ." not in text  # self-contained
    return load_reward_module(out / "x" / "reward.py")


OPTIONS = ["left", "right", "above", "below"]
GT = json.dumps({"answer": "B", "options": OPTIONS})


@pytest.mark.parametrize(
    "response, overall, fmt, acc",
    [
        ("\\boxed{B}", 1.0, 1.0, 1.0),
        (" right \\boxed{B}", 1.0, 1.0, 1.0),
        ("I think \\boxed{A} no wait \\boxed{B}", 1.0, 1.0, 1.0),
        ("\\boxed{B.}", 0.8, 0.0, 1.0),
        ("\\boxed{(B)}", 0.8, 0.0, 1.0),
        ("\\boxed{right}", 0.8, 0.0, 1.0),
        ("\\boxed{B. right}", 0.8, 0.0, 1.0),
        ("\\boxed{A}", 0.0, 1.0, 0.0),
        ("B", 0.0, 0.0, 0.0),
        ("\\boxed{b}", 0.8, 0.0, 1.0),
        ("", 0.0, 0.0, 0.0),
    ],
)
def test_reward_on_hand_written_responses(reward, response, overall, fmt, acc):
    s = reward.compute_score({"response": response, "response_length": 3, "ground_truth": GT})
    assert s == {"overall": pytest.approx(overall), "format": fmt, "accuracy": acc}
    assert s["overall"] == pytest.approx(defender_score(response, "B", OPTIONS))  # same as training


def test_reward_batch_form_and_bare_letter(reward):
    out = reward.compute_score([{"response": "\\boxed{B}", "ground_truth": "B"}, {"response": "\\boxed{C}", "ground_truth": "B"}])
    assert [o["overall"] for o in out] == [pytest.approx(1.0), 0.0]
    assert reward.compute_score({"response": "\\boxed{right}", "ground_truth": "B"})["overall"] == 0.0  # no options: letters only
