"""The catalog of BPF helper functions: what the uapi header documents, what the kernel accepts.

``helpers()`` reads ``linux/bpf.h`` (the newest copy on the machine) for each
helper's ``BPF_FUNC_*`` id, C signature and the header's own documentation, files
it under one of the categories below, and asks the running kernel in which program
types it may be called (:mod:`bpfnb.tools.helper_support`).
"""

from __future__ import annotations

import functools
import os
import re
import textwrap
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from ..errors import ArgumentError
from ..kernel.uapi import find_header, helper_ids, read_header

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CATEGORIES", "HelperDoc", "categorize", "find_header", "helper_docs", "helpers", "parse_header"]

CATEGORIES = (
    "maps",
    "packets (skb/xdp)",
    "time and random numbers",
    "event output and tracing",
    "process and task context",
    "sockets",
    "local storage",
    "spin locks",
    "dynptr and ring buffers",
    "checksums",
    "security (syncookies, IMA, LSM)",
    "timers",
    "strings and formatting",
    "other",
)

# Names that a prefix rule would misfile; looked up before the prefix rules.
_EXACT = {
    "maps": "tail_call for_each_map_elem kptr_xchg sock_map_update sock_hash_update",
    "packets (skb/xdp)": "redirect redirect_map redirect_neigh redirect_peer clone_redirect "
    "get_cgroup_classid get_route_realm get_hash_recalc set_hash set_hash_invalid fib_lookup check_mtu",
    "time and random numbers": "jiffies64 get_prandom_u32",
    "event output and tracing": "trace_printk trace_vprintk get_stackid get_stack get_task_stack "
    "override_return skb_output xdp_output read_branch_records get_branch_snapshot get_func_ip "
    "get_func_arg get_func_ret get_func_arg_cnt get_attach_cookie d_path copy_from_user "
    "copy_from_user_task seq_printf seq_write seq_printf_btf kallsyms_lookup_name task_pt_regs",
    "process and task context": "get_smp_processor_id get_numa_node_id get_ns_current_pid_tgid "
    "current_task_under_cgroup send_signal send_signal_thread find_vma",
    "sockets": "tcp_sock get_listener_sock setsockopt getsockopt bind sock_ops_cb_flags_set "
    "get_socket_cookie get_socket_uid sock_from_file tcp_send_ack load_hdr_opt store_hdr_opt "
    "reserve_hdr_opt get_netns_cookie",
    "local storage": "get_local_storage",
    "spin locks": "spin_lock spin_unlock",
    "checksums": "l3_csum_replace l4_csum_replace csum_diff csum_update csum_level",
    "security (syncookies, IMA, LSM)": "tcp_check_syncookie tcp_gen_syncookie ima_inode_hash "
    "ima_file_hash bprm_opts_set probe_write_user",
    "strings and formatting": "strtol strtoul snprintf snprintf_btf strncmp",
    "dynptr and ring buffers": "user_ringbuf_drain",
    "other": "loop sys_bpf sys_close btf_find_by_name_kind get_retval set_retval per_cpu_ptr this_cpu_ptr",
}
_EXACT_CATEGORY = {name: cat for cat, names in _EXACT.items() for name in names.split()}

_PREFIX_RULES = (
    (r"tcp_raw_\w*syncookie", "security (syncookies, IMA, LSM)"),
    (r"\w+_storage_(get|delete)$", "local storage"),
    (r"(ringbuf|dynptr)_|ringbuf_", "dynptr and ring buffers"),
    (r"timer_", "timers"),
    (r"map_", "maps"),
    (r"ktime_", "time and random numbers"),
    (r"(perf_|probe_read)", "event output and tracing"),
    (r"get_current_", "process and task context"),
    (r"(sk_|skc_|msg_)", "sockets"),
    (r"(skb_|xdp_|lwt_)", "packets (skb/xdp)"),
)


def categorize(name: str) -> str:
    """The category of helper ``name`` (without its ``bpf_`` prefix)."""
    name = name.removeprefix("bpf_")
    if name in _EXACT_CATEGORY:
        return _EXACT_CATEGORY[name]
    for pattern, category in _PREFIX_RULES:
        if re.match(pattern, name):
            return category
    return "other"


@dataclass(frozen=True)
class HelperDoc:
    """One helper as the header documents it."""

    id: int
    name: str
    signature: str = ""
    description: str = ""
    returns: str = ""


def _doc_blocks(header: str) -> dict[str, HelperDoc]:
    """The helper descriptions of the big comment that ``scripts/bpf_doc.py`` turns into a man page."""
    start = header.find("Start of BPF helper function descriptions:")
    if start < 0:
        return {}
    end = header.find("*/", start)
    lines = [re.sub(r"^ \*", "", line, count=1) for line in header[start:end].splitlines()[1:]]
    docs: dict[str, HelperDoc] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        signature = re.match(r" (\S.*\bbpf_(\w+)\(.*\))\s*$", line)
        if not (signature and nxt == "Description"):
            i += 1
            continue
        sections: dict[str, list[str]] = {"Description": [], "Return": []}
        current = "Description"
        i += 2
        while i < len(lines):
            text = lines[i]
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            if re.match(r" \S", text) and following == "Description":
                break
            if text.strip() == "Return":
                current = "Return"
            else:
                sections[current].append(text.expandtabs(8))
            i += 1
        docs[signature.group(2)] = HelperDoc(
            id=-1,
            name=f"bpf_{signature.group(2)}",
            signature=signature.group(1),
            description=textwrap.dedent("\n".join(sections["Description"])).strip(),
            returns=textwrap.dedent("\n".join(sections["Return"])).strip(),
        )
    return docs


def parse_header(text: str) -> list[HelperDoc]:
    """Every helper of a ``linux/bpf.h`` text, ordered by id (``unspec``, id 0, left out)."""
    docs = _doc_blocks(text)
    result = []
    for name, number in sorted(helper_ids(text).items(), key=lambda item: item[1]):
        if number == 0:
            continue
        doc = docs.get(name)
        if doc is None:
            result.append(HelperDoc(id=number, name=f"bpf_{name}"))
        else:
            result.append(HelperDoc(number, doc.name, doc.signature, doc.description, doc.returns))
    return result


@functools.lru_cache(maxsize=4)
def _catalog(path: str, mtime: float) -> tuple[HelperDoc, ...]:
    return tuple(parse_header(read_header(path)))


def helper_docs() -> tuple[HelperDoc, ...]:
    """The helpers of the newest header on the machine (parsed once per header file)."""
    path = find_header()
    return _catalog(path, os.stat(path).st_mtime)


def _normalize_type(prog_type: str) -> str:
    return prog_type.lower().removeprefix("bpf_prog_type_")


def helpers(prog_type: str | None = None, pattern: str | None = None, *, probe: bool = True) -> pd.DataFrame:
    """The BPF helper functions, one row each, with the running kernel's verdict.

    Parameters
    ----------
    prog_type : str, optional
        Keep only helpers the kernel accepts in this program type (``"xdp"``,
        ``"kprobe"``, ``"BPF_PROG_TYPE_SCHED_CLS"``, ...).
    pattern : str, optional
        Keep only helpers whose name contains ``pattern``, or matches it as a glob
        (``"ringbuf"``, ``"bpf_skb_*"``).
    probe : bool
        Ask the kernel which program types accept each helper (cached per kernel
        build, needs root); with ``False`` the ``supported`` column is empty.

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``name``, ``signature``, ``description``, ``returns``,
        ``category``, ``supported`` (list of program type names), ``conditions``
        (program types that accept the helper only under a condition, with the
        kernel's words) and ``example`` (the notebook and section that call the
        helper, ``"11-sockets-cgroups-local-storage.ipynb § 2. ..."``, or ``""``:
        see :mod:`bpfnb.tools.helper_examples`). ``df.attrs`` holds ``header`` (the header read),
        ``kernel`` and ``program_types`` (the types probed, and why others were not).
    """
    import pandas as pd

    from .helper_examples import helper_examples
    from .helper_support import kernel_verdicts

    path = find_header()
    docs = list(helper_docs())
    verdicts = kernel_verdicts(max(doc.id for doc in docs)) if probe else None
    if verdicts is not None:
        known = {doc.id for doc in docs}
        docs += [
            HelperDoc(id=number, name=name, description=f"Defined by the running kernel but not by {path}.")
            for number, name in sorted(verdicts.extra_names.items())
            if number not in known
        ]
    examples = helper_examples()
    rows = []
    for doc in docs:
        supported = verdicts.supported.get(doc.id, []) if verdicts else []
        conditions = verdicts.conditions.get(doc.id, {}) if verdicts else {}
        rows.append(
            {
                "id": doc.id,
                "name": doc.name,
                "signature": doc.signature,
                "description": doc.description,
                "returns": doc.returns,
                "category": categorize(doc.name),
                "supported": supported,
                "conditions": conditions,
                "example": examples.get(doc.name, ""),
            }
        )
    df = pd.DataFrame(rows)
    if prog_type is not None:
        wanted = _normalize_type(prog_type)
        if verdicts is not None and wanted not in verdicts.program_types:
            raise ArgumentError(f"unknown program type {prog_type!r}; expected one of {sorted(verdicts.program_types)}")
        df = df[df["supported"].map(lambda types: wanted in types)]
    if pattern:
        glob_like = any(ch in pattern for ch in "*?[")
        df = df[
            df["name"].map(
                lambda name: fnmatchcase(name, pattern) or fnmatchcase(name.removeprefix("bpf_"), pattern)
                if glob_like
                else pattern.lower() in name.lower()
            )
        ]
    df = df.reset_index(drop=True)
    df.attrs["header"] = path
    if verdicts is not None:
        df.attrs["kernel"] = verdicts.kernel
        df.attrs["program_types"] = verdicts.program_types
    return df
