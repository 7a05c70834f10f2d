"""The embedded plugin manifest: reading it from the file and checking it against this host.

Layout of the ``.dfplugin_manifest`` ELF section (see ``plugin_api/src/manifest.rs``):
8 bytes magic ``b"DFPLUGIN"``, u32 LE format version (1), u32 LE JSON length, JSON text.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import stat
import struct
import sys
from importlib import metadata
from typing import Any, Dict, List, Optional, Tuple

from .elf import ElfError, read_section
from .errors import PluginLoadError

__all__ = [
    "EMBEDDED_SECTION",
    "EMBEDDED_MAGIC",
    "EMBEDDED_FORMAT",
    "HOST_ABI",
    "KNOWN_CAPABILITIES",
    "CARRIED_SINCE_MINOR",
    "OBJECT_KINDS",
    "HostVersions",
    "host_versions",
    "parse_embedded",
    "read_manifest",
    "check_plugin_file",
    "check_compatibility",
    "major_of",
]

EMBEDDED_SECTION = ".dfplugin_manifest"
EMBEDDED_MAGIC = b"DFPLUGIN"
EMBEDDED_FORMAT = 1
_HEADER = struct.Struct("<8sII")

#: The plugin ABI this host implements (``major``, ``minor``); plugins of the same major and
#: any minor up to this one are accepted. 1.4 added ``scan_table``, 1.5 ``rule_active`` and
#: ``table_filters_pushdown``, 1.6 ``call_table_function_with_config``, which only Rust hosts call:
#: datafusion-python scans through ``FFI_TableProvider``, calls table functions through
#: ``FFI_TableFunction`` (which carries the session) and physical optimizer rules through
#: datafusion-ffi as before.
HOST_ABI: Tuple[int, int] = (1, 6)

#: Capability names in bit order (``Capability::ALL`` in ``plugin_api/src/manifest.rs``).
KNOWN_CAPABILITIES: Tuple[str, ...] = (
    "scalar_udf",
    "aggregate_udf",
    "window_udf",
    "table_function",
    "table_provider_factory",
    "table_provider",
    "physical_optimizer_rule",
    "analyzer_rule",
    "relation_planner",
    "config_namespace",
    "dml",
)

#: First ABI minor (of major 1) able to carry each capability; ``None``: not carried yet.
CARRIED_SINCE_MINOR: Dict[str, Optional[int]] = {
    "scalar_udf": 0,
    "aggregate_udf": 0,
    "window_udf": 0,
    "table_function": 0,
    "physical_optimizer_rule": 0,
    "config_namespace": 0,
    "table_provider_factory": 2,
    "table_provider": 2,
    "analyzer_rule": 3,
    "relation_planner": 3,
    "dml": 3,
}

#: Capabilities that name objects in the manifest's ``objects`` map.
OBJECT_KINDS: Tuple[str, ...] = (
    "scalar_udf",
    "aggregate_udf",
    "window_udf",
    "table_function",
    "physical_optimizer_rule",
    "table_provider_factory",
    "table_provider",
    "analyzer_rule",
    "relation_planner",
)

# datafusion-python release major -> the DataFusion / datafusion-ffi release it is built on.
# Only used to print an exact pin in advice; the check itself compares majors.
_BUILT_ON = {55: "55.2.0"}


class HostVersions:
    """Versions of the installed datafusion-python and what it is built on."""

    def __init__(self, python_package: str) -> None:
        self.python_package = python_package
        self.major = major_of(python_package)
        exact = _BUILT_ON.get(self.major) if self.major is not None else None
        self.datafusion = exact or f"{self.major}.x"
        self.datafusion_ffi = exact or f"{self.major}.x"

    def __repr__(self) -> str:
        return (
            f"HostVersions(datafusion-python={self.python_package}, DataFusion={self.datafusion}, "
            f"datafusion-ffi={self.datafusion_ffi})"
        )


def host_versions() -> HostVersions:
    """The installed ``datafusion`` (datafusion-python) package's versions.

    Raises:
        PluginLoadError: ``datafusion`` is not installed (kind ``"host_missing"``).
    """
    try:
        version = metadata.version("datafusion")
    except metadata.PackageNotFoundError as e:
        raise PluginLoadError(
            "the 'datafusion' Python package (datafusion-python) is not installed; "
            "install it with: pip install 'datafusion==55.*'",
            kind="host_missing",
        ) from e
    return HostVersions(version)


def major_of(version: Any) -> Optional[int]:
    """The leading integer of a version string (``"55.2.0"`` -> 55), or ``None``."""
    head = str(version).strip().split(".", 1)[0]
    return int(head) if head.isdigit() else None


def parse_embedded(data: bytes, path: str) -> Dict[str, Any]:
    """Parses the bytes of an embedded manifest section (header + JSON).

    Raises:
        PluginLoadError: kind ``"bad_manifest"`` when the bytes are not a manifest.
    """
    if len(data) < _HEADER.size:
        raise PluginLoadError(
            f"'{path}': section {EMBEDDED_SECTION} has {len(data)} bytes, fewer than the "
            f"{_HEADER.size}-byte header; rebuild the plugin with df_plugin_api's export_plugin! macro",
            kind="bad_manifest",
            path=path,
        )
    magic, fmt, length = _HEADER.unpack_from(data, 0)
    if magic != EMBEDDED_MAGIC:
        raise PluginLoadError(
            f"'{path}': section {EMBEDDED_SECTION} starts with {magic!r}, expected {EMBEDDED_MAGIC!r}; "
            "rebuild the plugin with df_plugin_api's export_plugin! macro",
            kind="bad_manifest",
            path=path,
        )
    if fmt != EMBEDDED_FORMAT:
        raise PluginLoadError(
            f"'{path}': embedded manifest format {fmt} is not the format {EMBEDDED_FORMAT} this "
            "dfplugin reads; upgrade dfplugin or rebuild the plugin with a matching df_plugin_api",
            kind="bad_manifest",
            path=path,
        )
    body = data[_HEADER.size : _HEADER.size + length]
    if len(body) != length:
        raise PluginLoadError(
            f"'{path}': embedded manifest declares {length} JSON bytes but the section holds "
            f"{len(data) - _HEADER.size}; the file is damaged, rebuild the plugin",
            kind="bad_manifest",
            path=path,
        )
    try:
        manifest = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PluginLoadError(
            f"'{path}': embedded manifest is not valid JSON ({e}); rebuild the plugin",
            kind="bad_manifest",
            path=path,
        ) from e
    if not isinstance(manifest, dict):
        raise PluginLoadError(f"'{path}': embedded manifest is not a JSON object", kind="bad_manifest", path=path)
    missing = [k for k in ("abi", "plugin", "datafusion", "datafusion_ffi", "target", "capabilities", "objects") if k not in manifest]
    if missing:
        raise PluginLoadError(
            f"'{path}': embedded manifest lacks field(s) {', '.join(missing)}; rebuild the plugin "
            "with a current df_plugin_api",
            kind="bad_manifest",
            path=path,
        )
    return manifest


def read_manifest(path: "os.PathLike[str] | str") -> Dict[str, Any]:
    """Reads the embedded manifest of the library at ``path`` without loading it.

    Raises:
        PluginLoadError: kinds ``"not_found"``, ``"unreadable"``, ``"not_a_library"``,
            ``"not_a_regular_file"``, ``"truncated"``, ``"no_embedded_manifest"``,
            ``"bad_manifest"``.
    """
    p = os.fspath(path)
    check_plugin_file(p)
    try:
        data = read_section(p, EMBEDDED_SECTION)
    except ElfError as e:
        kind = "no_embedded_manifest" if e.kind == "no_section" else e.kind
        msg = str(e)
        if kind == "no_embedded_manifest":
            msg += (
                "; it carries no embedded dfplugin manifest, so it was not built with "
                "df_plugin_api's export_plugin! macro (is it a DataFusion plugin?)"
            )
        raise PluginLoadError(msg, kind=kind, path=p) from e
    except FileNotFoundError as e:
        raise PluginLoadError(f"plugin library '{p}' disappeared while being read: {e}", kind="not_found", path=p) from e
    except OSError as e:
        raise PluginLoadError(f"cannot read plugin library '{p}': {e}", kind="unreadable", path=p) from e
    return parse_embedded(data, p)


_FILE_TYPES = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def check_plugin_file(path: str) -> os.stat_result:
    """Checks, without opening it, that ``path`` names a regular file (following symbolic
    links): opening a FIFO would block forever, and devices or sockets are no libraries.

    Returns:
        The file's ``os.stat`` result.

    Raises:
        PluginLoadError: ``"not_found"`` (missing, or a symbolic link whose target is
            missing), ``"unreadable"`` (a symbolic link loop, no permission, ...),
            ``"not_a_library"`` (a directory) or ``"not_a_regular_file"`` (a FIFO, socket
            or device); the message names the path and what it is.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError as e:
        target = _dangling_target(path)
        if target is not None:
            raise PluginLoadError(
                f"plugin library '{path}' is a symbolic link to '{target}', which does not exist (the link target is "
                "missing); build the plugin first (`make build` writes target/release/lib<plugin>.so) or point the "
                "link at the plugin's .so file",
                kind="not_found",
                path=path,
            ) from e
        raise PluginLoadError(
            f"plugin library '{path}' does not exist; build it first (`make build` writes "
            "target/release/lib<plugin>.so) or pass the right path",
            kind="not_found",
            path=path,
        ) from e
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise PluginLoadError(
                f"plugin library '{path}' is a symbolic link loop (following its links never reaches a file: "
                f"{e.strerror}); point the link at the plugin's .so file",
                kind="unreadable",
                path=path,
            ) from e
        if e.errno == errno.ENOTDIR:
            raise PluginLoadError(
                f"plugin library '{path}' does not exist (a component of the path is not a directory); pass the "
                "path of the plugin's .so file",
                kind="not_found",
                path=path,
            ) from e
        raise PluginLoadError(
            f"cannot access plugin library '{path}': {e.strerror or e}; check the path and its permissions",
            kind="unreadable",
            path=path,
        ) from e
    if stat.S_ISDIR(st.st_mode):
        raise PluginLoadError(f"'{path}' is a directory; pass the plugin's .so file", kind="not_a_library", path=path)
    if not stat.S_ISREG(st.st_mode):
        what = next((name for test, name in _FILE_TYPES if test(st.st_mode)), f"not a regular file (mode {st.st_mode:o})")
        raise PluginLoadError(
            f"'{path}' is {what}, not a regular file; a plugin must be a regular .so file (the shared library "
            "`make build` writes, e.g. target/release/lib<plugin>.so). It was not opened",
            kind="not_a_regular_file",
            path=path,
        )
    return st


def _dangling_target(path: str) -> Optional[str]:
    """The target of ``path`` when ``path`` itself is a symbolic link, else ``None``."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return os.readlink(path)
    except OSError:
        pass
    return None


def _machine_arch() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i686": "x86", "i386": "x86"}.get(m, m)


def _machine_os() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "darwin"
    if sys.platform in ("win32", "cygwin"):
        return "windows"
    return sys.platform


def _target_arch_os(target: str) -> Tuple[str, str]:
    parts = target.split("-")
    arch = {"arm64": "aarch64", "i686": "x86", "i586": "x86"}.get(parts[0], parts[0]) if parts else ""
    if "linux" in parts:
        os_name = "linux"
    elif "darwin" in parts or "apple" in parts:
        os_name = "darwin"
    elif "windows" in parts:
        os_name = "windows"
    else:
        os_name = parts[2] if len(parts) > 2 else "unknown"
    return arch, os_name


def host_target() -> str:
    """A description of this machine as ``<arch>-<os>`` (for messages)."""
    return f"{_machine_arch()}-{_machine_os()}"


def check_compatibility(path: str, manifest: Dict[str, Any], host: Optional[HostVersions] = None) -> None:
    """Refuses a manifest this host cannot load, before any FFI struct is touched.

    Order: ABI major, ABI minor, DataFusion major, datafusion-ffi major, target, capabilities.

    Raises:
        PluginLoadError: with kind ``abi_major_mismatch``, ``abi_minor_too_new``,
            ``datafusion_mismatch``, ``datafusion_ffi_mismatch``, ``target_mismatch``,
            ``unknown_capability`` or ``capability_not_carried``.
    """
    host = host or host_versions()
    abi = manifest.get("abi") or {}
    try:
        major, minor = int(abi["major"]), int(abi["minor"])
    except (KeyError, TypeError, ValueError) as e:
        raise PluginLoadError(f"'{path}': manifest field abi={abi!r} is not {{major, minor}}", kind="bad_manifest", path=path) from e
    h_major, h_minor = HOST_ABI
    if major != h_major:
        raise PluginLoadError(
            f"plugin '{path}' was built for plugin ABI {major}.{minor}, but this host (dfplugin "
            f"for datafusion-python) implements ABI {h_major}.{h_minor}; majors must be equal. "
            f"Rebuild the plugin against df_plugin_api ABI {h_major}.x, or use a dfplugin release "
            f"implementing ABI {major}.x",
            kind="abi_major_mismatch",
            path=path,
        )
    if minor > h_minor:
        raise PluginLoadError(
            f"plugin '{path}' was built for plugin ABI {major}.{minor}, newer than this host's "
            f"ABI {h_major}.{h_minor}; it may carry objects this host cannot install. Upgrade "
            f"dfplugin, or rebuild the plugin against ABI {h_major}.{h_minor}",
            kind="abi_minor_too_new",
            path=path,
        )
    plugin_df = str(manifest.get("datafusion"))
    if major_of(plugin_df) is None or major_of(plugin_df) != host.major:
        pm = major_of(plugin_df)
        raise PluginLoadError(
            f"plugin '{path}' was built for DataFusion {plugin_df}, but the installed "
            f"datafusion-python {host.python_package} is built on DataFusion {host.datafusion}; "
            "FFI struct layouts differ between majors (loading it would crash). Rebuild the plugin "
            f"with datafusion = \"={host.datafusion}\" and datafusion-ffi = \"={host.datafusion_ffi}\", "
            f"or install datafusion=={pm if pm is not None else '<plugin major>'}.*",
            kind="datafusion_mismatch",
            path=path,
        )
    plugin_ffi = str(manifest.get("datafusion_ffi"))
    if major_of(plugin_ffi) is None or major_of(plugin_ffi) != host.major:
        pm = major_of(plugin_ffi)
        raise PluginLoadError(
            f"plugin '{path}' was built for datafusion-ffi {plugin_ffi}, but the installed "
            f"datafusion-python {host.python_package} uses datafusion-ffi {host.datafusion_ffi}; "
            "the FFI structs differ between majors (loading it would crash). Rebuild the plugin "
            f"with datafusion-ffi = \"={host.datafusion_ffi}\", or install "
            f"datafusion=={pm if pm is not None else '<plugin major>'}.*",
            kind="datafusion_ffi_mismatch",
            path=path,
        )
    target = str(manifest.get("target", ""))
    t_arch, t_os = _target_arch_os(target)
    if (t_arch, t_os) != (_machine_arch(), _machine_os()):
        raise PluginLoadError(
            f"plugin '{path}' was built for target {target} ({t_arch}/{t_os}), but this machine is "
            f"{_machine_arch()}/{_machine_os()}. Rebuild the plugin on (or for) this machine: "
            f"cargo build --release --target <{_machine_arch()} {_machine_os()} triple>",
            kind="target_mismatch",
            path=path,
        )
    if t_os == "linux" and target.endswith("musl") and platform.libc_ver()[0] == "glibc":
        raise PluginLoadError(
            f"plugin '{path}' was built for {target} (musl), but this Python runs on glibc; "
            "rebuild the plugin for the -gnu target",
            kind="target_mismatch",
            path=path,
        )
    capabilities: List[str] = list(manifest.get("capabilities") or [])
    for cap in capabilities:
        if cap not in KNOWN_CAPABILITIES:
            raise PluginLoadError(
                f"plugin '{path}' declares capability '{cap}', which this host does not know "
                f"(it knows: {', '.join(KNOWN_CAPABILITIES)}). Upgrade dfplugin, or rebuild the "
                "plugin against this host's df_plugin_api",
                kind="unknown_capability",
                path=path,
            )
        since = CARRIED_SINCE_MINOR.get(cap)
        if since is None or since > minor:
            raise PluginLoadError(
                f"plugin '{path}' declares capability '{cap}', but its ABI {major}.{minor} has no way "
                f"to carry it ({'it needs ABI 1.' + str(since) if since is not None else 'no ABI carries it yet'}); "
                "the manifest is inconsistent. Fix the plugin's MANIFEST and rebuild it",
                kind="capability_not_carried",
                path=path,
            )
