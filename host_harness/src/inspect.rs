//! Reading a plugin's embedded manifest from the file, without loading or running it.

use std::fs::File;
use std::path::Path;

use df_plugin_api::manifest::{decode_embedded, Manifest, EMBEDDED_SECTION};
use object::read::ReadCache;
use object::{Object, ObjectSection};

use crate::error::HostError;

/// Section name as `object` reports it for each container format.
fn is_manifest_section(name: &str) -> bool {
    // ELF/PE: ".dfplugin_manifest" (PE truncates long names to 8 bytes: ".dfplugi").
    // Mach-O: section "__dfplugin" in segment "__DATA".
    name == EMBEDDED_SECTION || name == "__dfplugin" || (name.len() == 8 && EMBEDDED_SECTION.starts_with(name))
}

/// Checks the file exists and can be opened for reading.
pub(crate) fn check_readable(path: &Path) -> Result<File, HostError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HostError::NotFound { path: path.to_path_buf() })
        }
        Err(e) => return Err(HostError::Unreadable { path: path.to_path_buf(), reason: e.to_string() }),
        Ok(meta) if !meta.is_file() => {
            use std::os::unix::fs::FileTypeExt;
            let kind = meta.file_type();
            let what = if kind.is_dir() {
                "a directory"
            } else if kind.is_fifo() {
                "a FIFO (named pipe)"
            } else if kind.is_socket() {
                "a socket"
            } else if kind.is_block_device() || kind.is_char_device() {
                "a device"
            } else {
                "not a regular file"
            };
            return Err(HostError::Unreadable {
                path: path.to_path_buf(),
                reason: format!("it is {what}; a plugin must be a regular shared-library file (.so)"),
            });
        }
        Ok(_) => {}
    }
    File::open(path).map_err(|e| HostError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })
}

/// The manifest embedded in the library at `path`. Reads only the headers and the manifest
/// section; the dynamic loader is never involved.
pub fn read_embedded_manifest(path: &Path) -> Result<Manifest, HostError> {
    let span = tracing::debug_span!("read_embedded_manifest", path = %path.display());
    let _enter = span.enter();
    let file = check_readable(path)?;
    let cache = ReadCache::new(file);
    let object = object::File::parse(&cache)
        .map_err(|e| HostError::NotALibrary { path: path.to_path_buf(), reason: e.to_string() })?;
    let section = object
        .sections()
        .find(|s| s.name().map(is_manifest_section).unwrap_or(false))
        .ok_or_else(|| HostError::NoEmbeddedManifest { path: path.to_path_buf() })?;
    let bytes = section
        .data()
        .map_err(|e| HostError::NotALibrary { path: path.to_path_buf(), reason: format!("manifest section unreadable: {e}") })?;
    let manifest = decode_embedded(bytes)
        .map_err(|e| HostError::MalformedManifest { path: path.to_path_buf(), reason: e.to_string() })?;
    tracing::debug!(plugin = %manifest.plugin.name, abi = %manifest.abi, "embedded manifest read");
    Ok(manifest)
}
