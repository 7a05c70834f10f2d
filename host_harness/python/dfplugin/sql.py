"""``dfplugin.sql(ctx, query)``: ``ctx.sql`` with the statements DataFusion 55 gets wrong for plugins.

DataFusion 55 resets only ``datafusion.*`` keys: ``RESET codeanatomy.span.line_base`` fails
with "Could not find config namespace", in every host. This entry point (like the Rust host's
``df_plugin_host::sql::sql``) answers ``RESET <namespace>.<key>`` for a loaded plugin's key by
setting the key back to the default its manifest declares, exactly as ``SET`` would; every
other statement goes to ``ctx.sql`` unchanged.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

from .errors import PluginConfigError

_RESET = re.compile(r"^\s*RESET\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*;?\s*$", re.IGNORECASE)


def _plugin_key(key: str) -> Optional[Tuple[str, Optional[str], Dict[str, Any]]]:
    """(namespace, default or None when the key is unknown, manifest) of a loaded plugin's key."""
    from .plugin import _plugins, _plugins_lock

    prefix, _, inner = key.partition(".")
    with _plugins_lock:
        plugins = list(_plugins.values())
    for plugin in plugins:
        config = plugin.manifest.get("config") or {}
        if config.get("namespace") != prefix:
            continue
        for declared in config.get("keys", []):
            if declared.get("key") == inner:
                return prefix, str(declared.get("default", "")), config
        return prefix, None, config
    return None


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql(ctx: Any, query: str, options: Any = None) -> Any:
    """Runs ``query`` in ``ctx`` (a datafusion ``SessionContext``) and returns its DataFrame.

    ``RESET <namespace>.<key>`` of a loaded plugin's key restores the declared default; a key
    the plugin does not declare raises :class:`PluginConfigError` naming it and the known keys.
    Anything else is ``ctx.sql(query)`` (``ctx.sql(query, options)`` when ``options`` is given).
    """
    match = _RESET.match(query)
    if match:
        key = match.group(1).lower()
        found = _plugin_key(key)
        if found is not None:
            namespace, default, config = found
            if default is None:
                known = ", ".join(f"{namespace}.{k.get('key')}" for k in config.get("keys", []))
                raise PluginConfigError(f"unknown configuration key '{key}'; known keys: {known}")
            return ctx.sql(f"SET {key} = {_sql_string(default)}")
    return ctx.sql(query) if options is None else ctx.sql(query, options)
