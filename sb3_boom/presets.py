"""
Named BOOM configurations: the world model's sizes (``MODEL_SIZES``, picked by the policy's
``model_size``) and the algorithm's presets (``PRESETS``: a model size plus planner and batch
settings), used as ``BOOM("MlpPolicy", env, **PRESETS["cpu"])`` and mirrored in ``hyperparams/boom.yml``.
"""

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's setting (BOOM's defaults): 5M model, 512 samples, 64 elites, 6 (8) iterations.
    "paper": dict(policy_kwargs=dict(model_size=5)),
    # For machines without a GPU: measured on 2 CPU cores in docs/speed.md (>= 25 agent
    # steps/s on cartpole-swingup, where it still learns).
    "cpu": dict(
        policy_kwargs=dict(model_size="cpu"),
        num_samples=128,
        num_elites=16,
        num_pi_trajs=8,
        iterations=3,
        batch_size=128,
    ),
    # Smoke tests: networks and planner small enough to run a few hundred steps in seconds. It
    # checks a setup; it does not learn.
    "tiny": dict(
        policy_kwargs=dict(latent_dim=16, mlp_dim=32, enc_dim=32, num_q=2, num_bins=21),
        num_samples=32,
        num_elites=4,
        num_pi_trajs=4,
        iterations=2,
        batch_size=16,
        learning_starts=40,
        buffer_size=5_000,
    ),
    # Pixels on machines without a GPU (docs/pixels.md): the "cpu" model behind TD-MPC2's pixel encoder
    # (4 conv layers of 32 channels, random shift of 3 pixels), smaller batches: most of an update is the
    # conv encoder's forward and backward pass on (H + 1) x batch stacked frames.
    "cpu_pixels": dict(
        policy_kwargs=dict(model_size="cpu", image_encoder_kwargs=dict(num_channels=32, shift_pad=3)),
        num_samples=128,
        num_elites=16,
        num_pi_trajs=8,
        iterations=3,
        batch_size=64,
        buffer_size=100_000,
    ),
}

# TD-MPC2's model presets, keyed by their approximate parameter count in millions.
MODEL_SIZES: dict[int | str, dict[str, int]] = {
    # "cpu": ours, for machines without a GPU (see PRESETS["cpu"]); the others are TD-MPC2's.
    "cpu": dict(enc_dim=128, mlp_dim=128, latent_dim=64, num_enc_layers=2, num_q=2),
    1: dict(enc_dim=256, mlp_dim=384, latent_dim=128, num_enc_layers=2, num_q=2),
    5: dict(enc_dim=256, mlp_dim=512, latent_dim=512, num_enc_layers=2, num_q=5),
    19: dict(enc_dim=1024, mlp_dim=1024, latent_dim=768, num_enc_layers=3, num_q=5),
    48: dict(enc_dim=1792, mlp_dim=1792, latent_dim=768, num_enc_layers=4, num_q=5),
    317: dict(enc_dim=4096, mlp_dim=4096, latent_dim=1376, num_enc_layers=5, num_q=8),
}
