"""dfplugin: load DataFusion plugin libraries into datafusion-python sessions, without pyo3.

::

    import dfplugin, datafusion
    ctx = datafusion.SessionContext()
    dfplugin.load("target/release/libcodeanatomy_plugin.so").install(ctx)

Run SQL through :func:`sql` (``dfplugin.sql(ctx, query)``) to have ``RESET <namespace>.<key>``
of a plugin key restore its default; DataFusion 55's ``ctx.sql`` resets ``datafusion.*`` only.

A plugin library is a cdylib built with ``df_plugin_api``'s ``export_plugin!`` macro. It
embeds a manifest (read here without loading the file, :func:`inspect`) and exports plain C
entry points that hand out datafusion-ffi structs, which this package wraps in PyCapsules
for datafusion-python (opened with :mod:`ctypes`, never unloaded).

Only libraries signed by a trusted key load by default (:func:`set_trust_policy`,
``DFPLUGIN_TRUST_FILE``; ``DFPLUGIN_ALLOW_UNSIGNED=1`` to allow unsigned ones).
"""

from __future__ import annotations

import logging

from .errors import PluginConfigError, PluginError, PluginInstallError, PluginLoadError
from .introspect import InstalledObject, InstalledPlugin
from .plugin import CAPABILITY_MATRIX, HOST, Plugin, inspect, load
from .signing import TrustPolicy, set_trust_policy, trust_policy
from .sql import sql

__all__ = [
    "load",
    "inspect",
    "sql",
    "set_trust_policy",
    "trust_policy",
    "TrustPolicy",
    "Plugin",
    "InstalledPlugin",
    "InstalledObject",
    "PluginError",
    "PluginLoadError",
    "PluginInstallError",
    "PluginConfigError",
    "CAPABILITY_MATRIX",
    "HOST",
]

__version__ = "0.1.0"

# No NullHandler on purpose: without logging configured, warnings (e.g. a configuration
# namespace that could not be added to an existing context) still reach stderr through
# logging's last-resort handler instead of vanishing.
_log = logging.getLogger("dfplugin")
