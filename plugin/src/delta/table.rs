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

async fn load_at(table: &mut DeltaTable, uri: &str, ts: DateTime<Utc>) -> Result<(), DataFusionError> {
    table.load_with_datetime(ts).await.map_err(|e| {
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
