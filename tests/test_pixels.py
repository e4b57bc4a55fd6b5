"""
BOOM from pixels (issue #33): the pixel encoder (TD-MPC2's), "CnnPolicy" and "MultiInputPolicy" with
images, the replay buffer that stores each uint8 frame once and rebuilds frame stacks, save/load,
export, bad input, the RL Zoo and Optuna, and DMC frames rendered off-screen. Synthetic image envs,
except the tests marked as rendering DMC.
"""

import os
import pathlib
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage

from sb3_boom import BOOM
from sb3_boom.buffers import SequenceReplayBuffer
from sb3_boom.encoders import MIN_IMAGE_SIZE, PixelEncoder, RandomShift, conv_output_size
from sb3_boom.image_buffer import ImageSequenceReplayBuffer
from sb3_boom.policies import CnnPolicy, MultiInputPolicy
from studies.pixels_dot_check import Dot, stacked_dot

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Small networks and planner; the conv layers keep TD-MPC2's kernels and strides.
TINY = dict(num_samples=16, num_elites=4, num_pi_trajs=2, iterations=2, batch_size=8, learning_starts=30, buffer_size=400)
TINY_POLICY = dict(latent_dim=16, mlp_dim=32, enc_dim=32, num_q=2, num_bins=21, image_encoder_kwargs=dict(num_channels=4))


class DotWithState(gym.ObservationWrapper):
    """Dict observation: the image and a vector (the position)."""

    def __init__(self):
        super().__init__(Dot())
        self.observation_space = spaces.Dict(
            {"pixels": self.env.observation_space, "position": spaces.Box(0.0, 1.0, (2,), np.float32)}
        )

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"pixels": observation, "position": self.env.unwrapped.position.astype(np.float32)}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Conv layers on a shared 2-core machine: two threads each collapse when other work runs (10x slower).
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


@pytest.fixture(scope="module")
def cnn_model(one_torch_thread) -> BOOM:
    model = BOOM("CnnPolicy", stacked_dot(), seed=0, policy_kwargs=TINY_POLICY, **TINY)
    return model.learn(60)


# --- the encoder -----------------------------------------------------------------------------------


def test_pixel_encoder_is_tdmpc2s():
    encoder = PixelEncoder((9, 64, 64))
    convs = [m for m in encoder.convs if isinstance(m, th.nn.Conv2d)]
    assert [(c.kernel_size[0], c.stride[0], c.out_channels) for c in convs] == [(7, 2, 32), (5, 2, 32), (3, 2, 32), (3, 1, 32)]
    assert [type(m).__name__ for m in encoder.convs].count("ReLU") == 3 and isinstance(encoder.convs[-1], th.nn.Conv2d)
    assert encoder.output_dim == 512 == 32 * conv_output_size(64) ** 2  # TD-MPC2's 5M latent
    pixels = th.randint(0, 256, (5, 9 * 64 * 64), dtype=th.uint8)
    encoder.eval()
    out = encoder(pixels)
    assert out.shape == (5, 512)
    # Pixels are scaled in the network: uint8 in, x / 255 - 0.5 into the first conv.
    th.testing.assert_close(out, encoder.convs(pixels.reshape(5, 9, 64, 64).float() / 255 - 0.5).flatten(1))
    th.testing.assert_close(out, encoder(pixels.float()))


def test_random_shift_only_in_training():
    shift = RandomShift(3)
    images = th.rand(16, 2, 10, 12)
    assert th.equal(shift.eval()(images), images)
    th.manual_seed(0)
    shifted = shift.train()(images)
    assert shifted.shape == images.shape and not th.equal(shifted, images)
    padded = th.nn.functional.pad(images, (3, 3, 3, 3), mode="replicate")
    offsets = []
    for i in range(16):  # each image is one crop of its padded image, at an integer offset within the pad
        found = [(r, c) for r in range(7) for c in range(7) if th.equal(padded[i, :, r : r + 10, c : c + 12], shifted[i])]
        assert found, f"image {i} is not a shifted crop"
        offsets.append(found[0])
    assert len(set(offsets)) > 3  # independent per image
    th.manual_seed(0)  # the same crops of uint8 pixels, still uint8
    pixels = (images * 255).to(th.uint8)
    shifted_pixels = shift(pixels)
    assert shifted_pixels.dtype == th.uint8
    th.manual_seed(0)
    assert th.equal(shifted_pixels.float(), shift(pixels.float()))


def test_encoder_takes_uint8_or_float_pixels_alike_and_leaves_its_input_alone():
    encoder = PixelEncoder((6, 40, 40), num_channels=4)
    pixels = th.randint(0, 256, (5, 6 * 40 * 40), dtype=th.uint8)
    floats = pixels.float()
    untouched = floats.clone()
    for training in (True, False):
        encoder.train(training)
        th.manual_seed(1)
        from_uint8 = encoder(pixels)
        th.manual_seed(1)
        assert th.equal(encoder(floats), from_uint8)
        assert th.equal(floats, untouched)  # the scaling works in place on its own copy


def test_cnn_policy_uses_the_conv_encoder_and_simnorm(cnn_model):
    policy = cnn_model.policy
    assert isinstance(policy, CnnPolicy)
    # SB3 moved the channels first; VecFrameStack stacked 3 RGB frames.
    assert cnn_model.observation_space.shape == (9, 64, 64)
    assert isinstance(cnn_model.get_env(), VecTransposeImage)
    encoder = policy.encoder
    assert len(encoder.pixel_encoders) == 1 and encoder.pixel_encoders[0].image_shape == (9, 64, 64)
    z = policy.encode(th.randint(0, 256, (3, 4, 9 * 64 * 64)).float())
    assert z.shape == (3, 4, 16)
    # SimNorm: every group of 8 sums to one.
    th.testing.assert_close(z.reshape(3, 4, 2, 8).sum(-1), th.ones(3, 4, 2))


def test_tdmpc2_sized_latent_takes_the_conv_features_directly():
    env = VecTransposeImage(stacked_dot())
    policy = CnnPolicy(env.observation_space, env.action_space, lambda _: 3e-4, model_size=5)
    assert policy.encoder.features_dim == 512 == policy.latent_dim
    assert type(policy.encoder.head).__name__ == "SimNorm"  # conv -> flatten -> SimNorm, as TD-MPC2


def test_image_encoder_kwargs_size_the_convs():
    env = VecTransposeImage(stacked_dot())
    policy = CnnPolicy(env.observation_space, env.action_space, lambda _: 3e-4, model_size="cpu",
                       image_encoder_kwargs=dict(num_channels=8, shift_pad=0))  # fmt: skip
    encoder = policy.encoder.pixel_encoders[0]
    assert encoder.output_dim == 8 * 16 and encoder.shift.pad == 0
    with pytest.raises(ValueError, match="Unknown image_encoder_kwargs"):
        CnnPolicy(env.observation_space, env.action_space, lambda _: 3e-4, image_encoder_kwargs=dict(channels=8))


def test_augmentation_only_while_training(cnn_model):
    policy = cnn_model.policy
    obs = th.randint(0, 256, (4, 9 * 64 * 64)).float()
    policy.set_training_mode(False)
    assert th.equal(policy.encode(obs), policy.encode(obs))
    policy.set_training_mode(True)
    th.manual_seed(1)
    assert not th.equal(policy.encode(obs), policy.encode(obs))
    policy.set_training_mode(False)


# --- predict, planning, learning, save/load ----------------------------------------------------------


def test_predict_takes_channel_last_and_channel_first_observations(cnn_model):
    env = cnn_model.get_env()
    obs = env.reset()  # channel-first, after VecTransposeImage
    channel_last = obs.transpose(0, 2, 3, 1)
    start = np.ones(1, dtype=bool)  # no warm start carried from the previous call
    th.manual_seed(0)
    first, _ = cnn_model.predict(obs, episode_start=start, deterministic=True)
    th.manual_seed(0)
    last, _ = cnn_model.predict(channel_last, episode_start=start, deterministic=True)
    np.testing.assert_array_equal(first, last)
    single, _ = cnn_model.predict(obs[0], deterministic=True)
    assert single.shape == (2,)
    prior, _ = cnn_model.policy.predict(obs, deterministic=True, use_planner=False)
    z = cnn_model.policy.encode(th.as_tensor(obs.reshape(1, -1)).float())
    np.testing.assert_allclose(prior, cnn_model.policy.pi(z).mean.detach().numpy(), atol=1e-6)


def test_learning_updates_the_conv_encoder_and_evaluate_policy_runs():
    model = BOOM("CnnPolicy", stacked_dot(), seed=0, policy_kwargs=TINY_POLICY, **TINY)
    before = [p.detach().clone() for p in model.policy.encoder.pixel_encoders[0].parameters()]
    model.learn(50)
    after = list(model.policy.encoder.pixel_encoders[0].parameters())
    assert all(not th.equal(a, b) for a, b in zip(after, before, strict=False))
    mean, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=1)
    assert np.isfinite(mean)


def test_multi_input_policy_with_an_image_and_a_vector():
    env = VecFrameStack(DummyVecEnv([DotWithState]), 3)
    model = BOOM("MultiInputPolicy", env, seed=0, policy_kwargs=TINY_POLICY, **TINY)
    assert isinstance(model.policy, MultiInputPolicy)
    encoder = model.policy.encoder
    assert len(encoder.pixel_encoders) == 1 and encoder.vector_dim == 6  # 3 stacked positions
    assert isinstance(model.replay_buffer, ImageSequenceReplayBuffer) and model.replay_buffer.frame_stack == 3
    model.learn(50)
    batch = model.replay_buffer.sample(4)
    assert batch.observations.dtype == th.float32 and batch.observations.shape == (4, 4, model.policy.obs_dim)
    # The vector reaches the latent: moving only the position changes it.
    obs = model.get_env().reset()
    flat = model.policy.flatten_observation(model.policy.obs_to_tensor(obs)[0])
    moved = {**obs, "position": obs["position"] + 0.5}
    flat_moved = model.policy.flatten_observation(model.policy.obs_to_tensor(moved)[0])
    model.policy.set_training_mode(False)
    assert not th.allclose(model.policy.encode(flat), model.policy.encode(flat_moved))
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (1, 2)


def test_state_observations_keep_the_mlp_encoder_and_buffer():
    env = DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    model = BOOM("MlpPolicy", env, seed=0, policy_kwargs=TINY_POLICY, **TINY)
    assert isinstance(model.policy.encoder, th.nn.Sequential) and type(model.replay_buffer) is SequenceReplayBuffer


def test_consistency_trains_the_encoder_by_default_only_for_states(cnn_model):
    """
    consistency_trains_encoder="auto" (the default): False for image observations (CnnPolicy, and a Dict with an
    image), True for vectors; an explicit value is kept, anything else refused.
    """
    assert cnn_model.consistency_trains_encoder is False
    dict_env = VecFrameStack(DummyVecEnv([DotWithState]), 3)
    assert BOOM("MultiInputPolicy", dict_env, policy_kwargs=TINY_POLICY, **TINY).consistency_trains_encoder is False
    assert BOOM("MlpPolicy", "Pendulum-v1", policy_kwargs=TINY_POLICY, **TINY).consistency_trains_encoder is True
    explicit = BOOM("CnnPolicy", stacked_dot(), consistency_trains_encoder=True, policy_kwargs=TINY_POLICY, **TINY)
    assert explicit.consistency_trains_encoder is True
    with pytest.raises(ValueError, match='consistency_trains_encoder must be True, False or "auto"'):
        BOOM("CnnPolicy", stacked_dot(), consistency_trains_encoder="no", policy_kwargs=TINY_POLICY, **TINY)


def test_save_load_keeps_the_encoder_and_the_frames(cnn_model, tmp_path):
    cnn_model.save(tmp_path / "model")
    cnn_model.save_replay_buffer(tmp_path / "buffer")
    loaded = BOOM.load(tmp_path / "model", env=stacked_dot())
    loaded.load_replay_buffer(tmp_path / "buffer")
    assert isinstance(loaded.policy, CnnPolicy) and loaded.consistency_trains_encoder is False
    assert loaded.policy.image_encoder_kwargs == cnn_model.policy.image_encoder_kwargs
    for (name, a), b in zip(cnn_model.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        assert th.equal(a, b), name
    obs = cnn_model.get_env().reset()
    start = np.ones(1, dtype=bool)
    th.manual_seed(3)
    expected, _ = cnn_model.predict(obs, episode_start=start, deterministic=True)
    th.manual_seed(3)
    actual, _ = loaded.predict(obs, episode_start=start, deterministic=True)
    np.testing.assert_array_equal(expected, actual)
    assert loaded.replay_buffer.frame_stack == 3
    for name in ("observations", "actions", "rewards", "episode_steps"):
        np.testing.assert_array_equal(getattr(loaded.replay_buffer, name), getattr(cnn_model.replay_buffer, name))
    np.random.seed(5)
    a = cnn_model.replay_buffer.sample(6)
    np.random.seed(5)
    b = loaded.replay_buffer.sample(6)
    assert th.equal(a.observations, b.observations)
    loaded.learn(5, reset_num_timesteps=False)
    # The policy alone (SB3's BasePolicy.save/load) rebuilds its pixel encoder from its constructor arguments.
    cnn_model.policy.save(tmp_path / "policy.pt")
    policy = CnnPolicy.load(tmp_path / "policy.pt")
    assert policy.encoder.pixel_encoders[0].output_dim == cnn_model.policy.encoder.pixel_encoders[0].output_dim
    for (name, a), b in zip(cnn_model.policy.state_dict().items(), policy.state_dict().values(), strict=True):
        assert th.equal(a, b), name


# --- the replay buffer: frames stored once, stacks rebuilt -----------------------------------------


def _fill(buffers, n_envs: int, steps: int, seed: int, episode_length: int = 7) -> list:
    """Step ``n_envs`` stacked Dot envs with random actions; add every transition to each buffer."""
    venv = VecTransposeImage(stacked_dot(n_envs, episode_length=episode_length))
    venv.seed(seed)
    obs = venv.reset()
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        action = rng.uniform(-1, 1, (n_envs, 2)).astype(np.float32)
        next_obs, reward, done, infos = venv.step(action)
        stored_next = next_obs.copy()
        for i, d in enumerate(done):
            if d:
                stored_next[i] = infos[i]["terminal_observation"]
        for buffer in buffers:
            buffer.add(obs, stored_next, action, reward, done, infos)
        obs = next_obs
    return venv


@pytest.mark.parametrize("buffer_size", [1000, 50])  # 50: the rings wrap around
def test_rebuilt_stacks_equal_the_observations_seen(buffer_size):
    venv = VecTransposeImage(stacked_dot(2))
    space, action_space = venv.observation_space, venv.action_space
    plain = SequenceReplayBuffer(buffer_size, space, action_space, n_envs=2, horizon=3)
    frames = ImageSequenceReplayBuffer(buffer_size, space, action_space, n_envs=2, horizon=3, frame_stack=3)
    _fill([plain, frames], n_envs=2, steps=90, seed=0)
    # The same transitions are valid window starts in both (the stack's frames are in its own episode) ...
    slots, envs = np.meshgrid(np.arange(frames.buffer_size), np.arange(2), indexing="ij")
    valid = frames.valid_starts(slots.ravel(), envs.ravel())
    assert valid.sum() >= 10
    for seed in range(3):
        np.random.seed(seed)
        batch = frames.sample(32)
        assert batch.observations.dtype == th.uint8 and batch.observations.shape == (4, 32, 9 * 64 * 64)
        # ... and every sampled window is a window of the plain buffer: stacks equal the observations seen.
        plain_windows = _all_windows(plain)
        for b in range(32):
            key = (batch.observations[:, b].numpy().astype(np.float32).tobytes(), batch.actions[:, b].numpy().tobytes())
            assert key in plain_windows, f"window {b} was never observed"


def _all_windows(buffer: SequenceReplayBuffer) -> set:
    slots, envs = np.meshgrid(np.arange(buffer.buffer_size), np.arange(buffer.n_envs), indexing="ij")
    slots, envs = slots.ravel(), envs.ravel()
    keep = buffer.valid_starts(slots, envs)
    windows = set()
    for s, e in zip(slots[keep], envs[keep], strict=False):
        index = (s + np.arange(buffer.horizon + 1)) % buffer.buffer_size
        actions = buffer.actions[index[:-1], e]
        windows.add((buffer.observations[index, e].tobytes(), actions.tobytes()))
    return windows


def test_stacks_at_episode_starts_hold_the_zero_padding():
    venv = VecTransposeImage(stacked_dot(1))
    buffer = ImageSequenceReplayBuffer(200, venv.observation_space, venv.action_space, horizon=3, frame_stack=3)
    _fill([buffer], n_envs=1, steps=30, seed=1)
    # Slots 0-1 hold the first observation's older (zero) frames; slot 2 its newest frame.
    assert buffer.episode_steps[0, 0] == buffer.episode_steps[1, 0] == -1 and buffer.episode_steps[2, 0] == 0
    first = buffer._observations_at(np.array([2]), np.array([0]))[0].reshape(9, 64, 64)
    assert not first[:6].any() and first[6:].any()
    # A window that starts with an episode: its first stack has the zero padding, as VecFrameStack's.
    assert buffer.valid_starts(np.array([2]), np.array([0]))[0]
    assert not buffer.valid_starts(np.array([0, 1]), np.array([0, 0])).any()


def test_memory_of_one_million_stacked_64x64_rgb_transitions():
    space = spaces.Box(0, 255, (9, 64, 64), np.uint8)
    action_space = spaces.Box(-1, 1, (2,), np.float32)
    buffer = ImageSequenceReplayBuffer(1_000, space, action_space, horizon=3, frame_stack=3)
    frame = 64 * 64 * 3
    assert buffer.frames["observation"].shape == (1_000, 1, frame) and buffer.frames["observation"].dtype == np.uint8
    assert buffer.observations.nbytes == 0  # no float copy of the images
    # One frame per slot plus 32 bytes of actions, planner outputs, reward, flags; 2 extra slots per
    # 500-step episode for the older frames of its first stack (1 for its final observation, as for states).
    assert buffer.bytes_per_slot == frame + 3 * 2 * 4 + 4 + 1 + 4
    slots = 1_000_000 * (500 + 3) / 500
    total = slots * buffer.bytes_per_slot
    each_frame_once = 1_000_000 * frame
    assert total <= 1.01 * each_frame_once  # 12.37 GB vs 12.29 GB (whole stacks as uint8: 36.9 GB; float32: 147 GB)
    allocated = sum(a.nbytes for a in vars(buffer).values() if isinstance(a, np.ndarray) and a.ndim >= 2)
    allocated += sum(a.nbytes for a in buffer.frames.values())
    assert allocated == 1_000 * buffer.bytes_per_slot


def test_a_wrong_frame_stack_is_refused():
    venv = VecTransposeImage(stacked_dot(1))
    with pytest.raises(ValueError, match="not a multiple of frame_stack"):
        ImageSequenceReplayBuffer(200, venv.observation_space, venv.action_space, horizon=3, frame_stack=2)
    buffer = ImageSequenceReplayBuffer(
        200, spaces.Box(0, 255, (6, 64, 64), np.uint8), venv.action_space, horizon=3, frame_stack=2
    )
    obs = np.random.randint(0, 256, (1, 6, 64, 64), dtype=np.uint8)
    with pytest.raises(ValueError, match="does not look like a stack of 2 frames"):
        other = np.random.randint(0, 256, (1, 6, 64, 64), dtype=np.uint8)
        buffer.add(obs, other, np.zeros((1, 2)), np.zeros(1), np.zeros(1), [{}])


def test_without_frame_stacking_whole_observations_are_stored():
    model = BOOM("CnnPolicy", DummyVecEnv([Dot]), seed=0, policy_kwargs=TINY_POLICY, **TINY)
    assert model.replay_buffer.frame_stack == 1 and model.observation_space.shape == (3, 64, 64)
    model.learn(40)
    assert model.replay_buffer.sample(4).observations.shape == (4, 4, 3 * 64 * 64)


# --- bad input -------------------------------------------------------------------------------------


def test_float_images_are_refused_naming_uint8():
    with pytest.raises(TypeError, match="has dtype float32; the pixel encoder takes uint8"):
        BOOM("CnnPolicy", DummyVecEnv([lambda: Dot(channels_last=False, dtype=np.float32)]), **TINY)


def test_small_images_are_refused_naming_resize():
    with pytest.raises(ValueError, match=f"needs at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} pixels.*ResizeObservation"):
        BOOM("CnnPolicy", DummyVecEnv([lambda: Dot(size=32)]), **TINY)
    BOOM("CnnPolicy", DummyVecEnv([lambda: Dot(size=MIN_IMAGE_SIZE)]), policy_kwargs=TINY_POLICY, **TINY).learn(35)


def test_untellable_channel_order_is_refused():
    class Odd(Dot):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Box(0, 255, (64, 3, 64), np.uint8)

    with pytest.raises(ValueError, match="channel axis cannot be told"):
        BOOM("CnnPolicy", DummyVecEnv([Odd]), **TINY)


def test_images_with_the_mlp_policy_name_the_cnn_policy():
    with pytest.raises(TypeError, match="CnnPolicy"):
        BOOM("MlpPolicy", stacked_dot(), **TINY)
    with pytest.raises(TypeError, match="MlpPolicy"):
        BOOM("CnnPolicy", DummyVecEnv([lambda: gym.make("Pendulum-v1")]), **TINY)


# --- export ----------------------------------------------------------------------------------------


def _deploy_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_exported", REPO_ROOT / "examples" / "deploy_exported.py")
    deploy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    return deploy


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_prior_matches_predict_from_pixels(cnn_model, tmp_path, fmt):
    pytest.importorskip("onnxruntime")
    path = cnn_model.export(tmp_path / "prior", what="prior", format=fmt)
    run, _ = _deploy_module().load_program(path)
    obs = np.random.default_rng(0).integers(0, 256, (3, 9, 64, 64)).astype(np.uint8)
    expected, _ = cnn_model.policy.predict(obs, deterministic=True, use_planner=False)
    (action,) = run({"obs": obs.astype(np.float32)})  # channel-first stacked frames, pixel values as float32
    np.testing.assert_allclose(action, expected, rtol=0, atol=1e-5)


def test_exported_planner_matches_predict_from_pixels(cnn_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from sb3_boom.export import planner_draws

    policy = cnn_model.policy
    run, _ = _deploy_module().load_program(cnn_model.export(tmp_path / "planner", what="planner", format="onnx"))
    obs = np.random.default_rng(1).integers(0, 256, (1, 9, 64, 64)).astype(np.uint8)
    state = np.zeros((1, policy.planner.horizon, policy.action_dim), np.float32)
    starts = np.ones(1, dtype=bool)
    th.manual_seed(0)
    expected, (expected_state,) = cnn_model.predict(obs, (state,), starts, deterministic=True)
    th.manual_seed(0)
    draws = {name: value.numpy() for name, value in planner_draws(policy, 1, True).items()}
    action, new_state = run({"obs": obs.astype(np.float32), "warm_start": state, "episode_start": starts, **draws})
    np.testing.assert_allclose(action, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(new_state, expected_state, rtol=0, atol=1e-5)


# --- DMC from pixels (rendered off-screen) ---------------------------------------------------------


def test_dmc_frames_render_off_screen():
    from sb3_boom.dmc import DMC_PIXEL_IDS, camera_id, make_dmc_pixels

    assert "dmc_pixels/finger-spin-v0" in DMC_PIXEL_IDS and camera_id("quadruped") == 2 and camera_id("finger") == 0
    env = gym.make("dmc_pixels/reacher-easy-v0")
    frame, _ = env.reset(seed=0)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5
    frames = [frame] + [env.step(np.ones(2, np.float32))[0] for _ in range(3)]
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:], strict=False))  # the arm moves in the picture
    assert env.unwrapped.render_mode == "rgb_array"
    # One frame per agent step: rendered after the action repeat, not inside it.
    renders, physics_steps = [], []
    render, step = env.unwrapped.render, env.unwrapped._env.step
    env.unwrapped.render = lambda: renders.append(1) or render()
    env.unwrapped._env.step = lambda action: physics_steps.append(1) or step(action)
    env.step(np.zeros(2, np.float32))
    assert len(renders) == 1 and len(physics_steps) == 2
    # The package's one DMC factory makes the same pixel env.
    from sb3_boom.envs import make_dmc

    direct, factory = make_dmc_pixels("reacher", "easy"), make_dmc("dm_control/reacher-easy-v0", pixels=True)
    assert np.array_equal(direct.reset(seed=3)[0], factory.reset(seed=3)[0])
    for action in np.random.default_rng(0).uniform(-1, 1, (4, 2)).astype(np.float32):
        first, second = direct.step(action), factory.step(action)
        assert np.array_equal(first[0], second[0]) and first[1:4] == second[1:4]
    venv = VecFrameStack(DummyVecEnv([lambda: make_dmc_pixels("reacher", "easy")]), 3)
    model = BOOM("CnnPolicy", venv, seed=0, policy_kwargs=TINY_POLICY, **TINY)
    assert model.observation_space.shape == (9, 64, 64) and model.replay_buffer.frame_stack == 3
    from sb3_boom.env_defaults import episode_length

    assert episode_length(model.get_env()) == 500  # 1000 env steps, action repeat 2
    model.learn(40)


def _run_zoo(*args: str, cwd: pathlib.Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    command = [sys.executable, "-m", "rl_zoo3.train", *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


ZOO_TINY = [
    "policy_kwargs:dict(latent_dim=16,mlp_dim=32,enc_dim=32,num_q=2,num_bins=21,image_encoder_kwargs=dict(num_channels=4))",
    "num_samples:16", "num_elites:4", "num_pi_trajs:2", "iterations:2", "batch_size:8", "learning_starts:30",
    "buffer_size:500",
]  # fmt: skip


def test_rl_zoo_trains_and_tunes_from_pixels(tmp_path):
    pytest.importorskip("rl_zoo3")
    _run_zoo("--algo", "boom", "--env", "dmc_pixels/reacher-easy-v0", "--gym-packages", "sb3_boom.dmc", "-n", "40",
             "--eval-freq", "-1", "--hyperparams", *ZOO_TINY, cwd=tmp_path)  # fmt: skip
    run_dir = tmp_path / "logs" / "boom" / "dmc_pixels-reacher-easy-v0_1"
    config = dict(yaml.unsafe_load((run_dir / "dmc_pixels-reacher-easy-v0" / "config.yml").read_text()))
    assert config["policy"] == "CnnPolicy" and config["frame_stack"] == 3
    model = BOOM.load(run_dir / "dmc_pixels-reacher-easy-v0.zip")
    assert isinstance(model.policy, CnnPolicy) and model.observation_space.shape == (9, 64, 64)
    output = _run_zoo("--algo", "boom", "--env", "dmc_pixels/reacher-easy-v0", "--gym-packages", "sb3_boom.dmc", "-n", "40",
                      "-optimize", "--n-trials", "1", "--n-evaluations", "1", "--eval-episodes", "1", "--n-jobs", "1",
                      "--hyperparams", *ZOO_TINY, "--no-optim-plots", cwd=tmp_path)  # fmt: skip
    assert "Trial 0 finished with value" in output


def test_pixel_zoo_entries_ship_the_cpu_pixels_preset():
    from sb3_boom.presets import PRESETS

    config = yaml.safe_load((REPO_ROOT / "hyperparams" / "boom.yml").read_text())
    preset = PRESETS["cpu_pixels"]
    for task in ["finger-spin", "reacher-easy"]:
        entry = config[f"dmc_pixels/{task}-v0"]
        assert entry["policy"] == "CnnPolicy" and entry["frame_stack"] == 3 and entry["n_timesteps"] == 5e4
        assert eval(entry["policy_kwargs"]) == preset["policy_kwargs"], task  # the Zoo evaluates this string too
        assert {key: entry[key] for key in preset if key != "policy_kwargs"} == {
            key: value for key, value in preset.items() if key != "policy_kwargs"
        }, task
