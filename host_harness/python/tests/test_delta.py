"""Delta tables through the plugin (ABI 1.2): the ``DELTA`` table provider factory, the
``delta`` table provider (``plugin.delta_table``), the ``delta_*`` table functions, time
travel, pinned files, errors and object lifetimes. deltalake==1.6.6 writes the tables and is
the oracle. deltalake's own provider still works alongside the plugin.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
from pathlib import Path
from typing import Any

import datafusion
import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dfplugin
from conftest import require_function
from delta_support import UTC, canonical_rows, differences, set_commit_times, sql_string
from dfplugin._ffi import capsule_stats

#: Commit times of the fixture table (file modification times of its commits).
COMMIT_TIMES = [dt.datetime(2024, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4)]

TABLE_FUNCTIONS = ("delta_scan", "delta_changes", "delta_snapshot", "delta_files")


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    """A partitioned table with change data feed and four commits on 2024-01-01..04:
    v0 create (ids 1-4), v1 append (5, 6), v2 delete id 2, v3 update id 3."""
    path = tmp_path_factory.mktemp("delta") / "events"
    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("part", pa.string())])
    deltalake.write_deltalake(
        str(path),
        pa.table({"id": [1, 2, 3, 4], "name": ["a", "b", "c", "d"], "part": ["x", "x", "y", "y"]}, schema=schema),
        partition_by=["part"],
        configuration={"delta.enableChangeDataFeed": "true"},
    )
    deltalake.write_deltalake(
        str(path), pa.table({"id": [5, 6], "name": ["e", "f"], "part": ["x", "z"]}, schema=schema), mode="append"
    )
    deltalake.DeltaTable(str(path)).delete("id = 2")
    deltalake.DeltaTable(str(path)).update(updates={"name": "'c2'"}, predicate="id = 3")
    set_commit_times(path, COMMIT_TIMES)
    assert deltalake.DeltaTable(str(path)).version() == 3
    return path


def oracle(path: Path, version: Any = None) -> pa.Table:
    t = deltalake.DeltaTable(str(path))
    if version is not None:
        t.load_as_version(version)
    return t.to_pyarrow_table()


def select(ctx: Any, sql: str) -> pa.Table:
    return ctx.sql(sql).to_arrow_table()


def assert_same(actual: pa.Table, expected: pa.Table, what: str) -> None:
    diff = differences(actual, expected, what)
    assert not diff, "\n".join(diff)


def provider_rows(plugin: dfplugin.Plugin, path: Any, **kwargs: Any) -> pa.Table:
    ctx = datafusion.SessionContext()
    ctx.register_table("t", plugin.delta_table(path, **kwargs))
    return select(ctx, "SELECT * FROM t")


@pytest.fixture()
def delta_ctx(plugin: dfplugin.Plugin):
    for name in TABLE_FUNCTIONS:
        require_function(plugin, "table_function", name)
    if "DELTA" not in plugin.objects("table_provider_factory"):
        pytest.fail(f"{plugin.path} exports no DELTA table provider factory (manifest: {plugin.manifest['objects']})")
    return plugin.session_context()


# ---------------------------------------------------------------------------------------
# manifest and install


def test_manifest_declares_delta(plugin: dfplugin.Plugin) -> None:
    m = plugin.manifest
    assert (m["abi"]["major"], m["abi"]["minor"]) >= (1, 2)
    assert {"table_provider", "table_provider_factory"} <= set(m["capabilities"])
    assert plugin.objects("table_provider_factory") == ["DELTA"]
    assert plugin.objects("table_provider") == ["delta"]
    assert set(TABLE_FUNCTIONS) <= set(plugin.objects("table_function"))
    caps = plugin.capabilities()
    assert caps["table_provider"]["installable"] and caps["table_provider_factory"]["installable"]


def test_install_registers_factory_once(plugin: dfplugin.Plugin, delta_ctx) -> None:
    objs = delta_ctx.sql("SELECT kind, name FROM dfplugin_objects() WHERE kind = 'table_provider_factory'").to_pylist()
    assert objs == [{"kind": "table_provider_factory", "name": "DELTA"}]
    # A second install into the same session is a collision (the factory included), nothing changes.
    with pytest.raises(dfplugin.PluginInstallError) as e:
        plugin.install(delta_ctx)
    assert e.value.kind == "name_collision" and "table_provider_factory 'DELTA'" in str(e.value)


def test_factory_collision_is_detected_before_anything_is_registered(plugin: dfplugin.Plugin) -> None:
    """A session that already has a DELTA factory (here deltalake's own is not one; a plugin
    factory is) refuses the whole install: no function is registered."""
    ctx = datafusion.SessionContext(plugin.session_config())
    ctx.register_table_factory("DELTA", plugin.table_provider_factory("DELTA"))
    with pytest.raises(dfplugin.PluginInstallError) as e:
        plugin.install(ctx)
    assert e.value.kind == "name_collision" and "DELTA" in str(e.value)
    assert not set(plugin.objects("scalar_udf")) & set(ctx.udfs())


# ---------------------------------------------------------------------------------------
# the four ways in agree with the oracle


def test_factory_ddl(events: Path, delta_ctx) -> None:
    delta_ctx.sql(f"CREATE EXTERNAL TABLE ev STORED AS DELTA LOCATION {sql_string(str(events))}").collect()
    assert_same(select(delta_ctx, "SELECT * FROM ev"), oracle(events), "CREATE EXTERNAL TABLE ... STORED AS DELTA")
    # lower-case format name, a file:// URI, and a filter on the partition column
    delta_ctx.sql(f"CREATE EXTERNAL TABLE ev2 STORED AS delta LOCATION {sql_string(events.as_uri())}").collect()
    got = delta_ctx.sql("SELECT id FROM ev2 WHERE part = 'x' ORDER BY id").to_pylist()
    assert got == [{"id": 1}, {"id": 5}]


def test_named_provider(plugin: dfplugin.Plugin, events: Path) -> None:
    assert_same(provider_rows(plugin, events), oracle(events), "delta_table(path)")
    assert_same(provider_rows(plugin, str(events)), oracle(events), "delta_table(str)")
    assert_same(provider_rows(plugin, events.as_uri()), oracle(events), "delta_table(file:// uri)")


def test_provider_in_plugin_session_with_functions(plugin: dfplugin.Plugin, events: Path, delta_ctx) -> None:
    require_function(plugin, "scalar_udf", "stable_id")
    delta_ctx.register_table("ev", plugin.delta_table(events))
    rows = delta_ctx.sql("SELECT name, stable_id('file', name) AS sid FROM ev WHERE id <= 3 ORDER BY id").to_pylist()
    assert rows == [
        {"name": n, "sid": "file:" + hashlib.blake2b(n.encode(), digest_size=16).hexdigest()} for n in ("a", "c2")
    ]


def test_delta_scan_latest_version_and_timestamp(events: Path, delta_ctx) -> None:
    uri = sql_string(str(events))
    assert_same(select(delta_ctx, f"SELECT * FROM delta_scan({uri})"), oracle(events), "delta_scan(uri)")
    for v in range(4):
        assert_same(select(delta_ctx, f"SELECT * FROM delta_scan({uri}, {v})"), oracle(events, v), f"delta_scan(uri, {v})")
    ts = "2024-01-02T12:00:00Z"
    assert_same(select(delta_ctx, f"SELECT * FROM delta_scan({uri}, '{ts}')"), oracle(events, 1), f"delta_scan(uri, '{ts}')")


def test_table_functions_agree_with_provider(plugin: dfplugin.Plugin, events: Path, delta_ctx) -> None:
    uri = sql_string(str(events))
    for v in range(4):
        delta_ctx.register_table(f"p{v}", plugin.delta_table(events, version=v))
        assert_same(
            select(delta_ctx, f"SELECT * FROM delta_scan({uri}, {v})"),
            select(delta_ctx, f"SELECT * FROM p{v}"),
            f"delta_scan v{v} vs provider v{v}",
        )


def _column(table: pa.Table, *candidates: str) -> str:
    for c in candidates:
        if c in table.column_names:
            return c
    raise AssertionError(f"none of the columns {candidates} in {table.column_names}")


def test_delta_files(events: Path, delta_ctx) -> None:
    uri = sql_string(str(events))
    for v in (None, 0, 1, 2, 3):
        sql = f"SELECT * FROM delta_files({uri})" if v is None else f"SELECT * FROM delta_files({uri}, {v})"
        files = select(delta_ctx, sql)
        t = deltalake.DeltaTable(str(events), version=v) if v is not None else deltalake.DeltaTable(str(events))
        actions = pa.table(t.get_add_actions(flatten=True))
        path_col = _column(files, "path")
        assert sorted(files.column(path_col).to_pylist()) == sorted(actions.column("path").to_pylist()), sql
        if "size_bytes" in files.column_names:
            got = dict(zip(files.column(path_col).to_pylist(), files.column("size_bytes").to_pylist()))
            assert got == dict(zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist())), sql
        if "num_records" in files.column_names:
            assert sum(files.column("num_records").to_pylist()) == t.to_pyarrow_table().num_rows, sql


def test_delta_snapshot(events: Path, delta_ctx) -> None:
    uri = sql_string(str(events))
    latest = select(delta_ctx, f"SELECT * FROM delta_snapshot({uri})")
    assert latest.num_rows >= 1
    assert latest.column(_column(latest, "version")).to_pylist()[0] == 3
    for v in range(4):
        snap = select(delta_ctx, f"SELECT * FROM delta_snapshot({uri}, {v})")
        assert snap.column(_column(snap, "version")).to_pylist()[0] == v
        if "num_files" in snap.column_names:
            expected = pa.table(deltalake.DeltaTable(str(events), version=v).get_add_actions()).num_rows
            assert snap.column("num_files").to_pylist()[0] == expected


def _cdf(path: Path, start: int, end: int) -> pa.Table:
    return pa.table(deltalake.DeltaTable(str(path)).load_cdf(starting_version=start, ending_version=end))


def test_delta_changes(events: Path, delta_ctx) -> None:
    uri = sql_string(str(events))
    for start, end in ((0, 3), (0, 0), (1, 2), (2, 3), (3, 3)):
        got = select(delta_ctx, f"SELECT * FROM delta_changes({uri}, {start}, {end})")
        assert_same(got, _cdf(events, start, end), f"delta_changes({start}, {end})")
    got = select(delta_ctx, f"SELECT * FROM delta_changes({uri}, 1)")
    assert_same(got, _cdf(events, 1, 3), "delta_changes(1)")
    kinds = delta_ctx.sql(
        f"SELECT _change_type, count(*) AS n FROM delta_changes({uri}, 2, 3) GROUP BY _change_type ORDER BY 1"
    ).to_pylist()
    assert kinds == [
        {"_change_type": "delete", "n": 1},
        {"_change_type": "update_postimage", "n": 1},
        {"_change_type": "update_preimage", "n": 1},
    ]


# ---------------------------------------------------------------------------------------
# time travel


def test_time_travel_by_version(plugin: dfplugin.Plugin, events: Path) -> None:
    for v in range(4):
        assert_same(provider_rows(plugin, events, version=v), oracle(events, v), f"delta_table(version={v})")


@pytest.mark.parametrize(
    "ts, version",
    [
        ("2024-01-01T00:00:00Z", 0),
        ("2024-01-01T23:59:59Z", 0),
        ("2024-01-02T00:00:00Z", 1),
        ("2024-01-03T01:00:00+02:00", 1),  # 2024-01-02T23:00Z: still version 1
        ("2024-01-03T12:00:00Z", 2),
        ("2030-01-01T00:00:00Z", 3),
    ],
)
def test_time_travel_by_timestamp(plugin: dfplugin.Plugin, events: Path, ts: str, version: int) -> None:
    expected = oracle(events, ts)
    assert deltalake.DeltaTable(str(events), version=version).to_pyarrow_table().num_rows == expected.num_rows
    assert_same(provider_rows(plugin, events, timestamp=ts), expected, f"delta_table(timestamp={ts!r})")


def test_time_travel_by_datetime(plugin: dfplugin.Plugin, events: Path) -> None:
    when = dt.datetime(2024, 1, 3, 1, 0, tzinfo=UTC)
    assert_same(provider_rows(plugin, events, timestamp=when), oracle(events, 2), "delta_table(timestamp=datetime)")
    with pytest.raises(ValueError, match="time zone"):
        plugin.delta_table(events, timestamp=dt.datetime(2024, 1, 3))


# ---------------------------------------------------------------------------------------
# pinned files


def test_pinned_files(plugin: dfplugin.Plugin, events: Path) -> None:
    actions = pa.table(deltalake.DeltaTable(str(events)).get_add_actions(flatten=True)).to_pylist()
    assert len(actions) >= 3
    for chosen in (actions[:1], actions[1:3]):
        paths = [a["path"] for a in chosen]
        parts = []
        for a in chosen:
            data = pq.read_table(events / a["path"])
            n = data.num_rows
            parts.append(
                pa.table(
                    {
                        "id": data.column("id").cast(pa.int64()),
                        "name": data.column("name").cast(pa.string()),
                        "part": pa.array([a["partition.part"]] * n, pa.string()),
                    }
                )
            )
        expected = pa.concat_tables(parts)
        assert_same(provider_rows(plugin, events, files=paths), expected, f"delta_table(files={paths})")
    # pinned files of an older version
    old = pa.table(deltalake.DeltaTable(str(events), version=0).get_add_actions(flatten=True)).to_pylist()
    got = provider_rows(plugin, events, version=0, files=[old[0]["path"]])
    assert got.num_rows == old[0]["num_records"]


def test_file_column(plugin: dfplugin.Plugin, events: Path) -> None:
    got = provider_rows(plugin, events, file_column="_file")
    assert got.column_names == oracle(events).column_names + ["_file"]
    actions = pa.table(deltalake.DeltaTable(str(events)).get_add_actions(flatten=True)).to_pylist()
    counts: dict = {}
    for f in got.column("_file").to_pylist():
        counts[f] = counts.get(f, 0) + 1
    by_path = {a["path"]: a["num_records"] for a in actions}
    # each row names its data file (relative to the table root or as a full URI)
    resolved = {next(p for p in by_path if f == p or f.endswith("/" + p)): n for f, n in counts.items()}
    assert resolved == by_path
    assert_same(got.drop_columns(["_file"]), oracle(events), "delta_table(file_column=...) without the column")


def test_pinned_file_not_in_snapshot_is_an_error(plugin: dfplugin.Plugin, events: Path) -> None:
    """A pinned file the snapshot lacks is an error naming it (when the provider is opened or,
    at the latest, when it is scanned), never an empty result."""
    with pytest.raises(Exception) as e:
        ctx = datafusion.SessionContext()
        ctx.register_table("t", plugin.delta_table(events, files=["part=x/no-such-file.parquet"]))
        ctx.sql("SELECT * FROM t").collect()
    assert "no-such-file.parquet" in str(e.value), e.value


# ---------------------------------------------------------------------------------------
# errors


def _plugin_error(call) -> dfplugin.PluginError:
    with pytest.raises(dfplugin.PluginError) as e:
        call()
    err = e.value
    assert err.kind == "plugin_error" and err.plugin_message, err
    assert err.code not in (None, 0, 2), f"expected a specific plugin error code, got {err.code}: {err}"
    return err


def test_missing_table(plugin: dfplugin.Plugin, tmp_path: Path, delta_ctx) -> None:
    missing = tmp_path / "no_such_table"
    err = _plugin_error(lambda: plugin.delta_table(missing))
    assert str(missing) in err.plugin_message, err
    # an existing directory that is not a Delta table
    (tmp_path / "plain").mkdir()
    err = _plugin_error(lambda: plugin.delta_table(tmp_path / "plain"))
    assert str(tmp_path / "plain") in err.plugin_message, err
    with pytest.raises(Exception) as e:
        delta_ctx.sql(f"SELECT * FROM delta_scan({sql_string(str(missing))})").collect()
    assert str(missing) in str(e.value)
    with pytest.raises(Exception) as e:
        delta_ctx.sql(f"CREATE EXTERNAL TABLE m STORED AS DELTA LOCATION {sql_string(str(missing))}").collect()
    assert str(missing) in str(e.value)


def test_version_beyond_latest(plugin: dfplugin.Plugin, events: Path, delta_ctx) -> None:
    err = _plugin_error(lambda: plugin.delta_table(events, version=17))
    assert str(events) in err.plugin_message and "17" in err.plugin_message, err
    with pytest.raises(Exception) as e:
        delta_ctx.sql(f"SELECT * FROM delta_scan({sql_string(str(events))}, 17)").collect()
    assert str(events) in str(e.value) and "17" in str(e.value)


def test_timestamp_before_first_commit(plugin: dfplugin.Plugin, events: Path) -> None:
    err = _plugin_error(lambda: plugin.delta_table(events, timestamp="2020-05-06T07:08:09Z"))
    assert str(events) in err.plugin_message and "2020-05-06" in err.plugin_message, err


def test_bad_timestamp_text(plugin: dfplugin.Plugin, events: Path) -> None:
    err = _plugin_error(lambda: plugin.delta_table(events, timestamp="yesterday-ish"))
    assert "yesterday-ish" in err.plugin_message, err


def test_unknown_option(plugin: dfplugin.Plugin, events: Path) -> None:
    err = _plugin_error(lambda: plugin.table_provider("delta", {"table_uri": str(events), "vesion": 1}))
    assert "vesion" in err.plugin_message, err
    err = _plugin_error(lambda: plugin.table_provider("delta", {"uri": str(events)}))
    assert "table_uri" in err.plugin_message or "uri" in err.plugin_message, err


def test_version_and_timestamp(plugin: dfplugin.Plugin, events: Path) -> None:
    live = plugin.live_objects()
    with pytest.raises(ValueError, match="not both"):
        plugin.delta_table(events, version=1, timestamp="2024-01-02T00:00:00Z")
    assert plugin.live_objects() == live
    # the plugin itself refuses both, too
    err = _plugin_error(
        lambda: plugin.table_provider("delta", {"table_uri": str(events), "version": 1, "timestamp": "2024-01-02T00:00:00Z"})
    )
    assert "version" in err.plugin_message and "timestamp" in err.plugin_message, err


def test_argument_types_are_checked_before_the_plugin(plugin: dfplugin.Plugin, events: Path) -> None:
    live = plugin.live_objects()
    with pytest.raises(TypeError):
        plugin.delta_table(events, version="1")
    with pytest.raises(ValueError):
        plugin.delta_table(events, version=-1)
    with pytest.raises(TypeError):
        plugin.delta_table(events, files="part-0.parquet")
    with pytest.raises(dfplugin.PluginError) as e:
        plugin.table_provider("parquet", {"table_uri": str(events)})
    assert e.value.kind == "unknown_object"
    assert plugin.live_objects() == live


def test_secrets_are_not_echoed(plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    secret = "s3cr3t-value-9f2b"
    store = {"AWS_SECRET_ACCESS_KEY": secret, "AWS_ACCESS_KEY_ID": "id", "AWS_REGION": "us-east-1"}
    with pytest.raises(dfplugin.PluginError) as e:
        plugin.delta_table(tmp_path / "none", storage_options=store)
    assert secret not in str(e.value)
    # an option error must not echo the storage options either
    with pytest.raises(dfplugin.PluginError) as e:
        plugin.table_provider("delta", {"table_uri": str(tmp_path / "none"), "storage_options": store, "bogus": 1})
    assert "bogus" in str(e.value)
    assert secret not in str(e.value), f"the plugin's error echoes a secret storage option: {e.value.plugin_message}"


# ---------------------------------------------------------------------------------------
# lifetimes


def test_providers_are_freed_exactly_once(plugin: dfplugin.Plugin, events: Path, delta_ctx) -> None:
    def churn(n: int) -> None:
        for i in range(n):
            ctx = datafusion.SessionContext()
            ctx.register_table("t", plugin.delta_table(events, version=i % 4))
            assert ctx.sql("SELECT count(*) AS n FROM t").to_pylist()[0]["n"] > 0
            ctx.deregister_table("t")
            del ctx
        for i in range(n):  # DDL through the factory and the table functions
            delta_ctx.sql(f"CREATE EXTERNAL TABLE c{i} STORED AS DELTA LOCATION {sql_string(str(events))}").collect()
            delta_ctx.sql(f"SELECT count(*) FROM c{i}").collect()
            delta_ctx.deregister_table(f"c{i}")
            delta_ctx.sql(f"SELECT count(*) FROM delta_scan({sql_string(str(events))}, {i % 4})").collect()

    churn(5)
    gc.collect()
    live0, stats0 = plugin.live_objects(), capsule_stats()
    churn(100)
    gc.collect()
    stats1 = capsule_stats()
    assert stats1["created"] - stats0["created"] >= 100  # one capsule per registered provider at least
    assert stats1["created"] - stats0["created"] == stats1["freed"] - stats0["freed"]
    assert plugin.live_objects() == live0


def test_provider_capsule_ownership(plugin: dfplugin.Plugin, events: Path) -> None:
    provider = plugin.delta_table(events)
    live = plugin.live_objects()
    caps = [provider.__datafusion_table_provider__(datafusion.SessionContext()) for _ in range(20)]
    assert plugin.live_objects() == live + 20
    del caps
    gc.collect()
    assert plugin.live_objects() == live
    factory = plugin.table_provider_factory("DELTA")
    cap = factory.__datafusion_table_provider_factory__(datafusion.SessionContext().__datafusion_logical_extension_codec__())
    assert plugin.live_objects() == live + 1
    del cap
    gc.collect()
    assert plugin.live_objects() == live


# ---------------------------------------------------------------------------------------
# deltalake's own provider alongside the plugin


def test_deltalake_provider_with_plugin_installed(plugin: dfplugin.Plugin, tmp_path) -> None:
    """deltalake==1.6.6's provider (datafusion-ffi 55.1) in a session that also runs the
    plugin's functions and physical optimizer rule."""
    require_function(plugin, "scalar_udf", "stable_id")
    path = str(tmp_path / "files")
    deltalake.write_deltalake(path, pa.table({"path": ["b.py", "a.py"], "n": [2, 1]}))
    ctx = plugin.session_context()
    ctx.register_table("files", deltalake.DeltaTable(path))
    rows = ctx.sql("SELECT path, stable_id('file', path) AS id FROM files ORDER BY path").to_pylist()

    assert rows == [
        {"path": p, "id": "file:" + hashlib.blake2b(p.encode(), digest_size=16).hexdigest()} for p in ("a.py", "b.py")
    ]
    # and the plugin's provider of the same table in the same session agrees with it
    ctx.register_table("files2", plugin.delta_table(path))
    assert canonical_rows(select(ctx, "SELECT * FROM files2")) == canonical_rows(select(ctx, "SELECT * FROM files"))
