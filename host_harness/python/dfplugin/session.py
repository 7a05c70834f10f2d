"""The plugin's codec in a datafusion-python 55 session, for handing plans to the plugin.

datafusion-python 55 has no hook for analyzer rules, relation planners or DML on foreign
tables. :func:`dfplugin.sql` does their work instead: it plans a statement in the session,
encodes the plan with the session's codecs and hands the bytes to the plugin
(``plugin_api/src/handover.rs``), which checks it against its analyzer rules, plans a
``DELETE`` / ``UPDATE`` on its own table, or opens a table at a time-travel version. The
plugin's in-process logical codec (installed with ``SessionContext.with_extensions``) is what
lets any registered table cross: the table stays in this process and the bytes carry a handle.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Dict, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .plugin import Plugin

__all__ = ["PluginCodecs", "extension_handle", "handle_of_session"]


class PluginLogicalCodec:
    """The plugin's in-process logical codec (``__datafusion_logical_extension_codec__``)."""

    def __init__(self, plugin: "Plugin") -> None:
        self._plugin = plugin

    def __datafusion_logical_extension_codec__(self, session: Any = None) -> Any:
        return self._plugin.library.capsule("logical_codec", None, extra=())


class PluginCodecs:
    """A ``SessionContext.with_extensions`` bundle with the plugin's logical codec. Installing
    it changes nothing for other queries: the codec lives on the handle it returns, which
    dfplugin keeps to encode plans it hands to the plugin."""

    def __init__(self, plugin: "Plugin") -> None:
        self._plugin = plugin

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._plugin.name!r})"

    def __datafusion_session_components__(self, ctx: Any) -> Any:
        from datafusion.extensions import SessionExtensionComponents

        return SessionExtensionComponents(logical_extension_codecs=[PluginLogicalCodec(self._plugin)])


# session id -> the context handle that carries the plugin codecs (kept for encoding plans).
_handles: Dict[str, Any] = {}
_handles_lock = threading.Lock()


def install_extension(plugin: "Plugin", ctx: Any) -> Any:
    """Installs ``plugin``'s codec on ``ctx``'s session; returns the handle carrying it."""
    handle = ctx.with_extensions(PluginCodecs(plugin))
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
    return handle_of_session(ctx.session_id())


def handle_of_session(session_id: str) -> Optional[Any]:
    """:func:`extension_handle` by session id."""
    with _handles_lock:
        return _handles.get(session_id)
