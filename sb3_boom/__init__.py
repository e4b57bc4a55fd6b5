"""sb3-boom: BOOM (Bootstrap Off-policy with World Model) for Stable-Baselines3."""

from sb3_boom.boom import BOOM
from sb3_boom.buffers import SequenceReplayBuffer
from sb3_boom.planner import PlannerConfig
from sb3_boom.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, WorldModelPolicy

__version__ = "0.1.0"

__all__ = [
    "BOOM",
    "CnnPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "PlannerConfig",
    "SequenceReplayBuffer",
    "WorldModelPolicy",
    "__version__",
]
