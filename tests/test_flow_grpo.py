"""Flow-GRPO: hand-computed maths, then rollouts and updates on a tiny random-weight FluxFill."""

import math

import numpy as np
import pytest
import torch

from aot.rl.flow_grpo import (
    FillRequest, FlowGRPOConfig, FlowGRPOTrainer, SDEConfig, clipped_policy_loss, gaussian_kl, group_advantages,
    ode_step, record_sde, recompute_log_prob, sde_mean, sde_std, sde_step,
)

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from aot.editors import DiffusersEditor, EditorConfig  # noqa: E402


# --- the SDE step ------------------------------------------------------------------------------
def test_sde_std_hand_computed_and_capped_at_sigma_one():
    assert sde_std(0.5, 0.7, 0.9) == pytest.approx(0.7)  # sqrt(0.5 / 0.5) = 1
    assert sde_std(0.2, 1.0, 0.9) == pytest.approx(0.5)  # sqrt(0.2 / 0.8)
    assert sde_std(1.0, 0.7, 0.9) == pytest.approx(0.7 * math.sqrt(10))  # 1 / (1 - 0.9), finite
    with pytest.raises(ValueError, match="sigma_cap"):
        sde_std(1.0, 0.7, 1.0)


def test_sde_step_log_prob_matches_a_hand_computed_gaussian():
    x, v = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    # sigma 0.5 -> 0.25, a = 0.7: std_s = 0.7, dt = -0.25, step std = 0.7 * 0.5 = 0.35
    # mean = x + [v + 0.49 / 1.0 * (x + 0.5 v)] * (-0.25) = [1 - 0.1225, -(2 + 0.49) * 0.25]
    _, _, mean = sde_step(x, v, 0.5, 0.25, 0.7, 0.9, next_x=x)
    assert torch.allclose(mean, torch.tensor([[0.8775, -0.6225]]), atol=1e-6)
    y = mean + 0.35 * torch.tensor([[1.0, -2.0]])  # z = (1, -2)
    _, logp, _ = sde_step(x, v, 0.5, 0.25, 0.7, 0.9, next_x=y)
    # mean over the two elements of -z^2/2 - log 0.35 - log sqrt(2 pi)
    expected = -(0.5 + 2.0) / 2 - math.log(0.35) - 0.5 * math.log(2 * math.pi)
    assert logp.shape == (1,) and logp.item() == pytest.approx(expected, abs=1e-6)  # -1.1191164


def test_sde_step_samples_mean_plus_scaled_seeded_noise():
    x, v = torch.zeros(2, 3), torch.ones(2, 3)
    y, _, mean = sde_step(x, v, 0.5, 0.25, 0.7, 0.9, generator=torch.Generator().manual_seed(7))
    z = torch.randn((2, 3), generator=torch.Generator().manual_seed(7))
    assert torch.allclose(y, mean + 0.35 * z, atol=1e-6)


def test_zero_noise_mean_is_the_euler_ode_step():
    x, v = torch.randn(2, 5), torch.randn(2, 5)
    assert torch.allclose(sde_mean(x, v, 0.6, 0.4, 0.0), ode_step(x, v, 0.6, 0.4))


def test_sde_keeps_the_flow_marginals_on_a_gaussian():
    # data x0 ~ N(0, c^2); the exact velocity E[eps - x0 | x_s] is linear in x. Sampling with the
    # SDE from pure noise must end at std c, as the ODE does: the drift's score term is right.
    c, n_steps = 0.5, 100
    sigmas = torch.linspace(1.0, 0.0, n_steps + 1).tolist()
    x = torch.randn(20000, 1, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        v = x * (s - (1 - s) * c**2) / ((1 - s) ** 2 * c**2 + s**2)
        x, _, _ = sde_step(x, v, s, s_next, 0.7, sigmas[1], generator=gen)
    assert x.std().item() == pytest.approx(c, rel=0.05)


def test_sde_window():
    w = SDEConfig(window_start=1, window_end=3)
    assert [w.is_sde_step(i) for i in range(4)] == [False, True, True, False]
    assert all(SDEConfig().is_sde_step(i) for i in range(50))
    with pytest.raises(ValueError, match="empty"):
        SDEConfig(window_start=2, window_end=2)


# --- advantages and loss -----------------------------------------------------------------------
def test_group_advantages_hand_computed():
    r = torch.tensor([[1.0, 0.0], [2.0, 2.0]])
    adv = group_advantages(r, eps=1e-4)
    assert torch.allclose(adv, torch.tensor([[0.5 / 0.5001, -0.5 / 0.5001], [0.0, 0.0]]))
    assert torch.equal(group_advantages(r, scale=False), torch.tensor([[0.5, -0.5], [0.0, 0.0]]))


def test_clipped_policy_loss_hand_computed():
    lp = torch.log(torch.tensor([1.0, 1.5, 0.5])).requires_grad_()
    old, adv = torch.zeros(3), torch.tensor([1.0, 1.0, -1.0])
    loss, stats = clipped_policy_loss(lp, old, adv, 0.2, 0.2)
    # per sample max(-A r, -A clip(r, 0.8, 1.2)) = [-1, -1.2, 0.8]
    assert loss.item() == pytest.approx(-1.4 / 3)
    assert stats["policy/clip_frac"] == pytest.approx(2 / 3)
    loss.backward()
    # clipped samples pass no gradient; d/dlp of -A r / 3 at r = 1 is -1/3
    assert torch.allclose(lp.grad, torch.tensor([-1 / 3, 0.0, 0.0]))
    loss_kl, stats = clipped_policy_loss(lp, old, adv, 0.2, 0.2, kl=torch.tensor([0.3, 0.0, 0.3]), beta=0.5)
    assert loss_kl.item() == pytest.approx(-1.4 / 3 + 0.5 * 0.2)
    assert stats["losses/kl"] == pytest.approx(0.2)


def test_gaussian_kl_hand_computed():
    # (1^2 / (2 * 0.25) + 0) averaged over 2 elements
    assert gaussian_kl(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2), 0.5).item() == pytest.approx(1.0)


# --- rollouts on a tiny FluxFill ---------------------------------------------------------------
def photo(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def square_mask() -> np.ndarray:
    m = np.zeros((32, 32), dtype=bool)
    m[8:24, 8:24] = True
    return m


def editor(pipeline: str = "FluxFillPipeline") -> DiffusersEditor:
    return DiffusersEditor(EditorConfig(pipeline=pipeline, path="tiny", steps=4))


def redness(images: np.ndarray, requests: list[FillRequest]) -> list[float]:
    """Toy reward: how red the filled region is."""
    return [float(img[r.mask][:, 0].mean() - img[r.mask][:, 1:].mean()) / 255 for img, r in zip(images, requests)]


# Qwen-Image edit appends the reference image's tokens to the latents: recompute must slice them off
@pytest.mark.parametrize("pipeline", ["FluxFillPipeline", "QwenImageEditInpaintPipeline"])
def test_recorded_steps_recompute_to_1e5_and_ratio_is_exactly_one(pipeline):
    ed = editor(pipeline)
    with record_sde(ed.pipe, SDEConfig(window_end=2), seed=0) as calls:
        ed.inpaint_many(photo(), square_mask(), "a red cube", seed=0, n=3)
    assert len(calls) == 1 and [r.index for r in calls[0]] == [0, 1]
    first = calls[0][0]
    assert first.sigma == 1.0 and 0 < first.sigma_cap < 1 and first.log_prob.shape == (3,)
    assert torch.isfinite(first.log_prob).all()
    for rec in calls[0]:
        lp, _ = recompute_log_prob(ed.pipe.transformer, rec, 0.7)
        assert lp.requires_grad
        assert torch.allclose(lp, rec.log_prob, atol=1e-5, rtol=0)
        assert torch.equal(torch.exp(lp - rec.log_prob), torch.ones(3))


def test_steps_outside_the_window_are_the_stock_ode_sampler():
    ed = editor()
    plain = ed.inpaint(photo(), square_mask(), "a red cube", seed=0)
    with record_sde(ed.pipe, SDEConfig(window_start=10, window_end=11), seed=0) as calls:
        same = ed.inpaint(photo(), square_mask(), "a red cube", seed=0)
    with record_sde(ed.pipe, SDEConfig(window_end=1), seed=0):
        noisy = ed.inpaint(photo(), square_mask(), "a red cube", seed=0)
    assert calls == [[]]
    assert same.tobytes() == plain.tobytes()
    assert noisy.tobytes() != plain.tobytes()
    assert "step" not in vars(ed.pipe.scheduler)  # the wrapper is gone after the block


def test_pipelines_without_a_flow_matching_scheduler_are_refused():
    sd = DiffusersEditor(EditorConfig(pipeline="StableDiffusionInpaintPipeline", steps=2))
    with pytest.raises(ValueError, match="not a flow-matching transformer pipeline"):
        with record_sde(sd.pipe, SDEConfig(), seed=0):
            pass


def requests() -> list[FillRequest]:
    return [FillRequest(photo(0), square_mask(), "a red cube"), FillRequest(photo(1), square_mask(), "a lamp")]


def test_rollouts_are_seeded():
    trainer = FlowGRPOTrainer(editor(), redness, FlowGRPOConfig(group_size=3, sde=SDEConfig(window_end=2)))
    a, b = trainer.rollout(requests(), seed=5), trainer.rollout(requests(), seed=5)
    assert a.images.shape == (6, 32, 32, 3) and a.rewards.shape == (2, 3)
    assert a.images.tobytes() == b.images.tobytes()
    assert torch.equal(a.steps[1][0].log_prob, b.steps[1][0].log_prob)
    assert a.images.tobytes() != trainer.rollout(requests(), seed=6).images.tobytes()


def test_two_training_steps_change_the_lora_weights_and_nothing_else(tmp_path):
    ed = editor()
    cfg = FlowGRPOConfig(group_size=3, learning_rate=1e-2, sde=SDEConfig(window_end=2))
    trainer = FlowGRPOTrainer(ed, redness, cfg)
    before = {f"{name}.{k}": v.clone() for name, m in ed.pipe.components.items() if isinstance(m, torch.nn.Module)
              for k, v in m.state_dict().items()}
    first = trainer.step(requests(), seed=0)
    assert first["policy/ratio_mean"] == 1.0 and first["policy/clip_frac"] == 0.0  # on-policy
    assert first["grad/norm"] > 0
    trainer.step(requests(), seed=1)
    after = {f"{name}.{k}": v for name, m in ed.pipe.components.items() if isinstance(m, torch.nn.Module)
             for k, v in m.state_dict().items()}
    assert before.keys() == after.keys()
    lora = [k for k in after if "lora_" in k]
    assert lora and all(not torch.equal(before[k], after[k]) for k in lora)
    assert all(torch.equal(before[k], after[k]) for k in after if "lora_" not in k)
    trainer.save_lora(str(tmp_path / "lora.safetensors"))
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "lora.safetensors"))
    assert saved and all("lora_" in k for k in saved)


def test_an_update_moves_the_log_prob_and_the_kl_to_the_reference():
    cfg = FlowGRPOConfig(group_size=3, learning_rate=1e-2, beta=0.1, sde=SDEConfig(window_end=1))
    trainer = FlowGRPOTrainer(editor(), redness, cfg)
    rollouts = trainer.rollout(requests(), seed=0)
    stats = trainer.update(rollouts)
    assert stats["losses/kl"] == 0.0  # LoRA starts at zero: policy = reference
    rec = rollouts.steps[0][0]
    lp, _ = recompute_log_prob(trainer.pipe.transformer, rec, 0.7)
    assert not torch.allclose(lp, rec.log_prob, atol=1e-7, rtol=0)  # off-policy now: ratio != 1
    assert trainer.update(rollouts)["losses/kl"] > 0


def test_reward_must_give_one_float_per_image():
    trainer = FlowGRPOTrainer(editor(), lambda images, reqs: [0.0], FlowGRPOConfig(group_size=2))
    with pytest.raises(ValueError, match="rewards for 4 images"):
        trainer.rollout(requests(), seed=0)
