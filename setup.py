"""
Packaging beyond setup.cfg: ship the RL Zoo start-up hook (``sb3_boom_zoo.pth``, which must sit at
the top of site-packages) and the hyperparameter file (``hyperparams/boom.yml``, inside the package)
in the wheel. Editable wheels get the hook from the build backend (build_backend/sb3_boom_backend.py).
"""

import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).parent
ZOO_HOOK_PTH = "sb3_boom_zoo.pth"


class BuildPyWithZooFiles(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(str(ROOT / ZOO_HOOK_PTH), str(pathlib.Path(self.build_lib) / ZOO_HOOK_PTH))
        hyperparams_dir = pathlib.Path(self.build_lib) / "sb3_boom" / "hyperparams"
        self.mkpath(str(hyperparams_dir))
        self.copy_file(str(ROOT / "hyperparams" / "boom.yml"), str(hyperparams_dir / "boom.yml"))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        extra = [str(pathlib.Path(self.build_lib) / ZOO_HOOK_PTH)]
        return [*super().get_outputs(include_bytecode), *extra]


setup(
    py_modules=["sb3_boom_zoo_hook"],
    cmdclass={"build_py": BuildPyWithZooFiles},
)
