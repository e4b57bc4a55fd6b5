"""
One set of trained weights in both codes: are sb3-boom's networks the same functions as the authors'
(molumitu/BOOM_MBRL), does their planner act as ours does with them, and is one training update the same?

    python -m studies.cross_check --authors-path /path/to/BOOM_MBRL --model <run>/model.zip \\
        --env dm_control/cartpole-swingup-v0 --episodes 10

1. **Networks.** The weights of a saved sb3-boom model are copied into the authors' ``WorldModel``
   (built from their ``config.yaml`` with the model's sizes), then every network is evaluated on the
   same inputs on both sides (encoded observations of a short random-action rollout, uniform
   actions): encoder, dynamics, reward logits, each online and target Q head's logits, the prior's
   raw output. The table gives the largest absolute difference per network. Q dropout is off on
   both sides for this part (their vmapped ensemble ignores ``eval()``, so its functional module is
   switched off directly).
2. **Planners.** Episodes from the same initial states (env seeds ``--seed``, ``--seed + 1``, ...,
   our env, action repeat 2 on ``dm_control/*``), played by each planner without exploration noise
   with those weights: ours with the Q heads' dropout off while planning (``q_dropout="train"``) and
   on (``"always"``); theirs (``BOOM.act(obs, t0, eval_mode=True)``) as shipped (dropout on) and with
   its dropout switched off. Episodes below ``--fail-below`` count as failures.
3. **Training updates** (``--updates``, default 3). Batches drawn from the model's replay buffer
   (``replay_buffer.pkl`` beside it, or ``--replay-buffer``), and for each the same random draws on
   both sides (the prior's Gaussian noise, the two Q heads of each min), Q dropout off: the losses
   each side reports, the clipped gradients and the weights after the update, per network. Both start
   from fresh Adam moments and our running value scale.

``--write-fixture PATH`` (no ``--model``) instead saves their updates of a small model with spread
weights on random batches; tests/test_cross_check.py replays them through our update, so CI checks
our update against theirs without their code.

Their code is only imported, never shipped here. Without ``--authors-path``, or when their ``boom``
package does not import from it, the script says so and exits 0; point it at a copy made to run on
CPU (see compare_authors.py).
"""

import argparse
import contextlib
import os
import pathlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch as th

from benchmarks.reproduce import DMC_PREFIX, default_action_repeat, make_env, task_name
from sb3_boom import BOOM
from sb3_boom.boom import TRAIN_STATS
from sb3_boom.buffers import SequenceReplayBufferSamples
from sb3_boom.policies import WorldModelPolicy
from sb3_boom.presets import PRESETS
from studies.compare_authors import authors_config, import_authors, quiet
from studies.planner_check import play_episode, run_episode
from studies.research_switches import AuthorsScheduleBOOM

# Our network name -> theirs; layer names differ only inside NormedLinear.
NETWORKS = {"encoder": "_encoder", "dynamics": "_dynamics", "reward_head": "_reward", "actor": "_pi"}
Q_ENSEMBLES = {"q_ensemble": "_Qs", "q_target": "_target_Qs"}


def authors_cfg(path: pathlib.Path, modules: dict[str, Any], task: str, model: BOOM) -> Any:
    """Their config.yaml with our model's sizes and planner settings, parsed as their train.py does."""
    policy: WorldModelPolicy = model.policy
    planner = policy.planner
    return authors_config(
        path,
        modules,
        dict(
            task=task,
            seed=0,
            model_size=None,
            latent_dim=policy.latent_dim,
            mlp_dim=policy.mlp_dim,
            enc_dim=policy.enc_dim,
            num_enc_layers=policy.num_enc_layers,
            num_q=policy.num_q,
            num_bins=policy.num_bins,
            vmin=policy.vmin,
            vmax=policy.vmax,
            simnorm_dim=policy.simnorm_dim,
            dropout=policy.dropout,
            log_std_min=policy.log_std_min,
            log_std_max=policy.log_std_max,
            horizon=planner.horizon,
            num_samples=planner.num_samples,
            num_elites=planner.num_elites,
            num_pi_trajs=planner.num_pi_trajs,
            # Their BOOM adds 2 iterations when A >= 20; ours has them in its planner settings already.
            iterations=planner.iterations - 2 * int(policy.action_dim >= 20),
            min_std=planner.min_std,
            max_std=planner.max_std,
            temperature=planner.temperature,
            batch_size=model.batch_size,
        ),
    )


def authors_state_dict(policy: WorldModelPolicy) -> dict[str, th.Tensor]:
    """Our weights under their names and layouts (their Q ensemble: per-layer parameters stacked over heads)."""
    return authors_layout(policy.state_dict())


def authors_layout(ours: dict[str, th.Tensor]) -> dict[str, th.Tensor]:
    """
    Tensors named as our parameters (weights or their gradients), renamed and laid out as the authors'.
    A Q ensemble is converted only when its tensors are there (a target ensemble has no gradients).
    """
    theirs = {}
    for our_name, their_name in NETWORKS.items():
        for key, value in ours.items():
            if key.startswith(our_name + "."):
                layer = key[len(our_name) + 1 :].replace(".linear.", ".").replace(".norm.", ".ln.")
                theirs[f"{their_name}.{layer}"] = value
    for our_name, their_name in Q_ENSEMBLES.items():
        if f"{our_name}.weights.0" not in ours:
            continue
        # Their functional ensemble lists each head's parameters in module order:
        # Linear weight [out, in], bias, LayerNorm weight, bias; ...; output weight, bias.
        stacked = []
        for layer in range(3):
            stacked.append(ours[f"{our_name}.weights.{layer}"].transpose(1, 2))
            stacked.append(ours[f"{our_name}.biases.{layer}"].squeeze(1))
            if layer < 2:
                stacked.append(ours[f"{our_name}.norm_weights.{layer}"].squeeze(1))
                stacked.append(ours[f"{our_name}.norm_biases.{layer}"].squeeze(1))
        theirs.update({f"{their_name}.params.{i}": value.contiguous() for i, value in enumerate(stacked)})
    return theirs


def functional_q_module(ensemble: th.nn.Module) -> th.nn.Module:
    """The module behind their vmapped Q ensemble (``eval()`` does not reach it; its dropout follows its own flag)."""
    pending, seen = [ensemble.vmap], set()
    while pending:
        function = pending.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        for cell in getattr(function, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if isinstance(value, th.nn.Module):
                return value
            if callable(value):
                pending.append(value)
        if hasattr(function, "__wrapped__"):
            pending.append(function.__wrapped__)
    raise RuntimeError("could not find the functional module of the authors' Q ensemble (their code changed?)")


def compare_networks(policy: WorldModelPolicy, world_model: Any, observations: th.Tensor, seed: int) -> dict[str, float]:
    """Largest absolute output difference per network, on the same inputs (Q dropout off on both sides)."""
    generator = th.Generator().manual_seed(seed)
    actions = th.rand(observations.shape[0], policy.action_dim, generator=generator) * 2 - 1
    z = policy.encode(observations)
    pair = th.cat([z, actions], dim=-1)
    outputs = {
        "encoder": (z, world_model.encode(observations, None)),
        "dynamics": (policy.next_latent(z, actions), world_model.next(z, actions, None)),
        "reward logits": (policy.reward_logits(z, actions), world_model._reward(pair)),
        "Q logits, online heads": (policy.q_logits(z, actions), world_model._Qs(pair)),
        "Q logits, target heads": (policy.q_logits(z, actions, target=True), world_model._target_Qs(pair)),
        "prior (mean, raw log-std)": (policy.actor(z), world_model._pi(z)),
    }
    return {name: float((ours - theirs).abs().max()) for name, (ours, theirs) in outputs.items()}


# Our TRAIN_STATS name -> the key of their update()'s statistics, for the losses both report.
UPDATE_STATS = {
    "consistency_loss": "consistency_loss",
    "reward_loss": "reward_loss",
    "value_loss": "value_loss",
    "model_loss": "total_loss",
    "model_grad_norm": "grad_norm",
    "policy_loss": "pi_loss",
    "policy_value_loss": "pi_q_loss",
    "align_loss": "pi_fkl_loss",
    "q_scale": "pi_scale",
}


@contextlib.contextmanager
def shared_draws(noises: list[th.Tensor], head_pairs: list[list[int]], num_q: int) -> Iterator[None]:
    """
    Inside, both codes' random draws of an update come from the given lists, in call order: the
    prior's Gaussian noise (``torch.randn_like``, theirs and ours) and the two Q heads of each min
    over heads (their ``np.random.choice(num_q, 2)``; our ``th.rand(num_q).topk(2)``, answered with a
    vector whose top two are the pair). Leaving it checks that every draw given was used.
    """
    noises, head_pairs = list(noises), list(head_pairs)
    randn_like, rand, choice = th.randn_like, th.rand, np.random.choice

    def next_noise(like: th.Tensor, *args: Any, **kwargs: Any) -> th.Tensor:
        if not noises or noises[0].shape != like.shape:
            raise RuntimeError(f"unexpected Gaussian draw of shape {tuple(like.shape)}: the two updates draw differently")
        return noises.pop(0).to(like)

    def next_heads_ours(*size: Any, **kwargs: Any) -> th.Tensor:
        if size not in ((num_q,), ((num_q,),)):
            return rand(*size, **kwargs)
        scores = th.zeros(num_q, device=kwargs.get("device"))
        scores[head_pairs.pop(0)] = th.tensor([2.0, 1.0], device=scores.device)
        return scores

    def next_heads_theirs(n: Any, size: Any = None, replace: bool = True, p: Any = None) -> Any:
        if (n, size, replace) != (num_q, 2, False):
            return choice(n, size, replace, p)
        return np.array(head_pairs.pop(0))

    th.randn_like, th.rand, np.random.choice = next_noise, next_heads_ours, next_heads_theirs
    try:
        yield
    finally:
        th.randn_like, th.rand, np.random.choice = randn_like, rand, choice
    if noises or head_pairs:
        unused = f"{len(noises)} noise draws and {len(head_pairs)} head pairs"
        raise RuntimeError(f"{unused} left unused: the two updates draw differently")


def largest_differences(ours: dict[str, th.Tensor], theirs: dict[str, th.Tensor]) -> dict[str, tuple[float, float]]:
    """Per network of theirs: the largest |ours - theirs| and the largest |theirs| over its tensors."""
    if ours.keys() != theirs.keys():
        raise RuntimeError(f"different tensors on the two sides: {sorted(ours.keys() ^ theirs.keys())}")
    table: dict[str, tuple[float, float]] = {}
    for key in theirs:
        network = key.split(".")[0]
        difference = float((ours[key] - theirs[key]).abs().max())
        magnitude = float(theirs[key].abs().max())
        previous = table.get(network, (0.0, 0.0))
        table[network] = (max(previous[0], difference), max(previous[1], magnitude))
    return table


def update_draws(batches: list[Any], num_q: int, seed: int) -> tuple[list[th.Tensor], list[list[int]]]:
    """The random draws of one update per batch: two Gaussian noises shaped as the actions, two head pairs."""
    generator = th.Generator().manual_seed(seed)
    noises = [th.randn(batch.planner_actions.shape, generator=generator) for batch in batches for _ in range(2)]
    head_pairs = [th.randperm(num_q, generator=generator)[:2].tolist() for _ in batches for _ in range(2)]
    return noises, head_pairs


def our_updates(
    model: AuthorsScheduleBOOM, batches: list[Any], noises: list[th.Tensor], head_pairs: list[list[int]]
) -> list[dict[str, Any]]:
    """
    Our training updates, one per batch, with the given draws (two of each per update): after each,
    the statistics it reports (``TRAIN_STATS`` names), the clipped gradients and the weights, both
    named and laid out as the authors'. Runs with ``clip_with_prior_grads``, as their update does.
    """
    policy: WorldModelPolicy = model.policy
    model.authors_quirks = ("clip_with_prior_grads",)
    records = []
    for index, batch in enumerate(batches):
        with shared_draws(noises[2 * index : 2 * index + 2], head_pairs[2 * index : 2 * index + 2], policy.num_q):
            policy.set_training_mode(True)
            stats = dict(zip(TRAIN_STATS, model._update(batch).tolist(), strict=True))
            policy.set_training_mode(False)
        grads = {name: p.grad.clone() for name, p in policy.named_parameters() if p.grad is not None}
        weights = {name: value.clone() for name, value in authors_state_dict(policy).items()}
        records.append(dict(stats=stats, grads=authors_layout(grads), weights=weights))
    return records


def their_updates(agent: Any, batches: list[Any], noises: list[th.Tensor], head_pairs: list[list[int]]) -> list[dict]:
    """The authors' ``update`` on the same batches and draws; records as :func:`our_updates` (statistics renamed)."""
    num_q = agent.cfg.num_q
    records = []
    for index, batch in enumerate(batches):
        rewards = batch.rewards.unsqueeze(-1)
        sample = (batch.observations, batch.actions, batch.planner_actions, batch.planner_stds, rewards, None)
        with shared_draws(noises[2 * index : 2 * index + 2], head_pairs[2 * index : 2 * index + 2], num_q), quiet():
            reported = agent.update(sample, index)
        stats = {ours: float(reported[theirs]) for ours, theirs in UPDATE_STATS.items()}
        grads = {name: p.grad.clone() for name, p in agent.model.named_parameters() if p.grad is not None}
        weights = {name: value.clone() for name, value in agent.model.state_dict().items()}
        records.append(dict(stats=stats, grads=grads, weights=weights))
    return records


def start_updates_alike(policy: WorldModelPolicy, agent: Any) -> None:
    """Fresh Adam moments on both sides (their code builds new optimisers; ours are cleared), our value scale on theirs."""
    for optimizer in (policy.optimizer, policy.pi_optimizer):
        optimizer.state.clear()
    agent.scale._value.copy_(policy.q_scale)


def compare_updates(model: AuthorsScheduleBOOM, agent: Any, batches: list[Any], seed: int) -> None:
    """
    The same training updates on both sides from the same weights, batches and random draws (Q dropout
    off): the statistics each side reports, then the clipped gradients and the weights after each update.
    """
    policy: WorldModelPolicy = model.policy
    start_updates_alike(policy, agent)
    ours_lrs = sorted({group["lr"] for o in (policy.optimizer, policy.pi_optimizer) for group in o.param_groups})
    their_lrs = sorted({group["lr"] for o in (agent.optim, agent.pi_optim) for group in o.param_groups})
    print(f"learning rates: ours {ours_lrs}, theirs {their_lrs}; lambda_align: ours {float(model.lambda_align):g}")
    noises, head_pairs = update_draws(batches, policy.num_q, seed)
    ours = our_updates(model, batches, noises, head_pairs)
    theirs = their_updates(agent, batches, noises, head_pairs)
    for index, (our_record, their_record) in enumerate(zip(ours, theirs, strict=True)):
        print(f"\nUpdate {index + 1}: the statistics each side reports (ours | theirs | |difference|)")
        for name, value in our_record["stats"].items():
            if name in their_record["stats"]:
                difference = abs(value - their_record["stats"][name])
                print(f"  {name:18s} {value:12.6g} {their_record['stats'][name]:12.6g}   {difference:.1e}")
        for part, title in (("grads", "clipped gradients"), ("weights", "weights after the update (target Q included)")):
            print(f"  {title}, largest |ours - theirs| (largest |theirs|) per network:")
            for network, (difference, magnitude) in largest_differences(our_record[part], their_record[part]).items():
                print(f"    {network:12s} {difference:.1e} ({magnitude:.1e})")


def fixture_batches(policy: WorldModelPolicy, batch_size: int, horizon: int, count: int, seed: int) -> list[Any]:
    """Random batches of windows shaped as our replay buffer's (no termination, as on DMC)."""
    generator = th.Generator().manual_seed(seed)
    obs_dim, action_dim = policy.observation_space.shape[0], policy.action_dim

    def uniform(*shape: int) -> th.Tensor:
        return th.rand(*shape, generator=generator) * 2 - 1

    return [
        SequenceReplayBufferSamples(
            observations=th.randn(horizon + 1, batch_size, obs_dim, generator=generator),
            actions=uniform(horizon, batch_size, action_dim),
            planner_actions=uniform(horizon, batch_size, action_dim),
            planner_stds=th.rand(horizon, batch_size, action_dim, generator=generator) + 0.05,
            rewards=th.rand(horizon, batch_size, generator=generator),
            terminated=th.zeros(horizon, batch_size),
        )
        for _ in range(count)
    ]


def write_update_fixture(
    path: pathlib.Path, authors_path: pathlib.Path, modules: dict[str, Any], env_id: str, seed: int
) -> None:
    """
    Save the authors' training updates of a small model (weights spread so that no head is zero, a value
    scale above the alignment gate, random batches, fixed draws), with the model's settings and inputs,
    for tests/test_cross_check.py to replay through ours without their code.
    """
    th.manual_seed(seed)
    kwargs = {**PRESETS["tiny"], "policy_kwargs": {**PRESETS["tiny"]["policy_kwargs"], "num_q": 3, "dropout": 0.0}}
    env = make_env(env_id, default_action_repeat(env_id))
    model = AuthorsScheduleBOOM("MlpPolicy", env, device="cpu", seed=seed, **kwargs)
    policy: WorldModelPolicy = model.policy
    with th.no_grad():
        for parameter in policy.parameters():
            parameter.add_(th.randn_like(parameter), alpha=0.1)
        policy.q_target.load_state_dict(policy.q_ensemble.state_dict())
        policy.q_scale.fill_(3.0)
    cfg = authors_cfg(authors_path, modules, task_name(env_id), model)
    with quiet():
        modules["boom.envs"].make_env(cfg)
        agent = modules["boom.boom_alg"].BOOM(cfg)
    agent.model.load_state_dict(authors_state_dict(policy), strict=True)
    start_updates_alike(policy, agent)
    batches = fixture_batches(policy, model.batch_size, policy.planner.horizon, 2, seed)
    noises, head_pairs = update_draws(batches, policy.num_q, seed)
    fixture = dict(
        env_id=env_id,
        kwargs=kwargs,
        seed=seed,
        discount=float(agent.discount),
        state_dict=policy.state_dict(),
        batches=[batch._asdict() for batch in batches],
        noises=noises,
        head_pairs=head_pairs,
        theirs=their_updates(agent, batches, noises, head_pairs),
    )
    th.save(fixture, path)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB): {len(batches)} updates of the authors' code")


def authors_episode(agent: Any, policy: WorldModelPolicy, env: Any, seed: int) -> float:
    """Return of one episode played by their planner (no exploration noise) on our env."""

    def act(observation: np.ndarray, step: int) -> np.ndarray:
        action = agent.act(th.as_tensor(observation, dtype=th.float32), t0=step == 0, eval_mode=True)[0]
        return policy.unscale_action(action.numpy())

    return play_episode(act, env, seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors-path", type=pathlib.Path, help="local copy of molumitu/BOOM_MBRL that runs on this machine")
    parser.add_argument("--model", help="a BOOM model saved with save() (.zip)")
    parser.add_argument("--env", required=True, help="the dm_control/* env id it was trained on")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per planner (0: networks only)")
    parser.add_argument("--seed", type=int, default=5000, help="env seed of the first episode")
    parser.add_argument("--fail-below", type=float, default=100.0, help="returns below this count as failures")
    parser.add_argument("--updates", type=int, default=3, help="training updates to compare (0: none)")
    parser.add_argument(
        "--replay-buffer", type=pathlib.Path, help="where the batches come from (default: replay_buffer.pkl beside --model)"
    )
    parser.add_argument(
        "--write-fixture", type=pathlib.Path, help="instead: save their updates of a small model for tests/test_cross_check.py"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.model is None and args.write_fixture is None:
        parser.error("give --model (or --write-fixture)")

    if args.authors_path is None:
        print("No --authors-path given: nothing to compare (the authors' code is not shipped with sb3-boom).")
        return
    if not args.env.startswith(DMC_PREFIX):
        sys.exit(f"the authors' code builds dm_control tasks only, got {args.env}")
    try:
        modules = import_authors(args.authors_path)
    except Exception as error:  # their package, or one of its dependencies, is missing
        print(f"The authors' code does not import from {args.authors_path}: {error!r}. Nothing to compare.")
        return
    os.environ["BOOM_COMPILE"] = "0"  # eager networks: their state-dict names without compile wrappers
    th.set_num_threads(args.threads)
    if args.write_fixture is not None:
        write_update_fixture(args.write_fixture, args.authors_path, modules, args.env, args.seed)
        return
    th.manual_seed(args.seed)

    model = AuthorsScheduleBOOM.load(args.model, device="cpu")
    policy: WorldModelPolicy = model.policy
    policy.set_training_mode(False)
    cfg = authors_cfg(args.authors_path, modules, task_name(args.env), model)
    with quiet():
        modules["boom.envs"].make_env(cfg)  # fills in obs_shape, action_dim and episode_length
        agent = modules["boom.boom_alg"].BOOM(cfg)
    agent.model.load_state_dict(authors_state_dict(policy), strict=True)
    agent.model.eval()
    their_dropout = functional_q_module(agent.model._Qs)
    if functional_q_module(agent.model._target_Qs) is not their_dropout:
        raise RuntimeError("expected their online and target Q ensembles to share one functional module")
    print(f"{args.model} on {args.env}; discount: ours {model.gamma:.4f}, theirs {agent.discount:.4f}")

    env = make_env(args.env, default_action_repeat(args.env))
    observations = []
    observation, _ = env.reset(seed=args.seed)
    for _ in range(256):
        observations.append(observation)
        observation, *_ = env.step(env.action_space.sample())
    policy.set_q_dropout("train")  # eval mode: no dropout on our side either
    with th.no_grad():
        their_dropout.train(False)
        differences = compare_networks(policy, agent.model, th.as_tensor(np.array(observations), dtype=th.float32), args.seed)
        their_dropout.train(True)
    print("\nSame weights, same inputs, Q dropout off: largest |ours - theirs| per network output")
    for name, difference in differences.items():
        print(f"  {name:28s} {difference:.2e}")

    if args.episodes > 0:
        print(f"\nPlanners, no exploration noise, {args.episodes} episodes each, env seeds {args.seed}..")
        seeds = [args.seed + i for i in range(args.episodes)]
        with th.no_grad():
            for name, planner_dropout in (("ours, Q dropout off", False), ("ours, Q dropout on", True)):
                policy.set_q_dropout("always" if planner_dropout else "train")
                returns = [run_episode(model, env, seed, "planner, no noise", None) for seed in seeds]
                report(name, returns, args.fail_below)
            for name, planner_dropout in (("theirs, Q dropout on", True), ("theirs, Q dropout off", False)):
                their_dropout.train(planner_dropout)
                returns = [authors_episode(agent, policy, env, seed) for seed in seeds]
                report(name + (" (as shipped)" if planner_dropout else ""), returns, args.fail_below)

    buffer_path = args.replay_buffer or pathlib.Path(args.model).with_name("replay_buffer.pkl")
    if args.updates <= 0:
        return
    if not buffer_path.exists():
        print(f"\nNo replay buffer at {buffer_path}: training updates not compared (pass --replay-buffer).")
        return
    model.load_replay_buffer(buffer_path)
    batches = [model.replay_buffer.sample(model.batch_size) for _ in range(args.updates)]
    print(f"\nTraining updates on batches of {model.batch_size} windows from {buffer_path}, Q dropout off on both sides")
    their_dropout.train(False)
    policy.q_ensemble.dropout = policy.q_target.dropout = 0.0
    compare_updates(model, agent, batches, args.seed)


def report(name: str, returns: list[float], fail_below: float) -> None:
    failures = sum(value < fail_below for value in returns)
    print(
        f"  {name:32s} mean {np.mean(returns):7.1f}  failures (< {fail_below:g}) {failures}/{len(returns)}"
        f"  returns {[round(value, 1) for value in returns]}",
        flush=True,
    )


if __name__ == "__main__":
    main()
