"""The plugin's whole-session objects for datafusion-python 55: a query planner and codecs.

datafusion-python 55 has no hook for analyzer rules, relation planners or DML on foreign
tables, but it takes whole query planners and extension codecs through
``SessionContext.with_extensions``. :class:`PluginExtension` is that bundle: the plugin's
planner wraps the session's own, runs the plugin's analyzer rules on every plan that reaches
physical planning, and plans ``DELETE`` / ``UPDATE`` on the plugin's tables; its codecs carry
plugin objects across the planner boundary inside this process.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Dict, Optional

from ._ffi import QUERY_PLANNER_CAPSULE, capsule_pointer

if TYPE_CHECKING:  # pragma: no cover
    from .plugin import Plugin

__all__ = ["PluginCodecs", "PluginExtension", "extension_handle"]


class PluginLogicalCodec:
    """The plugin's in-process logical codec (``__datafusion_logical_extension_codec__``)."""

    def __init__(self, plugin: "Plugin") -> None:
        self._plugin = plugin

    def __datafusion_logical_extension_codec__(self, session: Any = None) -> Any:
        return self._plugin.library.capsule("logical_codec", None, extra=())


class PluginPhysicalCodec:
    """The plugin's in-process physical codec (``__datafusion_physical_extension_codec__``)."""

    def __init__(self, plugin: "Plugin") -> None:
        self._plugin = plugin

    def __datafusion_physical_extension_codec__(self, session: Any = None) -> Any:
        return self._plugin.library.capsule("physical_codec", None, extra=())


class PluginCodecs:
    """A ``SessionContext.with_extensions`` bundle with the plugin's codecs only. Installing it
    changes nothing for other queries: the codecs live on the handle it returns, which dfplugin
    keeps to hand registered tables to the plugin (time travel)."""

    def __init__(self, plugin: "Plugin") -> None:
        self._plugin = plugin

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._plugin.name!r})"

    def __datafusion_session_components__(self, ctx: Any) -> Any:
        from datafusion.extensions import SessionExtensionComponents

        return SessionExtensionComponents(
            logical_extension_codecs=[PluginLogicalCodec(self._plugin)],
            physical_extension_codecs=[PluginPhysicalCodec(self._plugin)],
        )


class PluginExtension(PluginCodecs):
    """A ``SessionContext.with_extensions`` bundle: the plugin's codecs and query planner.

    Experimental (``plugin.install(ctx, query_planner=True)``): every plan of the session then
    crosses datafusion-ffi's query-planner boundary as protobuf, which DataFusion 55 cannot do
    for ``COPY`` (file formats), and in-memory tables are copied on each crossing.
    """

    def __datafusion_session_planner__(self, ctx: Any, fallback: Any) -> Any:
        pointer = capsule_pointer(fallback, QUERY_PLANNER_CAPSULE)
        return self._plugin.library.capsule("session_planner", None, extra=(pointer,), what="session planner")


# session id -> the context handle that carries the plugin codecs (kept for encoding plans).
_handles: Dict[str, Any] = {}
_handles_lock = threading.Lock()


def install_extension(plugin: "Plugin", ctx: Any, query_planner: bool = False) -> Any:
    """Installs ``plugin``'s codecs (and with ``query_planner`` its planner, for the whole
    session) on ``ctx``'s session; returns the handle carrying the codecs."""
    handle = ctx.with_extensions(PluginExtension(plugin) if query_planner else PluginCodecs(plugin))
    with _handles_lock:
        _handles[ctx.session_id()] = handle
    # The handle shares the session; drop it with the last user context.
    weakref.finalize(ctx, _forget, ctx.session_id())
    return handle


def _forget(session_id: str) -> None:
    with _handles_lock:
        _handles.pop(session_id, None)


def extension_handle(ctx: Any) -> Optional[Any]:
    """The handle of ``ctx``'s session that carries a plugin's codecs, if one was installed."""
    with _handles_lock:
        return _handles.get(ctx.session_id())
