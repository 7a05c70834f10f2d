"""Signed plugin libraries: the signature trailer, Ed25519 verification and the trust policy.

A signed library carries a 120-byte trailer appended to the end of the file (ELF loaders
ignore trailing bytes), the same format the Rust host reads and ``dfplugin sign`` writes::

    offset   0   8 bytes  start marker  b"DFPSIG01"
    offset   8  32 bytes  Ed25519 public key (RFC 8032 encoding)
    offset  40  64 bytes  Ed25519 signature (pure Ed25519, RFC 8032) over MESSAGE
    offset 104   8 bytes  signed length, u64 little-endian (= file size - 120)
    offset 112   8 bytes  end marker    b"DFPSIGND"

    MESSAGE = b"dfplugin-signature-v1\\x00" + SHA-512(file[0:signed length])

A file whose last 8 bytes are not the end marker is *unsigned*; one that ends with the end
marker but whose start marker or signed length is wrong has a *damaged* signature.

Trust policy (:func:`set_trust_policy`, :func:`trust_policy`): the trusted public keys and
whether libraries without a trusted signature may load at all (``allow_unsigned``). Unless
set through the API before the first :func:`dfplugin.load`, it comes from the environment,
read at first use: ``DFPLUGIN_TRUST_FILE`` (trust files, separated by ``os.pathsep``) and
``DFPLUGIN_ALLOW_UNSIGNED=1``. Once the host has started (a :func:`dfplugin.load` was
attempted) the policy can only be tightened.

Ed25519 verification is written here in pure Python from the RFC 8032 arithmetic (extended
twisted Edwards coordinates), so the package needs no compiled dependency: it checks
``[S]B == R + [k]A`` without the cofactor, and rejects ``S >= L``, non-canonical point
encodings and small-order points (like ed25519-dalek's ``verify_strict`` in the Rust host).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import struct
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Tuple, Union

from .errors import PluginLoadError

__all__ = [
    "START_MAGIC",
    "END_MAGIC",
    "TRAILER_SIZE",
    "MESSAGE_PREFIX",
    "KEY_PREFIX",
    "ENV_TRUST_FILE",
    "ENV_ALLOW_UNSIGNED",
    "ed25519_verify",
    "signed_message",
    "key_id",
    "parse_public_key",
    "format_public_key",
    "read_trust_file",
    "SignatureInfo",
    "read_signature",
    "TrustPolicy",
    "policy_from_env",
    "trust_policy",
    "set_trust_policy",
    "enforce",
]

log = logging.getLogger("dfplugin")

START_MAGIC = b"DFPSIG01"
END_MAGIC = b"DFPSIGND"
TRAILER_SIZE = 120
MESSAGE_PREFIX = b"dfplugin-signature-v1\x00"
KEY_PREFIX = "ed25519:"
ENV_TRUST_FILE = "DFPLUGIN_TRUST_FILE"
ENV_ALLOW_UNSIGNED = "DFPLUGIN_ALLOW_UNSIGNED"

_TRAILER = struct.Struct("<8s32s64sQ8s")
assert _TRAILER.size == TRAILER_SIZE
_CHUNK = 1 << 20  # bytes per read while hashing (libraries are ~200 MB)

# The fixes offered when a library is refused, named once so every message agrees.
_FIX_SIGN = "sign it (`dfplugin sign --key KEY {path}`) with a key this host trusts"
_FIX_TRUST = (
    "trust the signing key (list `ed25519:<hex>` in a trust file named by {env_trust}, or call "
    "dfplugin.set_trust_policy(trusted_keys=[...]) before the first dfplugin.load)"
)
_FIX_ALLOW = (
    "explicitly allow unsigned plugins ({env_allow}=1, or dfplugin.set_trust_policy(allow_unsigned=True) "
    "before the first dfplugin.load)"
)

# --------------------------------------------------------------------------------------
# Ed25519 (RFC 8032, section 5.1), verification only.

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_D2 = 2 * _D % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

# A point in extended homogeneous coordinates (X, Y, Z, T): x = X/Z, y = Y/Z, x*y = T/Z.
_Point = Tuple[int, int, int, int]
_IDENTITY: _Point = (0, 1, 1, 0)


def _recover_x(y: int, sign: int) -> Optional[int]:
    """The x coordinate with parity ``sign`` of the curve point with coordinate ``y``, or
    ``None`` when there is none (RFC 8032 5.1.3, steps 2-4)."""
    yy = y * y % _P
    u = (yy - 1) % _P
    v = (_D * yy + 1) % _P
    # candidate root x = u v^3 (u v^7)^((p-5)/8)
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    vxx = v * x * x % _P
    if vxx == u:
        pass
    elif vxx == (-u) % _P:
        x = x * _SQRT_M1 % _P
    else:
        return None  # u/v is not a square: no such point
    if x == 0 and sign == 1:
        return None  # non-canonical: -0 encoded
    if x & 1 != sign:
        x = _P - x
    return x


def _decode_point(data: bytes) -> Optional[_Point]:
    """The point a 32-byte encoding denotes, or ``None`` for a non-canonical encoding
    (``y >= p``, or x = 0 with the sign bit set) or bytes that are no curve point."""
    if len(data) != 32:
        return None
    n = int.from_bytes(data, "little")
    sign = n >> 255
    y = n & ((1 << 255) - 1)
    if y >= _P:
        return None
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def _add(p: _Point, q: _Point) -> _Point:
    """Point addition (RFC 8032 5.1.4; complete, so it also doubles)."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = t1 * _D2 * t2 % _P
    d = z1 * 2 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _double(p: _Point) -> _Point:
    """Point doubling (RFC 8032 5.1.4)."""
    x1, y1, z1, _t1 = p
    a = x1 * x1 % _P
    b = y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = a + b
    e = (h - (x1 + y1) * (x1 + y1)) % _P
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(scalar: int, p: _Point) -> _Point:
    """``[scalar]p`` by double-and-add from the most significant bit (verification handles
    public data only, so constant time is not needed)."""
    q = _IDENTITY
    for bit in bin(scalar)[2:]:
        q = _double(q)
        if bit == "1":
            q = _add(q, p)
    return q


def _is_small_order(p: _Point) -> bool:
    """Whether ``[8]p`` is the identity (the point's order divides the cofactor 8)."""
    q = _double(_double(_double(p)))
    return q[0] % _P == 0 and (q[1] - q[2]) % _P == 0


def _same_point(p: _Point, q: _Point) -> bool:
    x1, y1, z1, _ = p
    x2, y2, z2, _ = q
    return (x1 * z2 - x2 * z1) % _P == 0 and (y1 * z2 - y2 * z1) % _P == 0


_BASE_Y = 4 * pow(5, _P - 2, _P) % _P
_BASE_X = _recover_x(_BASE_Y, 0)
assert _BASE_X is not None
_BASE: _Point = (_BASE_X, _BASE_Y, 1, _BASE_X * _BASE_Y % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid pure Ed25519 signature (RFC 8032) of ``message`` by
    ``public_key``.

    Cofactorless check ``[S]B == R + [k]A`` with ``k = SHA-512(R || A || message) mod L``;
    ``S >= L``, non-canonical encodings of ``R`` or ``A``, and small-order ``R`` or ``A``
    (points whose order divides 8: such a key "signs" anything with ``R = [S]B``) are
    rejected, as ed25519-dalek's ``verify_strict`` (the Rust host) does. Never raises for
    malformed input: anything that is not a valid signature gives ``False``.
    """
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode_point(bytes(public_key))
    if a is None or _is_small_order(a):
        return False
    r_bytes = bytes(signature[:32])
    r = _decode_point(r_bytes)
    if r is None or _is_small_order(r):
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(r_bytes + bytes(public_key) + bytes(message)).digest(), "little") % _L
    return _same_point(_multiply(s, _BASE), _add(r, _multiply(k, a)))


# --------------------------------------------------------------------------------------
# Keys and trust files.

_KEY_TEXT = re.compile(r"ed25519:[0-9a-f]{64}")
_KEY_EXPECTED = f"'{KEY_PREFIX}' followed by 64 lowercase hex digits (a 32-byte Ed25519 public key)"


def key_id(public_key: bytes) -> str:
    """The short id shown in messages: the first 16 hex digits of SHA-256(public key)."""
    return hashlib.sha256(bytes(public_key)).hexdigest()[:16]


def format_public_key(public_key: bytes) -> str:
    """``ed25519:<64 lowercase hex digits>``, the text form of trust files."""
    return KEY_PREFIX + bytes(public_key).hex()


def parse_public_key(text: str) -> bytes:
    """The 32 key bytes of ``ed25519:<64 lowercase hex digits>`` (surrounding whitespace
    ignored).

    Raises:
        ValueError: anything else, or bytes that are no Ed25519 public key (not a curve
            point); the message says what was expected and what was found.
    """
    stripped = str(text).strip()
    if not _KEY_TEXT.fullmatch(stripped):
        raise ValueError(f"expected {_KEY_EXPECTED}, found {_shorten(stripped)!r}")
    key = bytes.fromhex(stripped[len(KEY_PREFIX) :])
    _require_point(key, stripped)
    return key


def _require_point(key: bytes, shown: str) -> None:
    if _decode_point(key) is None:
        raise ValueError(
            f"{_shorten(shown)!r} is not an Ed25519 public key (its 32 bytes do not encode a point of the curve); "
            "copy the key line from the signer's public key file (`dfplugin keygen` writes KEY.pub)"
        )


def _shorten(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def read_trust_file(path: "os.PathLike[str] | str") -> List[bytes]:
    """The public keys a trust file lists, in file order.

    One key per line, ``ed25519:<64 lowercase hex digits>``, optionally followed by
    whitespace and a comment; ``#`` starts a comment (to the end of the line), blank lines
    are ignored.

    Raises:
        PluginLoadError: kind ``"trust_file_invalid"``: the file cannot be read, or a line
            is malformed or holds no Ed25519 public key (the message names the file, the
            line number, what was expected and what was found).
    """
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise PluginLoadError(
            f"cannot read trust file '{p}': {e.strerror or e}. Create it with one "
            f"'{KEY_PREFIX}<hex>' public key per line (the output of `dfplugin keygen`), or fix the path "
            f"(in {ENV_TRUST_FILE} or dfplugin.set_trust_policy(trust_files=...))",
            kind="trust_file_invalid",
            path=p,
        ) from e
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PluginLoadError(
            f"trust file '{p}' is not UTF-8 text ({e}); it must list one '{KEY_PREFIX}<hex>' public key per line",
            kind="trust_file_invalid",
            path=p,
        ) from e
    keys: List[bytes] = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        token = content.split(None, 1)[0]
        if not _KEY_TEXT.fullmatch(token):
            raise PluginLoadError(
                f"trust file '{p}', line {number}: expected {_KEY_EXPECTED}, optionally followed by "
                f"whitespace and a comment; found {_shorten(line.strip())!r}. Fix or remove the line "
                "('#' starts a comment)",
                kind="trust_file_invalid",
                path=p,
            )
        key = bytes.fromhex(token[len(KEY_PREFIX) :])
        try:
            _require_point(key, token)
        except ValueError as e:
            raise PluginLoadError(f"trust file '{p}', line {number}: {e}", kind="trust_file_invalid", path=p) from e
        keys.append(key)
    return keys


# --------------------------------------------------------------------------------------
# The trailer of a library file.


def signed_message(digest: bytes) -> bytes:
    """The signed message for a file whose covered bytes have SHA-512 ``digest``."""
    return MESSAGE_PREFIX + bytes(digest)


@dataclass(frozen=True)
class SignatureInfo:
    """What the end of a library file says about its signature.

    Attributes:
        state: ``"unsigned"`` (no end marker), ``"valid"`` (the signature covers the file's
            bytes), ``"invalid"`` (a well-formed trailer whose signature does not match:
            the file changed after signing) or ``"damaged"`` (ends with the end marker but
            the trailer is malformed).
        public_key: the signer's key (``valid`` and ``invalid``), else ``None``.
        signed_length: the bytes covered (``valid`` and ``invalid``), else ``None``.
        detail: why the trailer is damaged (``damaged`` only).
    """

    state: str
    public_key: Optional[bytes] = None
    signed_length: Optional[int] = None
    detail: str = ""

    @property
    def key_id(self) -> Optional[str]:
        """Short id of the signing key, when the trailer names one."""
        return key_id(self.public_key) if self.public_key is not None else None

    def report(self, policy: Optional["TrustPolicy"] = None) -> Dict[str, Any]:
        """``{"state", "key_id", "trusted"}`` (``trusted``: the trailer's key is one of
        ``policy``'s trusted keys; the current policy when ``None``)."""
        policy = policy if policy is not None else trust_policy()
        trusted = self.public_key is not None and policy.trusts(self.public_key)
        return {"state": self.state, "key_id": self.key_id, "trusted": trusted}


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read_signature(path: "os.PathLike[str] | str") -> SignatureInfo:
    """Reads and checks the signature trailer of the file at ``path`` (streaming SHA-512 of
    the covered bytes, 1 MiB at a time). Does not consult the trust policy.

    Raises:
        PluginLoadError: kind ``"not_a_regular_file"`` when ``path`` is not (or no longer)
            a regular file; ``"unreadable"`` when it cannot be read.
    """
    p = os.fspath(path)
    try:
        # O_NONBLOCK: never hang on a FIFO swapped in after the caller's stat check.
        fd = os.open(p, _OPEN_FLAGS)
    except OSError as e:
        raise PluginLoadError(f"cannot open plugin library '{p}' to check its signature: {e.strerror or e}", kind="unreadable", path=p) from e
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise PluginLoadError(
                f"'{p}' is not a regular file (it changed while being opened); a plugin must be a regular .so file",
                kind="not_a_regular_file",
                path=p,
            )
        try:
            return _read_signature(f, st.st_size, p)
        except OSError as e:
            raise PluginLoadError(f"cannot read plugin library '{p}' to check its signature: {e}", kind="unreadable", path=p) from e


def _read_exactly(f: Any, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = b""
    while len(data) < size:
        chunk = f.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _read_signature(f: Any, size: int, path: str) -> SignatureInfo:
    if size < len(END_MAGIC) or _read_exactly(f, size - len(END_MAGIC), len(END_MAGIC)) != END_MAGIC:
        return SignatureInfo("unsigned")
    if size < TRAILER_SIZE:
        return SignatureInfo(
            "damaged", detail=f"the file has {size} bytes, fewer than the {TRAILER_SIZE}-byte signature trailer"
        )
    trailer = _read_exactly(f, size - TRAILER_SIZE, TRAILER_SIZE)
    if len(trailer) != TRAILER_SIZE:
        return SignatureInfo("damaged", detail="the file shrank while its trailer was read")
    start, public_key, signature, signed_length, _end = _TRAILER.unpack(trailer)
    if start != START_MAGIC:
        return SignatureInfo(
            "damaged",
            detail=f"the trailer starts with {start!r}, expected {START_MAGIC!r} ({TRAILER_SIZE} bytes before the end)",
        )
    if signed_length != size - TRAILER_SIZE:
        return SignatureInfo(
            "damaged",
            detail=f"the trailer covers {signed_length} bytes, but the file has {size - TRAILER_SIZE} bytes before it",
        )
    digest = hashlib.sha512()
    f.seek(0)
    remaining = signed_length
    while remaining > 0:
        chunk = f.read(min(_CHUNK, remaining))
        if not chunk:
            return SignatureInfo("damaged", detail="the file shrank while it was hashed")
        digest.update(chunk)
        remaining -= len(chunk)
    valid = ed25519_verify(public_key, signed_message(digest.digest()), signature)
    return SignatureInfo("valid" if valid else "invalid", public_key=public_key, signed_length=signed_length)


# --------------------------------------------------------------------------------------
# The trust policy.


@dataclass(frozen=True)
class TrustPolicy:
    """Which plugin libraries this process loads (see :func:`set_trust_policy`).

    Attributes:
        allow_unsigned: load libraries without a trusted signature too (unsigned ones, and
            validly signed ones whose key is not trusted, with a warning). A *broken*
            signature is refused regardless.
        trusted_keys: the trusted Ed25519 public keys (32 bytes each).
        source: where the policy came from, for messages (``"environment"`` or
            ``"dfplugin.set_trust_policy"``).
    """

    allow_unsigned: bool = False
    trusted_keys: FrozenSet[bytes] = field(default_factory=frozenset)
    source: str = "environment"

    @property
    def trusted_key_ids(self) -> Tuple[str, ...]:
        """Short ids of the trusted keys, sorted."""
        return tuple(sorted(key_id(k) for k in self.trusted_keys))

    def trusts(self, public_key: bytes) -> bool:
        """Whether ``public_key`` is one of the trusted keys."""
        return bytes(public_key) in self.trusted_keys

    def __repr__(self) -> str:
        return f"TrustPolicy(allow_unsigned={self.allow_unsigned}, trusted_key_ids={self.trusted_key_ids!r}, source={self.source!r})"


def policy_from_env(environ: Optional[Dict[str, str]] = None) -> TrustPolicy:
    """The policy the environment describes: keys from the trust files in
    ``DFPLUGIN_TRUST_FILE`` (separated by ``os.pathsep``), ``allow_unsigned`` from
    ``DFPLUGIN_ALLOW_UNSIGNED`` (``1``, ``true``, ``yes``; ``0``, ``false``, ``no`` or unset:
    not allowed; any case).

    Raises:
        PluginLoadError: ``"trust_file_invalid"`` (a trust file is unreadable or malformed)
            or ``"trust_policy_invalid"`` (another value of ``DFPLUGIN_ALLOW_UNSIGNED``).
    """
    env = os.environ if environ is None else environ
    flag = env.get(ENV_ALLOW_UNSIGNED, "").strip().lower()
    if flag not in _TRUE_WORDS + _FALSE_WORDS:
        raise PluginLoadError(
            f"{ENV_ALLOW_UNSIGNED}={env.get(ENV_ALLOW_UNSIGNED)!r} is not understood; set it to 1 to allow unsigned "
            "plugin libraries, or to 0 (or unset it) to load only libraries signed by a trusted key",
            kind="trust_policy_invalid",
        )
    keys: set = set()
    for entry in env.get(ENV_TRUST_FILE, "").split(os.pathsep):
        if entry.strip():
            keys.update(read_trust_file(entry.strip()))
    return TrustPolicy(allow_unsigned=flag in _TRUE_WORDS, trusted_keys=frozenset(keys), source="environment")


_TRUE_WORDS = ("1", "true", "yes")
_FALSE_WORDS = ("", "0", "false", "no")

_lock = threading.Lock()
_policy: Optional[TrustPolicy] = None  # None until first use: then read from the environment
_started = False  # a load() was attempted: from now on the policy may only tighten


def _current_locked() -> TrustPolicy:
    global _policy
    if _policy is None:
        _policy = policy_from_env()
        log.debug("trust policy from the environment: %r", _policy)
    return _policy


def trust_policy() -> TrustPolicy:
    """The current trust policy (read from the environment at first use unless
    :func:`set_trust_policy` was called first)."""
    with _lock:
        return _current_locked()


def policy_for_load() -> TrustPolicy:
    """The policy a :func:`dfplugin.load` applies; marks the host as started, after which
    :func:`set_trust_policy` may only tighten the policy."""
    global _started
    with _lock:
        policy = _current_locked()
        _started = True
        return policy


def _key_bytes(item: Any) -> bytes:
    if isinstance(item, (bytes, bytearray, memoryview)):
        data = bytes(item)
        if len(data) != 32:
            raise ValueError(f"a trusted key given as bytes must be the 32-byte Ed25519 public key, got {len(data)} bytes")
        return data
    if isinstance(item, str):
        try:
            return parse_public_key(item)
        except ValueError as e:
            raise ValueError(f"trusted key {_shorten(item)!r} is malformed: {e}") from e
    raise TypeError(f"a trusted key must be 'ed25519:<hex>' text or 32 bytes, got {type(item).__name__}")


def _iterable(value: Any, what: str) -> Iterable[Any]:
    if isinstance(value, (str, bytes, bytearray, os.PathLike)):
        raise TypeError(f"{what} must be a list (or other iterable), not a single {type(value).__name__}; wrap it in [...]")
    try:
        return list(value)
    except TypeError as e:
        raise TypeError(f"{what} must be a list (or other iterable), got {type(value).__name__}") from e


def set_trust_policy(
    trusted_keys: Optional[Iterable[Union[str, bytes]]] = None,
    trust_files: Optional[Iterable["os.PathLike[str] | str"]] = None,
    allow_unsigned: bool = False,
) -> TrustPolicy:
    """Sets which plugin libraries :func:`dfplugin.load` accepts, replacing the policy from
    the environment (``DFPLUGIN_TRUST_FILE``, ``DFPLUGIN_ALLOW_UNSIGNED``) entirely.

    Before the first :func:`dfplugin.load` the policy may be set freely. Once a load was
    attempted, a call may only *tighten* it: ``allow_unsigned`` may go from ``True`` to
    ``False`` (not back) and the trusted keys may shrink (not grow). Thread-safe.

    Args:
        trusted_keys: public keys as ``"ed25519:<64 hex digits>"`` text or 32 bytes.
        trust_files: trust files whose keys are trusted too (one ``ed25519:<hex>`` per line,
            ``#`` comments).
        allow_unsigned: also load unsigned libraries, and validly signed ones by untrusted
            keys (with a warning). Libraries whose signature is broken are always refused.

    Returns:
        The new policy.

    Raises:
        PluginLoadError: ``kind="trust_policy_loosened"`` when the host has started and the
            call would loosen the policy (the policy is left unchanged), or
            ``"trust_file_invalid"`` for an unreadable or malformed trust file.
        ValueError, TypeError: a malformed key or argument.
    """
    global _policy
    if not isinstance(allow_unsigned, bool):
        raise TypeError(f"allow_unsigned must be True or False, got {type(allow_unsigned).__name__} {allow_unsigned!r}")
    keys: set = set()
    if trusted_keys is not None:
        keys.update(_key_bytes(k) for k in _iterable(trusted_keys, "trusted_keys"))
    if trust_files is not None:
        for path in _iterable(trust_files, "trust_files"):
            keys.update(read_trust_file(path))
    new = TrustPolicy(allow_unsigned=allow_unsigned, trusted_keys=frozenset(keys), source="dfplugin.set_trust_policy")
    with _lock:
        if _started:
            current = _current_locked()
            loosened: List[str] = []
            if new.allow_unsigned and not current.allow_unsigned:
                loosened.append("allow_unsigned from False to True")
            added = sorted(key_id(k) for k in new.trusted_keys - current.trusted_keys)
            if added:
                loosened.append(f"trusting key(s) {', '.join(added)} that the current policy does not trust")
            if loosened:
                raise PluginLoadError(
                    f"dfplugin.set_trust_policy refused: it would loosen the trust policy ({'; '.join(loosened)}), "
                    f"but dfplugin.load has already run under {current!r}, and after the first dfplugin.load "
                    "the policy may only be tightened. The policy is unchanged. Set the looser policy before the "
                    f"first load (or in the environment: {ENV_TRUST_FILE}, {ENV_ALLOW_UNSIGNED}=1)",
                    kind="trust_policy_loosened",
                )
        _policy = new
    log.info("trust policy set: %r", new)
    return new


def enforce(info: SignatureInfo, policy: TrustPolicy, path: str, *, warn: bool = True) -> None:
    """Refuses a library whose signature ``policy`` does not accept.

    * a broken signature (``invalid`` or ``damaged``): refused always
      (``kind="signature_invalid"``);
    * ``unsigned``: refused unless ``policy.allow_unsigned`` (``kind="unsigned"``);
    * ``valid`` by a trusted key: accepted;
    * ``valid`` by another key: refused (``kind="untrusted_key"``) unless
      ``policy.allow_unsigned``, then accepted with one warning naming the key (when
      ``warn``).

    Raises:
        PluginLoadError: the message names the file, the key id and the fixes.
    """
    if info.state == "valid" and info.public_key is not None and policy.trusts(info.public_key):
        return
    sign = _FIX_SIGN.format(path=path)
    trust = _FIX_TRUST.format(env_trust=ENV_TRUST_FILE)
    allow = _FIX_ALLOW.format(env_allow=ENV_ALLOW_UNSIGNED)
    if info.state == "invalid":
        raise PluginLoadError(
            f"plugin library '{path}' is signed by key {info.key_id}, but the signature does not match the file's "
            f"contents (its first {info.signed_length} bytes): the file was changed after it was signed (damaged, "
            "or tampered with). A library with a broken signature is refused whatever the trust policy, "
            f"{ENV_ALLOW_UNSIGNED} included. Rebuild it and sign it again (`dfplugin sign --key KEY {path}`), or "
            "get an intact copy",
            kind="signature_invalid",
            path=path,
        )
    if info.state == "damaged":
        raise PluginLoadError(
            f"plugin library '{path}' ends with the signature end marker {END_MAGIC!r}, but its "
            f"{TRAILER_SIZE}-byte signature trailer is damaged: {info.detail}. A library with a broken signature is "
            f"refused whatever the trust policy, {ENV_ALLOW_UNSIGNED} included. Rebuild it and sign it again "
            f"(`dfplugin sign --key KEY {path}`), or get an intact copy",
            kind="signature_invalid",
            path=path,
        )
    if info.state == "unsigned":
        if policy.allow_unsigned:
            log.debug("loading unsigned plugin library %s (unsigned libraries are allowed)", path)
            return
        raise PluginLoadError(
            f"plugin library '{path}' is not signed (it has no dfplugin signature trailer), and this host loads only "
            f"libraries signed by a trusted key ({_trusted_summary(policy)}). To load it: {sign}; {trust}; or "
            f"{allow}",
            kind="unsigned",
            path=path,
        )
    # valid, by a key that is not trusted
    assert info.public_key is not None
    text = format_public_key(info.public_key)
    if policy.allow_unsigned:
        if warn:
            log.warning(
                "plugin library %s is signed by key %s (%s), which is not trusted; loading it anyway because unsigned "
                "plugins are allowed (%s=1 / allow_unsigned=True)",
                path,
                info.key_id,
                text,
                ENV_ALLOW_UNSIGNED,
            )
        return
    raise PluginLoadError(
        f"plugin library '{path}' is signed by key {info.key_id} ({text}), which this host does not trust "
        f"({_trusted_summary(policy)}). If you trust its signer, add the line '{text}' to a trust file named by "
        f"{ENV_TRUST_FILE}, or call dfplugin.set_trust_policy(trusted_keys=['{text}']) before the first "
        f"dfplugin.load; otherwise {sign}, or {allow}",
        kind="untrusted_key",
        path=path,
    )


def _trusted_summary(policy: TrustPolicy) -> str:
    if not policy.trusted_keys:
        if policy.source == "environment":
            return f"no key is trusted: {ENV_TRUST_FILE} names no trust file with keys"
        return "no key is trusted: dfplugin.set_trust_policy was given none"
    return f"trusted key ids: {', '.join(policy.trusted_key_ids)}"
