"""ABI 1.3 beyond datafusion-ffi, checked against independent readers.

- DML in the Rust host (``target/release/dfplugin sql``): after each INSERT / DELETE / UPDATE,
  deltalake-python 1.6.6 reads the table and must see exactly the expected rows; a CHECK
  constraint added by deltalake-python is enforced and leaves the table unchanged.
- The physical scan guard in datafusion-python 55 (it crosses as an FFI physical optimizer
  rule): denial and allowance for both keys, over a table deltalake-python wrote.
- Configuration in datafusion-python: datafusion-ffi cannot validate at ``SET``, so the first
  statement after a bad ``SET`` fails with the same ``invalid_config`` error.
- Capabilities datafusion-python cannot receive are reported, not skipped silently.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, List

import datafusion
import deltalake
import pyarrow as pa
import pytest

import dfplugin
from conftest import TARGET
from delta_support import canonical_rows, sql_string

RUST_HOST = TARGET / "release" / "dfplugin"


def rust_sql(lib_path: str, statements: List[str]) -> subprocess.CompletedProcess:
    if not RUST_HOST.is_file():
        pytest.fail(f"{RUST_HOST} not found; run `make build`")
    return subprocess.run(
        [str(RUST_HOST), "sql", lib_path, "-e", ";\n".join(statements)], capture_output=True, text=True, timeout=300
    )


def oracle_rows(path: Path) -> List[tuple]:
    return sorted(canonical_rows(deltalake.DeltaTable(str(path)).to_pyarrow_table(), ["id", "name", "part"]))


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    path = tmp_path / "t"
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), ("name", pa.string()), ("part", pa.string())])
    deltalake.write_deltalake(
        str(path),
        pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"], "part": ["x", "x", "y"]}, schema=schema),
        partition_by=["part"],
    )
    return path


def test_rust_host_dml_agrees_with_deltalake_python_after_each_statement(lib_path: str, table: Path) -> None:
    register = f"CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION {sql_string(str(table))}"
    steps = [
        ("INSERT INTO t VALUES (4, 'd', 'y'), (5, 'e', 'z')", [(1, "a", "x"), (2, "b", "x"), (3, "c", "y"), (4, "d", "y"), (5, "e", "z")]),
        ("DELETE FROM t WHERE id = 2 OR part = 'z'", [(1, "a", "x"), (3, "c", "y"), (4, "d", "y")]),
        ("UPDATE t SET name = upper(name) WHERE part = 'y'", [(1, "a", "x"), (3, "C", "y"), (4, "D", "y")]),
        ("INSERT OVERWRITE t VALUES (9, 'i', 'x')", [(9, "i", "x")]),
    ]
    version = deltalake.DeltaTable(str(table)).version()
    for statement, expected in steps:
        out = rust_sql(lib_path, [register, statement])
        assert out.returncode == 0, f"{statement}: {out.stderr}"
        assert oracle_rows(table) == sorted(expected), statement
        version += 1
        assert deltalake.DeltaTable(str(table)).version() == version, f"{statement}: one commit"

    out = rust_sql(lib_path, [register, "DELETE FROM t"])
    assert out.returncode == 1 and "codeanatomy.dml.allow_full_table_delete" in out.stderr, out.stderr
    assert oracle_rows(table) == [(9, "i", "x")]


def test_check_constraint_violation_is_an_error_and_the_table_is_unchanged(lib_path: str, table: Path) -> None:
    deltalake.DeltaTable(str(table)).alter.add_constraint({"id_small": "id < 100"})
    before, version = oracle_rows(table), deltalake.DeltaTable(str(table)).version()
    register = f"CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION {sql_string(str(table))}"
    for statement in ("INSERT INTO t VALUES (100, 'big', 'x')", "UPDATE t SET id = id + 1000 WHERE part = 'x'"):
        out = rust_sql(lib_path, [register, statement])
        assert out.returncode == 1, f"{statement} must fail: {out.stdout}"
        assert "id < 100" in out.stderr or "id_small" in out.stderr, out.stderr
        assert oracle_rows(table) == before, statement
        assert deltalake.DeltaTable(str(table)).version() == version, f"{statement}: no commit"
    out = rust_sql(lib_path, [register, "INSERT INTO t VALUES (7, 'ok', 'x')"])
    assert out.returncode == 0, out.stderr
    assert (7, "ok", "x") in oracle_rows(table)


def scan_guard_ctx(plugin: dfplugin.Plugin, table: Path, *settings: str) -> Any:
    if "codeanatomy_scan_guard" not in plugin.objects("physical_optimizer_rule"):
        pytest.fail("the plugin exports no codeanatomy_scan_guard")
    ctx = plugin.session_context()
    ctx.register_table("t", plugin.delta_table(table))
    for s in settings:
        ctx.sql(s).collect()
    return ctx


def test_scan_guard_in_datafusion_python(plugin: dfplugin.Plugin, table: Path) -> None:
    # Two partitions (x, y) in two files.
    ctx = scan_guard_ctx(plugin, table, "SET codeanatomy.scan_guard.max_files = 1")
    with pytest.raises(Exception) as denied:
        ctx.sql("SELECT sum(id) FROM t").collect()
    assert "policy_violation" in str(denied.value) and "would read 2 files" in str(denied.value)
    assert ctx.sql("SELECT sum(id) FROM t WHERE part = 'x'").to_pydict() == {"sum(t.id)": [3]}

    ctx = scan_guard_ctx(plugin, table, "SET codeanatomy.scan_guard.require_partition_filter = true")
    with pytest.raises(Exception) as denied:
        ctx.sql("SELECT sum(id) FROM t WHERE id > 1").collect()
    assert "no predicate on a partition column" in str(denied.value)
    assert ctx.sql("SELECT sum(id) FROM t WHERE part = 'y'").to_pydict() == {"sum(t.id)": [3]}


def test_bad_setting_is_refused_at_set_and_does_not_poison_the_session(plugin: dfplugin.Plugin) -> None:
    """datafusion-ffi's bag takes any key; ctx.sql (routed through dfplugin.sql once a plugin is
    loaded) validates a plugin key before SET stores it, so later statements still run."""
    ctx = plugin.session_context()
    for sql in ("SET codeanatomy.scan_guard.max_fils = 3", "SET codeanatomy.scan_guard.max_files = 'many'"):
        with pytest.raises(dfplugin.PluginConfigError) as bad:
            ctx.sql(sql).collect()
        message = str(bad.value)
        assert "invalid_config" in message and "codeanatomy.scan_guard.max_fil" in message, sql
        assert "Nothing was set" in message
    assert "codeanatomy.scan_guard.max_files" in str(bad.value) or "integer" in str(bad.value)
    assert ctx.sql("SELECT 1 AS one").to_pydict() == {"one": [1]}
    ctx.sql("SET codeanatomy.scan_guard.max_files = 7").collect()


def test_abi_1_3_capabilities_are_reported_truthfully_here(plugin: dfplugin.Plugin) -> None:
    caps = plugin.capabilities(host="datafusion-python")
    for name in ("analyzer_rule", "dml", "relation_planner"):
        assert caps[name]["declared"] is True and caps[name]["installable"] is True, caps[name]
