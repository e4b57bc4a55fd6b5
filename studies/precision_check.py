"""
Does bfloat16 change what the planner picks? For a saved BOOM model, compare the planner's value
estimate (``sb3_boom.planner.estimate_value``: H model steps, then Q of the prior's action) of the
same action sequences in bfloat16 and in float32, with the same random draws (Q heads, prior
sample), from states taken out of the model's replay buffer.

Action sequences are drawn around the policy prior's mean action with a given spread: a wide one
(MPPI's first iteration) and narrow ones (its later iterations, where the samples' values lie close
together and rounding can reorder them). Reported per spread, averaged over the states:

- the spread of the values over the samples (float32);
- ``bf16``: Spearman rank correlation of the bf16 values (``precision="bfloat16"``, whose dynamics,
  reward and Q output layers stay float32) with the float32 ones, and the share of MPPI's elites
  (the top ``--elites`` of ``--samples``) both precisions pick;
- ``bf16 throughout``: the same with the encoder and those output layers in bf16 too
  (``set_float32_encoder`` and ``set_float32_outputs`` of studies/research_switches.py);
- ``heads``: the same for float32 against float32 with another draw of the two Q heads and of the
  prior's action: the ranking noise the planner has anyway, as a yardstick.

    python -m studies.precision_check --checkpoint <run>/checkpoint
    python -m studies.precision_check --checkpoint <run>/checkpoint --gradients 6
    python -m studies.precision_check --checkpoint <run>/checkpoint --returns-env dm_control/cartpole-swingup-v0 \
        --eval-seed 10002

With ``--returns-env``, it also plays ``--episodes`` deterministic episodes with the planner and
with the prior in each precision, on the same initial states, as benchmarks/reproduce.py evaluates
(one env per episode, all reset with ``--eval-seed``; reproduce.py uses the run's seed + 10,000).
Equal returns in both precisions mean that a precision's effect on a run lies in its training, not
in how the trained model plans.

With ``--gradients N``, it compares one update's gradients instead, on N batches from the replay
buffer: per network (encoder, dynamics, reward, Q from the world-model loss; the prior from its
loss), the cosine similarity and the relative error ``|g - g32| / |g32|`` of the gradient in bf16 (as
shipped), in bf16 with a bf16 encoder and in bf16 throughout, against float32 with the same random
draws (Q-head dropout, Q heads, the prior's samples). Yardsticks: float32 with other random draws,
and float32 on the next batch. Also the root-mean-square difference of the encoder's latents.

(``<run>/checkpoint`` as written by benchmarks/reproduce.py: ``model.zip`` and ``replay_buffer.pkl``.)
"""

import argparse
import pathlib

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.reproduce import EVAL_SEED_OFFSET, default_action_repeat, evaluate_returns, make_env
from sb3_boom import BOOM
from sb3_boom.planner import estimate_value
from studies.research_switches import set_float32_encoder, set_float32_outputs


def rank_agreement(values: th.Tensor, reference: th.Tensor, num_elites: int) -> tuple[float, float]:
    """Mean Spearman correlation and mean elite overlap of ``values`` with ``reference`` (``[states, samples]``)."""
    ranks = values.argsort(-1).argsort(-1).float()
    reference_ranks = reference.argsort(-1).argsort(-1).float()
    ranks = ranks - ranks.mean(-1, keepdim=True)
    reference_ranks = reference_ranks - reference_ranks.mean(-1, keepdim=True)
    spearman = (ranks * reference_ranks).sum(-1) / (ranks.norm(dim=-1) * reference_ranks.norm(dim=-1))
    elites = values.topk(num_elites, dim=-1).indices
    reference_elites = reference.topk(num_elites, dim=-1).indices
    shared = (elites[:, :, None] == reference_elites[:, None, :]).any(-1).float().sum(-1) / num_elites
    return spearman.mean().item(), shared.mean().item()


# bf16 variants: (float32 encoder, float32 output layers); the first is precision="bfloat16" as shipped.
BF16_VARIANTS = {"bf16": (True, True), "bf16, bf16 encoder": (False, True), "bf16 throughout": (False, False)}
GRADIENT_NETWORKS = ("encoder", "dynamics", "reward_head", "q_ensemble", "actor")


def update_gradients(model: BOOM, batch, precision: str, draw: int) -> tuple[dict[str, th.Tensor], th.Tensor]:
    """
    The gradients of one update's two losses, flattened per network, without stepping the optimizers;
    and the encoder's latents of the batch's next observations.
    """
    policy = model.policy
    policy.precision = precision
    th.manual_seed(draw)
    loss, _, zs = model._world_model_loss(batch.observations, batch.actions, batch.rewards, batch.terminated)
    policy.zero_grad(set_to_none=True)
    loss.backward()
    policy.q_ensemble.requires_grad_(False)
    try:
        prior_loss, _, _ = model._prior_loss(zs.detach(), batch.planner_actions, batch.planner_stds)
        prior_loss.backward()
    finally:
        policy.q_ensemble.requires_grad_(True)
    gradients = {
        name: th.cat([p.grad.flatten() for p in getattr(policy, name).parameters() if p.grad is not None])
        for name in GRADIENT_NETWORKS
    }
    policy.zero_grad(set_to_none=True)
    with th.no_grad():
        latents = policy.encode(batch.observations[1:])
    return gradients, latents


def gradient_agreement(model: BOOM, num_batches: int, seed: int) -> None:
    """Print how far bf16's gradients are from float32's, per network, against two yardsticks."""
    policy = model.policy
    policy.set_training_mode(True)
    th.manual_seed(seed)
    batches = [model.replay_buffer.sample(model.batch_size) for _ in range(num_batches + 1)]
    rows: dict[str, list[tuple[dict[str, tuple[float, float]], float]]] = {}

    def compare(label: str, gradients: dict[str, th.Tensor], latents: th.Tensor, reference) -> None:
        reference_gradients, reference_latents = reference
        cells = {
            name: (
                F.cosine_similarity(gradients[name].double(), reference_gradients[name].double(), dim=0).item(),
                ((gradients[name] - reference_gradients[name]).norm() / reference_gradients[name].norm()).item(),
            )
            for name in GRADIENT_NETWORKS
        }
        rows.setdefault(label, []).append((cells, (latents - reference_latents).pow(2).mean().sqrt().item()))

    for index in range(num_batches):
        draw = seed + 1000 * (index + 1)
        reference = update_gradients(model, batches[index], "float32", draw)
        compare("float32, other draws", *update_gradients(model, batches[index], "float32", draw + 1), reference)
        compare("float32, next batch", *update_gradients(model, batches[index + 1], "float32", draw), reference)
        for label, (float32_encoder, float32_outputs) in BF16_VARIANTS.items():
            set_float32_encoder(policy, float32_encoder)
            set_float32_outputs(policy, float32_outputs)
            compare(label, *update_gradients(model, batches[index], "bfloat16", draw), reference)
        set_float32_encoder(policy, True)
        set_float32_outputs(policy, True)
    policy.precision = "float32"
    policy.set_training_mode(False)
    print(f"Gradients of one update against float32 with the same draws, mean over {num_batches} batches:")
    print(
        "| gradients | "
        + " | ".join(f"{name}: cosine | {name}: rel. error" for name in GRADIENT_NETWORKS)
        + " | latent rms diff |"
    )
    print("|---|" + "---|---|" * len(GRADIENT_NETWORKS) + "---|")
    for label, results in rows.items():
        cells = []
        for name in GRADIENT_NETWORKS:
            cosine = np.mean([cells_of_batch[name][0] for cells_of_batch, _ in results])
            error = np.mean([cells_of_batch[name][1] for cells_of_batch, _ in results])
            cells.append(f"{cosine:.4f} | {error:.4f}")
        latent_rms = np.mean([rms for _, rms in results])
        print(f"| {label} | " + " | ".join(cells) + f" | {latent_rms:.2e} |", flush=True)


def returns_by_precision(model: BOOM, env_id: str, episodes: int, eval_seed: int) -> None:
    """Print the mean deterministic return of the planner and of the prior in each precision."""
    env_kwargs = dict(env_id=env_id, action_repeat=default_action_repeat(env_id))
    env = make_vec_env(make_env, n_envs=episodes, seed=eval_seed, env_kwargs=env_kwargs)
    print(f"Mean return over {episodes} deterministic episodes per policy, eval seed {eval_seed}:")
    print("| precision | planner | prior |")
    print("|---|---|---|")
    for precision in ("float32", "bfloat16"):
        model.policy.precision = precision
        returns = evaluate_returns(model, env, eval_seed, episodes, ("planner", "prior"))
        print(f"| {precision} | {returns['planner'].mean():.1f} | {returns['prior'].mean():.1f} |", flush=True)
    env.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=pathlib.Path, required=True, help="folder with model.zip and replay_buffer.pkl")
    parser.add_argument("--states", type=int, default=64, help="states drawn from the replay buffer")
    parser.add_argument("--samples", type=int, default=128, help="action sequences per state")
    parser.add_argument("--elites", type=int, default=16)
    parser.add_argument("--spreads", type=float, nargs="+", default=[2.0, 0.3, 0.1], help="std of the sequences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gradients", type=int, default=0, help="batches: compare one update's gradients instead")
    parser.add_argument("--returns-env", default=None, help="env id: also compare the returns in both precisions")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per policy and precision (--returns-env)")
    parser.add_argument("--eval-seed", type=int, default=EVAL_SEED_OFFSET, help="seed of the evaluation envs (--returns-env)")
    args = parser.parse_args(argv)

    th.set_num_threads(args.threads)
    model = BOOM.load(args.checkpoint / "model.zip", device="cpu")
    model.load_replay_buffer(args.checkpoint / "replay_buffer.pkl")
    policy = model.policy
    policy.set_training_mode(False)
    buffer = model.replay_buffer
    if buffer.size() < args.states:
        raise ValueError(f"the replay buffer holds {buffer.size()} transitions, fewer than --states {args.states}")
    rng = np.random.default_rng(args.seed)
    positions = rng.choice(buffer.size(), args.states, replace=False)
    observations = th.as_tensor(buffer.observations[positions, 0])
    horizon, action_dim = policy.planner.horizon, policy.action_dim
    if args.gradients > 0:
        gradient_agreement(model, args.gradients, args.seed)
        return

    def value(precision: str, draw: int, actions: th.Tensor) -> th.Tensor:
        policy.precision = precision
        with th.no_grad():
            z = policy.encode(observations)
            th.manual_seed(draw)
            return estimate_value(policy, z[:, None], actions, policy.gamma)  # [states, 1, L], as the planner

    print(f"{args.checkpoint}: {policy.num_q} Q heads, horizon {horizon}, {args.states} states x {args.samples} sequences")
    columns = ["bf16", "bf16 throughout", "heads"]
    print("| spread | value std over samples | " + " | ".join(f"{c}: spearman | {c}: elites shared" for c in columns) + " |")
    print("|---|---|" + "---|---|" * len(columns))
    for spread in args.spreads:
        policy.precision = "float32"
        with th.no_grad():
            mean = policy.pi(policy.encode(observations)).mean
        generator = th.Generator().manual_seed(args.seed + 1)
        noise = th.randn(horizon, args.states, args.samples, action_dim, generator=generator)
        actions = (mean[None, :, None, :] + spread * noise).clamp(-1.0, 1.0)
        reference = value("float32", 1, actions)
        agreements = [rank_agreement(value("bfloat16", 1, actions), reference, args.elites)]
        set_float32_encoder(policy, False)
        set_float32_outputs(policy, False)
        agreements.append(rank_agreement(value("bfloat16", 1, actions), reference, args.elites))
        set_float32_encoder(policy, True)
        set_float32_outputs(policy, True)
        agreements.append(rank_agreement(value("float32", 2, actions), reference, args.elites))
        cells = " | ".join(f"{spearman:.4f} | {shared:.3f}" for spearman, shared in agreements)
        print(f"| {spread} | {reference.std(-1).mean().item():.4f} | {cells} |")
    if args.returns_env is not None:
        returns_by_precision(model, args.returns_env, args.episodes, args.eval_seed)


if __name__ == "__main__":
    main()
