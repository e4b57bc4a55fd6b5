"""
Start-up hook that makes ``--algo boom`` known to the RL Baselines3 Zoo (rl-zoo3 has no plugin
mechanism). Installed with the ``sb3_boom_zoo.pth`` file, which imports this module when Python
starts (set ``SB3_BOOM_DISABLE_ZOO_HOOK=1`` to skip it).

It only adds a finder to ``sys.meta_path``: nothing is imported until a program imports one of
the rl_zoo3 modules below; then, right after that module has run, ``sb3_boom.zoo`` registers
BOOM in it. This file imports ``sys`` only (``importlib.abc`` alone would pull in ``typing``,
``tempfile`` and more, ~8 ms); the finder and loader follow the import protocol by duck typing.
"""

import sys

# rl_zoo3 module -> function of sb3_boom.zoo that patches it once it is loaded
_PATCHES = {
    "rl_zoo3.utils": "register_algorithm",
    "rl_zoo3.hyperparams_opt": "register_optuna",
    "rl_zoo3.exp_manager": "use_shipped_hyperparams",
}


class _PatchAfterExec:
    """Loader that runs the original loader, then the sb3_boom.zoo patch for the module."""

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

    def __getattr__(self, name):
        # get_code, get_source, is_package, ...: whatever the wrapped loader offers
        return getattr(self._loader, name)


class RLZooFinder:
    """Meta-path finder that wraps the loaders of the rl_zoo3 modules holding the algorithm tables."""

    def find_spec(self, fullname, path, target=None):
        patch_name = _PATCHES.get(fullname)
        if patch_name is None:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchAfterExec(spec.loader, patch_name)
        return spec

    def invalidate_caches(self):
        pass


def install():
    if not any(isinstance(finder, RLZooFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, RLZooFinder())


install()
