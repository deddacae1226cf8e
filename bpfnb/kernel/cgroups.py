"""Where cgroup v2 lives on this machine, and the cgroups programs attach to.

A cgroup program attaches to a directory of the cgroup v2 hierarchy; which
directory is the root depends on the distribution (``/sys/fs/cgroup`` on a
unified system, ``/sys/fs/cgroup/unified`` beside v1 controllers), so a
cell may name a cgroup relative to that root.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..errors import AttachError

__all__ = ["cgroup2_root", "cgroup_of", "open_cgroup", "resolve_cgroup"]


@functools.lru_cache(maxsize=1)
def _cgroup2_mounts() -> tuple[Path, ...]:
    mounts = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            # Optional fields end at "-"; the filesystem type follows it.
            fstype = fields[fields.index("-") + 1]
            if fstype == "cgroup2":
                mounts.append(Path(fields[4]))
    return tuple(mounts)


def cgroup2_root() -> Path:
    """The mount point of the cgroup v2 hierarchy."""
    mounts = _cgroup2_mounts()
    if not mounts:
        raise AttachError(
            "cgroup v2 is not mounted, so no cgroup program can attach.",
            hint="mount it: mount -t cgroup2 none /sys/fs/cgroup/unified",
        )
    return mounts[0]


def resolve_cgroup(name: str) -> Path:
    """The directory of cgroup ``name``: a path in the cgroup v2 hierarchy, or one relative to its root."""
    root = cgroup2_root()
    given = Path(name)
    if given.is_absolute() and any(given == m or m in given.parents for m in _cgroup2_mounts()):
        path = given
    else:
        path = root / name.lstrip("/")
    if not path.is_dir():
        raise AttachError(
            f"there is no cgroup {name!r} (cgroup v2 is mounted at {root}).",
            hint=f"create it with: mkdir {path}",
        )
    return path


def cgroup_of(pid: int | str = "self") -> Path:
    """The cgroup v2 directory process ``pid`` belongs to."""
    with open(f"/proc/{pid}/cgroup") as lines:
        for line in lines:
            hierarchy, _, rest = line.rstrip("\n").partition(":")
            controllers, _, path = rest.partition(":")
            if hierarchy == "0" and not controllers:
                return cgroup2_root() / path.lstrip("/")
    raise AttachError(f"process {pid} is in no cgroup v2 group")


def open_cgroup(path: Path) -> int:
    """An fd on a cgroup directory, for attaching programs to it."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
