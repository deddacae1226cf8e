"""Where bpfnb keeps files it can make again (vmlinux.h, compiled objects, helper verdicts), written safely.

Everything lives under ``$BPFNB_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/bpfnb`` or ``~/.cache/bpfnb``. Files are only ever made
visible by ``os.replace`` of a finished temporary file in the same directory,
so a reader never sees half a file and two processes producing the same file
at once both succeed (the last rename wins, and both wrote the same bytes).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write", "cache_root"]


def cache_root() -> Path:
    """The directory all of bpfnb's cached files go under.

    Returns
    -------
    Path
        Not necessarily existing yet.
    """
    override = os.environ.get("BPFNB_CACHE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "bpfnb"


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path that becomes ``final`` when the ``with`` block succeeds.

    Parameters
    ----------
    final
        Where the file should end up; its directory is created if needed.

    Yields
    ------
    Path
        A fresh, empty file beside ``final``; write it completely inside the block.
        If the block raises, the temporary file is removed and ``final`` is untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target: os.replace is only atomic within one filesystem.
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` so that no reader ever sees a partial file.

    Parameters
    ----------
    final
        The destination path.
    data
        The complete contents.
    """
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)
