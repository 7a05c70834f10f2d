"""The pack in a datafusion-python 55 session: time travel in SQL (never another version's rows),
SET validation, and the experimental query planner (DELETE / UPDATE) against deltalake-python."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import dfplugin


@pytest.fixture()
def two_versions(tmp_path: Path) -> str:
    """A Delta table written by deltalake-python: 2 rows at version 0, 3 rows at version 1."""
    uri = str(tmp_path / "t")
    write_deltalake(uri, pa.table({"id": pa.array([1, 2], pa.int64())}))
    write_deltalake(uri, pa.table({"id": pa.array([3], pa.int64())}), mode="append")
    return uri


def _count(ctx, sql: str) -> int:
    return ctx.sql(sql).to_pydict()["n"][0]


def test_version_as_of_never_reads_the_latest_snapshot(plugin: dfplugin.Plugin, two_versions: str) -> None:
    """The issue's case: a new user's three lines, the databricks dialect, VERSION AS OF 0."""
    ctx = plugin.session_context()
    ctx.sql(f"CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{two_versions}'").collect()
    ctx.sql("SET datafusion.sql_parser.dialect = 'databricks'").collect()
    assert _count(ctx, "SELECT count(*) n FROM t VERSION AS OF 0") == 2
    assert _count(ctx, f"SELECT count(*) n FROM delta_scan('{two_versions}', 0)") == 2
    assert _count(ctx, "SELECT count(*) n FROM t") == 3
    # Qualified columns and self joins keep working under the original name or alias.
    rows = ctx.sql("SELECT sum(t.id) AS s FROM t VERSION AS OF 0").to_pydict()
    assert rows == {"s": [3]}
    joined = ctx.sql("SELECT count(*) n FROM t VERSION AS OF 1 AS a JOIN t VERSION AS OF 0 AS b ON a.id = b.id")
    assert joined.to_pydict() == {"n": [2]}
    # The same through the explicit entry point, and for a table from plugin.delta_table.
    assert _count(ctx, "SELECT count(*) n FROM t VERSION AS OF 1") == 3
    ctx.register_table("d", plugin.delta_table(two_versions))
    assert dfplugin.sql(ctx, "SELECT count(*) n FROM d VERSION AS OF 0").to_pydict() == {"n": [2]}
    oracle = sorted(DeltaTable(two_versions, version=0).to_pyarrow_table().column("id").to_pylist())
    got = sorted(ctx.sql("SELECT id FROM d VERSION AS OF 0").to_pydict()["id"])
    assert got == oracle


def test_timestamp_as_of_reads_that_snapshot(plugin: dfplugin.Plugin, two_versions: str) -> None:
    ctx = plugin.session_context()
    ctx.register_table("t", plugin.delta_table(two_versions))
    ctx.sql("SET datafusion.sql_parser.dialect = 'databricks'").collect()
    history = {h["version"]: h["timestamp"] for h in DeltaTable(two_versions).history()}
    import datetime

    at_v0 = datetime.datetime.fromtimestamp(history[0] / 1000, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert _count(ctx, f"SELECT count(*) n FROM t TIMESTAMP AS OF '{at_v0}'") == 2


def test_a_clause_that_cannot_be_honoured_fails_naming_table_and_clause(plugin: dfplugin.Plugin, two_versions: str) -> None:
    ctx = plugin.session_context()
    ctx.from_pydict({"x": [1, 2, 3]}, name="m")
    ctx.sql("SET datafusion.sql_parser.dialect = 'databricks'").collect()
    with pytest.raises(dfplugin.PluginError) as info:
        ctx.sql("SELECT * FROM m VERSION AS OF 0")
    message = str(info.value)
    assert "'m'" in message and "VERSION AS OF 0" in message and "dfplugin.sql" in message
    # A clause after a table function does not even parse: loud either way.
    with pytest.raises(Exception, match="ParserError|delta_scan"):
        ctx.sql(f"SELECT * FROM delta_scan('{two_versions}') VERSION AS OF 0")
    # A session the plugin was not installed into cannot honour it: an error, not the latest rows.
    import datafusion

    bare = datafusion.SessionContext()
    bare.register_table("t", plugin.delta_table(two_versions))
    bare.sql("SET datafusion.sql_parser.dialect = 'databricks'").collect()
    with pytest.raises(dfplugin.PluginError, match="plugin.install"):
        bare.sql("SELECT count(*) FROM t VERSION AS OF 0")


def test_experimental_query_planner_runs_delete_and_update(plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    """DELETE / UPDATE on a plugin Delta table, one commit each, deltalake-python as the oracle."""
    import datafusion

    uri = str(tmp_path / "dml")
    write_deltalake(uri, pa.table({"id": pa.array([1, 2, 3], pa.int64())}))
    ctx = datafusion.SessionContext(plugin.session_config())
    plugin.install(ctx, query_planner=True)
    ctx.sql(f"CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{uri}'").collect()
    assert ctx.sql("DELETE FROM t WHERE id = 2").to_pydict() == {"count": [1]}
    assert sorted(DeltaTable(uri).to_pyarrow_table().column("id").to_pylist()) == [1, 3]
    assert DeltaTable(uri).version() == 1
    assert ctx.sql("UPDATE t SET id = id * 10 WHERE id = 3").to_pydict() == {"count": [1]}
    assert sorted(DeltaTable(uri).to_pyarrow_table().column("id").to_pylist()) == [1, 30]
    assert DeltaTable(uri).version() == 2
    assert ctx.sql("DELETE FROM t WHERE false").to_pydict() == {"count": [0]}
    assert DeltaTable(uri).version() == 2, "a DELETE that matches nothing commits nothing"
    with pytest.raises(Exception, match="allow_full_table_delete|every row"):
        ctx.sql("DELETE FROM t").collect()
    assert DeltaTable(uri).version() == 2
    ctx.sql("SET codeanatomy.policy.deterministic = true").collect()
    with pytest.raises(Exception, match="policy_violation"):
        ctx.sql("SELECT random()").collect()
