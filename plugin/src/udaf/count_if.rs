//! `count_if(condition)`: the number of rows where the condition is true.
//!
//! Grouped aggregation is the common use (`GROUP BY file`), so the groups accumulator
//! counts straight from bitmaps: it ANDs value, validity and filter bits once per batch and
//! visits only the set bits.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF,
    Signature, Volatility,
};

use crate::udf::args::{bool_arg, build_doc, coerce_positional, internal, Coercer};

use super::SECTION;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CountIf {
    signature: Signature,
}

impl Default for CountIf {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static COUNT_IF_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Number of rows whose condition is true (false and NULL are not counted). Never NULL: \
         0 for an empty group.",
        "count_if(condition: Boolean) -> Int64",
        "SELECT count_if(x > 1) AS n FROM (VALUES (1), (2), (3), (NULL)) AS t(x)",
        &[("condition", "A boolean expression.")],
    )
});

impl AggregateUDFImpl for CountIf {
    fn name(&self) -> &str {
        "count_if"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const COERCERS: [Coercer; 1] = [bool_arg];
        coerce_positional(self.name(), "(condition boolean)", arg_types, 1, &COERCERS)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn is_nullable(&self) -> bool {
        false
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format_state_name(args.name, "count"), DataType::Int64, false))])
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CountIfAccumulator::default()))
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(CountIfGroups::default()))
    }
    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&COUNT_IF_DOC)
    }
}

/// Rows that are true, valid, and pass the FILTER clause.
fn counted_rows(values: &BooleanArray, filter: Option<&BooleanArray>) -> BooleanBuffer {
    let mut bits = values.values().clone();
    if let Some(nulls) = values.nulls() {
        bits = &bits & nulls.inner();
    }
    if let Some(filter) = filter {
        bits = &bits & filter.values();
        if let Some(nulls) = filter.nulls() {
            bits = &bits & nulls.inner();
        }
    }
    bits
}

fn as_boolean<'a>(values: &'a [ArrayRef]) -> Result<&'a BooleanArray> {
    values
        .first()
        .and_then(|a| a.as_boolean_opt())
        .ok_or_else(|| internal("count_if", "expected one Boolean argument"))
}

fn as_counts<'a>(states: &'a [ArrayRef]) -> Result<&'a Int64Array> {
    states
        .first()
        .and_then(|a| a.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| internal("count_if", "expected an Int64 state"))
}

#[derive(Debug, Default)]
struct CountIfAccumulator {
    count: i64,
}

impl Accumulator for CountIfAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.count += as_boolean(values)?.true_count() as i64;
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.count -= as_boolean(values)?.true_count() as i64;
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.count += as_counts(states)?.iter().flatten().sum::<i64>();
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.count))])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.count)))
    }
    fn size(&self) -> usize {
        size_of_val(self)
    }
}

#[derive(Debug, Default)]
struct CountIfGroups {
    counts: Vec<i64>,
}

impl GroupsAccumulator for CountIfGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.counts.resize(total_num_groups, 0);
        let values = as_boolean(values)?;
        for row in counted_rows(values, opt_filter).set_indices() {
            if let Some(count) = group_indices.get(row).and_then(|&g| self.counts.get_mut(g)) {
                *count += 1;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.counts.resize(total_num_groups, 0);
        let partial = as_counts(values)?;
        for (row, &group) in group_indices.iter().enumerate() {
            if partial.is_valid(row) {
                if let Some(count) = self.counts.get_mut(group) {
                    *count += partial.value(row);
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(Arc::new(Int64Array::from(emit_to.take_needed(&mut self.counts))))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let bits = counted_rows(as_boolean(values)?, opt_filter);
        Ok(vec![Arc::new(bits.iter().map(i64::from).collect::<Int64Array>())])
    }

    fn size(&self) -> usize {
        self.counts.capacity() * size_of::<i64>()
    }
}
