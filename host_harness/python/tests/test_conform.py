"""The conformance runner: the Rust host's TOML suites, run on datafusion-python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import dfplugin
from conftest import REPO, TARGET
from dfplugin.conform import DEFAULT_SUITE, SuiteError, find_error_code, parse_suite, run_suites

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]


def _run_cli(lib_path: str, suites, out: Path) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "dfplugin.conform", "--library", lib_path, "--json", str(out)]
    for s in suites:
        args += ["--suite", str(s)]
    env = dict(os.environ, PYTHONPATH=str(REPO / "host_harness" / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)


def test_default_suite_matches_rust_expectations(lib_path: str, tmp_path: Path) -> None:
    assert DEFAULT_SUITE.is_file(), DEFAULT_SUITE
    out = tmp_path / "conformance-python.json"
    proc = _run_cli(lib_path, [DEFAULT_SUITE], out)
    assert out.is_file(), proc.stderr
    report = json.loads(out.read_text())
    assert report["host"] == "datafusion-python"
    suite = tomllib.loads(DEFAULT_SUITE.read_text())
    assert [r["case"] for r in report["results"]] == [c["name"] for c in suite.get("case", [])]
    for r in report["results"]:
        assert set(r) >= {"case", "capability", "outcome", "detail"}
        assert r["outcome"] in ("pass", "fail", "not_installable")
        if r["outcome"] == "not_installable":
            assert r["detail"], r
    failures = [r for r in report["results"] if r["outcome"] == "fail"]
    assert not failures, "\n".join(f"{r['case']}: {r['detail']}" for r in failures)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_same_outcomes_as_rust_host(lib_path: str, tmp_path: Path) -> None:
    """The Rust host (``target/release/dfplugin conform``) and this host give the same outcome
    on every case of the default suite, except cases reported not installable here."""
    rust_host = TARGET / "release" / "dfplugin"
    if not rust_host.is_file():
        pytest.skip(f"Rust host {rust_host} not built (`make build` builds it)")
    rust_report = tmp_path / "rust.json"
    proc = subprocess.run(
        [str(rust_host), "conform", lib_path, "--suite", str(DEFAULT_SUITE), "--report", str(rust_report)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rust_report.is_file(), proc.stdout + proc.stderr
    rust = json.loads(rust_report.read_text())
    rust_results = [r for rep in (rust if isinstance(rust, list) else [rust]) for r in rep["results"]]
    report = run_suites(lib_path, [str(DEFAULT_SUITE)])
    ours = {r["case"]: r for r in report["results"]}
    assert {r["case"] for r in rust_results} == set(ours)
    differences = [
        f"{r['case']}: rust={r['outcome']} ({r['detail']}) python={ours[r['case']]['outcome']} ({ours[r['case']]['detail']})"
        for r in rust_results
        if ours[r["case"]]["outcome"] != "not_installable" and ours[r["case"]]["outcome"] != r["outcome"]
    ]
    assert not differences, "\n".join(differences)
    # Every capability of the pack installs in datafusion-python: no case is left out.
    left_out = [r["case"] for r in ours.values() if r["outcome"] == "not_installable"]
    assert left_out == [], left_out


def test_runner_semantics(lib_path: str, plugin: dfplugin.Plugin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every capability installs in datafusion-python now; a host that could not install one
    # (e.g. an older plugin build without the hand-over entry points) reports its cases.
    monkeypatch.setitem(dfplugin.plugin.CAPABILITY_MATRIX, "analyzer_rule", (False, "no such hook in this test host"))
    abi = "{major}.{minor}".format(**plugin.manifest["abi"])
    suite = tmp_path / "semantics.toml"
    suite.write_text(
        '''
name = "semantics"

[[case]]
name = "unordered rows"
capability = "sql"
sql = "SELECT * FROM (VALUES (2, 'b'), (1, NULL)) AS t(a, b)"
expect_rows = [["1", "NULL"], ["2", "b"]]

[[case]]
name = "ordered rows mismatch is a failure"
capability = "sql"
sql = "SELECT * FROM (VALUES (2), (1)) AS t(a) ORDER BY a DESC"
ordered = true
expect_rows = [["1"], ["2"]]

[[case]]
name = "floats, lists and structs display like arrow-rs"
capability = "sql"
sql = "SELECT 1.0 AS f, 1e20 AS g, [1, NULL] AS l, named_struct('a', 1, 'b', 'x') AS s"
expect_rows = [["1.0", "1e20", "[1, NULL]", "{a: 1, b: x}"]]

[[case]]
name = "any error"
capability = "sql"
sql = "SELECT no_such_column"
expect_error = "error"
expect_error_contains = "no_such_column"

[[case]]
name = "analyzer rules are not installable"
capability = "analyzer_rule"
sql = "SELECT 1"
expect_rows = [["1"]]

[[case]]
name = "introspection"
capability = "host"
sql = "SELECT plugin, abi FROM dfplugin_loaded()"
expect_rows = [["codeanatomy", "ABI"]]
'''.replace("ABI", abi)
    )
    report = run_suites(lib_path, [str(suite)])
    outcomes = {r["case"]: r["outcome"] for r in report["results"]}
    assert outcomes == {
        "unordered rows": "pass",
        "ordered rows mismatch is a failure": "fail",
        "floats, lists and structs display like arrow-rs": "pass",
        "any error": "pass",
        "analyzer rules are not installable": "not_installable",
        "introspection": "pass",
    }
    proc = _run_cli(lib_path, [suite], tmp_path / "out.json")
    assert proc.returncode == 1  # one failure
    assert "FAIL" in proc.stdout


def test_plugin_error_codes_are_matched(lib_path: str, plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    if "stable_hash64" not in plugin.objects("scalar_udf"):
        pytest.skip("stable_hash64 not exported yet")
    suite = tmp_path / "codes.toml"
    suite.write_text(
        '''
name = "codes"

[[case]]
name = "wrong argument type is a plan error"
capability = "scalar_udf"
sql = "SELECT stable_hash64(make_array(1, 2))"
expect_error = "plan"
'''
    )
    report = run_suites(lib_path, [str(suite)])
    assert report["results"][0]["outcome"] == "pass", report["results"][0]["detail"]


def test_find_error_code() -> None:
    assert find_error_code("Execution error: [E0005 invalid_argument] bad") == "invalid_argument"
    assert find_error_code("wrapped: ... [E0006 plan] x") == "plan"
    assert find_error_code("[E0099 future] x") == "unknown"
    assert find_error_code("[Eoops]") is None
    assert find_error_code("plain error") is None


@pytest.mark.parametrize(
    "text, needle",
    [
        ('name = "x"\nbogus = 1\n', "bogus"),
        ('name = "x"\n[[case]]\nname = "c"\ncapability = "scalar_udf"\nsql = "SELECT 1"\n', "needs expect_rows or expect_error"),
        (
            'name = "x"\n[[case]]\nname = "c"\ncapability = "s"\nsql = "SELECT 1"\nexpect_rows = [["1"]]\nexpect_error = "plan"\n',
            "not both",
        ),
        ('name = "x"\n[[case]]\nname = "c"\ncapability = "s"\nsql = "SELECT 1"\nexpect_error = "oops"\n', "unknown error code 'oops'"),
        ('name = "x"\n[[case]]\nname = "c"\ncapability = "s"\nsql = "SELECT 1"\nexpect_rows = [["1"]]\nextra = 1\n', "extra"),
    ],
)
def test_suite_validation(text: str, needle: str) -> None:
    with pytest.raises(SuiteError) as e:
        parse_suite(text, "t.toml")
    assert needle in str(e.value)


def test_cli_usage_errors(lib_path: str, tmp_path: Path) -> None:
    proc = _run_cli(lib_path, [tmp_path / "missing.toml"], tmp_path / "o.json")
    assert proc.returncode == 2 and "missing.toml" in proc.stderr


def test_setup_and_tmp_placeholder(lib_path: str, tmp_path: Path) -> None:
    """``setup`` statements run first; ``${TMP}`` is a fresh scratch directory per case,
    substituted in setup, sql, expect_rows and expect_error_contains, removed afterwards."""
    suite = tmp_path / "tmp.toml"
    suite.write_text(
        r'''
name = "tmp"

[[case]]
name = "setup writes into the scratch directory"
capability = "sql"
setup = [
    "COPY (SELECT 1 AS a UNION ALL SELECT 2) TO '${TMP}/x.parquet' STORED AS PARQUET",
    "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '${TMP}/x.parquet'",
]
sql = "SELECT a, '${TMP}' = '${TMP}' AS same FROM x"
expect_rows = [["1", "true"], ["2", "true"]]

[[case]]
name = "the next case starts with an empty directory"
capability = "sql"
setup = ["CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '${TMP}/x.parquet'"]
sql = "SELECT * FROM x"
expect_error = "error"
expect_error_contains = "${TMP}/x.parquet"

[[case]]
name = "placeholder in expected rows"
capability = "sql"
sql = "SELECT '${TMP}' AS d"
expect_rows = [["${TMP}"]]

[[case]]
name = "reveal one path"
capability = "sql"
sql = "SELECT '${TMP}' AS d"
expect_rows = [["not the path"]]

[[case]]
name = "reveal another path"
capability = "sql"
sql = "SELECT '${TMP}' AS d"
expect_rows = [["not the path"]]
'''
    )
    report = run_suites(lib_path, [str(suite)])
    outcomes = {r["case"]: (r["outcome"], r["detail"]) for r in report["results"]}
    for name in (
        "setup writes into the scratch directory",
        "the next case starts with an empty directory",
        "placeholder in expected rows",
    ):
        assert outcomes[name][0] == "pass", (name, outcomes[name][1])
    import re

    revealed = []
    for name in ("reveal one path", "reveal another path"):
        outcome, detail = outcomes[name]
        assert outcome == "fail"
        found = re.search(r"got \[\['([^']+)'\]\]", detail)
        assert found, detail
        revealed.append(found.group(1))
    assert revealed[0] != revealed[1]
    for p in revealed:
        assert os.path.isabs(p) and "${TMP}" not in p and not p.endswith("/")
        assert not os.path.exists(p), f"scratch directory {p} was not removed"


def test_substitute_tmp_leaves_the_case_alone() -> None:
    from dfplugin.conform import substitute_tmp

    case = {
        "name": "n ${TMP}",
        "capability": "sql",
        "setup": ["A ${TMP}/a", "B"],
        "sql": "S ${TMP} ${TMP}",
        "expect_error": "error",
        "expect_error_contains": "E ${TMP}",
    }
    out = substitute_tmp(case, "/t")
    assert out["setup"] == ["A /t/a", "B"] and out["sql"] == "S /t /t" and out["expect_error_contains"] == "E /t"
    assert out["name"] == "n ${TMP}" and case["sql"] == "S ${TMP} ${TMP}"


@pytest.mark.parametrize("setup", ['"SELECT 1"', "[1]", '["ok", 2]'])
def test_setup_must_be_a_list_of_strings(setup: str) -> None:
    text = f'name = "x"\n[[case]]\nname = "c"\ncapability = "s"\nsetup = {setup}\nsql = "SELECT 1"\nexpect_rows = [["1"]]\n'
    with pytest.raises(SuiteError) as e:
        parse_suite(text, "t.toml")
    assert "setup" in str(e.value)


def test_register_tables(lib_path: str, tmp_path: Path) -> None:
    """``register`` opens tables with the plugin's providers after setup; failures are the
    case's error."""
    suite = tmp_path / "register.toml"
    suite.write_text(
        r'''
name = "register"

[[case]]
name = "unknown provider kind"
capability = "table_provider"
register = [{ name = "t", kind = "nope", options = '{}' }]
sql = "SELECT 1"
expect_error = "error"
expect_error_contains = "registering a table"

[[case]]
name = "scratch directory in options"
capability = "table_provider"
register = [{ name = "t", kind = "delta", options = '{"table_uri": "${TMP}/missing"}' }]
sql = "SELECT 1"
expect_error = "error"
expect_error_contains = "${TMP}/missing"
'''
    )
    report = run_suites(lib_path, [str(suite)])
    for r in report["results"]:
        assert r["outcome"] == "pass", r


@pytest.mark.parametrize(
    "register, needle",
    [
        ("[1]", "register"),
        ('[{ name = "t", kind = "delta" }]', "options"),
        ('[{ name = "t", kind = "delta", options = "{}", extra = 1 }]', "extra"),
        ('"t"', "register"),
    ],
)
def test_register_validation(register: str, needle: str) -> None:
    text = f'name = "x"\n[[case]]\nname = "c"\ncapability = "s"\nregister = {register}\nsql = "SELECT 1"\nexpect_rows = [["1"]]\n'
    with pytest.raises(SuiteError) as e:
        parse_suite(text, "t.toml")
    assert needle in str(e.value)
