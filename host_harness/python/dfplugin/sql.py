"""``dfplugin.sql(ctx, query)``: SQL with every capability of the installed plugins.

datafusion-python 55 has no hook for analyzer rules or relation planners, its foreign table
providers carry no ``DELETE`` / ``UPDATE``, it executes DDL and ``SET`` as it plans them, and
its SQL planner drops a time-travel clause no relation planner claims (``FROM t VERSION AS OF
0`` would read the latest snapshot). This entry point hands each statement to the plugin
first (``plugin_api/src/statement.rs``, ``handover.rs``):

- **Time travel.** ``FROM t VERSION AS OF n`` / ``TIMESTAMP AS OF ts`` on a plugin Delta table
  scans the provider the plugin's relation planner opens at that version (what
  ``delta_scan(uri, n)`` reads); on any other relation the statement fails, naming the table
  and the clause. Never the latest rows in silence.
- **The SQL policy** (the plugins' analyzer rules) on every statement before it runs: by
  statement kind, and where a rule needs it, on the statement's plan (handed to the plugin
  encoded with the session's codecs, described there as a Rust host's analyzer would): the
  query, the DML input, the query inside ``COPY`` / ``CREATE ... AS``, views and subqueries
  included. A plan that cannot be handed over (DataFusion 55's protobuf has no ``IN
  (subquery)``, ``EXISTS`` or correlated subqueries) is refused by a rule that needs to see it.
- **DELETE / UPDATE** on a plugin's table: the plugin plans the statement on its own table;
  the DataFrame returned runs it when executed (each execution runs it again, like any DML
  DataFrame), with the same guards, counts and commits as in a Rust host.
- **Configuration.** ``SET <namespace>.<key> = value`` of a plugin's key is validated first: a
  mistyped key or a bad value is an error naming it, and nothing is set. ``RESET
  <namespace>.<key>`` restores the key's declared default (DataFusion 55 resets only
  ``datafusion.*`` keys).

Loading a plugin routes ``SessionContext.sql`` and ``sql_with_options`` through here, so the
plain ``ctx.sql(...)`` behaves the same. In sessions no plugin was installed into, statements go
to DataFusion untouched, except that a time-travel clause is refused and ``SET`` of a loaded
plugin's key is validated. Plans built with the DataFrame API alone never pass through here:
the policy does not see them.
"""

from __future__ import annotations

import ctypes
import functools
import json
import re
import threading
import uuid
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

from .errors import PluginConfigError, PluginError

__all__ = ["sql", "route_session_sql"]

_AS_OF = re.compile(r"\bAS\s+OF\b", re.IGNORECASE)
_SET = re.compile(r"^\s*SET\b", re.IGNORECASE)
_RESET = re.compile(r"^\s*RESET\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*;?\s*$", re.IGNORECASE)
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


def _raw_sql(ctx: Any, query: str, options: Any = None, param_values: Any = None, named_params: Any = None) -> Any:
    """The wheel's own ``SessionContext.sql`` (not the routed one)."""
    run = _original.get("sql") or type(ctx).sql
    if param_values is None and not named_params:
        return run(ctx, query) if options is None else run(ctx, query, options)
    return run(ctx, query, options, param_values, **(named_params or {}))


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


# session id -> its settings, read once and dropped by every statement that may change them;
# the least recently used sessions drop out (contexts come and go without telling us).
_settings_cache: "OrderedDict[str, Dict[str, str]]" = OrderedDict()
_SETTINGS_CACHED_SESSIONS = 64


def _forget_settings(ctx: Any) -> None:
    with _route_lock:
        _settings_cache.pop(ctx.session_id(), None)


def _settings(ctx: Any) -> Dict[str, str]:
    """Every setting of ``ctx``'s session, plugin namespaces included (cached per session;
    ``SET``, ``RESET`` and DDL statements drop the cached copy)."""
    session_id = ctx.session_id()
    with _route_lock:
        cached = _settings_cache.get(session_id)
        if cached is not None:
            _settings_cache.move_to_end(session_id)
    if cached is None:
        cached = _read_settings(ctx)
        with _route_lock:
            _settings_cache[session_id] = cached
            while len(_settings_cache) > _SETTINGS_CACHED_SESSIONS:
                _settings_cache.popitem(last=False)
    return cached


def _read_settings(ctx: Any) -> Dict[str, str]:
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


def _top_nodes(info: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [{"kind": info["kind"], "name": info["name"], "context": "top level"}]


def _encode_reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"datafusion-python 55 cannot hand this plan to the plugin: {text}"


def _describe_plans(plugin: Any, handle: Any, plans: List[Any]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]], List[str]]:
    """Nodes, functions and unchecked reasons of ``plans`` (datafusion-python LogicalPlans),
    each encoded with the session's codecs and described by ``plugin``."""
    from ._ffi import codec_pointer

    codec_capsule = handle.__datafusion_logical_extension_codec__()  # keeps the codec alive
    codec = codec_pointer(codec_capsule)
    nodes: List[Dict[str, Any]] = []
    functions: List[Dict[str, Any]] = []
    unchecked: List[str] = []
    for plan in plans:
        try:
            encoded = plan.to_bytes(handle)
        except Exception as e:  # a plan protobuf cannot carry (e.g. IN (subquery) in DataFusion 55)
            unchecked.append(_encode_reason(e))
            continue
        described = plugin.library.describe_plan(encoded, codec)
        nodes += described.get("nodes", [])
        functions += described.get("functions", [])
        unchecked += described.get("unchecked", [])
    return nodes, functions, unchecked


def _enforce_policy(
    ctx: Any,
    plugins: List[Any],
    info: Dict[str, Any],
    settings: Dict[str, str],
    plans: Callable[[], List[Any]],
    unseen: Optional[str] = None,
) -> None:
    """The plugins' analyzer rules on a statement before it runs.

    Each rule first sees the statement's kind alone (enough for ``allow_ddl`` and friends);
    when it would refuse a statement whose contents it cannot see, the statement's plans
    (``plans()``: the query, or the query inside ``CREATE ... AS`` / ``COPY``) are handed to
    the plugin and described there, as a Rust host's analyzer would. A plan that cannot be
    handed over is listed as unchecked, and a rule that needs to see it refuses the statement.
    """
    from .session import extension_handle

    rule_plugins = [p for p in plugins if p.objects("analyzer_rule")]
    if not rule_plugins:
        return
    top = {"nodes": _top_nodes(info), "functions": []}
    handle = extension_handle(ctx)
    described: Optional[List[Any]] = None
    for plugin in rule_plugins:
        ns = _namespace_json(settings, plugin.config_namespace)
        plugin.library.analyze_plan(json.dumps(top), ns)
        try:
            plugin.library.analyze_plan(json.dumps(dict(top, unchecked=["the statement's plan"])), ns)
            continue  # the rules decide by statement kind alone here
        except PluginError:
            pass
        if described is None:
            described = plans()
        if handle is None:
            nodes, functions, unchecked = [], [], ["the session has no plugin codec (install the plugin into it)"]
        else:
            nodes, functions, unchecked = _describe_plans(plugin, handle, described)
        full = {"nodes": top["nodes"] + nodes, "functions": functions}
        if unseen:
            unchecked = [unseen] + unchecked
        if unchecked:
            full["unchecked"] = unchecked
        plugin.library.analyze_plan(json.dumps(full), ns)


def _unknown_key(plugin: Any, key: str) -> PluginConfigError:
    """The error for ``SET`` / ``RESET`` of a key ``plugin``'s namespace does not declare."""
    return PluginConfigError(
        f"[E0004 invalid_config] unknown configuration key '{key}' of plugin '{plugin.name}'; known keys: "
        f"{', '.join(plugin.config_keys())}. Nothing was set",
        kind="invalid_config",
        path=plugin.path,
        code=4,
    )


def _validate_set(plugins: List[Any], key: str, value: str, settings: Dict[str, str]) -> None:
    found = _plugin_key(plugins, key)
    if found is None:
        return
    plugin, inner, default = found
    if default is None:
        raise _unknown_key(plugin, key)
    namespace = key.partition(".")[0]
    if not any(k.startswith(namespace + ".") for k in settings):
        raise PluginConfigError(
            f"[E0004 invalid_config] SET {key}: this session has no '{namespace}' configuration namespace "
            f"(datafusion-python 55 cannot add one to an existing SessionContext). Create the context with "
            f"datafusion.SessionContext(plugin.session_config()), then plugin.install(ctx). Nothing was set",
            kind="invalid_config",
            path=plugin.path,
            code=4,
        )
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

            def encode(_plugin: Any, r: Dict[str, Any] = r) -> bytes:
                try:
                    return _raw_sql(handle, f"SELECT * FROM {r['table']}").logical_plan().to_bytes(handle)
                except Exception as e:
                    raise PluginError(
                        f"{r['clause']} {r['value_sql']} on '{r['table']}': the table cannot be resolved in this session: {e}",
                        kind="time_travel_unsupported",
                    ) from e

            provider = _hand_over(
                candidates,
                "time_travel_provider",
                encode,
                codec,
                settings,
                f"{r['clause']} {r['value_sql']} on '{r['table']}'",
                relation.encode("utf-8"),
            )
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


def _dml_handover(ctx: Any, plugins: List[Any], df: Any, settings: Dict[str, str], statement: str) -> Optional[Any]:
    """A DELETE / UPDATE on a plugin's table as the plugin's DML provider capsule (scanning it
    runs the statement), or None when no installed plugin owns the table."""
    from ._ffi import codec_pointer
    from .session import extension_handle

    handle = extension_handle(ctx)
    if handle is None:
        return None
    codec_capsule = handle.__datafusion_logical_extension_codec__()  # keeps the codec alive
    codec = codec_pointer(codec_capsule)
    plan = df.logical_plan()

    def encode(plugin: Any) -> bytes:
        try:
            return plan.to_bytes(handle)
        except Exception as e:
            raise PluginError(
                f"{statement!r} cannot be handed to plugin '{plugin.name}', which runs DELETE / UPDATE on its tables "
                f"in datafusion-python: {_encode_reason(e)}. Nothing was changed. Write the condition without "
                "IN / EXISTS / correlated subqueries (e.g. a literal list, or a join into a temporary table)",
                kind="dml_unsupported",
                path=plugin.path,
            ) from e

    return _hand_over(plugins, "dml_provider", encode, codec, settings, "DELETE / UPDATE")


def _hand_over(
    plugins: List[Any],
    kind: str,
    encode: Callable[[Any], bytes],
    codec: int,
    settings: Dict[str, str],
    what: str,
    *args: bytes,
) -> Optional[Any]:
    """The capsule of the first of ``plugins`` whose ``kind`` entry point takes the plan
    ``encode(plugin)`` returns (called ``(plan, len, codec, *args, settings)``), or None when
    each says the plan is not its business (``unsupported``). Each plugin gets its own encoding:
    the handles in the bytes are decoded once."""
    for plugin in plugins:
        if not plugin.library.supports(kind):
            continue
        plan = encode(plugin)
        buf = ctypes.create_string_buffer(plan, len(plan))
        settings_json = _namespace_json(settings, plugin.config_namespace).encode("utf-8")
        try:
            return plugin.library.capsule(
                kind, None, extra=(ctypes.addressof(buf), len(plan), codec, *args, settings_json), what=what
            )
        except PluginError as e:
            if e.code == 9:  # unsupported: not this plugin's table, try the next one
                continue
            raise
    return None


def _check_without_install(ctx: Any, query: str) -> None:
    """A session no plugin was installed into: ``SET`` of a loaded plugin's key is still
    validated, and a time-travel clause is refused (DataFusion would ignore it)."""
    candidates = _loaded_plugins()
    if not candidates:
        return
    settings = _settings(ctx)
    dialect = settings.get("datafusion.sql_parser.dialect", "generic") or "generic"
    try:
        info = json.loads(candidates[0].library.inspect_sql(query, dialect))
    except PluginError:
        return  # not one statement the plugin's parser reads: DataFusion reports it
    if info.get("set_variable"):
        _forget_settings(ctx)
        _validate_set(candidates, info["set_variable"]["key"], info["set_variable"]["value"], settings)
    if info["time_travel"]:
        _time_travel(ctx, query, dialect, info, settings)


def sql(ctx: Any, query: str, options: Any = None, param_values: Any = None, **named_params: Any) -> Any:
    """Runs ``query`` in ``ctx`` (a datafusion ``SessionContext``) and returns its DataFrame,
    with the installed plugins' time travel, SQL policy, DML and configuration checks
    (see the module documentation). ``options``, ``param_values`` and ``named_params`` are
    ``SessionContext.sql``'s (placeholders are substituted by DataFusion; the policy checks
    the plan after substitution)."""
    def call(q: str) -> Any:
        return _raw_sql(ctx, q, options, param_values, named_params)

    plugins = _plugins_of(ctx)
    if not plugins:
        if _AS_OF.search(query) or _SET.match(query):
            _check_without_install(ctx, query)
        return call(query)
    settings = _settings(ctx)
    dialect = settings.get("datafusion.sql_parser.dialect", "generic") or "generic"
    describe = _DESCRIBE.match(query)
    if describe:
        return _describe(ctx, describe.group(1))
    try:
        info = json.loads(plugins[0].library.inspect_sql(query, dialect))
    except PluginError as e:
        # Not one statement the plugin's parser reads: DataFusion reports it, unless the policy
        # restricts statements or must see functions; then it is refused, with the reason.
        reason = _CODE_PREFIX.sub("", e.plugin_message or str(e))
        unread = f"that the plugin's SQL parser cannot read ({reason})"
        info = {"kind": "statement", "name": unread, "time_travel": []}
        _enforce_policy(ctx, plugins, info, settings, lambda: [], unseen=f"a statement {unread}")
        return call(query)
    kind = info["kind"]
    match = _RESET.match(query)
    if match:
        key = match.group(1).lower()
        found = _plugin_key(plugins, key)
        if found is not None:
            plugin, inner, default = found
            if default is None:
                raise _unknown_key(plugin, key)
            _enforce_policy(ctx, plugins, info, settings, lambda: [])
            try:
                return call(f"SET {key} = {_sql_string(default)}")
            finally:
                _forget_settings(ctx)
    if info.get("set_variable"):
        _validate_set(plugins, info["set_variable"]["key"], info["set_variable"]["value"], settings)
    embedded = info.get("query")

    def embedded_plans() -> List[Any]:
        from .session import extension_handle

        handle = extension_handle(ctx) or ctx
        return [_raw_sql(handle, embedded).logical_plan()] if embedded else []

    if kind in ("ddl", "statement"):
        # DataFusion runs these as it plans them: check first, with the query they carry.
        _enforce_policy(ctx, plugins, info, settings, embedded_plans)
    temps: List[str] = []
    if info["time_travel"]:
        query, temps = _time_travel(ctx, query, dialect, info, settings)
    try:
        df = call(query)
        if kind in ("query", "dml", "copy"):
            _enforce_policy(
                ctx, plugins, info, settings, embedded_plans if kind == "copy" and embedded else lambda: [df.logical_plan()]
            )
        if kind == "dml" and info["name"] in ("Delete", "Update"):
            provider = _dml_handover(ctx, plugins, df, settings, query)
            if provider is not None:
                return ctx.read_table(_ProviderCapsule(provider))
        explained = info.get("explained")
        if explained and re.match(r"^\s*(DELETE|UPDATE)\b", explained["statement"], re.IGNORECASE):
            # EXPLAIN of a DELETE / UPDATE the plugin runs: explain what runs in its place.
            inner = call(explained["statement"])
            provider = _dml_handover(ctx, plugins, inner, settings, explained["statement"])
            if provider is not None:
                temp = f"__dfplugin_dml_{uuid.uuid4().hex}"
                ctx.register_table(temp, _ProviderCapsule(provider))
                temps.append(temp)
                return call(f"{explained['prefix']} SELECT * FROM {temp}")
        return df
    finally:
        if kind in ("ddl", "statement"):
            _forget_settings(ctx)  # again: a reader may have cached the old values meanwhile
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
        def routed_sql(self: Any, query: str, options: Any = None, param_values: Any = None, **named_params: Any) -> Any:
            if not isinstance(query, str):
                return _original["sql"](self, query, options, param_values, **named_params)
            return sql(self, query, options, param_values, **named_params)

        @functools.wraps(_original["sql_with_options"])
        def routed_sql_with_options(
            self: Any, query: str, options: Any, param_values: Any = None, **named_params: Any
        ) -> Any:
            if not isinstance(query, str):
                return _original["sql_with_options"](self, query, options, param_values, **named_params)
            return sql(self, query, options, param_values, **named_params)

        SessionContext.sql = routed_sql  # type: ignore[method-assign]
        SessionContext.sql_with_options = routed_sql_with_options  # type: ignore[method-assign]
