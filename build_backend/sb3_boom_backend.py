"""
PEP 517 build backend of sb3-boom: setuptools' own, plus the RL Zoo start-up hook in every wheel.

The hook (``sb3_boom_zoo.pth``) must sit at the top of site-packages, where Python runs ``.pth``
files at start-up. A regular wheel gets it from setup.py's ``build_py``; an editable wheel (PEP 660,
``pip install -e .``) is made by setuptools without ``build_py``'s outputs, so this backend adds the
file to the finished wheel with its RECORD line, through the hook interface alone.
"""

import base64
import hashlib
import pathlib
import zipfile

from setuptools import build_meta
from setuptools.build_meta import (  # noqa: F401  (the hooks this backend passes through unchanged)
    build_sdist,
    build_wheel,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
ZOO_HOOK_PTH = "sb3_boom_zoo.pth"


def build_editable(wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None) -> str:
    name = build_meta.build_editable(wheel_directory, config_settings, metadata_directory)
    add_to_wheel(pathlib.Path(wheel_directory) / name, ZOO_HOOK_PTH, (ROOT / ZOO_HOOK_PTH).read_bytes())
    return name


def _record_hash(content: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def add_to_wheel(wheel: pathlib.Path, arcname: str, content: bytes) -> None:
    """Add (or replace) the file ``arcname`` in ``wheel`` and its line in the wheel's RECORD."""
    with zipfile.ZipFile(wheel) as source:
        entries = [(info, source.read(info)) for info in source.infolist() if info.filename != arcname]
    records = [info.filename for info, _ in entries if info.filename.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        raise RuntimeError(f"{wheel.name} has {len(records)} RECORD files; expected exactly one")
    rewritten = wheel.with_suffix(".partial")
    with zipfile.ZipFile(rewritten, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            if info.filename == records[0]:
                lines = [line for line in data.decode().splitlines() if line and not line.startswith(f"{arcname},")]
                lines.insert(-1, f"{arcname},{_record_hash(content)},{len(content)}")  # RECORD's own line stays last
                data = ("\n".join(lines) + "\n").encode()
            target.writestr(info, data)
        target.writestr(arcname, content)
    rewritten.replace(wheel)
