"""Checks of the observation and action spaces BOOM's world-model policy takes, with errors that name the fix."""

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space

from sb3_boom.encoders import check_image_space, image_keys


def flat_observation_dim(observation_space: spaces.Space) -> int:
    """Size of the flattened observation vector the encoder sees."""
    if isinstance(observation_space, spaces.Dict):
        return sum(flat_observation_dim(space) for space in observation_space.spaces.values())
    assert isinstance(observation_space, spaces.Box)
    return int(np.prod(observation_space.shape))


def check_action_space(action_space: spaces.Space) -> None:
    """Raise a clear error for actions BOOM cannot plan: not a Box, or a Box without finite bounds."""
    if not isinstance(action_space, spaces.Box):
        raise TypeError(
            f"BOOM supports continuous Box action spaces only, got {action_space}. "
            "Discrete, MultiDiscrete and MultiBinary actions cannot be planned with MPPI."
        )
    if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ValueError(
            f"BOOM needs a bounded Box action space (finite lower and upper bound), got {action_space}: it plans "
            "in [-1, 1] and rescales to the bounds. Declare the range the env's actions should take, e.g. "
            "gymnasium.wrappers.TransformAction(env, lambda a: a, gymnasium.spaces.Box(low, high, shape)) "
            "(then gymnasium.wrappers.RescaleAction to change that range if needed)."
        )


def check_spaces(
    observation_space: spaces.Space, action_space: spaces.Space, allow_dict: bool, allow_images: bool = False
) -> None:
    """
    Raise a clear error for spaces the world-model policy cannot handle.

    :param allow_dict: the policy takes Dict observations ("MultiInputPolicy")
    :param allow_images: the policy has a pixel encoder ("CnnPolicy", "MultiInputPolicy")
    """
    check_action_space(action_space)
    if allow_images and not allow_dict:
        # "CnnPolicy": the observation must be an image the conv encoder can take.
        if isinstance(observation_space, spaces.Dict):
            raise TypeError(
                f"'CnnPolicy' takes image Box observations; use 'MultiInputPolicy' for Dict observations "
                f"({observation_space})."
            )
        if not image_keys(observation_space):
            if isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 3:
                check_image_space("observation", observation_space)  # explains a non-uint8 image
            raise TypeError(
                f"'CnnPolicy' takes uint8 image observations of shape (C, H, W) or (H, W, C) with bounds [0, 255], "
                f"got {observation_space}. Use 'MlpPolicy' for state vectors."
            )
    if isinstance(observation_space, spaces.Dict):
        if not allow_dict:
            raise TypeError(
                f"'MlpPolicy' takes Box observations; use 'MultiInputPolicy' for Dict observations ({observation_space})."
            )
        subspaces = observation_space.spaces.items()
    else:
        subspaces = [("observation", observation_space)]
    for key, space in subspaces:
        if not isinstance(space, spaces.Box):
            raise TypeError(f"BOOM supports Box (or Dict of Box) observations, got {space} for '{key}'.")
        if is_image_space(space, check_channels=False):
            if not allow_images:
                raise TypeError(
                    f"Observation '{key}' looks like an image ({space}). 'MlpPolicy' encodes state vectors with an "
                    "MLP: use 'CnnPolicy' for image observations ('MultiInputPolicy' for a Dict of images and vectors)."
                )
            check_image_space(key, space)
