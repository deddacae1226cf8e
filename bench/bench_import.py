"""What ``import bpfnb`` and the ``bpfnb doctor`` command cost in imports, now and at an earlier commit.

Run from the repository with the venv's Python (root, for the doctor's probes)::

    .venv/bin/python bench/bench_import.py            # this checkout
    .venv/bin/python bench/bench_import.py --ref fb44ca0   # and the same at another commit, side by side

Each figure is the median over ``--repeat`` runs of ``python -X importtime``:
the sum of the cumulative times of the top-level imports, and which heavy
packages (pandas, matplotlib, pyarrow, IPython) were imported at all. The
earlier commit is checked out into a temporary git worktree and imported from
there; its module names (``bpfnb._cli``) are found by what exists.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "matplotlib", "pyarrow", "IPython", "ipywidgets")
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def measure(tree: Path, code: str) -> tuple[float, list[str]]:
    """Milliseconds of imports for ``python -c code`` with ``tree`` first on the path, and the heavy packages."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True
    )
    total, loaded = 0, set()
    for line in done.stderr.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        name = match.group(4)
        if len(match.group(3)) == 1:  # a top-level import: its cumulative time counts once
            total += int(match.group(2))
        loaded.add(name.split(".")[0])
    return total / 1000, sorted(set(HEAVY) & loaded)


def commands(tree: Path) -> dict[str, str]:
    """The code that imports bpfnb, and the code the ``bpfnb doctor`` command runs, in this tree's layout."""
    cli = "bpfnb.tools.cli" if (tree / "bpfnb" / "tools" / "cli.py").exists() else "bpfnb._cli"
    return {
        "import bpfnb": "import bpfnb",
        "bpfnb doctor": f"import sys; from {cli} import main; sys.argv = ['bpfnb', 'doctor']; main()",
    }


def report(label: str, tree: Path, repeat: int) -> None:
    for what, code in commands(tree).items():
        runs = [measure(tree, code) for _ in range(repeat)]
        ms = statistics.median(r[0] for r in runs)
        heavy = ", ".join(runs[0][1]) or "none"
        print(f"{label:<22} {what:<14} {ms:8.1f} ms   heavy packages imported: {heavy}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", help="also measure this git commit, checked out into a temporary worktree")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    report("this checkout", ROOT, args.repeat)
    if args.ref:
        with tempfile.TemporaryDirectory() as scratch:
            tree = Path(scratch) / "tree"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), args.ref], check=True)
            try:
                report(args.ref, tree, args.repeat)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


if __name__ == "__main__":
    main()
