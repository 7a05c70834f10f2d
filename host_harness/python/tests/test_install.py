"""Installing into plain and configured SessionContexts: every object works, all or nothing."""

from __future__ import annotations

import hashlib
import logging
import warnings
from typing import List, Optional

import datafusion
import pytest

import dfplugin
from conftest import require_function
from dfplugin.conform import find_error_code


# ---------------------------------------------------------------------------------------
# Every installable object, generically from the manifest


def test_install_into_plain_context(plugin: dfplugin.Plugin, caplog, capfd) -> None:
    ctx = datafusion.SessionContext()
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="dfplugin"):
        report = plugin.install(ctx)
    # Quiet on success: nothing printed, no warning (every declared capability installs here).
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == "", printed
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert report.not_installed == []
    installed = {(o.kind, o.name) for o in report.objects}
    for kind in ("scalar_udf", "aggregate_udf", "window_udf", "table_function", "physical_optimizer_rule"):
        for name in plugin.objects(kind):
            assert (kind, name) in installed
    assert set(plugin.objects("scalar_udf")) <= set(ctx.udfs())
    assert set(plugin.objects("aggregate_udf")) <= set(ctx.udafs())
    assert set(plugin.objects("window_udf")) <= set(ctx.udwfs())
    # The config namespace cannot be added to an existing context: said in the report and at
    # INFO, and a SET of a plugin key says how to get a settable session. Nothing is set.
    assert report.config == "defaults"
    assert any("session_config" in r.getMessage() for r in caplog.records)
    with pytest.raises(dfplugin.PluginConfigError, match=r"session_config\(\).*Nothing was set"):
        ctx.sql("SET codeanatomy.span.line_base = 1")
    assert ctx.sql("SELECT 1 AS x").to_pylist() == [{"x": 1}]


def test_every_function_runs_its_documented_example(plugin: dfplugin.Plugin) -> None:
    """Each function is queried at least once in a plain SessionContext, through the
    example SQL the plugin documents for it (codeanatomy_functions())."""
    require_function(plugin, "table_function", "codeanatomy_functions")
    ctx = datafusion.SessionContext()
    plugin.install(ctx)
    entries = ctx.sql("SELECT name, kind, example FROM codeanatomy_functions()").to_pylist()
    documented = {e["name"] for e in entries}
    exported = set(plugin.objects("scalar_udf")) | set(plugin.objects("aggregate_udf")) | set(plugin.objects("window_udf"))
    assert documented == exported
    missing_examples: List[str] = []
    rejected: List[str] = []
    for e in entries:
        if not e["example"]:
            missing_examples.append(e["name"])
            continue
        try:
            ctx.sql(e["example"]).collect()
        except Exception as err:
            # A tagged plugin error is a clean answer through the FFI (the function ran);
            # it means the documented example itself is wrong: reported, not hidden.
            if find_error_code(str(err)) is None:
                pytest.fail(f"example of {e['kind']} function {e['name']} failed: {e['example']!r}: {err}")
            rejected.append(f"{e['name']}: {e['example']!r} -> {err}")
    assert not missing_examples, f"functions without a documented example: {missing_examples}"
    for r in rejected:
        warnings.warn(f"documented example rejected by the plugin itself (fix its documentation): {r}")


def test_functions_are_looked_up_by_name(plugin: dfplugin.Plugin) -> None:
    """Every installed function is retrievable from the session under its manifest name."""
    ctx = datafusion.SessionContext()
    plugin.install(ctx)
    for name in plugin.objects("scalar_udf"):
        assert ctx.udf(name) is not None
    for name in plugin.objects("aggregate_udf"):
        assert ctx.udaf(name) is not None
    for name in plugin.objects("window_udf"):
        assert ctx.udwf(name) is not None


def test_aggregate_and_window_functions_run(plugin: dfplugin.Plugin) -> None:
    ctx = datafusion.SessionContext()
    plugin.install(ctx)
    ctx.from_pydict({"g": [1, 1, 2, 2, 2], "v": [3, 1, 2, 2, 5], "s": ["a", "b", "a", "a", "c"]}, name="t")
    if "count_if" in plugin.objects("aggregate_udf"):
        rows = ctx.sql("SELECT g, count_if(v > 1) AS c FROM t GROUP BY g ORDER BY g").to_pylist()
        assert rows == [{"g": 1, "c": 1}, {"g": 2, "c": 3}]
    if "collect_set" in plugin.objects("aggregate_udf"):
        rows = ctx.sql("SELECT g, collect_set(s) AS c FROM t GROUP BY g ORDER BY g").to_pylist()
        assert [sorted(r["c"]) for r in rows] == [["a", "b"], ["a", "c"]]
    if "arg_max" in plugin.objects("aggregate_udf"):
        rows = ctx.sql("SELECT g, arg_max(s, v) AS a FROM t GROUP BY g ORDER BY g").to_pylist()
        assert rows == [{"g": 1, "a": "a"}, {"g": 2, "a": "c"}]
    if not (set(plugin.objects("aggregate_udf")) & {"count_if", "collect_set", "arg_max"}):
        pytest.skip(f"none of count_if/collect_set/arg_max exported yet by {plugin.path}")


def test_table_function_is_bound_to_this_context(plugin: dfplugin.Plugin) -> None:
    require_function(plugin, "table_function", "codeanatomy_functions")
    ctx = datafusion.SessionContext()
    plugin.install(ctx)
    rows = ctx.sql("SELECT count(*) AS n FROM codeanatomy_functions()").to_pylist()
    assert rows[0]["n"] >= len(plugin.objects("scalar_udf"))
    # Not registered anywhere else (the global context stays untouched).
    with pytest.raises(Exception, match="codeanatomy_functions"):
        datafusion.SessionContext.global_ctx().sql("SELECT * FROM codeanatomy_functions()")
    # The session shapes the dunder accepts: a SessionContext, the internal context, a bare codec capsule, None.
    from dfplugin.objects import TableFunctionExport

    export = TableFunctionExport(plugin.library, "codeanatomy_functions")
    for session in (ctx, ctx.ctx, ctx.__datafusion_logical_extension_codec__(), None):
        cap = export.__datafusion_table_function__(session)
        assert type(cap).__name__ == "PyCapsule"
        del cap
    with pytest.raises(dfplugin.PluginError) as e:
        export.__datafusion_table_function__(object())
    assert e.value.kind == "bad_session"


def test_physical_optimizer_rule_is_installed(plugin: dfplugin.Plugin) -> None:
    rules = plugin.objects("physical_optimizer_rule")
    if not rules:
        pytest.skip(f"{plugin.path} exports no physical optimizer rule")
    ctx = datafusion.SessionContext()
    plugin.install(ctx)
    plan_types = [r["plan_type"] for r in ctx.sql("EXPLAIN VERBOSE SELECT 1").to_pylist()]
    for rule in rules:
        assert f"physical_plan after {rule}" in plan_types
    assert ctx.sql("SELECT 1 AS one").to_pylist() == [{"one": 1}]


# ---------------------------------------------------------------------------------------
# stable_hash64 / stable_hash128 / stable_id against an independent implementation

SEP, NULL_PART = b"\x1f", b"\x00"


def canonical(parts: List[Optional[str]]) -> Optional[bytes]:
    if all(p is None for p in parts):
        return None
    return SEP.join(NULL_PART if p is None else p.encode("utf-8") for p in parts)


def h64(parts: List[Optional[str]]) -> Optional[int]:
    data = canonical(parts)
    if data is None:
        return None
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)


def h128(parts: List[Optional[str]]) -> Optional[str]:
    data = canonical(parts)
    return None if data is None else hashlib.blake2b(data, digest_size=16).hexdigest()


def sql_literal(p: Optional[str]) -> str:
    return "NULL" if p is None else "'" + p.replace("'", "''") + "'"


HASH_CASES: List[List[Optional[str]]] = [
    ["a"],
    [""],
    ["a", "b"],
    ["ab", ""],
    ["a", None],
    [None, "a"],
    ["x", None, "y"],
    ["héllo wörld", "😀", "line\nbreak"],
    ["a\x1fb"],
    [str(i) for i in range(16)],
]


def test_stable_hash64_matches_blake2b(plugin: dfplugin.Plugin, ctx) -> None:
    require_function(plugin, "scalar_udf", "stable_hash64")
    for parts in HASH_CASES:
        sql = f"SELECT stable_hash64({', '.join(sql_literal(p) for p in parts)}) AS h"
        assert ctx.sql(sql).to_pylist()[0]["h"] == h64(parts), parts


def test_stable_hash128_matches_blake2b(plugin: dfplugin.Plugin, ctx) -> None:
    require_function(plugin, "scalar_udf", "stable_hash128")
    for parts in HASH_CASES:
        sql = f"SELECT stable_hash128({', '.join(sql_literal(p) for p in parts)}) AS h"
        assert ctx.sql(sql).to_pylist()[0]["h"] == h128(parts), parts


def test_stable_id_matches_blake2b(plugin: dfplugin.Plugin, ctx) -> None:
    require_function(plugin, "scalar_udf", "stable_id")
    for parts in HASH_CASES:
        sql = f"SELECT stable_id('sym', {', '.join(sql_literal(p) for p in parts)}) AS h"
        assert ctx.sql(sql).to_pylist()[0]["h"] == "sym:" + h128(parts), parts


def test_hashes_all_null_and_columns(plugin: dfplugin.Plugin, ctx) -> None:
    for name in ("stable_hash64", "stable_hash128", "stable_id"):
        require_function(plugin, "scalar_udf", name)
    row = ctx.sql(
        "SELECT stable_hash64(CAST(NULL AS VARCHAR)) a, stable_hash128(CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR)) b, "
        "stable_id('p', CAST(NULL AS VARCHAR)) c"
    ).to_pylist()[0]
    assert row == {"a": None, "b": None, "c": None}
    # Over a column (array path), integers hash as their decimal text.
    ctx.from_pydict({"s": ["a", None, "zz"], "n": [1, -2, None]}, name="t")
    rows = ctx.sql("SELECT s, n, stable_hash64(s, n) h, stable_hash128(s) x FROM t").to_pylist()
    for r in rows:
        parts = [r["s"], None if r["n"] is None else str(r["n"])]
        assert r["h"] == h64(parts)
        assert r["x"] == h128([r["s"]])


# ---------------------------------------------------------------------------------------
# Configuration namespace


def test_session_config_carries_the_namespace(plugin: dfplugin.Plugin) -> None:
    cfg = plugin.session_config(options={"span.line_base": 1, "codeanatomy.normalize.form": "nfc"})
    ctx = datafusion.SessionContext(cfg.with_information_schema(True))
    report = plugin.install(ctx)
    assert report.config == "installed"
    assert ("config_namespace", "codeanatomy") in {(o.kind, o.name) for o in report.objects}
    rows = ctx.sql("SELECT name, value FROM information_schema.df_settings WHERE name LIKE '%codeanatomy.%'").to_pylist()
    values = {r["name"].split("codeanatomy.", 1)[1]: r["value"] for r in rows}
    assert values["span.line_base"] == "1"
    assert values["normalize.form"].upper() == "NFC"
    ctx.sql("SET codeanatomy.span.col_unit = 'UTF16'").collect()


def test_install_applies_options_with_set(plugin: dfplugin.Plugin) -> None:
    ctx = datafusion.SessionContext(plugin.session_config().with_information_schema(True))
    plugin.install(ctx, options={"scan_guard.max_files": 7})
    rows = ctx.sql("SELECT value FROM information_schema.df_settings WHERE name LIKE '%codeanatomy.scan_guard.max_files'").to_pylist()
    assert rows == [{"value": "7"}]


def test_unknown_option_key_is_named(plugin: dfplugin.Plugin) -> None:
    with pytest.raises(dfplugin.PluginConfigError) as e:
        plugin.session_config(options={"span.line_bsae": 1})
    assert "span.line_bsae" in str(e.value)
    assert isinstance(e.value, dfplugin.PluginInstallError)
    with pytest.raises(dfplugin.PluginConfigError) as e:
        plugin.session_config(options={"span.line_base": 7})
    assert "span.line_base" in str(e.value)
    ctx = datafusion.SessionContext()
    with pytest.raises(dfplugin.PluginConfigError) as e:
        plugin.install(ctx, options={"nope": 1})
    assert "nope" in str(e.value)
    assert not set(plugin.objects("scalar_udf")) & set(ctx.udfs())


def test_options_on_context_without_namespace_are_refused(plugin: dfplugin.Plugin) -> None:
    ctx = datafusion.SessionContext()
    with pytest.raises(dfplugin.PluginConfigError) as e:
        plugin.install(ctx, options={"span.line_base": 1})
    assert e.value.kind == "config_unavailable"
    assert "session_config" in str(e.value)
    assert not set(plugin.objects("scalar_udf")) & set(ctx.udfs())


def test_config_reaches_the_plugin(plugin: dfplugin.Plugin) -> None:
    """Options given to session_config / install / SET reach the plugin's functions."""
    require_function(plugin, "scalar_udf", "span_make")
    q = "SELECT span_make(0, 1) AS s"
    default = plugin.session_context().sql(q).to_pylist()[0]["s"]
    configured_ctx = plugin.session_context(options={"span.line_base": 1, "span.col_unit": "UTF16"})
    configured = configured_ctx.sql(q).to_pylist()[0]["s"]
    assert default != configured, "codeanatomy.span.* options did not reach span_make"
    assert "UTF16" in repr(configured) and "UTF16" not in repr(default)
    configured_ctx.sql("SET codeanatomy.span.col_unit = 'UTF32'").collect()
    assert "UTF32" in repr(configured_ctx.sql(q).to_pylist()[0]["s"])


def test_set_typo_is_reported_by_the_plugin(plugin: dfplugin.Plugin) -> None:
    """datafusion-ffi accepts any key at SET time; the plugin rejects it at the next query
    with a tagged error naming the key."""
    require_function(plugin, "scalar_udf", "stable_hash64")
    ctx = plugin.session_context()
    with pytest.raises(Exception) as e:
        # The SET itself is accepted; its (empty) plan already meets the plugin's physical
        # rule, which reads the namespace and refuses the typo.
        ctx.sql("SET codeanatomy.span.bogus = 'x'").collect()
        ctx.sql("SELECT stable_hash64('a')").collect()
    assert "codeanatomy.span.bogus" in str(e.value)
    assert find_error_code(str(e.value)) == "invalid_config"


# ---------------------------------------------------------------------------------------
# All or nothing


def _plugin_names(ctx, plugin: dfplugin.Plugin) -> set:
    return (set(ctx.udfs()) | set(ctx.udafs()) | set(ctx.udwfs())) & (
        set(plugin.objects("scalar_udf")) | set(plugin.objects("aggregate_udf")) | set(plugin.objects("window_udf"))
    )


def test_collision_refuses_everything(plugin: dfplugin.Plugin, fixture_lib) -> None:
    ctx = datafusion.SessionContext()
    plugin.install(ctx)
    with pytest.raises(dfplugin.PluginInstallError) as e:
        plugin.install(ctx)
    assert e.value.kind == "name_collision"
    assert plugin.objects("scalar_udf")[0] in str(e.value)

    # A single pre-existing name blocks the whole install, nothing is registered.
    ctx2 = datafusion.SessionContext()
    good = dfplugin.load(fixture_lib("good"))
    good.install(ctx2)
    clash = datafusion.SessionContext()
    clash.register_udf(ctx2.udf("fixture_echo"))
    with pytest.raises(dfplugin.PluginInstallError) as e:
        good.install(clash)
    assert e.value.kind == "name_collision" and "fixture_echo" in str(e.value)
    with pytest.raises(Exception, match="dfplugin_loaded"):
        clash.sql("SELECT * FROM dfplugin_loaded()").collect()


def test_collision_with_a_table_function(plugin: dfplugin.Plugin) -> None:
    require_function(plugin, "table_function", "codeanatomy_functions")
    ctx = datafusion.SessionContext()
    from datafusion.catalog import Table
    from datafusion.user_defined import TableFunction
    import pyarrow as pa
    import pyarrow.dataset as ds

    ctx.register_udtf(TableFunction("codeanatomy_functions", lambda *a: Table(ds.dataset(pa.table({"x": [1]}))), ctx))
    with pytest.raises(dfplugin.PluginInstallError) as e:
        plugin.install(ctx)
    assert "codeanatomy_functions" in str(e.value)
    assert not _plugin_names(ctx, plugin)


def test_failure_midway_rolls_back(plugin: dfplugin.Plugin) -> None:
    ctx = datafusion.SessionContext()
    before = (set(ctx.udfs()), set(ctx.udafs()), set(ctx.udwfs()))

    class Boom(RuntimeError):
        pass

    real = ctx.register_udwf

    def failing(*_a, **_k):
        raise Boom("injected failure")

    ctx.register_udwf = failing  # type: ignore[method-assign]
    if not plugin.objects("window_udf"):
        ctx.register_udtf = failing  # type: ignore[method-assign]
    with pytest.raises(dfplugin.PluginInstallError) as e:
        plugin.install(ctx)
    assert e.value.kind == "install_failed" and "injected failure" in str(e.value)
    assert (set(ctx.udfs()), set(ctx.udafs()), set(ctx.udwfs())) == before
    ctx.register_udwf = real  # type: ignore[method-assign]
    del ctx.register_udwf
    # Nothing half-installed: a normal install now succeeds.
    ctx2 = datafusion.SessionContext()
    plugin.install(ctx2)


# ---------------------------------------------------------------------------------------
# Capabilities and future providers


def test_capabilities_matrix(plugin: dfplugin.Plugin) -> None:
    caps = plugin.capabilities()
    declared = set(plugin.manifest["capabilities"])
    for name, c in caps.items():
        assert c["declared"] == (name in declared)
        assert c["reason"]
    for name in (
        "scalar_udf",
        "aggregate_udf",
        "window_udf",
        "table_function",
        "physical_optimizer_rule",
        "config_namespace",
        "table_provider",
        "table_provider_factory",
        "relation_planner",
        "analyzer_rule",
        "dml",
    ):
        assert caps[name]["installable"], name
    assert "register_table_factory" in caps["table_provider_factory"]["reason"]
    assert "register_table" in caps["table_provider"]["reason"]
    assert "dfplugin.sql" in caps["analyzer_rule"]["reason"] and "DataFrame API" in caps["analyzer_rule"]["reason"]
    assert "DELETE / UPDATE" in caps["dml"]["reason"]
    with pytest.raises(ValueError):
        plugin.capabilities(host="spark")


def test_capabilities_of_a_build_without_the_hand_over_entry_points(plugin: dfplugin.Plugin, monkeypatch) -> None:
    """An older build of the plugin lacks dfplugin_describe_plan / dfplugin_dml_provider: its
    policy and DELETE / UPDATE are reported not installable, naming the missing entry point."""
    real = plugin.library.exports_symbol
    monkeypatch.setattr(plugin.library, "exports_symbol", lambda name: name not in ("dfplugin_describe_plan", "dfplugin_dml_provider") and real(name))
    caps = plugin.capabilities()
    assert not caps["analyzer_rule"]["installable"] and "dfplugin_describe_plan" in caps["analyzer_rule"]["reason"]
    assert not caps["dml"]["installable"] and "rebuild" in caps["dml"]["reason"]
    assert caps["relation_planner"]["installable"]


def test_delta_table_needs_a_delta_provider(fixture_lib) -> None:
    """A plugin without a ``delta`` table provider says so, before calling into the library."""
    good = dfplugin.load(fixture_lib("good"))
    assert "delta" not in good.objects("table_provider")
    with pytest.raises(dfplugin.PluginError) as e:
        good.delta_table("file:///tmp/none", version=1)
    assert e.value.kind == "unknown_object"
    assert "table_provider" in str(e.value) and "delta" in str(e.value)
    with pytest.raises(ValueError):
        good.delta_table("file:///tmp/none", version=1, timestamp="2024-01-01T00:00:00Z")


def test_install_rejects_non_context(plugin: dfplugin.Plugin) -> None:
    with pytest.raises(TypeError, match="SessionContext"):
        plugin.install(object())


def test_second_config_extension_is_refused(plugin: dfplugin.Plugin) -> None:
    cfg = plugin.session_config()
    with pytest.raises(dfplugin.PluginInstallError) as e:
        plugin.session_config(config=cfg, options={"span.line_base": 1})
    assert e.value.kind == "config_conflict"


def test_session_config_keeps_other_settings(plugin: dfplugin.Plugin) -> None:
    cfg = plugin.session_config(config=datafusion.SessionConfig().with_batch_size(123), options={"span.line_base": 1})
    ctx = datafusion.SessionContext(cfg.with_information_schema(True))
    rows = ctx.sql(
        "SELECT name, value FROM information_schema.df_settings "
        "WHERE name IN ('datafusion.execution.batch_size', 'codeanatomy.span.line_base') ORDER BY name"
    ).to_pylist()
    assert [r["value"] for r in rows] == ["1", "123"]


def test_undeclarable_capability_is_skipped_loudly_or_refused(fixture_lib, caplog, monkeypatch) -> None:
    """A plugin declaring something datafusion-python cannot install (here: analyzer rules from
    a build without dfplugin_describe_plan): refused with skip_unavailable=False; by default
    installed partially, with one warning and the report saying what was left out."""
    good = dfplugin.load(fixture_lib("good"))
    manifest = good.manifest
    manifest["capabilities"] = manifest["capabilities"] + ["analyzer_rule"]
    fake = dfplugin.Plugin(good.path, manifest, good.library)
    real = good.library.exports_symbol
    monkeypatch.setattr(good.library, "exports_symbol", lambda name: name != "dfplugin_describe_plan" and real(name))
    ctx = datafusion.SessionContext()
    with pytest.raises(dfplugin.PluginInstallError) as e:
        fake.install(ctx, skip_unavailable=False)
    assert e.value.kind == "capability_unavailable" and "analyzer_rule" in str(e.value)
    assert "fixture_echo" not in ctx.udfs()
    with caplog.at_level(logging.WARNING, logger="dfplugin"):
        report = fake.install(ctx)
    assert report.not_installed == ["analyzer_rule"]
    assert "fixture_echo" in ctx.udfs()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "analyzer_rule" in warnings[0] and "dfplugin_describe_plan" in warnings[0], warnings
