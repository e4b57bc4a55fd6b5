"""
The package as a packager builds it: an sdist and a wheel (built from that sdist, as ``python -m
build`` does), each installed into a fresh virtual environment, must import, find its shipped
hyperparameters inside itself, register ``--algo boom`` with the RL Zoo through its start-up hook,
and train.
"""

import pathlib
import subprocess
import sys
import sysconfig
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Run by the fresh environment's interpreter: argv[1] is that environment's prefix.
CHECK_INSTALLATION = textwrap.dedent(
    """
    import pathlib, sys
    import yaml
    import rl_zoo3.utils
    import sb3_boom
    from sb3_boom import BOOM
    from sb3_boom.presets import PRESETS
    from sb3_boom.zoo import shipped_hyperparams_path

    prefix = pathlib.Path(sys.argv[1]).resolve()
    assert pathlib.Path(sb3_boom.__file__).resolve().is_relative_to(prefix), sb3_boom.__file__
    config = shipped_hyperparams_path().resolve()
    assert config.is_relative_to(prefix), config  # the package's own copy, not a checkout's
    assert "dm_control/walker-walk-v0" in yaml.safe_load(config.read_text())
    assert rl_zoo3.utils.ALGOS["boom"] is BOOM  # registered by sb3_boom_zoo.pth at start-up
    BOOM("MlpPolicy", "Pendulum-v1", **PRESETS["tiny"]).learn(60)
    print("installation ok")
    """
)


@pytest.fixture(scope="module")
def distributions(tmp_path_factory) -> dict[str, pathlib.Path]:
    out = tmp_path_factory.mktemp("dist")
    # Isolated builds, as pip and packagers make them: the backend gets only what pyproject.toml requires.
    build = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    found = {"sdist": sorted(out.glob("sb3_boom-*.tar.gz")), "wheel": sorted(out.glob("sb3_boom-*.whl"))}
    assert all(len(paths) == 1 for paths in found.values()), found
    return {kind: paths[0] for kind, paths in found.items()}


def _fresh_environment(folder: pathlib.Path) -> pathlib.Path:
    """A new venv that sees this environment's packages after its own (so the test needs no download of them)."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True)
    python = folder / "bin" / "python"
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # Lines of a .pth file are appended to sys.path: the fresh venv's own packages come first.
    (pathlib.Path(site_packages) / "dependencies_of_the_test.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


@pytest.mark.parametrize("kind", ["sdist", "wheel"])
def test_installs_from_its_own_distribution_into_a_fresh_environment(tmp_path, distributions, kind):
    python = _fresh_environment(tmp_path / "venv")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", str(distributions[kind])], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    check = subprocess.run(
        [str(python), "-c", CHECK_INSTALLATION, str(tmp_path / "venv")],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the checkout: nothing may come from the source tree
    )
    assert check.returncode == 0 and "installation ok" in check.stdout, check.stdout[-3000:] + check.stderr[-3000:]


def test_the_sdist_holds_what_the_build_needs(distributions):
    import tarfile

    with tarfile.open(distributions["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("sb3_boom_zoo.pth", "sb3_boom_zoo_hook.py", "hyperparams/boom.yml", "build_backend/sb3_boom_backend.py"):
        assert needed in names, needed
