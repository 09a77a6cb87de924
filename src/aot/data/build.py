"""Building an AOT-SFT dataset directory: shards in one process or on Ray, resume, manifest.

``build_sft(cfg, out, workers=W)`` writes ``DIR/shard-*.parquet`` (+ sidecars), ``DIR/config.json``
and ``DIR/manifest.json``. Shard ``s`` is a pure function of (config, s) (see ``aot.data.sft``), so
``workers > 1`` (Ray actors, one defender each; a local Ray by default, an existing cluster with
``address``) writes the same files as one process. Workers return the encoded shard to the driver,
which alone writes, so a cluster needs no shared file system.

``resume=True`` keeps every shard whose sidecar agrees with its file (size, sha256, config hash,
record count) and rebuilds the others, saying why for each; without it, a directory that already
holds shards is refused rather than overwritten. A build holds a lock on the directory
(``DIR/.lock``), so a second build into it fails at once instead of mixing shards, and removes
the manifest before it writes a shard: a dataset has a manifest only when its build finished.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..io import FolderBusy, atomic_write_json, folder_lock
from .answerers import Answerer
from .sft import CATEGORIES, EDIT_STAGES, SCENE_STAGES, SFTBuildConfig, ShardBuilder, build_hash, resolve_defender_id
from .store import FORMAT_VERSION, MANIFEST, ShardError, ShardInfo, check_shard, content_hash, shard_files, shard_paths, shard_payload, write_payload

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """The output directory cannot be built into as asked (the message says what to do)."""


class _RayShardWorker:
    """A Ray actor: loads the defender once, then builds and encodes shards by index."""

    def __init__(self, cfg_dict: dict[str, Any], factory: Callable[[], Answerer] | None, threads: int):
        self.builder = ShardBuilder(SFTBuildConfig.from_dict(cfg_dict), factory, threads)

    def build(self, index: int, size: int, cfg_hash: str) -> tuple[bytes, dict[str, Any]]:
        rows, st, sec, cpu = self.builder.build(index, size, cfg_hash)
        data, info = shard_payload(rows, index, cfg_hash, st, sec, cpu)
        return data, info.to_dict()


def _plan(cfg: SFTBuildConfig, out: Path, cfg_hash: str, resume: bool, log: Log) -> tuple[list[int], dict[int, ShardInfo]]:
    """Which shards to build, and the intact ones kept."""
    sizes = cfg.shard_sizes()
    existing = sorted(out.glob("shard-*.parquet")) + sorted(out.glob("shard-*.json"))
    if existing and not resume:
        raise BuildError(f"{out} already holds shards ({existing[0].name}, ...); pass --resume to continue that build, or choose a new --out")
    for tmp in sorted(out.glob(".shard-*.tmp")) + sorted(out.glob(f".{MANIFEST}.*.tmp")):
        log(f"removing {tmp.name}: temporary file of an interrupted write")
        tmp.unlink()
    for f in existing:
        try:
            idx = int(f.stem.split("-")[1])
        except (IndexError, ValueError):
            continue
        if idx >= len(sizes) and f.exists():
            log(f"removing {f.name}: beyond the {len(sizes)} shard(s) of n={cfg.n}")
            f.unlink()
    todo: list[int] = []
    kept: dict[int, ShardInfo] = {}
    for s, size in enumerate(sizes):
        if not resume:
            todo.append(s)
            continue
        try:
            kept[s] = check_shard(out, s, size, cfg_hash)
            log(f"{shard_paths(out, s)[0].name}: complete ({size} records), skipped")
        except ShardError as e:
            log(f"{e}; rebuilding")
            todo.append(s)
    return todo, kept


def build_sft(
    cfg: SFTBuildConfig,
    out: str | Path,
    workers: int = 1,
    address: str | None = None,
    resume: bool = False,
    answerer_factory: Callable[[], Answerer] | None = None,
    threads: int = 1,
    log: Log = print,
    on_records: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Build (or finish, with ``resume``) the dataset in ``out``; returns the manifest.

    ``threads``: torch intra-op threads per worker (content does not depend on it)."""
    if workers < 1:
        raise BuildError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out} exists and is not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    try:
        with folder_lock(out):
            return _build_locked(cfg, out, workers, address, resume, answerer_factory, threads, log, on_records)
    except FolderBusy as e:
        raise BuildError(f"{e} (another `aot build-sft`?)") from None


def _build_locked(cfg, out, workers, address, resume, answerer_factory, threads, log, on_records) -> dict[str, Any]:
    defender_id = resolve_defender_id(cfg, answerer_factory)
    cfg_hash = build_hash(cfg, defender_id)
    todo, infos = _plan(cfg, out, cfg_hash, resume, log)
    (out / MANIFEST).unlink(missing_ok=True)  # written again at the end: no manifest = unfinished
    atomic_write_json(out / "config.json", {"config": cfg.to_dict(), "config_hash": cfg_hash, "defender_id": defender_id, "aot_version": __version__})
    sizes = cfg.shard_sizes()
    t0 = time.perf_counter()
    if todo:
        log(f"building {len(todo)} shard(s) of {len(sizes)} ({sum(sizes[s] for s in todo)} records) with {workers} worker(s)")
    if todo and workers == 1:
        builder = ShardBuilder(cfg, answerer_factory, threads)
        for s in todo:
            rows, st, sec, cpu = builder.build(s, sizes[s], cfg_hash, on_records)
            data, info = shard_payload(rows, s, cfg_hash, st, sec, cpu)
            write_payload(out, data, info)
            infos[s] = info
            _log_shard(log, info)
    elif todo:
        infos.update(_build_on_ray(cfg, out, todo, sizes, cfg_hash, workers, address, answerer_factory, threads, log, on_records))
    seconds = time.perf_counter() - t0
    built = sum(infos[s].records for s in todo)
    manifest = make_manifest(cfg, cfg_hash, defender_id, [infos[s] for s in range(len(sizes))])
    manifest["build"] = {
        "seconds": round(seconds, 2),
        "records_built": built,
        "records_per_s": round(built / seconds, 2) if built and seconds > 0 else None,
        "cpu_seconds": round(sum(infos[s].cpu_seconds for s in todo), 1),
        "workers": workers,
        "shards_built": len(todo),
        "shards_kept": len(sizes) - len(todo),
    }
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _log_shard(log: Log, info: ShardInfo) -> None:
    r = info.stats["records"]
    warn = " (candidate budget exhausted: shard is short)" if info.stats.get("exhausted") else ""
    log(f"shard-{info.index:05d}: {info.records} records (effective {r['effective']}, useless {r['useless']}, clean {r['clean']}) in {info.seconds:.1f}s ({info.cpu_seconds:.1f} CPU s){warn}")


def _build_on_ray(cfg, out, todo, sizes, cfg_hash, workers, address, factory, threads, log, on_records) -> dict[int, ShardInfo]:
    try:
        import ray
    except ImportError:
        raise BuildError("--workers > 1 needs Ray: pip install 'aot[ray]'") from None
    started = False
    if not ray.is_initialized():
        if address is None:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local cluster
            ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        started = True
    try:
        Worker = ray.remote(num_cpus=threads)(_RayShardWorker)
        actors = [Worker.remote(cfg.to_dict(), factory, threads) for _ in range(min(workers, len(todo)))]
        queue = list(todo)
        pending: dict[Any, Any] = {}  # object ref -> actor
        for a in actors:
            if queue:
                s = queue.pop(0)
                pending[a.build.remote(s, sizes[s], cfg_hash)] = a
        infos: dict[int, ShardInfo] = {}
        while pending:
            # short waits rather than one blocking get, so Ctrl-C reaches Python promptly
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                actor = pending.pop(ref)
                data, info_d = ray.get(ref)
                info = ShardInfo.from_dict(info_d)
                write_payload(out, data, info)
                infos[info.index] = info
                _log_shard(log, info)
                if on_records is not None:
                    on_records(info.records)
                if queue:
                    s = queue.pop(0)
                    pending[actor.build.remote(s, sizes[s], cfg_hash)] = actor
        return infos
    finally:
        if started:
            ray.shutdown()


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def make_manifest(cfg: SFTBuildConfig, cfg_hash: str, defender_id: str, infos: list[ShardInfo]) -> dict[str, Any]:
    """Totals over the shards' sidecars; ``content_hash`` covers the records and nothing else."""
    stages = SCENE_STAGES + EDIT_STAGES
    scenes: Counter = Counter()
    edits: Counter = Counter()
    seqs: Counter = Counter()
    rejected: Counter = Counter()
    reasons: dict[str, Counter] = {s: Counter() for s in stages}
    by_op: dict[str, Counter] = {}
    by_kind: dict[str, Counter] = {}
    records: Counter = Counter()
    answers: Counter = Counter()
    short = []
    for info in infos:
        st = info.stats
        scenes.update(st["scenes"])
        edits.update(st["edits"])
        seqs.update(st["sequences"])
        rejected.update(st["rejected"])
        for s in stages:
            reasons[s].update(st["reasons"].get(s, {}))
        for src, dst in ((st["by_op"], by_op), (st["by_kind"], by_kind)):
            for name, c in src.items():
                dst.setdefault(name, Counter()).update(c)
        records.update(st["records"])
        answers.update(st["answers"])
        if st.get("exhausted"):
            short.append(info.index)

    def eff(d: dict[str, Counter]) -> dict[str, Any]:
        return {k: {"evaluated": c["evaluated"], "effective": c["effective"], "rate": _rate(c["effective"], c["evaluated"])} for k, c in sorted(d.items())}

    def rej(names: tuple[str, ...]) -> dict[str, Any]:
        return {s: {"count": rejected[s], "reasons": dict(sorted(reasons[s].items()))} for s in names}

    n_rec = sum(records.values())
    return {
        "format_version": FORMAT_VERSION,
        "aot_version": __version__,
        "config": cfg.to_dict(),
        "config_hash": cfg_hash,
        "defender_id": defender_id,
        "shards": [{"file": f"shard-{i.index:05d}.parquet", "records": i.records, "content_hash": i.content_hash, "sha256": i.sha256} for i in infos],
        "counts": {
            "records": n_rec,
            "by_category": {k: records[k] for k in CATEGORIES},
            "scenes": dict(scenes),
            "edits": dict(edits),
            "defender_sequences": dict(seqs),
        },
        "rejections": {"scene": rej(SCENE_STAGES), "edit": rej(EDIT_STAGES)},
        "integrity": {
            "checked": edits["integrity_checked"],
            "passed": edits["integrity_passed"],
            "pass_rate": _rate(edits["integrity_passed"], edits["integrity_checked"]),
            "reject_reasons": dict(sorted(reasons["integrity"].items())),
            "note": "checked = edits that reached the verdict (past parse, apply, box and description checks)",
        },
        "defender": {"clean_accuracy_greedy": _rate(scenes["clean_correct"], scenes["extended"]), "scenes_answered": scenes["extended"]},
        "effectiveness": {
            "attacker": cfg.attacker,
            "definition": f"on scenes the defender answers right (greedy), an edit passing every check is effective when its greedy answer and >= {cfg.min_wrong} of its {cfg.k} answers (1 greedy + {cfg.k - 1} sampled at T={cfg.temperature}) are wrong{'' if cfg.unreadable_is_wrong else ' (a wrong choice; unreadable answers do not count)'}",
            "evaluated": edits["evaluated"],
            "effective": edits["effective"],
            "rate": _rate(edits["effective"], edits["evaluated"]),
            "rate_per_proposal": _rate(edits["effective"], edits["proposed"]),
            "greedy_flip_rate": _rate(edits["greedy_flipped"], edits["evaluated"]),
            "effective_unreadable_share": _rate(edits["effective_unreadable"], edits["effective"]),
            "effective_unreadable_note": "share of effective edits whose greedy answer has no readable choice (see unreadable_is_wrong)",
            "by_edit_type": eff(by_op),
            "by_question_kind": eff(by_kind),
        },
        "answer_balance": {k: {"count": answers[k], "share": _rate(answers[k], n_rec)} for k in sorted(answers)},
        "short_shards": short,
        "content_hash": content_hash([i.content_hash for i in infos]),
    }


def verify(out: str | Path) -> list[str]:
    """Problems found in a built dataset (empty when every shard matches the manifest)."""
    from .store import load_manifest

    m = load_manifest(out)
    problems = []
    for s, sh in enumerate(m["shards"]):
        try:
            info = check_shard(out, s, sh["records"], m["config_hash"])
            if info.content_hash != sh["content_hash"]:
                problems.append(f"{sh['file']}: content hash differs from the manifest")
        except ShardError as e:
            problems.append(str(e))
    listed = {sh["file"] for sh in m["shards"]}
    for f in shard_files(out):
        if f.name not in listed:
            problems.append(f"{f.name}: not in the manifest (left by another build?)")
    if content_hash([sh["content_hash"] for sh in m["shards"]]) != m["content_hash"]:
        problems.append(f"{MANIFEST}: its content hash does not match its shard list")
    return problems


def describe_manifest(m: dict[str, Any]) -> str:
    """A few lines for the console."""
    c, e, i = m["counts"], m["effectiveness"], m["integrity"]
    lines = [
        f"records {c['records']} ({', '.join(f'{k} {v}' for k, v in c['by_category'].items())}) from {c['scenes']['sampled']} scenes, {c['edits']['proposed']} proposed edits",
        f"defender clean accuracy (greedy) {m['defender']['clean_accuracy_greedy']}; integrity pass rate {i['pass_rate']} ({i['passed']}/{i['checked']})",
        f"{e['attacker']} proposer effectiveness {e['rate']} ({e['effective']}/{e['evaluated']} checked edits on questions the defender got right)",
        f"content hash {m['content_hash'][:16]}",
    ]
    b = m.get("build") or {}
    if b.get("records_per_s"):
        lines.append(f"built {b['records_built']} records in {b['seconds']}s ({b['records_per_s']} records/s, {b['workers']} worker(s), {b.get('cpu_seconds')} CPU s in the shard builders)")
    return "\n".join(lines)


def load_config(out: str | Path) -> SFTBuildConfig:
    return SFTBuildConfig.from_dict(json.loads((Path(out) / "config.json").read_text())["config"])
