"""The whole pack in a datafusion-python 55 session, through ``ctx.sql`` (routed to
``dfplugin.sql``): time travel in SQL (never another version's rows), DML equal to the Rust
host's with deltalake-python as the oracle, the SQL policy on what DataFusion runs as it plans
and on what it cannot hand over, and table functions that keep filter pushdown."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, List, Tuple

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import dfplugin
from conftest import REPO, TARGET
from delta_support import canonical_rows
from dfplugin.conform import find_error_code


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


# ---------------------------------------------------------------------------------------
# DML: the same statements in this host and in the Rust host, deltalake-python as the oracle

RUST_HOST = TARGET / "release" / "dfplugin"

DML_STEPS = [
    "INSERT INTO t VALUES (4, 'd', 'y'), (5, 'e', 'z')",
    "DELETE FROM t WHERE id = 2 OR part = 'z'",
    "UPDATE t SET name = upper(name) WHERE part = 'y'",
    "DELETE FROM t WHERE false",
    "INSERT INTO t SELECT id, name, part FROM t WHERE id > 1000",
    "DELETE FROM t",
    "DELETE FROM t WHERE id IS NULL OR id IS NOT NULL",
    "INSERT INTO t VALUES (100, 'big', 'x')",
    "UPDATE t SET id = id + 1000 WHERE part = 'x'",
    "INSERT INTO t VALUES (NULL, 'n', 'x')",
    "UPDATE t SET id = NULL WHERE part = 'y'",
    "INSERT OVERWRITE t VALUES (9, 'i', 'x'), (10, 'j', 'y')",
    "UPDATE t SET name = 'k' WHERE id = 10",
    "DELETE FROM t WHERE id = 9",
]


def _dml_table(path: Path) -> None:
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string()), ("part", pa.string())])
    write_deltalake(
        str(path), pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"], "part": ["x", "x", "y"]}, schema=schema), partition_by=["part"]
    )
    DeltaTable(str(path)).alter.add_constraint({"id_small": "id < 100"})


def _oracle(path: Path) -> List[tuple]:
    return sorted(canonical_rows(DeltaTable(str(path)).to_pyarrow_table(), ["id", "name", "part"]))


def _outcome(count: Any = None, error: str = "") -> Tuple[str, Any]:
    return ("count", count) if not error else ("error", find_error_code(error) or "untagged")


def test_dml_matches_the_rust_host_statement_by_statement(plugin: dfplugin.Plugin, lib_path: str, tmp_path: Path) -> None:
    """DELETE, UPDATE, INSERT INTO and INSERT OVERWRITE through ctx.sql: after every statement
    the row count (or the error's code), the rows deltalake-python reads and the number of
    commits equal the Rust host's on a twin table. The full-table guard, CHECK and NOT NULL
    refuse with the same codes and commit nothing."""
    if not RUST_HOST.is_file():
        pytest.fail(f"{RUST_HOST} not found; run `make build`")
    here, there = tmp_path / "python", tmp_path / "rust"
    _dml_table(here)
    shutil.copytree(here, there)
    ctx = plugin.session_context()
    ctx.sql(f"CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{here}'").collect()
    register = f"CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{there}'"
    for statement in DML_STEPS:
        try:
            ours = _outcome(count=ctx.sql(statement).to_pydict()["count"][0])
        except Exception as e:  # an error is an outcome to compare, by its code
            ours = _outcome(error=str(e))
        out = subprocess.run(
            [str(RUST_HOST), "sql", lib_path, "-e", f"{register};\n{statement}"], capture_output=True, text=True, timeout=300
        )
        counts = re.findall(r"^\| (\d+) +\|$", out.stdout, re.MULTILINE)
        theirs = _outcome(count=int(counts[-1])) if out.returncode == 0 and counts else _outcome(error=out.stderr or "no count")
        assert ours == theirs, f"{statement}: python {ours} vs rust {theirs} ({out.stderr.strip()[-300:]})"
        assert _oracle(here) == _oracle(there), statement
        assert DeltaTable(str(here)).version() == DeltaTable(str(there)).version(), f"{statement}: commit count"
    # Not only equal, but right: the guards refused, the last statements ran.
    assert _oracle(here) == [(10, "k", "y")]
    history = DeltaTable(str(here)).history()
    # 1 write + 1 constraint + INSERT, DELETE, UPDATE, OVERWRITE, UPDATE, DELETE (the rest commit nothing).
    assert len(history) == 8, [h.get("operation") for h in history]


def test_explain_shows_what_runs_and_a_condition_that_cannot_cross_is_refused(plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    write_deltalake(uri, pa.table({"id": pa.array([1, 2, 3], pa.int64())}))
    ctx = plugin.session_context()
    ctx.sql(f"CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{uri}'").collect()
    plans = {r["plan_type"]: r["plan"] for r in ctx.sql("EXPLAIN DELETE FROM t WHERE id = 1").to_pylist()}
    assert "physical_plan_error" not in plans and "DeltaDmlExec" in plans["physical_plan"], plans
    assert DeltaTable(uri).version() == 0, "EXPLAIN changes nothing"
    ctx.from_pydict({"k": [1]}, name="m")
    with pytest.raises(dfplugin.PluginError, match=r"IN \(<subquery>\).*Nothing was changed"):
        ctx.sql("DELETE FROM t WHERE id IN (SELECT k FROM m)")
    assert DeltaTable(uri).version() == 0 and DeltaTable(uri).to_pyarrow_table().num_rows == 3


def test_dml_on_a_table_of_no_plugin_is_left_to_datafusion(plugin: dfplugin.Plugin) -> None:
    """An in-memory table is DataFusion's own: its DELETE / UPDATE run as in a session without
    any plugin (DataFusion 55's MemTable supports them), not through the plugin."""
    import datafusion

    results = []
    for ctx in (plugin.session_context(), datafusion.SessionContext()):
        ctx.from_pydict({"x": [1, 2, 3]}, name="m")
        counts = [ctx.sql(q).to_pydict()["count"][0] for q in ("DELETE FROM m WHERE x = 1", "UPDATE m SET x = x * 10 WHERE x > 2")]
        results.append((counts, sorted(ctx.sql("SELECT x FROM m").to_pydict()["x"])))
    assert results[0] == results[1] == ([1, 1], [2, 30])


# ---------------------------------------------------------------------------------------
# The SQL policy beyond the conformance cases


def _policy_ctx(plugin: dfplugin.Plugin) -> Any:
    ctx = plugin.session_context()
    ctx.from_pydict({"x": [1, 2, 3]}, name="m")
    return ctx


def test_policy_checks_the_query_inside_ddl_copy_explain_and_parameters(plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    ctx = _policy_ctx(plugin)
    ctx.sql("SET codeanatomy.policy.deterministic = true").collect()
    refused = [
        "CREATE TABLE c AS SELECT random() AS r",
        "CREATE VIEW w AS SELECT x, random() AS r FROM m",
        f"COPY (SELECT random() AS r) TO '{tmp_path}/o.parquet'",
        "EXPLAIN SELECT random()",
        "INSERT INTO m SELECT CAST(random() * 10 AS BIGINT)",
    ]
    for statement in refused:
        with pytest.raises(dfplugin.PluginError, match=r"policy_violation.*random\(\)"):
            ctx.sql(statement)
    assert not (tmp_path / "o.parquet").exists()
    assert "c" not in ctx.catalog().schema().names() and "w" not in ctx.catalog().schema().names()
    with pytest.raises(dfplugin.PluginError, match="policy_violation"):
        ctx.sql("SELECT x FROM m WHERE x > $v + random()", param_values={"v": 1})
    assert ctx.sql("SELECT x FROM m WHERE x > $v", param_values={"v": 1}).to_pydict() == {"x": [2, 3]}
    # Stable functions are not volatile; the same statements run without the policy.
    assert ctx.sql("CREATE TABLE c AS SELECT now() IS NOT NULL AS ok").collect() == []
    ctx.sql("SET codeanatomy.policy.deterministic = false").collect()
    assert ctx.sql("SELECT count(*) AS n FROM (SELECT random() FROM m)").to_pydict() == {"n": [3]}


def test_a_plan_the_policy_cannot_see_is_refused_with_the_reason(plugin: dfplugin.Plugin) -> None:
    """DataFusion 55's protobuf has no IN (subquery): under a policy that must see functions,
    such a statement is refused naming why, never run unchecked; without one it runs."""
    ctx = _policy_ctx(plugin)
    query = "SELECT x FROM m WHERE x IN (SELECT x FROM m WHERE x > 1)"
    assert sorted(ctx.sql(query).to_pydict()["x"]) == [2, 3]
    ctx.sql("SET codeanatomy.policy.allow_ddl = false").collect()
    assert sorted(ctx.sql(query).to_pydict()["x"]) == [2, 3], "kind-only policies need no plan"
    ctx.sql("SET codeanatomy.policy.deterministic = true").collect()
    with pytest.raises(dfplugin.PluginError, match=r"policy_violation.*cannot be checked.*IN \(<subquery>\)"):
        ctx.sql(query)
    # A statement the plugin cannot even parse is not waved through either.
    with pytest.raises(dfplugin.PluginError, match=r"policy_violation.*SQL parser cannot read"):
        ctx.sql("SELEC random()")


def test_the_docs_say_which_entry_points_the_policy_covers() -> None:
    text = (REPO / "host_harness" / "python" / "README.md").read_text(encoding="utf-8")
    assert "DataFrame API" in text and "outside the policy" in text, "README must say what the policy does not see"


# ---------------------------------------------------------------------------------------
# Table functions keep filter pushdown


def test_delta_scan_prunes_the_same_files_as_the_rust_host(plugin: dfplugin.Plugin, lib_path: str, tmp_path: Path) -> None:
    uri = str(tmp_path / "files")
    for i in range(6):  # one file per write, ids i*10 .. i*10+9
        write_deltalake(uri, pa.table({"id": pa.array(range(i * 10, i * 10 + 10), pa.int64())}), mode="append")
    query = f"SELECT id FROM delta_scan('{uri}') WHERE id BETWEEN 12 AND 27"
    ctx = plugin.session_context()
    ours = re.findall(r"files=(\d+)/(\d+)", str(ctx.sql(f"EXPLAIN {query}").to_pydict()))
    out = subprocess.run([str(RUST_HOST), "sql", lib_path, "-e", f"EXPLAIN {query}"], capture_output=True, text=True, timeout=300)
    theirs = re.findall(r"files=(\d+)/(\d+)", out.stdout)
    assert ours == theirs == [("2", "6")], (ours, theirs, out.stderr[-300:])
    assert sorted(ctx.sql(query).to_pydict()["id"]) == list(range(12, 28))
    # Settings reach the call: the policy's allowed locations hold for the function too.
    ctx.sql(f"SET codeanatomy.policy.allowed_locations = '{tmp_path}/elsewhere'").collect()
    with pytest.raises(Exception, match="policy_violation"):
        ctx.sql(query).collect()
