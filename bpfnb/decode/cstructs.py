"""ctypes classes for the structs declared in a program's C source.

BCC records only the names and type names of an event struct's fields
(``"in#struct inner"``, ``"bits#unsigned int"``): not the layout of a nested
struct, a union, a typedef or a bit-field. The types an event uses are
declared in the program's own source (BTF leaves out the types of local
variables), so this module reads the declarations there, with a deliberately
small C parser: ``struct``/``union`` definitions (nested and anonymous
ones too), ``typedef``, ``enum``, arrays, pointers, bit-fields, ``packed``,
and ``#define NAME number`` for array sizes. Anything beyond it makes the
caller fall back to BCC's own description.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["SCALARS", "ParseError", "SourceTypes", "ctype_of"]

_TOKEN = re.compile(r"[A-Za-z_]\w*|0[xX][0-9a-fA-F]+|\d+|\S")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+\(?\s*(0[xX][0-9a-fA-F]+|\d+)\s*\)?\s*$", re.M)
_QUALIFIERS = {"const", "volatile", "__restrict", "restrict", "static", "extern", "register"}


#: C scalar type names, as BCC prints them and as kernel and libc headers spell them.
SCALARS: dict[str, type] = {
    "char": ctypes.c_char, "s8": ctypes.c_int8, "signed char": ctypes.c_int8,
    "unsigned char": ctypes.c_uint8, "u8": ctypes.c_uint8, "_Bool": ctypes.c_bool, "bool": ctypes.c_bool,
    "short": ctypes.c_int16, "s16": ctypes.c_int16, "unsigned short": ctypes.c_uint16, "u16": ctypes.c_uint16,
    "int": ctypes.c_int32, "s32": ctypes.c_int32, "enum": ctypes.c_int32,
    "unsigned int": ctypes.c_uint32, "u32": ctypes.c_uint32,
    "long": ctypes.c_int64, "long long": ctypes.c_int64, "s64": ctypes.c_int64,
    "unsigned long": ctypes.c_uint64, "unsigned long long": ctypes.c_uint64, "u64": ctypes.c_uint64,
    "__int128": ctypes.c_int64 * 2, "unsigned __int128": ctypes.c_uint64 * 2,
    "float": ctypes.c_float, "double": ctypes.c_double,
    "__u8": ctypes.c_uint8, "__u16": ctypes.c_uint16, "__u32": ctypes.c_uint32, "__u64": ctypes.c_uint64,
    "__s8": ctypes.c_int8, "__s16": ctypes.c_int16, "__s32": ctypes.c_int32, "__s64": ctypes.c_int64,
    "uint8_t": ctypes.c_uint8, "uint16_t": ctypes.c_uint16, "uint32_t": ctypes.c_uint32, "uint64_t": ctypes.c_uint64,
    "int8_t": ctypes.c_int8, "int16_t": ctypes.c_int16, "int32_t": ctypes.c_int32, "int64_t": ctypes.c_int64,
    "unsigned": ctypes.c_uint32, "signed": ctypes.c_int32,
    "pid_t": ctypes.c_int32, "uid_t": ctypes.c_uint32, "gid_t": ctypes.c_uint32,
    "size_t": ctypes.c_uint64, "ssize_t": ctypes.c_int64,
}  # fmt: skip
_ARRAY = re.compile(r"^(.*?)\s*((?:\[\d+\])+)$")


class ParseError(ValueError):
    """A declaration this small parser does not understand."""


class SourceTypes:
    """The record types and typedefs declared in ``source``.

    Parameters
    ----------
    source
        C source text.
    scalars
        C type names (``"u32"``, ``"unsigned long"``) to ctypes types; default :data:`SCALARS`.
    """

    def __init__(self, source: str, scalars: Mapping[str, Any] = SCALARS) -> None:
        text = _COMMENT.sub(" ", source)
        self._defines = {name: int(value, 0) for name, value in _DEFINE.findall(text)}
        text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)
        self._scalars = scalars
        self._tokens = _TOKEN.findall(text)
        self._pos = 0
        self.records: dict[str, type] = {}  # "struct inner" -> ctypes class
        self.typedefs: dict[str, type] = {}
        self._scan()

    def find(self, members: list[str]) -> type | None:
        """The first declared struct whose fields are named ``members``, in order, or None."""
        for ctype in self.records.values():
            if issubclass(ctype, ctypes.Structure) and _field_names(ctype) == members:
                return ctype
        return None

    # -- parsing ------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> str:
        index = self._pos + ahead
        return self._tokens[index] if index < len(self._tokens) else ""

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if not token:
            raise ParseError("unexpected end of the source")
        if expected is not None and token != expected:
            raise ParseError(f"expected {expected!r}, found {token!r}")
        self._pos += 1
        return token

    def _scan(self) -> None:
        """Visit every top-level record definition and typedef; skip everything else."""
        while self._pos < len(self._tokens):
            start = self._pos
            try:
                token = self._peek()
                if token == "typedef":
                    self._take()
                    ctype = self._type_spec()
                    for name, declared, _bits in self._declarators(ctype):
                        self.typedefs[name] = declared
                    continue
                if token in ("struct", "union") and self._defines_record():
                    self._type_spec()
                    continue
            except ParseError:
                self._pos = start
            self._pos = start + 1

    def _defines_record(self) -> bool:
        """Whether the ``struct``/``union`` here opens a body (after a tag or attributes)."""
        if "{" in (self._peek(1), self._peek(2)):
            return True
        if self._peek(1) != "__attribute__":
            return False
        depth, index = 0, 2
        while self._peek(index) and (depth or self._peek(index) == "("):
            depth += {"(": 1, ")": -1}.get(self._peek(index), 0)
            index += 1
        return self._peek(index) == "{" or self._peek(index + 1) == "{"

    def _attributes(self) -> bool:
        """Skip ``__attribute__((...))`` groups; True if one says ``packed``."""
        packed = False
        while self._peek() in ("__attribute__", "__attribute"):
            self._take()
            depth = 0
            while True:
                token = self._take()
                packed |= token in ("packed", "__packed__")
                depth += {"(": 1, ")": -1}.get(token, 0)
                if depth == 0:
                    break
        return packed

    def _type_spec(self) -> Any:
        while self._peek() in _QUALIFIERS:
            self._take()
        token = self._peek()
        if token in ("struct", "union"):
            return self._record()
        if token == "enum":
            self._take()
            if self._peek() != "{":
                self._take()
            if self._peek() == "{":
                while self._take() != "}":
                    pass
            return ctypes.c_int32
        words: list[str] = []
        while self._peek() and (self._peek()[0].isalpha() or self._peek()[0] == "_") and (
            not words or _joins(" ".join(words), self._peek(), self._scalars)
        ):
            words.append(self._take())
        name = " ".join(words)
        if name in self._scalars:
            return self._scalars[name]
        if name in self.typedefs:
            return self.typedefs[name]
        raise ParseError(f"unknown type {name!r}")

    def _record(self) -> Any:
        keyword = self._take()
        packed = self._attributes()
        tag = self._take() if self._peek() not in ("{", "") else ""
        packed |= self._attributes()
        if self._peek() != "{":
            if f"{keyword} {tag}" not in self.records:
                raise ParseError(f"{keyword} {tag} is not defined before its use")
            return self.records[f"{keyword} {tag}"]
        self._take("{")
        fields: list[tuple[Any, ...]] = []
        anonymous = 0
        while self._peek() != "}":
            ctype = self._type_spec()
            if self._peek() == ";":  # an anonymous struct or union member
                fields.append((f"__anon{anonymous}", ctype))
                anonymous += 1
            else:
                for name, declared, bits in self._declarators(ctype):
                    fields.append((name, declared, bits) if bits else (name, declared))
            self._take(";")
        self._take("}")
        packed |= self._attributes()
        namespace: dict[str, Any] = {"_fields_": fields}  # bpfnb.decode.columns flattens __anon* members
        if packed:
            namespace["_pack_"] = 1
        base = ctypes.Union if keyword == "union" else ctypes.Structure
        ctype = type(tag or f"anonymous_{keyword}", (base,), namespace)
        if tag:
            self.records[f"{keyword} {tag}"] = ctype
        return ctype

    def _declarators(self, ctype: Any) -> Iterator[tuple[str, Any, int]]:
        while True:
            declared = ctype
            while self._peek() == "*":
                self._take()
                declared = ctypes.c_uint64
            while self._peek() in _QUALIFIERS:
                self._take()
            name = self._take()
            if not (name[0].isalpha() or name[0] == "_"):
                raise ParseError(f"expected a name, found {name!r}")
            dims = []
            while self._peek() == "[":
                self._take()
                dims.append(self._number(self._take()))
                self._take("]")
            for length in reversed(dims):
                declared = declared * length
            bits = 0
            if self._peek() == ":":
                self._take()
                bits = self._number(self._take())
            self._attributes()
            yield name, declared, bits
            if self._peek() != ",":
                return
            self._take()

    def _number(self, token: str) -> int:
        if token in self._defines:
            return self._defines[token]
        try:
            return int(token, 0)
        except ValueError:
            raise ParseError(f"array size {token!r} is not a number") from None


def ctype_of(text: str) -> type:
    """The ctypes type of a C type name such as ``"unsigned int"``, ``"char[16]"`` or ``"u8 *"``."""
    text = text.strip()
    match = _ARRAY.match(text)
    if match:
        ctype: Any = ctype_of(match.group(1))  # ctypes types multiply into array types
        for length in reversed(re.findall(r"\d+", match.group(2))):
            ctype = ctype * int(length)
        array: type = ctype
        return array
    if text.endswith("*"):
        return ctypes.c_uint64
    if text.startswith("enum "):
        return ctypes.c_int32
    try:
        return SCALARS[text]
    except KeyError:
        raise ParseError(f"unknown field type {text!r}") from None


def _joins(name: str, word: str, scalars: Mapping[str, Any]) -> bool:
    """Whether ``word`` continues the type name ``name`` (``unsigned`` + ``long``)."""
    return any(known.startswith(f"{name} {word}") for known in scalars)


def _field_names(ctype: Any) -> list[str]:
    return [field[0] for field in ctype._fields_]
