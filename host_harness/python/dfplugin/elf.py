"""A minimal ELF64 (little-endian) section reader, standard library only.

Used to read a plugin's embedded manifest from the file *without loading it*: loading a
library built against another DataFusion major would already run its initialisers, and
touching its FFI structs would crash the process.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Dict, Tuple

__all__ = ["ElfError", "read_section", "section_names"]

_ELF_MAGIC = b"\x7fELF"
_ELFCLASS64 = 2
_ELFDATA2LSB = 1
_SHN_XINDEX = 0xFFFF
_SHT_NOBITS = 8
_EHDR_SIZE = 64
_SHDR_SIZE = 64


class ElfError(Exception):
    """The file is not a readable ELF64 little-endian object.

    Attributes:
        kind: ``"not_a_library"`` (not ELF / unsupported flavour), ``"truncated"``
            (headers point past the end of the file) or ``"no_section"``.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _read_at(f: BinaryIO, offset: int, size: int, path: str, what: str) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise ElfError(
            f"'{path}' is truncated: {what} at offset {offset} needs {size} bytes, "
            f"the file has only {len(data)} there; the file is damaged or still being "
            "written (rebuild the plugin or wait for the build to finish)",
            "truncated",
        )
    return data


def _sections(f: BinaryIO, path: str) -> Dict[str, Tuple[int, int, int]]:
    """Returns ``{name: (sh_type, offset, size)}`` for every section of the file."""
    file_size = os.fstat(f.fileno()).st_size
    ident = f.read(16)
    if len(ident) < 4 or ident[:4] != _ELF_MAGIC:
        raise ElfError(
            f"'{path}' is not an ELF file (first bytes {ident[:4]!r}, expected {_ELF_MAGIC!r}); "
            "pass the plugin's shared library (lib<name>.so built by `make build`)",
            "not_a_library",
        )
    if len(ident) < 16:
        raise ElfError(f"'{path}' is truncated inside the ELF identification bytes", "truncated")
    if ident[4] != _ELFCLASS64 or ident[5] != _ELFDATA2LSB:
        raise ElfError(
            f"'{path}' is an ELF file of class {ident[4]} / data encoding {ident[5]}; only "
            "64-bit little-endian ELF (class 2, encoding 1) is supported",
            "not_a_library",
        )
    ehdr = _read_at(f, 0, _EHDR_SIZE, path, "the ELF header")
    (e_shoff,) = struct.unpack_from("<Q", ehdr, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", ehdr, 0x3A)
    if e_shoff == 0:
        raise ElfError(f"'{path}' has no section header table (stripped of sections?)", "no_section")
    if e_shentsize != _SHDR_SIZE:
        raise ElfError(
            f"'{path}' has section headers of {e_shentsize} bytes, expected {_SHDR_SIZE}", "not_a_library"
        )

    def shdr(index: int) -> Tuple[int, int, int, int, int]:
        raw = _read_at(f, e_shoff + index * _SHDR_SIZE, _SHDR_SIZE, path, f"section header {index}")
        sh_name, sh_type, _flags, _addr, sh_offset, sh_size, sh_link = struct.unpack_from("<IIQQQQI", raw, 0)
        return sh_name, sh_type, sh_offset, sh_size, sh_link

    first = shdr(0)
    count = e_shnum if e_shnum != 0 else first[3]  # extended numbering: count in sh_size of #0
    strndx = e_shstrndx if e_shstrndx != _SHN_XINDEX else first[4]
    if e_shoff + count * _SHDR_SIZE > file_size:
        raise ElfError(
            f"'{path}' is truncated: its {count} section headers at offset {e_shoff} end past "
            f"the end of the file ({file_size} bytes)",
            "truncated",
        )
    if not 0 < strndx < count:
        raise ElfError(f"'{path}' has no section name table (index {strndx} of {count})", "no_section")
    headers = [first] + [shdr(i) for i in range(1, count)]
    _n, _t, str_off, str_size, _l = headers[strndx]
    names = _read_at(f, str_off, str_size, path, "the section name table")
    out: Dict[str, Tuple[int, int, int]] = {}
    for sh_name, sh_type, sh_offset, sh_size, _link in headers:
        end = names.find(b"\0", sh_name)
        name = names[sh_name : end if end >= 0 else len(names)].decode("utf-8", "replace")
        out.setdefault(name, (sh_type, sh_offset, sh_size))
    return out


def section_names(path: str) -> list:
    """Names of every section of the ELF file at ``path``."""
    with open(path, "rb") as f:
        return list(_sections(f, path))


def read_section(path: str, name: str) -> bytes:
    """The file bytes of section ``name`` of the ELF64 little-endian file at ``path``.

    Raises:
        ElfError: the file is not ELF64 LE (``kind="not_a_library"``), is truncated
            (``"truncated"``) or has no section of that name (``"no_section"``).
        OSError: the file cannot be opened.
    """
    with open(path, "rb") as f:
        sections = _sections(f, path)
        if name not in sections:
            raise ElfError(f"'{path}' has no section named '{name}'", "no_section")
        sh_type, offset, size = sections[name]
        if sh_type == _SHT_NOBITS:
            raise ElfError(f"'{path}': section '{name}' occupies no file space (NOBITS)", "no_section")
        return _read_at(f, offset, size, path, f"section '{name}'")
