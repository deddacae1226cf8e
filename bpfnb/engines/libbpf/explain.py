"""Turn libbpf's messages and the verifier's log into errors a user can act on.

libbpf explains failures through its print callback (see :mod:`.printlog`):
warnings name the failing program and errno, the verifier log comes between
``-- BEGIN PROG LOAD LOG --`` and ``-- END PROG LOAD LOG --``, and libbpf
rewrites the log of a program that hit a failed CO-RE relocation into
``failed to resolve CO-RE relocation <byte_off> [5] struct task_struct___x.f``.
Debug messages add the CO-RE candidates and the list of known SEC names.
"""

from __future__ import annotations

import ctypes
import errno
import re
from collections.abc import Sequence

from ...errors import AttachError, LoadError, did_you_mean
from ...kernel.environment import tracefs_dir
from ...kernel.tracefs import has_kprobes, similar_tracepoints
from .bindings import errno_text, libbpf
from .messages import LibbpfMessage, capture_libbpf_output

__all__ = ["attach_error", "known_sections", "load_error", "unknown_section_error"]

_PREFIX = "libbpf: "
_LOAD_FAILED = re.compile(r"prog '(?P<prog>[^']+)': BPF program load failed: (?P<reason>.*)")
_LOG_BLOCK = re.compile(
    r"prog '(?P<prog>[^']+)': -- BEGIN PROG LOAD LOG --\n(?P<log>.*?)-- END PROG LOAD LOG --", re.S
)
_SOURCE_LINE = re.compile(r"^; (?P<code>.*?) @ (?P<file>\S+):(?P<line>\d+)$")
_TRAILER = re.compile(r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn)")
# Register and stack state the verifier dumps after some complaints.
_STATE_DUMP = re.compile(r"^(?:(?:cur|old) state:|from \d+ to \d+:|(?:\d+: )?R\d+(?:_[a-z]+)?=)")
_MAP_CREATE = re.compile(r"map '(?P<map>[^']+)': failed to create: (?P<why>.*)")
_CORE_FAILED = re.compile(
    r"failed to resolve CO-RE relocation <(?P<relo>[a-z_0-9]+)> \[(?P<id>\d+)\] "
    r"(?P<keyword>struct|union|enum|typedef|fwd|int|\w+) (?P<name>[^\s.\[]+)(?P<path>\S*)"
)
_CORE_CANDIDATE = re.compile(r"CO-RE relocating \[(?P<id>\d+)\] \S+ \S+: found target candidate")
_NO_TARGET_BTF = re.compile(r"prog '(?P<prog>[^']+)': failed to find kernel BTF type ID of '(?P<target>[^']+)'")
_SUPPORTED = re.compile(r"supported section\(type\) names are:(?P<names>.*)")
_TRACEPOINT_ID = re.compile(r"failed to determine tracepoint '(?P<tp>[^']+)' perf event ID: (?P<why>.*)")
_RAW_TP = re.compile(r"failed to attach to raw tracepoint '(?P<tp>[^']+)': (?P<why>.*)")
_TRAMPOLINE_SECTIONS = ("fentry", "fexit", "fmod_ret", "freplace")
# BPF security modules (SEC("lsm/...")) run from a trampoline on the LSM hook too.
_LSM_SECTIONS = ("lsm", "lsm_cgroup")
_LOG_TAIL_LINES = 40

# Verifier complaints a newcomer meets first, and what to do about each.
_VERIFIER_HINTS = (
    ("_or_null'", "check the pointer (e.g. from bpf_map_lookup_elem) against NULL before using it"),
    ("invalid mem access 'scalar'", "this is not a pointer the verifier can follow: read kernel memory "
     "with BPF_CORE_READ() or bpf_probe_read_kernel()"),
    ("invalid indirect read from stack", "initialise the whole variable (for a struct: = {}) before "
     "passing it to a helper or a map"),
    ("!read_ok", "a register is read before anything was stored in it: initialise the variable"),
    ("unbounded memory access", "bound the index with an explicit check (if (i >= N) return 0;)"),
    ("back-edge", "loops need a bound the verifier can see: use bpf_loop() or a constant bound"),
    ("infinite loop", "loops need a bound the verifier can see: use bpf_loop() or a constant bound"),
    ("too large", "split the program, or reduce unrolled loops"),
    ("unknown func", "this helper is not available to this program type (SEC) on this kernel"),
    ("GPL-restricted", 'declare a GPL-compatible license: char LICENSE[] SEC("license") = "GPL";'),
    ("helper call is not allowed", "this helper is not available to this program type (SEC)"),
    ("invalid access to map value", "the offset or size is outside the map value: check the bounds"),
)  # fmt: skip


def _texts(messages: Sequence[LibbpfMessage], levels: tuple[str, ...] = ("warn", "info", "debug")) -> list[str]:
    return [m.text.removeprefix(_PREFIX) for m in messages if m.level in levels]


def _libbpf_words(messages: Sequence[LibbpfMessage]) -> str:
    # Warnings and info, without the verifier log (shown on its own).
    text = "".join(_texts(messages, ("warn", "info")))
    return _LOG_BLOCK.sub("prog '\\g<prog>': (verifier log above)", text).strip()


def known_sections() -> list[str]:
    """The SEC() names libbpf knows, as it lists them itself.

    Returns
    -------
    list of str
        A trailing ``+`` means "this name alone, or followed by ``/target``";
        a trailing ``/`` means a target must follow.
    """
    prog_type, attach_type = ctypes.c_int(), ctypes.c_int()
    with capture_libbpf_output() as messages:
        # An impossible name makes libbpf print its whole table at debug level.
        libbpf().libbpf_prog_type_by_name(b"\x01", ctypes.byref(prog_type), ctypes.byref(attach_type))
    for text in _texts(messages, ("debug",)):
        found = _SUPPORTED.search(text)
        if found:
            return found["names"].split()
    return []


def _display_section(name: str) -> str:
    # libbpf's "kprobe+" means SEC("kprobe") or SEC("kprobe/<target>");
    # a trailing "/" means a target is required.
    if name.endswith("+"):
        return name[:-1] + "[/...]"
    if name.endswith("/"):
        return name + "..."
    return name


def unknown_section_error(program: str, section: str) -> AttachError:
    """The error for a program whose SEC() libbpf does not recognise.

    Parameters
    ----------
    program
        The program (C function) name.
    section
        Its SEC() name.

    Returns
    -------
    AttachError
        Its details list every section libbpf knows.
    """
    names = [_display_section(name) for name in known_sections()]
    kind, slash, target = section.partition("/")
    problem = (
        f'SEC("{section}") of program {program!r} is not a section libbpf knows, '
        "so it can tell neither the program type nor where to attach it"
    )
    known = (name.rstrip("+/") for name in known_sections())
    return AttachError(
        did_you_mean(problem, kind, known, show=lambda name: f'SEC("{name}{slash}{target}")'),
        hint='use one of the section names below, for example SEC("tracepoint/syscalls/sys_enter_openat")',
        details="valid SEC() names ([/...]: optionally followed by /target):\n  " + ", ".join(names),
    )


def _verifier_summary(log: str) -> tuple[str, int | None, str]:
    """The verifier's complaint, the cell line it was at and that line's code."""
    lines = [line for line in log.splitlines() if line.strip()]
    while lines and (_TRAILER.match(lines[-1]) or _STATE_DUMP.match(lines[-1])):
        lines.pop()
    if not lines:
        return "", None, ""
    complaint = lines[-1]
    for line in reversed(lines):
        source = _SOURCE_LINE.match(line)
        # Line 0 marks compiler-made code with no source line of its own.
        if source and int(source["line"]) > 0:
            return complaint, int(source["line"]), source["code"].strip()
    return complaint, None, ""


def _core_error(
    program: str, log: str, messages: Sequence[LibbpfMessage], number: int, line: int | None
) -> LoadError | None:
    failed = _CORE_FAILED.search(log)
    if not failed:
        return None
    local_name = failed["name"]
    # "task_struct___x" is a local "flavor" of the kernel's task_struct.
    kernel_name = local_name.split("___")[0]
    keyword, path, relocation = failed["keyword"], failed["path"].lstrip("."), failed["relo"]
    has_candidate = any(
        c["id"] == failed["id"] for c in map(_CORE_CANDIDATE.search, _texts(messages, ("debug",))) if c
    )
    if not has_candidate:
        what = f"this kernel has no {keyword} {kernel_name}"
    elif relocation.startswith("enumval"):
        what = f"this kernel's enum {kernel_name} has no value {path}"
    else:
        what = f"this kernel's {keyword} {kernel_name} has no field {path}"
    where = f" (near line {line})" if line else ""
    return LoadError(
        f"CO-RE relocation failed in program {program!r}{where}: {what}",
        hint="guard the access with bpf_core_field_exists() / bpf_core_type_exists() so the "
        "program also loads on kernels without it, or use a field this kernel has (see vmlinux.h)",
        details=f"libbpf: failed to resolve CO-RE relocation <{relocation}> {keyword} {local_name}"
        f"{failed['path']}\n{_libbpf_words(messages)}",
        errno=number,
        function=program,
        line=line,
        log=log,
    )


def load_error(
    messages: Sequence[LibbpfMessage], number: int, programs: dict[str, tuple[str, int]]
) -> LoadError | AttachError:
    """The error for a failed ``bpf_object__load``.

    Parameters
    ----------
    messages
        Everything libbpf printed during the load.
    number
        The errno ``bpf_object__load`` returned (positive).
    programs
        Program name to ``(SEC name, BPF_PROG_TYPE_* number)``.

    Returns
    -------
    LoadError or AttachError
        AttachError when the SEC() names an attach target the kernel lacks.
    """
    text = "".join(_texts(messages))
    failed = _LOAD_FAILED.search(text)
    program = failed["prog"] if failed else None
    block = _LOG_BLOCK.search(text)
    log = block["log"] if block else ""
    complaint, line, code = _verifier_summary(log)

    missing_target = _NO_TARGET_BTF.search(text)
    if missing_target:
        name, target = missing_target["prog"], missing_target["target"]
        section = programs.get(name, ("", 0))[0]
        return AttachError(
            f'SEC("{section}") of program {name!r}: the kernel has no function or BTF '
            f"tracepoint named {target!r}",
            hint="tp_btf/ takes a tracepoint name (sched_process_fork), fentry/ a kernel function",
            details=_libbpf_words(messages),
        )
    core = _core_error(program or "?", log, messages, number, line)
    if core:
        return core
    section = programs.get(program or "", ("", 0))[0]
    if number == errno.EPERM:
        return _permission_error(program, section, messages, log)
    if complaint:
        where = f" at line {line}" if line else ""
        hint = next((h for needle, h in _VERIFIER_HINTS if needle in complaint), "")
        tail = "\n".join(log.rstrip().splitlines()[-_LOG_TAIL_LINES:])
        return LoadError(
            f"the verifier rejected program {program!r}{where}: {complaint}",
            hint=hint,
            details=(f"line {line}: {code}\n" if code else "") + "end of the verifier log:\n" + tail,
            errno=number,
            function=program,
            line=line,
            log=log,
        )
    map_failure = _MAP_CREATE.search(text)
    if map_failure:
        return LoadError(
            f"the kernel refused to create map {map_failure['map']!r}: {map_failure['why']}",
            hint="check the map's type, key and value sizes, max_entries and map_flags",
            details=_libbpf_words(messages),
            errno=number,
        )
    # The last warning before libbpf's closing "failed to load object" is the most specific.
    warnings = [t.strip() for t in _texts(messages, ("warn",)) if not t.startswith("failed to load object")]
    summary = warnings[-1] if warnings else f"bpf_object__load failed: {errno_text(number)}"
    return LoadError(
        f"libbpf could not load the object: {summary}",
        details=_libbpf_words(messages),
        errno=number,
        function=program,
    )


def _permission_error(
    program: str | None, section: str, messages: Sequence[LibbpfMessage], log: str
) -> LoadError:
    # libbpf suggests raising 'ulimit -l' on any EPERM as root; since Linux
    # 5.11 BPF memory is charged to the memory cgroup, so that advice is stale.
    details = "\n".join(
        line for line in _libbpf_words(messages).splitlines() if "ulimit -l" not in line
    )
    kind = section.split("/")[0].split(".")[0]
    if kind in _TRAMPOLINE_SECTIONS:
        message = (
            f"the kernel refused to load {kind} program {program!r} (EPERM): this kernel does not "
            "allow BPF trampoline programs (fentry/fexit/fmod_ret), even for root"
        )
        hint = (
            "trace the same event with a tp_btf/, raw_tp/ or tracepoint/ program; fentry works on kernels "
            "without this restriction"
        )
    elif kind in _LSM_SECTIONS:
        message = (
            f"the kernel refused to load LSM program {program!r} (EPERM): LSM programs run from a BPF "
            "trampoline on their hook, and this kernel does not allow BPF trampoline programs, even for root"
        )
        hint = (
            "a BPF security module needs a kernel that allows trampolines and has bpf among its LSMs "
            "(the lsm= boot option)"
        )
    else:
        message = f"the kernel refused to load program {program!r} (EPERM)"
        hint = (
            "run as root (or with CAP_BPF and CAP_PERFMON); if you are root, a security policy "
            "(kernel lockdown or an LSM) forbids this program type"
        )
    return LoadError(message, hint=hint, details=details, errno=errno.EPERM, function=program, log=log)


def attach_error(program: str, section: str, number: int, messages: Sequence[LibbpfMessage]) -> AttachError:
    """The error for a failed ``bpf_program__attach``.

    Parameters
    ----------
    program
        The program's name.
    section
        Its SEC() name.
    number
        The errno libbpf set (positive).
    messages
        What libbpf printed during the attach.

    Returns
    -------
    AttachError
    """
    text = "".join(_texts(messages, ("warn", "info")))
    words = _libbpf_words(messages)
    tracepoint = _TRACEPOINT_ID.search(text)
    if tracepoint and number == errno.ENOENT:
        if tracefs_dir() is None:
            return AttachError(
                f'SEC("{section}"): tracefs is not mounted, so no tracepoint can be found',
                hint="mount it: mount -t tracefs none /sys/kernel/tracing "
                "(libbpf 1.1 also looks in /sys/kernel/debug/tracing)",
                details=words,
            )
        kind, _, target = section.partition("/")
        name = target.replace("/", ":")
        return AttachError(
            did_you_mean(
                f'SEC("{section}"): the tracepoint {tracepoint["tp"]} does not exist on this kernel',
                name, similar_tracepoints(name), show=lambda near: f'SEC("{kind}/{near.replace(":", "/")}")',
            ),
            hint="tracepoints are the directories /sys/kernel/tracing/events/<category>/<name>",
            details=words,
        )
    raw = _RAW_TP.search(text)
    if raw and number == errno.ENOENT:
        kind = section.partition("/")[0]
        events = (name.partition(":")[2] for name in similar_tracepoints(raw["tp"]))
        return AttachError(
            did_you_mean(
                f'SEC("{section}"): the raw tracepoint {raw["tp"]} does not exist on this kernel',
                raw["tp"], events, show=lambda near: f'SEC("{kind}/{near}")',
            ),
            hint="raw tracepoints have the names of tracepoints without the category (sched_switch)",
            details=words,
        )
    if section.startswith(("kprobe", "kretprobe", "ksyscall", "kretsyscall")) and tracefs_dir() is not None and not has_kprobes():
        return AttachError(
            f'SEC("{section}"): this kernel has no kprobes (it was built without CONFIG_KPROBES)',
            hint="use a tracepoint, raw_tp/ or tp_btf/ program instead",
            details=words,
        )
    warnings = [t.strip() for t in _texts(messages, ("warn",))]
    reason = warnings[-1] if warnings else errno_text(number)
    return AttachError(
        f'cannot attach program {program!r} at SEC("{section}"): {reason}',
        details=words,
    )
