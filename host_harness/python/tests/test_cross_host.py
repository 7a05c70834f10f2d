"""Differential tests against the Rust host (``target/release/dfplugin conform``).

The same SQL runs here (datafusion-python + dfplugin) and in the Rust host; rows are
compared through a generated conformance suite whose expectations are *this* host's rows:
the Rust host must pass it. Skipped, with the reason, when the Rust binary is not built.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

import dfplugin
from conftest import TARGET
from dfplugin.conform import find_error_code
from dfplugin.display import rows_of

RUST_HOST = TARGET / "release" / "dfplugin"

# Types whose display formatting must match arrow-rs exactly.
DISPLAY_QUERIES = [
    "SELECT [1, NULL] l, named_struct('a', 1, 'b', CAST(NULL AS INT)) s, map(['k', 'j'], [1.5, NULL]) m",
    "SELECT 1e20 f, CAST(1.5 AS REAL) r, CAST(1e15 AS REAL) r2, 0.1 + 0.2 d, -0.0 z, 1e-7 small, 1.0 one",
    "SELECT CAST('NaN' AS DOUBLE) nan, CAST('inf' AS DOUBLE) inf, 123456789.125 big, 1e16 e16, 1e-5 e5",
    "SELECT X'0aff' b, CAST(1.5 AS DECIMAL(10,3)) dec, CAST(-0.05 AS DECIMAL(5,2)) neg, DATE '2020-02-03' dt",
    "SELECT arrow_cast(TIMESTAMP '2020-01-01 00:00:00.5', 'Timestamp(Nanosecond, Some(\"UTC\"))') tz, "
    "TIMESTAMP '2020-01-01 00:00:00.1234' ts, "
    "arrow_cast(TIMESTAMP '2020-06-01 12:00:00', 'Timestamp(Second, Some(\"Europe/Berlin\"))') tzn, "
    "arrow_cast(TIMESTAMP '2020-06-01 12:00:00', 'Timestamp(Millisecond, Some(\"-03:30\"))') tzo",
    "SELECT arrow_cast(1000, 'Time64(Microsecond)') t, arrow_cast('a', 'Dictionary(Int32, Utf8)') d, NULL n, "
    "true b, [[1, 2], []] nested, [named_struct('a', 'x')] ls",
    "SELECT CAST(255 AS TINYINT UNSIGNED) u, CAST(-5 AS SMALLINT) s, 'héllo\twörld' h, '' e",
    "SELECT arrow_cast([1.5, NULL], 'FixedSizeList(2, Float64)') fsl, arrow_cast('abc', 'LargeUtf8') lu, "
    "arrow_cast('abc', 'Utf8View') uv, arrow_cast(X'00', 'LargeBinary') lb",
    "SELECT * FROM (VALUES (1, 'a'), (2, NULL), (3, 'c')) t(x, y)",
]


def _toml(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _write_suite(path: Path, cases: List[Dict[str, Any]]) -> None:
    out = ['name = "cross-host"']
    for c in cases:
        out += ["", "[[case]]", f"name = {_toml(c['name'])}", f"capability = {_toml(c['capability'])}"]
        out.append(f"sql = {_toml(c['sql'])}")
        if "expect_rows" in c:
            out.append("ordered = true")
            rows = ", ".join("[" + ", ".join(_toml(x) for x in r) + "]" for r in c["expect_rows"])
            out.append(f"expect_rows = [{rows}]")
        else:
            out.append(f"expect_error = {_toml(c['expect_error'])}")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def _rust_conform(library: str, suite: Path, tmp_path: Path) -> List[Dict[str, Any]]:
    if not RUST_HOST.is_file():
        pytest.skip(f"Rust host {RUST_HOST} not built (`make build` builds it)")
    report = tmp_path / "rust.json"
    proc = subprocess.run(
        [str(RUST_HOST), "conform", library, "--suite", str(suite), "--report", str(report)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if not report.is_file():
        pytest.fail(f"Rust host produced no report: {proc.stdout}\n{proc.stderr}")
    data = json.loads(report.read_text())
    reports = data if isinstance(data, list) else [data]
    return [r for rep in reports for r in rep["results"]]


def test_display_matches_arrow_rs(fixture_lib, tmp_path: Path) -> None:
    import datafusion

    ctx = datafusion.SessionContext()
    cases = [
        {"name": f"display {i}", "capability": "sql", "sql": q, "expect_rows": rows_of(ctx.sql(q).collect())}
        for i, q in enumerate(DISPLAY_QUERIES)
    ]
    suite = tmp_path / "display.toml"
    _write_suite(suite, cases)
    results = _rust_conform(fixture_lib("good"), suite, tmp_path)
    failures = [f"{r['case']}: {r['detail']}" for r in results if r["outcome"] != "pass"]
    assert len(results) == len(cases)
    assert not failures, "\n".join(failures)


def test_every_documented_example_matches_rust_host(plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    """Each function's documented example gives the same rows (or the same error code) here
    as in the Rust host."""
    if "codeanatomy_functions" not in plugin.objects("table_function"):
        pytest.skip("codeanatomy_functions() not exported yet")
    registry_ctx = plugin.session_context()  # kept alive: the table function uses its codec
    entries = registry_ctx.sql("SELECT name, example FROM codeanatomy_functions()").to_pylist()
    cases: List[Dict[str, Any]] = []
    for e in entries:
        if not e["example"]:
            continue
        ctx = plugin.session_context()
        case: Dict[str, Any] = {"name": f"example {e['name']}", "capability": "example", "sql": e["example"]}
        try:
            case["expect_rows"] = rows_of(ctx.sql(e["example"]).collect())
        except Exception as err:
            case["expect_error"] = find_error_code(str(err)) or "error"
        cases.append(case)
    assert cases
    suite = tmp_path / "examples.toml"
    _write_suite(suite, cases)
    results = _rust_conform(plugin.path, suite, tmp_path)
    failures = [f"{r['case']}: {r['detail']}" for r in results if r["outcome"] != "pass"]
    assert len(results) == len(cases)
    assert not failures, "rows differ between datafusion-python and the Rust host:\n" + "\n".join(failures)
