"""What compiling in a crash-proof child costs: the README's first cell, compiled and loaded.

Run as root from the repository: ``.venv/bin/python bench/bench_compile.py``
(``--repeat R`` for the samples; medians are shown).

A BCC cell is compiled once in a forked child first, so that a C mistake
that crashes BCC or LLVM ends the child, not the notebook's kernel (issue
11); the module the cell runs is then compiled again in this process. Shown:

1. the README cell, compiled, loaded and attached by ``bpfnb.Program`` the
   first time (goal: under 0.6 s); a different comment each time makes each
   text new;
2. the same cell run again unchanged (its text compiled safely before: no
   trial);
3. the forked trial compile alone, the price of that safety;
4. BCC's own compile of the same text in this process, for comparison.

The process is warmed up first (bcc imported, one cell loaded), as in a
notebook after its first cell.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfnb import Program  # noqa: E402
from bpfnb.engines.bcc.compiler import _quiet_bpf_class, _trial_compile  # noqa: E402
from bpfnb.engines.bcc.prelude import prelude  # noqa: E402

README_CELL = """\
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}
"""


def _median_seconds(run: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        made = run()
        samples.append(time.perf_counter() - start)
        if isinstance(made, Program):
            made.close()  # detaching is not part of the figure
    return statistics.median(samples)


def _load(source: str = README_CELL) -> Program:
    return Program(source)


def _new_cell() -> str:
    return f"// {time.perf_counter_ns()}\n{README_CELL}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark loads programs into the kernel")
    _load().close()  # warm up: bcc imported, LLVM initialised
    bpf_class = _quiet_bpf_class()
    text = prelude(README_CELL) + README_CELL

    first = _median_seconds(lambda: _load(_new_cell()), args.repeat)
    rerun = _median_seconds(_load, args.repeat)
    trial = _median_seconds(lambda: _trial_compile(bpf_class, text, (), 0, source=README_CELL, first_line=1), args.repeat)
    in_process = _median_seconds(lambda: bpf_class(text=text.encode()).cleanup(), args.repeat)

    print(f"README cell, compile+load+attach by bpfnb.Program: {first * 1000:7.1f} ms  (goal < 600 ms)")
    print(f"the same cell run again, unchanged:                {rerun * 1000:7.1f} ms")
    print(f"the forked trial compile alone:                    {trial * 1000:7.1f} ms")
    print(f"BCC's compile of the same text in this process:   {in_process * 1000:7.1f} ms")
    print(f"median of {args.repeat}; 1-minute load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
