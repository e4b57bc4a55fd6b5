"""
Packaging beyond setup.cfg: ship the RL Zoo start-up hook (``sb3_boom_zoo.pth``, which must sit at
the top of site-packages) and the hyperparameter file (``hyperparams/boom.yml``, inside the package).
"""

import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

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


class EditableWheelWithZooHook(editable_wheel):
    """Editable installs (PEP 660) keep only their own finder at the top of site-packages: add the hook."""

    def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):  # type: ignore[no-untyped-def]
        result = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
        self.copy_file(str(ROOT / ZOO_HOOK_PTH), str(pathlib.Path(unpacked_wheel) / ZOO_HOOK_PTH))
        return result


setup(
    py_modules=["sb3_boom_zoo_hook"],
    cmdclass={"build_py": BuildPyWithZooFiles, "editable_wheel": EditableWheelWithZooHook},
)
