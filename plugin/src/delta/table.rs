//! Opening Delta tables, with errors that name the table and the value.

use chrono::{DateTime, Utc};
use datafusion::error::DataFusionError;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use df_plugin_api::{ErrorCode, PluginError};
use url::Url;

use super::options::{DeltaTableOptions, TableVersion};
use super::storage;

/// A DataFusion error carrying a plugin error code.
pub fn delta_error(code: ErrorCode, message: impl Into<String>) -> DataFusionError {
    PluginError::new(code, message).into()
}

/// The table URI as a URL: local paths become `file://` URLs (relative ones are resolved
/// against the working directory).
pub fn table_url(uri: &str) -> Result<Url, DataFusionError> {
    deltalake::ensure_table_uri(uri).map_err(|e| {
        delta_error(ErrorCode::InvalidOptions, format!("delta table '{uri}': not a path or URL: {e}"))
    })
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

fn builder(options: &DeltaTableOptions) -> Result<DeltaTableBuilder, DataFusionError> {
    storage::register_object_store_factories();
    let url = table_url(&options.table_uri)?;
    Ok(DeltaTableBuilder::from_url(url)
        .map_err(|e| map_delta_error(&options.table_uri, e))?
        .with_storage_options(storage::normalize_storage_options(&options.storage_options)))
}

/// A table handle without loading its log (for creating tables).
pub fn uninitialized_table(options: &DeltaTableOptions) -> Result<DeltaTable, DataFusionError> {
    builder(options)?.build().map_err(|e| map_delta_error(&options.table_uri, e))
}

/// Opens the table at the version `options` asks for. Async: run it on the plugin runtime.
pub async fn open_table(options: &DeltaTableOptions) -> Result<DeltaTable, DataFusionError> {
    let uri = options.table_uri.as_str();
    let mut table = uninitialized_table(options)?;
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
