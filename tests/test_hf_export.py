"""A saved defender leaves the project: plain ``transformers`` loads it (remote code, ``auto_map``,
a whole processor) in a process that never imports ``aot``, and ``load_defender`` reads a
Hugging Face id through the hub cache exactly as it reads a local directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from PIL import Image

from aot.models import ASSET_DIR, Defender, build_tiny, load_defender
from aot.models import aot_vlm
from aot.models.aot_vlm import AotVlmProcessor
from aot.models.defender import META_FILE
from aot.models.evaluation import question_for
from aot.models.prompt import format_prompt

shipped = pytest.mark.skipif(not (ASSET_DIR / "model.safetensors").exists(), reason="born defender not shipped")

CLEAN = r'''
import sys
sys.modules["aot"] = None  # `import aot` (or aot.anything) fails in this process
import json
import torch
from PIL import Image
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor

torch.set_num_threads(int(sys.argv[1]))
job = json.loads(open(sys.argv[2]).read())
out = {}
for key, d in job["dirs"].items():
    assert type(AutoConfig.from_pretrained(d, trust_remote_code=True)).__name__ == "AotVlmConfig"
    assert type(AutoModelForCausalLM.from_pretrained(d, trust_remote_code=True)).__name__ == "AotVlmForConditionalGeneration"
    model = AutoModelForImageTextToText.from_pretrained(d, trust_remote_code=True).eval()
    proc = AutoProcessor.from_pretrained(d, trust_remote_code=True)
    texts = [
        proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}], add_generation_prompt=True, tokenize=False)
        for p in job["prompts"]
    ]
    batch = proc(images=[Image.open(f) for f in job["images"]], text=texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    seqs = model.generate(**batch, max_new_tokens=8, do_sample=False)
    torch.save({k: v for k, v in batch.items()} | {"logits": logits}, job["out"] + "/" + key + ".pt")
    out[key] = {
        "model": type(model).__name__, "processor": type(proc).__name__,
        "answers": proc.batch_decode(seqs[:, batch["input_ids"].shape[1]:], skip_special_tokens=True),
    }
out["aot_modules"] = sorted(m for m, v in sys.modules.items() if m.split(".")[0] == "aot" and v is not None)
print(json.dumps(out))
'''


def _items(n: int = 3):
    return [question_for(1000 + i, "simple") for i in range(n - 1)] + [question_for(2000, "complex")]


def _run_clean(tmp_path: Path, dirs: dict[str, Path], items) -> dict:
    """Run ``CLEAN`` in a fresh interpreter (same thread count, own module cache) on ``dirs``."""
    images = []
    for i, it in enumerate(items):
        images.append(str(tmp_path / f"im{i}.png"))
        Image.fromarray(it.image).save(images[-1])
    job = {"dirs": {k: str(v) for k, v in dirs.items()}, "prompts": [format_prompt(it.question) for it in items], "images": images, "out": str(tmp_path)}
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "clean.py").write_text(CLEAN)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    env.pop("PYTHONPATH", None)
    r = subprocess.run(
        [sys.executable, str(tmp_path / "clean.py"), str(torch.get_num_threads()), str(tmp_path / "job.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _check_same_as_project(d: Defender, got: dict, saved: dict, items) -> None:
    prompts = [format_prompt(it.question) for it in items]
    batch = d.inputs([it.image for it in items], prompts)
    for k, v in batch.items():  # the clean processor builds the project's inputs
        assert torch.equal(saved[k], v), k
    with torch.no_grad():
        logits = d.model(**batch).logits
    assert (saved["logits"] - logits).abs().max().item() == 0.0
    assert got["answers"] == [g[0] for g in d.generate([it.image for it in items], prompts, max_new_tokens=8)]
    assert got["model"] == "AotVlmForConditionalGeneration" and got["processor"] == "AotVlmProcessor"


@shipped
def test_shipped_and_saved_defender_round_trip_without_aot(tmp_path):
    """The shipped defender and a ``Defender.save`` output load in a process without ``aot``
    (AutoConfig, AutoModelForImageTextToText / CausalLM, AutoProcessor with remote code), build
    the same inputs, give identical logits and the same greedy answers."""
    base = load_defender("base")
    saved = base.save(tmp_path / "saved")
    items = _items()
    got = _run_clean(tmp_path, {"shipped": ASSET_DIR, "saved": saved}, items)
    assert got["aot_modules"] == []
    for key in ("shipped", "saved"):
        _check_same_as_project(base, got[key], torch.load(tmp_path / f"{key}.pt"), items)
    assert any("boxed" in a for a in got["shipped"]["answers"])


def test_processor_gives_the_qwen_processor_inputs_and_round_trips(tmp_path):
    """``AotVlmProcessor`` (no video slot) builds exactly the stock ``Qwen2_5_VLProcessor``'s
    inputs, and ``save_pretrained`` / ``AutoProcessor.from_pretrained`` rebuild it whole."""
    from transformers import AutoProcessor, Qwen2_5_VLProcessor

    from aot.models.defender import to_pil
    from aot.models.registry import _allow_none_processor_args

    model, proc = build_tiny("tiny-aot-vlm")
    assert type(proc) is AotVlmProcessor
    _allow_none_processor_args()
    stock = Qwen2_5_VLProcessor(image_processor=proc.image_processor, tokenizer=proc.tokenizer, video_processor=None, chat_template=proc.chat_template)
    proc.save_pretrained(tmp_path)
    back = AutoProcessor.from_pretrained(tmp_path)
    assert type(back) is AotVlmProcessor
    items = _items()
    d = Defender(model, proc, "aot_vlm")
    texts = [d.chat_text(format_prompt(it.question)) for it in items]
    images = [to_pil(it.image) for it in items]
    want = stock(images=images, text=texts, padding=True, return_tensors="pt")
    for p in (proc, back):
        got = p(images=images, text=texts, padding=True, return_tensors="pt")
        assert sorted(got) == sorted(want)
        assert all(torch.equal(got[k], want[k]) for k in want)


def test_save_writes_code_auto_map_and_a_whole_processor(tmp_path):
    model, proc = build_tiny("tiny-aot-vlm")
    out = Defender(model, proc, "aot_vlm").save(tmp_path / "m")
    for f in ("config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json", META_FILE, "aot_vlm.py", "processor_config.json"):
        assert (out / f).exists(), f
    auto = json.loads((out / "config.json").read_text())["auto_map"]
    assert auto == {
        "AutoConfig": "aot_vlm.AotVlmConfig",
        "AutoModelForImageTextToText": "aot_vlm.AotVlmForConditionalGeneration",
        "AutoModelForCausalLM": "aot_vlm.AotVlmForConditionalGeneration",
    }
    pc = json.loads((out / "processor_config.json").read_text())
    assert pc["processor_class"] == "AotVlmProcessor" and pc["auto_map"]["AutoProcessor"] == "aot_vlm.AotVlmProcessor"
    assert (out / "aot_vlm.py").read_bytes() == Path(aot_vlm.__file__).read_bytes()
    # the code file imports only torch and transformers
    imports = [line.split()[1] for line in (out / "aot_vlm.py").read_text().splitlines() if line.startswith(("import ", "from "))]
    assert {m.split(".")[0] for m in imports} <= {"__future__", "torch", "transformers"}, imports


@shipped
def test_shipped_code_file_is_the_source():
    """The shipped ``aot_vlm.py`` is what plain ``transformers`` runs; it must be the project's."""
    assert (ASSET_DIR / "aot_vlm.py").read_bytes() == Path(aot_vlm.__file__).read_bytes(), (
        "src/aot/assets/defender/aot_vlm.py differs from src/aot/models/aot_vlm.py: copy it over "
        "(the weights do not change) or re-save the defender"
    )
    assert "auto_map" in json.loads((ASSET_DIR / "config.json").read_text())
    assert (ASSET_DIR / "processor_config.json").exists()


def _hub_cache(root: Path, repo: str, files_from: Path) -> None:
    """A Hugging Face cache holding ``repo`` at one revision, laid out as ``huggingface_hub``
    writes it (files copied instead of linked to blobs)."""
    rev = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    shutil.copytree(files_from, repo_dir / "snapshots" / rev)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(rev)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An offline hub cache under tmp_path; returns it."""
    import huggingface_hub.constants as c

    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    return root


@shipped
def test_hub_id_loads_the_same_files_as_a_local_path(hub):
    """The issue's case: the shipped files behind a hub id. The metadata file is found in the
    snapshot, so the processor takes the image and the logits are the local ones."""
    _hub_cache(hub, "owner/born", ASSET_DIR)
    local, remote = load_defender("base"), load_defender("owner/born")
    assert type(remote.processor) is type(local.processor) is AotVlmProcessor
    assert remote.arch == local.arch == "aot_vlm"
    items = _items()
    batch = local.inputs([it.image for it in items], [format_prompt(it.question) for it in items])
    with torch.no_grad():
        assert torch.equal(local.model(**batch).logits, remote.model(**batch).logits)


def test_hub_id_of_a_tiny_qwen_uses_its_metadata(tmp_path, hub):
    """``tiny-qwen2.5-vl`` cannot be rebuilt by ``AutoProcessor`` (its video slot): a hub id
    must find ``aot_defender.json`` in the snapshot as a local path does."""
    model, proc = build_tiny("tiny-qwen2.5-vl")
    Defender(model, proc, "qwen2_5_vl").save(tmp_path / "q")
    _hub_cache(hub, "owner/qwen", tmp_path / "q")
    d = load_defender("owner/qwen")
    assert d.arch == "qwen2_5_vl" and d.processor.image_processor is not None


@pytest.mark.parametrize("name", ["tiny-aot-vlm", "text-only"])
def test_hub_id_whose_processor_cannot_take_images_is_an_error(name, tmp_path, hub):
    """Weights and a tokenizer only: never a silent text-only run; the error names the id."""
    if name == "text-only":  # a model type AutoProcessor has no processor for: it returns the tokenizer
        from transformers import LlamaConfig, LlamaForCausalLM

        _, proc = build_tiny("tiny-aot-vlm")
        tok = proc.tokenizer
        LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)).save_pretrained(tmp_path / "m")
    else:
        model, proc = build_tiny(name)
        tok = proc.tokenizer
        model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    _hub_cache(hub, "owner/bare", tmp_path / "m")
    with pytest.raises(ValueError, match=r"owner/bare: .*(cannot take images|no processor that can take images)"):
        load_defender("owner/bare")


def test_unknown_hub_id_offline_names_it(hub):
    with pytest.raises(FileNotFoundError, match="owner/missing.*offline"):
        load_defender("owner/missing")
