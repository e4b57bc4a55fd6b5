"""
Files that are never half-written, and archives that are checked before they are trusted.

A process killed while ``save`` writes must leave the previous file loadable: every file is written
to a temporary name in the same folder, flushed to disk, and renamed over the final name in one
step (``os.replace`` is atomic on POSIX and Windows when both names are on one file system).
"""

import contextlib
import io
import os
import pathlib
import tempfile
import zipfile
from collections.abc import Iterator

# Entries every SB3 model archive holds (save_util.save_to_zip_file writes them first and last).
MODEL_ARCHIVE_ENTRIES = ("data", "policy.pth")


def with_suffix(path: str | pathlib.Path, suffix: str) -> pathlib.Path:
    """The name SB3 writes to: ``path`` with ``.suffix`` added when it has no suffix (as ``open_path`` does)."""
    path = pathlib.Path(path)
    return path if path.suffix else path.with_suffix(f".{suffix}")


@contextlib.contextmanager
def atomic_write(path: str | pathlib.Path) -> Iterator[io.BufferedWriter]:
    """
    Open a temporary file next to ``path`` for writing; on success, flush it to disk and rename it
    to ``path``. On any error (or a kill) ``path`` keeps its previous content and the temporary file
    is removed (or, after a kill, left as ``.<name>.*.tmp``, never under the final name).

    :param path: the final file name (its folder is created if needed)
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: pathlib.Path) -> None:
    """Make the rename itself durable (POSIX); folders cannot be opened for syncing on Windows."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def check_model_archive(path: str | pathlib.Path | io.BufferedIOBase) -> None:
    """
    Raise a clear error when ``path`` is not a complete SB3 model archive: not a zip, cut short
    (a torn copy or an interrupted download), or corrupted. A file cut short can still open as a zip,
    because the policy's ``policy.pth`` is itself a zip whose directory then passes for the outer one.
    """
    if isinstance(path, (str, pathlib.Path)) and not pathlib.Path(path).exists():
        path = with_suffix(path, "zip")  # SB3's load adds the suffix the same way
    name = getattr(path, "name", path)
    start = path.tell() if isinstance(path, io.IOBase) else None
    try:
        with zipfile.ZipFile(path) as archive:  # type: ignore[arg-type]
            names = set(archive.namelist())
            missing = [entry for entry in MODEL_ARCHIVE_ENTRIES if entry not in names]
            damaged = None if missing else archive.testzip()
    except zipfile.BadZipFile as error:
        raise ValueError(f"{name!s} is not a model file (not a zip archive, or damaged beyond reading): {error}") from error
    finally:
        if start is not None:
            path.seek(start)  # type: ignore[union-attr]
    if missing:
        raise ValueError(
            f"{name!s} is damaged or not a Stable-Baselines3 model: the archive has no {' or '.join(missing)} entry. "
            "A file cut short (an interrupted copy, download or save) looks like this: use an intact copy."
        )
    if damaged is not None:
        raise ValueError(f"{name!s} is damaged: its entry {damaged!r} fails its checksum. Use an intact copy.")
