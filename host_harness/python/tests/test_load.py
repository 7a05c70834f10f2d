"""Loading: version gates on the fixtures (in-process, no crash), caching, live manifest."""

from __future__ import annotations

import os
import shutil

import datafusion
import pytest

import dfplugin


def _healthy(plugin: dfplugin.Plugin) -> None:
    """The process still works: a new session, the real plugin, a query through the FFI."""
    ctx = plugin.session_context()
    assert ctx.sql("SELECT 40 + 2 AS x").to_pylist() == [{"x": 42}]
    if "stable_hash64" in plugin.objects("scalar_udf"):
        assert ctx.sql("SELECT stable_hash64('a') AS h").to_pylist()[0]["h"] is not None


def test_datafusion_54_fixture_is_refused_cleanly(fixture_lib, plugin: dfplugin.Plugin) -> None:
    path = fixture_lib("datafusion_major")
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.load(path)
    err = e.value
    assert err.kind == "datafusion_mismatch"
    assert isinstance(err, dfplugin.PluginError)
    msg = str(err)
    assert path in msg
    assert "54." in msg and "55.2.0" in msg  # both versions
    assert 'datafusion = "=55.2.0"' in msg and "datafusion==54.*" in msg  # both fixes
    # Refused before opening: the library is not in the process.
    with open("/proc/self/maps") as maps:
        assert os.path.realpath(path) not in maps.read()
    # Second attempt: same clean refusal, and the process is healthy.
    with pytest.raises(dfplugin.PluginLoadError):
        dfplugin.load(path)
    _healthy(plugin)


@pytest.mark.parametrize(
    "fixture, kind",
    [
        ("abi_major", "abi_major_mismatch"),
        ("abi_minor", "abi_minor_too_new"),
        ("ffi_major", "datafusion_ffi_mismatch"),
        ("manifest_mismatch", "live_manifest_mismatch"),
        ("no_root", "missing_entry_point"),
        ("panic", "plugin_panic"),
    ],
)
def test_bad_fixtures_are_refused(fixture_lib, plugin: dfplugin.Plugin, fixture: str, kind: str) -> None:
    path = fixture_lib(fixture)
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.load(path)
    assert e.value.kind == kind, str(e.value)
    assert path in str(e.value)
    _healthy(plugin)


def test_abi_major_message_names_versions(fixture_lib) -> None:
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.load(fixture_lib("abi_major"))
    assert "2.0" in str(e.value) and "{}.{}".format(*dfplugin.manifest.HOST_ABI) in str(e.value)


def test_manifest_mismatch_names_the_difference(fixture_lib) -> None:
    with pytest.raises(dfplugin.PluginLoadError) as e:
        dfplugin.load(fixture_lib("manifest_mismatch"))
    assert "ghost_fn" in str(e.value)


def test_load_is_cached_by_realpath(lib_path: str, plugin: dfplugin.Plugin, tmp_path) -> None:
    link = tmp_path / "link.so"
    os.symlink(os.path.realpath(lib_path), link)
    assert dfplugin.load(link) is plugin
    assert dfplugin.load(lib_path) is plugin
    assert plugin.library is dfplugin.load(str(link)).library


def test_live_manifest_equals_embedded(plugin: dfplugin.Plugin) -> None:
    import json

    inspected = dfplugin.inspect(plugin.path)
    # inspect() adds the signature report to the embedded manifest; the manifest itself is unchanged.
    assert inspected.pop("signature") == {"state": "unsigned", "key_id": None, "trusted": False}
    assert json.loads(plugin.library.manifest_json()) == inspected
    assert plugin.library.abi_version() == dfplugin.manifest.HOST_ABI


def test_two_plugins_in_one_session(plugin: dfplugin.Plugin, fixture_lib) -> None:
    good = dfplugin.load(fixture_lib("good"))
    assert good.name != plugin.name and good is not plugin
    ctx = plugin.session_context()
    report = good.install(ctx)
    assert sorted((o.kind, o.name) for o in report.objects) == [("scalar_udf", "fixture_boom"), ("scalar_udf", "fixture_echo")]
    assert ctx.sql("SELECT fixture_echo(CAST(41 AS BIGINT)) + 1 AS v").to_pylist() == [{"v": 42}]
    # A panic inside plugin code is a Python exception carrying the panic code, not a crash.
    with pytest.raises(Exception) as e:
        ctx.sql("SELECT fixture_boom(CAST(1 AS BIGINT))").collect()
    assert "[E0002 panic]" in str(e.value) and "exploded on purpose" in str(e.value)
    loaded = ctx.sql("SELECT plugin, abi, native FROM dfplugin_loaded() ORDER BY plugin").to_pylist()

    def abi(p: dfplugin.Plugin) -> str:
        return "{major}.{minor}".format(**p.manifest["abi"])

    assert loaded == sorted(
        [
            {"plugin": "codeanatomy", "abi": abi(plugin), "native": False},
            {"plugin": good.name, "abi": abi(good), "native": False},
        ],
        key=lambda r: r["plugin"],
    )
    objs = ctx.sql(f"SELECT kind, name FROM dfplugin_objects() WHERE plugin = '{good.name}' ORDER BY name").to_pylist()
    assert objs == [{"kind": "scalar_udf", "name": "fixture_boom"}, {"kind": "scalar_udf", "name": "fixture_echo"}]
    _healthy(plugin)


def test_copied_library_loads_separately(plugin: dfplugin.Plugin, fixture_lib, tmp_path) -> None:
    # A copy at another real path is another library (opened once, never unloaded).
    copy_path = tmp_path / "libfixture_copy.so"
    shutil.copy(fixture_lib("good"), copy_path)
    other = dfplugin.load(copy_path)
    assert other.library is not dfplugin.load(fixture_lib("good")).library
    ctx = datafusion.SessionContext()
    other.install(ctx)
    assert ctx.sql("SELECT fixture_echo(CAST(7 AS BIGINT)) AS v").to_pylist() == [{"v": 7}]
