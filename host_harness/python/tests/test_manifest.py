"""Reading the embedded manifest without loading, and the compatibility checks."""

from __future__ import annotations

import copy
import json
import shutil
import struct

import pytest

import dfplugin
from dfplugin.manifest import check_compatibility, host_versions, parse_embedded


def test_inspect_reads_manifest_without_loading(lib_path: str) -> None:
    m = dfplugin.inspect(lib_path)
    assert m["plugin"]["name"] == "codeanatomy"
    assert (m["abi"]["major"], m["abi"]["minor"]) == dfplugin.manifest.HOST_ABI
    assert m["datafusion"].split(".")[0] == "55"
    assert m["datafusion_ffi"].split(".")[0] == "55"
    for field in ("build", "target", "arrow", "capabilities", "config", "objects"):
        assert field in m
    assert set(m["build"]) >= {"id", "git_commit", "profile", "rustc"}
    assert m["config"]["namespace"] == "codeanatomy"
    keys = {k["key"]: k for k in m["config"]["keys"]}
    assert keys["span.line_base"]["type"] == "int" and keys["span.line_base"]["min"] == 0
    assert "allowed" in keys["span.col_unit"]
    for kind, names in m["objects"].items():
        assert kind in m["capabilities"], kind
        assert names == sorted(names)


def test_inspect_fixture_does_not_load_it(fixture_lib) -> None:
    # The DataFusion-54 fixture must be readable (and only readable).
    m = dfplugin.inspect(fixture_lib("datafusion_major"))
    assert m["datafusion"].startswith("54.")


def test_not_elf(tmp_path) -> None:
    p = tmp_path / "libnot.so"
    p.write_text("this is not a library\n")
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.inspect(p)
    assert e.value.kind == "not_a_library"
    assert str(p) in str(e.value)
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.load(p)
    assert e.value.kind == "not_a_library"


def test_truncated(tmp_path, lib_path: str) -> None:
    p = tmp_path / "libtrunc.so"
    with open(lib_path, "rb") as f:
        p.write_bytes(f.read(4096))
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.inspect(p)
    assert e.value.kind == "truncated"
    assert "truncated" in str(e.value)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.load(tmp_path / "nope.so")
    assert e.value.kind == "not_found"
    assert "make build" in str(e.value)


def test_elf_without_manifest() -> None:
    import datafusion._internal as internal

    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.load(internal.__file__)
    assert e.value.kind == "no_embedded_manifest"
    assert ".dfplugin_manifest" in str(e.value)


def test_corrupted_manifest(tmp_path, lib_path: str) -> None:
    from dfplugin.elf import _sections

    with open(lib_path, "rb") as f:
        _type, at, _size = _sections(f, lib_path)[".dfplugin_manifest"]
    data = bytearray(open(lib_path, "rb").read())
    assert data[at : at + 8] == b"DFPLUGIN"
    data[at : at + 8] = b"XXPLUGIN"
    p = tmp_path / "libbad.so"
    p.write_bytes(bytes(data))
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.load(p)
    assert e.value.kind == "bad_manifest"


def _header(json_bytes: bytes, fmt: int = 1, length: int = -1) -> bytes:
    return b"DFPLUGIN" + struct.pack("<II", fmt, len(json_bytes) if length < 0 else length) + json_bytes


def test_parse_embedded_errors(lib_path: str) -> None:
    good = json.dumps(dfplugin.inspect(lib_path)).encode()
    assert parse_embedded(_header(good), "x")["plugin"]["name"] == "codeanatomy"
    for bad in (b"short", _header(good, fmt=2), _header(good, length=len(good) + 10), _header(b"{not json")):
        with pytest.raises(dfplugin.PluginLoadError) as e:
            parse_embedded(bad, "x")
        assert e.value.kind == "bad_manifest"


@pytest.mark.parametrize(
    "change, kind, needles",
    [
        ({"abi": {"major": 2, "minor": 0}}, "abi_major_mismatch", ["2.0", "{}.{}".format(*dfplugin.manifest.HOST_ABI)]),
        (
            {"abi": {"major": 1, "minor": dfplugin.manifest.HOST_ABI[1] + 1}},
            "abi_minor_too_new",
            ["1.{}".format(dfplugin.manifest.HOST_ABI[1] + 1), "{}.{}".format(*dfplugin.manifest.HOST_ABI)],
        ),
        ({"datafusion": "54.0.0"}, "datafusion_mismatch", ["54.0.0", "55.2.0", 'datafusion = "=55.2.0"', "datafusion==54.*"]),
        ({"datafusion_ffi": "56.1.0"}, "datafusion_ffi_mismatch", ["56.1.0", "55.2.0", "datafusion==56.*"]),
        ({"target": "aarch64-apple-darwin"}, "target_mismatch", ["aarch64-apple-darwin"]),
        ({"target": "riscv64gc-unknown-linux-gnu"}, "target_mismatch", ["riscv64gc"]),
        ({"capabilities": ["scalar_udf", "teleport"]}, "unknown_capability", ["teleport"]),
        ({"abi": {"major": 1, "minor": 2}, "capabilities": ["scalar_udf", "analyzer_rule"]}, "capability_not_carried", ["analyzer_rule", "1.3"]),
    ],
)
def test_compatibility_refusals(lib_path: str, change, kind, needles) -> None:
    m = copy.deepcopy(dfplugin.inspect(lib_path))
    m.update(change)
    with pytest.raises(dfplugin.PluginLoadError) as e:
        check_compatibility("/some/libplugin.so", m, host_versions())
    assert e.value.kind == kind
    assert isinstance(e.value, dfplugin.PluginError)
    assert "/some/libplugin.so" in str(e.value)
    for needle in needles:
        assert needle in str(e.value)


def test_real_manifest_is_compatible(lib_path: str) -> None:
    check_compatibility(lib_path, dfplugin.inspect(lib_path), host_versions())
    assert host_versions().python_package.startswith("55.")


@pytest.mark.parametrize(
    "header, kind",
    [
        (b"\x7fELF\x01\x01\x01" + b"\0" * 57, "not_a_library"),  # 32-bit
        (b"\x7fELF\x02\x02\x01" + b"\0" * 57, "not_a_library"),  # big-endian
        (b"\x7fELF\x02\x01\x01" + b"\0" * 57, "no_embedded_manifest"),  # no section headers
        (b"\x7fELF\x02\x01", "truncated"),
    ],
)
def test_elf_flavours(tmp_path, header: bytes, kind: str) -> None:
    p = tmp_path / "libx.so"
    p.write_bytes(header)
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.inspect(p)
    assert e.value.kind == kind, str(e.value)


@pytest.mark.parametrize("minor", [0, 1, 2, 3, 4, 5, 6])
def test_older_and_current_minors_are_accepted(lib_path: str, minor: int) -> None:
    """ABI 1.0 to 1.6 plugins load; table providers and factories need 1.2, analyzer rules,
    relation planners and DML 1.3."""
    m = copy.deepcopy(dfplugin.inspect(lib_path))
    m["abi"] = {"major": 1, "minor": minor}
    newer = ("table_provider", "table_provider_factory", "analyzer_rule", "relation_planner", "dml")
    m["capabilities"] = [c for c in m["capabilities"] if c not in newer]
    check_compatibility("/some/libplugin.so", m, host_versions())
    for cap in ("table_provider", "table_provider_factory"):
        with_cap = dict(m, capabilities=m["capabilities"] + [cap])
        if minor >= 2:
            check_compatibility("/some/libplugin.so", with_cap, host_versions())
        else:
            with pytest.raises(dfplugin.PluginLoadError) as e:
                check_compatibility("/some/libplugin.so", with_cap, host_versions())
            assert e.value.kind == "capability_not_carried" and cap in str(e.value)
