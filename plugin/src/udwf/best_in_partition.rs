//! `best_in_partition(score, tiebreak)`: flags the single best row of each window partition.
//!
//! Used to keep one candidate per entity (e.g. the best-aligned span per symbol) with a plain
//! `WHERE flag` instead of `ROW_NUMBER() ... = 1`, whose pick among ties depends on input
//! order. Ordering: score descending, then tiebreak ascending, NULLs last in both; if rows are
//! still tied (equal score and tiebreak) the first of them in partition order is flagged, so
//! exactly one row per partition is true.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    Documentation, PartitionEvaluator, Signature, Volatility, WindowUDFImpl,
};

use crate::udaf::orderable;
use crate::udf::args::{build_doc, internal, plan_error};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BestInPartition {
    signature: Signature,
}

impl Default for BestInPartition {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static BEST_IN_PARTITION_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        "CodeAnatomy: window",
        "True for exactly one row per window partition: the highest score, ties broken by the \
         smallest tiebreak (NULL scores and tiebreaks rank last; rows tied on both keep the \
         first in partition order, so make (score, tiebreak) unique for a fully deterministic \
         result). Ignores the window's ORDER BY and frame.",
        "best_in_partition(score: any orderable, tiebreak: any orderable) -> Boolean",
        "SELECT g, id, best_in_partition(score, id) OVER (PARTITION BY g) AS best FROM (VALUES (1, 10, 0.5), (1, 11, 0.9), (1, 12, 0.9), (2, 20, 0.1)) AS t(g, id, score) ORDER BY g, id",
        &[
            ("score", "Higher is better."),
            ("tiebreak", "Among equal scores the smallest wins (e.g. an id)."),
        ],
    )
});

impl WindowUDFImpl for BestInPartition {
    fn name(&self) -> &str {
        "best_in_partition"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let expected = "(score of an orderable type, tiebreak of an orderable type)";
        let err = || plan_error(self.name(), expected, arg_types);
        match arg_types {
            [score, tiebreak] => Ok(vec![orderable(score).ok_or_else(err)?, orderable(tiebreak).ok_or_else(err)?]),
            _ => Err(err()),
        }
    }
    fn partition_evaluator(&self, args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        let types: Vec<DataType> = args.input_fields().iter().map(|f| f.data_type().clone()).collect();
        let [score, tiebreak] = types.as_slice() else {
            return Err(internal(self.name(), "expected two arguments"));
        };
        let converter = RowConverter::new(vec![
            SortField::new_with_options(score.clone(), SortOptions { descending: true, nulls_first: false }),
            SortField::new_with_options(tiebreak.clone(), SortOptions { descending: false, nulls_first: false }),
        ])?;
        Ok(Box::new(BestEvaluator { converter }))
    }
    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(field_args.name(), DataType::Boolean, false)))
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&BEST_IN_PARTITION_DOC)
    }
}

#[derive(Debug)]
struct BestEvaluator {
    converter: RowConverter,
}

impl PartitionEvaluator for BestEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let rows = self.converter.convert_columns(values)?;
        // `min_by` returns the first of equal elements, which is the documented final tiebreak.
        let best = (0..rows.num_rows()).min_by(|&a, &b| rows.row(a).cmp(&rows.row(b)));
        Ok(Arc::new((0..num_rows).map(|row| Some(Some(row) == best)).collect::<BooleanArray>()))
    }
}
