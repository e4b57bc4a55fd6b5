"""
Switches that exist only for studies: the authors' training-schedule habits (``AuthorsScheduleBOOM``) and
the precision of the world model's encoder and output layers under bfloat16 (``set_float32_encoder``,
``set_float32_outputs``).

sb3-boom does each of these one way on purpose (SPEC.md's DEVIATION lines, docs/speed.md); the switches
put back the other way to measure what it changes: studies/cross_check.py, studies/precision_check.py,
studies/ab_speedups.py and the runs on the Validation page (docs/validation.md).
"""

from collections.abc import Iterator
from typing import Any

from torch import nn

from sb3_boom import BOOM
from sb3_boom.buffers import SequenceReplayBufferSamples
from sb3_boom.policies import WorldModelPolicy
from sb3_boom.torch_layers import OutputLinear

# Training-schedule habits of the authors' code that sb3-boom does differently (SPEC.md, DEVIATION lines).
AUTHORS_QUIRKS = (
    # The pre-training burst at the end of warm-up runs all its updates on ONE batch.
    "pretrain_one_batch",
    # Batches are drawn 100 at a time, every 100 env steps, and used in turn (up to 99 steps stale).
    "prefetch_100_batches",
    # The world model's gradient-norm clip also counts the policy prior's gradients of the previous update.
    "clip_with_prior_grads",
)
# Batches drawn at once, and the env-step period of the redraw, under "prefetch_100_batches".
PREFETCHED_BATCHES = 100


class AuthorsScheduleBOOM(BOOM):
    """
    :class:`sb3_boom.BOOM` with habits of the authors' training schedule switched back on, for
    side-by-side studies. Without ``authors_quirks`` it trains exactly as BOOM. The authors'
    episode-only sampling is the replay buffer's ``sample_running_episodes=False``.

    :param authors_quirks: names from ``AUTHORS_QUIRKS``: the habits to reproduce
    :param args: BOOM's arguments
    :param kwargs: BOOM's keyword arguments
    """

    def __init__(self, *args: Any, authors_quirks: tuple[str, ...] | list[str] = (), **kwargs: Any):
        unknown_quirks = sorted(set(authors_quirks) - set(AUTHORS_QUIRKS))
        if isinstance(authors_quirks, str) or unknown_quirks:
            raise ValueError(f"authors_quirks must be a list of names from {AUTHORS_QUIRKS}, got {authors_quirks!r}")
        self.authors_quirks = tuple(authors_quirks)
        # Under "prefetch_100_batches": the batches drawn ahead, and the env-step block they were drawn in.
        self._prefetched_batches: list[SequenceReplayBufferSamples] = []
        self._prefetch_block = -1
        super().__init__(*args, **kwargs)

    @classmethod
    def _check_saved_settings(cls, data: dict[str, Any], path: Any) -> None:
        pass  # the saved authors_quirks are this class's own setting

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_prefetched_batches", "_prefetch_block"]

    def _update_batches(
        self, gradient_steps: int, batch_size: int, pretraining: bool
    ) -> Iterator[SequenceReplayBufferSamples]:
        if not (pretraining and "pretrain_one_batch" in self.authors_quirks):
            yield from super()._update_batches(gradient_steps, batch_size, pretraining)
            return
        # The whole pre-training burst on the first batch, drawn before the first update as BOOM draws it.
        batch = None
        for _ in range(gradient_steps):
            if batch is None:
                batch = self._next_batch(batch_size)
            yield batch

    def _next_batch(self, batch_size: int) -> SequenceReplayBufferSamples:
        if "prefetch_100_batches" not in self.authors_quirks:
            return super()._next_batch(batch_size)
        block = self.num_timesteps // PREFETCHED_BATCHES
        if block != self._prefetch_block or not self._prefetched_batches:
            draw = super()._next_batch  # bound here: a comprehension has no zero-argument super()
            # Drawn newest-last so that pop() serves them in the order they were drawn.
            self._prefetched_batches = [draw(batch_size) for _ in range(PREFETCHED_BATCHES)][::-1]
            self._prefetch_block = block
        return self._prefetched_batches.pop()

    def _clipped_world_model_parameters(self) -> list[nn.Parameter]:
        parameters = super()._clipped_world_model_parameters()
        if "clip_with_prior_grads" in self.authors_quirks:
            # The prior's gradients of the previous update are still set (zeroed only before its next backward).
            parameters = parameters + list(self.policy.actor.parameters())
        return parameters


def set_float32_outputs(policy: WorldModelPolicy, enabled: bool) -> None:
    """
    Whether the output layers of the dynamics, reward and Q networks compute in float32 under bf16
    autocast (as built: True) or in bf16 like the rest (False). No effect in float32.

    :param policy: the policy to switch
    :param enabled: float32 output layers
    """
    for module in (*policy.dynamics[-1].modules(), *policy.reward_head[-1].modules()):
        if isinstance(module, OutputLinear):
            module.float32 = enabled
    policy.q_ensemble.float32_output = enabled
    policy.q_target.float32_output = enabled


def set_float32_encoder(policy: WorldModelPolicy, enabled: bool) -> None:
    """
    Whether the encoder computes in float32 under bf16 autocast (as built: True) or in bf16 like the
    hidden layers (False). No effect in float32.

    :param policy: the policy to switch
    :param enabled: float32 encoder
    """
    policy.float32_encoder = enabled
