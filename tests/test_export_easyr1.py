"""What the EasyR1 export promises, checked the way EasyR1 reads it; exports verify their source
and are atomic; every exported file has the usual mode."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import sys
from functools import partial
from pathlib import Path

import datasets
import pytest

from aot.cli import main
from aot.data import SFTBuildConfig, build_sft
from aot.data.export import EASYR1_DATA_DIR, EASYR1_KEYS, ExportError, easyr1_settings, export
from aot.data.store import iter_records
from aot.io import FILE_MODE

# Field names of EasyR1's config dataclasses, copied from hiyouga/EasyR1 at commit b44b311
# (2026-07-30): DataConfig in verl/trainer/config.py, RewardConfig in
# verl/workers/reward/config.py. EasyR1 merges command-line keys into
# OmegaConf.structured(PPOConfig()), so any other key fails with ConfigKeyError (as
# `worker.reward.reward_type` does since it was removed). Refresh these lists when EasyR1 changes
# its config, and check the export against them again.
EASYR1_DATA_FIELDS = {
    "train_files", "val_files", "prompt_key", "answer_key", "image_key", "video_key", "image_dir", "video_fps",
    "max_prompt_length", "max_response_length", "rollout_batch_size", "mini_rollout_batch_size", "val_batch_size",
    "format_prompt", "override_chat_template", "shuffle", "seed", "min_pixels", "max_pixels",
    "filter_overlong_prompts", "filter_overlong_prompts_workers",
}
EASYR1_REWARD_FIELDS = {"reward_function", "reward_function_kwargs", "skip_special_tokens", "num_cpus"}
# (RewardConfig.reward_function_name is init=False: set by EasyR1 from "file.py:name", not a key.)
EASYR1_REWARD_TYPES = ("batch", "sequential")  # AutoRewardManager: getattr(module, "REWARD_TYPE", "batch")


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sft")
    build_sft(SFTBuildConfig(n=12, shard_size=6, defender="scripted", chunk=16), out, log=lambda _m: None)
    return out


@pytest.fixture(scope="module")
def exported(ds, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("e") / "easyr1"
    export(ds, "easyr1", out)
    return out


def readme_settings(readme: str) -> dict[str, str]:
    """The `key=value` lines of the README's command (without the trailing backslashes)."""
    out = {}
    for line in readme.splitlines():
        line = line.strip().rstrip("\\").strip()
        if "=" in line and line.split("=", 1)[0].count(".") >= 1 and " " not in line.split("=", 1)[0]:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def test_documented_keys_exist_in_easyr1_config(exported):
    settings = readme_settings((exported / "README.md").read_text())
    assert settings == {**easyr1_settings(exported), "worker.actor.model.model_path": "YOUR_MODEL"}
    for key in EASYR1_KEYS:
        section, _, name = key.rpartition(".")
        fields = {"data": EASYR1_DATA_FIELDS, "worker.reward": EASYR1_REWARD_FIELDS}[section]
        assert name in fields, f"{key} is not an EasyR1 {section} key"
    assert "reward_type" not in (exported / "README.md").read_text()
    assert "reward_type=" not in (exported / "reward.py").read_text()


def easyr1_dataset(data_path: str) -> datasets.Dataset:
    """RLHFDataset's loading step (verl/utils/dataset.py at the commit above), verbatim in logic."""
    if "@" in data_path:
        data_path, data_split = data_path.split("@")
    else:
        data_split = "train"
    if os.path.isdir(data_path):
        file_type = os.path.splitext(os.listdir(data_path)[0])[-1][1:].replace("jsonl", "json")
        return datasets.load_dataset(file_type, data_dir=data_path, split=data_split)
    file_type = os.path.splitext(data_path)[-1][1:].replace("jsonl", "json")
    return datasets.load_dataset(file_type, data_files=data_path, split=data_split)


def easyr1_reward_fn(spec: str, **kwargs):
    """AutoRewardManager's loading step: 'file.py:name' -> (function, REWARD_TYPE)."""
    path, name = spec.rsplit(":", 1)
    mod_spec = importlib.util.spec_from_file_location("custom_reward_fn", path)
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules["custom_reward_fn"] = module
    try:
        mod_spec.loader.exec_module(module)
    finally:
        del sys.modules["custom_reward_fn"]
    return partial(getattr(module, name), **kwargs), getattr(module, "REWARD_TYPE", "batch")


def test_easyr1_reads_the_export_as_documented(ds, exported):
    s = easyr1_settings(exported)
    assert sorted(os.listdir(s["data.train_files"])) == ["train.parquet"]  # EasyR1 takes the first file's extension
    recs = {r["id"]: r for r in iter_records(ds)}
    for spec in (s["data.train_files"], s["data.train_files"] + "@train", str(exported / EASYR1_DATA_DIR / "train.parquet")):
        d = easyr1_dataset(spec)
        assert len(d) == len(recs)
        assert {s["data.prompt_key"], s["data.answer_key"], s["data.image_key"]} <= set(d.column_names)
    row = d[0]
    assert row["problem"].count("<image>") == 1 and len(row["images"]) == 1

    fn, reward_type = easyr1_reward_fn(s["worker.reward.reward_function"])
    assert reward_type in EASYR1_REWARD_TYPES
    inputs = []
    for row in d:
        r = recs[row["id"]]
        right = f"\\boxed{{{r['answer']}}}"
        wrong = "\\boxed{" + ("A" if r["answer"] != "A" else "B") + "}"
        inputs += [{"response": right, "response_length": 4, "ground_truth": row["answer"]},
                   {"response": wrong, "response_length": 4, "ground_truth": row["answer"]}]
    expect = [1.0, 0.0] * len(d)
    if reward_type == "batch":  # compute_reward_batch: one call, a list back
        scores = fn(inputs)
    else:  # compute_reward_sequential: one call per sample
        scores = [fn(x) for x in inputs]
    assert [sc["overall"] for sc in scores] == pytest.approx(expect)
    assert all({"overall", "format", "accuracy"} <= set(sc) for sc in scores)
    # the other call forms give the same scores
    assert [fn(x)["overall"] for x in inputs] == pytest.approx(expect)
    assert [fn(x["response"], x["ground_truth"])["overall"] for x in inputs] == pytest.approx(expect)


def test_exported_files_have_the_usual_mode(exported, tmp_path, ds):
    export(ds, "trl", tmp_path / "t")
    export(ds, "llava", tmp_path / "l")
    for root in (exported, tmp_path / "t", tmp_path / "l"):
        for p in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(p.stat().st_mode)
            if p.is_dir():  # as mkdir makes them (mkdtemp would give 0700)
                assert mode & 0o700 == 0o700 and mode & 0o055 == FILE_MODE & 0o044 | (FILE_MODE & 0o044) >> 2, (p, oct(mode))
            else:
                assert mode == FILE_MODE, (p, oct(mode))
    if FILE_MODE == 0o644:  # the usual umask 022: another user or a container can read the data
        assert stat.S_IMODE((exported / EASYR1_DATA_DIR / "train.parquet").stat().st_mode) == 0o644


# --- exports verify their source, and leave nothing behind when they fail ------------------------
def _copy(ds: Path, dest: Path) -> Path:
    shutil.copytree(ds, dest)
    return dest


def test_export_refuses_unfinished_mixed_and_corrupt_datasets(ds, tmp_path):
    unfinished = _copy(ds, tmp_path / "unfinished")
    (unfinished / "manifest.json").unlink()
    with pytest.raises(ExportError, match="manifest.json does not exist"):
        export(unfinished, "trl", tmp_path / "o1")

    mixed = _copy(ds, tmp_path / "mixed")
    shutil.copy(mixed / "shard-00001.parquet", mixed / "shard-00002.parquet")
    with pytest.raises(ExportError, match="shard-00002.parquet: not in the manifest"):
        export(mixed, "trl", tmp_path / "o2")

    bad = _copy(ds, tmp_path / "bad-manifest")
    (bad / "manifest.json").write_text('{"shards": [')
    with pytest.raises(ExportError, match="unreadable manifest"):
        export(bad, "trl", tmp_path / "o3")

    lying = _copy(ds, tmp_path / "lying")
    m = json.loads((lying / "manifest.json").read_text())
    m["shards"] = m["shards"][:1]  # a manifest that does not list every shard
    (lying / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExportError, match="cannot export"):
        export(lying, "trl", tmp_path / "o4")
    for o in ("o1", "o2", "o3", "o4"):
        assert not (tmp_path / o).exists()
    assert main(["data", "export", str(unfinished), "--format", "easyr1", "--out", str(tmp_path / "o5")]) == 1


def test_failed_export_leaves_nothing_and_can_be_rerun(ds, tmp_path, monkeypatch):
    import aot.data.export as ex

    real = ex.atomic_write_bytes
    calls = {"n": 0}

    def failing(path, data):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(ex, "atomic_write_bytes", failing)
    out = tmp_path / "llava"
    with pytest.raises(OSError, match="No space"):
        export(ds, "llava", out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".llava")]
    monkeypatch.setattr(ex, "atomic_write_bytes", real)
    res = export(ds, "llava", out)  # same --out: not refused
    assert res["records"] == 12 and len(list((out / "images").iterdir())) == 12
    # an empty existing folder is a valid --out, a file is not
    (tmp_path / "empty").mkdir()
    export(ds, "trl", tmp_path / "empty")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ExportError, match="not an empty folder"):
        export(ds, "trl", tmp_path / "afile")
