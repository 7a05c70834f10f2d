"""Delta tables: the plugin exports no provider yet; deltalake's own provider works alongside."""

from __future__ import annotations

import pyarrow as pa
import pytest

import dfplugin
from conftest import require_function


def test_delta_table_reports_missing_capability(plugin: dfplugin.Plugin, tmp_path) -> None:
    with pytest.raises(dfplugin.PluginError) as e:
        plugin.delta_table(str(tmp_path), timestamp="2024-01-01T00:00:00Z")
    assert e.value.kind == "capability_unavailable"
    assert "table_provider" in str(e.value) and "deltalake.DeltaTable" in str(e.value)
    with pytest.raises(ValueError):
        plugin.delta_table(str(tmp_path), version=1, timestamp="2024-01-01T00:00:00Z")


def test_deltalake_provider_with_plugin_installed(plugin: dfplugin.Plugin, tmp_path) -> None:
    """deltalake==1.6.6's provider (datafusion-ffi 55.1) in a session that also runs the
    plugin's functions and physical optimizer rule."""
    deltalake = pytest.importorskip("deltalake")
    require_function(plugin, "scalar_udf", "stable_id")
    path = str(tmp_path / "files")
    deltalake.write_deltalake(path, pa.table({"path": ["b.py", "a.py"], "n": [2, 1]}))
    ctx = plugin.session_context()
    ctx.register_table("files", deltalake.DeltaTable(path))
    rows = ctx.sql("SELECT path, stable_id('file', path) AS id FROM files ORDER BY path").to_pylist()
    import hashlib

    assert rows == [
        {"path": p, "id": "file:" + hashlib.blake2b(p.encode(), digest_size=16).hexdigest()} for p in ("a.py", "b.py")
    ]
