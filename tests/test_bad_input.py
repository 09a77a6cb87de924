"""Every verb turns bad input into one message and exit 2 (usage) or 1 (runtime), never a traceback;
the run and dataset folders refuse what would mix or lose work."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from aot.cli import main
from aot.data import SFTBuildConfig, build_sft


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    (root / "afile").write_text("not a folder\n")
    (root / "empty-dir").mkdir()
    (root / "empty.yaml").write_text("")
    (root / "malformed.jsonl").write_text('{"image": "a.png", "text": "x", "label": "yes"}\n{"image": \n')
    (root / "malformed-list.json").write_text('[{"image": "a.png",')
    (root / "empty.jsonl").write_text("\n")
    ds = root / "ds"
    build_sft(SFTBuildConfig(n=6, shard_size=3, defender="scripted", chunk=16), ds, log=lambda _m: None)
    bad = root / "bad-manifest"
    shutil.copytree(ds, bad)
    (bad / "manifest.json").write_text("{not json")
    return {"root": root, "ds": ds, "bad_manifest": bad}


def flat(text: str) -> str:
    """Rich's error box, unwrapped: one line of words."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# (argv with {root}/{ds}/{bad_manifest} placeholders, exit code, words the message must hold)
CASES = [
    (["world", "sample", "--n", "0", "--out", "{root}/w"], 2, "--n"),
    (["world", "sample", "--regime", "nosuch", "--out", "{root}/w"], 2, "nosuch"),
    (["world", "sample", "--out", "{root}/afile"], 2, "not a folder"),
    (["world", "bench", "--n", "1"], 2, "--n"),
    (["defender", "eval", "--seed", "12345"], 2, "0..98"),
    (["defender", "eval", "--model", "nosuch"], 2, "nosuch"),
    (["defender", "eval", "--model", "{root}/empty-dir"], 2, "empty folder"),
    (["defender", "eval", "--regime", "nosuch"], 2, "nosuch"),
    (["pretrain", "--single", "--model", "nosuch", "--out", "{root}/p"], 1, "nosuch"),
    (["attacker", "eval", "--attacker", "{root}/empty-dir"], 2, "empty folder"),
    (["attacker", "eval", "--attacker", "nosuch"], 2, "registered attacker"),
    (["attacker", "eval", "--defender", "nosuch"], 2, "nosuch"),
    (["attacker", "eval", "--seed", "500"], 2, "--seed"),
    (["attacker", "train", "--out", "{root}/afile"], 2, "not a folder"),
    (["attacker", "train", "--out", "{root}/at", "--config", "{root}/empty-dir"], 2, "is a directory"),
    (["attacker", "train", "--out", "{root}/at", "--set", "n=[1,"], 2, "not valid YAML"),
    (["attacker", "train", "--out", "{root}/at", "--set", "rl.nonsense=1"], 2, "unknown key(s) rl"),
    (["bench", "grpo", "--generations", "1"], 2, "--generations"),
    (["bench", "sampled", "--k", "1"], 2, "--k"),
    (["bench", "eval", "--model", "nosuch"], 1, "nosuch"),
    (["build-sft", "--out", "{root}/bd", "--n", "2", "--set", "defender={root}/nosuch-model"], 1, "nosuch-model"),
    (["build-sft", "--out", "{root}/b", "--set", "n=[1,"], 2, "not valid YAML"),
    (["build-sft", "--out", "{root}/b", "--config", "{root}/empty-dir"], 2, "is a directory"),
    (["build-sft", "--out", "{root}/b", "--config", "{root}/empty.yaml"], 2, "is empty"),
    (["build-sft", "--out", "{root}/b", "--config", "{root}/nosuch.yaml"], 2, "does not exist"),
    (["build-sft", "--out", "{root}/afile"], 2, "not a folder"),
    (["build-sft", "--out", "{root}/b", "--set", "min_wrong=5"], 2, "min_wrong"),
    (["build-sft", "--out", "{root}/b", "--k", "0"], 2, "--k"),
    (["data", "export", "{root}/nosuch", "--format", "trl", "--out", "{root}/x"], 1, "manifest.json does not exist"),
    (["data", "export", "{ds}", "--format", "parquet", "--out", "{root}/x"], 2, "unknown format"),
    (["data", "export", "{ds}", "--format", "trl", "--out", "{root}/afile"], 2, "not a folder"),
    (["data", "export", "{bad_manifest}", "--format", "easyr1", "--out", "{root}/x"], 1, "unreadable manifest"),
    (["data", "verify", "{bad_manifest}"], 1, "unreadable manifest"),
    (["data", "verify", "{root}/nosuch"], 1, "does not exist"),
    (["data", "show", "{root}/nosuch", "--out", "{root}/s.png"], 1, "no shards"),
    (["data", "show", "{ds}", "--out", "{root}/empty-dir"], 2, "is a folder"),
    (["train", "--out", "{root}/t", "--set", "n=[1,"], 2, "not valid YAML"),
    (["train", "--out", "{root}/t", "--config", "{root}/empty-dir"], 2, "directory"),
    (["train", "--out", "{root}/t", "--config", "{root}/empty.yaml"], 2, "is empty"),
    (["train", "--out", "{root}/afile"], 2, "not a folder"),
    (["train", "--out", "{root}/t", "--set", "eval_n=0"], 2, "eval_n"),
    (["train", "--out", "{root}/t", "--set", "eval_suite=vstar,nosuch"], 2, "nosuch"),
    (["train", "--out", "{root}/t", "--set", "eval_suite=pope-file"], 2, "benchmark files"),
    (["train", "--out", "{root}/t", "--set", "iterations=-1"], 2, "iterations"),
    (["train", "--out", "{root}/t", "--resume", "--overwrite"], 2, "exclude each other"),
    (["train", "--out", "{root}/t", "--config", "micro", "--set", "defender={root}/nosuch-model"], 1, "nosuch-model"),
    (["demo", "--out", "{root}/d", "--set", "nosuch=1"], 2, "unknown key"),
    (["study", "--out", "{root}/st", "--config", "micro", "--set", "n=[1,"], 2, "not valid YAML"),
    (["study", "--out", "{root}/afile", "--config", "micro"], 2, "not a folder"),
    (["eval", "--model", "{root}/empty-dir", "--out", "{root}/e"], 2, "empty folder"),
    (["eval", "--suite", "nosuch", "--out", "{root}/e"], 2, "nosuch"),
    (["eval", "--out", "{root}/afile"], 2, "not a folder"),
    (["eval", "--seed", "500", "--out", "{root}/e"], 2, "--seed"),
    (["eval", "--suite", "pope-file", "--pope-questions", "{root}/malformed.jsonl", "--out", "{root}/e"], 2, "malformed.jsonl:2: invalid JSON"),
    (["eval", "--suite", "pope-file", "--pope-questions", "{root}/malformed-list.json", "--out", "{root}/e"], 2, "malformed-list.json:1: invalid JSON"),
    (["eval", "--suite", "pope-file", "--pope-questions", "{root}/empty.jsonl", "--out", "{root}/e"], 2, "no questions"),
    (["eval", "--suite", "pope-file", "--pope-questions", "{root}/nosuch.jsonl", "--out", "{root}/e"], 2, "not found"),
    (["train", "--out", "{root}/t", "--backend", "phots"], 1, "unknown backend 'phots'; choose from photos, world; did you mean photos?"),
    (["train", "--out", "{root}/t", "--backend", "photos", "--data", "{root}/nosuch.jsonl"], 1, "nosuch.jsonl does not exist"),
    (["train", "--out", "{root}/t", "--backend", "photos"], 2, "attacker_sft_teacher: attacker 'heuristic' reads the world's scene graph; on backend 'photos' set attacker_sft_teacher to one of random, random-all (or start from the preset `--config photos`)"),
    (["train", "--out", "{root}/t", "--data", "{root}/afile"], 1, "backend 'world' takes no data file"),
    (["train", "--out", "{root}/t", "--config", "photos", "--data", "{root}/nosuch.jsonl"], 1, "nosuch.jsonl does not exist"),
    (["train", "--out", "{root}/t", "--config", "photos", "--data", "{root}/afile"], 1, "afile:1: invalid JSON"),
    (["build-sft", "--out", "{root}/b", "--backend", "wrld"], 1, "did you mean world?"),
    (["build-sft", "--out", "{root}/b", "--data", "{root}/afile"], 1, "backend 'world' takes no data file"),
    (["build-sft", "--out", "{root}/b", "--backend", "photos", "--data", "{root}/empty-dir"], 1, "empty-dir is a folder, not a file"),
    (["build-sft", "--out", "{root}/b", "--backend", "photos", "--attacker", "heuristic"], 2, "reads the world's scene graph"),
    (["eval", "--backend", "phots", "--out", "{root}/e"], 1, "did you mean photos?"),
    (["eval", "--backend", "photos", "--data", "{root}/nosuch.jsonl", "--out", "{root}/e"], 1, "nosuch.jsonl does not exist"),
    (["eval", "--backend", "photos", "--suite", "pope", "--out", "{root}/e"], 2, "'pope' generates world scenes"),
    (["attacker", "train", "--out", "{root}/at", "--backend", "phots"], 1, "did you mean photos?"),
    (["attacker", "eval", "--backend", "world", "--data", "{root}/afile"], 1, "takes no data file"),
    (["report", "--from", "{root}/nosuch", "--out", "{root}/r.html"], 2, "nosuch"),
    (["report", "--from", "{ds}", "--out", "{root}/empty-dir"], 2, "is a folder"),
]


@pytest.mark.parametrize("argv, code, words", CASES, ids=[" ".join(c[0][:3]) + f" #{i}" for i, c in enumerate(CASES)])
def test_bad_input_gives_a_message_not_a_traceback(paths, capfd, monkeypatch, argv, code, words):
    monkeypatch.delenv("AOT_DEBUG", raising=False)
    argv = [a.format(**{k: str(v) for k, v in paths.items()}) for a in argv]
    got = main(argv)
    cap = capfd.readouterr()
    text = cap.out + cap.err
    assert "Traceback" not in text
    assert got == code, text
    assert words in flat(text), text
    if code == 1:  # progress lines may come first; the error is the last line, and the only one
        lines = [l for l in cap.err.splitlines() if l.strip()]
        assert lines[-1].lower().startswith("error: ") and sum(l.lower().startswith("error") for l in lines) == 1, cap.err


def test_a_full_disk_is_one_line(paths, capfd, monkeypatch):
    """An OSError while writing (full or read-only disk): exit 1 and the OS's message with the file."""
    import aot.io

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(args[0]))

    monkeypatch.setattr(aot.io.os, "replace", full)
    got = main(["world", "sample", "--n", "2", "--out", str(paths["root"] / "full")])
    monkeypatch.undo()
    err = capfd.readouterr().err.strip()
    assert got == 1 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert re.fullmatch(r"error: No space left on device: .*/full/images/000000\.png", err), err  # the file, not its temporary


def test_k1_alone_is_valid(monkeypatch, tmp_path):
    """`--k 1` (greedy only) lowers the default min_wrong with it; an explicit min_wrong still conflicts."""
    import aot.data.build

    seen = {}

    def fake_build(cfg, out, **kw):
        seen["cfg"] = cfg
        raise aot.data.build.BuildError("stop here")

    monkeypatch.setattr(aot.data.build, "build_sft", fake_build)
    assert main(["build-sft", "--out", str(tmp_path / "b"), "--k", "1"]) == 1
    assert (seen["cfg"].k, seen["cfg"].min_wrong) == (1, 1)
    assert main(["build-sft", "--out", str(tmp_path / "b"), "--k", "3"]) == 1
    assert (seen["cfg"].k, seen["cfg"].min_wrong) == (3, 2)
    assert main(["build-sft", "--out", str(tmp_path / "b"), "--k", "1", "--set", "min_wrong=2"]) == 2


# --- build-sft: one writer per folder; a dataset has a manifest only when its build finished -----
def test_a_second_build_into_a_locked_folder_is_refused(tmp_path):
    from aot.data.build import BuildError
    from aot.io import folder_lock

    out = tmp_path / "ds"
    with folder_lock(out):  # as a build running in another process holds it
        with pytest.raises(BuildError, match="being written by another process"):
            build_sft(SFTBuildConfig(n=3, shard_size=3, defender="scripted", chunk=16), out, log=lambda _m: None)
    assert not list(out.glob("shard-*"))
    build_sft(SFTBuildConfig(n=3, shard_size=3, defender="scripted", chunk=16), out, log=lambda _m: None)  # free again
    assert (out / "manifest.json").exists()


def test_an_interrupted_rebuild_leaves_no_manifest(paths, tmp_path):
    from aot.data.build import verify

    ds = tmp_path / "ds"
    shutil.copytree(paths["ds"], ds)
    (ds / "shard-00001.json").unlink()  # shard 1 must be rebuilt

    def killed(_n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_sft(SFTBuildConfig(n=6, shard_size=3, defender="scripted", chunk=16), ds, resume=True, log=lambda _m: None, on_records=killed)
    assert not (ds / "manifest.json").exists()  # the old one described a dataset that is not there
    with pytest.raises(FileNotFoundError):
        verify(ds)
    build_sft(SFTBuildConfig(n=6, shard_size=3, defender="scripted", chunk=16), ds, resume=True, log=lambda _m: None)
    assert verify(ds) == []


# --- aot train: the run folder is checked before anything is written or removed ------------------
def _fake_run(out: Path, state: dict | None = None) -> None:
    out.mkdir(parents=True)
    (out / "config.yaml").write_text("old: config\n")
    (out / "metrics.jsonl").write_text('{"phase": "sft"}\n')
    (out / "metrics.json").write_text("{}\n")
    (out / "report.html").write_text("<html></html>\n")
    (out / "eval" / "final").mkdir(parents=True)
    ck = out / "checkpoints" / "01-sft"
    ck.mkdir(parents=True)
    (ck / "state.json").write_text(json.dumps(state or {"done": ["sft"], "metrics": [{"phase": "sft"}], "config_hash": "0123456789abcdef", "pool": [], "curriculum": {}}))


class Stop(Exception):
    pass


@pytest.fixture
def stop_at_model_load(monkeypatch):
    """Stop `aot train` where it first loads a model: the folder checks have run by then."""
    import aot.selfplay

    def stop(*args, **kwargs):
        raise Stop("stopped at model load")

    monkeypatch.setattr(aot.selfplay, "load_defender", stop)


def test_train_refuses_an_existing_run_and_overwrite_replaces_it(tmp_path, stop_at_model_load, capfd):
    out = tmp_path / "run"
    _fake_run(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(["train", "--config", "micro", "--out", str(out)]) == 2
    assert "--overwrite" in flat(capfd.readouterr().err)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # nothing removed
    assert (out / "config.yaml").read_text() == "old: config\n"
    assert main(["train", "--config", "micro", "--out", str(out), "--overwrite"]) == 1  # Stop at model load
    assert "stopped at model load" in capfd.readouterr().err
    assert list(out.iterdir()) == []  # metrics, report, eval, checkpoints of the old run: all gone


def test_a_refused_resume_leaves_config_yaml_alone(tmp_path, stop_at_model_load, capfd):
    out = tmp_path / "run"
    _fake_run(out)
    assert main(["train", "--config", "micro", "--out", str(out), "--resume"]) == 2
    assert "another config" in flat(capfd.readouterr().err)
    assert (out / "config.yaml").read_text() == "old: config\n"


def test_evaluation_fields_do_not_block_resume(tmp_path, stop_at_model_load):
    from aot.commands.train import resolve_config
    from aot.config import load_config
    from aot.selfplay import SelfPlayConfig, resume_hash

    cfg = load_config(SelfPlayConfig, resolve_config("micro"), [])
    out = tmp_path / "run"
    _fake_run(out, {"done": ["sft"], "metrics": [{"phase": "sft"}], "config_hash": resume_hash(cfg), "pool": [], "curriculum": {}})
    # the hash check passes (evaluation settings differ), then the checkpoint's model is loaded: Stop
    assert main(["train", "--config", "micro", "--out", str(out), "--resume", "--set", "eval_n=7", "--set", "eval_suite=clean"]) == 1
    assert main(["train", "--config", "micro", "--out", str(out), "--resume", "--set", "seed=9"]) == 2


def test_state_paths_are_relative_to_the_run_folder(tmp_path, monkeypatch):
    from aot.selfplay import _run_path

    run = tmp_path / "moved" / "run"
    (run / "attackers" / "iter1").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert _run_path(run, "attackers/iter1") == run / "attackers" / "iter1"
    assert _run_path(run, str(tmp_path / "abs")) == tmp_path / "abs"
    # a checkpoint written before (paths relative to the working directory) still resolves
    (tmp_path / "old" / "attackers" / "iter1").mkdir(parents=True)
    assert _run_path(tmp_path / "old", "old/attackers/iter1") == Path("old/attackers/iter1")
    assert os.path.isdir(_run_path(tmp_path / "old", "old/attackers/iter1"))
