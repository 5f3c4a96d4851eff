"""Writing result files so that nothing is lost: whole or not at all, with the mode a user expects.

`write_atomically` writes to a temporary file beside the target and renames it into place, so an
error or an interrupt never leaves half a file. A new file gets the usual mode under the user's
umask (0644 under umask 022, as `open` would give); a file it replaces keeps its own mode.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None], overwrite: bool = False) -> Path:
    """Call write(file) on a temporary file beside `path`, then rename it to `path`.

    With overwrite=False an existing file is a FileExistsError, checked before and after writing.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --force (overwrite=True) to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {path.parent} does not exist; create it first")
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~current_umask()
    file_descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(file_descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        if path.exists() and not overwrite:  # appeared while we were writing
            raise FileExistsError(f"{path} exists; pass --force (overwrite=True) to replace it")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
