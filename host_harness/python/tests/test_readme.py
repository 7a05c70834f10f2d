"""The README's usage snippets run as written (from the repository root)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

README = REPO / "host_harness" / "python" / "README.md"
ROOT_README = REPO / "README.md"


def _python_blocks(readme: Path = README) -> list:
    return re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)


def _run(code: str, lib_path: str) -> subprocess.CompletedProcess:
    default = "target/release/libcodeanatomy_plugin.so"
    if not (REPO / default).is_file() or os.path.realpath(REPO / default) != os.path.realpath(lib_path):
        code = code.replace(default, lib_path)  # CARGO_TARGET_DIR elsewhere: same library
    env = dict(os.environ, PYTHONPATH=str(REPO / "host_harness" / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("readme", [README, ROOT_README], ids=["python-readme", "root-readme"])
def test_three_line_usage_runs_as_written(lib_path: str, readme: Path) -> None:
    blocks = _python_blocks(readme)
    first = blocks[0]
    lines = [line for line in first.strip().splitlines() if line.strip()]
    assert lines == [
        "import dfplugin, datafusion",
        "ctx = datafusion.SessionContext()",
        'dfplugin.load("target/release/libcodeanatomy_plugin.so").install(ctx)',
    ]
    check = first + "\nassert ctx.sql('SELECT * FROM dfplugin_loaded()').count() == 1\n"
    proc = _run(check, lib_path)
    assert proc.returncode == 0, proc.stderr
    # Installing is quiet: nothing on stdout, and on stderr only the test setup's own notice
    # that this unsigned build was allowed (DFPLUGIN_ALLOW_UNSIGNED=1, see conftest.py).
    assert proc.stdout == ""
    noise = [line for line in proc.stderr.splitlines() if line.strip() and "unsigned plugins are allowed" not in line]
    assert noise == [], proc.stderr


def test_every_readme_snippet_runs(lib_path: str) -> None:
    for block in _python_blocks(README) + _python_blocks(ROOT_README):
        proc = _run(block, lib_path)
        assert proc.returncode == 0, f"README snippet failed:\n{block}\n{proc.stderr}"
