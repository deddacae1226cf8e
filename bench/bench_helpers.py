"""The helper catalog and the packet lab: what they cost.

Run as root from the repository: ``.venv/bin/python bench/bench_helpers.py``.

Figures:

1. Asking the kernel about every helper in every program type (one verifier
   run per pair, plus the BCC compile that checks lock and timer maps), as the
   first ``bpfnb.helpers()`` after a boot does; and the cached call after it.
2. ``test_run`` of a small XDP program: the kernel's ns per run over 1M
   repeats, and the Python round trip of one ``test_run`` call.
3. Building packets with ``bpfnb.packets.builder.udp``.
"""

from __future__ import annotations

import time

import pandas  # noqa: F401  # imported up front so that it is not timed

import bpfnb
from bpfnb.packets.builder import udp
from bpfnb.tools.helper_support import PROGRAM_TYPES, kernel_verdicts
from bpfnb.tools.helpers import helper_docs, helpers

XDP = r"""
int pass_all(struct xdp_md *ctx) { return XDP_PASS; }
"""


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    header_max = max(doc.id for doc in helper_docs())
    verdicts, fresh = timed(kernel_verdicts, header_max, refresh=True)
    pairs = (header_max + len(verdicts.extra_names)) * sum(1 for why in verdicts.program_types.values() if not why)
    print(f"probe every helper: {fresh:.2f} s for {pairs} (helper, program type) pairs "
          f"({len(PROGRAM_TYPES)} types listed, {pairs / fresh:,.0f} verifier runs/s)")
    _df, cached = timed(helpers)
    print(f"bpfnb.helpers() from the cache: {cached * 1000:.1f} ms")

    packet = udp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=53, payload=b"x" * 64)
    with bpfnb.Program(XDP, attach=False) as prog:
        prog.test_run("pass_all", packet)
        result = prog.test_run("pass_all", packet, repeat=1_000_000)
        print(f"test_run, XDP_PASS program, 1M repeats: {result.ns_per_run} ns per run (kernel's figure)")
        calls = 2000
        _r, took = timed(lambda: [prog.test_run("pass_all", packet) for _ in range(calls)])
        print(f"test_run round trip from Python: {took / calls * 1e6:.1f} us per call")

    count = 20_000
    _p, took = timed(lambda: [udp(src="10.0.0.1", dst="10.0.0.2", sport=i % 65535, dport=53) for i in range(count)])
    print(f"udp() packet builder: {count / took:,.0f} packets/s")


if __name__ == "__main__":
    main()
