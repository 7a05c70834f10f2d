//! Scalar functions.
use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

pub(crate) mod args;
pub mod cdf;
pub mod collections;
pub mod hash;
pub mod position;
pub mod span;
pub mod text;

/// Every scalar function of the pack.
pub fn scalar_udfs() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(hash::StableHash64::default())),
        Arc::new(ScalarUDF::from(hash::StableHash128::default())),
        Arc::new(ScalarUDF::from(hash::StableId::default())),
        Arc::new(ScalarUDF::from(span::SpanMake::default())),
        Arc::new(ScalarUDF::from(span::SpanFunction::len())),
        Arc::new(ScalarUDF::from(span::SpanFunction::overlaps())),
        Arc::new(ScalarUDF::from(span::SpanFunction::contains())),
        Arc::new(ScalarUDF::from(span::SpanId::default())),
        Arc::new(ScalarUDF::from(position::PositionFunction::col_to_byte())),
        Arc::new(ScalarUDF::from(position::PositionFunction::byte_to_line_col())),
        Arc::new(ScalarUDF::from(position::PositionFunction::line_col_to_byte())),
        Arc::new(ScalarUDF::from(position::PositionFunction::canonicalize_byte_span())),
        Arc::new(ScalarUDF::from(position::PositionFunction::interval_align_score())),
        Arc::new(ScalarUDF::from(text::Utf8Normalize::default())),
        Arc::new(ScalarUDF::from(text::Utf8NullIfBlank::default())),
        Arc::new(ScalarUDF::from(text::QnameNormalize::default())),
        Arc::new(ScalarUDF::from(collections::MapGetDefault::default())),
        Arc::new(ScalarUDF::from(collections::MapNormalize::default())),
        Arc::new(ScalarUDF::from(collections::ListFunction::drop_nulls())),
        Arc::new(ScalarUDF::from(collections::ListFunction::unique_sorted())),
        Arc::new(ScalarUDF::from(collections::StructPick::default())),
        Arc::new(ScalarUDF::from(cdf::CdfFunction::change_rank())),
        Arc::new(ScalarUDF::from(cdf::CdfFunction::is_upsert())),
        Arc::new(ScalarUDF::from(cdf::CdfFunction::is_delete())),
    ]
}
