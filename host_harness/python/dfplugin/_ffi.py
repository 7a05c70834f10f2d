"""ctypes binding of a plugin library's plain C entry points and PyCapsule construction.

Ownership rules (see ``plugin_api/src/export.rs`` and ``/work/shared/docs/ffi-facts.md``):

* every ``dfplugin_<kind>(...)`` constructor returns an owned pointer (or NULL and a
  thread-local last error);
* the pointer is wrapped in a PyCapsule whose destructor (written here, in Python, declared
  ``CFUNCTYPE(None, c_void_p)``) calls the matching ``dfplugin_free_<kind>`` exactly once;
* datafusion-python never frees the capsule's struct, it calls the struct's own ``clone``;
* capsule names live in buffers that are never freed, and libraries are never unloaded.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .errors import PluginError, PluginLoadError
from .redact import mask_values, redact_json, secret_values

__all__ = ["Library", "open_library", "CAPSULE_NAMES", "capsule_stats", "codec_pointer"]

log = logging.getLogger("dfplugin")

# kind -> (capsule name the datafusion-python host reads, constructor symbol, destructor symbol)
_KINDS: Dict[str, Tuple[str, str, str]] = {
    "scalar_udf": ("datafusion_scalar_udf", "dfplugin_scalar_udf", "dfplugin_free_scalar_udf"),
    "aggregate_udf": ("datafusion_aggregate_udf", "dfplugin_aggregate_udf", "dfplugin_free_aggregate_udf"),
    "window_udf": ("datafusion_window_udf", "dfplugin_window_udf", "dfplugin_free_window_udf"),
    "table_function": ("datafusion_table_function", "dfplugin_table_function", "dfplugin_free_table_function"),
    "physical_optimizer_rule": (
        "datafusion_physical_optimizer_rule",
        "dfplugin_physical_optimizer_rule",
        "dfplugin_free_physical_optimizer_rule",
    ),
    "config_options": ("datafusion_extension_options", "dfplugin_config_options", "dfplugin_free_config_options"),
    # ABI 1.2
    "table_provider_factory": (
        "datafusion_table_provider_factory",
        "dfplugin_table_provider_factory",
        "dfplugin_free_table_provider_factory",
    ),
    "table_provider": ("datafusion_table_provider", "dfplugin_table_provider", "dfplugin_free_table_provider"),
    # Plans handed over by dfplugin.sql (plugin_api/src/handover.rs): the plugin's in-process
    # codec (installed with SessionContext.with_extensions), and the providers the plugin makes
    # from an encoded plan: a table at a time-travel version, a DELETE / UPDATE to run.
    "logical_codec": ("datafusion_logical_extension_codec", "dfplugin_logical_codec", "dfplugin_free_logical_codec"),
    "time_travel_provider": (
        "datafusion_table_provider",
        "dfplugin_time_travel_provider",
        "dfplugin_free_table_provider",
    ),
    "dml_provider": ("datafusion_table_provider", "dfplugin_dml_provider", "dfplugin_free_table_provider"),
    # A table function called with its arguments: the provider keeps filter pushdown (the
    # provider datafusion-ffi's FFI_TableFunction returns never takes filters).
    "table_function_call": (
        "datafusion_table_provider",
        "dfplugin_call_table_function",
        "dfplugin_free_table_provider",
    ),
}

# kind -> the constructor's full argument types, for kinds that take no leading name.
_ARGTYPES: Dict[str, list] = {
    "logical_codec": [],
    "time_travel_provider": [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p],
    "dml_provider": [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p],
    "table_function_call": [
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_void_p,
        ctypes.c_char_p,
    ],
}

# kind -> constructor arguments after the leading ``const char*`` (name, or provider kind).
#   "codec": ``const FFI_LogicalExtensionCodec*`` (may be NULL)
#   "options": ``const char*`` JSON options
_EXTRA_ARGS: Dict[str, Tuple[str, ...]] = {
    "table_function": ("codec",),
    "table_provider_factory": ("codec",),
    "table_provider": ("options", "codec"),
}

# kind -> first ABI minor (of major 1) whose libraries export its entry points. Older
# libraries lack the symbols; using such a kind with them is an error naming the ABI.
_SINCE_MINOR: Dict[str, int] = {
    "table_provider_factory": 2,
    "table_provider": 2,
    # Entry points added to ABI 1.6 libraries after their first release: present or not.
    "logical_codec": 7,
    "time_travel_provider": 7,
    "dml_provider": 7,
    "table_function_call": 7,
}

#: Capsule name per object kind.
CAPSULE_NAMES: Dict[str, str] = {k: v[0] for k, v in _KINDS.items()}
LOGICAL_CODEC_CAPSULE = "datafusion_logical_extension_codec"

# Capsule names must outlive every capsule: allocate them once, never free them.
_NAME_BUFFERS: Dict[str, ctypes.Array] = {
    name: ctypes.create_string_buffer(name.encode("ascii"))
    for name in set(CAPSULE_NAMES.values()) | {LOGICAL_CODEC_CAPSULE}
}

_DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

# ``pythonapi[name]`` makes a fresh function object (``pythonapi.name`` is shared and cached),
# so these prototypes cannot be changed by other code.
_PyCapsule_New = ctypes.pythonapi["PyCapsule_New"]
_PyCapsule_New.restype = ctypes.py_object
_PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]

_PyCapsule_GetPointer = ctypes.pythonapi["PyCapsule_GetPointer"]
_PyCapsule_GetPointer.restype = ctypes.c_void_p
_PyCapsule_GetPointer.argtypes = [ctypes.c_void_p, ctypes.c_void_p]

_PyCapsule_IsValid = ctypes.pythonapi["PyCapsule_IsValid"]
_PyCapsule_IsValid.restype = ctypes.c_int
_PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]

_Py_IncRef = ctypes.pythonapi["Py_IncRef"]
_Py_IncRef.restype = None
_Py_IncRef.argtypes = [ctypes.py_object]

_PyCapsule_GetPointerObj = ctypes.pythonapi["PyCapsule_GetPointer"]
_PyCapsule_GetPointerObj.restype = ctypes.c_void_p
_PyCapsule_GetPointerObj.argtypes = [ctypes.py_object, ctypes.c_char_p]
_stats_lock = threading.Lock()
_stats = {"created": 0, "freed": 0}


def capsule_stats() -> Dict[str, int]:
    """Capsules created and freed by this process so far (all libraries, all kinds)."""
    with _stats_lock:
        return dict(_stats)


def is_capsule(obj: Any, name: str) -> bool:
    """Whether ``obj`` is a PyCapsule named ``name``."""
    return type(obj).__name__ == "PyCapsule" and bool(_PyCapsule_IsValid(obj, name.encode("ascii")))


def codec_pointer(capsule: Any) -> int:
    """The ``FFI_LogicalExtensionCodec*`` inside a ``datafusion_logical_extension_codec`` capsule."""
    return capsule_pointer(capsule, LOGICAL_CODEC_CAPSULE)


class Library:
    """A plugin library opened with ctypes (once per real path, never unloaded)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._dll = ctypes.CDLL(path)
        except OSError as e:
            raise PluginLoadError(
                f"the dynamic loader refused '{path}': {e}. The file passed the manifest checks, so "
                "it is likely damaged or built for another platform; rebuild it with `make build`",
                kind="open_failed",
                path=path,
            ) from e
        self._destructors: Dict[str, Any] = {}
        self._ctors: Dict[str, Any] = {}
        self._frees: Dict[str, Any] = {}
        self._abi_version = self._sym("dfplugin_abi_version", ctypes.c_uint32, [])
        self._embedded = self._sym("dfplugin_embedded_manifest", ctypes.c_void_p, [ctypes.POINTER(ctypes.c_size_t)])
        self._manifest_json = self._sym("dfplugin_manifest_json", ctypes.c_char_p, [])
        self._last_code = self._sym("dfplugin_last_error_code", ctypes.c_uint32, [])
        self._last_message = self._sym("dfplugin_last_error_message", ctypes.c_char_p, [])
        self._live = self._sym("dfplugin_live_objects", ctypes.c_uint64, [])
        self._inspect_sql = getattr(self._dll, "dfplugin_inspect_sql", None)
        if self._inspect_sql is not None:
            self._inspect_sql.restype = ctypes.c_char_p
            self._inspect_sql.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
        self._analyze_plan = getattr(self._dll, "dfplugin_analyze_plan", None)
        if self._analyze_plan is not None:
            self._analyze_plan.restype = ctypes.c_uint32
            self._analyze_plan.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        self._describe_plan = getattr(self._dll, "dfplugin_describe_plan", None)
        if self._describe_plan is not None:
            self._describe_plan.restype = ctypes.c_char_p
            self._describe_plan.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p]
        minor = self.abi_version()[1]
        #: kind -> why this library cannot make objects of that kind (too old an ABI).
        self._missing: Dict[str, str] = {}
        for kind, (_cap, ctor, free) in _KINDS.items():
            since = _SINCE_MINOR.get(kind, 0)
            if minor < since and not (hasattr(self._dll, ctor) and hasattr(self._dll, free)):
                self._missing[kind] = (
                    f"'{path}' implements plugin ABI 1.{minor}, which has no {kind} entry point "
                    f"({ctor}, since ABI 1.{since}); rebuild the plugin against a current df_plugin_api"
                )
                continue
            if kind in _ARGTYPES:
                argtypes = _ARGTYPES[kind]
            else:
                argtypes = [ctypes.c_char_p] + [
                    ctypes.c_char_p if a == "options" else ctypes.c_void_p for a in _EXTRA_ARGS.get(kind, ())
                ]
            self._ctors[kind] = self._sym(ctor, ctypes.c_void_p, argtypes)
            self._frees[kind] = self._sym(free, None, [ctypes.c_void_p])
            self._destructors[kind] = self._make_destructor(kind)

    # -- symbols -------------------------------------------------------------------------

    def _sym(self, name: str, restype: Any, argtypes: list) -> Any:
        try:
            fn = getattr(self._dll, name)
        except AttributeError as e:
            raise PluginLoadError(
                f"'{self.path}' has an embedded manifest but does not export the C entry point "
                f"'{name}'; it was built with an older df_plugin_api or without export_plugin!. "
                "Rebuild it with `make build`",
                kind="missing_entry_point",
                path=self.path,
            ) from e
        fn.restype = restype
        fn.argtypes = argtypes
        return fn

    def _make_destructor(self, kind: str) -> Any:
        name_addr = ctypes.addressof(_NAME_BUFFERS[CAPSULE_NAMES[kind]])
        free = self._frees[kind]
        path = self.path
        # Everything the callback needs is bound here (not looked up in module globals),
        # so it keeps working while the interpreter tears modules down.
        get_pointer = _PyCapsule_GetPointer
        stats, lock, logger = _stats, _stats_lock, log

        def destructor(capsule: Optional[int]) -> None:
            try:
                ptr = get_pointer(capsule, name_addr)
                if ptr:
                    free(ptr)
                with lock:
                    stats["freed"] += 1
            except BaseException:  # never let an exception escape a C callback
                try:
                    logger.exception("freeing a %s capsule of %s failed", kind, path)
                except BaseException:
                    pass

        thunk = _DESTRUCTOR(destructor)
        # Capsules may outlive this Library object (and even this module, at interpreter
        # exit): the C thunk must never be freed, like the library itself.
        _Py_IncRef(ctypes.py_object(thunk))
        return thunk

    # -- entry points --------------------------------------------------------------------

    def abi_version(self) -> Tuple[int, int]:
        """``(major, minor)`` from ``dfplugin_abi_version()``."""
        v = int(self._abi_version())
        return v >> 16, v & 0xFFFF

    def embedded_manifest_bytes(self) -> bytes:
        """The embedded manifest as the loaded image sees it (header + JSON)."""
        n = ctypes.c_size_t(0)
        ptr = self._embedded(ctypes.byref(n))
        return ctypes.string_at(ptr, n.value) if ptr else b""

    def manifest_json(self) -> str:
        """The live manifest JSON (built from the objects the library really exports)."""
        raw = self._manifest_json()
        if raw is None:
            raise self.last_error("dfplugin_manifest_json")
        return raw.decode("utf-8")

    def live_objects(self) -> int:
        """Objects created through the C entry points and not yet freed."""
        return int(self._live())

    def last_error(self, entry: str, what: str = "", secrets: Sequence[str] = ()) -> PluginError:
        """The calling thread's last plugin error as a :class:`PluginError`.

        The plugin's text may quote a table URI or an option value: URLs are redacted and
        each of ``secrets`` (the secret values of the options of the failed call) masked.
        """
        code = int(self._last_code())
        raw = self._last_message()
        message = mask_values(raw.decode("utf-8", "replace"), secrets) if raw else "(no message)"
        suffix = f" ({what})" if what else ""
        return PluginError(
            f"plugin '{self.path}' failed in {entry}{suffix}: {message}",
            kind="plugin_error",
            path=self.path,
            code=code,
            plugin_message=message,
        )

    def exports_symbol(self, name: str) -> bool:
        """Whether the library exports the C symbol ``name``."""
        return hasattr(self._dll, name)

    def supports(self, kind: str) -> bool:
        """Whether this library exports the entry points of ``kind``."""
        return kind in self._ctors

    def new_pointer(
        self,
        kind: str,
        name: Optional[str],
        codec: Optional[int] = None,
        options: Optional[str] = None,
        extra: Optional[Sequence[Any]] = None,
        what: str = "",
    ) -> int:
        """Calls the constructor of ``kind``; returns the owned pointer or raises.

        ``name`` is the object's name (the provider kind for ``table_provider``), ``codec`` a
        ``FFI_LogicalExtensionCodec*`` (kinds taking one; ``None`` passes NULL) and
        ``options`` JSON text (``table_provider``).
        """
        if kind in self._missing:
            raise PluginError(self._missing[kind], kind="capability_unavailable", path=self.path)
        ctor = self._ctors[kind]
        if kind in _ARGTYPES:
            ptr = ctor(*(extra or ()))
            if not ptr:
                raise self.last_error(_KINDS[kind][1], what or kind)
            return int(ptr)
        args: list = [None if name is None else name.encode("utf-8")]
        for a in _EXTRA_ARGS.get(kind, ()):
            args.append(codec if a == "codec" else (None if options is None else options.encode("utf-8")))
        ptr = ctor(*args)
        if not ptr:
            secrets: List[str] = []
            if kind == "config_options":  # ``name`` is the options JSON here
                what = f"{kind} {redact_json(name)}" if name is not None else ""
                secrets = secret_values(name or "")
            else:
                what = f"{kind} {name!r}" if name is not None else ""
            if options is not None:
                what += f" with options {redact_json(options)}"
                secrets += secret_values(options)
            raise self.last_error(_KINDS[kind][1], what, secrets)
        return int(ptr)

    def free_pointer(self, kind: str, ptr: int) -> None:
        """Frees a pointer from :meth:`new_pointer` that was not wrapped in a capsule."""
        self._frees[kind](ptr)

    def capsule(
        self,
        kind: str,
        name: Optional[str],
        codec: Optional[int] = None,
        options: Optional[str] = None,
        extra: Optional[Sequence[Any]] = None,
        what: str = "",
    ) -> Any:
        """A fresh PyCapsule owning a new object of ``kind`` (freed when the capsule dies).
        ``extra`` are the full constructor arguments of kinds without a leading name."""
        ptr = self.new_pointer(kind, name, codec, options, extra, what)
        try:
            cap = _PyCapsule_New(ptr, ctypes.addressof(_NAME_BUFFERS[CAPSULE_NAMES[kind]]), self._destructors[kind])
        except BaseException:
            self.free_pointer(kind, ptr)
            raise
        with _stats_lock:
            _stats["created"] += 1
        return cap

    def inspect_sql(self, sql: str, dialect: str, replacements: Optional[Dict[int, str]] = None) -> str:
        """``dfplugin_inspect_sql``: the statement's JSON description, or with ``replacements``
        (time-travel relation index -> table name) the rewritten statement."""
        if self._inspect_sql is None:
            raise PluginError(f"'{self.path}' cannot inspect SQL statements; rebuild it", kind="capability_unavailable", path=self.path)
        repl = None if replacements is None else json.dumps({str(k): v for k, v in replacements.items()}).encode("utf-8")
        raw = self._inspect_sql(sql.encode("utf-8"), dialect.encode("utf-8"), repl)
        if raw is None:
            raise self.last_error("dfplugin_inspect_sql")
        return raw.decode("utf-8")

    def analyze_plan(self, plan_json: str, settings_json: str) -> None:
        """``dfplugin_analyze_plan``: raises the plugin's error when a rule refuses the plan."""
        if self._analyze_plan is None:
            raise PluginError(f"'{self.path}' cannot check plans; rebuild it", kind="capability_unavailable", path=self.path)
        if self._analyze_plan(plan_json.encode("utf-8"), settings_json.encode("utf-8")) != 0:
            raise self.last_error("dfplugin_analyze_plan")

    def describe_plan(self, plan: bytes, codec: int) -> Dict[str, Any]:
        """``dfplugin_describe_plan``: the plan description (for :meth:`analyze_plan`) of a plan
        encoded with the session's codecs (``codec``: its ``FFI_LogicalExtensionCodec*``)."""
        if self._describe_plan is None:
            raise PluginError(f"'{self.path}' cannot describe plans; rebuild it", kind="capability_unavailable", path=self.path)
        raw = self._describe_plan(plan, len(plan), codec)
        if raw is None:
            raise self.last_error("dfplugin_describe_plan")
        return json.loads(raw.decode("utf-8"))


def capsule_pointer(capsule: Any, name: str) -> int:
    """The pointer inside a PyCapsule named ``name`` (from the session: its codec, its planner)."""
    ptr = _PyCapsule_GetPointerObj(capsule, name.encode("ascii"))
    if not ptr:
        raise PluginError(f"the session's {name} capsule holds a NULL pointer", kind="bad_session")
    return int(ptr)


_libraries: Dict[str, Library] = {}
_libraries_lock = threading.Lock()


def open_library(path: str) -> Library:
    """Opens the library at ``path`` once per real path; it is never unloaded."""
    real = os.path.realpath(path)
    with _libraries_lock:
        lib = _libraries.get(real)
        if lib is None:
            lib = Library(real)
            _libraries[real] = lib
        return lib
