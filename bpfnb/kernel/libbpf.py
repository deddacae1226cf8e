"""ctypes bindings to the few libbpf calls that BCC's Python does not wrap.

libbpf.so.1 comes with the distribution's libbpfcc. Each binding is declared
once here with its argument and return types; callers get ``OSError`` with the
kernel's errno instead of a negative return value.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import os

__all__ = [
    "BATCH_UNSUPPORTED",
    "MapInfo",
    "map_batch",
    "map_elem",
    "map_info",
    "num_possible_cpus",
    "prog_name_by_id",
    "ProgLoadOpts",
    "TestRunOpts",
    "check",
    "libbpf",
    "empty_map",
    "link_create",
    "prog_load",
    "prog_attach",
    "prog_detach",
    "prog_test_run",
    "raw_tracepoint_open",
    "vmlinux_btf_id",
]


@functools.lru_cache(maxsize=None)
def libbpf() -> ctypes.CDLL:
    """The process-wide handle on libbpf.so.1, with its prototypes declared."""
    name = ctypes.util.find_library("bpf") or "libbpf.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    lib.bpf_enable_stats.argtypes = [ctypes.c_int]
    lib.bpf_enable_stats.restype = ctypes.c_int
    # Links: attachments that end with the fd (XDP in Program).
    lib.bpf_link_create.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    lib.bpf_link_create.restype = ctypes.c_int
    # Attachments to a map (sockmap verdicts on kernels without sockmap links).
    lib.bpf_prog_attach.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_uint]
    lib.bpf_prog_attach.restype = ctypes.c_int
    lib.bpf_prog_detach2.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.bpf_prog_detach2.restype = ctypes.c_int
    # Program loading and test runs (helpers catalog, packet lab).
    lib.bpf_prog_load.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.POINTER(ProgLoadOpts),
    ]
    lib.bpf_prog_load.restype = ctypes.c_int
    lib.bpf_prog_test_run_opts.argtypes = [ctypes.c_int, ctypes.POINTER(TestRunOpts)]
    lib.bpf_prog_test_run_opts.restype = ctypes.c_int
    lib.libbpf_find_vmlinux_btf_id.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.libbpf_find_vmlinux_btf_id.restype = ctypes.c_int
    # Attaching raw tracepoints, tp_btf and fentry programs (doctor's probes).
    lib.bpf_raw_tracepoint_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.bpf_raw_tracepoint_open.restype = ctypes.c_int
    # BTF of loaded programs (the BCC engine checks the struct layouts it used).
    lib.btf__load_from_kernel_by_id.argtypes = [ctypes.c_uint32]
    lib.btf__load_from_kernel_by_id.restype = ctypes.c_void_p
    lib.btf__free.argtypes = [ctypes.c_void_p]
    lib.btf__free.restype = None
    lib.btf__raw_data.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]
    lib.btf__raw_data.restype = ctypes.c_void_p
    # Map reading and writing in bulk (maps as DataFrames).
    for fn, args in {
        "bpf_map_lookup_batch": [ctypes.c_int] + [ctypes.c_void_p] * 4 + [ctypes.POINTER(ctypes.c_uint32), ctypes.c_void_p],
        "bpf_map_lookup_and_delete_batch": [ctypes.c_int] + [ctypes.c_void_p] * 4 + [ctypes.POINTER(ctypes.c_uint32), ctypes.c_void_p],
        "bpf_map_update_batch": [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.c_void_p],
        "bpf_map_delete_batch": [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.c_void_p],
        "bpf_map_get_next_key": [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p],
        "bpf_map_lookup_elem": [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p],
        "bpf_map_lookup_and_delete_elem": [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p],
        "bpf_map_update_elem": [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64],
        "bpf_map_delete_elem": [ctypes.c_int, ctypes.c_void_p],
        "bpf_obj_get_info_by_fd": [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)],
        "bpf_prog_get_fd_by_id": [ctypes.c_uint32],
        "libbpf_num_possible_cpus": [],
    }.items():
        getattr(lib, fn).argtypes = args
        getattr(lib, fn).restype = ctypes.c_int
    return lib


def check(result: int, what: str) -> int:
    """Return ``result``, or raise ``OSError`` naming ``what`` if it is an error.

    libbpf 1.x returns ``-errno`` and also sets ``errno``; either is accepted.
    """
    if result >= 0:
        return result
    err = -result if result != -1 else ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err)}")


class ProgLoadOpts(ctypes.Structure):
    """libbpf's ``struct bpf_prog_load_opts`` (libbpf 1.x layout)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("attempts", ctypes.c_int),
        ("expected_attach_type", ctypes.c_int),
        ("prog_btf_fd", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_ifindex", ctypes.c_uint32),
        ("kern_version", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
        ("attach_prog_fd", ctypes.c_uint32),
        ("attach_btf_obj_fd", ctypes.c_uint32),
        ("fd_array", ctypes.c_void_p),
        ("func_info", ctypes.c_void_p),
        ("func_info_cnt", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32),
        ("line_info", ctypes.c_void_p),
        ("line_info_cnt", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_char_p),
    ]


class TestRunOpts(ctypes.Structure):
    """libbpf's ``struct bpf_test_run_opts`` (libbpf 1.x layout)."""

    __test__ = False  # not a pytest test class, despite the name
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


def prog_load(
    prog_type: int,
    insns: bytes,
    *,
    license: str = "GPL",
    expected_attach_type: int = 0,
    attach_btf_id: int = 0,
    prog_flags: int = 0,
    log_size: int = 4096,
) -> tuple[int, int, str]:
    """Load raw instructions; return ``(fd, errno, verifier log)``.

    ``fd`` is -1 when the kernel refused the program; the caller owns (and
    must ``os.close``) a non-negative ``fd``. ``insns`` is the packed
    8-byte ``struct bpf_insn`` array.
    """
    log = ctypes.create_string_buffer(log_size)
    opts = ProgLoadOpts(
        sz=ctypes.sizeof(ProgLoadOpts),
        expected_attach_type=expected_attach_type,
        attach_btf_id=attach_btf_id,
        prog_flags=prog_flags,
        log_level=1,
        log_size=log_size,
        log_buf=ctypes.cast(log, ctypes.c_char_p),
    )
    code = ctypes.create_string_buffer(insns, len(insns))
    fd = libbpf().bpf_prog_load(prog_type, None, license.encode(), code, len(insns) // 8, ctypes.byref(opts))
    err = 0 if fd >= 0 else (-fd if fd != -1 else ctypes.get_errno())
    return fd, err, log.value.decode(errors="replace")


def prog_test_run(
    prog_fd: int,
    data: bytes,
    *,
    repeat: int = 1,
    ctx: bytes | None = None,
    out_size: int | None = None,
) -> tuple[int, bytes, int, bytes | None]:
    """Run a loaded program on ``data`` with ``BPF_PROG_TEST_RUN``.

    Returns ``(retval, data_out, duration_ns, ctx_out)``; raises ``OSError``
    with the kernel's errno if the kernel refuses the run.
    """
    out = ctypes.create_string_buffer(out_size or max(4096, 2 * len(data)))
    din = ctypes.create_string_buffer(data, len(data))
    opts = TestRunOpts(
        sz=ctypes.sizeof(TestRunOpts),
        data_in=ctypes.cast(din, ctypes.c_void_p),
        data_out=ctypes.cast(out, ctypes.c_void_p),
        data_size_in=len(data),
        data_size_out=len(out),
        repeat=repeat,
    )
    ctx_out = None
    if ctx is not None:
        cin = ctypes.create_string_buffer(ctx, len(ctx))
        ctx_out = ctypes.create_string_buffer(len(ctx))
        opts.ctx_in = ctypes.cast(cin, ctypes.c_void_p)
        opts.ctx_size_in = len(ctx)
        opts.ctx_out = ctypes.cast(ctx_out, ctypes.c_void_p)
        opts.ctx_size_out = len(ctx)
    check(libbpf().bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts)), "BPF_PROG_TEST_RUN")
    ctx_bytes = ctx_out.raw[: opts.ctx_size_out] if ctx_out is not None else None
    return opts.retval, out.raw[: opts.data_size_out], opts.duration, ctx_bytes


def vmlinux_btf_id(name: str, attach_type: int) -> int:
    """BTF id in vmlinux of the attach target ``name`` for ``attach_type``."""
    return check(libbpf().libbpf_find_vmlinux_btf_id(name.encode(), attach_type), f"BTF id of {name}")


def raw_tracepoint_open(name: str | None, prog_fd: int) -> int:
    """Attach ``prog_fd`` to raw tracepoint ``name``; return the link fd to close.

    ``name`` is None for BTF-typed programs (tp_btf, fentry), whose target was
    fixed at load time by ``attach_btf_id``.
    """
    target = name.encode() if name is not None else None
    return check(libbpf().bpf_raw_tracepoint_open(target, prog_fd), f"raw tracepoint {name or 'BTF'}")


# --------------------------------------------------------------------------- maps

#: errno values meaning "this kernel or map type has no batch operations":
#: EINVAL (kernels before 5.6), ENOTSUPP (524, leaks from the kernel), EOPNOTSUPP.
BATCH_UNSUPPORTED = frozenset({22, 524, 95})


class MapInfo(ctypes.Structure):
    """The head of the kernel's ``struct bpf_map_info`` (the kernel fills what fits)."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * 16),
    ]


def map_info(fd: int) -> MapInfo:
    """Type, sizes and flags of the map behind ``fd``."""
    info = MapInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    check(libbpf().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)), "map info")
    return info


def map_batch(op: str, fd: int, *buffers: int | None, count: int) -> tuple[int, bool]:
    """One ``bpf_map_<op>_batch`` call on raw buffer addresses.

    ``op`` is ``lookup``, ``lookup_and_delete`` (buffers: in_batch, out_batch,
    keys, values), ``update`` (keys, values) or ``delete`` (keys). Returns
    ``(elements done, reached the end)``; the end (ENOENT) is not an error.
    """
    done = ctypes.c_uint32(count)
    result = getattr(libbpf(), f"bpf_map_{op}_batch")(fd, *buffers, ctypes.byref(done), None)
    return done.value, not _found(result, f"BPF map {op} batch")


def empty_map(fd: int) -> None:
    """Delete every entry of the map behind ``fd``, one by one (for maps without batch deletes).

    Array-like maps (sockmaps) list every index as a key, full or not, and
    refuse to delete an empty one: those refusals are skipped.
    """
    info = map_info(fd)
    size = max(info.key_size, 1)
    keys = ctypes.create_string_buffer(size * max(info.max_entries, 1))
    held, previous = 0, None
    while held < info.max_entries and map_elem("get_next_key", fd, previous, ctypes.addressof(keys) + held * size):
        previous, held = ctypes.addressof(keys) + held * size, held + 1
    for at in range(held):
        with contextlib.suppress(OSError):
            map_elem("delete_elem", fd, ctypes.addressof(keys) + at * size)


def map_elem(op: str, fd: int, *args: int | None) -> bool:
    """One ``bpf_map_<op>`` call (``get_next_key``, ``lookup_elem``, ...); False on ENOENT."""
    result = getattr(libbpf(), _MAP_FUNCTIONS[op])(fd, *args)
    return result >= 0 or _found(result, f"BPF map {op}")


# Spelled out once: a per-entry walk calls map_elem a million times.
_MAP_FUNCTIONS = {
    op: f"bpf_map_{op}"
    for op in ("get_next_key", "lookup_elem", "lookup_and_delete_elem", "update_elem", "delete_elem")
}


def _found(result: int, what: str) -> bool:
    """False when the kernel said ENOENT (no such entry, or the end of the map)."""
    if result < 0 and (-result if result != -1 else ctypes.get_errno()) == errno.ENOENT:
        return False
    check(result, what)
    return True


class _ProgInfoHead(ctypes.Structure):
    # struct bpf_prog_info up to btf_id; the kernel fills what fits.
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32),
        ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64),
        ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64),
        ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32),
        ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * 16),
        ("ifindex", ctypes.c_uint32),
        ("gpl_compatible", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64),
        ("netns_ino", ctypes.c_uint64),
        ("nr_jited_ksyms", ctypes.c_uint32),
        ("nr_jited_func_lens", ctypes.c_uint32),
        ("jited_ksyms", ctypes.c_uint64),
        ("jited_func_lens", ctypes.c_uint64),
        ("btf_id", ctypes.c_uint32),
    ]


def _prog_info(fd: int) -> _ProgInfoHead:
    info = _ProgInfoHead()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    check(libbpf().bpf_obj_get_info_by_fd(fd, ctypes.byref(info), ctypes.byref(size)), "program info")
    return info


def prog_btf(fd: int) -> bytes | None:
    """The raw BTF the program behind ``fd`` was loaded with, or None if it has none."""
    btf_id = _prog_info(fd).btf_id
    if not btf_id:
        return None
    lib = libbpf()
    btf = lib.btf__load_from_kernel_by_id(btf_id)
    if not btf:
        return None
    try:
        size = ctypes.c_uint32()
        raw = lib.btf__raw_data(btf, ctypes.byref(size))
        return ctypes.string_at(raw, size.value)
    finally:
        lib.btf__free(btf)


def prog_name_by_id(prog_id: int) -> str:
    """The name the kernel keeps for program ``prog_id`` (first 15 bytes of it)."""
    fd = check(libbpf().bpf_prog_get_fd_by_id(prog_id), f"program {prog_id}")
    try:
        return bytes(_prog_info(fd).name).decode(errors="replace")
    finally:
        os.close(fd)


def num_possible_cpus() -> int:
    """CPUs a per-CPU map holds a value for (``/sys/devices/system/cpu/possible``)."""
    return check(libbpf().libbpf_num_possible_cpus(), "number of possible CPUs")


class _LinkCreateOpts(ctypes.Structure):
    # The head of libbpf's struct bpf_link_create_opts; libbpf reads only `sz` bytes.
    _fields_ = [("sz", ctypes.c_size_t), ("flags", ctypes.c_uint32)]


def link_create(prog_fd: int, target_fd: int, attach_type: int, *, flags: int = 0) -> int:
    """Attach a program through a BPF link; the attachment lasts while the returned fd is open."""
    opts = _LinkCreateOpts(sz=ctypes.sizeof(_LinkCreateOpts), flags=flags)
    return check(libbpf().bpf_link_create(prog_fd, target_fd, attach_type, ctypes.byref(opts)), "bpf_link_create")


def prog_attach(prog_fd: int, target_fd: int, attach_type: int) -> None:
    """Attach a program without a link (``BPF_PROG_ATTACH``); it stays until :func:`prog_detach` or the target goes."""
    check(libbpf().bpf_prog_attach(prog_fd, target_fd, attach_type, 0), "BPF_PROG_ATTACH")


def prog_detach(prog_fd: int, target_fd: int, attach_type: int) -> None:
    """Undo :func:`prog_attach`."""
    check(libbpf().bpf_prog_detach2(prog_fd, target_fd, attach_type), "BPF_PROG_DETACH")
