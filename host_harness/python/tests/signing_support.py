"""Test oracle for signed plugins: an Ed25519 signer and the trailer writer, in pure Python.

Written independently of ``dfplugin.signing`` (which only verifies): affine Edwards
coordinates with one inversion per addition, the base point from its published
coordinates, the square root by the original Ed25519 paper's method. The Rust host's
``dfplugin sign`` must write the same bytes for the same seed and file.

Trailer (120 bytes, appended): b"DFPSIG01" | public key (32) | signature (64) |
signed length (u64 LE) | b"DFPSIGND"; the signature covers
b"dfplugin-signature-v1\\x00" + SHA-512(file bytes before the trailer).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Tuple, Union

__all__ = ["SigningKey", "sign_message", "strip_signature", "sign_file", "write_trust_file", "TRAILER_SIZE"]

TRAILER_SIZE = 120
_START = b"DFPSIG01"
_END = b"DFPSIGND"
_PREFIX = b"dfplugin-signature-v1\x00"

_Q = 2**255 - 19  # field prime
_ORDER = 2**252 + 27742317777372353535851937790883648493  # order of the base point
_CURVE_D = (-121665 * pow(121666, _Q - 2, _Q)) % _Q
_I = pow(2, (_Q - 1) // 4, _Q)  # a square root of -1

# The base point as published (Bernstein et al., "High-speed high-security signatures").
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960


def _inv(x: int) -> int:
    return pow(x, _Q - 2, _Q)


def _on_curve(x: int, y: int) -> bool:
    # -x^2 + y^2 = 1 + d x^2 y^2
    return (-x * x + y * y - 1 - _CURVE_D * x * x * y * y) % _Q == 0


assert _on_curve(_BX, _BY) and _BY == 4 * _inv(5) % _Q


def _affine_add(p: Tuple[int, int], q: Tuple[int, int]) -> Tuple[int, int]:
    x1, y1 = p
    x2, y2 = q
    t = _CURVE_D * x1 * x2 * y1 * y2 % _Q
    x3 = (x1 * y2 + x2 * y1) * _inv(1 + t) % _Q
    y3 = (y1 * y2 + x1 * x2) * _inv(1 - t) % _Q
    return x3, y3


def _scalar_mult(n: int, p: Tuple[int, int]) -> Tuple[int, int]:
    """``[n]p`` by right-to-left binary (least significant bit first)."""
    result = (0, 1)
    addend = p
    while n:
        if n & 1:
            result = _affine_add(result, addend)
        addend = _affine_add(addend, addend)
        n >>= 1
    return result


def _encode(p: Tuple[int, int]) -> bytes:
    x, y = p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _sha512_int(*parts: bytes) -> int:
    h = hashlib.sha512()
    for part in parts:
        h.update(part)
    return int.from_bytes(h.digest(), "little")


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key pair derived from a 32-byte seed (RFC 8032 5.1.5)."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise ValueError(f"an Ed25519 seed has 32 bytes, got {len(self.seed)}")

    @classmethod
    def from_label(cls, label: str) -> "SigningKey":
        """A deterministic test key: the seed is SHA-256 of ``label``."""
        return cls(hashlib.sha256(label.encode("utf-8")).digest())

    def _expanded(self) -> Tuple[int, bytes]:
        h = hashlib.sha512(self.seed).digest()
        a = bytearray(h[:32])
        a[0] &= 0xF8
        a[31] &= 0x7F
        a[31] |= 0x40
        return int.from_bytes(bytes(a), "little"), h[32:]

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key."""
        a, _prefix = self._expanded()
        return _encode(_scalar_mult(a, (_BX, _BY)))

    @property
    def public_text(self) -> str:
        """``ed25519:<hex>``, as a trust file lists it."""
        return "ed25519:" + self.public_key.hex()

    @property
    def key_id(self) -> str:
        """First 16 hex digits of SHA-256(public key)."""
        return hashlib.sha256(self.public_key).hexdigest()[:16]

    def sign(self, message: bytes) -> bytes:
        """The 64-byte pure Ed25519 signature of ``message`` (RFC 8032 5.1.6)."""
        a, prefix = self._expanded()
        public = _encode(_scalar_mult(a, (_BX, _BY)))
        r = _sha512_int(prefix, message) % _ORDER
        big_r = _encode(_scalar_mult(r, (_BX, _BY)))
        k = _sha512_int(big_r, public, message) % _ORDER
        s = (r + k * a) % _ORDER
        return big_r + s.to_bytes(32, "little")


def sign_message(seed: bytes, message: bytes) -> bytes:
    """Signs ``message`` with the key of ``seed``."""
    return SigningKey(seed).sign(message)


def strip_signature(data: bytes) -> bytes:
    """``data`` without its signature trailer (unchanged when unsigned).

    Raises:
        ValueError: the data ends with the end marker but the trailer is malformed.
    """
    if not data.endswith(_END):
        return data
    _check_trailer(data[-TRAILER_SIZE:], len(data))
    return data[: len(data) - TRAILER_SIZE]


def _check_trailer(tail: bytes, file_size: int) -> None:
    """Raises ValueError unless ``tail`` (the last bytes of a file of ``file_size`` bytes,
    ending with the end marker) is a well-formed trailer."""
    if len(tail) < TRAILER_SIZE or tail[-TRAILER_SIZE:][:8] != _START:
        raise ValueError("damaged signature trailer (end marker without the start marker)")
    (length,) = struct.unpack_from("<Q", tail, len(tail) - 16)
    if length != file_size - TRAILER_SIZE:
        raise ValueError(f"damaged signature trailer (covers {length} bytes, {file_size - TRAILER_SIZE} precede it)")


def trailer_for(key: SigningKey, body_digest: bytes, length: int) -> bytes:
    """The 120-byte trailer for a body of ``length`` bytes with SHA-512 ``body_digest``."""
    signature = key.sign(_PREFIX + body_digest)
    return _START + key.public_key + signature + struct.pack("<Q", length) + _END


def sign_file(src: Union[str, "os.PathLike[str]"], key: SigningKey, dst: Optional[Union[str, "os.PathLike[str]"]] = None) -> Path:
    """Signs a copy of ``src`` at ``dst`` (or ``src`` itself when ``dst`` is ``None``):
    an existing trailer is replaced, then the new one appended. Returns the signed path."""
    out = Path(dst if dst is not None else src)
    if dst is not None:
        shutil.copyfile(src, out)
    size = out.stat().st_size
    with open(out, "r+b") as f:
        if size >= 8:
            f.seek(size - 8)
            if f.read(8) == _END:
                f.seek(max(0, size - TRAILER_SIZE))
                _check_trailer(f.read(), size)  # raises when damaged
                size -= TRAILER_SIZE
                f.truncate(size)
        digest = hashlib.sha512()
        f.seek(0)
        remaining = size
        while remaining:
            chunk = f.read(min(1 << 20, remaining))
            digest.update(chunk)
            remaining -= len(chunk)
        f.seek(size)
        f.write(trailer_for(key, digest.digest(), size))
    return out


def write_trust_file(path: Union[str, "os.PathLike[str]"], keys: Iterable[SigningKey], comment: str = "test key") -> Path:
    """A trust file listing ``keys`` (with a header comment and a per-key comment)."""
    lines = ["# dfplugin trust file (tests)", ""]
    lines += [f"{k.public_text}  {comment} {k.key_id}" for k in keys]
    p = Path(path)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p
