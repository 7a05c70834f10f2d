"""``dfplugin.sql(ctx, query)``: SQL with every capability of the installed plugins.

datafusion-python 55 executes some statements before any planner sees them, and its SQL
planner drops a time-travel clause that no relation planner claims (``FROM t VERSION AS OF 0``
would read the latest snapshot). This entry point hands each statement to the plugin first:

- ``FROM t VERSION AS OF n`` / ``TIMESTAMP AS OF ts`` on a plugin Delta table scans the
  provider the plugin's relation planner opens at that version (what ``delta_scan(uri, n)``
  reads); on any other relation the statement fails, naming the table and the clause. Never
  the latest rows in silence.
- DDL and ``SET`` / ``RESET`` are checked against the plugins' SQL policy (queries, DML and
  ``COPY`` are checked by the plugin's query planner, which sees every plan, DataFrame plans
  included).
- ``SET <namespace>.<key> = value`` for a plugin's namespace is validated first: a mistyped key
  or a bad value is an error naming it, and nothing is set.
- ``RESET <namespace>.<key>`` restores the key's declared default (DataFusion 55 resets only
  ``datafusion.*`` keys).

Loading a plugin routes ``SessionContext.sql`` and ``sql_with_options`` through here, so the
plain ``ctx.sql(...)`` behaves the same. Statements without a time-travel clause in sessions
without an installed plugin go to DataFusion untouched.
"""

from __future__ import annotations

import ctypes
import functools
import json
import re
import threading
import uuid
from typing import Any, Dict, List, Optional, Tuple

from .errors import PluginConfigError, PluginError

__all__ = ["sql", "route_session_sql"]

_RESET = re.compile(r"^\s*RESET\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*;?\s*$", re.IGNORECASE)
# Statements the planner never sees (DDL, SET and friends) and time-travel clauses: only these
# are inspected; every other statement goes straight to DataFusion.
_NEEDS_PLUGIN = re.compile(
    r"^\s*(?:CREATE|DROP|ALTER|SET|RESET|TRUNCATE|SHOW|BEGIN|START|COMMIT|ROLLBACK|DESCRIBE|DESC)\b|\bAS\s+OF\b",
    re.IGNORECASE,
)

_DESCRIBE = re.compile(r"^\s*(?:DESCRIBE|DESC)\s+([A-Za-z_][A-Za-z0-9_.]*)\s*;?\s*$", re.IGNORECASE)

_CODE_PREFIX = re.compile(r"^\[E\d{4} [a-z_]+\]\s*")

_original: Dict[str, Any] = {}
_route_lock = threading.Lock()


def _plugins_of(ctx: Any) -> List[Any]:
    """Plugins installed into ``ctx``'s session (in install order)."""
    from .introspect import SessionPlugins
    from .plugin import _plugins, _plugins_lock

    record = SessionPlugins.existing(ctx.session_id())
    if record is None:
        return []
    names = [entry.path for entry in record.snapshot()]
    with _plugins_lock:
        return [_plugins[p] for p in names if p in _plugins]


def _raw_sql(ctx: Any, query: str, options: Any = None) -> Any:
    """The wheel's own ``SessionContext.sql`` (not the routed one)."""
    run = _original.get("sql") or type(ctx).sql
    return run(ctx, query) if options is None else run(ctx, query, options)


def _loaded_plugins() -> List[Any]:
    from .plugin import _plugins, _plugins_lock

    with _plugins_lock:
        return list(_plugins.values())


def _plugin_key(plugins: List[Any], key: str) -> Optional[Tuple[Any, str, Optional[str]]]:
    """(plugin, key below the namespace, default or None when undeclared) of a plugin's key."""
    prefix, _, inner = key.partition(".")
    for plugin in plugins:
        config = plugin.manifest.get("config") or {}
        if config.get("namespace") != prefix:
            continue
        for declared in config.get("keys", []):
            if declared.get("key") == inner:
                return plugin, inner, str(declared.get("default", ""))
        return plugin, inner, None
    return None


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _settings(ctx: Any) -> Dict[str, str]:
    """Every setting of ``ctx``'s session, plugin namespaces included (read from a copy)."""
    from datafusion import SessionContext

    probe = SessionContext(ctx.copied_config().with_information_schema(True))
    rows = _raw_sql(probe, "SELECT name, value FROM information_schema.df_settings").to_pylist()
    out: Dict[str, str] = {}
    for r in rows:
        name = str(r["name"])
        while name.startswith("datafusion_ffi."):
            name = name[len("datafusion_ffi.") :]
        out[name] = "" if r["value"] is None else str(r["value"])
    return out


def _namespace_json(settings: Dict[str, str], namespace: Optional[str]) -> str:
    if not namespace:
        return "{}"
    marker = namespace + "."
    return json.dumps({k[len(marker) :]: v for k, v in settings.items() if k.startswith(marker)})


def _check_statement(plugins: List[Any], info: Dict[str, Any], settings: Dict[str, str]) -> None:
    """The plugins' analyzer rules on a statement DataFusion runs without planning it."""
    plan = {
        "nodes": [{"kind": info["kind"], "name": info["name"], "context": "top level"}],
        "functions": [],
    }
    for plugin in plugins:
        if plugin.objects("analyzer_rule"):
            plugin.library.analyze_plan(json.dumps(plan), _namespace_json(settings, plugin.config_namespace))


def _unknown_key(plugin: Any, key: str) -> PluginConfigError:
    """The error for ``SET`` / ``RESET`` of a key ``plugin``'s namespace does not declare."""
    return PluginConfigError(
        f"[E0004 invalid_config] unknown configuration key '{key}' of plugin '{plugin.name}'; known keys: "
        f"{', '.join(plugin.config_keys())}. Nothing was set",
        kind="invalid_config",
        path=plugin.path,
        code=4,
    )


def _validate_set(plugins: List[Any], key: str, value: str) -> None:
    found = _plugin_key(plugins or _loaded_plugins(), key)
    if found is None:
        return
    plugin, inner, default = found
    if default is None:
        raise _unknown_key(plugin, key)
    try:
        plugin.validate_options({inner: value})
    except PluginConfigError as e:
        reason = _CODE_PREFIX.sub("", e.plugin_message or e.message)
        raise PluginConfigError(
            f"[E0004 invalid_config] SET {key}: {reason}. Nothing was set", kind="invalid_config", path=plugin.path, code=4
        ) from e


def _time_travel(ctx: Any, query: str, dialect: str, info: Dict[str, Any], settings: Dict[str, str]) -> Tuple[str, List[str]]:
    """``query`` rewritten to scan each time-travel relation's provider at that version, and
    the temporary table names registered for them."""
    from ._ffi import codec_pointer
    from .session import extension_handle

    candidates = _plugins_of(ctx) or _loaded_plugins()
    handle = extension_handle(ctx)
    relations = info["time_travel"]
    entry = "dfplugin.sql(ctx, query) in a session the plugin was installed into (plugin.install(ctx))"
    for r in relations:
        if r["function"]:
            raise PluginError(
                f"{r['clause']} {r['value_sql']} on the table function {r['table']}(...) is not supported: "
                f"pass the version to the function instead, e.g. delta_scan('<uri>', {r['value_sql']})",
                kind="time_travel_unsupported",
            )
        if r["value"] is None:
            raise PluginError(
                f"{r['clause']} on table '{r['table']}' takes a literal (a version number or a timestamp string); "
                f"found {r['value_sql']}",
                kind="time_travel_unsupported",
            )
    if handle is None:
        names = ", ".join(f"'{r['table']}' ({r['clause']} {r['value_sql']})" for r in relations)
        raise PluginError(
            f"time travel on {names} needs a plugin installed into this session; DataFusion 55 would ignore "
            f"the clause and read the latest version. Use {entry}",
            kind="time_travel_unsupported",
        )
    codec_capsule = handle.__datafusion_logical_extension_codec__()  # keeps the codec alive
    codec = codec_pointer(codec_capsule)
    replacements: Dict[int, str] = {}
    registered: List[str] = []
    try:
        for r in relations:
            relation = json.dumps({"table": r["table"], "version": {"clause": r["clause"], "value": r["value"]}})
            try:
                plan = _raw_sql(handle, f"SELECT * FROM {r['table']}").logical_plan().to_bytes(handle)
            except Exception as e:
                raise PluginError(
                    f"{r['clause']} {r['value_sql']} on '{r['table']}': the table cannot be resolved in this session: {e}",
                    kind="time_travel_unsupported",
                ) from e
            provider = None
            for plugin in candidates:
                buf = ctypes.create_string_buffer(plan, len(plan))
                try:
                    provider = plugin.library.capsule(
                        "time_travel_provider",
                        None,
                        extra=(
                            ctypes.addressof(buf),
                            len(plan),
                            codec,
                            relation.encode("utf-8"),
                            _namespace_json(settings, plugin.config_namespace).encode("utf-8"),
                        ),
                        what=f"{r['clause']} {r['value_sql']} on '{r['table']}'",
                    )
                    break
                except PluginError as e:
                    if e.code == 9:  # unsupported: not this plugin's table, try the next one
                        continue
                    raise
            if provider is None:
                raise PluginError(
                    f"{r['clause']} {r['value_sql']} on table '{r['table']}' cannot be honoured: it is not a Delta "
                    "table of an installed plugin (DataFusion 55 would ignore the clause and read the latest rows). "
                    f"Time travel works on tables from CREATE EXTERNAL TABLE ... STORED AS DELTA or "
                    f"plugin.delta_table(...), through {entry}; or use delta_scan('<uri>', <version>)",
                    kind="time_travel_unsupported",
                )
            temp = f"__dfplugin_time_travel_{uuid.uuid4().hex}"
            ctx.register_table(temp, _ProviderCapsule(provider))
            registered.append(temp)
            replacements[r["index"]] = temp
        return candidates[0].library.inspect_sql(query, dialect, replacements), registered
    except BaseException:
        for temp in registered:
            ctx.deregister_table(temp)
        raise


class _ProviderCapsule:
    """A table provider capsule for ``register_table`` (which reads the dunder)."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __datafusion_table_provider__(self, session: Any = None) -> Any:
        # The capsule owns one provider; the host clones it on import.
        return self._capsule


def _describe(ctx: Any, name: str) -> Any:
    """``DESCRIBE <table>``: DataFusion's answer, computed in a session without the plugin's
    planner (protobuf, which carries plans across the planner boundary, has no DescribeTable)."""
    from datafusion import SessionContext

    probe = SessionContext()
    probe.register_table(name, ctx.table_provider(name))
    return ctx.from_arrow(_raw_sql(probe, f"DESCRIBE {name}").to_arrow_table())


def sql(ctx: Any, query: str, options: Any = None) -> Any:
    """Runs ``query`` in ``ctx`` (a datafusion ``SessionContext``) and returns its DataFrame,
    with the installed plugins' time travel, statement policy and configuration checks
    (see the module documentation)."""
    def call(q: str) -> Any:
        return _raw_sql(ctx, q, options)

    if not _NEEDS_PLUGIN.search(query):
        return call(query)
    plugins = _plugins_of(ctx)
    describe = _DESCRIBE.match(query)
    if describe and plugins:
        return _describe(ctx, describe.group(1))
    match = _RESET.match(query)
    if match and plugins:
        key = match.group(1).lower()
        found = _plugin_key(plugins, key)
        if found is not None:
            plugin, inner, default = found
            if default is None:
                raise _unknown_key(plugin, key)
            settings = _settings(ctx)
            _check_statement(plugins, {"kind": "statement", "name": "ResetVariable"}, settings)
            return call(f"SET {key} = {_sql_string(default)}")
    candidates = plugins or _loaded_plugins()
    if not candidates:
        return call(query)
    settings = _settings(ctx)
    dialect = settings.get("datafusion.sql_parser.dialect", "generic") or "generic"
    try:
        info = json.loads(candidates[0].library.inspect_sql(query, dialect))
    except PluginError:
        # Not one statement the plugin's parser reads: DataFusion reports it.
        return call(query)
    if info["kind"] in ("ddl", "statement") and plugins:
        _check_statement(plugins, info, settings)
    if info.get("set_variable"):
        _validate_set(plugins, info["set_variable"]["key"], info["set_variable"]["value"])
    if not info["time_travel"]:
        return call(query)
    rewritten, temps = _time_travel(ctx, query, dialect, info, settings)
    try:
        return call(rewritten)
    finally:
        # The DataFrame's plan holds the providers; the names are no longer needed.
        for temp in temps:
            ctx.deregister_table(temp)


def route_session_sql() -> None:
    """Routes ``SessionContext.sql`` / ``sql_with_options`` through :func:`sql` (idempotent).

    Called when the first plugin is loaded: from then on the plain ``ctx.sql(...)`` honours a
    time-travel clause (or fails naming it) and applies the plugins' statement checks.
    """
    from datafusion import SessionContext

    with _route_lock:
        if _original:
            return
        _original["sql"] = SessionContext.sql
        _original["sql_with_options"] = SessionContext.sql_with_options

        @functools.wraps(_original["sql"])
        def routed_sql(self: Any, query: str, options: Any = None, *args: Any, **kwargs: Any) -> Any:
            # Parameterized queries are substituted by DataFusion: the plugin sees them only
            # through its query planner.
            if args or kwargs or not isinstance(query, str):
                return _original["sql"](self, query, options, *args, **kwargs)
            return sql(self, query, options)

        @functools.wraps(_original["sql_with_options"])
        def routed_sql_with_options(self: Any, query: str, options: Any, *args: Any, **kwargs: Any) -> Any:
            if args or kwargs or not isinstance(query, str):
                return _original["sql_with_options"](self, query, options, *args, **kwargs)
            return sql(self, query, options)

        SessionContext.sql = routed_sql  # type: ignore[method-assign]
        SessionContext.sql_with_options = routed_sql_with_options  # type: ignore[method-assign]
