"""The photo backend: item files and their errors, the V*/POPE adapters, the edit language, the
integrity checks on the shipped sample (a hand-made bad edit of each kind caught, a good one
passed), an edit through a tiny FluxFill that leaves target boxes bit-identical, scene extension
by outpainting, and random programs through the seam."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aot.backends import Backend, Edit
from aot.backends.photos import (
    SAMPLE, DetectorCheck, Detection, MllmCheck, PhotoBackend, PhotoBackendConfig, PhotoDataError, PhotoJudgeConfig,
    PhotoParseError, SsimCheck, format_program, load_records, parse_program, pope_records, vstar_records, write_jsonl,
)
from aot.backends.photos.backend import PhotoEditState
from aot.backends.photos.detector import OwlDetector
from aot.backends.photos.editor import PhotoEditResult
from aot.backends.photos.sampling import PhotoRandomAttacker
from aot.cli import error_message
from aot.data.answerers import ScriptedAnswerer
from aot.editors import EditorConfig
from aot.seeds import is_eval_seed

TINY_FILL = EditorConfig(pipeline="FluxFillPipeline", path="tiny", steps=2, work_size=64)


@pytest.fixture(scope="module")
def backend() -> PhotoBackend:
    return PhotoBackend(config=PhotoBackendConfig(editor=TINY_FILL, extend_px=16))


def by_id(b: PhotoBackend, rid: str):
    rec = next(r for r in b.records if r.id == rid)
    return b._item(rec, 7)


# --- the item file ------------------------------------------------------------------------
def test_the_sample_loads_with_both_splits_and_no_shared_photo(backend):
    recs = backend.records
    assert len(recs) >= 12 and backend.data_file == SAMPLE
    train, ev = backend.split_records("train"), backend.split_records("eval")
    assert train and ev and len(train) + len(ev) == len(recs)
    assert not {r.image_ref for r in train} & {r.image_ref for r in ev}
    for r in recs:  # every target lies inside its photo and is labelled for the detector
        h, w = r.image.shape[:2]
        assert all(0 <= t.box[0] < t.box[2] <= w and 0 <= t.box[1] < t.box[3] <= h and t.label for t in r.question.targets)


def test_items_are_deterministic_cycle_and_carry_the_split_seeds(backend):
    a = backend.items("train", 30, 3, seed=1)
    b = backend.items("train", 30, 3, seed=1)
    assert [i.id for i in a] == [i.id for i in b] and len({i.seed for i in a}) == 30
    assert {i.id for i in a} == {r.id for r in backend.split_records("train")}  # 30 > 17: every one, cycled
    assert [i.id for i in backend.items("train", 17, 4)] != [i.id for i in a[:17]]  # another slot, another order
    ev = backend.items("eval", 3, 0)
    assert all(is_eval_seed(i.seed) for i in ev) and not any(is_eval_seed(i.seed) for i in a)
    assert {i.question.kind for i in backend.items("train", 5, 0, kinds=["count"])} == {"count"}
    with pytest.raises(ValueError, match="unknown question kind"):
        backend.items("train", 1, 0, kinds=["colour"])


GOOD = {"id": "q1", "image": "skimage:coffee", "question": "What lies next to the cup?", "options": ["a spoon", "a fork"],
        "answer": "a spoon", "targets": [{"box": [318, 65, 425, 325], "label": "spoon"}]}


@pytest.mark.parametrize("change, message", [
    ({"image": "photos/missing.jpg"}, "image not found"),
    ({"image": "skimage:lena"}, "no scikit-image photo 'lena'"),
    ({"targets": [{"box": [500, 300, 620, 380], "label": "spoon"}]}, "target 0 box [500, 300, 620, 380] is empty or outside the 600x400 image"),
    ({"answer": "a knife"}, "answer 'a knife' is not among the options"),
    ({"answer": "C"}, "answer 'C' is not among the options"),
    ({"options": ["a spoon"]}, "expected 2 to 4 options"),
    ({"kind": "colour"}, "kind 'colour' is not one of"),
    ({"colour": "red"}, "unknown field(s) colour"),
    ({"id": "q0"}, "id 'q0' repeats the record at"),
])
def test_a_bad_record_is_one_error_naming_file_and_line(tmp_path, change, message):
    path = tmp_path / "items.jsonl"
    write_jsonl([{**GOOD, "id": "q0"}, {**GOOD, **change}], path)
    with pytest.raises(PhotoDataError) as e:
        load_records(path)
    assert str(e.value).startswith(f"{path}:2: ") and message in str(e.value)
    assert isinstance(e.value, ValueError) and "\n" not in error_message(e.value)  # the CLI prints it as one `error:` line


def test_parquet_records_and_bad_json_lines(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([GOOD, {**GOOD, "id": "q2", "answer": "B"}]), tmp_path / "structs.parquet")
    pq.write_table(pa.Table.from_pylist([{**GOOD, "targets": json.dumps(GOOD["targets"])}]), tmp_path / "text.parquet")
    recs = load_records(tmp_path / "structs.parquet") + load_records(tmp_path / "text.parquet")
    assert [r.question.answer for r in recs] == ["A", "B", "A"] and {r.question.targets[0].label for r in recs} == {"spoon"}
    pq.write_table(pa.Table.from_pylist([GOOD, {**GOOD, "id": "q2", "answer": "C"}]), tmp_path / "bad.parquet")
    with pytest.raises(PhotoDataError, match=r"bad.parquet:row 2: answer 'C' is not among"):
        load_records(tmp_path / "bad.parquet")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(PhotoDataError, match=rf"^{bad}:2: invalid JSON"):
        load_records(bad)


def test_a_relative_image_path_is_read_beside_the_file_and_split_by_photo(tmp_path):
    (tmp_path / "img").mkdir()
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(tmp_path / "img" / "a.png")
    rec = {"image": "img/a.png", "question": "Is there a dog?", "options": ["yes", "no"], "answer": "no", "absent": ["dog"]}
    write_jsonl([rec, {**rec, "question": "Is there a cat?"}, {**rec, "question": "Is there a cow?", "split": "eval"}], tmp_path / "x.jsonl")
    recs = load_records(tmp_path / "x.jsonl", eval_fraction=0.0)
    assert [r.split for r in recs] == ["train", "train", "eval"]  # hashed by photo; an explicit split wins
    assert recs[0].id == "x.jsonl:1" and recs[0].question.spec["absent"] == ["dog"] and recs[0].image.shape == (40, 60, 3)
    assert [r.split for r in load_records(tmp_path / "x.jsonl", eval_fraction=1.0)] == ["eval"] * 3


def test_replay_keys_are_relative_to_the_data_file_so_a_moved_folder_still_replays(tmp_path):
    import shutil

    src = tmp_path / "a"
    (src / "img").mkdir(parents=True)
    Image.fromarray(np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3)).save(src / "img" / "a.png")
    rec = {"image": "img/a.png", "question": "Is there a dog?", "options": ["yes", "no"], "answer": "no", "absent": ["dog"]}
    write_jsonl([rec, {**rec, "question": "Is there a cat?"}], src / "x.jsonl")
    item = PhotoBackend(src / "x.jsonl", PhotoBackendConfig(eval_fraction=0.0)).items("train", 1, 0)[0]
    key = PhotoBackend(src / "x.jsonl", PhotoBackendConfig(eval_fraction=0.0)).replay_key(item)
    assert key["photo"]["image"] == "img/a.png"
    shutil.move(src, tmp_path / "b")
    moved = PhotoBackend(tmp_path / "b" / "x.jsonl", PhotoBackendConfig(eval_fraction=0.0))
    again = moved.replay(key, item.question)
    assert np.array_equal(again.image, item.image) and moved.replay_key(again) == key


# --- adapters -----------------------------------------------------------------------------
def test_vstar_folder_maps_onto_records(tmp_path):
    bench = tmp_path / "vstar_bench"
    for cat, name, size in (("direct_attributes", "sa_1", (80, 60)), ("relative_position", "sa_2", (50, 50))):
        (bench / cat).mkdir(parents=True)
        Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(bench / cat / f"{name}.jpg")
    (bench / "direct_attributes" / "sa_1.json").write_text(json.dumps({
        "question": "What is the color of the glove?", "options": ["white", "black", "red", "blue"],
        "target_object": ["glove"], "bbox": [[10, 5, 20.4, 30]]}))
    (bench / "relative_position" / "sa_2.json").write_text(json.dumps({
        "question": "Is the cup on the left or right side of the dog?", "options": ["left", "right"],
        "target_object": ["cup", "dog"], "bbox": [[1, 1, 10, 10], [30, 30, 25, 25]]}))
    out = tmp_path / "items.jsonl"
    write_jsonl(vstar_records(bench, out_dir=tmp_path), out)
    a, b = load_records(out)
    assert a.id == "direct_attributes/sa_1" and a.question.kind == "attribute" and a.question.answer_text == "white"
    assert sorted(a.question.options) == sorted(["white", "black", "red", "blue"])
    assert a.question.targets[0].box == (10, 5, 30, 35) and a.question.targets[0].label == "glove"
    assert b.question.kind == "relation" and b.question.answer_text == "left"
    assert b.question.targets[1].box == (30, 30, 50, 50)  # [30, 30, 55, 55] clipped to the 50x50 photo
    assert json.loads(out.read_text().splitlines()[0])["image"] == "vstar_bench/direct_attributes/sa_1.jpg"
    (bench / "relative_position" / "sa_2.jpg").unlink()
    with pytest.raises(PhotoDataError, match="sa_2.json: no photo beside it"):
        vstar_records(bench)


def test_pope_file_maps_onto_records_with_coco_boxes(tmp_path):
    (tmp_path / "val2014").mkdir()
    Image.fromarray(np.zeros((100, 120, 3), np.uint8)).save(tmp_path / "val2014" / "COCO_val2014_000000000001.jpg")
    lines = [{"question_id": 1, "image": "COCO_val2014_000000000001.jpg", "text": "Is there a dog in the image?", "label": "yes"},
             {"question_id": 2, "image": "COCO_val2014_000000000001.jpg", "text": "Is there a dining table in the image?", "label": "no"}]
    q = tmp_path / "coco_pope_adversarial.json"
    q.write_text("".join(json.dumps(x) + "\n" for x in lines))
    coco = {"images": [{"id": 1, "file_name": "COCO_val2014_000000000001.jpg"}], "categories": [{"id": 18, "name": "dog"}],
            "annotations": [{"image_id": 1, "category_id": 18, "bbox": [10, 20, 30, 40], "iscrowd": 0},
                            {"image_id": 1, "category_id": 18, "bbox": [0, 0, 120, 100], "iscrowd": 1}]}
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    out = tmp_path / "pope.jsonl"
    write_jsonl(pope_records(q, tmp_path / "val2014", tmp_path / "instances.json", out_dir=tmp_path), out)
    yes, no = load_records(out)
    assert yes.id == "pope-adversarial-1" and yes.question.answer_text == "yes" and yes.question.kind == "existence"
    assert [(t.box, t.label) for t in yes.question.targets] == [((10, 20, 40, 60), "dog")]  # the crowd box skipped
    assert no.question.answer_text == "no" and no.question.targets == () and no.question.spec["absent"] == ["dining table"]
    q.write_text(json.dumps({**lines[0], "text": "What is this?"}) + "\n")
    with pytest.raises(PhotoDataError, match=r"coco_pope_adversarial.json:1: cannot read the object"):
        pope_records(q, tmp_path / "val2014")


# --- the edit language --------------------------------------------------------------------
def test_programs_round_trip_and_errors_name_line_and_column():
    text = "add 420 40 500 120 a small brown dog\nreplace 1 2 30 40 a potted plant\nremove 0 0 5 5\npatch 1 1 9 9 grey\nperturb 3 3 9 9 8 7\nphoto brightness=1.1 blur=0.5 seed=3"
    prog = parse_program(text, max_ops=6)
    assert format_program(prog) == text and [op.name for op in prog] == ["add", "replace", "remove", "patch", "perturb", "photo"]
    assert prog[0].box == (420, 40, 500, 120) and prog[5].box is None and prog[5].GLOBAL
    for bad, where in [("add 1 2 30 40", "line 1, col 14"), ("patch 1 1 9 9 grey\nadd 5 5 2 9 dog", "line 2, col 9"),
                       ("add 1 2 30 40 Dog", "line 1, col 15"), ("photo blur=9", "line 1, col 12"), ("remove 1 2 3 4 x", "line 1, col 16"),
                       ("paint 1 2 3 4", "line 1, col 1"), ("photo\nphoto\nphoto\nphoto\nphoto", "line 5, col 1")]:
        with pytest.raises(PhotoParseError) as e:
            parse_program(bad)
        assert str(e.value).startswith(where), (bad, str(e.value))


# --- integrity on the sample: a hand-made bad edit of each kind -----------------------------
class CopyDetector:
    """A stand-in open-vocabulary detector: finds exact copies of given crops (phrase -> crops)."""

    def __init__(self, crops: dict[str, list[np.ndarray]]):
        self.crops = crops

    def detect(self, image, phrases):
        found = []
        for p in phrases:
            for c in self.crops.get(p, []):
                h, w = c.shape[:2]
                ys, xs = np.nonzero((image[: image.shape[0] - h + 1, : image.shape[1] - w + 1] == c[0, 0]).all(-1))
                found += [Detection(p, (int(x), int(y), int(x) + w, int(y) + h), 1.0) for y, x in zip(ys, xs)
                          if np.array_equal(image[y : y + h, x : x + w], c)]
        return found


def crops_of(item) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for t in item.targets:
        out.setdefault(t.label, []).append(item.image[t.box[1] : t.box[3], t.box[0] : t.box[2]])
    return out


ALL_CHECKS = PhotoJudgeConfig(detector=DetectorCheck(enabled=True, match_iou=0.5), mllm=MllmCheck(enabled=True))


def hand_edit(item, img: np.ndarray, box) -> Edit:
    """An edit made by hand: ``img``, declared as one located op at ``box``."""
    program = parse_program(f"patch {box[0]} {box[1]} {box[2]} {box[3]} grey")
    res = PhotoEditResult(img, program, (box,), (0,), ())
    return Edit(img, program, (box,), (0,), (img != item.image).any(-1), PhotoEditState(res))


def pasted(item, src_box, at) -> Edit:
    """A hand-made edit: the crop ``src_box`` of the photo pasted with its top-left at ``at``."""
    x0, y0, x1, y1 = src_box
    img = item.image.copy()
    img[at[1] : at[1] + y1 - y0, at[0] : at[0] + x1 - x0] = item.image[y0:y1, x0:x1]
    return hand_edit(item, img, (at[0], at[1], at[0] + x1 - x0, at[1] + y1 - y0))


def test_a_good_edit_passes_every_check(backend):
    item = by_id(backend, "coins-top-row")
    b = PhotoBackend(config=backend.config, editor=backend.editor, detector=CopyDetector(crops_of(item)), mllm_judge=ScriptedAnswerer(0.0))
    a = b.attempt(item, "patch 20 90 120 150 grey\nperturb 150 250 250 300 4 1", ALL_CHECKS)
    assert a.passed, a.reasons
    assert set(a.verdict.ssim.values()) == {1.0} and a.verdict.answer_after == "six" and b.target_check(item, a.edit) == ()
    a = b.attempt(item, "patch 20 90 120 150 grey\nphoto brightness=1.05")  # a mild global op: under the SSIM bar
    assert a.passed and 0.85 <= min(a.verdict.ssim.values()) < 1.0, a.reasons


def test_an_edit_over_a_target_is_caught_by_the_box_ssim_and_detector_checks(backend):
    item = by_id(backend, "coffee-spoon")
    b = PhotoBackend(config=backend.config, editor=backend.editor, detector=CopyDetector(crops_of(item)), mllm_judge=ScriptedAnswerer(0.0))
    a = b.attempt(item, "patch 330 200 420 320 brown", ALL_CHECKS)
    kinds = {r.split(":")[0] for r in a.reasons}
    assert a.stage == "integrity" and kinds == {"box overlaps target", "target changed", "target lost"}, a.reasons
    assert b.target_check(item, a.edit) == ("target changed: target 0 (spoon) pixels differ",)
    # each check alone catches it: SSIM without the box check, the detector without both
    only_ssim = PhotoJudgeConfig(boxes=dataclass_off(PhotoJudgeConfig().boxes))
    assert {r.split(":")[0] for r in b.judge(item, a.edit, only_ssim).reasons} == {"target changed"}
    only_det = PhotoJudgeConfig(boxes=dataclass_off(PhotoJudgeConfig().boxes), ssim=SsimCheck(enabled=False), detector=ALL_CHECKS.detector)
    assert {r.split(":")[0] for r in b.judge(item, a.edit, only_det).reasons} == {"target lost"}


def dataclass_off(check):
    import dataclasses

    return dataclasses.replace(check, enabled=False)


def test_a_duplicate_of_a_target_is_caught_by_the_detector_only(backend):
    item = by_id(backend, "coins-top-row")  # "how many coins in the top row": a seventh changes the count
    b = PhotoBackend(config=backend.config, editor=backend.editor, detector=CopyDetector(crops_of(item)))
    ed = pasted(item, item.targets[0].box, (15, 240))  # below the rows, clear of every target
    cfg = PhotoJudgeConfig(detector=ALL_CHECKS.detector)
    v = b.judge(item, ed, cfg)
    assert not v.passed and len(v.reasons) == 1 and v.reasons[0].startswith("new instance: the detector finds a new 'coin' at [15, 240, 60, 286]")
    assert b.judge(item, ed).passed  # boxes and SSIM alone cannot see a duplicate: why the detector is there


def test_a_new_instance_of_an_absent_phrase_breaks_a_no_answer(backend):
    item = by_id(backend, "chelsea-dog")
    dog = np.full((30, 40, 3), 17, np.uint8)  # what the stand-in detector calls a dog
    img = item.image.copy()
    img[200:230, 20:60] = dog
    ed = hand_edit(item, img, (20, 200, 60, 230))
    b = PhotoBackend(config=backend.config, editor=backend.editor, detector=CopyDetector({"dog": [dog]}))
    v = b.judge(item, ed, PhotoJudgeConfig(detector=ALL_CHECKS.detector))
    assert v.reasons == ("new instance: the detector finds a new 'dog' at [20, 200, 60, 230] (score 1.00)",)


def test_box_outside_a_strong_global_op_and_the_mllm_judge(backend):
    item = by_id(backend, "rocket-count")
    a = backend.attempt(item, "patch 600 380 700 460 black")
    assert a.reasons == ("box outside canvas: op 1 (patch) box [600, 380, 700, 460] not inside 640x427",)
    a = backend.attempt(item, "photo contrast=0.5 blur=3 noise=32")
    assert a.stage == "integrity" and a.reasons[0].startswith("low SSIM: target 0 (rocket)")
    says_no = lambda images, questions, n, seed, temperature: [[" no \\boxed{B}"] for _ in images]  # noqa: E731
    b = PhotoBackend(config=backend.config, editor=backend.editor, mllm_judge=says_no)
    a = b.attempt(item, "patch 10 10 50 50 grey", PhotoJudgeConfig(mllm=MllmCheck(enabled=True)))
    assert a.reasons == ("judge: the MLLM judge says the answer no longer holds (no)",)
    with pytest.raises(ValueError, match="no judge was given"):
        backend.attempt(item, "patch 10 10 50 50 grey", PhotoJudgeConfig(mllm=MllmCheck(enabled=True)))
    with pytest.raises(ValueError, match="takes a PhotoJudgeConfig"):
        backend.judge(item, a.edit, object())


@pytest.mark.parametrize("cls_name", ["OwlViTForObjectDetection", "Owlv2ForObjectDetection"])
def test_a_tiny_owl_detector_gives_boxes_on_the_photo(backend, cls_name):
    item = by_id(backend, "motorcycle-wheels")
    det = OwlDetector(cls_name, "tiny", threshold=0.0)
    found = det.detect(item.image, ["wheel", "dog"])
    h, w = item.image.shape[:2]
    assert found and {d.phrase for d in found} == {"wheel", "dog"}
    assert all(0 <= d.box[0] < d.box[2] <= w and 0 <= d.box[1] < d.box[3] <= h for d in found)
    b = PhotoBackend(config=backend.config, editor=backend.editor, detector=det)
    v = b.judge(item, b.edit(item, parse_program("patch 10 10 60 60 grey")), PhotoJudgeConfig(detector=DetectorCheck(enabled=True, threshold=0.0)))
    assert isinstance(v.passed, bool) and all(r.startswith(("new instance", "target lost")) for r in v.reasons)


# --- the diffusion editor -----------------------------------------------------------------
def test_an_edit_through_a_tiny_fluxfill_keeps_every_target_box_bit_identical(backend):
    item = by_id(backend, "motorcycle-wheels")
    text = "add 560 20 700 130 a small brown dog\nremove 20 400 110 490\nreplace 300 420 460 495 a red ball"
    a = backend.attempt(item, text)
    assert a.passed, a.reasons
    img = a.edit.image
    for t in item.targets:
        x0, y0, x1, y1 = t.box
        assert np.array_equal(img[y0:y1, x0:x1], item.image[y0:y1, x0:x1])
    inside = np.zeros(item.image.shape[:2], bool)
    for x0, y0, x1, y1 in a.edit.touched_boxes:
        inside[y0:y1, x0:x1] = True
    assert a.edit.mask.any() and not (a.edit.mask & ~inside).any()  # changed pixels: only inside the op boxes
    assert np.array_equal(backend.edit(item, a.program).image, img)  # same item and program, same bytes
    again, again_img = backend.replay_image(backend.replay_key(item), item.question, text, item.seed)
    assert np.array_equal(again_img, img) and np.array_equal(again.image, item.image)


def test_scene_extension_outpaints_around_the_photo_and_replays(backend):
    g = backend.grow(5, np.random.default_rng(0), "count", "photo", "extended")
    assert g.item is not None, g.reasons
    p, it = 16, g.item
    rec = next(r for r in backend.records if r.id == it.id)
    h, w = rec.image.shape[:2]
    assert it.image.shape == (h + 2 * p, w + 2 * p, 3) and np.array_equal(it.image[p : p + h, p : p + w], rec.image)
    assert [t.box for t in it.targets] == [(x0 + p, y0 + p, x1 + p, y1 + p) for x0, y0, x1, y1 in (t.box for t in rec.question.targets)]
    assert np.array_equal(backend.replay(backend.replay_key(it), it.question).image, it.image)
    assert backend.grow(5, np.random.default_rng(0), "count", "photo", "photo").item.image is rec.image
    assert backend.grow(5, np.random.default_rng(0), "relation", "photo", "extended").stage == "question"


# --- through the seam ---------------------------------------------------------------------
def test_random_programs_go_through_attempt_and_a_defender(backend):
    """What the loop does with a backend, written out: propose, attempt, ask the defender."""
    assert isinstance(backend, Backend) and backend.name == "photos"
    items = backend.items("train", 24, 0)
    texts = PhotoRandomAttacker(max_ops=2, p_target_phrase=0.0).propose(items)
    assert texts == PhotoRandomAttacker(max_ops=2, p_target_phrase=0.0).propose(items)
    attempts = [backend.attempt(it, t) for it, t in zip(items, texts)]
    assert all(a.stage in (None, "integrity") for a in attempts)  # every random program parses and applies
    passed = [(it, a) for it, a in zip(items, attempts) if a.passed]
    assert len(passed) >= len(attempts) // 2
    defender = ScriptedAnswerer(0.3)
    answers = defender([a.edit.image for _, a in passed], [it.question for it, _ in passed], 1, 0, 0.0)
    assert len(answers) == len(passed) and all(len(x) == 1 for x in answers)


def test_the_random_attackers_write_photo_programs_through_the_backend(backend):
    """``random`` and ``random-all`` (listed among the attackers for any backend) on photos:
    seeded per item, boxes clear of the targets, an ``ops`` filter that skips the world's
    relative ops and refuses a list with no photo op."""
    from aot.attack import RandomAttacker, make_attacker, takes_backend

    items = backend.items("train", 12, 2)
    texts = make_attacker("random", backend=backend).propose(items)
    assert texts == make_attacker("random", backend=backend).propose(items)
    assert texts != make_attacker("random", backend=backend).propose(backend.items("train", 12, 3))
    assert takes_backend("random-all") and make_attacker("random-all", backend=backend).propose(items) == texts  # no relative photo ops: the same draw
    attempts = [backend.attempt(it, t) for it, t in zip(items, texts)]
    assert all(a.stage in (None, "integrity") for a in attempts) and sum(a.passed for a in attempts) >= 9
    ops = {line.split(" ", 1)[0] for t in texts for line in t.splitlines()}
    assert len(ops) >= 4 and ops <= {"add", "replace", "remove", "patch", "perturb", "photo"}
    patches = RandomAttacker(backend=backend, kinds=("patch", "move")).propose(items)
    assert all(line.startswith("patch ") for t in patches for line in t.splitlines())
    with pytest.raises(ValueError, match="no photo op among"):
        RandomAttacker(backend=backend, kinds=("twin", "mimic")).propose(items[:1])


def test_random_adds_paint_target_labels_only_when_asked(backend):
    """``random_target_phrase``: the duplicate only the detector check catches is written only
    when the config asks for it."""
    items = backend.items("train", 16, 0)
    asked = PhotoBackend(config=PhotoBackendConfig(editor=TINY_FILL, random_target_phrase=1.0))
    for b, want in ((backend, False), (asked, True)):
        hits = []
        for it in items:
            phrases = {"a " + p for p in [t.label for t in it.targets] + list(it.question.spec.get("absent", []))}
            if phrases:  # a question with something to duplicate
                hits += [line.split(" ", 5)[5] in phrases for line in b.random_program(it, np.random.default_rng(it.seed), 4, ("add",)).splitlines()]
        assert hits and all(hits) == want and any(hits) == want
    with pytest.raises(ValueError, match="random_target_phrase must be in"):
        PhotoBackendConfig(random_target_phrase=1.5)
