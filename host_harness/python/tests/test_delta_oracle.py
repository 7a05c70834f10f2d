"""The plugin's Delta reader against deltalake==1.6.6 (the oracle).

* Every table directory under the delta-rs sample tables (``shared/testdata/delta-rs``, read
  only: nothing here writes there, and a test checks that reading left every file as it was)
  that the oracle can read: the plugin's ``SELECT *`` equals ``DeltaTable(path).to_pyarrow_table()``
  at the latest version and at every earlier version the oracle can load; versions the oracle
  cannot load must be refused by the plugin too.
* Tables the oracle cannot read (:data:`ORACLE_UNREADABLE`): the plugin must raise a clear
  error, never return rows.
* Tables written here by deltalake-python (appends, overwrite, schema evolution, partitions,
  many types, change data feed with delete/update/merge) read back equal to the oracle, and
  ``delta_changes(uri, start, end)`` equals ``DeltaTable.load_cdf(...)``.

Values are compared in the canonical form of :mod:`delta_support` (types normalized, no
column or row dropped).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import datafusion
import deltalake
import pyarrow as pa
import pytest

import dfplugin
from conftest import REPO
from delta_support import UTC, check_against_log, delta_tables_under, differences, sql_string


def _testdata_root() -> Path:
    candidates = [os.environ.get("DFPLUGIN_DELTA_TESTDATA"), REPO.parent / "shared" / "testdata" / "delta-rs", "/work/shared/testdata/delta-rs"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return REPO.parent / "shared" / "testdata" / "delta-rs"


#: The delta-rs sample tables (read only).
ROOT = _testdata_root()
TABLES: Tuple[str, ...] = tuple(delta_tables_under(ROOT)) if ROOT.is_dir() else ()


def _oracle_error(rel: str) -> Optional[str]:
    """Why the oracle cannot read the latest version of ``rel`` (``None``: it can)."""
    try:
        deltalake.DeltaTable(str(ROOT / rel)).to_pyarrow_table()
    except Exception as e:  # noqa: BLE001 - any refusal of the oracle counts
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


_ORACLE_ERRORS: Dict[str, Optional[str]] = {rel: _oracle_error(rel) for rel in TABLES}

#: Sample tables deltalake==1.6.6 cannot read (missing data files, unsupported reader
#: features such as deletion vectors or shredded variants, an invalid protocol).
ORACLE_UNREADABLE: Tuple[str, ...] = tuple(rel for rel, err in _ORACLE_ERRORS.items() if err is not None)
#: Sample tables the oracle reads.
ORACLE_READABLE: Tuple[str, ...] = tuple(rel for rel, err in _ORACLE_ERRORS.items() if err is None)

_MISSING_FILES = "error: its data files are not in the sample data (the plugin names the missing file)"
_LOG_CHECKED = "read: the plugin supports what the oracle refuses; checked against the JSON log instead"
#: What the plugin does with each table the oracle cannot read (the test checks both the
#: list and the outcomes; a change in either is a failure).
ORACLE_UNREADABLE_OUTCOMES: Dict[str, str] = {
    "checkpoint_with_partitions": _MISSING_FILES,
    "checkpoints": _MISSING_FILES,
    "checkpoints_vacuumed": _MISSING_FILES,
    "latest_not_checkpointed": _MISSING_FILES,
    "simple_table_features": "error: invalid protocol (reader features with min_reader_version != 3)",
    "spark-shredded-variant-preview-delta": "error: [E0009 unsupported] reader feature variantShredding-preview",
    "spark-variant-stable-feature-checkpoint": _MISSING_FILES,
    "table-with-domain-metadata": _MISSING_FILES,
    "table-with-dv-small": _LOG_CHECKED + " (deletion vectors)",
    "table_with_deletion_logs": _LOG_CHECKED + " (deletion vectors)",
    "table_with_partitioning_mapping": _LOG_CHECKED + " (column mapping, deletion vectors)",
    "with_checkpoint_no_last_checkpoint": _MISSING_FILES,
}


def _tree_state(path: Path) -> List[Tuple[str, int, int]]:
    return sorted(
        (os.path.relpath(os.path.join(d, f), path), st.st_size, st.st_mtime_ns)
        for d, _dirs, files in os.walk(path)
        for f in files
        for st in [os.stat(os.path.join(d, f))]
    )


def plugin_read(plugin: dfplugin.Plugin, path: Any, **kwargs: Any) -> pa.Table:
    ctx = datafusion.SessionContext()
    ctx.register_table("t", plugin.delta_table(path, **kwargs))
    return ctx.sql("SELECT * FROM t").to_arrow_table()


def compare_all_versions(plugin: dfplugin.Plugin, path: Path, label: str) -> List[str]:
    """Differences between plugin and oracle at the latest and every earlier version."""
    failures: List[str] = []
    latest = deltalake.DeltaTable(str(path))
    try:
        failures += differences(plugin_read(plugin, path), latest.to_pyarrow_table(), f"{label}@latest")
    except Exception as e:  # noqa: BLE001
        failures.append(f"{label}@latest: plugin failed: {e}")
    for v in range(latest.version() + 1):
        try:
            expected = deltalake.DeltaTable(str(path), version=v).to_pyarrow_table()
        except Exception as oracle_error:  # noqa: BLE001
            try:
                got = plugin_read(plugin, path, version=v)
            except Exception:  # noqa: BLE001 - refused like the oracle
                continue
            failures.append(
                f"{label}@v{v}: the oracle cannot load this version ({str(oracle_error).splitlines()[0]}) "
                f"but the plugin returned {got.num_rows} rows"
            )
            continue
        try:
            got = plugin_read(plugin, path, version=v)
        except Exception as e:  # noqa: BLE001
            failures.append(f"{label}@v{v}: plugin failed: {e}")
            continue
        failures += differences(got, expected, f"{label}@v{v}")
    return failures


def test_testdata_present() -> None:
    assert ROOT.is_dir(), f"delta-rs sample tables not found at {ROOT} (set DFPLUGIN_DELTA_TESTDATA)"
    assert len(TABLES) >= 40, TABLES
    assert ORACLE_READABLE
    assert sorted(ORACLE_UNREADABLE) == sorted(ORACLE_UNREADABLE_OUTCOMES)


@pytest.mark.parametrize("table", ORACLE_READABLE)
def test_sample_table_matches_oracle(plugin: dfplugin.Plugin, table: str) -> None:
    path = ROOT / table
    before = _tree_state(path)
    failures = compare_all_versions(plugin, path, table)
    # the table function path too (latest version)
    ctx = plugin.session_context()
    try:
        got = ctx.sql(f"SELECT * FROM delta_scan({sql_string(str(path))})").to_arrow_table()
        failures += differences(got, deltalake.DeltaTable(str(path)).to_pyarrow_table(), f"{table} delta_scan")
    except Exception as e:  # noqa: BLE001
        failures.append(f"{table} delta_scan: plugin failed: {e}")
    assert _tree_state(path) == before, f"reading {path} changed files in the read-only sample data"
    assert not failures, "\n".join(failures)


#: Reader features that do not change how a data file's rows are read.
_READ_NEUTRAL_FEATURES = {"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"}


def _reader(plugin: dfplugin.Plugin, path: Path) -> str:
    """Which reader the plugin's scan of ``path`` uses, from its EXPLAIN label."""
    ctx = datafusion.SessionContext()
    ctx.register_table("t", plugin.delta_table(path))
    plan = " ".join(str(v) for v in ctx.sql("EXPLAIN SELECT * FROM t").to_arrow_table().column("plan").to_pylist())
    assert "DeltaTableExec" in plan, plan
    return plan.split("reader=")[1].split(",")[0].split()[0]


def test_direct_parquet_reads_only_where_the_protocol_allows(plugin: dfplugin.Plugin) -> None:
    """Plain tables are read as Parquet plus partition values (the rows are checked against
    the oracle above); a reader feature that changes how rows are read keeps deltalake's scan."""
    direct = []
    for table in ORACLE_READABLE:
        path = ROOT / table
        oracle = deltalake.DeltaTable(str(path))
        protocol = oracle.protocol()
        features = set(protocol.reader_features or [])
        reader = _reader(plugin, path)
        if (protocol.min_reader_version > 1 and not features) or features - _READ_NEUTRAL_FEATURES:
            assert reader == "deltalake", f"{table}: protocol {protocol} needs deltalake's reader, got {reader}"
        if reader == "parquet":
            direct.append(table)
    assert len(direct) >= 10, f"only {len(direct)} sample tables read directly: {direct}"


@pytest.mark.parametrize("table", ORACLE_UNREADABLE)
def test_sample_table_the_oracle_cannot_read(plugin: dfplugin.Plugin, table: str) -> None:
    """The plugin refuses it with a clear error naming the table or its file, or, where it
    reads what the oracle refuses (deletion vectors, column mapping), its rows agree with the
    table's JSON log: never unverified rows."""
    path = ROOT / table
    before = _tree_state(path)
    expected = ORACLE_UNREADABLE_OUTCOMES.get(table, "error")
    try:
        got = plugin_read(plugin, path)
    except Exception as e:  # noqa: BLE001
        message = str(e)
        assert expected.startswith("error"), f"{table}: expected '{expected}', the plugin refused it: {message}"
        assert "[E0002 panic]" not in message, message
        assert str(path) in message or table in message, f"the error does not name the table: {message}"
    else:
        assert expected.startswith("read"), (
            f"{table}: the oracle cannot read it ({_ORACLE_ERRORS[table]}), expected '{expected}', but the plugin "
            f"returned {got.num_rows} rows with columns {got.column_names}"
        )
        failures = check_against_log(path, got)
        assert not failures, "\n".join(failures)
    assert _tree_state(path) == before


# ---------------------------------------------------------------------------------------
# change data feed of the sample tables


def _cdf_or_none(path: Path, start: int, end: int) -> Optional[pa.Table]:
    try:
        return pa.table(deltalake.DeltaTable(str(path)).load_cdf(starting_version=start, ending_version=end))
    except Exception:  # noqa: BLE001
        return None


def _cdf_enabled(rel: str) -> bool:
    config = deltalake.DeltaTable(str(ROOT / rel)).metadata().configuration or {}
    return str(config.get("delta.enableChangeDataFeed", "")).lower() == "true"


#: Readable sample tables with change data feed enabled.
CDF_SAMPLES: Tuple[str, ...] = tuple(t for t in ORACLE_READABLE if _cdf_enabled(t))


@pytest.mark.parametrize("table", CDF_SAMPLES)
def test_sample_change_data_feed_matches_oracle(plugin: dfplugin.Plugin, table: str) -> None:
    path = ROOT / table
    latest = deltalake.DeltaTable(str(path)).version()
    ctx = plugin.session_context()
    failures: List[str] = []
    compared = 0
    for start in range(latest + 1):
        for end in range(start, latest + 1):
            expected = _cdf_or_none(path, start, end)
            sql = f"SELECT * FROM delta_changes({sql_string(str(path))}, {start}, {end})"
            try:
                got = ctx.sql(sql).to_arrow_table()
            except Exception as e:  # noqa: BLE001
                if expected is not None:
                    failures.append(f"{sql}: plugin failed: {e}")
                continue
            if expected is None:
                continue  # the oracle cannot produce this range; nothing to compare with
            compared += 1
            failures += differences(got, expected, sql)
    assert compared, f"{table}: no change data range the oracle could read"
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------
# tables written by deltalake-python


def _stamp(values: List[Optional[str]]) -> pa.Array:
    return pa.array(
        [None if v is None else dt.datetime.fromisoformat(v).replace(tzinfo=UTC) for v in values], pa.timestamp("us", tz="UTC")
    )


def test_written_appends_overwrite_and_schema_evolution(plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    path = str(tmp_path / "evolving")
    s1 = pa.schema([("id", pa.int64()), ("name", pa.string())])
    deltalake.write_deltalake(path, pa.table({"id": [1, 2], "name": ["a", "b"]}, schema=s1))
    deltalake.write_deltalake(path, pa.table({"id": [3], "name": [None]}, schema=s1), mode="append")
    deltalake.write_deltalake(path, pa.table({"id": [4, 5], "name": ["d", "e"]}, schema=s1), mode="append")
    deltalake.write_deltalake(path, pa.table({"id": [10, 11, 12], "name": ["x", "y", "z"]}, schema=s1), mode="overwrite")
    # schema evolution: a new column (older rows read as NULL) ...
    deltalake.write_deltalake(
        path, pa.table({"id": [13], "name": ["n"], "score": [1.5]}), mode="append", schema_mode="merge"
    )
    # ... and a write lacking it
    deltalake.write_deltalake(path, pa.table({"id": [14], "name": ["m"]}, schema=s1), mode="append", schema_mode="merge")
    # overwrite with a predicate (replace where)
    deltalake.write_deltalake(
        path,
        pa.table({"id": [11], "name": ["Y"], "score": [2.5]}),
        mode="overwrite",
        predicate="id = 11",
    )
    assert deltalake.DeltaTable(path).version() == 6
    failures = compare_all_versions(plugin, Path(path), "evolving")
    assert not failures, "\n".join(failures)


def test_written_partitioned_and_typed(plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    path = str(tmp_path / "typed")
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("p", pa.string()),
            ("d", pa.date32()),
            ("n", pa.int32()),
            ("f", pa.float64()),
            ("dec", pa.decimal128(10, 3)),
            ("b", pa.bool_()),
            ("bin", pa.binary()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("ntz", pa.timestamp("us")),
            ("tags", pa.list_(pa.string())),
            ("st", pa.struct([("k", pa.string()), ("v", pa.int64())])),
            ("m", pa.map_(pa.string(), pa.int64())),
        ]
    )

    def batch(ids: List[int], p: List[Optional[str]], day: List[Optional[int]]) -> pa.Table:
        n = len(ids)
        return pa.table(
            {
                "id": ids,
                "p": p,
                "d": pa.array([None if x is None else dt.date(2024, 1, x) for x in day], pa.date32()),
                "n": pa.array([i * 7 if i % 3 else None for i in ids], pa.int32()),
                "f": [float(i) / 3 if i % 4 else float("nan") for i in ids],
                "dec": pa.array([decimal.Decimal(i) / 8 for i in ids], pa.decimal128(10, 3)),
                "b": [i % 2 == 0 for i in ids],
                "bin": [bytes([i, 0, 255]) for i in ids],
                "ts": _stamp([f"2024-03-0{1 + i % 9}T12:34:56.789012" for i in ids]),
                "ntz": pa.array([dt.datetime(2023, 12, 31, 23, 59, i % 60) for i in ids], pa.timestamp("us")),
                "tags": [[f"t{i}", None] if i % 2 else [] for i in ids],
                "st": [{"k": f"k{i}", "v": i} if i % 5 else None for i in ids],
                "m": [[("a", i), ("b", None)] if i % 2 else None for i in ids],
            },
            schema=schema,
        ).slice(0, n)

    deltalake.write_deltalake(path, batch([1, 2, 3], ["a", "b", None], [1, 1, 2]), partition_by=["p", "d"])
    deltalake.write_deltalake(path, batch([4, 5, 6, 7], ["a", "c", "c", None], [2, None, 3, 3]), mode="append")
    deltalake.DeltaTable(path).delete("p = 'b'")
    deltalake.write_deltalake(path, batch([8, 9], ["a", "a"], [9, 9]), mode="overwrite", predicate="p = 'a'")
    deltalake.DeltaTable(path).update(updates={"n": "n + 1000"}, predicate="p = 'c'")
    failures = compare_all_versions(plugin, Path(path), "typed")
    assert not failures, "\n".join(failures)
    # a filter on partition columns agrees with the oracle too
    ctx = datafusion.SessionContext()
    ctx.register_table("t", plugin.delta_table(path))
    got = ctx.sql("SELECT id FROM t WHERE p = 'c' AND d IS NULL").to_pylist()
    expected = [r for r in deltalake.DeltaTable(path).to_pyarrow_table().to_pylist() if r["p"] == "c" and r["d"] is None]
    assert got == [{"id": r["id"]} for r in expected]


def test_written_change_data_feed(plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    path = str(tmp_path / "cdf")
    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("qty", pa.int64())])
    deltalake.write_deltalake(
        path,
        pa.table({"id": [1, 2, 3, 4], "name": ["a", "b", "c", "d"], "qty": [10, 20, 30, 40]}, schema=schema),
        configuration={"delta.enableChangeDataFeed": "true"},
    )
    deltalake.write_deltalake(path, pa.table({"id": [5, 6], "name": ["e", "f"], "qty": [50, 60]}, schema=schema), mode="append")
    deltalake.DeltaTable(path).delete("id = 2")
    deltalake.DeltaTable(path).update(updates={"qty": "qty + 1"}, predicate="id >= 4")
    source = pa.table({"id": [1, 3, 7], "name": ["A", "C", "g"], "qty": [11, 0, 70]}, schema=schema)
    (
        deltalake.DeltaTable(path)
        .merge(source, predicate="t.id = s.id", source_alias="s", target_alias="t")
        .when_matched_delete(predicate="s.qty = 0")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    deltalake.write_deltalake(path, pa.table({"id": [8], "name": ["h"], "qty": [80]}, schema=schema), mode="append")
    latest = deltalake.DeltaTable(path).version()
    assert latest == 5
    failures = compare_all_versions(plugin, Path(path), "cdf")
    ctx = plugin.session_context()
    for start in range(latest + 1):
        for end in range(start, latest + 1):
            sql = f"SELECT * FROM delta_changes({sql_string(path)}, {start}, {end})"
            expected = pa.table(deltalake.DeltaTable(path).load_cdf(starting_version=start, ending_version=end))
            try:
                got = ctx.sql(sql).to_arrow_table()
            except Exception as e:  # noqa: BLE001
                failures.append(f"{sql}: plugin failed: {e}")
                continue
            failures += differences(got, expected, sql)
    assert not failures, "\n".join(failures)
    # every change type occurs, and the feed covers the merge
    kinds = {r["_change_type"] for r in ctx.sql(f"SELECT DISTINCT _change_type FROM delta_changes({sql_string(path)}, 0, {latest})").to_pylist()}
    assert kinds == {"insert", "delete", "update_preimage", "update_postimage"}
