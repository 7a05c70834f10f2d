"""Loading a plugin library and installing it into datafusion-python sessions."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ._ffi import Library, open_library
from .errors import PluginConfigError, PluginError, PluginInstallError, PluginLoadError
from .introspect import LOADED_FUNCTION, OBJECTS_FUNCTION, InstalledObject, InstalledPlugin, SessionPlugins
from .manifest import (
    KNOWN_CAPABILITIES,
    check_compatibility,
    check_plugin_file,
    host_versions,
    parse_embedded,
    read_manifest,
)
from .objects import (
    AggregateUDFExport,
    ConfigExtensionExport,
    PhysicalOptimizerRuleExport,
    PushdownTableFunction,
    ScalarUDFExport,
    TableFunctionExport,
    TableProviderExport,
    TableProviderFactoryExport,
    WindowUDFExport,
)
from .redact import mask_values, redact_json, redact_options, redact_text, redact_url, secret_values
from .session import install_extension
from .sql import route_session_sql
from .signing import SignatureInfo, enforce, policy_for_load, read_signature

__all__ = ["Plugin", "load", "inspect", "HOST", "CAPABILITY_MATRIX"]

log = logging.getLogger("dfplugin")

#: Name of this host in capability reports and conformance output.
HOST = "datafusion-python"

# What datafusion-python 55 can take, per capability: (installable, how / why not).
# Evidence: datafusion/context.py and datafusion/user_defined.py of the datafusion==55.0.0 wheel.
CAPABILITY_MATRIX: Dict[str, Tuple[bool, str]] = {
    "scalar_udf": (True, "SessionContext.register_udf(udf(obj)) with obj.__datafusion_scalar_udf__()"),
    "aggregate_udf": (True, "SessionContext.register_udaf(udaf(obj)) with obj.__datafusion_aggregate_udf__()"),
    "window_udf": (True, "SessionContext.register_udwf(udwf(obj)) with obj.__datafusion_window_udf__()"),
    "table_function": (
        True,
        "SessionContext.register_udtf(TableFunction(name, obj, ctx)) with "
        "obj.__datafusion_table_function__(session), bound to that ctx's codec",
    ),
    "physical_optimizer_rule": (
        True,
        "SessionContext.add_physical_optimizer_rule(obj) with obj.__datafusion_physical_optimizer_rule__() "
        "(appended; datafusion-python 55 offers no way to remove it again)",
    ),
    "config_namespace": (
        True,
        "SessionConfig.with_extension(obj) with obj.__datafusion_extension_options__(), before the "
        "SessionContext is created (Plugin.session_config); an existing context cannot gain a config "
        "extension in datafusion-python 55, so install() then only verifies it",
    ),
    "table_provider": (
        True,
        "SessionContext.register_table(name, obj) with obj.__datafusion_table_provider__(session), obj from "
        "Plugin.table_provider(kind, options) / Plugin.delta_table(uri, ...) (plugin ABI 1.2 "
        "dfplugin_table_provider; a provider needs options, so install() registers none by itself)",
    ),
    "table_provider_factory": (
        True,
        "SessionContext.register_table_factory(format, obj) with obj.__datafusion_table_provider_factory__(codec), "
        "by install() (plugin ABI 1.2 dfplugin_table_provider_factory); then CREATE EXTERNAL TABLE ... "
        "STORED AS <format> LOCATION '...'. datafusion-python 55 cannot remove a factory again",
    ),
    "analyzer_rule": (
        True,
        "run by dfplugin.sql / ctx.sql (routed when a plugin is loaded) on every statement before it runs: "
        "the session plans it, the plan is handed to the plugin (encoded with the plugin's codec) and its "
        "rules check it; DDL, SET and COPY by statement kind. Plans built with the DataFrame API without SQL "
        "are not checked (datafusion-python 55 has no analyzer-rule hook)",
    ),
    "relation_planner": (
        True,
        "time-travel clauses resolved by dfplugin.sql / ctx.sql (routed when a plugin is loaded) before "
        "DataFusion's SQL planner, which would drop them: the plugin opens the table at that version and the "
        "statement scans it; a clause it cannot honour is an error naming the table",
    ),
    "dml": (
        True,
        "INSERT INTO / INSERT OVERWRITE through the table provider; DELETE / UPDATE (which datafusion-ffi 55's "
        "table provider does not forward) through dfplugin.sql / ctx.sql: the statement's plan is handed to the "
        "plugin, which plans it on its own table and runs it when the DataFrame executes",
    ),
}

#: Entry points dfplugin.sql needs to hand plans over for a capability (plugin_api handover.rs).
_HANDOVER_ENTRY_POINTS: Dict[str, Tuple[str, ...]] = {
    "analyzer_rule": ("dfplugin_logical_codec", "dfplugin_describe_plan", "dfplugin_analyze_plan", "dfplugin_inspect_sql"),
    "dml": ("dfplugin_logical_codec", "dfplugin_dml_provider"),
    "relation_planner": ("dfplugin_logical_codec", "dfplugin_time_travel_provider", "dfplugin_inspect_sql"),
}

_SIMPLE_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _sql_ident(name: str) -> str:
    return name if _SIMPLE_IDENT.match(name) else '"' + name.replace('"', '""') + '"'


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table_uri(uri: Any) -> str:
    if isinstance(uri, os.PathLike):
        return os.fspath(uri)
    if isinstance(uri, str):
        return uri
    raise TypeError(f"a table uri must be a str or path, got {type(uri).__name__} {redact_text(repr(uri))}")


def _rfc3339(value: Any) -> str:
    """``value`` (RFC 3339 text or an aware ``datetime``) as RFC 3339 text."""
    import datetime as _dt

    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamp {value!r} has no time zone; pass an aware datetime (e.g. tzinfo=timezone.utc)")
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"timestamp must be an RFC 3339 string or a datetime, got {type(value).__name__} {value!r}")


def _option_text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    shown = redact_options({key: repr(value)})[key]
    raise TypeError(f"storage option {key!r} must be a string, got {type(value).__name__} {shown}")


def _require_context(ctx: Any) -> None:
    from datafusion import SessionContext

    if not isinstance(ctx, SessionContext):
        raise TypeError(
            f"expected a datafusion.SessionContext, got {type(ctx).__module__}.{type(ctx).__name__}; "
            "create one with datafusion.SessionContext()"
        )


def _table_function_exists(ctx: Any, name: str) -> bool:
    """Whether ``ctx`` has a table function ``name`` (datafusion-python 55 cannot list them)."""
    try:
        ctx.sql(f"SELECT * FROM {_sql_ident(name)}() LIMIT 0")
    except Exception as e:  # planning error text is the only signal the wheel gives
        return f"table function '{name}' not found" not in str(e)
    return True


def _table_factory_exists(ctx: Any, name: str) -> bool:
    """Whether ``ctx`` has a table provider factory for ``STORED AS name`` (datafusion-python 55
    cannot list them): probes with a ``CREATE EXTERNAL TABLE``. DataFusion looks the factory up
    before calling it; the location has a URL scheme no object store serves, so a factory that
    exists fails without touching any storage (a Delta factory creates missing tables)."""
    import uuid

    probe = f"__dfplugin_probe_{uuid.uuid4().hex}"
    location = f"dfplugin-probe-{uuid.uuid4().hex}://nowhere/t"
    try:
        ctx.sql(f"CREATE EXTERNAL TABLE {probe} STORED AS {_sql_ident(name.lower())} LOCATION {_sql_string(location)}")
    except Exception as e:  # the error text is the only signal the wheel gives
        return f"Unable to find factory for {name.upper()}" not in str(e)
    ctx.deregister_table(probe)  # a factory accepted the probe: remove its table again
    return True


def _physical_rule_names(ctx: Any) -> List[str]:
    """Names of the physical optimizer rules ``ctx`` runs (from ``EXPLAIN VERBOSE``)."""
    rows = ctx.sql("EXPLAIN VERBOSE SELECT 1").to_pylist()
    prefix = "physical_plan after "
    return [r["plan_type"][len(prefix) :] for r in rows if str(r.get("plan_type", "")).startswith(prefix)]


def _config_settings(ctx: Any, namespace: str) -> Optional[Dict[str, str]]:
    """The ``<namespace>.*`` settings of ``ctx`` (keys below the namespace), or ``None`` when
    the session has no such namespace. Reads a copy of the config; ``ctx`` is not changed."""
    from datafusion import SessionContext

    probe = SessionContext(ctx.copied_config().with_information_schema(True))
    rows = probe.sql("SELECT name, value FROM information_schema.df_settings").to_pylist()
    marker = namespace + "."
    found: Dict[str, str] = {}
    for r in rows:
        name = str(r["name"])
        while name.startswith("datafusion_ffi."):
            name = name[len("datafusion_ffi.") :]
        if name.startswith(marker):
            found[name[len(marker) :]] = "" if r["value"] is None else str(r["value"])
    return found or None


_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def _remove_dot_segments(path: str) -> str:
    """``path`` with ``.`` and ``..`` segments resolved (RFC 3986, as the url crate does)."""
    segments = path.split("/")
    out: List[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and len(out) > 1:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(segment)
    return "/".join(out)


def _policy_location(uri: str) -> str:
    """The location ``uri`` names, as the plugin's location policy compares it
    (``plugin/src/delta/table.rs`` ``policy_location``): a local path (or ``file://`` URL) made
    absolute, ``..`` resolved lexically, then symbolic links resolved as far as it exists, as
    ``file://<path>/``; any other URL without credentials, query or fragment, dot segments
    resolved. Always ends in ``/`` so prefixes match whole path segments."""
    from urllib.parse import unquote, urlsplit

    match = _URL_SCHEME.match(uri)
    scheme = match.group(1).lower() if match else ""
    if scheme == "file" or len(scheme) <= 1:  # one-letter schemes are drive letters
        path = unquote(urlsplit(uri).path) if scheme == "file" else uri
        text = "file://" + os.path.realpath(os.path.abspath(path))
    else:
        parts = urlsplit(uri)
        host = parts.netloc.rpartition("@")[2]
        text = f"{scheme}://{host}{_remove_dot_segments(parts.path)}"
    return text if text.endswith("/") else text + "/"


def _check_location(uri: str, allowed: Sequence[str], library: str) -> None:
    """Refuses ``uri`` unless it lies under a prefix of ``allowed`` (``delta_table``'s
    ``allowed_locations`` when the session's list is the one the plugin checks)."""
    location = _policy_location(uri)
    if any(location.startswith(_policy_location(prefix)) for prefix in allowed):
        return
    message = (
        f"[E0010 policy_violation] delta table '{redact_url(uri)}' is outside the allowed locations "
        f"(delta_table allowed_locations = {redact_text(','.join(allowed))}; the session's "
        f"codeanatomy.policy.allowed_locations applies too); it resolves to {redact_url(location)}. "
        "Use a table under a prefix of both lists"
    )
    raise PluginError(message, kind="policy_violation", path=library, code=10, plugin_message=message)


class Plugin:
    """A loaded plugin library. Obtain one with :func:`dfplugin.load`.

    The library stays loaded for the life of the process; :meth:`install` may be called on
    any number of sessions.
    """

    def __init__(
        self, path: str, manifest: Dict[str, Any], library: Library, signature: Optional[SignatureInfo] = None
    ) -> None:
        self._path = path
        self._manifest = manifest
        self._library = library
        self._signature = signature if signature is not None else SignatureInfo("unsigned")

    # -- identity ------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """Real path of the library file."""
        return self._path

    @property
    def name(self) -> str:
        """The plugin's name (``manifest["plugin"]["name"]``)."""
        return str(self._manifest["plugin"]["name"])

    @property
    def version(self) -> str:
        """The plugin's version."""
        return str(self._manifest["plugin"]["version"])

    @property
    def manifest(self) -> Dict[str, Any]:
        """A copy of the plugin's (embedded == live) manifest."""
        return copy.deepcopy(self._manifest)

    @property
    def signature(self) -> Dict[str, Any]:
        """The library's signature as checked when it was loaded: ``{"state", "key_id",
        "trusted"}`` (``trusted`` under the current trust policy), like
        ``dfplugin.inspect(path)["signature"]``."""
        return self._signature.report()

    @property
    def library(self) -> Library:
        """The underlying ctypes binding (for diagnostics and tests)."""
        return self._library

    @property
    def config_namespace(self) -> Optional[str]:
        """The plugin's configuration namespace (e.g. ``"codeanatomy"``), if it declares one."""
        cfg = self._manifest.get("config")
        return str(cfg["namespace"]) if cfg else None

    def objects(self, kind: str) -> List[str]:
        """Names of the exported objects of capability ``kind`` (e.g. ``"scalar_udf"``)."""
        return list((self._manifest.get("objects") or {}).get(kind, []))

    def live_objects(self) -> int:
        """``dfplugin_live_objects()``: plugin objects created and not yet freed."""
        return self._library.live_objects()

    def __repr__(self) -> str:
        return f"<dfplugin.Plugin {self.name} {self.version} from {self._path!r}>"

    # -- single objects ------------------------------------------------------------------

    def _check_object(self, kind: str, name: str) -> None:
        if name not in self.objects(kind):
            raise PluginError(
                f"plugin '{self.name}' ({self._path}) exports no {kind} named '{name}'; "
                f"available: {', '.join(self.objects(kind)) or '(none)'}",
                kind="unknown_object",
                path=self._path,
            )

    def scalar_udf(self, name: str) -> Any:
        """The scalar function ``name`` as a ``datafusion.ScalarUDF``."""
        from datafusion.user_defined import ScalarUDF

        self._check_object("scalar_udf", name)
        return ScalarUDF.udf(ScalarUDFExport(self._library, name))

    def aggregate_udf(self, name: str) -> Any:
        """The aggregate function ``name`` as a ``datafusion.AggregateUDF``."""
        from datafusion.user_defined import AggregateUDF

        self._check_object("aggregate_udf", name)
        return AggregateUDF.udaf(AggregateUDFExport(self._library, name))

    def window_udf(self, name: str) -> Any:
        """The window function ``name`` as a ``datafusion.WindowUDF``."""
        from datafusion.user_defined import WindowUDF

        self._check_object("window_udf", name)
        return WindowUDF.udwf(WindowUDFExport(self._library, name))

    def table_function(self, name: str, ctx: Any) -> Any:
        """The table function ``name`` bound to ``ctx`` (a ``datafusion.TableFunction``).

        Bound to ``ctx`` on purpose: ``datafusion.udtf(obj, name)`` would bind it to the
        *global* context's codec instead.
        """
        from datafusion.user_defined import TableFunction

        self._check_object("table_function", name)
        if self._library.supports("table_function_call") and self._library.supports("logical_codec"):
            # Called through the plugin's own entry point: its providers keep filter pushdown.
            call = PushdownTableFunction(self._library, name, ctx, self.config_namespace)
            return TableFunction(name, call, ctx, with_session=True)
        return TableFunction(name, TableFunctionExport(self._library, name), ctx)

    def physical_optimizer_rule(self, name: str) -> PhysicalOptimizerRuleExport:
        """The physical optimizer rule ``name`` (pass it to ``ctx.add_physical_optimizer_rule``)."""
        self._check_object("physical_optimizer_rule", name)
        return PhysicalOptimizerRuleExport(self._library, name)

    # -- configuration -------------------------------------------------------------------

    def validate_options(self, options: Optional[Mapping[str, Any]]) -> Optional[str]:
        """Validates ``options`` (configuration keys, with or without the namespace prefix)
        with the plugin itself; returns their JSON text (``None`` when empty).

        Raises:
            PluginConfigError: an unknown key or bad value; the message names the key.
        """
        if not options:
            return None
        if not isinstance(options, Mapping):
            raise PluginConfigError(
                f"options for plugin '{self.name}' must be a dict of configuration keys, got "
                f"{type(options).__name__}",
                kind="invalid_options",
                path=self._path,
            )
        try:
            text = json.dumps(dict(options))
        except (TypeError, ValueError) as e:
            raise PluginConfigError(
                f"options for plugin '{self.name}' are not JSON-serializable: {e}", kind="invalid_options", path=self._path
            ) from e
        try:
            ptr = self._library.new_pointer("config_options", text)
        except PluginError as e:
            reason = mask_values(e.plugin_message or e.message, secret_values(text))
            raise PluginConfigError(
                f"plugin '{self.name}' rejected options {redact_json(text)}: {reason}",
                kind="invalid_options",
                path=self._path,
                code=e.code,
                plugin_message=None if e.plugin_message is None else mask_values(e.plugin_message, secret_values(text)),
            ) from e
        self._library.free_pointer("config_options", ptr)
        return text

    def config_keys(self) -> List[str]:
        """Fully qualified configuration keys the plugin declares."""
        cfg = self._manifest.get("config")
        if not cfg:
            return []
        return [f"{cfg['namespace']}.{k['key']}" for k in cfg.get("keys", [])]

    def _normalized_options(self, options: Optional[Mapping[str, Any]]) -> Dict[str, str]:
        """Options as ``{key below namespace: text}`` (after :meth:`validate_options`)."""
        ns = self.config_namespace or ""
        out: Dict[str, str] = {}
        for k, v in (options or {}).items():
            key = k[len(ns) + 1 :] if ns and k.startswith(ns + ".") else k
            out[key] = ("true" if v else "false") if isinstance(v, bool) else str(v)
        return out

    def config_extension(self, options: Optional[Mapping[str, Any]] = None) -> ConfigExtensionExport:
        """The configuration namespace as an object for ``SessionConfig.with_extension``."""
        ns = self.config_namespace
        if ns is None:
            raise PluginError(
                f"plugin '{self.name}' declares no configuration namespace", kind="capability_unavailable", path=self._path
            )
        return ConfigExtensionExport(self._library, ns, self.validate_options(options))

    def session_config(self, config: Any = None, options: Optional[Mapping[str, Any]] = None) -> Any:
        """A ``datafusion.SessionConfig`` carrying the plugin's configuration namespace.

        datafusion-python 55 can add a config extension only to a ``SessionConfig``
        (``SessionConfig.with_extension``), before the ``SessionContext`` is created. Use::

            ctx = datafusion.SessionContext(plugin.session_config(options={...}))
            plugin.install(ctx)

        Args:
            config: a ``SessionConfig`` to extend (modified in place and returned, like
                ``SessionConfig.set``); a new one when ``None``.
            options: configuration keys (validated by the plugin; errors name the key).

        Raises:
            PluginConfigError: invalid options.
            PluginInstallError: ``config`` already carries a foreign config extension
                (datafusion-python 55 keeps the first FFI extension bag of a config and
                silently ignores later ones, so ours would be dropped).
        """
        from datafusion import SessionConfig, SessionContext

        cfg = config if config is not None else SessionConfig()
        ns = self.config_namespace
        if ns is None:
            self.validate_options(options)  # the plugin rejects any non-empty options
            return cfg
        export = self.config_extension(options)
        if config is not None:
            # datafusion-python 55 keeps the first FFI extension bag of a config and silently
            # ignores later ones (checked: a second with_extension leaves the first values).
            probe = SessionContext(SessionContext(cfg).copied_config().with_information_schema(True))
            foreign = sorted(
                str(r["name"])
                for r in probe.sql("SELECT name FROM information_schema.df_settings").to_pylist()
                if not str(r["name"]).startswith("datafusion.")
            )
            if foreign:
                raise PluginInstallError(
                    f"this SessionConfig already carries a foreign config extension ({', '.join(foreign[:3])}"
                    f"{', ...' if len(foreign) > 3 else ''}); datafusion-python 55 keeps the first FFI extension "
                    f"bag of a config and ignores later ones, so plugin '{self.name}'s '{ns}' namespace (and "
                    "these options) would be dropped. Start from a SessionConfig without it; only one plugin "
                    "per session can have a config namespace in datafusion-python 55",
                    kind="config_conflict",
                    path=self._path,
                )
        return cfg.with_extension(export)

    def session_context(
        self, options: Optional[Mapping[str, Any]] = None, config: Any = None, runtime: Any = None
    ) -> Any:
        """A new ``SessionContext`` with the configuration namespace and every object installed."""
        from datafusion import SessionContext

        ctx = SessionContext(self.session_config(config, options), runtime)
        self.install(ctx)
        return ctx

    # -- capabilities --------------------------------------------------------------------

    def capabilities(self, host: str = HOST) -> Dict[str, Dict[str, Any]]:
        """Capability name -> ``{"declared", "installable", "reason"}`` for ``host``.

        ``installable`` says whether *this* host can install that capability (whether or not
        the plugin declares it); ``reason`` says how, or why not.
        """
        if host != HOST:
            raise ValueError(f"unknown host {host!r}; dfplugin reports capabilities for {HOST!r} only")
        declared = set(self._manifest.get("capabilities") or [])
        out: Dict[str, Dict[str, Any]] = {}
        for cap in KNOWN_CAPABILITIES:
            installable, reason = CAPABILITY_MATRIX[cap]
            missing = [e for e in _HANDOVER_ENTRY_POINTS.get(cap, ()) if not self._library.exports_symbol(e)]
            if installable and missing:
                installable = False
                reason = (
                    f"this library was built without {', '.join(missing)} (an older build of the plugin); "
                    f"rebuild it to get {cap} in datafusion-python. With it: {reason}"
                )
            out[cap] = {"declared": cap in declared, "installable": installable, "reason": reason}
        return out

    # -- table providers -----------------------------------------------------------------

    def table_provider_factory(self, name: str) -> TableProviderFactoryExport:
        """The table provider factory ``name`` (e.g. ``"DELTA"``), for
        ``ctx.register_table_factory(name, obj)``; :meth:`install` registers every factory."""
        self._check_object("table_provider_factory", name)
        return TableProviderFactoryExport(self._library, name)

    def table_provider(self, kind: str, options: "Mapping[str, Any] | str") -> TableProviderExport:
        """A table provider of ``kind`` (``objects["table_provider"]``, e.g. ``"delta"``) opened
        with ``options`` (a dict, or its JSON text as is), for ``ctx.register_table(name, provider)``.

        The provider is opened once right away, so a bad option or a missing table raises
        here, naming the table and the value; each registration then opens a fresh provider
        bound to that session.

        Raises:
            PluginError: ``kind="unknown_object"`` when the plugin has no such provider,
                ``"invalid_options"`` when ``options`` is not a JSON object, or the plugin's
                error (``kind="plugin_error"``, ``code``/``plugin_message`` from the plugin).
        """
        self._check_object("table_provider", kind)
        if isinstance(options, str):
            text = options  # JSON text, checked by the plugin
        elif isinstance(options, Mapping):
            try:
                text = json.dumps(dict(options), sort_keys=True)
            except (TypeError, ValueError) as e:
                raise PluginError(
                    f"options of a '{kind}' table provider are not JSON-serializable: {e}",
                    kind="invalid_options",
                    path=self._path,
                ) from e
        else:
            raise PluginError(
                f"options of a '{kind}' table provider must be a dict or JSON text, got {type(options).__name__}",
                kind="invalid_options",
                path=self._path,
            )
        export = TableProviderExport(self._library, kind, text)
        # Open it once (no session yet: NULL codec) so errors surface at the call site.
        ptr = self._library.new_pointer("table_provider", kind, None, text)
        self._library.free_pointer("table_provider", ptr)
        return export

    def delta_table(
        self,
        uri: "os.PathLike[str] | str",
        version: Optional[int] = None,
        timestamp: Any = None,
        storage_options: Optional[Mapping[str, Any]] = None,
        files: Optional[Sequence[str]] = None,
        file_column: Optional[str] = None,
        allowed_locations: Optional[Sequence[str]] = None,
        allow_external_files: bool = False,
        ctx: Any = None,
    ) -> TableProviderExport:
        """A Delta table provider from the plugin (for ``ctx.register_table(name, provider)``).

        Args:
            uri: table root (local path, ``file://``, ``s3://``, ...).
            version: table version to read (time travel); default: the latest.
            timestamp: read the version current at this instant: an RFC 3339 string
                (``"2024-01-02T00:00:00Z"``) or a timezone-aware ``datetime``. Not with
                ``version``.
            storage_options: object store options, e.g. ``{"AWS_REGION": "us-east-1"}``
                (values converted to strings; booleans as ``"true"``/``"false"``).
            files: pin the scan to these data files (paths relative to the table root).
            file_column: add a column of this name holding each row's data file.
            allowed_locations: prefixes (local paths or object-store URIs) the table must lie
                under, like ``codeanatomy.policy.allowed_locations``: local paths are made
                absolute, ``..`` resolved and symbolic links followed before the comparison;
                URLs are compared without credentials, query or fragment, by whole path
                segments. ``None`` or an empty list: no list of its own (like an empty
                setting, it allows any location).
            allow_external_files: read data files whose log entry is an absolute URI outside
                the table root (relative paths that leave the root are always refused).
            ctx: the session the provider is meant for. Its ``codeanatomy.policy.allowed_locations``
                (comma-separated) applies too, and ``codeanatomy.delta.allow_external_files =
                true`` allows external files, as for ``CREATE EXTERNAL TABLE`` and ``delta_scan``
                in that session. A session without the namespace adds nothing.

        The table must lie under a prefix of *every* list given (``allowed_locations`` and the
        session's). The plugin takes one list per table: it gets the session's list when the
        session has one, and ``allowed_locations`` is then checked here, with the plugin's
        normalization; otherwise the plugin gets ``allowed_locations``. A table outside is
        refused before it is opened: :class:`PluginError` with ``code`` 10 and
        ``[E0010 policy_violation]`` in its message.

        Raises:
            ValueError: ``version`` and ``timestamp`` both given, a naive ``datetime``, or a
                negative ``version`` (before any call into the plugin).
            TypeError: an argument of the wrong type.
            PluginError: the plugin's error (missing table, version beyond the latest, a
                location outside the allowed ones, ...).
        """
        if version is not None and timestamp is not None:
            raise ValueError(
                f"delta_table({redact_url(os.fspath(uri))!r}): give version or timestamp, not both "
                f"(version={version!r}, timestamp={timestamp!r})"
            )
        options: Dict[str, Any] = {"table_uri": _table_uri(uri)}
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int):
                raise TypeError(f"delta_table version must be an int, got {type(version).__name__} {version!r}")
            if version < 0:
                raise ValueError(f"delta_table version must be >= 0, got {version}")
            options["version"] = version
        if timestamp is not None:
            options["timestamp"] = _rfc3339(timestamp)
        if storage_options:
            if not isinstance(storage_options, Mapping):
                raise TypeError(f"storage_options must be a dict of strings, got {type(storage_options).__name__}")
            options["storage_options"] = {str(k): _option_text(str(k), v) for k, v in storage_options.items()}
        if files is not None:
            if isinstance(files, (str, bytes)) or not all(isinstance(f, str) for f in files):
                raise TypeError(f"delta_table files must be a list of path strings, got {files!r}")
            options["files"] = list(files)
        if file_column is not None:
            if not isinstance(file_column, str):
                raise TypeError(f"delta_table file_column must be a column name, got {file_column!r}")
            options["file_column"] = file_column
        explicit: Optional[List[str]] = None
        if allowed_locations is not None:
            if isinstance(allowed_locations, (str, bytes)) or not all(
                isinstance(a, (str, os.PathLike)) for a in allowed_locations
            ):
                raise TypeError(
                    "delta_table allowed_locations must be a list of path or URI prefixes, got "
                    f"{redact_text(repr(allowed_locations))}"
                )
            explicit = [p for p in (os.fspath(a).strip() for a in allowed_locations) if p]
        if not isinstance(allow_external_files, bool):
            raise TypeError(f"delta_table allow_external_files must be True or False, got {allow_external_files!r}")
        session_locations: List[str] = []
        if ctx is not None:
            _require_context(ctx)
            ns = self.config_namespace
            settings = (_config_settings(ctx, ns) if ns else None) or {}
            session_locations = [p.strip() for p in settings.get("policy.allowed_locations", "").split(",") if p.strip()]
            allow_external_files = allow_external_files or settings.get("delta.allow_external_files", "").lower() == "true"
        if session_locations:
            if explicit:
                _check_location(options["table_uri"], explicit, self._path)
            options["allowed_locations"] = session_locations
        elif explicit:
            options["allowed_locations"] = explicit
        if allow_external_files:
            options["allow_external_files"] = True
        return self.table_provider("delta", options)

    # -- install -------------------------------------------------------------------------

    def install(
        self,
        ctx: Any,
        options: Optional[Mapping[str, Any]] = None,
        *,
        skip_unavailable: bool = True,
    ) -> InstalledPlugin:
        """Installs every object of the plugin into ``ctx``. All or nothing.

        Registers every scalar, aggregate and window function, every table function (bound
        to ``ctx``), every table provider factory (``CREATE EXTERNAL TABLE ... STORED AS
        DELTA``), every physical optimizer rule, and ``dfplugin_loaded()`` /
        ``dfplugin_objects()`` (once per session). The configuration namespace cannot be
        added to an existing context in datafusion-python 55: when ``ctx`` was created with
        :meth:`session_config` it is verified (and ``options`` are applied with ``SET``);
        otherwise the plugin reads its defaults, ``SET <namespace>.*`` fails in that session,
        a warning is logged and the returned report says ``config="defaults"``.

        Args:
            ctx: a ``datafusion.SessionContext``.
            options: configuration keys (validated by the plugin; errors name the key).
            skip_unavailable: when the plugin declares capabilities datafusion-python cannot
                install (analyzer rules, relation planners, DML: the Rust host's), install
                the rest, log a warning per skipped capability and list them in the report's
                ``not_installed`` (default); ``False`` makes that an error instead.

        Returns:
            The install report (also listed by ``SELECT * FROM dfplugin_loaded()``).

        Raises:
            PluginInstallError: a name collision (nothing installed), an unavailable
                capability, or a failure while registering (what was registered is removed).
            PluginConfigError: invalid options, or options given for a session without the
                namespace.
        """
        _require_context(ctx)
        with _install_lock:
            return self._install(ctx, options, skip_unavailable)

    def _install(self, ctx: Any, options: Optional[Mapping[str, Any]], skip_unavailable: bool) -> InstalledPlugin:
        from datafusion.user_defined import AggregateUDF, ScalarUDF, WindowUDF

        caps = self.capabilities()
        declared = list(self._manifest.get("capabilities") or [])
        unavailable = [c for c in declared if not caps[c]["installable"]]
        if unavailable and not skip_unavailable:
            reasons = "; ".join(f"{c}: {caps[c]['reason']}" for c in unavailable)
            raise PluginInstallError(
                f"plugin '{self.name}' declares capabilities datafusion-python cannot install ({reasons}). "
                "Pass skip_unavailable=True to install the rest, or use the Rust host (dfplugin)",
                kind="capability_unavailable",
                path=self._path,
            )
        for c in unavailable:
            log.warning("plugin %s: capability %s not installed in datafusion-python: %s", self.name, c, caps[c]["reason"])

        self.validate_options(options)
        wanted = self._normalized_options(options)
        ns = self.config_namespace

        # 1. Build every host object first (imports the FFI structs; registers nothing).
        try:
            scalars = [(n, ScalarUDF.udf(ScalarUDFExport(self._library, n))) for n in self.objects("scalar_udf")]
            aggregates = [(n, AggregateUDF.udaf(AggregateUDFExport(self._library, n))) for n in self.objects("aggregate_udf")]
            windows = [(n, WindowUDF.udwf(WindowUDFExport(self._library, n))) for n in self.objects("window_udf")]
            tables = [(n, self.table_function(n, ctx)) for n in self.objects("table_function")]
            rules = [(n, PhysicalOptimizerRuleExport(self._library, n)) for n in self.objects("physical_optimizer_rule")]
            factories = [(n, TableProviderFactoryExport(self._library, n)) for n in self.objects("table_provider_factory")]
            # datafusion-python 55 cannot remove a factory again: make sure the plugin can build
            # each one before the session is touched.
            for n, _f in factories:
                self._library.free_pointer("table_provider_factory", self._library.new_pointer("table_provider_factory", n))
        except PluginError as e:
            raise PluginInstallError(
                f"plugin '{self.name}' could not build its objects for installation: {e}",
                kind="plugin_error",
                path=self._path,
                code=e.code,
            ) from e
        except Exception as e:
            raise PluginInstallError(
                f"datafusion-python refused an object of plugin '{self.name}' ({self._path}): {e}",
                kind="host_refused",
                path=self._path,
            ) from e

        # 2. Check every name before touching the session.
        try:
            return self._check_and_register(
                ctx, declared, unavailable, wanted, ns, scalars, aggregates, windows, tables, rules, factories
            )
        except PluginError:
            raise
        except Exception as e:
            raise PluginInstallError(
                f"cannot install plugin '{self.name}' ({self._path}): inspecting the session failed: {e}. "
                "Nothing was installed; check that the session can run queries (e.g. a bad SET of another "
                "plugin's configuration key fails every query)",
                kind="session_unusable",
                path=self._path,
            ) from e

    def _check_and_register(
        self,
        ctx: Any,
        declared: List[str],
        unavailable: List[str],
        wanted: Dict[str, str],
        ns: Optional[str],
        scalars: List[Tuple[str, Any]],
        aggregates: List[Tuple[str, Any]],
        windows: List[Tuple[str, Any]],
        tables: List[Tuple[str, Any]],
        rules: List[Tuple[str, Any]],
        factories: List[Tuple[str, Any]],
    ) -> InstalledPlugin:
        collisions: List[str] = []
        taken = set(ctx.udfs())
        collisions += [f"scalar_udf '{n}'" for n, _ in scalars if n in taken]
        taken = set(ctx.udafs())
        collisions += [f"aggregate_udf '{n}'" for n, _ in aggregates if n in taken]
        taken = set(ctx.udwfs())
        collisions += [f"window_udf '{n}'" for n, _ in windows if n in taken]
        collisions += [f"table_function '{n}'" for n, _ in tables if _table_function_exists(ctx, n)]
        if rules:
            existing_rules = set(_physical_rule_names(ctx))
            collisions += [f"physical_optimizer_rule '{n}'" for n, _ in rules if n in existing_rules]
        collisions += [f"table_provider_factory '{n}'" for n, _ in factories if _table_factory_exists(ctx, n)]
        record = SessionPlugins.existing(ctx.session_id())
        need_introspection = record is None
        if need_introspection:
            collisions += [
                f"table_function '{n}' (dfplugin introspection)"
                for n in (LOADED_FUNCTION, OBJECTS_FUNCTION)
                if _table_function_exists(ctx, n)
            ]
        if collisions:
            raise PluginInstallError(
                f"cannot install plugin '{self.name}' ({self._path}) into this session: name collision with "
                f"{', '.join(collisions)} already registered. Nothing was installed. Use a fresh SessionContext, "
                "or deregister the existing objects first (ctx.deregister_udf / deregister_udaf / "
                "deregister_udwf / deregister_udtf; a table provider factory cannot be removed)",
                kind="name_collision",
                path=self._path,
            )
        current = _config_settings(ctx, ns) if ns else None
        if ns and current is None and wanted:
            raise PluginConfigError(
                f"cannot apply options {sorted(wanted)} of plugin '{self.name}': this session has no "
                f"'{ns}' configuration namespace, and datafusion-python 55 cannot add one to an existing "
                f"SessionContext. Create the context with it: ctx = datafusion.SessionContext("
                f"plugin.session_config(options={{...}})), then plugin.install(ctx)",
                kind="config_unavailable",
                path=self._path,
            )

        # 3. Register, remembering how to undo each step.
        undo: List[Tuple[str, Callable[[], None]]] = []
        installed: List[InstalledObject] = []
        try:
            for n, f in scalars:
                ctx.register_udf(f)
                undo.append((f"scalar_udf {n}", lambda n=n: ctx.deregister_udf(n)))
                installed.append(InstalledObject("scalar_udf", n))
            for n, f in aggregates:
                ctx.register_udaf(f)
                undo.append((f"aggregate_udf {n}", lambda n=n: ctx.deregister_udaf(n)))
                installed.append(InstalledObject("aggregate_udf", n))
            for n, f in windows:
                ctx.register_udwf(f)
                undo.append((f"window_udf {n}", lambda n=n: ctx.deregister_udwf(n)))
                installed.append(InstalledObject("window_udf", n))
            for n, f in tables:
                ctx.register_udtf(f)
                undo.append((f"table_function {n}", lambda n=n: ctx.deregister_udtf(n)))
                installed.append(InstalledObject("table_function", n))
            if need_introspection:
                record = SessionPlugins.create(ctx.session_id())
                for f in record.table_functions(ctx):
                    ctx.register_udtf(f)
                for fname in (LOADED_FUNCTION, OBJECTS_FUNCTION):
                    undo.append((f"table_function {fname}", lambda n=fname: ctx.deregister_udtf(n)))
            config_state = "none"
            if ns is not None:
                if current is None:
                    config_state = "defaults"
                    log.info(
                        "plugin %s: this SessionContext has no '%s' configuration namespace (datafusion-python 55 "
                        "cannot add one to an existing context); the plugin uses its defaults and "
                        "`SET %s.<key>` fails here. Create the context with "
                        "datafusion.SessionContext(plugin.session_config()) to make it settable",
                        self.name,
                        ns,
                        ns,
                    )
                else:
                    config_state = "installed"
                    for key, value in wanted.items():
                        old = current.get(key)
                        ctx.sql(f"SET {ns}.{key} = {_sql_string(value)}").collect()
                        if old is not None:
                            undo.append(
                                (f"config {ns}.{key}", lambda k=key, o=old: ctx.sql(f"SET {ns}.{k} = {_sql_string(o)}").collect())
                            )
                    installed.append(InstalledObject("config_namespace", ns))
            # Last: datafusion-python 55 can remove neither a table provider factory nor a
            # physical optimizer rule again.
            for n, f in factories:
                ctx.register_table_factory(n, f)
                installed.append(InstalledObject("table_provider_factory", n))
            for n, r in rules:
                ctx.add_physical_optimizer_rule(r)
                installed.append(InstalledObject("physical_optimizer_rule", n))
            if self._library.supports("logical_codec"):
                # The codec, on a handle dfplugin keeps: dfplugin.sql hands plans to the plugin
                # through it (policy, DELETE / UPDATE, time travel).
                install_extension(self, ctx)
                # Rules and planners run in dfplugin.sql / ctx.sql from now on in this session.
                for kind in ("analyzer_rule", "relation_planner"):
                    if kind in declared and kind not in unavailable:
                        installed += [InstalledObject(kind, n) for n in self.objects(kind)]
        except Exception as e:
            failures = []
            for what, action in reversed(undo):
                try:
                    action()
                except Exception as undo_error:  # keep undoing the rest
                    failures.append(f"{what}: {undo_error}")
            if need_introspection and record is not None:
                SessionPlugins._by_session.pop(ctx.session_id(), None)
            extra = f" Rolling back also failed for: {'; '.join(failures)}." if failures else ""
            added_rules = [o.name for o in installed if o.kind == "physical_optimizer_rule"]
            added_factories = [o.name for o in installed if o.kind == "table_provider_factory"]
            if added_factories:
                extra += f" Table provider factory(ies) {', '.join(added_factories)} stay (they cannot be removed)."
            if added_rules:
                extra += f" Physical optimizer rule(s) {', '.join(added_rules)} stay (they cannot be removed)."
            if isinstance(e, PluginError):
                code = e.code
            else:
                code = None
            raise PluginInstallError(
                f"installing plugin '{self.name}' ({self._path}) failed: {e}. What this call registered was "
                f"removed again.{extra}",
                kind="install_failed",
                path=self._path,
                code=code,
            ) from e

        entry = InstalledPlugin(
            plugin=self.name,
            version=self.version,
            path=self._path,
            build_id=str((self._manifest.get("build") or {}).get("id", "")),
            abi=f"{self._manifest['abi']['major']}.{self._manifest['abi']['minor']}",
            capabilities=list(declared),
            native=False,
            objects=installed,
            config=config_state,
            not_installed=unavailable,
        )
        assert record is not None
        record.add(entry)
        log.info("plugin %s installed into session %s: %d objects", self.name, ctx.session_id(), len(installed))
        return entry


_install_lock = threading.RLock()
_plugins: Dict[str, Plugin] = {}
_plugins_lock = threading.Lock()


def inspect(path: "os.PathLike[str] | str") -> Dict[str, Any]:
    """The plugin's embedded manifest, read from the file without loading it, plus the
    key ``"signature"``: ``{"state": "unsigned" | "valid" | "invalid" | "damaged",
    "key_id": <16 hex digits or None>, "trusted": <the signing key is trusted by the
    current trust policy>}``. A signature the policy would refuse is reported, not raised.

    Raises:
        PluginLoadError: the file is missing, not a regular file, not ELF64 LE, truncated,
            or has no valid embedded manifest (``kind`` says which).
    """
    p = os.fspath(path)
    manifest = read_manifest(p)
    manifest["signature"] = read_signature(p).report()
    return manifest


def _differences(a: Any, b: Any, path: str = "") -> List[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: List[str] = []
        for k in sorted(set(a) | set(b)):
            out += _differences(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
        return out
    return [] if a == b else [f"{path}: {json.dumps(a)} != {json.dumps(b)}"]


def load(path: "os.PathLike[str] | str") -> Plugin:
    """Loads the plugin library at ``path`` (once per real path) and checks it.

    First the path must name a regular file (a FIFO, socket or device is refused without
    being opened). Then its signature is checked against the trust policy
    (:func:`dfplugin.set_trust_policy`; by default only libraries signed by a trusted key
    load), before anything of the file is parsed or run. Before any FFI struct is touched,
    the embedded manifest is checked against the installed ``datafusion`` package: plugin
    ABI major 1 (minor <= the host's), DataFusion and datafusion-ffi majors equal to
    datafusion-python's, the target's arch/os equal to this machine's, every capability
    known. Then the library is opened with ``ctypes.CDLL`` (never unloaded) and its live
    manifest must equal the embedded one.

    A library already loaded from the same real path is returned again, provided the
    (possibly tightened) trust policy still accepts the signature it was loaded with.

    Raises:
        PluginLoadError: the message names the file, both versions and the fix; ``kind``
            is e.g. ``unsigned``, ``untrusted_key``, ``signature_invalid``,
            ``not_a_regular_file``, ``datafusion_mismatch``, ``abi_major_mismatch``,
            ``not_a_library``, ``no_embedded_manifest``, ``target_mismatch``,
            ``live_manifest_mismatch``.
    """
    p = os.fspath(path)
    real = os.path.realpath(p)
    policy = policy_for_load()  # from here on the trust policy may only tighten
    with _plugins_lock:
        cached = _plugins.get(real)
        if cached is not None:
            enforce(cached._signature, policy, p, warn=False)
            return cached
        check_plugin_file(p)
        # Before any manifest parsing or ctypes: nothing of an unaccepted file is used.
        signature = read_signature(p)
        enforce(signature, policy, p)
        manifest = read_manifest(p)
        check_compatibility(p, manifest, host_versions())
        library = open_library(real)
        abi = library.abi_version()
        declared_abi = (int(manifest["abi"]["major"]), int(manifest["abi"]["minor"]))
        if abi != declared_abi:
            raise PluginLoadError(
                f"plugin '{p}': dfplugin_abi_version() reports {abi[0]}.{abi[1]} but the embedded manifest "
                f"says {declared_abi[0]}.{declared_abi[1]}; the library was built inconsistently, rebuild it",
                kind="live_manifest_mismatch",
                path=p,
            )
        try:
            live = json.loads(library.manifest_json())
        except PluginError as e:
            kind = "plugin_panic" if e.code == 2 else "plugin_error"
            raise PluginLoadError(
                f"plugin '{p}' failed to build its exports: {e.message}", kind=kind, path=p, code=e.code
            ) from e
        differences = _differences(manifest, live)
        image = parse_embedded(library.embedded_manifest_bytes(), p)
        differences += [f"(loaded image) {d}" for d in _differences(manifest, image)]
        if differences:
            raise PluginLoadError(
                f"plugin '{p}': the manifest embedded in the file and the one the loaded library reports "
                f"disagree ({'; '.join(differences)}). The library was built inconsistently (declared objects "
                "differ from exported ones?); fix the plugin's MANIFEST and rebuild it with `make build`",
                kind="live_manifest_mismatch",
                path=p,
            )
        plugin = Plugin(real, manifest, library, signature)
        _plugins[real] = plugin
        # From now on ctx.sql honours time-travel clauses (or fails naming them) in every session.
        route_session_sql()
        log.info(
            "loaded plugin %s %s from %s (signature: %s%s)",
            plugin.name,
            plugin.version,
            real,
            signature.state,
            f", key {signature.key_id}" if signature.key_id else "",
        )
        return plugin
