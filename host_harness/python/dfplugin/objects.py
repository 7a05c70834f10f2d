"""Exportable wrappers: small objects with the dunder methods datafusion-python reads.

Each call of a dunder method builds a *fresh* plugin object through the library's C entry
point and hands it over in a new PyCapsule; the host clones the struct inside, and the
capsule's destructor frees the original exactly once when the capsule is collected.
"""

from __future__ import annotations

from typing import Any, Optional

from ._ffi import LOGICAL_CODEC_CAPSULE, Library, codec_pointer, is_capsule
from .errors import PluginError
from .redact import redact_json

__all__ = [
    "ExportedObject",
    "ScalarUDFExport",
    "AggregateUDFExport",
    "WindowUDFExport",
    "TableFunctionExport",
    "TableProviderFactoryExport",
    "TableProviderExport",
    "PhysicalOptimizerRuleExport",
    "ConfigExtensionExport",
]


class ExportedObject:
    """One named object of a plugin library."""

    kind: str = ""

    def __init__(self, library: Library, name: str) -> None:
        self._library = library
        self.name = name

    def capsule(self) -> Any:
        """A new capsule owning a fresh copy of this object."""
        return self._library.capsule(self.kind, self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r} from {self._library.path!r})"


class ScalarUDFExport(ExportedObject):
    """A plugin scalar function (``__datafusion_scalar_udf__``)."""

    kind = "scalar_udf"

    def __datafusion_scalar_udf__(self) -> Any:
        return self.capsule()


class AggregateUDFExport(ExportedObject):
    """A plugin aggregate function (``__datafusion_aggregate_udf__``)."""

    kind = "aggregate_udf"

    def __datafusion_aggregate_udf__(self) -> Any:
        return self.capsule()


class WindowUDFExport(ExportedObject):
    """A plugin window function (``__datafusion_window_udf__``)."""

    kind = "window_udf"

    def __datafusion_window_udf__(self) -> Any:
        return self.capsule()


def _session_codec(session: Any, what: str = "a table function") -> Optional[Any]:
    """The ``datafusion_logical_extension_codec`` capsule of ``session``, or ``None``.

    ``session`` may be a session object (``SessionContext`` or its internal twin) exposing
    ``__datafusion_logical_extension_codec__()``, or already a bare codec capsule.
    """
    if session is None:
        return None
    if is_capsule(session, LOGICAL_CODEC_CAPSULE):
        return session
    getter = getattr(session, "__datafusion_logical_extension_codec__", None)
    if getter is not None:
        codec = getter()
        if not is_capsule(codec, LOGICAL_CODEC_CAPSULE):
            raise PluginError(
                f"{type(session).__name__}.__datafusion_logical_extension_codec__() returned "
                f"{type(codec).__name__}, not a '{LOGICAL_CODEC_CAPSULE}' capsule",
                kind="bad_session",
            )
        return codec
    raise PluginError(
        f"cannot bind {what} to {type(session).__name__!s}: expected a SessionContext "
        f"(with __datafusion_logical_extension_codec__) or a '{LOGICAL_CODEC_CAPSULE}' capsule",
        kind="bad_session",
    )


class TableFunctionExport(ExportedObject):
    """A plugin table function (``__datafusion_table_function__(session)``)."""

    kind = "table_function"

    def __datafusion_table_function__(self, session: Any = None) -> Any:
        codec = _session_codec(session)
        # The codec capsule stays referenced (``codec``) while the plugin clones it.
        ptr = codec_pointer(codec) if codec is not None else None
        return self._library.capsule(self.kind, self.name, ptr)


class PushdownTableFunction:
    """A plugin table function as a Python table function (``TableFunction(name, obj, ctx,
    with_session=True)``): each call hands the arguments to the plugin
    (``dfplugin_call_table_function``), which returns a provider that takes filter pushdown,
    so ``SELECT ... FROM delta_scan(uri) WHERE id BETWEEN ...`` prunes files as in a Rust host.
    datafusion-ffi's ``FFI_TableFunction`` switches pushdown off on the providers it returns.
    """

    def __init__(self, library: Library, name: str, ctx: Any, namespace: Optional[str]) -> None:
        self._library = library
        self.name = name
        # The session's id, not the context: the session holds this object, and a reference
        # back to its context would be a cycle through Rust that Python's GC cannot collect.
        self._session_id = ctx.session_id()
        self._namespace = namespace

    def __repr__(self) -> str:
        return f"PushdownTableFunction({self.name!r})"

    def __call__(self, *args: Any, session: Any = None) -> Any:
        import ctypes

        from .session import handle_of_session
        from .sql import _ProviderCapsule, _namespace_json, _settings

        handle = handle_of_session(self._session_id)
        if handle is None:
            raise PluginError(
                f"table function {self.name}(...) needs the plugin installed into its session (plugin.install(ctx))",
                kind="not_installed",
                path=self._library.path,
            )
        codec_capsule = handle.__datafusion_logical_extension_codec__()  # alive during the call
        from datafusion import Expr

        # datafusion-python passes its internal expressions; wrap them for ``to_bytes(ctx)``.
        encoded = [(arg if isinstance(arg, Expr) else Expr(arg)).to_bytes(handle) for arg in args]
        buffers = [ctypes.create_string_buffer(b, len(b)) for b in encoded]
        pointers = (ctypes.c_void_p * max(len(buffers), 1))(*[ctypes.addressof(b) for b in buffers])
        lengths = (ctypes.c_size_t * max(len(buffers), 1))(*[len(b) for b in encoded])
        # The calling session's settings of the plugin's namespace (``SET`` values included).
        settings = _namespace_json(_settings(session if session is not None else handle), self._namespace)
        capsule = self._library.capsule(
            "table_function_call",
            None,
            extra=(
                self.name.encode("utf-8"),
                ctypes.addressof(pointers),
                ctypes.addressof(lengths),
                len(buffers),
                codec_pointer(codec_capsule),
                settings.encode("utf-8"),
            ),
            what=f"{self.name}(...)",
        )
        return _ProviderCapsule(capsule)


class TableProviderFactoryExport(ExportedObject):
    """A plugin table provider factory (``CREATE EXTERNAL TABLE ... STORED AS <name>``),
    for ``SessionContext.register_table_factory(name, obj)``
    (``__datafusion_table_provider_factory__(codec)``)."""

    kind = "table_provider_factory"

    def __datafusion_table_provider_factory__(self, session: Any = None) -> Any:
        # datafusion-python 55 passes its logical extension codec capsule; accept a session too.
        codec = _session_codec(session, f"table provider factory '{self.name}'")
        ptr = codec_pointer(codec) if codec is not None else None
        return self._library.capsule(self.kind, self.name, ptr)


class TableProviderExport:
    """A plugin table provider of kind ``provider_kind`` (e.g. ``"delta"``) opened with
    ``options_json``, for ``SessionContext.register_table(name, obj)``
    (``__datafusion_table_provider__(session)``).

    The object is a recipe: each call of the dunder method opens a fresh provider through the
    plugin (bound to the session's codec) in a new capsule; the host keeps its own clone and
    the capsule's destructor frees the original exactly once.
    """

    kind = "table_provider"

    def __init__(self, library: Library, provider_kind: str, options_json: str) -> None:
        self._library = library
        self.provider_kind = provider_kind
        self.options_json = options_json

    @property
    def name(self) -> str:
        return self.provider_kind

    def capsule(self, session: Any = None) -> Any:
        """A new capsule owning a freshly opened provider (bound to ``session``'s codec)."""
        codec = _session_codec(session, f"a '{self.provider_kind}' table provider")
        ptr = codec_pointer(codec) if codec is not None else None
        return self._library.capsule(self.kind, self.provider_kind, ptr, self.options_json)

    def __datafusion_table_provider__(self, session: Any = None) -> Any:
        return self.capsule(session)

    def __repr__(self) -> str:
        # Options carry object store credentials: secret-looking values and URL userinfo are masked.
        return f"TableProviderExport({self.provider_kind!r}, {redact_json(self.options_json)} from {self._library.path!r})"


class PhysicalOptimizerRuleExport(ExportedObject):
    """A plugin physical optimizer rule (``__datafusion_physical_optimizer_rule__``)."""

    kind = "physical_optimizer_rule"

    def __datafusion_physical_optimizer_rule__(self) -> Any:
        return self.capsule()


class ConfigExtensionExport:
    """The plugin's configuration namespace as extension options
    (``__datafusion_extension_options__``), pre-filled with validated option values."""

    kind = "config_options"

    def __init__(self, library: Library, namespace: str, options_json: Optional[str]) -> None:
        self._library = library
        self.namespace = namespace
        self.options_json = options_json

    def __datafusion_extension_options__(self) -> Any:
        return self._library.capsule(self.kind, self.options_json)

    def __repr__(self) -> str:
        shown = None if self.options_json is None else redact_json(self.options_json)
        return f"ConfigExtensionExport({self.namespace!r}, options={shown!r})"
