"""Runs the TOML conformance suites of the Rust host against datafusion-python.

Usage::

    python -m dfplugin.conform --library target/release/libcodeanatomy_plugin.so \\
        --suite manifests/codeanatomy.default.toml --json target/conformance-python.json

Suite format: see ``host_harness/src/conform.rs`` (the same files, parsed the same way:
unknown fields are errors, each case expects rows or an error code). Each case runs in a
fresh ``SessionContext`` created with the plugin's configuration namespace
(:meth:`dfplugin.Plugin.session_config`) and every object installed: first its optional
``setup = ["SQL", ...]`` statements, then its optional ``register = [{name, kind, options}]``
tables (opened with :meth:`dfplugin.Plugin.table_provider` from the ``options`` JSON text and
registered as ``name``; a failure there is the case's error, prefixed ``registering a
table:``), then ``sql``. Statements run through :func:`dfplugin.sql` (so ``RESET
<namespace>.<key>`` restores a plugin key's default, as in the Rust host).

A case that mentions ``${TMP}`` in ``sql``, a ``setup`` statement or a ``register`` options
text gets a scratch directory, created fresh (empty) before the case and removed afterwards:
``${TMP}`` (its absolute path, no trailing slash) is replaced by that path there, in
``expect_error_contains`` and in every cell of ``expect_rows``. Rows are compared as
display strings (:mod:`dfplugin.display`, arrow-rs formatting, ``NULL`` for nulls), as a
sorted multiset unless ``ordered = true``; errors by the plugin's code tag
(``[E0005 invalid_argument]``) and an optional substring.

Output JSON: ``{"host": "datafusion-python", "results": [{"case", "capability", "outcome",
"detail"}], ...}`` with outcome ``pass``, ``fail`` or ``not_installable`` (cases whose
capability datafusion-python cannot install are reported, never skipped silently).
Exit status: 0 when nothing failed, 1 when a case failed, 2 for usage/suite/load errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

from .display import rows_of
from .errors import PluginError
from .plugin import CAPABILITY_MATRIX, HOST, Plugin, load
from .redact import redact_text
from .sql import sql as _sql

__all__ = [
    "ERROR_CODES",
    "TMP_PLACEHOLDER",
    "SuiteError",
    "parse_suite",
    "find_error_code",
    "substitute_tmp",
    "uses_tmp",
    "run_case",
    "run_suites",
    "main",
    "DEFAULT_SUITE",
]

log = logging.getLogger("dfplugin.conform")

#: Error code names by number (``plugin_api/src/error.rs``, ``ErrorCode``).
ERROR_CODES: Tuple[str, ...] = (
    "unknown",
    "internal",
    "panic",
    "invalid_options",
    "invalid_config",
    "invalid_argument",
    "plan",
    "execution",
    "unknown_object",
    "unsupported",
    "policy_violation",
    "io",
    "not_found",
    "corrupt_data",
)

_SUITE_FIELDS = {"name", "description", "case"}
_REGISTER_FIELDS = {"name", "kind", "options"}
_CASE_FIELDS = {
    "name",
    "capability",
    "objects",
    "setup",
    "register",
    "sql",
    "expect_rows",
    "ordered",
    "expect_error",
    "expect_error_contains",
}

#: The default suite of this repository (when the package runs from the source tree).
DEFAULT_SUITE = Path(__file__).resolve().parents[3] / "manifests" / "codeanatomy.default.toml"

#: Replaced by the case's scratch directory in setup, sql and expected strings.
TMP_PLACEHOLDER = "${TMP}"

#: Capability of the introspection cases (``dfplugin_loaded()`` / ``dfplugin_objects()``),
#: implemented here as Python table functions.
HOST_CAPABILITY = "host"


class SuiteError(ValueError):
    """A suite file is missing or invalid."""


def parse_suite(text: str, origin: str) -> Dict[str, Any]:
    """Parses and validates a suite like ``Suite::parse`` in ``conform.rs``."""
    try:
        suite = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"suite '{origin}' is not valid: {e}") from e
    unknown = set(suite) - _SUITE_FIELDS
    if unknown:
        raise SuiteError(f"suite '{origin}' is not valid: unknown field(s) {', '.join(sorted(unknown))}")
    if not isinstance(suite.get("name"), str):
        raise SuiteError(f"suite '{origin}' is not valid: missing field `name`")
    cases = suite.get("case", [])
    for i, case in enumerate(cases):
        label = case.get("name", f"#{i}")
        unknown = set(case) - _CASE_FIELDS
        if unknown:
            raise SuiteError(f"suite '{origin}', case '{label}': unknown field(s) {', '.join(sorted(unknown))}")
        for req in ("name", "capability", "sql"):
            if not isinstance(case.get(req), str):
                raise SuiteError(f"suite '{origin}', case '{label}': missing string field `{req}`")
        for list_field in ("setup", "objects"):
            value = case.get(list_field, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SuiteError(f"suite '{origin}', case '{label}': `{list_field}` must be a list of strings")
        if not isinstance(case.get("ordered", False), bool):
            raise SuiteError(f"suite '{origin}', case '{label}': `ordered` must be true or false")
        if not isinstance(case.get("expect_error_contains", ""), str):
            raise SuiteError(f"suite '{origin}', case '{label}': `expect_error_contains` must be a string")
        register = case.get("register", [])
        if not isinstance(register, list):
            raise SuiteError(f"suite '{origin}', case '{label}': `register` must be a list of tables")
        for table in register:
            if not isinstance(table, dict):
                raise SuiteError(f"suite '{origin}', case '{label}': each `register` entry must be a table {{name, kind, options}}")
            unknown = set(table) - _REGISTER_FIELDS
            if unknown:
                raise SuiteError(
                    f"suite '{origin}', case '{label}': unknown field(s) {', '.join(sorted(unknown))} in `register`"
                )
            for req in sorted(_REGISTER_FIELDS):
                if not isinstance(table.get(req), str):
                    raise SuiteError(f"suite '{origin}', case '{label}': `register` entry lacks string field `{req}`")
        has_rows, has_error = "expect_rows" in case, "expect_error" in case
        if has_rows and has_error:
            raise SuiteError(f"suite '{origin}', case '{label}': give expect_rows or expect_error, not both")
        if not has_rows and not has_error:
            raise SuiteError(f"suite '{origin}', case '{label}': needs expect_rows or expect_error")
        if has_rows:
            rows = case["expect_rows"]
            if not isinstance(rows, list) or not all(isinstance(r, list) and all(isinstance(c, str) for c in r) for r in rows):
                raise SuiteError(f"suite '{origin}', case '{label}': expect_rows must be a list of lists of strings")
        if has_error:
            code = case["expect_error"]
            if code != "error" and code not in ERROR_CODES:
                raise SuiteError(
                    f"suite '{origin}', case '{label}': unknown error code '{code}'; expected \"error\" or one "
                    f"of {', '.join(ERROR_CODES)}"
                )
    return suite


def find_error_code(text: str) -> Optional[str]:
    """The name of the first ``[E<digits>`` code tag in ``text`` (``ErrorCode::find_in``)."""
    start = text.find("[E")
    if start < 0:
        return None
    rest = text[start + 2 :]
    digits = ""
    for ch in rest:
        if not ch.isdigit():
            break
        digits += ch
    if not digits:
        return None
    n = int(digits)
    return ERROR_CODES[n] if n < len(ERROR_CODES) else "unknown"


class _RegisterError(Exception):
    """Opening or registering a case's ``register`` table failed."""


def _run_sql(plugin: Plugin, ctx: Any, case: Dict[str, Any]) -> List[Any]:
    # Through dfplugin.sql, like the Rust host's df_plugin_host::sql::sql: RESET of a plugin
    # key restores its default (DataFusion 55's ctx.sql resets datafusion.* keys only).
    for statement in case.get("setup", []):
        _sql(ctx, statement).collect()
    for table in case.get("register", []):
        try:
            ctx.register_table(table["name"], plugin.table_provider(table["kind"], table["options"]))
        except Exception as e:
            raise _RegisterError(f"registering a table: {redact_text(str(e))}") from e
    return _sql(ctx, case["sql"]).collect()


def uses_tmp(case: Dict[str, Any]) -> bool:
    """Whether ``case`` mentions ``${TMP}`` in ``sql``, ``setup`` or ``register`` options."""
    return (
        TMP_PLACEHOLDER in case["sql"]
        or any(TMP_PLACEHOLDER in s for s in case.get("setup", []))
        or any(TMP_PLACEHOLDER in t["options"] for t in case.get("register", []))
    )


def substitute_tmp(case: Dict[str, Any], tmp: str) -> Dict[str, Any]:
    """A copy of ``case`` with ``${TMP}`` replaced by ``tmp`` in ``setup``, ``register``
    options, ``sql``, ``expect_error_contains`` and the cells of ``expect_rows``."""
    out = dict(case)
    out["setup"] = [s.replace(TMP_PLACEHOLDER, tmp) for s in case.get("setup", [])]
    out["register"] = [dict(t, options=t["options"].replace(TMP_PLACEHOLDER, tmp)) for t in case.get("register", [])]
    out["sql"] = case["sql"].replace(TMP_PLACEHOLDER, tmp)
    if case.get("expect_error_contains") is not None:
        out["expect_error_contains"] = case["expect_error_contains"].replace(TMP_PLACEHOLDER, tmp)
    if case.get("expect_rows") is not None:
        out["expect_rows"] = [[c.replace(TMP_PLACEHOLDER, tmp) for c in row] for row in case["expect_rows"]]
    return out


def run_case(plugin: Plugin, case: Dict[str, Any]) -> Tuple[str, str]:
    """Runs one case in a fresh session (and, when it uses ``${TMP}``, a fresh scratch
    directory, removed afterwards); returns ``(outcome, detail)``."""
    capability = case["capability"]
    if capability in CAPABILITY_MATRIX:
        known = plugin.capabilities()[capability]
        if not known["installable"]:
            return "not_installable", f"{capability} cannot be installed in {HOST}: {known['reason']}"
    if not uses_tmp(case):
        return _run_case_in(plugin, case)
    try:
        tmp = tempfile.mkdtemp(prefix="dfplugin-conform-")
    except OSError as e:
        return "fail", f"could not create the case's scratch directory: {e}"
    try:
        return _run_case_in(plugin, substitute_tmp(case, os.path.realpath(tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_case_in(plugin: Plugin, case: Dict[str, Any]) -> Tuple[str, str]:
    try:
        ctx = plugin.session_context()
    except Exception as e:
        return "fail", f"could not create a session: {e}"
    try:
        batches = _run_sql(plugin, ctx, case)
        error: Optional[str] = None
    except Exception as e:
        batches, error = [], str(e)
    expected_rows = case.get("expect_rows")
    code = case.get("expect_error")
    if expected_rows is not None:
        if error is not None:
            return "fail", f"expected rows, got error: {error}"
        try:
            actual = rows_of(batches)
        except Exception as e:
            return "fail", f"could not format result: {e}"
        expected = [list(r) for r in expected_rows]
        if not case.get("ordered", False):
            actual.sort()
            expected.sort()
        if actual == expected:
            return "pass", ""
        return "fail", f"expected rows {expected!r}, got {actual!r}"
    if error is None:
        try:
            rows = rows_of(batches)
        except Exception:
            rows = []
        return "fail", f"expected error '{code}', got rows {rows!r}"
    if code != "error":
        found = find_error_code(error)
        if found != code:
            return "fail", f"expected error code '{code}', got {found or 'no code'}: {error}"
    needle = case.get("expect_error_contains")
    if needle is not None and needle not in error:
        return "fail", f"error does not contain '{needle}': {error}"
    return "pass", ""


def run_suites(library: str, suites: Sequence[str]) -> Dict[str, Any]:
    """Runs every case of every suite against the plugin at ``library``; the JSON report."""
    plugin = load(library)
    results: List[Dict[str, str]] = []
    names: List[str] = []
    covered: set = set()
    for path in suites:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise SuiteError(f"cannot read suite '{path}': {e}") from e
        suite = parse_suite(text, str(path))
        names.append(suite["name"])
        for case in suite.get("case", []):
            covered.update(case.get("objects", []))
            outcome, detail = run_case(plugin, case)
            log.debug("case %s: %s %s", case["name"], outcome, redact_text(detail))
            results.append(
                {"case": case["name"], "capability": case["capability"], "outcome": outcome, "detail": detail}
            )
    exported = sorted({n for names_ in (plugin.manifest.get("objects") or {}).values() for n in names_})
    summary = {k: sum(1 for r in results if r["outcome"] == k) for k in ("pass", "fail", "not_installable")}
    return {
        "host": HOST,
        "plugin": plugin.name,
        "library": plugin.path,
        "suites": names,
        "results": results,
        "summary": summary,
        "uncovered_objects": [n for n in exported if n not in covered],
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point (``python -m dfplugin.conform``)."""
    parser = argparse.ArgumentParser(
        prog="python -m dfplugin.conform",
        description="Run dfplugin conformance suites (TOML) against datafusion-python.",
    )
    parser.add_argument(
        "--library",
        default=os.environ.get("DFPLUGIN_LIB"),
        help="plugin library (.so); default: $DFPLUGIN_LIB",
    )
    parser.add_argument(
        "--suite",
        action="append",
        default=None,
        help=f"suite file (repeatable); default: {DEFAULT_SUITE}",
    )
    parser.add_argument("--json", dest="json_out", default=None, help="write the JSON report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.library:
        parser.error("--library is required (or set DFPLUGIN_LIB)")
    suites = args.suite or [str(DEFAULT_SUITE)]
    try:
        report = run_suites(args.library, suites)
    except (PluginError, SuiteError) as e:
        sys.stderr.write(f"dfplugin.conform: {e}\n")
        return 2
    text = json.dumps(report, indent=2)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(text + "\n", encoding="utf-8")
    s = report["summary"]
    sys.stdout.write(
        f"{HOST}: {s['pass']} passed, {s['fail']} failed, {s['not_installable']} not installable "
        f"({len(report['results'])} cases from {', '.join(report['suites'])})\n"
    )
    for r in report["results"]:
        if r["outcome"] != "pass":
            sys.stdout.write(f"  {r['outcome'].upper()} [{r['capability']}] {r['case']}: {r['detail']}\n")
    return 1 if s["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
