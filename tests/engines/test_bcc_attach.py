"""BCC's function-naming convention, applied by bpfnb rather than by BCC's auto-attach."""

from __future__ import annotations

from bpfnb import Probe
from bpfnb.engines.bcc.attach import implied_probe


def test_bcc_function_names_imply_their_probes():
    assert implied_probe("tracepoint__sched__sched_switch") == Probe(
        "tracepoint", "sched:sched_switch", "tracepoint__sched__sched_switch"
    )
    assert implied_probe("raw_tracepoint__sys_enter").target == "sys_enter"
    assert implied_probe("kretprobe__do_nanosleep").kind == "kretprobe"
    assert implied_probe("my_helper") is None
