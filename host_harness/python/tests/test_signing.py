"""Signed plugins: Ed25519 verification (RFC 8032 vectors, an independent signer and the
``cryptography`` package as oracles), the 120-byte trailer, trust files, and the trust
policy enforced by ``dfplugin.load``.

The trust policy is process-global and may only tighten once a load was attempted, and this
test process runs with ``DFPLUGIN_ALLOW_UNSIGNED=1`` (conftest.py). Every test of what
``load`` accepts or refuses therefore runs in a fresh child Python process (bounded by a
timeout), started without ``DFPLUGIN_ALLOW_UNSIGNED`` / ``DFPLUGIN_TRUST_FILE`` unless the
test sets them. Libraries are copied to ``tmp_path`` before signing; the originals are
never modified.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

import dfplugin
from conftest import REPO
from dfplugin import signing
from signing_support import SigningKey, sign_file, strip_signature, write_trust_file

#: Upper bound for one child process (imports datafusion, hashes a ~200 MB library).
CHILD_TIMEOUT = 300

# RFC 8032, section 7.1: TEST 1 (empty message) and TEST 2 (one byte, 0x72).
RFC8032_VECTORS = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        id="rfc8032-test1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        id="rfc8032-test2",
    ),
]

KEY_A = SigningKey.from_label("dfplugin tests: key A")
KEY_B = SigningKey.from_label("dfplugin tests: key B")
KEY_C = SigningKey.from_label("dfplugin tests: key C")

_L = 2**252 + 27742317777372353535851937790883648493
_P = 2**255 - 19


# ---------------------------------------------------------------------------------------
# Ed25519


@pytest.mark.parametrize("secret, public, message, signature", RFC8032_VECTORS)
def test_rfc8032_vectors_verify(secret: str, public: str, message: str, signature: str) -> None:
    pk, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert signing.ed25519_verify(pk, msg, sig)
    assert not signing.ed25519_verify(pk, msg + b"\x00", sig)
    for i in (0, 31, 32, 63):  # a bit of R, of S
        bad = bytearray(sig)
        bad[i] ^= 0x01
        assert not signing.ed25519_verify(pk, msg, bytes(bad)), f"flipped bit in signature byte {i} accepted"
    assert not signing.ed25519_verify(KEY_A.public_key, msg, sig)  # another key
    assert not signing.ed25519_verify(pk[:31], msg, sig) and not signing.ed25519_verify(pk, msg, sig[:63])


@pytest.mark.parametrize("secret, public, message, signature", RFC8032_VECTORS)
def test_rfc8032_vectors_signer(secret: str, public: str, message: str, signature: str) -> None:
    key = SigningKey(bytes.fromhex(secret))
    assert key.public_key.hex() == public
    assert key.sign(bytes.fromhex(message)).hex() == signature


def test_signature_with_unreduced_s_is_rejected() -> None:
    _secret, public, message, signature = RFC8032_VECTORS[0].values
    sig = bytes.fromhex(signature)
    s = int.from_bytes(sig[32:], "little")
    # S + L satisfies the group equation too (L is the base point's order): only the range check rejects it.
    malleated = sig[:32] + (s + _L).to_bytes(32, "little")
    assert s + _L < 2**256
    assert not signing.ed25519_verify(bytes.fromhex(public), bytes.fromhex(message), malleated)


def _large_order_point_with_small_y() -> int:
    """A y < 19 of a curve point of large order: y + p is then a non-canonical alias of it."""
    for y in range(2, 19):
        point = signing._decode_point(y.to_bytes(32, "little"))
        if point is not None and not signing._is_small_order(point):
            return y
    raise AssertionError("no large-order point with y < 19")


def test_non_canonical_encodings_are_rejected() -> None:
    identity = (1).to_bytes(32, "little")  # x = 0, y = 1
    assert signing._decode_point(identity) is not None
    assert signing._decode_point((1 + _P).to_bytes(32, "little")) is None  # y >= p
    assert signing._decode_point((1 | 1 << 255).to_bytes(32, "little")) is None  # x = 0 with the sign bit set
    assert signing._decode_point((2**255 - 1).to_bytes(32, "little")) is None
    y = _large_order_point_with_small_y()
    canonical, alias = y.to_bytes(32, "little"), (y + _P).to_bytes(32, "little")
    assert signing._decode_point(canonical) is not None and signing._decode_point(alias) is None
    _secret, _public, message, signature = RFC8032_VECTORS[0].values
    sig = bytes.fromhex(signature)
    assert not signing.ed25519_verify(alias, b"", sig)
    assert not signing.ed25519_verify(bytes.fromhex(_public), b"", alias + sig[32:])


def test_small_order_points_are_rejected() -> None:
    """With A = R = a small-order point and S = 0, the cofactorless equation [S]B == R + [k]A
    holds for many messages: such "signatures" are refused (ed25519-dalek verify_strict)."""
    identity = (1).to_bytes(32, "little")
    zero = bytes(32)
    assert not signing.ed25519_verify(identity, b"m", identity + zero)
    order_4 = (0).to_bytes(32, "little")  # y = 0: x = sqrt(-1), order 4
    point = signing._decode_point(order_4)
    assert point is not None and signing._is_small_order(point)
    assert not signing.ed25519_verify(order_4, b"m", identity + zero)
    assert not signing._is_small_order(signing._BASE)


def test_bytes_that_are_no_point_are_rejected() -> None:
    # y = 2: (y^2 - 1) / (d y^2 + 1) is not a square mod p, so there is no such point.
    no_point = (2).to_bytes(32, "little")
    assert signing._decode_point(no_point) is None
    assert not signing.ed25519_verify(no_point, b"", bytes(64))


def test_cross_check_with_cryptography_package() -> None:
    crypto = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519", reason="the cryptography package (a moto dependency) is the third oracle")
    from cryptography.hazmat.primitives import serialization

    for i in range(12):
        seed = hashlib.sha256(b"cross-check %d" % i).digest()
        message = hashlib.sha512(b"message %d" % i).digest() * i
        theirs = crypto.Ed25519PrivateKey.from_private_bytes(seed)
        public = theirs.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ours = SigningKey(seed)
        assert ours.public_key == public
        assert ours.sign(message) == theirs.sign(message)  # Ed25519 is deterministic
        assert signing.ed25519_verify(public, message, theirs.sign(message))
        theirs.public_key().verify(ours.sign(message), message)  # raises when invalid


# ---------------------------------------------------------------------------------------
# Keys and trust files


def test_key_text_and_id() -> None:
    assert signing.key_id(KEY_A.public_key) == hashlib.sha256(KEY_A.public_key).hexdigest()[:16] == KEY_A.key_id
    assert signing.format_public_key(KEY_A.public_key) == KEY_A.public_text
    assert signing.parse_public_key(KEY_A.public_text) == KEY_A.public_key
    assert signing.parse_public_key("  " + KEY_A.public_text + "\n") == KEY_A.public_key
    hex_part = KEY_A.public_key.hex()
    for bad in ("ed25519:" + hex_part.upper(), hex_part, "ed25519:" + hex_part[:-2], "ed448:" + hex_part, "ed25519:" + hex_part + "00"):
        with pytest.raises(ValueError) as e:
            signing.parse_public_key(bad)
        assert "ed25519:" in str(e.value) and "64 lowercase hex digits" in str(e.value)


def test_trust_file_parsing(tmp_path: Path) -> None:
    path = tmp_path / "trusted_keys"
    path.write_text(
        "# build machines\n\n"
        f"{KEY_A.public_text}\n"
        f"   {KEY_B.public_text}\tci signer (2025)\n"
        "   # indented comment\n"
        f"{KEY_C.public_text}  # dfplugin key {KEY_C.key_id}\n"  # as `dfplugin keygen` writes KEY.pub
        f"{KEY_A.public_text}#no space before the comment\n"
        "\t\n",
        encoding="utf-8",
    )
    assert signing.read_trust_file(path) == [KEY_A.public_key, KEY_B.public_key, KEY_C.public_key, KEY_A.public_key]
    empty = tmp_path / "empty"
    empty.write_text("# nothing trusted yet\n", encoding="utf-8")
    assert signing.read_trust_file(empty) == []


@pytest.mark.parametrize(
    "line",
    [
        "ed25519:" + "AB" * 32,  # uppercase
        "ed25519:" + "ab" * 31,  # short
        "ab" * 32,  # no prefix
        "ed25519:" + "ab" * 32 + "cd",  # long
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA",
    ],
)
def test_malformed_trust_file_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "keys.trust"
    path.write_text(f"# header\n{KEY_A.public_text}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(dfplugin.PluginLoadError) as e:
        signing.read_trust_file(path)
    err = e.value
    assert err.kind == "trust_file_invalid" and err.path == str(path)
    msg = str(err)
    assert str(path) in msg and "line 4" in msg, msg
    assert "ed25519:" in msg and "64 lowercase hex digits" in msg, msg  # what was expected
    assert line[:40] in msg, msg  # what was found


def test_trust_file_key_must_be_a_curve_point(tmp_path: Path) -> None:
    not_a_point = "ed25519:" + (2).to_bytes(32, "little").hex()
    path = tmp_path / "keys.trust"
    path.write_text(f"{not_a_point}\n", encoding="utf-8")
    with pytest.raises(dfplugin.PluginLoadError) as e:
        signing.read_trust_file(path)
    assert e.value.kind == "trust_file_invalid" and "line 1" in str(e.value) and "not an Ed25519 public key" in str(e.value)
    with pytest.raises(ValueError):
        signing.parse_public_key(not_a_point)


def test_unreadable_trust_file(tmp_path: Path) -> None:
    with pytest.raises(dfplugin.PluginLoadError) as e:
        signing.read_trust_file(tmp_path / "missing.trust")
    assert e.value.kind == "trust_file_invalid" and str(tmp_path / "missing.trust") in str(e.value)


def test_policy_from_env(tmp_path: Path) -> None:
    one = write_trust_file(tmp_path / "one", [KEY_A])
    two = write_trust_file(tmp_path / "two", [KEY_B, KEY_A])
    env = {"DFPLUGIN_TRUST_FILE": f"{one}{os.pathsep}{os.pathsep}{two}"}
    policy = signing.policy_from_env(env)
    assert policy.trusted_keys == {KEY_A.public_key, KEY_B.public_key} and not policy.allow_unsigned
    assert policy.trusted_key_ids == tuple(sorted([KEY_A.key_id, KEY_B.key_id]))
    assert signing.policy_from_env({}) == signing.TrustPolicy()
    for word in ("1", "true", "YES", " 1 "):
        assert signing.policy_from_env({"DFPLUGIN_ALLOW_UNSIGNED": word}).allow_unsigned, word
    for word in ("0", "", "false", "No"):
        assert not signing.policy_from_env({"DFPLUGIN_ALLOW_UNSIGNED": word}).allow_unsigned, word
    with pytest.raises(dfplugin.PluginLoadError) as e:
        signing.policy_from_env({"DFPLUGIN_ALLOW_UNSIGNED": "on"})
    assert e.value.kind == "trust_policy_invalid" and "DFPLUGIN_ALLOW_UNSIGNED" in str(e.value)
    with pytest.raises(dfplugin.PluginLoadError) as e:
        signing.policy_from_env({"DFPLUGIN_TRUST_FILE": str(tmp_path / "nope")})
    assert e.value.kind == "trust_file_invalid"


# ---------------------------------------------------------------------------------------
# The trailer (any file: the trailer does not care what it is appended to)


@pytest.fixture()
def blob(tmp_path: Path) -> Path:
    """A 3 MiB + 5 bytes file (several hashing chunks, not chunk-aligned)."""
    p = tmp_path / "blob.bin"
    p.write_bytes(hashlib.sha512(b"seed").digest() * (3 * 16384) + b"tail!")
    return p


def test_trailer_layout_and_states(blob: Path, tmp_path: Path) -> None:
    original = blob.read_bytes()
    assert signing.read_signature(blob) == signing.SignatureInfo("unsigned")
    signed = sign_file(blob, KEY_A, tmp_path / "signed.bin")
    data = signed.read_bytes()
    assert blob.read_bytes() == original  # the source is untouched
    assert len(data) == len(original) + 120 and data[: len(original)] == original
    trailer = data[-120:]
    assert trailer[:8] == b"DFPSIG01" and trailer[-8:] == b"DFPSIGND"
    assert trailer[8:40] == KEY_A.public_key
    assert struct.unpack("<Q", trailer[104:112])[0] == len(original)
    message = b"dfplugin-signature-v1\x00" + hashlib.sha512(original).digest()
    assert len(message) == 22 + 64
    assert signing.ed25519_verify(KEY_A.public_key, message, trailer[40:104])
    info = signing.read_signature(signed)
    assert (info.state, info.public_key, info.signed_length, info.key_id) == ("valid", KEY_A.public_key, len(original), KEY_A.key_id)

    # Re-signing replaces the trailer (another key; still exactly one trailer).
    resigned = sign_file(signed, KEY_B, tmp_path / "resigned.bin")
    assert resigned.stat().st_size == len(data)
    assert signing.read_signature(resigned).public_key == KEY_B.public_key
    assert strip_signature(resigned.read_bytes()) == original


def _variant(tmp_path: Path, data: bytes, name: str) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _code_offset(path: Path, fraction: float = 0.5) -> int:
    """An offset near ``fraction`` of the library's size outside its ELF headers and its
    embedded manifest, so that changing that byte leaves ``inspect`` able to read the file."""
    from dfplugin.elf import _sections

    with open(path, "rb") as f:
        sections = _sections(f, str(path))
        f.seek(0x28)
        (shoff,) = struct.unpack("<Q", f.read(8))
    _type, at, size = sections[".dfplugin_manifest"]
    offset = int(path.stat().st_size * fraction)
    if at - 16 <= offset < at + size + 16:
        offset = at + size + 16
    assert 4096 <= offset < shoff, (offset, shoff)
    return offset


def test_changed_bytes_break_the_signature(blob: Path, tmp_path: Path) -> None:
    data = bytearray(sign_file(blob, KEY_A, tmp_path / "signed.bin").read_bytes())
    for offset, what in ((len(data) // 2, "middle"), (0, "first byte"), (len(data) - 121, "last signed byte"), (len(data) - 70, "signature")):
        changed = bytearray(data)
        changed[offset] ^= 0x40
        info = signing.read_signature(_variant(tmp_path, bytes(changed), "changed.bin"))
        assert info.state == "invalid", what
        assert info.key_id == KEY_A.key_id
    # another key in the trailer (the signature is A's): invalid
    swapped = bytearray(data)
    swapped[-112:-80] = KEY_B.public_key
    assert signing.read_signature(_variant(tmp_path, bytes(swapped), "swapped.bin")).state == "invalid"


def test_damaged_trailers(blob: Path, tmp_path: Path) -> None:
    data = sign_file(blob, KEY_A, tmp_path / "signed.bin").read_bytes()
    bad_start = data[:-120] + b"DFPSIG02" + data[-112:]
    info = signing.read_signature(_variant(tmp_path, bad_start, "bad_start.bin"))
    assert info.state == "damaged" and "DFPSIG01" in info.detail and info.key_id is None
    wrong_length = data[:-16] + struct.pack("<Q", len(data) - 119) + data[-8:]
    info = signing.read_signature(_variant(tmp_path, wrong_length, "wrong_length.bin"))
    assert info.state == "damaged" and str(len(data) - 119) in info.detail
    # a trailer moved to the end of another file keeps the old length: damaged
    assert signing.read_signature(_variant(tmp_path, b"x" + data, "shifted.bin")).state == "damaged"
    assert signing.read_signature(_variant(tmp_path, b"DFPSIGND", "tiny.bin")).state == "damaged"
    assert signing.read_signature(_variant(tmp_path, b"", "empty.bin")).state == "unsigned"
    # bytes after the trailer: the file no longer ends with the end marker, so it is unsigned
    assert signing.read_signature(_variant(tmp_path, data + b"\n", "appended.bin")).state == "unsigned"


def test_enforce_decisions(blob: Path, tmp_path: Path) -> None:
    signed_a = sign_file(blob, KEY_A, tmp_path / "a.bin")
    valid_a = signing.read_signature(signed_a)
    unsigned = signing.SignatureInfo("unsigned")
    changed = bytearray(signed_a.read_bytes())
    changed[100] ^= 1
    invalid = signing.read_signature(_variant(tmp_path, bytes(changed), "changed.bin"))
    damaged = signing.SignatureInfo("damaged", detail="test")
    strict = signing.TrustPolicy(trusted_keys=frozenset({KEY_A.public_key}))
    trust_b = signing.TrustPolicy(trusted_keys=frozenset({KEY_B.public_key}))
    lax = signing.TrustPolicy(allow_unsigned=True)

    def kind(info: signing.SignatureInfo, policy: signing.TrustPolicy) -> Optional[str]:
        try:
            signing.enforce(info, policy, "/x/libp.so", warn=False)
        except dfplugin.PluginLoadError as e:
            assert "/x/libp.so" in str(e)
            return e.kind
        return None

    assert kind(valid_a, strict) is None
    assert kind(valid_a, trust_b) == "untrusted_key"
    assert kind(valid_a, lax) is None
    assert kind(unsigned, strict) == "unsigned" and kind(unsigned, lax) is None
    for policy in (strict, trust_b, lax, signing.TrustPolicy(allow_unsigned=True, trusted_keys=frozenset({KEY_A.public_key}))):
        assert kind(invalid, policy) == "signature_invalid"
        assert kind(damaged, policy) == "signature_invalid"


# ---------------------------------------------------------------------------------------
# Child processes: what load() accepts under each policy

_PRELUDE = textwrap.dedent(
    """
    import json, logging, os, sys
    import dfplugin

    warnings = []

    class _Collect(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())

    logging.getLogger("dfplugin").addHandler(_Collect())

    def attempt(fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except dfplugin.PluginError as e:
            return {"ok": False, "kind": e.kind, "message": str(e)}
        return {"ok": True}

    def mapped(path):
        with open("/proc/self/maps") as f:
            return os.path.realpath(path) in f.read()

    def policy():
        p = dfplugin.trust_policy()
        return {"allow_unsigned": p.allow_unsigned, "trusted_key_ids": list(p.trusted_key_ids)}

    out = {}
    """
)


def run_child(code: str, env: Optional[Dict[str, str]] = None, timeout: float = CHILD_TIMEOUT) -> Dict[str, Any]:
    """Runs ``code`` (after a prelude defining ``attempt``, ``mapped``, ``policy``, ``warnings``
    and the dict ``out``) in a fresh interpreter; returns ``out`` (printed as JSON)."""
    child_env = {k: v for k, v in os.environ.items() if k not in (signing.ENV_ALLOW_UNSIGNED, signing.ENV_TRUST_FILE)}
    child_env["PYTHONPATH"] = str(REPO / "host_harness" / "python") + os.pathsep + os.environ.get("PYTHONPATH", "")
    child_env.update(env or {})
    script = _PRELUDE + textwrap.dedent(code) + "\nprint('@@OUT@@' + json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=child_env, timeout=timeout)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("@@OUT@@")]
    assert lines, f"child printed no result:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("@@OUT@@") :])


@pytest.fixture(scope="module")
def signed_real_lib(lib_path: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the real plugin library signed by key A (the original is not modified)."""
    return sign_file(lib_path, KEY_A, tmp_path_factory.mktemp("signed") / "libcodeanatomy_plugin.so")


@pytest.fixture()
def good_copy(fixture_lib) -> Path:
    """The unsigned fixture plugin libfixture_good.so itself (only read, never modified)."""
    return Path(fixture_lib("good"))


@pytest.fixture(scope="module")
def signed_good_a(fixture_lib, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of libfixture_good.so signed by key A (tests copy it again before changing it)."""
    return sign_file(fixture_lib("good"), KEY_A, tmp_path_factory.mktemp("signed_a") / "libsigned_a.so")


@pytest.fixture(scope="module")
def signed_good_b(fixture_lib, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of libfixture_good.so signed by key B."""
    return sign_file(fixture_lib("good"), KEY_B, tmp_path_factory.mktemp("signed_b") / "libsigned_b.so")


def test_unsigned_is_refused_by_default(lib_path: str, tmp_path: Path) -> None:
    text_file = tmp_path / "libtext.so"
    text_file.write_text("not even ELF\n")
    out = run_child(
        f"""
        out["policy"] = policy()
        out["load"] = attempt(dfplugin.load, {lib_path!r})
        out["mapped"] = mapped({lib_path!r})
        out["text"] = attempt(dfplugin.load, {str(text_file)!r})
        out["inspect"] = dfplugin.inspect({lib_path!r})["signature"]
        """
    )
    assert out["policy"] == {"allow_unsigned": False, "trusted_key_ids": []}
    load = out["load"]
    assert not load["ok"] and load["kind"] == "unsigned", load
    msg = load["message"]
    assert lib_path in msg
    for fix in ("dfplugin sign --key KEY", "DFPLUGIN_TRUST_FILE", "dfplugin.set_trust_policy(trusted_keys=", "DFPLUGIN_ALLOW_UNSIGNED=1", "allow_unsigned=True"):
        assert fix in msg, f"{fix!r} missing from: {msg}"
    assert not out["mapped"], "a refused library was opened"
    # Refused before the manifest is parsed: a file that is not even ELF is refused for its signature.
    assert out["text"]["kind"] == "unsigned", out["text"]
    assert out["inspect"] == {"state": "unsigned", "key_id": None, "trusted": False}


def test_unsigned_is_allowed_with_env(good_copy: Path) -> None:
    out = run_child(
        f"""
        import datafusion
        out["policy"] = policy()
        plugin = dfplugin.load({str(good_copy)!r})
        ctx = datafusion.SessionContext()
        plugin.install(ctx)
        out["echo"] = ctx.sql("SELECT fixture_echo(CAST(5 AS BIGINT)) AS v").to_pylist()
        out["signature"] = plugin.signature
        out["warnings"] = warnings
        """,
        env={"DFPLUGIN_ALLOW_UNSIGNED": "1"},
    )
    assert out["policy"]["allow_unsigned"] is True
    assert out["echo"] == [{"v": 5}]
    assert out["signature"] == {"state": "unsigned", "key_id": None, "trusted": False}
    assert out["warnings"] == []


def test_signed_by_trusted_key_loads_and_works(plugin: dfplugin.Plugin, signed_real_lib: Path, tmp_path: Path) -> None:
    expected = plugin.session_context().sql("SELECT stable_hash64('a') AS h").to_pylist()
    empty = tmp_path / "empty.trust"
    empty.write_text("# no keys\n")
    trust = write_trust_file(tmp_path / "keys.trust", [KEY_B, KEY_A])
    code = f"""
        out["policy"] = policy()
        out["inspect"] = dfplugin.inspect({str(signed_real_lib)!r})["signature"]
        plugin = dfplugin.load({str(signed_real_lib)!r})
        out["warnings"] = list(warnings)  # (install warns about capabilities datafusion-python lacks)
        ctx = plugin.session_context()
        out["rows"] = ctx.sql("SELECT stable_hash64('a') AS h").to_pylist()
        out["signature"] = plugin.signature
        """
    out = run_child(code, env={"DFPLUGIN_TRUST_FILE": f"{empty}{os.pathsep}{trust}"})
    assert out["policy"] == {"allow_unsigned": False, "trusted_key_ids": sorted([KEY_A.key_id, KEY_B.key_id])}
    assert out["rows"] == expected and expected[0]["h"] is not None
    valid = {"state": "valid", "key_id": KEY_A.key_id, "trusted": True}
    assert out["inspect"] == valid and out["signature"] == valid
    assert out["warnings"] == []


def test_trusted_key_through_the_api(signed_good_a: Path, tmp_path: Path) -> None:
    signed = signed_good_a
    trust = write_trust_file(tmp_path / "a.trust", [KEY_A])
    out = run_child(
        f"""
        import datafusion
        dfplugin.set_trust_policy(trusted_keys=[{KEY_A.public_text!r}])
        out["by_text"] = attempt(dfplugin.load, {str(signed)!r})
        ctx = datafusion.SessionContext()
        dfplugin.load({str(signed)!r}).install(ctx)
        out["echo"] = ctx.sql("SELECT fixture_echo(CAST(9 AS BIGINT)) AS v").to_pylist()
        out["policy"] = policy()
        """
    )
    assert out["by_text"] == {"ok": True} and out["echo"] == [{"v": 9}]
    assert out["policy"] == {"allow_unsigned": False, "trusted_key_ids": [KEY_A.key_id]}
    # as bytes, and from a trust file
    out = run_child(
        f"""
        dfplugin.set_trust_policy(trusted_keys=[bytes.fromhex({KEY_B.public_key.hex()!r})], trust_files=[{str(trust)!r}])
        out["policy"] = policy()
        out["load"] = attempt(dfplugin.load, {str(signed)!r})
        """
    )
    assert out["policy"]["trusted_key_ids"] == sorted([KEY_A.key_id, KEY_B.key_id])
    assert out["load"] == {"ok": True}


def test_changed_library_is_refused_even_with_allow_unsigned(signed_good_a: Path, tmp_path: Path) -> None:
    signed = signed_good_a
    data = bytearray(signed.read_bytes())
    middle = bytearray(data)
    middle[_code_offset(signed)] ^= 0xFF
    flipped = _variant(tmp_path, bytes(middle), "libflipped.so")
    damaged = _variant(tmp_path, bytes(data[:-120] + b"XXXXXXXX" + data[-112:]), "libdamaged.so")
    trust = write_trust_file(tmp_path / "a.trust", [KEY_A])
    out = run_child(
        f"""
        out["flipped"] = attempt(dfplugin.load, {str(flipped)!r})
        out["damaged"] = attempt(dfplugin.load, {str(damaged)!r})
        out["mapped"] = mapped({str(flipped)!r}) or mapped({str(damaged)!r})
        out["inspect"] = [dfplugin.inspect(p)["signature"] for p in ({str(flipped)!r}, {str(damaged)!r})]
        """,
        env={"DFPLUGIN_ALLOW_UNSIGNED": "1", "DFPLUGIN_TRUST_FILE": str(trust)},
    )
    assert out["flipped"]["kind"] == "signature_invalid", out["flipped"]
    assert str(flipped) in out["flipped"]["message"] and KEY_A.key_id in out["flipped"]["message"]
    assert "changed after it was signed" in out["flipped"]["message"]
    assert out["damaged"]["kind"] == "signature_invalid", out["damaged"]
    assert str(damaged) in out["damaged"]["message"] and "damaged" in out["damaged"]["message"]
    assert not out["mapped"]
    assert out["inspect"] == [
        {"state": "invalid", "key_id": KEY_A.key_id, "trusted": True},
        {"state": "damaged", "key_id": None, "trusted": False},
    ]


def test_bytes_appended_after_the_trailer_are_refused(signed_good_a: Path, tmp_path: Path) -> None:
    signed = signed_good_a
    appended = _variant(tmp_path, signed.read_bytes() + b"\x00appended", "libappended.so")
    trust = write_trust_file(tmp_path / "a.trust", [KEY_A])
    out = run_child(
        f"""
        out["appended"] = attempt(dfplugin.load, {str(appended)!r})
        out["signed"] = attempt(dfplugin.load, {str(signed)!r})
        """,
        env={"DFPLUGIN_TRUST_FILE": str(trust)},
    )
    assert out["appended"]["kind"] == "unsigned" and str(appended) in out["appended"]["message"], out["appended"]
    assert out["signed"] == {"ok": True}


def test_untrusted_key(signed_good_b: Path, tmp_path: Path) -> None:
    signed_b = signed_good_b
    trust = write_trust_file(tmp_path / "a.trust", [KEY_A])
    code = f"""
        out["first"] = attempt(dfplugin.load, {str(signed_b)!r})
        out["again"] = attempt(dfplugin.load, {str(signed_b)!r})
        out["warnings"] = warnings
        out["mapped"] = mapped({str(signed_b)!r})
        """
    out = run_child(code, env={"DFPLUGIN_TRUST_FILE": str(trust)})
    refused = out["first"]
    assert refused["kind"] == "untrusted_key", refused
    assert KEY_B.key_id in refused["message"] and str(signed_b) in refused["message"]
    assert KEY_B.public_text in refused["message"]  # what to add to a trust file
    assert KEY_A.key_id in refused["message"]  # what is trusted
    assert out["again"]["kind"] == "untrusted_key" and not out["mapped"]

    out = run_child(code, env={"DFPLUGIN_TRUST_FILE": str(trust), "DFPLUGIN_ALLOW_UNSIGNED": "1"})
    assert out["first"] == {"ok": True} and out["again"] == {"ok": True} and out["mapped"]
    assert len(out["warnings"]) == 1, out["warnings"]  # once, not again for the cached library
    assert KEY_B.key_id in out["warnings"][0] and str(signed_b) in out["warnings"][0]


def test_trust_policy_only_tightens_after_the_first_load(good_copy: Path, signed_good_a: Path) -> None:
    signed_a = signed_good_a
    out = run_child(
        f"""
        import dataclasses
        A, B, C = {KEY_A.public_text!r}, {KEY_B.public_text!r}, {KEY_C.public_text!r}
        setp = dfplugin.set_trust_policy
        # Before the first load: anything goes, each call replaces the policy.
        out["free"] = [attempt(setp, allow_unsigned=True), attempt(setp, trusted_keys=[A]), attempt(setp, trusted_keys=[A, B], allow_unsigned=True)]
        out["before"] = policy()
        out["load_unsigned"] = attempt(dfplugin.load, {str(good_copy)!r})  # allowed: allow_unsigned
        out["load_signed"] = attempt(dfplugin.load, {str(signed_a)!r})
        out["add_key"] = attempt(setp, trusted_keys=[A, B, C], allow_unsigned=True)
        out["after_add_key"] = policy()
        out["same"] = attempt(setp, trusted_keys=[B, A], allow_unsigned=True)
        out["drop_b"] = attempt(setp, trusted_keys=[A], allow_unsigned=True)
        out["disallow"] = attempt(setp, trusted_keys=[A])
        out["reallow"] = attempt(setp, trusted_keys=[A], allow_unsigned=True)
        out["readd_b"] = attempt(setp, trusted_keys=[A, B])
        out["after"] = policy()
        # The tightened policy applies to libraries loaded before, too.
        out["unsigned_again"] = attempt(dfplugin.load, {str(good_copy)!r})
        out["signed_again"] = attempt(dfplugin.load, {str(signed_a)!r})
        out["nothing"] = attempt(setp)
        out["signed_last"] = attempt(dfplugin.load, {str(signed_a)!r})
        try:
            dfplugin.trust_policy().allow_unsigned = True
            out["frozen"] = False
        except dataclasses.FrozenInstanceError:
            out["frozen"] = True
        out["final"] = policy()
        """
    )
    ids = sorted([KEY_A.key_id, KEY_B.key_id])
    assert out["free"] == [{"ok": True}] * 3
    assert out["before"] == {"allow_unsigned": True, "trusted_key_ids": ids}
    assert out["load_unsigned"] == {"ok": True} and out["load_signed"] == {"ok": True}
    add = out["add_key"]
    assert add["kind"] == "trust_policy_loosened" and KEY_C.key_id in add["message"], add
    assert KEY_A.key_id not in add["message"].split("does not trust")[0]  # names only the new key
    assert out["after_add_key"] == out["before"], "a refused call changed the policy"
    assert out["same"] == {"ok": True} and out["drop_b"] == {"ok": True} and out["disallow"] == {"ok": True}
    assert out["reallow"]["kind"] == "trust_policy_loosened" and "allow_unsigned" in out["reallow"]["message"]
    assert out["readd_b"]["kind"] == "trust_policy_loosened" and KEY_B.key_id in out["readd_b"]["message"]
    assert out["after"] == {"allow_unsigned": False, "trusted_key_ids": [KEY_A.key_id]}
    assert out["unsigned_again"]["kind"] == "unsigned"
    assert out["signed_again"] == {"ok": True}
    assert out["nothing"] == {"ok": True}
    assert out["signed_last"]["kind"] == "untrusted_key"
    assert out["frozen"] is True
    assert out["final"] == {"allow_unsigned": False, "trusted_key_ids": []}


def test_first_api_call_replaces_the_environment(tmp_path: Path) -> None:
    trust = write_trust_file(tmp_path / "b.trust", [KEY_B])
    out = run_child(
        f"""
        out["env"] = policy()
        dfplugin.set_trust_policy(trusted_keys=[{KEY_A.public_text!r}])
        out["api"] = policy()
        """,
        env={"DFPLUGIN_ALLOW_UNSIGNED": "1", "DFPLUGIN_TRUST_FILE": str(trust)},
    )
    assert out["env"] == {"allow_unsigned": True, "trusted_key_ids": [KEY_B.key_id]}
    assert out["api"] == {"allow_unsigned": False, "trusted_key_ids": [KEY_A.key_id]}


def test_bad_environment_is_reported_by_load(tmp_path: Path) -> None:
    bad = tmp_path / "bad.trust"
    bad.write_text(f"{KEY_A.public_text}\nnot a key\n")
    lib = tmp_path / "libany.so"  # the policy is read before the file is looked at
    lib.write_text("any")
    code = f"""out["load"] = attempt(dfplugin.load, {str(lib)!r})"""
    out = run_child(code, env={"DFPLUGIN_TRUST_FILE": str(bad)})
    assert out["load"]["kind"] == "trust_file_invalid" and str(bad) in out["load"]["message"] and "line 2" in out["load"]["message"]
    out = run_child(code, env={"DFPLUGIN_ALLOW_UNSIGNED": "enabled"})
    assert out["load"]["kind"] == "trust_policy_invalid" and "DFPLUGIN_ALLOW_UNSIGNED" in out["load"]["message"]


def test_inspect_reports_signature_states(fixture_lib, signed_good_a: Path, tmp_path: Path) -> None:
    """In this process: the policy allows unsigned libraries and trusts no key."""
    signed = signed_good_a
    reference = dfplugin.inspect(fixture_lib("good"))
    assert reference.pop("signature") == {"state": "unsigned", "key_id": None, "trusted": False}
    report = dfplugin.inspect(signed)
    assert report.pop("signature") == {"state": "valid", "key_id": KEY_A.key_id, "trusted": False}
    assert report == reference  # the manifest keys are untouched
    data = bytearray(signed.read_bytes())
    data[_code_offset(signed, 1 / 3)] ^= 1
    changed = _variant(tmp_path, bytes(data), "libchanged.so")
    assert dfplugin.inspect(changed)["signature"] == {"state": "invalid", "key_id": KEY_A.key_id, "trusted": False}
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.load(changed)
    assert e.value.kind == "signature_invalid"


def test_conformance_runner_inherits_the_trust_policy(signed_good_a: Path, tmp_path: Path) -> None:
    signed = signed_good_a
    trust = write_trust_file(tmp_path / "a.trust", [KEY_A])
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'name = "signed"\n\n[[case]]\nname = "echo"\ncapability = "scalar_udf"\n'
        'sql = "SELECT fixture_echo(CAST(3 AS BIGINT)) AS v"\nexpect_rows = [["3"]]\n'
    )
    base = {k: v for k, v in os.environ.items() if k not in (signing.ENV_ALLOW_UNSIGNED, signing.ENV_TRUST_FILE)}
    base["PYTHONPATH"] = str(REPO / "host_harness" / "python") + os.pathsep + os.environ.get("PYTHONPATH", "")
    args = [sys.executable, "-m", "dfplugin.conform", "--library", str(signed), "--suite", str(suite)]
    ok = subprocess.run(args, capture_output=True, text=True, env=dict(base, DFPLUGIN_TRUST_FILE=str(trust)), timeout=CHILD_TIMEOUT)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 passed" in ok.stdout
    refused = subprocess.run(args, capture_output=True, text=True, env=base, timeout=CHILD_TIMEOUT)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "untrusted" in refused.stderr or "does not trust" in refused.stderr, refused.stderr
