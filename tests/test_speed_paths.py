"""Every speed-up gives the same numbers as a plain reference path (CPU, float tolerance)."""

import types
import warnings

import numpy as np
import pytest
import torch as th

from sb3_boom import BOOM
from sb3_boom.optim import default_optimizer_kwargs
from sb3_boom.planner import estimate_value
from sb3_boom.presets import PRESETS
from studies.research_switches import set_float32_encoder, set_float32_outputs


def test_fused_adam_steps_match_the_multi_tensor_adam(tiny_kwargs):
    """The default optimizers (fused Adam) update the policy's parameters as torch's plain Adam does."""
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=3, **tiny_kwargs)
    assert default_optimizer_kwargs(th.optim.Adam) == {"fused": True} and model.policy.optimizer.defaults["fused"]
    groups = [
        {"params": [p.detach().clone() for p in g["params"]], "lr": g["lr"]} for g in model.policy.optimizer.param_groups
    ]
    plain = th.optim.Adam(groups, lr=3e-4, fused=False, foreach=True)
    ours = [p for g in model.policy.optimizer.param_groups for p in g["params"]]
    theirs = [p for g in plain.param_groups for p in g["params"]]
    generator = th.Generator().manual_seed(0)
    for _ in range(5):
        for a, b in zip(ours, theirs, strict=False):
            # Gradients over many scales, including values near Adam's eps, where rounding shows most.
            grad = th.randn(a.shape, generator=generator) * 10.0 ** th.randint(-9, 1, a.shape, generator=generator)
            a.grad, b.grad = grad.clone(), grad.clone()
        model.policy.optimizer.step()
        plain.step()
    for a, b in zip(ours, theirs, strict=False):
        th.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_cpu_preset_builds_what_it_names_and_trains():
    preset = PRESETS["cpu"]
    model = BOOM("MlpPolicy", "Pendulum-v1", learning_starts=20, **preset)
    policy = model.policy
    assert (policy.latent_dim, policy.mlp_dim, policy.enc_dim, policy.num_q) == (64, 128, 128, 2)
    planner = policy.planner
    assert (planner.num_samples, planner.num_elites, planner.num_pi_trajs, planner.iterations) == tuple(
        preset[key] for key in ("num_samples", "num_elites", "num_pi_trajs", "iterations")
    )
    assert model.batch_size == preset["batch_size"]
    n_parameters = sum(p.numel() for name, p in policy.named_parameters() if not name.startswith("q_target"))
    assert 1e5 < n_parameters < 5e5  # the "~18x smaller than 5M" model of the docs
    model.learn(24)  # 20 random steps, a burst of 20 updates, then planning with the preset's planner
    assert model._n_updates == 20 + 3
    sampled = []

    def recording(model_, z, actions, *args, **kwargs):
        sampled.append(tuple(actions.shape))
        return estimate_value(model_, z, actions, *args, **kwargs)

    policy._value_program = recording
    model.predict(np.zeros(3, dtype=np.float32))
    # Each iteration scores the preset's sampled sequences (the prior's proposals are rolled out once).
    assert sampled == [(model.horizon, 1, preset["num_samples"] - preset["num_pi_trajs"], 1)] * preset["iterations"]


def test_mish_matches_torch_mish_in_value_and_gradient():
    from sb3_boom.kernels import _CLOSED_FORM_MISH_MIN_NUMEL, mish

    x = th.cat([th.linspace(-60.0, 60.0, 60001), th.randn(10000) * 3, th.tensor([0.0, -0.0, 20.0, 21.0, -20.0])])
    assert x.numel() >= _CLOSED_FORM_MISH_MIN_NUMEL  # large enough for the closed form
    th.testing.assert_close(mish(x), th.nn.functional.mish(x), rtol=1e-5, atol=1e-6)  # the no-grad path
    x.requires_grad_()
    reference = x.detach().clone().requires_grad_()
    ours, theirs = mish(x), th.nn.functional.mish(reference)
    assert "SigmoidMish" in type(ours.grad_fn).__name__  # the closed-form backward, not F.mish's
    th.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    weights = th.randn_like(x)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    th.testing.assert_close(x.grad, reference.grad, rtol=1e-5, atol=1e-5)
    small = th.randn(_CLOSED_FORM_MISH_MIN_NUMEL - 1)
    th.testing.assert_close(mish(small), th.nn.functional.mish(small))
    half = x.detach().half()
    assert th.equal(mish(half), th.nn.functional.mish(half))  # float16: F.mish


def test_short_row_softmax_matches_torch_softmax_in_value_and_gradient():
    from sb3_boom.kernels import short_row_softmax
    from sb3_boom.torch_layers import SimNorm

    # Groups of 8 (SimNorm), with large and equal logits: the max subtraction must keep them finite.
    x = th.cat([th.randn(300, 8) * 5, th.full((1, 8), 80.0), th.tensor([[1e4, -1e4, 0, 0, 0, 0, 0, 0]])])
    th.testing.assert_close(short_row_softmax(x), th.softmax(x, -1), rtol=1e-5, atol=1e-6)  # the no-grad path
    x.requires_grad_()
    reference = x.detach().clone().requires_grad_()
    ours, theirs = short_row_softmax(x), th.softmax(reference, -1)
    assert "ShortRowSoftmax" in type(ours.grad_fn).__name__  # the closed-form backward
    weights = th.randn_like(ours)
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    th.testing.assert_close(x.grad, reference.grad, rtol=1e-5, atol=1e-6)
    latents = th.randn(5, 3, 64)
    th.testing.assert_close(SimNorm(8)(latents), th.softmax(latents.view(5, 3, 8, 8), -1).view(5, 3, 64))


def test_sparse_dropout_draws_the_bernoulli_mask_distribution():
    """The geometric-gap mask: Binomial(n, p) drop counts, uniform over the tensor, exact scale, gradients."""
    from sb3_boom.kernels import dropout

    th.manual_seed(0)
    p, numel, draws = 0.01, 100_000, 300
    x = th.ones(numel)
    counts, tail = [], 0
    for _ in range(draws):
        y = dropout(x, p, training=True)
        dropped = y == 0
        # Kept entries are scaled by exactly 1 / (1 - p), as F.dropout's.
        assert th.equal(y[~dropped], th.full_like(y[~dropped], 1.0 / (1.0 - p)))
        counts.append(int(dropped.sum()))
        tail += int(dropped[-numel // 10 :].sum())
    counts_t = th.tensor(counts, dtype=th.float64)
    mean, std = numel * p, (numel * p * (1 - p)) ** 0.5
    assert abs(counts_t.mean().item() - mean) < 4 * std / draws**0.5
    assert 0.85 * std < counts_t.std().item() < 1.15 * std  # Binomial spread, not a fixed count
    # The last tenth is dropped at the same rate: the drawn gaps always reach the end.
    assert abs(tail / draws - mean / 10) < 4 * (mean / 10) ** 0.5 / draws**0.5 + 1
    # Shapes, gradients (mask times scale), eval mode and dense rates.
    h = th.randn(2, 64, 32, requires_grad=True)
    out = dropout(h, 0.05, training=True)
    out.sum().backward()
    kept = out != 0
    th.testing.assert_close(out[kept], h[kept] / 0.95)
    th.testing.assert_close(h.grad, kept.float() / 0.95)
    assert dropout(h, 0.05, training=False) is h
    assert (dropout(th.ones(10_000), 0.5, training=True) == 0).float().mean().item() == pytest.approx(0.5, abs=0.05)
    # Under bf16 autocast the mask is float32, so the scale is not rounded to bf16.
    with th.autocast("cpu", dtype=th.bfloat16):
        z = dropout(th.ones(4096, dtype=th.bfloat16), p, training=True)
    assert z.dtype == th.float32 and set(z.unique().tolist()) <= {0.0, th.tensor(1.0 / (1.0 - p)).item()}


def test_compiled_programs_give_the_eager_answers(tmp_path, tiny_kwargs, monkeypatch):
    """
    BOOM(compile=True): same network outputs, planner output, update statistics and updated
    parameters as eager; saves and loads. Inductor's own random numbers differ from eager's by
    design, so the comparison makes it use eager's random ops (``fallback_random``).
    """
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, "fallback_random", True)
    # learning_starts above the steps run: learn() only fills the buffer, so that the compiled
    # programs compile once each (the test's time is mostly compilation).
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=1, compile=True, **{**tiny_kwargs, "learning_starts": 100})
    eager = BOOM("MlpPolicy", "Pendulum-v1", seed=1, **{**tiny_kwargs, "learning_starts": 100})
    eager.policy.load_state_dict(model.policy.state_dict())
    policy, reference = model.policy, eager.policy
    assert model._world_model_loss_fn is not model._world_model_loss and eager._world_model_loss_fn == eager._world_model_loss
    policy.set_training_mode(False)
    reference.set_training_mode(False)
    obs = th.randn(7, 3)
    with th.no_grad():
        th.testing.assert_close(policy.encode(obs), reference.encode(obs), rtol=1e-5, atol=1e-6)
        z, action = reference.encode(obs), th.rand(7, 1) * 2 - 1
        th.testing.assert_close(policy.next_latent(z, action), reference.next_latent(z, action), rtol=1e-5, atol=1e-6)
        th.testing.assert_close(policy.q_logits(z, action), reference.q_logits(z, action), rtol=1e-5, atol=1e-6)
    th.manual_seed(0)
    planned = policy.plan(obs)
    th.manual_seed(0)
    expected = reference.plan(obs)
    for name in ("action", "planner_action", "std", "mean", "value"):
        th.testing.assert_close(getattr(planned, name), getattr(expected, name), rtol=1e-4, atol=1e-5, msg=name)

    # Two updates through the compiled losses (forward and backward) from the same weights, batches
    # and random stream give the eager statistics, gradients and weights (the second update also
    # shows that the compiled programs read the weights the first one changed).
    model.learn(40)
    batches = [model.replay_buffer.sample(tiny_kwargs["batch_size"]) for _ in range(2)]
    for algo in (model, eager):
        algo.policy.set_training_mode(True)
        th.manual_seed(5)
        algo._stats = th.stack([algo._update(batch) for batch in batches])
    th.testing.assert_close(model._stats, eager._stats, rtol=1e-5, atol=1e-6)
    updated = dict(eager.policy.named_parameters())
    for name, param in model.policy.named_parameters():
        th.testing.assert_close(param, updated[name], rtol=1e-5, atol=1e-6, msg=name)
        if param.grad is not None:
            th.testing.assert_close(param.grad, updated[name].grad, rtol=1e-4, atol=1e-6, msg=name)
    th.testing.assert_close(model.policy.q_scale, eager.policy.q_scale)

    model.save(tmp_path / "compiled")
    loaded = BOOM.load(tmp_path / "compiled")
    assert loaded.compile and set(loaded.policy.state_dict()) == set(model.policy.state_dict())
    assert loaded._world_model_loss_fn is not loaded._world_model_loss


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_planner_multiplies_each_environments_start_latent_once_with_the_per_sample_answers(tiny_kwargs, precision):
    """
    The planner's first step passes one latent per environment ([n, 1, L]) and the dynamics and
    reward networks broadcast it without forming [z, a] per sample: same outputs as the
    concatenated per-sample input, same plan as a value estimate given per-sample latents, and
    fewer matmul FLOPs.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from sb3_boom.planner import estimate_value
    from sb3_boom.torch_layers import PairInputMLP

    model = BOOM("MlpPolicy", "Pendulum-v1", seed=4, precision=precision, **tiny_kwargs)
    policy = model.policy
    policy.set_training_mode(False)
    with th.no_grad():  # the reward output layer starts orthogonal, Q's at zero: make them non-trivial
        for parameter in policy.parameters():
            parameter.add_(0.05 * th.randn_like(parameter))
    assert isinstance(policy.dynamics, PairInputMLP) and isinstance(policy.reward_head, PairInputMLP)
    assert {"dynamics.0.linear.weight", "reward_head.0.linear.weight"} <= set(policy.state_dict())
    obs, n_samples = th.randn(3, 3), 40
    tolerance = dict(rtol=1e-5, atol=1e-5) if precision == "float32" else dict(rtol=0.02, atol=0.02)
    with th.no_grad():
        z = policy.encode(obs).unsqueeze(1)  # [3, 1, L]
        actions = th.rand(3, n_samples, 1) * 2 - 1
        per_sample = z.expand(3, n_samples, z.shape[-1])
        for shared, expected in (
            (policy.next_latent(z, actions), policy.next_latent(per_sample, actions)),
            (policy.reward_logits(z, actions), policy.reward_logits(per_sample, actions)),
        ):
            assert shared.shape == expected.shape
            th.testing.assert_close(shared, expected, **tolerance)

    def value_of_per_sample_latents(model_, z_, actions_, gamma, rolled_out=None):
        return estimate_value(model_, z_.expand(-1, actions_.shape[2], -1), actions_, gamma, rolled_out)

    th.manual_seed(0)
    with FlopCounterMode(display=False) as shared_flops:
        planned = policy.plan(obs)
    policy._value_program = value_of_per_sample_latents
    th.manual_seed(0)
    with FlopCounterMode(display=False) as per_sample_flops:
        expected_plan = policy.plan(obs)
    assert shared_flops.get_total_flops() < per_sample_flops.get_total_flops()
    if precision == "float32":  # bf16's rounding can swap near-tied elites; its layers are compared above
        for name in ("action", "planner_action", "std", "mean", "value"):
            th.testing.assert_close(getattr(planned, name), getattr(expected_plan, name), rtol=1e-4, atol=1e-5, msg=name)


def test_planner_rolls_out_the_priors_sequences_once_with_the_per_iteration_answers(tiny_kwargs, monkeypatch):
    """
    The prior's proposals are the same in every MPPI iteration, and so are their rewards and latents:
    they are rolled out once per planning call. Same plan as rolling them out again in every
    iteration (the terminal Q term, which draws the prior's action and the dropout masks afresh, is
    evaluated for every sequence in both), and fewer matmul FLOPs.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from sb3_boom import planner as planner_module

    kwargs = {**tiny_kwargs, "num_samples": 48, "num_pi_trajs": 12, "num_elites": 8, "iterations": 4}
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=5, **kwargs)
    policy = model.policy
    policy.set_training_mode(False)
    assert policy.q_dropout == "always"  # the terminal term draws dropout masks in both paths
    with th.no_grad():  # the reward output layer starts orthogonal, Q's at zero: make them non-trivial
        for parameter in policy.parameters():
            parameter.add_(0.05 * th.randn_like(parameter))
    obs = th.randn(3, 3)

    original_rollout, original_estimate = planner_module.rollout, planner_module.estimate_value
    rollouts: list[th.Tensor] = []  # the action sequences of every rollout, in order

    def recording_rollout(model_, z_, actions, gamma):
        rollouts.append(actions)
        return original_rollout(model_, z_, actions, gamma)

    monkeypatch.setattr(planner_module, "rollout", recording_rollout)
    th.manual_seed(0)
    with FlopCounterMode(display=False) as once_flops:
        planned = policy.plan(obs)
    # One rollout of the 12 proposals, then one of the 36 sampled sequences per iteration.
    assert [actions.shape[2] for actions in rollouts] == [12, 36, 36, 36, 36]
    pi_actions = rollouts[0]

    def value_rolling_out_every_sequence(model_, z_, sampled, gamma, rolled_out=None):
        return original_estimate(model_, z_, th.cat([pi_actions, sampled], dim=2), gamma)

    monkeypatch.setattr(planner_module, "rollout", original_rollout)
    policy._value_program = value_rolling_out_every_sequence
    th.manual_seed(0)  # the same proposals again: they are drawn first
    with FlopCounterMode(display=False) as every_iteration_flops:
        expected_plan = policy.plan(obs)
    assert once_flops.get_total_flops() < every_iteration_flops.get_total_flops()
    for name in ("action", "planner_action", "std", "mean", "value"):
        th.testing.assert_close(getattr(planned, name), getattr(expected_plan, name), rtol=1e-4, atol=1e-5, msg=name)


def test_set_training_mode_switches_every_submodule_and_keeps_the_target_in_eval(tiny_kwargs):
    policy = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs).policy
    for mode in (True, True, False, False, True):
        policy.set_training_mode(mode)
        assert all(module.training == mode for name, module in policy.named_modules() if not name.startswith("q_target"))
        assert not any(module.training for module in policy.q_target.modules())


def test_bfloat16_precision_runs_the_networks_in_bf16_and_returns_float32(tiny_kwargs):
    """precision="bfloat16": outputs are float32, close to the float32 path but not equal (bf16 matmuls ran),
    except the encoder's latent, which is float32's."""
    # q_dropout="train": the Q heads are compared call by call, so they must not drop units in eval mode.
    policy_kwargs = {**tiny_kwargs["policy_kwargs"], "q_dropout": "train"}
    kwargs = {**tiny_kwargs, "learning_starts": 30, "policy_kwargs": policy_kwargs}
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=2, precision="bfloat16", **kwargs)
    policy = model.policy
    policy.set_training_mode(False)
    with th.no_grad():  # the reward and Q output layers start at zero: make every output non-trivial
        for parameter in policy.parameters():
            parameter.add_(0.05 * th.randn_like(parameter))
    obs, action = th.randn(64, 3), th.rand(64, 1) * 2 - 1

    def outputs() -> list[th.Tensor]:
        with th.no_grad():
            z = policy.encode(obs)
            return [z, policy.next_latent(z, action), policy.reward_logits(z, action), policy.q_logits(z, action)]

    low = outputs()
    policy.precision = "float32"
    full = outputs()
    assert th.equal(low[0], full[0])  # the encoder stays float32
    for bf16, fp32 in zip(low[1:], full[1:], strict=True):
        assert bf16.dtype == th.float32
        assert not th.equal(bf16, fp32)
        th.testing.assert_close(bf16, fp32, rtol=0.05, atol=0.03)


def test_bfloat16_keeps_the_dynamics_reward_and_q_output_layers_in_float32(tiny_kwargs):
    """Under bf16 the layers whose outputs the planner ranks compute in float32 from their (bf16) inputs."""
    # q_dropout="train": the Q output is compared with a second pass, so its heads must not drop units in eval mode.
    policy_kwargs = {**tiny_kwargs["policy_kwargs"], "q_dropout": "train"}
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=5, precision="bfloat16", **{**tiny_kwargs, "policy_kwargs": policy_kwargs})
    policy = model.policy
    policy.set_training_mode(False)
    with th.no_grad():
        for parameter in policy.parameters():
            parameter.add_(0.05 * th.randn_like(parameter))
    z, action = policy.encode(th.randn(64, 3)).detach(), th.rand(64, 1) * 2 - 1
    captured = {}
    hooks = [
        network[-1].register_forward_pre_hook(lambda module, args, name=name: captured.__setitem__(name, args[0]))
        for name, network in (("reward", policy.reward_head), ("dynamics", policy.dynamics))
    ]

    def outputs_and_float32_outputs() -> tuple[list[th.Tensor], list[th.Tensor]]:
        """The three outputs, and the same output layers run in float32 on the inputs they received."""
        with th.no_grad():
            outputs = [policy.reward_logits(z, action), policy.next_latent(z, action), policy.q_logits(z, action)]
            with th.autocast("cpu", dtype=th.bfloat16):
                q_features = policy.q_ensemble.features(th.cat([z, action], dim=-1))
            head, last, q = policy.reward_head[-1], policy.dynamics[-1], policy.q_ensemble
            in_float32 = [
                th.nn.functional.linear(captured["reward"].float(), head.weight, head.bias),
                last.activation(last.norm(last.linear(captured["dynamics"].float()))),
                th.baddbmm(q.biases[2], q_features.float(), q.weights[2]).reshape(outputs[2].shape),
            ]
        assert captured["reward"].dtype == captured["dynamics"].dtype == th.bfloat16  # the hidden layers ran in bf16
        return outputs, in_float32

    for output, expected in zip(*outputs_and_float32_outputs(), strict=True):
        th.testing.assert_close(output, expected, rtol=1e-6, atol=1e-6)
    set_float32_outputs(policy, False)  # bf16 throughout: each output is then distinguishable from float32
    for output, expected in zip(*outputs_and_float32_outputs(), strict=True):
        assert (output - expected).abs().max() > 1e-4
    for hook in hooks:
        hook.remove()


def test_bfloat16_keeps_the_encoder_in_float32(tiny_kwargs):
    """Under bf16 the encoder's latent is the float32 one, also inside an autocast region; bf16 with the switch off."""
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=6, precision="bfloat16", **tiny_kwargs)
    policy = model.policy
    observations = 3 * th.randn(64, 3)
    with th.no_grad():
        policy.precision = "float32"
        expected = policy.encode(observations)
        policy.precision = "bfloat16"
        th.testing.assert_close(policy.encode(observations), expected, rtol=0, atol=0)
        with th.autocast("cpu", dtype=th.bfloat16):
            th.testing.assert_close(policy.encode(observations), expected, rtol=0, atol=0)
        set_float32_encoder(policy, False)
        assert (policy.encode(observations) - expected).abs().max() > 1e-4
        set_float32_encoder(policy, True)


def test_bfloat16_update_keeps_float32_state_and_gradients_close_to_float32(tmp_path, tiny_kwargs):
    """One update in bf16 gives float32 gradients close to the float32 ones; the setting saves and loads."""
    kwargs = {**tiny_kwargs, "learning_starts": 40, "policy_kwargs": {**tiny_kwargs["policy_kwargs"], "dropout": 0.0}}
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=4, precision="bfloat16", **kwargs)
    model.learn(60)
    batch = model.replay_buffer.sample(model.batch_size)
    grads = {}
    for precision in ("float32", "bfloat16"):
        model.policy.precision = precision
        state = {k: v.clone() for k, v in model.policy.state_dict().items()}
        th.manual_seed(0)
        model._update(batch)
        grads[precision] = th.cat([p.grad.flatten() for p in model.policy.world_model_parameters() if p.grad is not None])
        model.policy.load_state_dict(state)
    assert grads["bfloat16"].dtype == th.float32 and th.isfinite(grads["bfloat16"]).all()
    cosine = th.nn.functional.cosine_similarity(grads["bfloat16"], grads["float32"], dim=0)
    assert cosine > 0.98, f"bf16 gradients point elsewhere than float32 ones (cosine {cosine:.3f})"
    assert all(p.dtype == th.float32 for p in model.policy.parameters())

    model.policy.precision = "bfloat16"
    model.save(tmp_path / "bf16")
    assert BOOM.load(tmp_path / "bf16").policy.precision == "bfloat16"
    assert BOOM.load(tmp_path / "bf16", precision="float32").policy.precision == "float32"


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        BOOM("MlpPolicy", "Pendulum-v1", precision="float16")


def test_bfloat16_warns_on_a_device_without_native_bf16_matmuls(monkeypatch, tiny_kwargs):
    """bf16 is emulated (and slower than float32) without AVX512-BF16 / AMX: say so; float32 never warns."""
    import sb3_boom.boom as boom_module

    def bf16_warnings(native: bool, precision: str) -> list[str]:
        monkeypatch.setattr(boom_module, "bfloat16_is_native", lambda device: native)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            BOOM("MlpPolicy", "Pendulum-v1", precision=precision, **tiny_kwargs)
        return [str(w.message) for w in caught if "native bf16" in str(w.message)]

    (message,) = bf16_warnings(native=False, precision="bfloat16")
    assert "precision='float32'" in message and th.backends.cpu.get_cpu_capability() in message
    assert bf16_warnings(native=True, precision="bfloat16") == []
    assert bf16_warnings(native=False, precision="float32") == []


def test_policy_loss_forms_only_the_actions_part_of_the_q_input_gradient(tiny_kwargs):
    """
    In the policy loss (latents detached, Q frozen) the Q ensemble takes the latent and the action
    apart, so the latent's part of the first layer's input gradient is never formed: the same loss and
    the same prior gradients as with the concatenated input, and fewer matmul FLOPs.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = BOOM("MlpPolicy", "Pendulum-v1", seed=8, **{**tiny_kwargs, "learning_starts": 40})
    model.learn(60)
    policy = model.policy
    with th.no_grad():  # Q's output layer starts at zero: make the action's gradient non-trivial
        for parameter in policy.q_ensemble.parameters():
            parameter.add_(0.05 * th.randn_like(parameter))
    batch = model.replay_buffer.sample(model.batch_size)
    with th.no_grad():
        zs = th.stack([policy.encode(batch.observations[t]) for t in range(model.horizon)])

    def concatenated_q_logits(self, z, action, heads=None, target=False):
        ensemble = self.q_target if target else self.q_ensemble
        return self._forward(ensemble, th.cat([z, action], dim=-1), heads)

    def prior_loss_and_gradients() -> tuple[th.Tensor, list[th.Tensor], int]:
        policy.actor.zero_grad(set_to_none=True)
        policy.q_ensemble.requires_grad_(False)
        th.manual_seed(0)  # the same dropout masks and policy samples on both paths
        with FlopCounterMode(display=False) as flops:
            loss, _, _ = model._prior_loss(zs, batch.planner_actions, batch.planner_stds)
            loss.backward()
        policy.q_ensemble.requires_grad_(True)
        return loss.detach(), [p.grad.clone() for p in policy.actor.parameters()], flops.get_total_flops()

    split_loss, split_grads, split_flops = prior_loss_and_gradients()
    policy.q_logits = types.MethodType(concatenated_q_logits, policy)
    loss, grads, concatenated_flops = prior_loss_and_gradients()
    del policy.q_logits
    th.testing.assert_close(split_loss, loss, rtol=1e-5, atol=1e-6)
    assert any(g.abs().max() > 0 for g in grads)
    for split_grad, grad in zip(split_grads, grads, strict=True):
        th.testing.assert_close(split_grad, grad, rtol=1e-4, atol=1e-6)
    assert split_flops < concatenated_flops

    # Elsewhere (the value loss: latents with gradient) Q takes the concatenated input as before.
    z, action = zs[0].clone().requires_grad_(True), th.rand(zs.shape[1], 1, requires_grad=True)
    with FlopCounterMode(display=False) as flops:
        policy.q_logits(z, action).sum().backward()
    with FlopCounterMode(display=False) as reference_flops:
        concatenated_q_logits(policy, z, action).sum().backward()
    assert flops.get_total_flops() == reference_flops.get_total_flops()
