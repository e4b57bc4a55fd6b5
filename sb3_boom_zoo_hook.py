"""
Start-up hook that makes ``--algo boom`` known to the RL Baselines3 Zoo (rl-zoo3 has no plugin
mechanism). Installed with the ``sb3_boom_zoo.pth`` file, which imports this module when Python
starts.

It only adds a finder to ``sys.meta_path``: nothing is imported until a program imports one of
the rl_zoo3 modules below; then, right after that module has run, ``sb3_boom.zoo`` registers
BOOM in it. Programs that never import rl_zoo3 pay for one import of this small file.
"""

import importlib.abc
import importlib.machinery
import sys

# rl_zoo3 module -> function of sb3_boom.zoo that patches it once it is loaded
_PATCHES = {
    "rl_zoo3.utils": "register_algorithm",
    "rl_zoo3.hyperparams_opt": "register_optuna",
    "rl_zoo3.exp_manager": "use_shipped_hyperparams",
}


class _PatchAfterExec(importlib.abc.Loader):
    def __init__(self, loader, patch_name):
        self._loader = loader
        self._patch_name = patch_name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            from sb3_boom import zoo

            getattr(zoo, self._patch_name)(module)
        except Exception as error:  # a broken sb3-boom must not break the Zoo's other algorithms
            import warnings

            warnings.warn(f"sb3-boom could not register BOOM with rl_zoo3 ({module.__name__}): {error!r}")


class RLZooFinder(importlib.abc.MetaPathFinder):
    """Wraps the loaders of the rl_zoo3 modules that hold the algorithm tables."""

    def find_spec(self, fullname, path, target=None):
        patch_name = _PATCHES.get(fullname)
        if patch_name is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchAfterExec(spec.loader, patch_name)
        return spec


def install():
    if not any(isinstance(finder, RLZooFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, RLZooFinder())


install()
