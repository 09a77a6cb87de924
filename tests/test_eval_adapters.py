"""Real-file adapters (POPE question files, V*-style JSON) on fixtures made here."""

import json

import numpy as np
import pytest
from PIL import Image

from aot.eval import EvalConfig, run_suite
from aot.eval.adapters import AdapterError, load_pope, load_vstar, parse_llava_text
from aot.eval.metrics import pope_metrics
from aot.eval.stubs import ConstantDefender


def _img(path, color, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture
def pope_dir(tmp_path):
    imgs = tmp_path / "val2014"
    for i in range(4):
        _img(imgs / f"COCO_{i}.jpg", (10 * i, 20, 30))
    labels = {"random": ["yes", "no", "yes", "no"], "adversarial": ["no", "no", "yes", "no"]}
    files = []
    for subset, ls in labels.items():
        f = tmp_path / f"coco_pope_{subset}.json"
        rows = [{"question_id": i + 1, "image": f"COCO_{i}.jpg", "text": f"Is there a thing{i} in the image?", "label": l} for i, l in enumerate(ls)]
        f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        files.append(f)
    return tmp_path, imgs, files, labels


def test_pope_loader_and_metrics(pope_dir):
    root, imgs, files, labels = pope_dir
    items = load_pope(",".join(map(str, files)), imgs)
    assert len(items) == 8
    assert [it.meta["subset"] for it in items] == ["random"] * 4 + ["adversarial"] * 4
    it = items[1]
    assert it.question.options == ("yes", "no") and it.question.answer == "B" and it.image.shape == (30, 40, 3)
    assert it.question.text == "Is there a thing1 in the image?" and it.meta["question_id"] == 2
    assert load_pope(files[0], imgs, limit=2)[1].meta["label"] == "no"
    # a model that always says "no" (letter B)
    cfg = EvalConfig(pope_questions=",".join(map(str, files)), pope_images=str(imgs))
    res = run_suite(ConstantDefender("\\boxed{B}"), "pope-file", cfg)
    m = res["metrics"]
    for s, ls in labels.items():
        want = pope_metrics(["no"] * len(ls), ls)
        for k in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
            assert m[f"pope-file/greedy/{s}/{k}"] == pytest.approx(want[k])
            assert m[f"pope-file/strict3/{s}/{k}"] == pytest.approx(want[k])
    assert m["pope-file/greedy/adversarial/accuracy"] == 0.75 and m["pope-file/greedy/random/recall"] == 0.0
    assert m["pope-file/greedy/mean/accuracy"] == pytest.approx((0.5 + 0.75) / 2)


def test_pope_errors(tmp_path):
    _img(tmp_path / "a.jpg", (0, 0, 0))
    f = tmp_path / "pope_custom.jsonl"
    f.write_text(json.dumps({"question_id": 1, "image": "a.jpg", "text": "Is there a cat?", "label": "maybe"}) + "\n")
    with pytest.raises(AdapterError, match=r"pope_custom.jsonl:1: label must be"):
        load_pope(f)
    f.write_text(json.dumps({"question_id": 1, "image": "missing.jpg", "text": "Is there a cat?", "label": "yes"}) + "\n")
    with pytest.raises(AdapterError, match="image not found"):
        load_pope(f)
    f.write_text('{"image": "a.jpg"\n')
    with pytest.raises(AdapterError, match="invalid JSON"):
        load_pope(f)
    f.write_text(json.dumps({"image": "a.jpg", "label": "yes"}) + "\n")
    with pytest.raises(AdapterError, match="missing field"):
        load_pope(f)
    with pytest.raises(ValueError, match="pope-file needs"):
        run_suite(ConstantDefender(), "pope-file", EvalConfig())
    # a file whose name names no POPE subset keeps its stem as the subset
    f.write_text(json.dumps({"question_id": 1, "image": "a.jpg", "text": "Is there a cat?", "label": "yes"}) + "\n")
    res = run_suite(ConstantDefender("\\boxed{A}"), "pope-file", EvalConfig(pope_questions=str(f)))
    assert res["metrics"]["pope-file/greedy/pope_custom/accuracy"] == 1.0


def test_vstar_documented_form(tmp_path):
    _img(tmp_path / "imgs" / "a.png", (200, 0, 0), (64, 48))
    _img(tmp_path / "imgs" / "b.png", (0, 200, 0), (64, 48))
    recs = [
        {"id": "q1", "image": "a.png", "question": "What is the colour of the cup?", "options": ["red", "blue", "green", "white"],
         "answer": "A", "category": "direct_attributes", "targets": [[1, 2, 10, 12.6]]},
        {"id": "q2", "image": "b.png", "question": "Is the cup left or right of the plate?", "options": ["left", "right"],
         "answer": "right", "category": "relative_position"},
        {"id": "q3", "image": "b.png", "question": "What colour?", "options": ["green", "red"], "answer": "(A)", "category": "direct_attributes"},
    ]
    f = tmp_path / "vstar.json"
    f.write_text(json.dumps(recs))
    items = load_vstar(f, tmp_path / "imgs")
    assert [it.question.answer for it in items] == ["A", "B", "A"]
    assert items[0].question.targets[0].box == (1, 2, 10, 13) and items[1].question.options == ("left", "right")
    assert items[0].image.shape == (48, 64, 3)
    # {"items": [...]} and JSON lines read the same
    (tmp_path / "v2.json").write_text(json.dumps({"items": recs}))
    (tmp_path / "v3.jsonl").write_text("\n".join(json.dumps(r) for r in recs))
    for p in ("v2.json", "v3.jsonl"):
        assert [it.question for it in load_vstar(tmp_path / p, tmp_path / "imgs")] == [it.question for it in items]
    res = run_suite(ConstantDefender("\\boxed{A}"), "vstar-file", EvalConfig(vstar_file=str(f), vstar_images=str(tmp_path / "imgs")))
    m = res["metrics"]
    assert m["vstar-file/greedy/accuracy"] == pytest.approx(2 / 3)
    assert m["vstar-file/greedy/direct_attributes/accuracy"] == 1.0 and m["vstar-file/greedy/relative_position/accuracy"] == 0.0
    assert m["vstar-file/strict3/accuracy"] == pytest.approx(2 / 3)
    # limit via n
    assert run_suite(ConstantDefender(), "vstar-file", EvalConfig(n=1, vstar_file=str(f), vstar_images=str(tmp_path / "imgs")))["timing"]["items"] == 1


def test_vstar_llava_form(tmp_path):
    _img(tmp_path / "direct_attributes" / "sa_1.jpg", (1, 2, 3))
    text = "What is the material of the glove?\n(A) rubber\n(B) cotton\n(C) leather\n(D) polyester\nAnswer with the option's letter from the given choices directly."
    f = tmp_path / "test_questions.jsonl"
    f.write_text(json.dumps({"image": "direct_attributes/sa_1.jpg", "text": text, "category": "direct_attributes", "question_id": 0, "label": "C"}) + "\n")
    (it,) = load_vstar(f)
    assert it.question.text == "What is the material of the glove?"
    assert it.question.options == ("rubber", "cotton", "leather", "polyester") and it.question.answer == "C"
    assert it.meta["subset"] == "direct_attributes" and it.meta["id"] == 0
    assert parse_llava_text("Q?\n(A) x\n(B) y", "w") == ("Q?", ["x", "y"])
    with pytest.raises(AdapterError, match="in order"):
        parse_llava_text("Q?\n(B) x", "w")


def test_vstar_errors(tmp_path):
    _img(tmp_path / "a.png", (0, 0, 0))
    f = tmp_path / "v.json"
    for rec, msg in [
        ({"image": "a.png", "question": "Q", "options": ["x"], "answer": "A"}, "2 to 4 options"),
        ({"image": "a.png", "question": "Q", "options": ["x", "y"], "answer": "C"}, "neither a letter"),
        ({"image": "a.png", "question": "Q", "options": ["x", "y"]}, "missing field"),
        ({"image": "a.png", "question": "Q", "options": ["x", "y"], "answer": "A", "targets": [[1, 2, 3]]}, "target box 0"),
        ({"question": "Q", "options": ["x", "y"], "answer": "A"}, "missing field.*image"),
        ({"image": "a.png", "text": "Q without options", "label": "A"}, "no '\\(A\\) ...' option lines"),
    ]:
        f.write_text(json.dumps([rec]))
        with pytest.raises(AdapterError, match=msg):
            load_vstar(f)
    with pytest.raises(AdapterError, match="not found"):
        load_vstar(tmp_path / "none.json")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    f.write_text(json.dumps([{"image": "bad.png", "question": "Q", "options": ["x", "y"], "answer": "A"}]))
    with pytest.raises(AdapterError, match="cannot read image"):
        load_vstar(f)
    assert np.asarray(Image.open(tmp_path / "a.png")).shape == (30, 40, 3)
