//! Aggregate functions.
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::logical_expr::AggregateUDF;

pub mod collect_set;
pub mod count_if;
pub mod extreme;

pub(crate) const SECTION: &str = "CodeAnatomy: aggregates";

/// Types the aggregates can order: whatever Arrow's row format encodes. Dictionaries are
/// compared by their values, so they are unwrapped (DataFusion casts them).
pub(crate) fn orderable(t: &DataType) -> Option<DataType> {
    let t = match t {
        DataType::Dictionary(_, value) => value.as_ref(),
        other => other,
    };
    RowConverter::supports_fields(&[SortField::new(t.clone())]).then(|| t.clone())
}

/// Every aggregate function of the pack.
pub fn aggregate_udfs() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::from(collect_set::CollectSet::default())),
        Arc::new(AggregateUDF::from(count_if::CountIf::default())),
        Arc::new(AggregateUDF::from(extreme::PickAggregate::arg_max())),
        Arc::new(AggregateUDF::from(extreme::PickAggregate::arg_min())),
        Arc::new(AggregateUDF::from(extreme::PickAggregate::any_value_det())),
        Arc::new(AggregateUDF::from(extreme::PickAggregate::asof_select())),
    ]
}
