//! Opening Delta tables, with errors that name the table and the value.

use chrono::{DateTime, Utc};
use datafusion::error::DataFusionError;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use df_plugin_api::{ErrorCode, PluginError};
use std::path::{Component, Path, PathBuf};
use url::Url;

use super::options::{DeltaTableOptions, TableVersion};
use super::storage;

/// A DataFusion error carrying a plugin error code.
pub fn delta_error(code: ErrorCode, message: impl Into<String>) -> DataFusionError {
    PluginError::new(code, message).into()
}

/// What opening a table location may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read (or write into) an existing table: nothing is created, a missing local directory
    /// is a `not_found` error.
    Existing,
    /// Create the table when missing (`CREATE EXTERNAL TABLE` with columns): a missing local
    /// directory is created.
    Create,
}

/// The local path `uri` names, or `None` for an object-store URL (`s3://`, ...).
fn local_path(uri: &str) -> Option<PathBuf> {
    match Url::parse(uri) {
        Ok(url) if url.scheme() == "file" => url.to_file_path().ok(),
        // One-letter schemes are Windows drive letters, not URLs.
        Ok(url) if url.scheme().len() > 1 => None,
        _ => Some(PathBuf::from(uri)),
    }
}

/// `path` made absolute, `.` and `..` resolved, and symbolic links resolved as far as the path
/// exists: the location a policy must judge, computed without touching the file system
/// beyond reading it.
pub fn normalized_local_path(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|cwd| cwd.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    let mut lexical = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other.as_os_str()),
        }
    }
    // The longest existing ancestor, with its links resolved, then the rest as written.
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = std::fs::canonicalize(&existing) {
            let mut out = canonical;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent().map(Path::to_path_buf)) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

/// The table URI as a URL: local paths become `file://` URLs (relative ones are resolved
/// against the working directory, links resolved). Only [`Access::Create`] creates a missing
/// local directory: reading a table never changes the file system.
pub fn table_url(uri: &str, access: Access) -> Result<Url, DataFusionError> {
    let invalid = |e: &dyn std::fmt::Display| {
        delta_error(ErrorCode::InvalidOptions, format!("delta table '{uri}': not a path or URL: {e}"))
    };
    if let Some(path) = local_path(uri) {
        let normalized = normalized_local_path(&path);
        if access == Access::Existing && !normalized.is_dir() {
            return Err(delta_error(
                ErrorCode::NotFound,
                format!(
                    "delta table '{uri}' does not exist: {} is not a directory (nothing was created; check the path, \
                     or create the table first)",
                    normalized.display()
                ),
            ));
        }
    }
    deltalake::ensure_table_uri(uri).map_err(|e| invalid(&e))
}

/// The location `uri` names, as the location policy compares it: a `file://` URL of the
/// normalized local path, or the URL without credentials, query or fragment; always ending
/// in `/` so that prefixes match whole path segments.
pub fn policy_location(uri: &str) -> Result<String, DataFusionError> {
    let mut url = match local_path(uri) {
        Some(path) => Url::from_file_path(normalized_local_path(&path)).map_err(|_| {
            delta_error(ErrorCode::InvalidOptions, format!("delta table '{uri}': not an absolute local path"))
        })?,
        None => Url::parse(uri)
            .map_err(|e| delta_error(ErrorCode::InvalidOptions, format!("delta table '{uri}': not a path or URL: {e}")))?,
    };
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    let mut text = url.to_string();
    if !text.ends_with('/') {
        text.push('/');
    }
    Ok(text)
}

/// Refuses `uri` unless it lies under one of `allowed` (`codeanatomy.policy.allowed_locations`;
/// empty allows every location). Paths are normalized first (`..`, links), so a prefix cannot
/// be left through them.
pub fn check_location(uri: &str, policies: &[Vec<String>]) -> Result<(), DataFusionError> {
    for allowed in policies {
        check_location_in(uri, allowed)?;
    }
    Ok(())
}

fn check_location_in(uri: &str, allowed: &[String]) -> Result<(), DataFusionError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let location = policy_location(uri)?;
    for prefix in allowed {
        if location.starts_with(&policy_location(prefix)?) {
            return Ok(());
        }
    }
    Err(delta_error(
        ErrorCode::PolicyViolation,
        format!(
            "delta table '{uri}' is outside the allowed locations (codeanatomy.policy.allowed_locations = {}); \
             it resolves to {location}. Use a table under an allowed prefix, or ask the session's owner to allow it",
            allowed.join(",")
        ),
    ))
}

/// Refuses data files that lie outside the table root: a relative path that climbs out of it
/// (`../../secret.parquet`) always, and an absolute URI elsewhere unless the table's options
/// allow external files (`codeanatomy.delta.allow_external_files`).
pub fn check_file_paths<'a>(
    uri: &str,
    root: &Url,
    paths: impl IntoIterator<Item = std::borrow::Cow<'a, str>>,
    allow_external_files: bool,
) -> Result<(), DataFusionError> {
    let root_text = root.as_str().trim_end_matches('/').to_string() + "/";
    for path in paths {
        // An invalid escape decodes to nothing: the path is then judged as written.
        let decoded = super::direct_scan::percent_decode(&path).unwrap_or_else(|| path.to_string());
        let escape = match Url::parse(&decoded) {
            Ok(url) if url.scheme().len() > 1 => {
                if allow_external_files || url.as_str().starts_with(&root_text) {
                    None
                } else {
                    Some("an absolute location outside the table root (set codeanatomy.delta.allow_external_files = true to read such files)")
                }
            }
            _ => {
                let mut depth: i64 = 0;
                let mut escapes = decoded.starts_with('/');
                for segment in decoded.split('/') {
                    match segment {
                        "" | "." => {}
                        ".." => depth -= 1,
                        _ => depth += 1,
                    }
                    escapes |= depth < 0;
                }
                escapes.then_some("a relative path that leaves the table root")
            }
        };
        if let Some(why) = escape {
            return Err(delta_error(
                ErrorCode::PolicyViolation,
                format!("delta table '{uri}': the log names data file '{path}', {why}; nothing was read"),
            ));
        }
    }
    Ok(())
}

/// Maps a deltalake error about `uri` to a coded error.
pub fn map_delta_error(uri: &str, err: DeltaTableError) -> DataFusionError {
    let text = err.to_string();
    let code = match &err {
        DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_) => ErrorCode::NotFound,
        DeltaTableError::ObjectStore { source } if matches!(source, object_store::Error::NotFound { .. }) => {
            ErrorCode::NotFound
        }
        DeltaTableError::InvalidVersion(_) => ErrorCode::NotFound,
        DeltaTableError::Transaction { .. } if text.contains("eature") => ErrorCode::Unsupported,
        _ if text.contains("Unsupported") || text.contains("unsupported") => ErrorCode::Unsupported,
        DeltaTableError::ObjectStore { .. } | DeltaTableError::Io { .. } => ErrorCode::Io,
        _ => ErrorCode::Execution,
    };
    let hint = if code == ErrorCode::NotFound && matches!(err, DeltaTableError::NotATable(_)) {
        " (no _delta_log with a commit there: check the path, or create the table first)"
    } else {
        ""
    };
    delta_error(code, format!("delta table '{uri}': {text}{hint}"))
}

/// Maps an error of a write to `table` (INSERT, DELETE, UPDATE). Rows rejected by the table's
/// rules become an `invalid_argument` error listing the table's CHECK constraints and NOT NULL
/// columns: deltalake's own message shows the rows but not the rule they broke.
pub fn map_write_error(table: &DeltaTable, uri: &str, err: DeltaTableError) -> DataFusionError {
    let text = err.to_string();
    if !text.contains("failed validation check") && !text.contains("Invariant violations") {
        return map_delta_error(uri, err);
    }
    let mut rules: Vec<String> = Vec::new();
    if let Ok(state) = table.snapshot() {
        let mut constraints: Vec<(&String, &String)> =
            state.metadata().configuration().iter().filter(|(k, _)| k.starts_with("delta.constraints.")).collect();
        constraints.sort();
        rules.extend(constraints.into_iter().map(|(k, v)| format!("CHECK {} ({v})", k.trim_start_matches("delta.constraints."))));
        let schema = state.schema();
        rules.extend(schema.fields().filter(|f| !f.is_nullable()).map(|f| format!("{} NOT NULL", f.name())));
    }
    let rules = if rules.is_empty() { "none found".to_string() } else { rules.join(", ") };
    delta_error(
        ErrorCode::InvalidArgument,
        format!("delta table '{uri}': rows violate the table's rules [{rules}]; nothing was written. {text}"),
    )
}

fn builder(options: &DeltaTableOptions, access: Access) -> Result<DeltaTableBuilder, DataFusionError> {
    storage::register_object_store_factories();
    // Judged before anything touches the location (a refused CREATE creates no directory).
    check_location(&options.table_uri, &options.allowed_locations)?;
    let url = table_url(&options.table_uri, access)?;
    Ok(DeltaTableBuilder::from_url(url)
        .map_err(|e| map_delta_error(&options.table_uri, e))?
        .with_storage_options(storage::normalize_storage_options(&options.storage_options)))
}

/// A table handle without loading its log; [`Access::Create`] creates a missing local
/// directory for a table about to be created.
pub fn uninitialized_table(options: &DeltaTableOptions, access: Access) -> Result<DeltaTable, DataFusionError> {
    builder(options, access)?.build().map_err(|e| map_delta_error(&options.table_uri, e))
}

/// Opens the table at the version `options` asks for. Async: run it on the plugin runtime.
pub async fn open_table(options: &DeltaTableOptions) -> Result<DeltaTable, DataFusionError> {
    let uri = options.table_uri.as_str();
    let mut table = uninitialized_table(options, Access::Existing)?;
    // Checked first: a plain listing, where a failed load would also log a kernel error.
    if !table.verify_deltatable_existence().await.map_err(|e| map_delta_error(uri, e))? {
        return Err(delta_error(
            ErrorCode::NotFound,
            format!("delta table '{uri}' does not exist: no commit in '{uri}/_delta_log' (check the path, or create the table first)"),
        ));
    }
    table.load().await.map_err(|e| map_delta_error(uri, e))?;
    match &options.version {
        TableVersion::Latest => {}
        TableVersion::Version(v) => {
            let latest = table.version().unwrap_or(0);
            if *v as i64 > latest as i64 {
                return Err(delta_error(
                    ErrorCode::NotFound,
                    format!("delta table '{uri}' has no version {v}: the latest version is {latest}"),
                ));
            }
            table.load_version(*v as _).await.map_err(|e| {
                let text = e.to_string();
                delta_error(
                    ErrorCode::NotFound,
                    format!("delta table '{uri}': version {v} cannot be loaded (its log entries may have been cleaned up): {text}"),
                )
            })?;
        }
        TableVersion::Timestamp(ts) => load_at(&mut table, uri, *ts).await?,
    }
    tracing::debug!(target: "codeanatomy::delta", table = uri, version = ?table.version(), "delta table opened");
    Ok(table)
}

/// Rows a Parquet file can hold per byte at the very most: every data page has a header of
/// more than 8 bytes and holds fewer than 2^31 values. A log whose statistics claim more is
/// damaged or hostile, and believing it would make a `count(*)` generate that many rows.
const MAX_ROWS_PER_BYTE: u64 = 1 << 28;

/// [`check_file_paths`] over the active files of the table's loaded snapshot, and their row
/// counts checked against their sizes ([`MAX_ROWS_PER_BYTE`]).
pub fn check_snapshot_files(options: &DeltaTableOptions, table: &DeltaTable) -> Result<(), DataFusionError> {
    let uri = &options.table_uri;
    let state = table.snapshot().map_err(|e| map_delta_error(uri, e))?;
    let mut paths = Vec::new();
    for file in state.log_data().iter() {
        let size = u64::try_from(file.size()).unwrap_or(0);
        if let Some(rows) = file.num_records() {
            if rows as u64 > size.max(1).saturating_mul(MAX_ROWS_PER_BYTE) {
                return Err(delta_error(
                    ErrorCode::CorruptData,
                    format!(
                        "delta table '{uri}': the log says data file '{}' ({size} bytes) holds {rows} rows, more than a \
                         Parquet file of that size can; the log's statistics are damaged, so nothing was read",
                        file.path()
                    ),
                ));
            }
        }
        paths.push(std::borrow::Cow::Owned(file.path().into_owned()));
    }
    check_file_paths(uri, table.table_url(), paths, options.allow_external_files)
}

/// Adds the table and a code to an error deltalake or DataFusion raised while reading it
/// (errors that already carry a code are kept as they are).
pub fn in_table(uri: &str, err: DataFusionError) -> DataFusionError {
    let text = err.to_string();
    if ErrorCode::find_in(&text).is_some() {
        return err;
    }
    let lower = text.to_ascii_lowercase();
    let (code, hint) = if lower.contains("change data enabled") || lower.contains("change data not enabled") {
        (
            ErrorCode::InvalidArgument,
            " (the change data feed must be on, with delta.enableChangeDataFeed = true, for every version in the range)",
        )
    } else if lower.contains("invalid table version") || lower.contains("missing file") || lower.contains("not found") {
        (ErrorCode::NotFound, "")
    } else if lower.contains("no such file") || lower.contains("failed to fetch metadata") || lower.contains("object store") {
        (ErrorCode::Io, " (a data file the log refers to cannot be read: was it removed or vacuumed?)")
    } else if lower.contains("unsupported") {
        (ErrorCode::Unsupported, "")
    } else {
        (ErrorCode::Execution, "")
    };
    delta_error(code, format!("delta table '{uri}': {text}{hint}"))
}

async fn load_at(table: &mut DeltaTable, uri: &str, ts: DateTime<Utc>) -> Result<(), DataFusionError> {
    let loaded = table.load_with_datetime(ts).await;
    // deltalake falls back to the first version for an instant before it: that is no version.
    if loaded.is_ok() {
        let state = table.snapshot().map_err(|e| map_delta_error(uri, e))?;
        if let Some(committed) = state.version_timestamp(state.version()) {
            if committed > ts.timestamp_millis() {
                let first = DateTime::<Utc>::from_timestamp_millis(committed).map(|t| t.to_rfc3339()).unwrap_or_default();
                return Err(delta_error(
                    ErrorCode::NotFound,
                    format!(
                        "delta table '{uri}' has no version committed at or before {}: its first version ({}) was committed at {first}",
                        ts.to_rfc3339(),
                        state.version()
                    ),
                ));
            }
        }
    }
    loaded.map_err(|e| {
        let text = e.to_string();
        delta_error(
            ErrorCode::NotFound,
            format!(
                "delta table '{uri}' has no version committed at or before {} (is the timestamp before the table's \
                 first commit?): {text}",
                ts.to_rfc3339()
            ),
        )
    })
}
