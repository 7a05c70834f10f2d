//! Window functions.
use std::sync::Arc;

use datafusion::logical_expr::WindowUDF;

pub mod best_in_partition;

/// Every window function of the pack.
pub fn window_udfs() -> Vec<Arc<WindowUDF>> {
    vec![Arc::new(WindowUDF::from(best_in_partition::BestInPartition::default()))]
}
