//! `codeanatomy_delta_time_travel`: a relation planner for Delta time travel in SQL.
//!
//! `SELECT … FROM t VERSION AS OF 3` and `FROM t TIMESTAMP AS OF '2026-01-01 00:00:00'`
//! (sqlparser parses them with `SET datafusion.sql_parser.dialect = 'databricks'`) on a Delta
//! table registered through this plugin read that snapshot: the same provider, options and
//! errors as `delta_scan(uri, 3)`. Relations that are not this plugin's Delta tables are left
//! to DataFusion.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::config::ConfigOptions;
use df_plugin_api::relation_planner::{PluginRelationPlanner, RelationDescription};
use df_plugin_api::{ErrorCode, PluginError};

use super::options::{parse_timestamp, parse_version, DeltaTableOptions, TableVersion};
use super::provider::DeltaProvider;

pub const NAME: &str = "codeanatomy_delta_time_travel";

#[derive(Debug, Default)]
pub struct DeltaTimeTravel;

fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl PluginRelationPlanner for DeltaTimeTravel {
    fn name(&self) -> &str {
        NAME
    }

    fn plan_relation(
        &self,
        relation: &RelationDescription,
        table: Option<Arc<dyn TableProvider>>,
        _config: &ConfigOptions,
    ) -> Result<Option<Arc<dyn TableProvider>>, PluginError> {
        let (Some(version), Some(table)) = (&relation.version, table) else { return Ok(None) };
        let Some(delta) = table.downcast_ref::<DeltaProvider>() else { return Ok(None) };
        let base = delta.options();
        let uri = &base.table_uri;
        let text = value_text(&version.value);
        let pinned = match version.clause.as_str() {
            "VERSION AS OF" => TableVersion::Version(parse_version(uri, &text)?),
            "TIMESTAMP AS OF" | "FOR SYSTEM_TIME AS OF" => TableVersion::Timestamp(parse_timestamp(uri, &text)?),
            other => {
                return Err(PluginError::new(
                    ErrorCode::Unsupported,
                    format!("delta table '{}': {other} is not supported; use VERSION AS OF <n> or TIMESTAMP AS OF '<timestamp>'", relation.table),
                ))
            }
        };
        let _span = tracing::info_span!(target: "codeanatomy::delta", "time_travel", table = %relation.table, version = %pinned).entered();
        // Same storage options and scan options; only the snapshot changes. Pinned files
        // belong to the registered snapshot, so they do not carry over.
        // One table at several versions is scanned under one name: the version must show in
        // the schema, or the scans compare equal (see DeltaTableOptions::identify_source).
        let options = DeltaTableOptions { version: pinned, files: None, identify_source: true, ..base.clone() };
        let provider = DeltaProvider::open(options).map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Execution))?;
        Ok(Some(Arc::new(provider)))
    }
}
