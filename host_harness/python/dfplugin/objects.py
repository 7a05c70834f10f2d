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
