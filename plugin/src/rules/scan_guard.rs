//! `codeanatomy_scan_guard`: a physical optimizer rule that bounds what the pack's Delta scans
//! may read (`codeanatomy.scan_guard.*`). It crosses the boundary as an
//! `FFI_PhysicalOptimizerRule`, so it also works in hosts that only speak datafusion-ffi
//! (datafusion-python).
//!
//! The plan a host hands it is made of opaque proxies, except the nodes this plugin created:
//! those come back as the original [`DeltaTableExec`], whose summary says how many files the
//! scan reads after pruning and whether a partition column was filtered. As a fallback for a
//! host that re-wraps them, the node's name carries the same summary.

use std::sync::Arc;

use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use df_plugin_api::error::df_error;
use df_plugin_api::ErrorCode;

use crate::config::CodeAnatomyConfig;
use crate::delta::exec::DeltaTableExec;

pub const NAME: &str = "codeanatomy_scan_guard";

#[derive(Debug, Default)]
pub struct ScanGuard;

/// What the guard needs to know about one Delta scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardedScan {
    pub table: String,
    pub files: usize,
    pub partitioned: bool,
    pub partition_filter: bool,
}

/// Reads a scan from a `DeltaTableExec` label (`DeltaTableExec: table=…, files=x/y, …`).
fn from_label(name: &str) -> Option<GuardedScan> {
    let rest = name.strip_prefix("DeltaTableExec: ")?;
    let field = |key: &str| {
        let start = rest.find(&format!("{key}="))? + key.len() + 1;
        let tail = &rest[start..];
        let end = if tail.starts_with('[') { tail.find(']').map(|i| i + 1) } else { tail.find(", ") };
        Some(end.map_or(tail, |e| &tail[..e]).to_string())
    };
    // The table URI may contain ", ": take it as everything before ", version=".
    let table = rest.strip_prefix("table=")?.split(", version=").next()?.to_string();
    let files = field("files")?.split('/').next()?.parse().ok()?;
    let columns = field("partition_columns")?;
    Some(GuardedScan {
        table,
        files,
        partitioned: columns != "[]",
        partition_filter: field("partition_filter")? == "true",
    })
}

fn scans(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<GuardedScan>) {
    if let Some(exec) = plan.downcast_ref::<DeltaTableExec>() {
        let s = exec.summary();
        out.push(GuardedScan {
            table: s.table.clone(),
            files: s.files_scanned,
            partitioned: !s.partition_columns.is_empty(),
            partition_filter: s.partition_filter,
        });
        return;
    }
    if let Some(scan) = from_label(plan.name()) {
        out.push(scan);
        return;
    }
    for child in plan.children() {
        scans(child, out);
    }
}

/// Whether the guard can reject a plan under `config`: only once a limit is set. Settings that
/// do not parse count as active, so the rule itself reports them.
pub fn active(config: &ConfigOptions) -> bool {
    CodeAnatomyConfig::from_config_options(config)
        .map_or(true, |s| s.scan_guard_max_files > 0 || s.scan_guard_require_partition_filter)
}

impl PhysicalOptimizerRule for ScanGuard {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        let settings = CodeAnatomyConfig::from_config_options(config)?;
        let (max_files, require_partition_filter) =
            (settings.scan_guard_max_files, settings.scan_guard_require_partition_filter);
        if max_files == 0 && !require_partition_filter {
            return Ok(plan);
        }
        let mut found = Vec::new();
        scans(&plan, &mut found);
        tracing::debug!(target: "codeanatomy::scan_guard", scans = found.len(), max_files, require_partition_filter, "scan guard applied");
        for scan in &found {
            if max_files > 0 && scan.files as u64 > max_files {
                tracing::warn!(target: "codeanatomy::scan_guard", table = %scan.table, files = scan.files, max_files, "scan denied");
                return Err(df_error(
                    ErrorCode::PolicyViolation,
                    format!(
                        "scan guard: delta table '{}' would read {} files after pruning, more than \
                         codeanatomy.scan_guard.max_files = {max_files}; add a filter on its partition or \
                         statistics columns, or raise the limit",
                        scan.table, scan.files
                    ),
                ));
            }
            if require_partition_filter && scan.partitioned && !scan.partition_filter {
                tracing::warn!(target: "codeanatomy::scan_guard", table = %scan.table, "scan without partition filter denied");
                return Err(df_error(
                    ErrorCode::PolicyViolation,
                    format!(
                        "scan guard: delta table '{}' is partitioned and the query has no predicate on a partition \
                         column ({} files would be read); add one, or SET codeanatomy.scan_guard.require_partition_filter = false",
                        scan.table, scan.files
                    ),
                ));
            }
        }
        Ok(plan)
    }

    fn name(&self) -> &str {
        NAME
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_round_trip() {
        let scan = from_label(
            "DeltaTableExec: table=/tmp/a, b, version=3, files=2/9, pruned=7, partition_columns=[part,day], partition_filter=true",
        )
        .unwrap();
        assert_eq!(scan, GuardedScan { table: "/tmp/a, b".into(), files: 2, partitioned: true, partition_filter: true });
        let scan = from_label("DeltaTableExec: table=t, version=0, files=1/1, pruned=0, partition_columns=[], partition_filter=false").unwrap();
        assert!(!scan.partitioned);
        assert!(from_label("ProjectionExec: expr=[a]").is_none());
    }
}
