"""Seeded, bounded fuzzing of the real plugin library in datafusion-python.

The inputs run in a child process (``fuzz_child.py``: random pyarrow columns and literals for
every function, random plugin options and ``SET`` statements, mutated Delta tables), so a
crash of the interpreter (SIGSEGV, SIGABRT: a Rust panic or abort crossing FFI) or a hang is
observed here instead of killing pytest. The child keeps the case it is running in a progress
file and appends its findings to a JSON-lines file; when it dies, the crash (or the hang its
per-input faulthandler watchdog reports) is recorded with that case's exact input, and the
child is restarted after it, so one run reports every crashing input (up to ``MAX_RUNS``).

Verdict: the child exits 0, no crash, no hang, every error message non-empty and clean (no
panic text, no DataFusion internal error), and no row of a file outside a Delta table's root
is ever returned (add actions pointing there must be refused). A DataFusion internal error
that the same query raises with a built-in in place of the plugin's call is DataFusion's own
bug: counted as ``datafusion_bugs=``, not held against the plugin. The summary line
(``fuzz: python-host seed=… inputs=… ok=… clean_errors=… crashes=0 hangs=0 …``) is printed
and attached to the test report as the ``fuzz`` property (JUnit XML).

Environment: ``DFPLUGIN_FUZZ_SEED``, ``DFPLUGIN_FUZZ_CASES``, ``DFPLUGIN_FUZZ_ONLY`` (see
``fuzz_child.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from conftest import REPO

CHILD = Path(__file__).resolve().parent / "fuzz_child.py"
DEFAULT_SEED = "0x0DF0C0DEA7A70001"
#: Time the child may spend starting cases (all runs together); then it stops and reports.
BUDGET_SECONDS = 150.0
#: Per input: faulthandler's watchdog in the child exits the process after this long.
CASE_TIMEOUT = 20.0
#: Child runs at most (the first, plus restarts after crashing or hanging inputs).
MAX_RUNS = 6


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(path.read_text().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def test_fuzz_python_host(lib_path: str, tmp_path: Path, record_property: Any) -> None:
    started = time.monotonic()
    seed = os.environ.get("DFPLUGIN_FUZZ_SEED", DEFAULT_SEED)
    env = dict(
        os.environ,
        DFPLUGIN_ALLOW_UNSIGNED="1",
        DFPLUGIN_LIB=lib_path,
        DFPLUGIN_FUZZ_SEED=seed,
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(REPO / "host_harness" / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    findings_file = tmp_path / "findings.jsonl"
    totals = {"inputs": 0, "ok": 0, "clean_errors": 0, "named_errors": 0, "empty_messages": 0, "datafusion_bugs": 0}
    died: List[Dict[str, str]] = []  # crashes and hangs seen from here
    summary: Optional[Dict[str, Any]] = None
    start, runs = 0, 0
    while runs < MAX_RUNS:
        runs += 1
        progress = tmp_path / f"progress-{runs}.json"
        budget = max(BUDGET_SECONDS - (time.monotonic() - started), 5.0)
        cmd = [
            sys.executable, str(CHILD), "--lib", lib_path, "--workdir", str(tmp_path / "work"), "--progress", str(progress),
            "--findings", str(findings_file), "--start", str(start), "--case-timeout", str(CASE_TIMEOUT),
            "--budget-seconds", str(budget),
        ]  # fmt: skip
        hung_outright = False
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=budget + CASE_TIMEOUT + 60)
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:  # the watchdog did not fire: a backstop
            hung_outright = True
            returncode = None
            stdout = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        if returncode == 0:
            summary = json.loads(stdout.strip().splitlines()[-1])
            for key in totals:
                totals[key] += summary[key]
            break
        last = _read_json(progress) or {}
        for key in totals:
            totals[key] += (last.get("counts") or {}).get(key, 0)
        totals["inputs"] += 1  # the input that never finished
        is_hang = hung_outright or "Timeout (0:" in stderr
        died.append(
            {
                "kind": "hang" if is_hang else "crash",
                "case": str(last.get("case", "<before the first input>")),
                "input": str(last.get("input", "")),
                "detail": "no answer (child killed)" if hung_outright
                else f"no answer within {CASE_TIMEOUT:.0f}s (faulthandler watchdog)" if is_hang
                else f"the child process died: {_signal_name(returncode)}",
                "stderr": stderr[-3000:],
            }
        )  # fmt: skip
        if "global" not in last:
            break  # died before any input: nothing to resume after
        start = int(last["global"]) + 1

    findings = [json.loads(line) for line in findings_file.read_text().splitlines()] if findings_file.exists() else []
    crashes = [f for f in findings if f["kind"] == "crash"] + [f for f in died if f["kind"] == "crash"]
    hangs = [f for f in died if f["kind"] == "hang"]
    unclean = [f for f in findings if f["kind"] == "unclean"]
    escapes = [f for f in findings if f["kind"] == "escape"]
    line = (
        f"fuzz: python-host seed={seed} inputs={totals['inputs']} ok={totals['ok']} clean_errors={totals['clean_errors']} "
        f"unclean_errors={len(unclean)} crashes={len(crashes)} hangs={len(hangs)} escapes={len(escapes)} "
        f"named_errors={totals['named_errors']} datafusion_bugs={totals['datafusion_bugs']} child_runs={runs} "
        f"in {time.monotonic() - started:.1f}s"
    )
    if summary and summary.get("stopped_by_budget_at"):
        line += f" (time budget reached at {summary['stopped_by_budget_at']})"
    record_property("fuzz", line)
    print(line)
    for example in (summary or {}).get("anonymous_examples", []):
        print(f"  clean error naming neither a code tag nor the input: {example}")
    for example in (summary or {}).get("datafusion_bug_examples", []):
        print(f"  DataFusion bug (the query fails the same way with a built-in in place of the plugin's call): {example}")

    replay = (
        f"DFPLUGIN_ALLOW_UNSIGNED=1 DFPLUGIN_FUZZ_SEED={seed} DFPLUGIN_FUZZ_ONLY=<case> {sys.executable} {CHILD} "
        f"--lib {lib_path} --workdir /tmp/dfplugin-fuzz --progress /tmp/dfplugin-fuzz.progress --findings /tmp/dfplugin-fuzz.jsonl"
    )
    report = []
    for what, items in (("CRASH", crashes), ("HANG", hangs), ("UNCLEAN ERROR", unclean), ("ROOT ESCAPE", escapes)):
        for f in items[:12]:
            entry = f"{what} in case {f['case']}: {f['detail']}\n  input: {f['input']}"
            if f.get("stderr"):
                entry += f"\n  child stderr (tail): {f['stderr'][-1500:]}"
            report.append(entry)
        if len(items) > 12:
            report.append(f"... and {len(items) - 12} more {what} findings")
    if report:
        report.append(f"replay one case (<case> = family:index, e.g. {(crashes + hangs + unclean + escapes)[0]['case'].split('/')[0]}):\n  {replay}")
    assert not report, line + "\n\n" + "\n\n".join(report)
    assert summary is not None, line
    assert totals["empty_messages"] == 0, line
    if summary["counts"]["delta"] >= 10 and runs == 1 and not summary.get("stopped_by_budget_at") and not os.environ.get("DFPLUGIN_FUZZ_ONLY"):
        # Delta cases 8 and 9 are the relative and the absolute escape (every kind in turn).
        assert summary["escape_checks"] >= 2, summary
