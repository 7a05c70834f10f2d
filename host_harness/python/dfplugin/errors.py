"""Exceptions raised by :mod:`dfplugin`.

Every exception carries a machine-readable :attr:`PluginError.kind` (a short snake_case
word, the same vocabulary as the Rust host's ``HostError::kind``) and a message that names
the offending input and says how to fix it.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "PluginError",
    "PluginLoadError",
    "PluginInstallError",
    "PluginConfigError",
]


class PluginError(Exception):
    """Base class of every error raised by :mod:`dfplugin`.

    Attributes:
        kind: machine-readable category, e.g. ``"datafusion_mismatch"``.
        path: the plugin library the error is about, when known.
        code: the plugin's numeric error code (``dfplugin_last_error_code()``), when the
            error came from the plugin itself.
        plugin_message: the plugin's own message (``dfplugin_last_error_message()``),
            when the error came from the plugin itself.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "plugin_error",
        path: Optional[str] = None,
        code: Optional[int] = None,
        plugin_message: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path
        self.code = code
        self.plugin_message = plugin_message

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0]) if self.args else ""


class PluginLoadError(PluginError):
    """The library cannot be loaded into this process (wrong file, wrong versions, ...).

    Raised before any FFI struct of the plugin is touched whenever the refusal can be
    decided from the embedded manifest.
    """


class PluginInstallError(PluginError):
    """The plugin could not be installed into a session (name collision, plugin error, ...).

    Installation is all or nothing: when this is raised, nothing the failed call
    registered is left in the session.
    """


class PluginConfigError(PluginInstallError):
    """Plugin options (configuration keys) were rejected; the message names the key."""
