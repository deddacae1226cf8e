"""ctypes bindings to libbpf's object API (libbpf 1.1, Debian 12's ``libbpf1``): open, load, attach.

The calls on maps and programs by fd are in :mod:`bpfnb.kernel.libbpf`; these
are declared on the same library handle.

Each function is declared once with its argument and return types. libbpf
1.x reports errors the "1.0 way": functions returning a pointer return NULL
and set errno; functions returning int return ``-errno`` (and set errno too).
The option structs below copy libbpf 1.1's layout, ``sz`` first: libbpf
reads only the first ``sz`` bytes, so a struct from an older header works
with a newer library, and unknown trailing bytes must be zero.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os

from ...errors import SetupError
from ...kernel.libbpf import libbpf as kernel_libbpf

__all__ = ["BPF_PROG_TYPE_UNSPEC", "PRINT_FN", "BpfObjectOpenOpts", "BpfUprobeOpts", "errno_text", "libbpf"]

#: ``enum bpf_prog_type`` value of a program whose SEC() libbpf did not recognise.
BPF_PROG_TYPE_UNSPEC = 0

#: ``int (*libbpf_print_fn_t)(enum libbpf_print_level, const char *fmt, va_list)``.
#: ``va_list`` is an array type on x86-64 (and passed by reference on arm64),
#: so the callback receives a pointer: ``c_void_p`` passes it on untouched.
PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)

_c = ctypes
_vp, _cp, _int, _u32, _size = _c.c_void_p, _c.c_char_p, _c.c_int, _c.c_uint32, _c.c_size_t


class BpfObjectOpenOpts(ctypes.Structure):
    """``struct bpf_object_open_opts`` of libbpf 1.1 (80 bytes on 64-bit)."""

    _fields_ = [
        ("sz", _size),
        ("object_name", _cp),
        ("relaxed_maps", _c.c_bool),
        ("pin_root_path", _cp),
        # "__u32 :32": the removed attach_prog_fd, kept as a hole.
        ("_removed_attach_prog_fd", _u32),
        ("kconfig", _cp),
        ("btf_custom_path", _cp),
        ("kernel_log_buf", _vp),
        ("kernel_log_size", _size),
        ("kernel_log_level", _u32),
    ]


class BpfUprobeOpts(ctypes.Structure):
    """``struct bpf_uprobe_opts`` of libbpf 1.1."""

    _fields_ = [
        ("sz", _size),
        ("ref_ctr_offset", _size),
        ("bpf_cookie", _c.c_uint64),
        ("retprobe", _c.c_bool),
        ("func_name", _cp),
    ]


# name: (restype, argtypes)
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "libbpf_set_print": (_vp, [PRINT_FN]),
    "libbpf_major_version": (_u32, []),
    "libbpf_minor_version": (_u32, []),
    "libbpf_strerror": (_int, [_int, _cp, _size]),
    "libbpf_prog_type_by_name": (_int, [_cp, _c.POINTER(_c.c_int), _c.POINTER(_c.c_int)]),
    "libbpf_bpf_prog_type_str": (_cp, [_int]),
    "libbpf_bpf_map_type_str": (_cp, [_int]),
    "bpf_object__open_mem": (_vp, [_vp, _size, _c.POINTER(BpfObjectOpenOpts)]),
    "bpf_object__load": (_int, [_vp]),
    "bpf_object__close": (None, [_vp]),
    "bpf_object__btf": (_vp, [_vp]),
    "bpf_object__next_program": (_vp, [_vp, _vp]),
    "bpf_object__next_map": (_vp, [_vp, _vp]),
    "bpf_program__name": (_cp, [_vp]),
    "bpf_program__section_name": (_cp, [_vp]),
    "bpf_program__fd": (_int, [_vp]),
    "bpf_program__type": (_int, [_vp]),
    "bpf_program__expected_attach_type": (_int, [_vp]),
    "bpf_program__autoload": (_c.c_bool, [_vp]),
    "bpf_program__set_autoload": (_int, [_vp, _c.c_bool]),
    "bpf_program__autoattach": (_c.c_bool, [_vp]),
    "bpf_program__set_autoattach": (None, [_vp, _c.c_bool]),
    "bpf_program__attach": (_vp, [_vp]),
    "bpf_program__attach_tracepoint": (_vp, [_vp, _cp, _cp]),
    "bpf_program__attach_raw_tracepoint": (_vp, [_vp, _cp]),
    "bpf_program__attach_kprobe": (_vp, [_vp, _c.c_bool, _cp]),
    "bpf_program__attach_uprobe_opts": (_vp, [_vp, _c.c_int, _cp, _size, _c.POINTER(BpfUprobeOpts)]),
    "bpf_program__attach_perf_event": (_vp, [_vp, _int]),
    "bpf_link__destroy": (_int, [_vp]),
    "bpf_map__name": (_cp, [_vp]),
    "bpf_map__fd": (_int, [_vp]),
    "bpf_map__type": (_int, [_vp]),
    "bpf_map__key_size": (_u32, [_vp]),
    "bpf_map__value_size": (_u32, [_vp]),
    "bpf_map__max_entries": (_u32, [_vp]),
    "bpf_map__map_flags": (_u32, [_vp]),
    "bpf_map__btf_key_type_id": (_u32, [_vp]),
    "bpf_map__btf_value_type_id": (_u32, [_vp]),
    "bpf_map__is_internal": (_c.c_bool, [_vp]),
    "bpf_map__set_initial_value": (_int, [_vp, _vp, _size]),
}  # fmt: skip


@functools.lru_cache(maxsize=1)
def libbpf() -> ctypes.CDLL:
    """The process's handle on libbpf.so.1, with the object API's prototypes declared too.

    Raises
    ------
    SetupError
        libbpf.so.1 is missing, or older than 1.1.
    """
    try:
        lib = kernel_libbpf()
    except OSError as exc:
        raise SetupError(
            "libbpf.so.1 is not installed",
            hint="install it: apt-get install -y --no-install-recommends libbpf1",
            details=str(exc),
        ) from exc
    missing = [name for name in _PROTOTYPES if not hasattr(lib, name)]
    if missing:
        raise SetupError(
            f"this libbpf.so.1 is too old: it lacks {', '.join(missing)}",
            hint="bpfnb needs libbpf 1.1 or newer (Debian 12's libbpf1 or later)",
        )
    for name, (restype, argtypes) in _PROTOTYPES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


def errno_text(number: int) -> str:
    """``"EPERM (Operation not permitted)"`` for errno 1, libbpf's own codes included."""
    number = abs(number)
    buffer = ctypes.create_string_buffer(256)
    libbpf().libbpf_strerror(number, buffer, len(buffer))
    name = errno.errorcode.get(number)
    text = buffer.value.decode(errors="replace") or os.strerror(number)
    return f"{name} ({text})" if name else text
