"""The sections of an ELF file, read with nothing but ``struct``.

Enough of ELF to find a compiled BPF object's ``.BTF`` section without
libbpf, pyelftools or root.
"""

from __future__ import annotations

import struct

from ..errors import DecodeError

__all__ = ["elf_sections"]

_MAGIC = b"\x7fELF"
_CLASS_64 = 2
_DATA_LSB = 1
_SHT_NOBITS = 8


def elf_sections(image: bytes) -> dict[str, bytes]:
    """Every section of an ELF image, by name.

    Parameters
    ----------
    image
        The whole file.

    Returns
    -------
    dict of str to bytes
        Section contents (empty for ``SHT_NOBITS`` sections such as ``.bss``).

    Raises
    ------
    DecodeError
        ``image`` is not an ELF file, or is truncated.
    """
    if image[:4] != _MAGIC or len(image) < 52:
        raise DecodeError("not an ELF object (no \\x7fELF magic)")
    wide = image[4] == _CLASS_64
    order = "<" if image[5] == _DATA_LSB else ">"
    try:
        if wide:
            shoff, = struct.unpack_from(order + "Q", image, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", image, 0x3A)
            header = struct.Struct(order + "IIQQQQIIQQ")
        else:
            shoff, = struct.unpack_from(order + "I", image, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", image, 0x2E)
            header = struct.Struct(order + "IIIIIIIIII")
        raw = [header.unpack_from(image, shoff + i * shentsize) for i in range(shnum)]
        # Fields: name, type, flags, addr, offset, size, link, info, align, entsize.
        names_offset, names_size = raw[shstrndx][4], raw[shstrndx][5]
        names = image[names_offset:names_offset + names_size]
        sections: dict[str, bytes] = {}
        for name_off, kind, _flags, _addr, offset, size, *_ in raw[1:]:
            name = names[name_off:names.index(b"\0", name_off)].decode()
            sections[name] = b"" if kind == _SHT_NOBITS else image[offset:offset + size]
    except (struct.error, IndexError, ValueError) as exc:
        raise DecodeError(f"truncated or malformed ELF object: {exc}") from exc
    return sections
