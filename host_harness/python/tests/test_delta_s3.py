"""Delta tables on S3: a moto server (``moto[server]==5.2.5``, pinned with the host packages)
on a free loopback port stands in for S3; deltalake-python writes the table and is the
oracle; the plugin reads it with its own object store options.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Dict, Iterator

import datafusion
import deltalake
import pyarrow as pa
import pytest

import dfplugin
from delta_support import differences

MOTO_REQUIREMENT = "moto[server]==5.2.5"
#: Upper bound for the server to start answering (a bound, not a sleep).
STARTUP_TIMEOUT = 60.0


def _require_moto() -> None:
    try:
        import moto  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as e:
        pytest.fail(
            f"the S3 tests need {MOTO_REQUIREMENT} (the moto server), which is not installed in {sys.executable}: "
            f"{e}. Add it to REQUIREMENTS in scripts/python-env.sh (or pip install '{MOTO_REQUIREMENT}')"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except OSError:
        return False


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, stopped at the end of the module."""
    _require_moto()
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _answers(f"{endpoint}/moto-api/"):
            try:
                proc.wait(timeout=0.05)  # returns only if the server died
            except subprocess.TimeoutExpired:
                pass
            else:
                err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                pytest.fail(f"the moto server exited with status {proc.returncode} before answering: {err[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the moto server did not answer on {endpoint} within {STARTUP_TIMEOUT:.0f}s")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _create_bucket(endpoint: str, bucket: str) -> None:
    req = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def _aws_options(endpoint: str) -> Dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret",
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }


@pytest.fixture(scope="module")
def s3_table(s3_endpoint: str) -> str:
    """s3://bucket/t: three commits (create, append, delete), partitioned."""
    _create_bucket(s3_endpoint, "bucket")
    uri = "s3://bucket/t"
    opts = _aws_options(s3_endpoint)
    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("part", pa.string())])
    deltalake.write_deltalake(
        uri,
        pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"], "part": ["x", "y", "x"]}, schema=schema),
        partition_by=["part"],
        storage_options=opts,
    )
    deltalake.write_deltalake(
        uri, pa.table({"id": [4], "name": ["d"], "part": ["z"]}, schema=schema), mode="append", storage_options=opts
    )
    deltalake.DeltaTable(uri, storage_options=opts).delete("id = 2")
    return uri


def _read(plugin: dfplugin.Plugin, uri: str, opts: Dict[str, str], **kwargs) -> pa.Table:
    ctx = datafusion.SessionContext()
    ctx.register_table("t", plugin.delta_table(uri, storage_options=opts, **kwargs))
    return ctx.sql("SELECT * FROM t").to_arrow_table()


def test_s3_table_matches_oracle(plugin: dfplugin.Plugin, s3_endpoint: str, s3_table: str) -> None:
    opts = _aws_options(s3_endpoint)
    oracle = deltalake.DeltaTable(s3_table, storage_options=opts)
    assert oracle.version() == 2
    failures = differences(_read(plugin, s3_table, opts), oracle.to_pyarrow_table(), "s3 latest")
    for v in range(3):
        expected = deltalake.DeltaTable(s3_table, version=v, storage_options=opts).to_pyarrow_table()
        failures += differences(_read(plugin, s3_table, opts, version=v), expected, f"s3 v{v}")
    assert not failures, "\n".join(failures)


def test_s3_short_option_names(plugin: dfplugin.Plugin, s3_endpoint: str, s3_table: str) -> None:
    opts = _aws_options(s3_endpoint)
    short = {
        "endpoint": opts["AWS_ENDPOINT_URL"],
        "region": opts["AWS_REGION"],
        "access_key_id": opts["AWS_ACCESS_KEY_ID"],
        "secret_access_key": opts["AWS_SECRET_ACCESS_KEY"],
        "allow_http": "true",
    }
    expected = deltalake.DeltaTable(s3_table, storage_options=opts).to_pyarrow_table()
    diff = differences(_read(plugin, s3_table, short), expected, "s3 with short option names")
    assert not diff, "\n".join(diff)
    # allow_http as a Python bool is sent as "true"
    diff = differences(_read(plugin, s3_table, dict(short, allow_http=True)), expected, "s3 allow_http=True")
    assert not diff, "\n".join(diff)


def test_s3_errors_name_the_table(plugin: dfplugin.Plugin, s3_endpoint: str, s3_table: str) -> None:
    opts = _aws_options(s3_endpoint)
    with pytest.raises(dfplugin.PluginError) as e:
        plugin.delta_table("s3://bucket/missing", storage_options=opts)
    assert "s3://bucket/missing" in (e.value.plugin_message or ""), e.value
    assert opts["AWS_SECRET_ACCESS_KEY"] not in str(e.value)
    with pytest.raises(dfplugin.PluginError) as e:
        plugin.delta_table(s3_table, storage_options=opts, version=9)
    assert s3_table in (e.value.plugin_message or "") and "9" in (e.value.plugin_message or ""), e.value
