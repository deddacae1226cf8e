"""Fixtures for every test: a private cache directory for the whole run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Compiled objects, vmlinux.h and helper verdicts go to a directory of this
    # run: tests never read a user's stale ~/.cache/bpfnb nor write into it,
    # and within the run each distinct cell is compiled once. Child processes
    # (notebook kernels, `bpfnb doctor`) inherit the variable.
    root = tmp_path_factory.mktemp("bpfnb-cache")
    before = os.environ.get("BPFNB_CACHE_DIR")
    os.environ["BPFNB_CACHE_DIR"] = str(root)
    yield root
    if before is None:
        os.environ.pop("BPFNB_CACHE_DIR", None)
    else:
        os.environ["BPFNB_CACHE_DIR"] = before
