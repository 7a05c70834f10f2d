"""Paths that are not regular files: FIFOs, sockets, devices, directories, symbolic link
loops and dangling links are refused by ``load`` and ``inspect`` without being opened.

Opening a FIFO blocks until a writer appears, so a regression would hang: those calls run in
a child process with a timeout, which turns a hang into a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dfplugin
from conftest import REPO

#: Bound for the child process (imports dfplugin; the calls themselves must return at once).
CHILD_TIMEOUT = 120


def _refusal(fn, path) -> dfplugin.PluginLoadError:
    with pytest.raises(dfplugin.PluginLoadError) as e:
        fn(path)
    return e.value


def test_fifo_is_refused_promptly(tmp_path: Path) -> None:
    fifo = tmp_path / "libfifo.so"
    os.mkfifo(fifo)
    link = tmp_path / "liblink.so"
    os.symlink(fifo, link)
    code = textwrap.dedent(
        f"""
        import json, dfplugin
        out = {{}}
        for name, fn in (("load", dfplugin.load), ("inspect", dfplugin.inspect)):
            for path in ({str(fifo)!r}, {str(link)!r}):
                try:
                    fn(path)
                    out[name + " " + path] = None
                except dfplugin.PluginError as e:
                    out[name + " " + path] = [e.kind, str(e)]
        print(json.dumps(out))
        """
    )
    env = dict(os.environ, PYTHONPATH=str(REPO / "host_harness" / "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dfplugin.load / inspect on a FIFO did not return within {CHILD_TIMEOUT}s (it opened the FIFO)")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out) == 4
    for call, result in out.items():
        assert result is not None, f"{call} succeeded"
        kind, message = result
        assert kind == "not_a_regular_file", (call, message)
        path = call.split(" ", 1)[1]
        assert path in message and "a FIFO (named pipe)" in message and "regular .so file" in message, message


def test_socket_and_device_are_refused(tmp_path: Path) -> None:
    sock_path = tmp_path / "libsock.so"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(sock_path))
        for fn in (dfplugin.load, dfplugin.inspect):
            err = _refusal(fn, sock_path)
            assert err.kind == "not_a_regular_file" and "a socket" in str(err) and str(sock_path) in str(err)
    for fn in (dfplugin.load, dfplugin.inspect):
        err = _refusal(fn, "/dev/null")
        assert err.kind == "not_a_regular_file" and "a character device" in str(err) and "/dev/null" in str(err)


def test_directory_is_refused(tmp_path: Path) -> None:
    for fn in (dfplugin.load, dfplugin.inspect):
        err = _refusal(fn, tmp_path)
        assert err.kind == "not_a_library" and "is a directory" in str(err) and str(tmp_path) in str(err)


def test_symlink_loop(tmp_path: Path) -> None:
    a, b = tmp_path / "liba.so", tmp_path / "libb.so"
    os.symlink(b, a)
    os.symlink(a, b)
    self_loop = tmp_path / "libself.so"
    os.symlink(self_loop, self_loop)
    for path in (a, self_loop):
        for fn in (dfplugin.load, dfplugin.inspect):
            err = _refusal(fn, path)
            assert err.kind == "unreadable", str(err)
            assert "symbolic link loop" in str(err) and str(path) in str(err)


def test_dangling_symlink(tmp_path: Path) -> None:
    target = tmp_path / "build" / "libgone.so"
    link = tmp_path / "libplugin.so"
    os.symlink(target, link)
    for fn in (dfplugin.load, dfplugin.inspect):
        err = _refusal(fn, link)
        assert err.kind == "not_found", str(err)
        msg = str(err)
        assert str(link) in msg and str(target) in msg and "link target is missing" in msg, msg


def test_missing_and_not_a_directory(tmp_path: Path) -> None:
    err = _refusal(dfplugin.load, tmp_path / "nope.so")
    assert err.kind == "not_found" and "does not exist" in str(err)
    plain = tmp_path / "plain"
    plain.write_text("x")
    err = _refusal(dfplugin.inspect, plain / "lib.so")
    assert err.kind == "not_found" and str(plain / "lib.so") in str(err)


def test_symlink_to_library_still_loads(plugin: dfplugin.Plugin, tmp_path: Path) -> None:
    link = tmp_path / "liblink.so"
    os.symlink(plugin.path, link)
    assert dfplugin.inspect(link)["plugin"]["name"] == plugin.name
    assert dfplugin.load(link) is plugin
