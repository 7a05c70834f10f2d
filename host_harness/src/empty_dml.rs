//! `DELETE … WHERE false` deletes nothing.
//!
//! DataFusion's optimizer folds a predicate that can never hold into an empty input, and its
//! physical planner then hands the table provider `delete_from(filters = [])`: the same call as
//! `DELETE FROM t` without WHERE. A provider cannot tell the two apart, so a statement meant
//! to touch no row would delete every row (or, with the full-table guard on, be refused).
//! This rule runs after DataFusion's own and answers a DELETE or UPDATE whose input is proven
//! empty with a zero count, so the provider is never asked.

use datafusion::common::tree_node::Transformed;
use datafusion::common::Result;
use datafusion::logical_expr::WriteOp;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// Replaces DML over a provably empty input with `SELECT 0 AS count`.
#[derive(Debug, Default)]
pub struct EmptyDmlRule;

/// The rule's name in `EXPLAIN VERBOSE`.
pub const EMPTY_DML_RULE: &str = "dfplugin_empty_dml";

impl OptimizerRule for EmptyDmlRule {
    fn name(&self) -> &str {
        EMPTY_DML_RULE
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Dml(dml) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if !matches!(dml.op, WriteOp::Delete | WriteOp::Update)
            || !df_plugin_api::dml::provably_empty_dml_input(&dml.input)
        {
            return Ok(Transformed::no(plan));
        }
        tracing::debug!(table = %dml.table_name, op = %dml.op, "DML over a provably empty input: nothing to change");
        Ok(Transformed::yes(df_plugin_api::dml::nothing_changed_plan()?))
    }
}
