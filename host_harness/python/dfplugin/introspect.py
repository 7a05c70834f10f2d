"""``dfplugin_loaded()`` and ``dfplugin_objects()`` for datafusion-python sessions.

Python-side equivalents of ``host_harness/src/introspect.rs``: two pure-Python table
functions registered (once per session) by :meth:`dfplugin.Plugin.install`, listing what
was installed into that session, with the same columns as the Rust host.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, List

import pyarrow as pa

__all__ = ["LOADED_FUNCTION", "OBJECTS_FUNCTION", "InstalledObject", "InstalledPlugin", "SessionPlugins"]

LOADED_FUNCTION = "dfplugin_loaded"
OBJECTS_FUNCTION = "dfplugin_objects"


@dataclass(frozen=True)
class InstalledObject:
    """One object installed into a session: its capability kind and name."""

    kind: str
    name: str


@dataclass
class InstalledPlugin:
    """One plugin installed into a session, and what was installed (the install report).

    ``config`` tells what happened to the plugin's configuration namespace:
    ``"installed"`` (the session has it; ``SET <ns>.<key>`` works), ``"defaults"`` (the session
    was created without it: the plugin reads its defaults and ``SET <ns>.*`` fails; create
    the session with :meth:`Plugin.session_config`), or ``"none"`` (no namespace declared).
    """

    plugin: str
    version: str
    path: str
    build_id: str
    abi: str
    capabilities: List[str]
    native: bool = False
    objects: List[InstalledObject] = field(default_factory=list)
    config: str = "none"
    not_installed: List[str] = field(default_factory=list)


class SessionPlugins:
    """The record of plugins installed into one session (shared by its two functions)."""

    _by_session: "weakref.WeakValueDictionary[str, SessionPlugins]" = weakref.WeakValueDictionary()
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._installed: List[InstalledPlugin] = []
        self._mutex = threading.Lock()

    @classmethod
    def existing(cls, session_id: str) -> "SessionPlugins | None":
        """The record of a session whose introspection functions are registered already."""
        with cls._lock:
            return cls._by_session.get(session_id)

    @classmethod
    def create(cls, session_id: str) -> "SessionPlugins":
        """A new record, remembered (weakly) for ``session_id``."""
        record = cls()
        with cls._lock:
            cls._by_session[session_id] = record
        return record

    def add(self, entry: InstalledPlugin) -> None:
        with self._mutex:
            self._installed.append(entry)

    def snapshot(self) -> List[InstalledPlugin]:
        with self._mutex:
            return list(self._installed)

    def loaded_table(self) -> pa.Table:
        """Rows of ``dfplugin_loaded()``."""
        rows = self.snapshot()
        schema = pa.schema(
            [
                pa.field("plugin", pa.string(), False),
                pa.field("version", pa.string(), False),
                pa.field("path", pa.string(), False),
                pa.field("build_id", pa.string(), False),
                pa.field("abi", pa.string(), False),
                pa.field("capabilities", pa.string(), False),
                pa.field("native", pa.bool_(), False),
            ]
        )
        return pa.Table.from_pydict(
            {
                "plugin": [p.plugin for p in rows],
                "version": [p.version for p in rows],
                "path": [p.path for p in rows],
                "build_id": [p.build_id for p in rows],
                "abi": [p.abi for p in rows],
                "capabilities": [",".join(p.capabilities) for p in rows],
                "native": [p.native for p in rows],
            },
            schema=schema,
        )

    def objects_table(self) -> pa.Table:
        """Rows of ``dfplugin_objects()``."""
        rows = [(o.kind, o.name, p.plugin) for p in self.snapshot() for o in p.objects]
        schema = pa.schema(
            [
                pa.field("kind", pa.string(), False),
                pa.field("name", pa.string(), False),
                pa.field("plugin", pa.string(), False),
            ]
        )
        return pa.Table.from_pydict(
            {"kind": [r[0] for r in rows], "name": [r[1] for r in rows], "plugin": [r[2] for r in rows]},
            schema=schema,
        )

    def table_functions(self, ctx: Any) -> List[Any]:
        """The two ``TableFunction`` objects bound to ``ctx`` (not yet registered)."""
        import pyarrow.dataset as ds
        from datafusion.catalog import Table
        from datafusion.user_defined import TableFunction

        # The closures hold only this record (not the ctx), so no reference cycle keeps the
        # session alive.
        record = self

        def loaded(*_args: Any) -> Any:
            return Table(ds.dataset(record.loaded_table()))

        def objects(*_args: Any) -> Any:
            return Table(ds.dataset(record.objects_table()))

        return [TableFunction(LOADED_FUNCTION, loaded, ctx), TableFunction(OBJECTS_FUNCTION, objects, ctx)]
