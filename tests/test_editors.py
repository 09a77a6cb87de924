"""The diffusers mask-inpainting editor on tiny random-weight pipelines, and its pixel bookkeeping."""

import sys

import numpy as np
import pytest

from aot.editors import BoxEdit, DiffusersEditor, EditorConfig, box_mask, box_prompt, box_request, outpaint_canvas, paste_back
from aot.editors.canvas import as_pad, crop, pad_image, pad_to_multiple
from aot.editors.qwen_size import small_image_sizes

pytest.importorskip("diffusers")


def photo(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def square_mask(h: int = 64, w: int = 64) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[16:40, 20:44] = True
    return m


@pytest.fixture(scope="module")
def flux_fill() -> DiffusersEditor:
    return DiffusersEditor(EditorConfig(pipeline="FluxFillPipeline", path="tiny", steps=4))


# --- pure pixel functions ------------------------------------------------------------------
def test_pad_to_multiple_hand_computed():
    assert pad_to_multiple(64, 64, 16) == (0, 0, 0, 0)
    assert pad_to_multiple(50, 37, 16) == (0, 14, 0, 11)  # 50 -> 64, 37 -> 48
    img = photo(50, 37)
    padded = pad_image(img, (0, 14, 0, 11))
    assert padded.shape == (64, 48, 3)
    assert np.array_equal(padded[49, 40], img[49, 36])  # edge pixel repeated
    assert np.array_equal(crop(padded, (0, 14, 0, 11)), img)


def test_paste_back_takes_fill_only_inside_the_mask():
    a = np.zeros((2, 3, 3), np.uint8)
    b = np.full((2, 3, 3), 9, np.uint8)
    m = np.array([[True, False, False], [False, False, True]])
    out = paste_back(a, b, m)
    assert out[:, :, 0].tolist() == [[9, 0, 0], [0, 0, 9]]


def test_outpaint_canvas_masks_exactly_the_border():
    canvas, border = outpaint_canvas(photo(4, 5), (1, 2, 3, 0))
    assert canvas.shape == (7, 8, 3) and border.shape == (7, 8)
    assert border.sum() == 7 * 8 - 4 * 5
    assert not border[1:5, 3:8].any()
    assert as_pad(2) == (2, 2, 2, 2)
    with pytest.raises(ValueError, match="not all zero"):
        outpaint_canvas(photo(4, 5), (0, 0, 0, 0))


def test_box_ops_give_mask_and_prompt():
    m = box_mask((10, 20), (2, 3, 7, 5))  # x0, y0, x1, y1, exclusive ends
    assert m.sum() == 5 * 2 and m[3, 2] and m[4, 6] and not m[5, 6] and not m[3, 7]
    assert box_prompt(BoxEdit("add", (0, 0, 2, 2), "small wooden clock")) == "small wooden clock"
    assert box_prompt(BoxEdit("replace", (0, 0, 2, 2), " red mug ")) == "red mug"
    mask, prompt = box_request((10, 20), BoxEdit("remove", (0, 0, 2, 2)), background="just grass")
    assert prompt == "just grass" and mask.sum() == 4
    with pytest.raises(ValueError, match="outside"):
        box_mask((10, 20), (15, 0, 21, 5))
    with pytest.raises(ValueError, match="needs a description"):
        BoxEdit("add", (0, 0, 2, 2))
    with pytest.raises(ValueError, match="op must be one of"):
        BoxEdit("move", (0, 0, 2, 2), "x")


fake_calls: list = []


def calculate_dimensions(target_area, ratio):  # stands in for a Qwen pipeline module's function
    fake_calls.append(target_area)
    return 1024, 1024, None


VAE_IMAGE_SIZE = 1024 * 1024


class FakeQwenPipeline:
    pass


def test_small_image_sizes_overrides_and_restores_the_module_sizes():
    mod = sys.modules[__name__]
    with small_image_sizes(FakeQwenPipeline(), 48, 80):
        assert mod.calculate_dimensions(1024 * 1024, 80 / 48) == (80, 48, None)
        assert mod.VAE_IMAGE_SIZE == 48 * 80
    assert mod.calculate_dimensions(1, 1.0) == (1024, 1024, None)
    assert mod.VAE_IMAGE_SIZE == 1024 * 1024


# --- the editor on tiny pipelines ----------------------------------------------------------
def test_inpaint_keeps_every_pixel_outside_the_mask(flux_fill):
    img, mask = photo(), square_mask()
    out = flux_fill.inpaint(img, mask, "a red cube", seed=1)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], img[~mask])
    assert (out[mask] != img[mask]).any()  # the fill painted something


def test_same_seed_same_bytes_other_seed_other_bytes(flux_fill):
    img, mask = photo(), square_mask()
    a = flux_fill.inpaint(img, mask, "a red cube", seed=3)
    b = flux_fill.inpaint(img, mask, "a red cube", seed=3)
    c = flux_fill.inpaint(img, mask, "a red cube", seed=4)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_prompt_changes_the_fill(flux_fill):
    img, mask = photo(), square_mask()
    a = flux_fill.inpaint(img, mask, "a red cube", seed=0)
    b = flux_fill.inpaint(img, mask, "blue sphere", seed=0)
    assert a.tobytes() != b.tobytes()


def test_group_of_fills_in_one_batch(flux_fill):
    img, mask = photo(), square_mask()
    group = flux_fill.inpaint_many(img, mask, "a red cube", seed=5, n=3)
    assert group.shape == (3, 64, 64, 3)
    assert all(np.array_equal(g[~mask], img[~mask]) for g in group)
    assert group[0].tobytes() != group[1].tobytes()


def test_odd_size_is_padded_and_cropped(flux_fill):
    img = photo(50, 37, seed=2)
    mask = np.zeros((50, 37), bool)
    mask[40:50, 30:37] = True  # touches the padded corner
    out = flux_fill.inpaint(img, mask, "a lamp", seed=0)
    assert out.shape == img.shape
    assert np.array_equal(out[~mask], img[~mask])


def test_work_size_resizes_for_the_pipeline_and_back():
    ed = DiffusersEditor(EditorConfig(path="tiny", steps=2, work_size=32))
    img, mask = photo(), square_mask()
    out = ed.inpaint(img, mask, "a lamp", seed=0)
    assert out.shape == img.shape and np.array_equal(out[~mask], img[~mask])


def test_outpaint_extends_the_scene_around_the_untouched_original(flux_fill):
    img = photo(32, 48)
    out = flux_fill.outpaint(img, (8, 8, 16, 0), "a busy street", seed=0)
    assert out.shape == (48, 64, 3)
    assert np.array_equal(out[8:40, 16:64], img)
    border = np.ones(out.shape[:2], bool)
    border[8:40, 16:64] = False
    edge_copy = pad_image(img, (8, 8, 16, 0))
    assert (out[border] != edge_copy[border]).any()  # the border was painted, not left as padding


def test_apply_box_paints_only_the_box(flux_fill):
    img = photo()
    out, mask = flux_fill.apply_box(img, BoxEdit("add", (10, 12, 30, 28), "shiny silver canister"), seed=0)
    assert mask.sum() == 20 * 16
    assert np.array_equal(out[~mask], img[~mask])


@pytest.mark.parametrize(
    "pipeline",
    ["StableDiffusionInpaintPipeline", "FluxInpaintPipeline", "QwenImageInpaintPipeline", "QwenImageEditInpaintPipeline"],
)
def test_other_pipelines_keep_pixels_outside_the_mask(pipeline):
    ed = DiffusersEditor(EditorConfig(pipeline=pipeline, path="tiny", steps=2))
    img, mask = photo(), square_mask()
    out = ed.inpaint(img, mask, "a red cube", seed=0)  # the Qwen edit pipeline runs at 64x64, not 1024
    assert np.array_equal(out[~mask], img[~mask])
    assert (out[mask] != img[mask]).any()
    assert out.tobytes() == ed.inpaint(img, mask, "a red cube", seed=0).tobytes()
    assert out.tobytes() != ed.inpaint(img, mask, "blue sphere", seed=0).tobytes()  # the prompt reaches the model


def test_bad_inputs_are_refused_with_a_reason(flux_fill):
    img = photo()
    with pytest.raises(ValueError, match="uint8"):
        flux_fill.inpaint(img.astype(np.float32), square_mask(), "x")
    with pytest.raises(ValueError, match="bool array of shape"):
        flux_fill.inpaint(img, square_mask(32, 32), "x")
    with pytest.raises(ValueError, match="empty"):
        flux_fill.inpaint(img, np.zeros((64, 64), bool), "x")
    with pytest.raises(ValueError, match="no tiny build"):
        DiffusersEditor(EditorConfig(pipeline="NoSuchPipeline"))
    with pytest.raises(ValueError, match="steps"):
        EditorConfig(steps=0)


def test_the_real_qwen_edit_module_is_kept_at_the_asked_size():
    from diffusers import QwenImageEditInpaintPipeline
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_inpaint as mod

    pipe = object.__new__(QwenImageEditInpaintPipeline)  # only its class's module matters
    with small_image_sizes(pipe, 48, 80):
        assert mod.calculate_dimensions(1024 * 1024, 80 / 48) == (80, 48, None)
    assert mod.calculate_dimensions(1024 * 1024, 1.0) == (1024, 1024, None)
