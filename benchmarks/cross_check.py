"""
One set of trained weights in both codes: are sb3-boom's networks the same functions as the authors'
(molumitu/BOOM_MBRL), and does their planner act as ours does with them?

    python benchmarks/cross_check.py --authors-path /path/to/BOOM_MBRL --model <run>/model.zip \\
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

Their code is only imported, never shipped here. Without ``--authors-path``, or when their ``boom``
package does not import from it, the script says so and exits 0; point it at a copy made to run on
CPU (see compare_authors.py).
"""

import argparse
import os
import pathlib
import sys
from typing import Any

import numpy as np
import torch as th
from compare_authors import authors_config, import_authors, quiet
from planner_check import play_episode, run_episode
from reproduce import DMC_PREFIX, default_action_repeat, make_env, task_name

from sb3_boom import BOOM
from sb3_boom.policies import WorldModelPolicy

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
    ours = policy.state_dict()
    theirs = {}
    for our_name, their_name in NETWORKS.items():
        for key, value in ours.items():
            if key.startswith(our_name + "."):
                layer = key[len(our_name) + 1 :].replace(".linear.", ".").replace(".norm.", ".ln.")
                theirs[f"{their_name}.{layer}"] = value
    for our_name, their_name in Q_ENSEMBLES.items():
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


def authors_episode(agent: Any, policy: WorldModelPolicy, env: Any, seed: int) -> float:
    """Return of one episode played by their planner (no exploration noise) on our env."""

    def act(observation: np.ndarray, step: int) -> np.ndarray:
        action = agent.act(th.as_tensor(observation, dtype=th.float32), t0=step == 0, eval_mode=True)[0]
        return policy.unscale_action(action.numpy())

    return play_episode(act, env, seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors-path", type=pathlib.Path, help="local copy of molumitu/BOOM_MBRL that runs on this machine")
    parser.add_argument("--model", required=True, help="a BOOM model saved with save() (.zip)")
    parser.add_argument("--env", required=True, help="the dm_control/* env id it was trained on")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per planner (0: networks only)")
    parser.add_argument("--seed", type=int, default=5000, help="env seed of the first episode")
    parser.add_argument("--fail-below", type=float, default=100.0, help="returns below this count as failures")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

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
    th.manual_seed(args.seed)

    model = BOOM.load(args.model, device="cpu")
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
    with th.no_grad():
        their_dropout.train(False)
        differences = compare_networks(policy, agent.model, th.as_tensor(np.array(observations), dtype=th.float32), args.seed)
        their_dropout.train(True)
    print("\nSame weights, same inputs, Q dropout off: largest |ours - theirs| per network output")
    for name, difference in differences.items():
        print(f"  {name:28s} {difference:.2e}")

    if args.episodes <= 0:
        return
    print(f"\nPlanners, no exploration noise, {args.episodes} episodes each, env seeds {args.seed}..")
    seeds = [args.seed + i for i in range(args.episodes)]
    with th.no_grad():
        for name, planner_dropout in (("ours, Q dropout off", False), ("ours, Q dropout on", True)):
            policy.q_ensemble.dropout_always = planner_dropout
            returns = [run_episode(model, env, seed, "planner, no noise", None) for seed in seeds]
            report(name, returns, args.fail_below)
        for name, planner_dropout in (("theirs, Q dropout on", True), ("theirs, Q dropout off", False)):
            their_dropout.train(planner_dropout)
            returns = [authors_episode(agent, policy, env, seed) for seed in seeds]
            report(name + (" (as shipped)" if planner_dropout else ""), returns, args.fail_below)


def report(name: str, returns: list[float], fail_below: float) -> None:
    failures = sum(value < fail_below for value in returns)
    print(
        f"  {name:32s} mean {np.mean(returns):7.1f}  failures (< {fail_below:g}) {failures}/{len(returns)}"
        f"  returns {[round(value, 1) for value in returns]}",
        flush=True,
    )


if __name__ == "__main__":
    main()
