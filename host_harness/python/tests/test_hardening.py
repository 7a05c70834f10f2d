"""Hostile inputs in the datafusion-python host: the counterparts of ``tests/hardening.rs``.

Corrupt data files end in errors (the process survives), scans of different sources never
merge, span overflow is an error, data files that contradict the schema or leave the table
root are refused, reads create nothing, an INSERT of no rows commits nothing, the location
policy holds through ``..`` and links (also for ``plugin.delta_table``), secrets stay out of
errors, and ``dfplugin.sql`` answers ``RESET`` of plugin keys. Each assertion fails on the
plugin before the hardening (issue "trust and hardening"). Tables are written with
deltalake-python, which is also the oracle for counts and versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Sequence

import datafusion
import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dfplugin
from conftest import REPO

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])
I64_MAX = 9223372036854775807


def write_table(root: Path, name: str, commits: Sequence[Sequence[int]]) -> str:
    """A Delta table ``root/name`` (one commit per slice of ids): ``id long NOT NULL``, ``name string``."""
    path = str(root / name)
    for ids in commits:
        batch = pa.table({"id": pa.array(ids, pa.int64()), "name": [f"n{i}" for i in ids]}, schema=SCHEMA)
        deltalake.write_deltalake(path, batch, mode="append")
    return path


def data_files(table: str) -> List[Path]:
    return sorted(Path(table).glob("*.parquet"))


def commit_add(table: str, path: str, size: int) -> None:
    """Appends the next commit of ``table``: one add action for ``path`` of ``size`` bytes."""
    log = Path(table) / "_delta_log"
    version = deltalake.DeltaTable(table).version() + 1
    action = {"add": {"path": path, "partitionValues": {}, "size": size, "modificationTime": 0, "dataChange": True}}
    (log / f"{version:020d}.json").write_text(json.dumps(action) + "\n")


def error_of(ctx, query: str) -> str:
    """The text of the error ``query`` raises (through ``dfplugin.sql``), failing when it succeeds."""
    with pytest.raises(Exception) as info:
        dfplugin.sql(ctx, query).collect()
    return str(info.value)


def rows(ctx, query: str) -> List[tuple]:
    return [tuple(r.values()) for r in dfplugin.sql(ctx, query).to_pylist()]


# ---------------------------------------------------------------- corrupt data files

_CORRUPT_CHILD = textwrap.dedent(
    """
    import json, sys
    import dfplugin
    lib, table, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    plugin = dfplugin.load(lib)
    ctx = plugin.session_context()
    if mode == "delta_scan":
        source = f"delta_scan('{table}')"
    else:
        ctx.register_table("t", plugin.delta_table(table))
        source = "t"
    errors = []
    for query in (f"SELECT * FROM {source}", f"SELECT count(name) FROM {source}"):
        try:
            ctx.sql(query).collect()
            errors.append(None)
        except Exception as e:  # the query must fail, and the process must go on
            errors.append(str(e))
    print(json.dumps(errors))
    """
)


@pytest.mark.parametrize("mode", ["delta_scan", "delta_table"])
def test_a_corrupt_parquet_footer_is_an_error_not_a_crash(lib_path: str, tmp_path: Path, mode: str) -> None:
    table = write_table(tmp_path, "t", [[1, 2, 3]])
    (file,) = data_files(table)
    data = bytearray(file.read_bytes())
    # The footer claims 2 GiB of metadata: arrow's Parquet reader panicked on it, and the
    # panic crossed the FFI boundary and aborted datafusion-python (SIGABRT, returncode -6).
    data[-8:-4] = (0x7FFFFFFF).to_bytes(4, "little")
    file.write_bytes(bytes(data))
    env = dict(
        os.environ,
        DFPLUGIN_ALLOW_UNSIGNED="1",
        PYTHONPATH=str(REPO / "host_harness" / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    proc = subprocess.run(
        [sys.executable, "-c", _CORRUPT_CHILD, lib_path, table, mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, f"the child died (returncode {proc.returncode}): {proc.stderr[-2000:]}"
    errors = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(errors) == 2
    for error in errors:
        assert error is not None, "a query over a corrupt data file returned rows"
        assert table in error, error


# ---------------------------------------------------------------- scans never merge


def test_scans_of_different_sources_never_merge(ctx, tmp_path: Path) -> None:
    a = write_table(tmp_path, "a", [[1, 2, 3, 4]])
    b = write_table(tmp_path, "b", [[1, 2], [3, 4, 5, 6, 7]])
    count = lambda p, v=None: (  # noqa: E731
        deltalake.DeltaTable(p, version=v) if v is not None else deltalake.DeltaTable(p)
    ).to_pyarrow_table().num_rows
    ids = lambda p: deltalake.DeltaTable(p).to_pyarrow_table().column("id").to_pylist()  # noqa: E731
    assert (count(a), count(b), count(b, 0), count(b, 1)) == (4, 7, 2, 7)  # the oracle
    files = lambda p: len(deltalake.DeltaTable(p).file_uris())  # noqa: E731
    version = lambda p: deltalake.DeltaTable(p).version()  # noqa: E731
    cases = [
        (f"SELECT (SELECT count(*) FROM delta_scan('{a}')) AS x, (SELECT count(*) FROM delta_scan('{b}')) AS y", (count(a), count(b))),
        (f"SELECT (SELECT count(*) FROM delta_scan('{b}', 0)) AS x, (SELECT count(*) FROM delta_scan('{b}', 1)) AS y", (count(b, 0), count(b, 1))),
        (f"SELECT (SELECT count(*) FROM delta_files('{a}')) AS x, (SELECT count(*) FROM delta_files('{b}')) AS y", (files(a), files(b))),
        (
            f"SELECT (SELECT max(version) FROM delta_snapshot('{a}')) AS x, (SELECT max(version) FROM delta_snapshot('{b}')) AS y",
            (version(a), version(b)),
        ),
        (
            f"SELECT count(*) AS n, sum(id) AS s FROM (SELECT id FROM delta_scan('{a}') UNION ALL SELECT id FROM delta_scan('{b}'))",
            (count(a) + count(b), sum(ids(a)) + sum(ids(b))),
        ),
        (
            f"SELECT count(*) AS n, sum(id) AS s FROM (SELECT id FROM delta_scan('{b}', 0) UNION ALL SELECT id FROM delta_scan('{b}', 1))",
            (count(b, 0) + count(b, 1), 3 + sum(ids(b))),
        ),
    ]
    assert cases[-2][1] == (11, 38)
    for query, expected in cases:
        assert rows(ctx, query) == [expected], query


# ---------------------------------------------------------------- span overflow


def test_span_overflow_is_an_error(ctx) -> None:
    span = f"span_make({I64_MAX}, {I64_MAX}, 0, 'BYTE', false)"
    for query in (
        f"SELECT span_len({span})",
        f"SELECT span_overlaps({span}, {span})",
        f"SELECT span_contains({span}, span_make(0, 1, 0, 'BYTE', true))",
    ):
        err = error_of(ctx, query)
        assert "overflows Int64" in err and "invalid_argument" in err, f"{query}: {err}"
    # The largest representable inclusive span still works.
    assert rows(ctx, f"SELECT span_len(span_make({I64_MAX - 1}, {I64_MAX - 1}, 0, 'BYTE', false))") == [(1,)]


# ---------------------------------------------------------------- data files the log must not have


def test_data_files_that_contradict_the_schema_or_leave_the_root_are_refused(ctx, plugin, tmp_path: Path) -> None:
    # Doubles stored in the `id long` column: refused (not cast), naming table, file and column.
    table = write_table(tmp_path, "doubles", [[1]])
    pq.write_table(pa.table({"id": pa.array([2.75], pa.float64()), "name": ["x"]}), f"{table}/doubles.parquet")
    commit_add(table, "doubles.parquet", os.path.getsize(f"{table}/doubles.parquet"))
    ctx.register_table("doubles", plugin.delta_table(table))
    for query in (f"SELECT id FROM delta_scan('{table}')", "SELECT id FROM doubles"):
        err = error_of(ctx, query)
        assert "corrupt_data" in err and "doubles.parquet" in err and "'id'" in err and table in err, f"{query}: {err}"

    # A relative path out of the table root, to a real file there (copied from the table, so
    # its schema fits): never read.
    table = write_table(tmp_path, "escape", [[1]])
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.parquet"
    secret.write_bytes(data_files(table)[0].read_bytes())
    commit_add(table, "../outside/secret.parquet", secret.stat().st_size)
    for query in (f"SELECT * FROM delta_scan('{table}')", f"SELECT count(*) FROM delta_scan('{table}')"):
        err = error_of(ctx, query)
        assert "leaves the table root" in err and "secret.parquet" in err, f"{query}: {err}"
    with pytest.raises(dfplugin.PluginError) as info:  # refused when opened, before any read
        plugin.delta_table(table, allow_external_files=True)
    assert "leaves the table root" in str(info.value) and "secret.parquet" in str(info.value)

    # An absolute location outside the root: refused unless external files are allowed.
    table = write_table(tmp_path, "absolute", [[1]])
    commit_add(table, secret.as_uri(), secret.stat().st_size)
    err = error_of(ctx, f"SELECT * FROM delta_scan('{table}')")
    assert "outside the table root" in err and "allow_external_files" in err, err
    with pytest.raises(dfplugin.PluginError) as info:
        plugin.delta_table(table)
    assert "outside the table root" in str(info.value) and "allow_external_files" in str(info.value)
    ctx.register_table("absolute_allowed", plugin.delta_table(table, allow_external_files=True))
    assert rows(ctx, "SELECT count(*) FROM absolute_allowed") == [(2,)]
    dfplugin.sql(ctx, "SET codeanatomy.delta.allow_external_files = true").collect()
    assert rows(ctx, f"SELECT count(*) FROM delta_scan('{table}')") == [(2,)]
    ctx.register_table("absolute_by_session", plugin.delta_table(table, ctx=ctx))
    assert rows(ctx, "SELECT count(*) FROM absolute_by_session") == [(2,)]
    # Allowing external files never allows a relative path out of the root.
    err = error_of(ctx, f"SELECT * FROM delta_scan('{tmp_path / 'escape'}')")
    assert "leaves the table root" in err and "secret.parquet" in err, err


# ---------------------------------------------------------------- reads create nothing


def test_read_only_calls_create_nothing(ctx, plugin, tmp_path: Path) -> None:
    missing = tmp_path / "rel" / "a" / "b"
    for function in ("delta_scan", "delta_snapshot", "delta_files"):
        err = error_of(ctx, f"SELECT * FROM {function}('{missing}')")
        assert "not_found" in err and "nothing was created" in err, f"{function}: {err}"
    err = error_of(ctx, f"CREATE EXTERNAL TABLE m STORED AS DELTA LOCATION '{missing}'")
    assert "not_found" in err, err
    with pytest.raises(dfplugin.PluginError) as info:
        plugin.delta_table(missing)
    assert info.value.code == 12 and "not_found" in str(info.value) and "nothing was created" in str(info.value)
    assert not (tmp_path / "rel").exists(), f"a read created {tmp_path / 'rel'}"


# ---------------------------------------------------------------- writes of nothing, DELETE


def test_an_insert_of_no_rows_commits_nothing_and_delete_is_refused(ctx, tmp_path: Path) -> None:
    table = write_table(tmp_path, "t", [[1, 2, 3]])
    dfplugin.sql(ctx, f"CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '{table}'").collect()
    assert rows(ctx, "INSERT INTO t SELECT * FROM t WHERE id > 100") == [(0,)]
    oracle = deltalake.DeltaTable(table)
    assert oracle.version() == 0, "an INSERT of no rows committed a version"
    # DELETE/UPDATE on plugin tables are not available in datafusion-python 55 (FFI_TableProvider
    # does not forward them): a DELETE must fail, never delete silently.
    err = error_of(ctx, "DELETE FROM t WHERE id = id")
    assert "DELETE" in err, err
    oracle = deltalake.DeltaTable(table)
    assert oracle.version() == 0 and oracle.to_pyarrow_table().num_rows == 3
    assert rows(ctx, "SELECT count(*) FROM t") == [(3,)]


# ---------------------------------------------------------------- location policy


def test_the_location_policy_holds_through_dot_dot_and_links(ctx, plugin, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside = write_table(allowed, "t", [[1, 2]])
    outside = write_table(tmp_path, "other", [[1]])
    link = allowed / "link"
    link.symlink_to(outside)
    dfplugin.sql(ctx, f"SET codeanatomy.policy.allowed_locations = '{allowed}'").collect()
    assert rows(ctx, f"SELECT count(*) FROM delta_scan('{inside}')") == [(2,)]
    dfplugin.sql(ctx, f"CREATE EXTERNAL TABLE inside STORED AS DELTA LOCATION '{inside}'").collect()
    assert rows(ctx, "SELECT count(*) FROM inside") == [(2,)]

    def refused(err: str, what: str) -> None:
        assert "policy_violation" in err and "allowed_locations" in err, f"{what}: {err}"

    targets = [("outside", outside), ("dot-dot", f"{allowed}/../other"), ("link", str(link))]
    for i, (what, uri) in enumerate(targets):
        refused(error_of(ctx, f"SELECT * FROM delta_scan('{uri}')"), what)
        refused(error_of(ctx, f"SELECT * FROM delta_files('{uri}')"), what)
        refused(error_of(ctx, f"CREATE EXTERNAL TABLE x{i} STORED AS DELTA LOCATION '{uri}'"), what)
        # plugin.delta_table: its own list, the session's list, and both.
        for kwargs in ({"allowed_locations": [str(allowed)]}, {"ctx": ctx}, {"allowed_locations": [str(tmp_path)], "ctx": ctx}):
            with pytest.raises(dfplugin.PluginError) as info:
                plugin.delta_table(uri, **kwargs)
            refused(str(info.value), f"{what} delta_table {sorted(kwargs)}")
            assert info.value.code == 10
    # Both lists apply: inside the session's list but outside the explicit one is refused too
    # (the plugin gets the session's list; the explicit one is checked in Python, with the
    # same normalization: `..` and links cannot leave it either).
    with pytest.raises(dfplugin.PluginError) as info:
        plugin.delta_table(inside, allowed_locations=[str(tmp_path / "elsewhere")], ctx=ctx)
    refused(str(info.value), "explicit list, checked in Python")
    broad = plugin.session_context()
    dfplugin.sql(broad, f"SET codeanatomy.policy.allowed_locations = '{tmp_path}'").collect()
    for what, uri in targets:
        assert rows(broad, f"SELECT count(*) FROM delta_scan('{uri}')") == [(1,)], what
        with pytest.raises(dfplugin.PluginError) as info:
            plugin.delta_table(uri, allowed_locations=[str(allowed)], ctx=broad)
        refused(str(info.value), f"{what}: explicit list, checked in Python")
        assert info.value.code == 10
    broad.register_table("inside_provider", plugin.delta_table(inside, allowed_locations=[str(allowed)], ctx=broad))
    assert rows(broad, "SELECT count(*) FROM inside_provider") == [(2,)]
    # A session without the plugin's namespace adds no list.
    plain = datafusion.SessionContext()
    plain.register_table("outside_provider", plugin.delta_table(outside, ctx=plain))
    assert plain.sql("SELECT count(*) AS n FROM outside_provider").to_pylist() == [{"n": 1}]
    for kwargs in ({"allowed_locations": [str(allowed)]}, {"ctx": ctx}, {"allowed_locations": [str(tmp_path)], "ctx": ctx}):
        ctx.register_table("inside_provider", plugin.delta_table(inside, **kwargs))
        assert rows(ctx, "SELECT count(*) FROM inside_provider") == [(2,)]
        ctx.deregister_table("inside_provider")
    # A refused CREATE creates nothing either.
    fresh = tmp_path / "fresh"
    refused(error_of(ctx, f"CREATE EXTERNAL TABLE f (id BIGINT) STORED AS DELTA LOCATION '{fresh}'"), "fresh")
    assert not fresh.exists()
    # RESET (through dfplugin.sql) lifts the policy again.
    dfplugin.sql(ctx, "RESET codeanatomy.policy.allowed_locations").collect()
    assert rows(ctx, f"SELECT count(*) FROM delta_scan('{outside}')") == [(1,)]


# ---------------------------------------------------------------- secrets, RESET

LEAKY = "http://AKIDLEAK:wJalrSECRETLEAK@127.0.0.1:1/t?X-Amz-Signature=SIGLEAK"
SECRETS = ("AKIDLEAK", "wJalrSECRETLEAK", "SIGLEAK")


def test_secrets_stay_out_of_errors(ctx, plugin) -> None:
    # No object store serves http:// here, so the open fails before any connection (loopback
    # only; no test touches s3:// without a loopback endpoint).
    unopened = error_of(ctx, f"SELECT * FROM delta_scan('{LEAKY}')")
    assert "http://***@127.0.0.1:1/t" in unopened, unopened
    dfplugin.sql(ctx, "SET codeanatomy.policy.allowed_locations = '/nonexistent-allowed-prefix'").collect()
    refused = error_of(ctx, f"SELECT * FROM delta_scan('{LEAKY}')")
    assert "outside the allowed locations" in refused, refused
    with pytest.raises(dfplugin.PluginError) as info:
        plugin.delta_table(LEAKY, ctx=ctx)
    by_provider = f"{info.value} {info.value.plugin_message}"
    assert "outside the allowed locations" in by_provider, by_provider
    for secret in SECRETS:
        for err in (unopened, refused, by_provider):
            assert secret not in err, f"{secret} leaked: {err}"


def test_reset_of_a_plugin_key_restores_its_default(ctx) -> None:
    line_base = "SELECT span_make(0, 1)['line_base']"
    dfplugin.sql(ctx, "SET codeanatomy.span.line_base = 1").collect()
    assert rows(ctx, line_base) == [(1,)]
    dfplugin.sql(ctx, "RESET codeanatomy.span.line_base").collect()
    assert rows(ctx, line_base) == [(0,)]
    with pytest.raises(dfplugin.PluginConfigError) as info:
        dfplugin.sql(ctx, "RESET codeanatomy.span.no_such_key")
    assert "codeanatomy.span.no_such_key" in str(info.value)
    # Loading a plugin routes the plain ctx.sql through dfplugin.sql: it resets too.
    dfplugin.sql(ctx, "SET codeanatomy.span.line_base = 1").collect()
    ctx.sql("RESET codeanatomy.span.line_base").collect()
    assert rows(ctx, line_base) == [(0,)]
    # Other statements pass through unchanged, RESET of a datafusion key included.
    dfplugin.sql(ctx, "SET datafusion.execution.batch_size = 1234").collect()
    dfplugin.sql(ctx, "RESET datafusion.execution.batch_size").collect()
    settings = ctx.copied_config().with_information_schema(True)
    probe = datafusion.SessionContext(settings)
    value = probe.sql("SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'").to_pylist()
    assert value == [{"value": "8192"}]
