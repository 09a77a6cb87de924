"""The born world editor and the world judge: exact data, training, save/load, Flow-GRPO on it,
precision/recall, the integrity verdict of pixel edits, and both verbs for a few steps."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("diffusers")

from aot.editors.box_ops import BoxEdit  # noqa: E402
from aot.editors.world_data import FILL_OPS, FillMix, WORLD_BACKGROUND_PROMPT, describe_obj, make_triple, stack, train_batch  # noqa: E402
from aot.editors.world_editor import (  # noqa: E402
    TINY_WORLD_ARCH, WorldEditorArch, build_world_pipeline, flow_inputs, flow_loss, load_world_editor, load_world_pipeline,
    save_world_editor, state_dict, trainable_modules, world_editor_config, world_tokenizer,
)
from aot.editors.world_fidelity import fill_scores  # noqa: E402
from aot.editors.world_loop import lr_at  # noqa: E402
from aot.editors.world_train import CHECKPOINT_FILE, EditorTrainConfig, pretrain_editor  # noqa: E402
from aot.editors.world_vae import PixelShuffleVAE  # noqa: E402
from aot.judge.detections import Counts, Detection, Truth, match, truth_detections  # noqa: E402
from aot.judge.model import JudgeArch, WorldJudge, cell_targets, decode, judge_loss, load_judge, save_judge, training_batch  # noqa: E402
from aot.judge.verdict import judge_verdict  # noqa: E402
from aot.vqa import Question, Target  # noqa: E402
from aot.world import Obj, Scene, render  # noqa: E402

TINY = TINY_WORLD_ARCH
TINY_FLUX = replace(TINY_WORLD_ARCH, backbone="flux")
BACKBONES = pytest.mark.parametrize("arch", [TINY, TINY_FLUX], ids=["unet", "flux"])


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --- data ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("regime", ["simple", "complex"])
@pytest.mark.parametrize("op", FILL_OPS)
def test_triples_are_exact_renders_equal_outside_the_box(op, regime):
    for seed in range(6):
        t = make_triple(seed, regime, op)
        assert np.array_equal(t.image, render(t.before)) and np.array_equal(t.target, render(t.after))
        m = t.mask()
        assert np.array_equal(t.image[~m], t.target[~m])  # the fill alone can reach the target
        assert not np.array_equal(t.image[m], t.target[m])  # and it has something to do
        x0, y0, x1, y1 = t.box
        assert 0 <= x0 < x1 <= t.image.shape[1] and 0 <= y0 < y1 <= t.image.shape[0]
        n_before, n_after = len(t.before.objects), len(t.after.objects)
        if op == "add":
            assert n_after == n_before + 1 and t.after.objects[-1] == t.obj and t.obj.depth > t.before.top_depth()
        elif op == "remove":
            assert n_after == n_before - 1 and t.prompt == WORLD_BACKGROUND_PROMPT and t.obj is None
        else:
            old = t.before.get(t.obj.id)
            assert n_after == n_before and old.attrs() != t.obj.attrs() and (old.x, old.y, old.depth) == (t.obj.x, t.obj.y, t.obj.depth)
        if t.obj is not None:
            assert t.prompt == describe_obj(t.obj) == f"{t.obj.size} {t.obj.color} {t.obj.material} {t.obj.shape}"


def test_train_batch_is_a_function_of_seed_and_step():
    a, b = train_batch(3, 4, FillMix(), seed=1), train_batch(3, 4, FillMix(), seed=1)
    assert all(np.array_equal(x.target, y.target) and x.prompt == y.prompt for x, y in zip(a, b))
    c = train_batch(4, 4, FillMix(), seed=1)
    assert not all(np.array_equal(x.image, y.image) for x, y in zip(a, c))
    assert len({t.image.shape for t in a}) == 1  # one regime per batch


def test_ema_update_hand_computed():
    from aot.editors.world_train import update_ema

    ema = {"w": torch.tensor([0.0, 10.0]), "n": torch.tensor([1])}
    update_ema(ema, {"w": torch.tensor([1.0, 0.0]), "n": torch.tensor([7])}, decay=0.9)
    assert torch.allclose(ema["w"], torch.tensor([0.1, 9.0])) and ema["n"].item() == 7


def test_lr_schedule_hand_computed():
    assert lr_at(0, 1.0, 4, 14) == pytest.approx(0.25)
    assert lr_at(3, 1.0, 4, 14) == pytest.approx(1.0)
    assert lr_at(9, 1.0, 4, 14, floor=0.1) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert lr_at(14, 1.0, 4, 14, floor=0.1) == pytest.approx(0.1)


# --- the pipeline's parts -----------------------------------------------------------------------------
def test_pixel_shuffle_vae_round_trip_is_exact():
    vae = PixelShuffleVAE(**PixelShuffleVAE.channels(4))
    x = torch.randn(2, 3, 16, 24)
    z = vae.encode(x).latents
    assert z.shape == (2, 48, 4, 6) and torch.equal(vae.decode(z, return_dict=False)[0], x)
    assert torch.equal(z[0, :, 1, 2].view(3, 4, 4), x[0, :, 4:8, 8:12])  # channel c*16 + 4 dy + dx is pixel (dy, dx) of c
    with pytest.raises(ValueError, match="power of two"):
        PixelShuffleVAE(factor=3)


def test_tokenizer_has_one_token_per_world_word():
    tok = world_tokenizer(8)
    ids = tok("small red metal circle", padding="max_length", max_length=8).input_ids
    assert tok.convert_ids_to_tokens(ids)[:5] == ["▁small", "▁red", "▁metal", "▁circle", "</s>"]
    assert tok.convert_ids_to_tokens(tok(WORLD_BACKGROUND_PROMPT).input_ids) == ["▁empty", "▁background", "</s>"]


@BACKBONES
def test_training_inputs_are_the_ones_the_pipeline_feeds_the_transformer(arch):
    pipe = build_world_pipeline(arch)
    t = make_triple(1, "simple", "add")
    seen = []
    pipe.transformer.register_forward_pre_hook(lambda m, a, kw: seen.append(kw), with_kwargs=True)
    pipe(prompt=t.prompt, image=Image.fromarray(t.image), mask_image=Image.fromarray(t.mask().astype(np.uint8) * 255),
         height=64, width=64, num_inference_steps=2, max_sequence_length=8, output_type="np")
    mine = flow_inputs(pipe, *stack([t]))
    kw = seen[0]
    lc4 = 4 * pipe.vae.config.latent_channels
    assert torch.allclose(kw["hidden_states"][..., lc4:], mine.cond, atol=1e-6)  # masked image + mask, packed
    for k in ("encoder_hidden_states", "pooled_projections", "txt_ids", "img_ids"):
        assert torch.allclose(kw[k], mine.text[k], atol=1e-6), k
    assert kw["timestep"].item() == pytest.approx(1.0)  # sigma 1 first: the transformer gets sigma, as in training
    assert mine.token_mask.sum() > 0 and not mine.token_mask.all()


@BACKBONES
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(arch):
    pipe = build_world_pipeline(arch, seed=0)
    params = [p for m in trainable_modules(pipe).values() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3)
    batch = stack(train_batch(0, 4, FillMix(complex_frac=0.0)))

    def loss() -> torch.Tensor:  # the same noise and noise levels every time
        return flow_loss(pipe, flow_inputs(pipe, *batch), torch.Generator().manual_seed(0))[0]

    with torch.no_grad():
        before = loss().item()
    for _ in range(8):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        after = loss().item()
    assert after < 0.8 * before


@BACKBONES
def test_save_load_round_trip_is_exact(tmp_path, arch):
    pipe = build_world_pipeline(arch, seed=3)
    path = save_world_editor(pipe, arch, tmp_path)
    again = load_world_pipeline(tmp_path)
    a, b = state_dict(pipe), state_dict(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    t = make_triple(2, "simple", "add")
    from aot.editors import DiffusersEditor

    ed1 = load_world_editor(path, steps=2)
    ed2 = DiffusersEditor(world_editor_config(tmp_path, steps=2))  # EditorConfig.path names a saved world editor
    edit = BoxEdit("add", t.box, t.prompt)
    assert np.array_equal(ed1.apply_box(t.image, edit, seed=5)[0], ed2.apply_box(t.image, edit, seed=5)[0])
    with pytest.raises(ValueError, match="not a saved world editor"):
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
        load_world_pipeline(tmp_path / "other.safetensors")


def test_unet_pack_and_unpack_are_the_pipelines_layout():
    from aot.editors.world_unet import pack, unpack

    pipe = build_world_pipeline(TINY)
    z = torch.randn(2, 12, 8, 6)
    packed = pipe._pack_latents(z, 2, 12, 8, 6)  # [2, 12, 48]
    assert torch.equal(pack(z), packed) and torch.equal(unpack(packed, 12, 8, 6), z)


def test_unet_predicts_the_known_image_outside_the_mask_and_a_velocity():
    pipe = build_world_pipeline(TINY, seed=1)
    inputs = flow_inputs(pipe, *stack([make_triple(3, "simple", "add"), make_triple(5, "simple", "replace")]))
    xs = torch.randn(inputs.x0.shape)
    s = torch.tensor([0.6, 0.02])
    kw = dict(hidden_states=torch.cat([xs, inputs.cond], -1), timestep=s, guidance=None, **inputs.text)
    with torch.no_grad():
        x0 = pipe.transformer.predict_x0(**kw)
        v = pipe.transformer(**kw, return_dict=False)[0]
    lc4 = 4 * pipe.vae.config.latent_channels
    outside = ~inputs.token_mask  # tokens without a masked pixel: the masked image is the clean image there
    assert torch.equal(x0[outside], inputs.cond[..., :lc4][outside])
    assert torch.equal(x0[outside], inputs.x0[outside])
    # v = (x_s - x0) / max(sigma, 0.05): the second item's sigma 0.02 is floored
    assert torch.allclose(v[0], (xs[0] - x0[0]) / 0.6, atol=1e-5) and torch.allclose(v[1], (xs[1] - x0[1]) / 0.05, atol=1e-4)


def test_x0_weighting_is_the_velocity_loss_times_sigma_squared():
    pipe = build_world_pipeline(TINY, seed=2)
    inputs = flow_inputs(pipe, *stack([make_triple(7, "simple", "add")]))
    with torch.no_grad():
        lv, _ = flow_loss(pipe, inputs, torch.Generator().manual_seed(4), weighting="velocity", sigma_mean=0.5)
        lx, _ = flow_loss(pipe, inputs, torch.Generator().manual_seed(4), weighting="x0", sigma_mean=0.5)
    from aot.editors.world_editor import SIGMA_FLOOR, sample_sigmas

    s = sample_sigmas(1, torch.Generator().manual_seed(4), mean=0.5).item()  # the draw flow_loss made first
    assert lx.item() == pytest.approx(lv.item() * max(s, SIGMA_FLOOR) ** 2, rel=1e-5)
    with pytest.raises(ValueError, match="weighting"):
        flow_loss(pipe, inputs, torch.Generator().manual_seed(4), weighting="eps")


def test_box_edits_paste_back_outside_the_mask():
    from aot.editors import DiffusersEditor

    editor = DiffusersEditor(world_editor_config(steps=2), pipe=build_world_pipeline(TINY))
    for op in FILL_OPS:
        t = make_triple(4, "complex", op)
        out, mask = editor.apply_box(t.image, BoxEdit(op, t.box, t.prompt if t.obj else ""))
        assert out.shape == t.image.shape and np.array_equal(out[~mask], t.image[~mask]) and np.array_equal(mask, t.mask())


def test_resumed_training_takes_the_same_steps(tmp_path):
    kw = dict(arch=TINY, batch_size=2, save_every=2, log_every=1, progress=False, threads=1, warmup=1)
    straight = pretrain_editor(EditorTrainConfig(out=str(tmp_path / "a"), steps=4, **kw))
    pretrain_editor(EditorTrainConfig(out=str(tmp_path / "b"), steps=4, time_budget_min=1e-9, **kw))  # stops after 1 step
    resumed = pretrain_editor(EditorTrainConfig(out=str(tmp_path / "b"), steps=4, **kw))
    assert straight["steps_done"] == resumed["steps_done"] == 4 and resumed["resumed_from"] == 1
    a, b = state_dict(load_world_pipeline(tmp_path / "a")), state_dict(load_world_pipeline(tmp_path / "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    curve = json.loads((tmp_path / "b" / "curve.json").read_text())["curve"]
    assert [r["step"] for r in curve] == [1, 2, 3, 4]
    from safetensors.torch import load_file

    ckpt = load_file(str(tmp_path / "a" / CHECKPOINT_FILE))  # the shipped weights are the moving average
    assert all(torch.equal(a[k], ckpt[f"ema.{k}"]) for k in a) and not all(torch.equal(a[k], ckpt[k]) for k in a)


# --- Flow-GRPO on the world editor ----------------------------------------------------------------
@BACKBONES
def test_record_sde_and_recompute_log_prob_on_the_world_editor(arch):
    pytest.importorskip("peft")
    from aot.editors import DiffusersEditor
    from aot.rl.flow_grpo import FillRequest, FlowGRPOConfig, FlowGRPOTrainer, SDEConfig, record_sde, recompute_log_prob

    pipe = build_world_pipeline(arch)
    editor = DiffusersEditor(world_editor_config(steps=3), pipe=pipe)
    t = make_triple(0, "simple", "add")
    with record_sde(pipe, SDEConfig(), seed=1) as calls, torch.no_grad():
        out = editor.inpaint_many(t.image, t.mask(), t.prompt, seed=1, n=2)
    assert out.shape == (2, 64, 64, 3) and len(calls) == 1 and [r.index for r in calls[0]] == [0, 1, 2]
    for rec in calls[0]:
        with torch.no_grad():
            logp, _ = recompute_log_prob(pipe.transformer, rec, 0.7)
        assert torch.allclose(logp, rec.log_prob, atol=1e-5)
    trainer = FlowGRPOTrainer(editor, lambda imgs, reqs: [float(i[..., 0].mean()) for i in imgs], FlowGRPOConfig(group_size=2))
    stats = trainer.step([FillRequest(t.image, t.mask(), t.prompt)], seed=0)
    assert stats["policy/ratio_mean"] == pytest.approx(1.0, abs=1e-5) and np.isfinite(stats["grad/norm"])


# --- the judge: truth, precision / recall, targets, decoding ----------------------------------------
def det(x, y, color="red", shape="circle", material="matte", size="medium", score=1.0):
    return Detection(x, y, color, shape, material, size, score)


def test_match_precision_recall_hand_computed():
    truth = Truth(counted=[det(10, 10), det(30, 30, "blue", "square")], ignored=[det(50, 50)])
    pred = [
        det(11, 10, score=0.9),  # on the red circle, all attributes right
        det(30, 31, "blue", "ring", score=0.8),  # on the blue square, shape wrong
        det(50, 51, score=0.7),  # on the ignored object: no error
        det(70, 70, score=0.6),  # on nothing
    ]
    c = match(pred, truth, max_dist=3.0)
    assert (c.tp, c.fp, c.fn, c.exact) == (2, 1, 0, 1)
    s = c.summary()
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == 1.0
    assert s["exact_precision"] == pytest.approx(1 / 3) and s["exact_recall"] == pytest.approx(1 / 2)
    assert s["acc_shape"] == 0.5 and s["acc_color"] == 1.0
    missed = match([det(10, 14)], truth, max_dist=3.0)  # 4 px away: a false positive and two misses
    assert (missed.tp, missed.fp, missed.fn) == (0, 1, 2)
    total = c + missed
    assert (total.tp, total.fp, total.fn, total.attr_right["shape"]) == (2, 2, 2, 1)
    assert Counts().summary()["precision"] == 0.0


def test_a_higher_score_takes_the_contested_object():
    truth = Truth(counted=[det(10, 10)], ignored=[])
    c = match([det(10, 11, "blue", score=0.4), det(11, 10, score=0.9)], truth)
    assert (c.tp, c.fp, c.exact) == (1, 1, 1)  # the 0.9 detection (right colour) matched first


def scene_of(*objs: Obj, size: int = 64) -> Scene:
    return Scene(width=size, height=size, objects=tuple(objs))


def obj(i, x, y, color="red", shape="circle", material="matte", size="medium", depth=None):
    return Obj(id=i, shape=shape, color=color, material=material, size=size, x=x, y=y, depth=i if depth is None else depth)


def test_truth_detections_split_by_visibility():
    hidden = obj(0, 20, 20, size="small", depth=0)
    cover = obj(1, 20, 20, "blue", "square", size="large", depth=1)  # fully in front of it
    half = obj(2, 0, 40)  # half off the canvas edge: centred on it
    free = obj(3, 44, 44, "green")
    t = truth_detections(scene_of(hidden, cover, half, free), min_visible=0.6)
    assert [d.color for d in t.counted] == ["blue", "green"]
    assert [(d.x, d.y) for d in t.ignored] == [(0, 40)]  # hidden wholly: neither counted nor ignored


def test_cell_targets_hand_made():
    s = scene_of(obj(0, 10.5, 6.25, "blue", "square", "metal", "large"))
    t = cell_targets(s, cell=4, min_visible=0.5)
    assert t.shape == (16, 16, 7)
    # centre (10.5, 6.25) lies in cell column 2, row 1, at (0.625, 0.5625) of it
    assert t[1, 2, 0] == 1 and t[1, 2, 1:3].tolist() == [0.625, 0.5625]
    assert t[1, 2, 3:].tolist() == [5, 1, 1, 2]  # blue, square, metal, large
    assert t[0, 1, 0] == -1 and t[2, 3, 0] == -1 and t[1, 4, 0] == 0  # neighbours left out; further cells negative
    assert (t[..., 3] >= 0).sum() == 1


def test_decode_reads_a_peak_hand_made():
    out = torch.full((23, 4, 4), -10.0)
    out[0, 2, 1] = 5.0  # centre in row 2, column 1
    out[0, 2, 2] = 3.0  # weaker neighbour: suppressed
    out[1:3, 2, 1] = 0.0  # offset sigmoid(0) = 0.5
    out[3 + 4, 2, 1] = 5.0  # colour index 4: cyan
    out[11 + 6, 2, 1] = 5.0  # shape index 6: hexagon
    out[18 + 1, 2, 1] = 5.0  # metal
    out[20 + 0, 2, 1] = 5.0  # small
    (d,) = decode(out, cell=4, threshold=0.5)
    assert (d.x, d.y, d.color, d.shape, d.material, d.size) == (6.0, 10.0, "cyan", "hexagon", "metal", "small")


def test_decode_gives_one_detection_for_two_saturated_neighbours():
    """Logits of 30 and 40 both give a sigmoid of exactly 1.0 in float32: peaks are found on the
    logits, so the object is one detection (found on the trained judge: 600 duplicates in 500
    simple scenes before); an exact logit tie in touching cells also keeps one."""
    out = torch.full((23, 4, 4), -10.0)
    out[0, 1, 1], out[0, 2, 1] = 40.0, 30.0
    assert float(torch.sigmoid(out[0, 1, 1])) == float(torch.sigmoid(out[0, 2, 1])) == 1.0
    assert len(decode(out, cell=4, threshold=0.5)) == 1
    out[0, 2, 1] = 40.0  # exact tie
    assert len(decode(out, cell=4, threshold=0.5)) == 1
    out[0, 3, 3] = 40.0  # a separate object two cells away stays
    assert len(decode(out, cell=4, threshold=0.5)) == 2


def test_judge_training_lowers_its_loss_and_saves_exactly(tmp_path):
    torch.manual_seed(0)
    judge = WorldJudge(JudgeArch(width=8, context_layers=1))
    x, t = training_batch([1, 2, 3, 4], "simple", judge.arch)
    opt = torch.optim.AdamW(judge.parameters(), lr=5e-3)
    before = judge_loss(judge(x), t)[0].item()
    for _ in range(10):
        opt.zero_grad()
        judge_loss(judge(x), t)[0].backward()
        opt.step()
    assert judge_loss(judge(x), t)[0].item() < 0.8 * before
    again = load_judge(save_judge(judge, tmp_path))
    assert again.arch == judge.arch and all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(), again.state_dict().values()))


# --- the integrity verdict of pixel edits -----------------------------------------------------------
def oracle(*scenes: Scene):
    """A detector that sees exactly the scene graphs of the images it was given."""
    seen = {render(s).tobytes(): truth_detections(s).counted for s in scenes}
    return lambda images: [seen[im.tobytes()] for im in images]


RED, BLUE = obj(0, 16, 16), obj(1, 46, 44, "blue", "square", "metal")
RELATION = Question("relation", "Where is the red circle relative to the blue square?", ("left", "right"), "A",
                    (Target(0, RED.box()), Target(1, BLUE.box())),
                    {"kind": "relation", "a": {"color": "red", "shape": "circle"}, "b": {"color": "blue", "shape": "square"}})


def edit_of(clean: Scene, edited: Scene, box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mask = np.zeros((clean.height, clean.width), bool)
    mask[box[1] : box[3], box[0] : box[2]] = True
    return render(clean), render(edited), mask


def test_verdict_flags_a_duplicate_of_a_target():
    clean = scene_of(RED, BLUE)
    dup = obj(2, 40, 14, "red", "circle", "metal", "small")
    edited = clean.with_objects(clean.objects + (dup,))
    v = judge_verdict(*edit_of(clean, edited, (34, 8, 46, 20)), RELATION, oracle(clean, edited))
    assert not v.passed and len(v.reasons) == 1 and v.reasons[0].startswith("duplicate: new object (small red metal circle)")
    assert "matches a 'red circle'" in v.reasons[0] and v.ssim == {0: 1.0, 1: 1.0} and v.answer_after is None


def test_verdict_passes_a_distractor_and_flags_the_asked_kind():
    clean = scene_of(RED, BLUE)
    ring = obj(2, 40, 14, "green", "ring")
    edited = clean.with_objects(clean.objects + (ring,))
    args = edit_of(clean, edited, (34, 8, 46, 20))
    assert judge_verdict(*args, RELATION, oracle(clean, edited)).passed
    count = Question("count", "How many rings are there?", ("0", "1", "2"), "A", (), {"kind": "count", "ref": {"shape": "ring"}})
    v = judge_verdict(*args, count, oracle(clean, edited))
    assert not v.passed and "matches ref 'ring'" in v.reasons[0]


def test_verdict_flags_a_destroyed_target():
    clean = scene_of(RED, BLUE)
    edited = clean.with_objects((obj(0, 16, 16, "yellow", "triangle"), BLUE))  # painted over the red circle
    box = (RED.box()[0] - 1, RED.box()[1] - 1, RED.box()[2] + 1, RED.box()[3] + 1)
    v = judge_verdict(*edit_of(clean, edited, box), RELATION, oracle(clean, edited))
    assert not v.passed and v.ssim[1] == 1.0 and v.ssim[0] < 0.85
    assert any(r.startswith("target destroyed: target 0 (medium red matte circle) is gone, the judge reads medium yellow matte triangle") for r in v.reasons)


# --- fidelity scores of one fill -----------------------------------------------------------------------
def test_fill_scores_of_a_perfect_and_a_wrong_fill():
    t = make_triple(7, "simple", "add")
    m = t.mask()
    truth = truth_detections(t.after).counted
    perfect = fill_scores(t, t.target, m, truth, truth)
    assert perfect["described"] == perfect["exact_attrs"] == perfect["judge_ceiling"] == 1.0
    assert perfect["inside_mae"] == 0.0 and perfect["outside_identical"] == 1.0 and perfect["ssim_outside"] == pytest.approx(1.0)
    other = "blue" if t.obj.color != "blue" else "red"
    wrong = [d._replace(color=other) if (d.x, d.y) == (t.obj.x, t.obj.y) else d for d in truth]
    assert fill_scores(t, t.image, m, wrong, truth)["described"] == 0.0


# --- the verbs ------------------------------------------------------------------------------------------
def test_pretrain_judge_and_editor_verbs_run_resume_and_measure(tmp_path):
    from aot.cli import main

    j, e = tmp_path / "judge", tmp_path / "editor"
    common = ["--batch-size", "2", "--no-progress", "--threads", "1"]
    assert main(["pretrain-judge", "--out", str(j), "--steps", "2", "--eval-n", "4", *common]) == 0
    assert json.loads((j / "curve.json").read_text())["eval"]["complex"]["scenes"] == 4
    assert main(["pretrain-editor", "--out", str(e), "--steps", "1", *common]) == 0
    assert main(["pretrain-editor", "--out", str(e), "--steps", "2", "--fidelity-n", "3", "--judge", str(j),
                 "--sample-steps", "2", "--regime", "simple", *common]) == 0
    assert json.loads((e / "curve.json").read_text())["steps_done"] == 2
    fid = json.loads((e / "fidelity_simple.json").read_text())
    assert fid["n"] == 3 and fid["outside_identical"] == 1.0 and fid["ssim_outside_min"] == pytest.approx(1.0)
    assert main(["pretrain-editor", "--out", str(e), "--fidelity-n", "2", *common]) == 2  # no --judge: a usage error


def test_box_coords_hand_computed():
    from aot.editors.world_unet import box_coords

    m = torch.zeros(1, 1, 6, 8)
    m[0, 0, 1:4, 2:6] = 1  # rows 1..3: centre 2, half-height 1.5; columns 2..5: centre 3.5, half-width 2
    c = box_coords(m)
    assert c.shape == (1, 4, 6, 8)
    assert c[0, 0, 0, 0].item() == pytest.approx(-3.5 / 8) and c[0, 1, 5, 0].item() == pytest.approx(3 / 8)
    assert c[0, 2, 0, 0].item() == pytest.approx(-3.5 / 2) and c[0, 3, 0, 0].item() == pytest.approx(-2 / 1.5)
    assert box_coords(torch.zeros(2, 1, 4, 4)).abs().sum().item() == 0.0  # no mask, no box


def test_crop_windows_hand_computed():
    from aot.editors.world_unet import crop_windows

    m = torch.zeros(2, 1, 96, 64)
    m[0, 0, 10:20, 40:50] = 1  # rows 10..19, columns 40..49: centre 15 / 45
    m[1, 0, 80:96, 0:4] = 1  # at the bottom-left corner: the window is clamped inside the canvas
    (y0, x0), (sy, sx) = crop_windows(m, side=32, multiple=8)
    assert (sy, sx) == (32, 32)  # boxes of 10 and 16 pixels + 8 a side fit in the minimum
    assert (y0, x0) == ([0, 64], [29, 0])  # 15 - 16 = -1 -> 0; 88 - 16 = 72 -> clamped to 96 - 32 = 64
    m[0, 0, 10:40, 10:40] = 1  # rows 10..39: 30 + 16 -> 48; columns 10..49 (with the first box): 40 + 16 -> 56
    assert crop_windows(m, side=32, multiple=8)[1] == (48, 56)
    big = torch.ones(1, 1, 64, 64)
    assert crop_windows(big, side=32, multiple=8) == (([0], [0]), (64, 64))  # never beyond the canvas
