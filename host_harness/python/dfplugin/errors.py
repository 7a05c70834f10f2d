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
    decided from the embedded manifest, and before anything of the file is parsed when the
    refusal is about the file itself or its signature.

    Kinds: the file: ``not_found``, ``unreadable`` (e.g. a symbolic link loop),
    ``not_a_regular_file`` (FIFO, socket, device), ``not_a_library``, ``truncated``;
    the signature and trust policy: ``unsigned``, ``untrusted_key``,
    ``signature_invalid`` (changed after signing, or a damaged trailer: refused whatever
    the policy), ``trust_policy_loosened`` (:func:`dfplugin.set_trust_policy` after the
    first load), ``trust_file_invalid``, ``trust_policy_invalid``; the manifest:
    ``no_embedded_manifest``, ``bad_manifest``, ``abi_major_mismatch``,
    ``abi_minor_too_new``, ``datafusion_mismatch``, ``datafusion_ffi_mismatch``,
    ``target_mismatch``, ``unknown_capability``, ``capability_not_carried``,
    ``host_missing``; the loaded library: ``open_failed``, ``missing_entry_point``,
    ``live_manifest_mismatch``, ``plugin_panic``, ``plugin_error``.
    """


class PluginInstallError(PluginError):
    """The plugin could not be installed into a session (name collision, plugin error, ...).

    Installation is all or nothing: when this is raised, nothing the failed call
    registered is left in the session.
    """


class PluginConfigError(PluginInstallError):
    """Plugin options (configuration keys) were rejected; the message names the key."""
