"""Attaching the functions of a BCC module to their hooks.

BCC's naming convention (``tracepoint__sched__sched_switch``, ``kprobe__vfs_read``)
is applied here rather than by BCC's own auto-attach, so that a failure half way
can undo everything before it (:func:`implied_probe`).

:func:`attach` returns an :class:`Attachment`. Most hooks are released by
``BPF.cleanup()``; links (XDP, cgroups, network namespaces, sockmaps) and socket filters are bpfnb's own
(:mod:`bpfnb.engines.links`) and carry their own ``undo``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ...errors import AttachError
from ..hooks import Probe, perf_event_type, require_target
from ..links import Attachment, attach_cgroup, attach_netns, attach_socket_filter, attach_sockmap, attach_xdp
from .compiler import captured_c_output
from .module import table_fd, table_names

if TYPE_CHECKING:
    import bcc

__all__ = ["attach", "implied_probe"]

# BCC's function-name prefixes and the probe each one means, as BCC's auto-attach reads them.
_NAME_PREFIXES = {
    "kprobe__": "kprobe",
    "kretprobe__": "kretprobe",
    "tracepoint__": "tracepoint",
    "raw_tracepoint__": "raw_tracepoint",
    "kfunc__": "kfunc",
    "kretfunc__": "kretfunc",
    "lsm__": "lsm",
}


def implied_probe(function: str) -> Probe | None:
    """The probe BCC's naming convention implies for ``function``, if any."""
    for prefix, kind in _NAME_PREFIXES.items():
        if function.startswith(prefix):
            rest = function[len(prefix) :]
            target = rest.replace("__", ":", 1) if kind == "tracepoint" else rest
            return Probe(kind, target, function)
    return None


def attach(bpf: bcc.BPF, probe: Probe) -> Attachment:
    """Attach the already loaded ``probe.function`` of ``bpf`` to its hook."""
    require_target(probe)
    attacher = _ATTACHERS[probe.kind]
    with _attach_errors(probe):
        return attacher(bpf, probe)


@contextlib.contextmanager
def _attach_errors(probe: Probe) -> Iterator[None]:
    try:
        with captured_c_output() as output:
            yield
    except AttachError:
        raise
    except Exception as exc:  # BCC raises bare Exception
        said = (output[0] if output else "").strip()
        raise AttachError(
            f"cannot attach {probe.function} to {probe.kind} {probe.target}: {exc}",
            details=said,
        ) from exc


def _kprobe(bpf: bcc.BPF, probe: Probe) -> Attachment:
    method = bpf.attach_kretprobe if probe.kind == "kretprobe" else bpf.attach_kprobe
    method(event=probe.target.encode(), fn_name=probe.function_name.encode())
    return Attachment(probe)


def _uprobe(bpf: bcc.BPF, probe: Probe) -> Attachment:
    binary, _, symbol = probe.target.rpartition(":")
    method = bpf.attach_uretprobe if probe.kind == "uretprobe" else bpf.attach_uprobe
    try:
        method(
            name=binary.encode(), sym=symbol.encode(), fn_name=probe.function_name.encode(), pid=probe.int_option("pid", -1)
        )
    except Exception as exc:
        if "could not determine address" in str(exc) or "can't find" in str(exc).lower():
            raise AttachError(
                f"no symbol {symbol!r} in {binary!r} to put a {probe.kind} on.",
                hint=f"`%bpf probes --binary {binary}` lists the symbols a uprobe can use.",
            ) from exc
        raise
    return Attachment(probe)


def _tracepoint(bpf: bcc.BPF, probe: Probe) -> Attachment:
    bpf.attach_tracepoint(tp=probe.target.encode(), fn_name=probe.function_name.encode())
    return Attachment(probe)


def _raw_tracepoint(bpf: bcc.BPF, probe: Probe) -> Attachment:
    if probe.target.encode() in bpf.raw_tracepoint_fds:
        raise AttachError(f"BCC attaches one function per raw tracepoint and program; {probe.target} has one already.")
    bpf.attach_raw_tracepoint(tp=probe.target.encode(), fn_name=probe.function_name.encode())
    return Attachment(probe)


def _kfunc(bpf: bcc.BPF, probe: Probe) -> Attachment:
    method = {"kfunc": bpf.attach_kfunc, "kretfunc": bpf.attach_kretfunc, "lsm": bpf.attach_lsm}[probe.kind]
    method(fn_name=probe.function_name.encode())
    return Attachment(probe)


def _perf_event(bpf: bcc.BPF, probe: Probe) -> Attachment:
    ev_type, ev_config = perf_event_type(probe.target)
    period = probe.int_option("period", 0)
    freq = probe.int_option("freq", 0) or (0 if period else 99)
    bpf.attach_perf_event(
        ev_type=ev_type,
        ev_config=ev_config,
        fn_name=probe.function_name.encode(),
        sample_period=period,
        sample_freq=freq,
        pid=probe.int_option("pid", -1),
        cpu=probe.int_option("cpu", -1),
    )
    return Attachment(probe)


def _xdp(bpf: bcc.BPF, probe: Probe) -> Attachment:
    return attach_xdp(_fd(bpf, probe), probe)


def _socket_filter(bpf: bcc.BPF, probe: Probe) -> Attachment:
    return attach_socket_filter(_fd(bpf, probe), probe)


def _cgroup(bpf: bcc.BPF, probe: Probe) -> Attachment:
    attach_type = probe.attach_type
    assert attach_type is not None, "BCC functions for cgroups were loaded for a named type"
    return attach_cgroup(_fd(bpf, probe), probe, attach_type)


def _sockmap(bpf: bcc.BPF, probe: Probe) -> Attachment:
    if probe.target not in table_names(bpf.module):
        raise AttachError(f"the program has no map {probe.target!r} to attach {probe.function} to.")
    return attach_sockmap(_fd(bpf, probe), probe, table_fd(bpf.module, probe.target))


def _sk_lookup(bpf: bcc.BPF, probe: Probe) -> Attachment:
    return attach_netns(_fd(bpf, probe), probe)


def _fd(bpf: bcc.BPF, probe: Probe) -> int:
    return int(bpf.funcs[probe.function_name.encode()].fd)


_ATTACHERS: dict[str, Callable[[bcc.BPF, Probe], Attachment]] = {
    "kprobe": _kprobe,
    "kretprobe": _kprobe,
    "uprobe": _uprobe,
    "uretprobe": _uprobe,
    "tracepoint": _tracepoint,
    "raw_tracepoint": _raw_tracepoint,
    "kfunc": _kfunc,
    "kretfunc": _kfunc,
    "lsm": _kfunc,
    "perf_event": _perf_event,
    "xdp": _xdp,
    "socket_filter": _socket_filter,
    "cgroup": _cgroup,
    "sk_msg": _sockmap,
    "sk_skb": _sockmap,
    "sk_lookup": _sk_lookup,
}
