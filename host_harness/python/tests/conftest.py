"""Shared fixtures: the real plugin library ($DFPLUGIN_LIB) and the fixture libraries."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[3]
# Importable from the repository even without `pip install -e`.
sys.path.insert(0, str(REPO / "host_harness" / "python"))

# The libraries under test (the build output and its fixtures) are unsigned, and by default
# dfplugin refuses unsigned libraries. Allow them in this process and in the child processes
# the tests start (conformance runner, README snippets, Rust host), before dfplugin is imported
# (it reads the trust policy from the environment at first use). The trust policy itself is
# tested in fresh child processes without this variable: tests/test_signing.py.
os.environ["DFPLUGIN_ALLOW_UNSIGNED"] = "1"
# No test may reach a cloud metadata service: any S3 client (deltalake, the plugin's object
# store) must use the explicit (dummy) credentials and loopback endpoints the tests give it.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import dfplugin  # noqa: E402

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
if not TARGET.is_absolute():
    TARGET = REPO / TARGET
DEFAULT_LIB = TARGET / "release" / "libcodeanatomy_plugin.so"
FIXTURES = Path(os.environ.get("DFPLUGIN_FIXTURES", TARGET / "release" / "examples"))


@pytest.fixture(scope="session")
def lib_path() -> str:
    """Path of the real plugin library under test."""
    path = os.environ.get("DFPLUGIN_LIB", str(DEFAULT_LIB))
    if not os.path.isfile(path):
        pytest.fail(f"plugin library {path} not found; run `make build` (or set DFPLUGIN_LIB)")
    return path


@pytest.fixture(scope="session")
def plugin(lib_path: str) -> dfplugin.Plugin:
    """The loaded plugin (loaded once per process, like any host would)."""
    return dfplugin.load(lib_path)


@pytest.fixture(scope="session")
def fixture_lib() -> Callable[[str], str]:
    """``fixture_lib("good")`` -> path of target/release/examples/libfixture_good.so."""

    def get(name: str) -> str:
        path = FIXTURES / f"libfixture_{name}.so"
        if not path.is_file():
            pytest.fail(f"fixture library {path} not found; `make build` builds the fixtures (examples)")
        return str(path)

    return get


@pytest.fixture()
def ctx(plugin: dfplugin.Plugin):
    """A fresh session created with the plugin's config namespace and everything installed."""
    return plugin.session_context()


def require_function(plugin: dfplugin.Plugin, kind: str, name: str) -> None:
    """Skips the calling test (with the reason) when the library does not export ``name``."""
    if name not in plugin.objects(kind):
        pytest.skip(f"{kind} '{name}' is not exported by {plugin.path} yet (manifest lists: {plugin.objects(kind)})")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Prints the fuzz harness's counts at the end of every run (test_fuzz.py records them)."""
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", "call") != "call":
                continue
            lines.extend(value for name, value in getattr(report, "user_properties", []) if name == "fuzz")
    if lines:
        terminalreporter.write_sep("-", "fuzz")
        for line in lines:
            terminalreporter.write_line(line)
