//! `codeanatomy_scan_guard`: a physical optimizer rule that bounds what plugin table scans may
//! read (`codeanatomy.scan_guard.*`). It crosses the boundary as an `FFI_PhysicalOptimizerRule`,
//! so it also works in hosts that only speak datafusion-ffi (datafusion-python).
//!
//! Until the pack exports scans of its own, every plan passes unchanged; the rule still
//! validates the namespace so a bad `codeanatomy.*` setting is reported at planning time.

use std::sync::Arc;

use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use crate::config::CodeAnatomyConfig;

pub const NAME: &str = "codeanatomy_scan_guard";

#[derive(Debug, Default)]
pub struct ScanGuard;

impl PhysicalOptimizerRule for ScanGuard {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        let settings = CodeAnatomyConfig::from_config_options(config)?;
        tracing::debug!(
            target: "codeanatomy::scan_guard",
            max_files = settings.scan_guard_max_files,
            require_partition_filter = settings.scan_guard_require_partition_filter,
            "scan guard applied"
        );
        Ok(plan)
    }

    fn name(&self) -> &str {
        NAME
    }

    fn schema_check(&self) -> bool {
        true
    }
}
