//! `collect_set(value)`: the sorted distinct non-NULL values of a group.
//!
//! Values are kept as Arrow row-format bytes in an ordered map, which gives sorting and
//! de-duplication for any orderable type at once, and a count per value so sliding window
//! frames can retract rows.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, ReversedUDAF, Signature, Volatility,
};

use crate::udf::args::{build_doc, internal, plan_error};

use super::{orderable, SECTION};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CollectSet {
    signature: Signature,
}

impl Default for CollectSet {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static COLLECT_SET_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "The distinct non-NULL values of the group as a list sorted ascending (Arrow row-format \
         order: numbers numerically with floats by total order, strings by bytes, nested values \
         lexicographically). An empty list when the group has no non-NULL value.",
        "collect_set(value: any orderable) -> List(type of value)",
        "SELECT collect_set(x) AS xs FROM (VALUES (3), (1), (3), (NULL), (2)) AS t(x)",
        &[("value", "The values to collect.")],
    )
});

fn list_type(value: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(value.clone(), true)))
}

impl AggregateUDFImpl for CollectSet {
    fn name(&self) -> &str {
        "collect_set"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let expected = "(value of an orderable type)";
        match arg_types {
            [t] => Ok(vec![orderable(t).ok_or_else(|| plan_error(self.name(), expected, arg_types))?]),
            _ => Err(plan_error(self.name(), expected, arg_types)),
        }
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        arg_types.first().map(list_type).ok_or_else(|| internal(self.name(), "called without arguments"))
    }
    fn is_nullable(&self) -> bool {
        false
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let value = args
            .input_fields
            .first()
            .ok_or_else(|| internal(self.name(), "called without arguments"))?;
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "collect_set"),
            list_type(value.data_type()),
            true,
        ))])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let value = args
            .expr_fields
            .first()
            .ok_or_else(|| internal(self.name(), "called without arguments"))?;
        Ok(Box::new(CollectSetAccumulator::try_new(value.data_type())?))
    }
    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        match data_type {
            DataType::List(field) => Ok(SingleRowListArrayBuilder::new(datafusion::arrow::array::new_empty_array(field.data_type()))
                .with_nullable(true)
                .build_list_scalar()),
            other => ScalarValue::try_from(other),
        }
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&COLLECT_SET_DOC)
    }
}

#[derive(Debug)]
struct CollectSetAccumulator {
    converter: RowConverter,
    /// Encoded value -> number of live rows holding it (counts matter only for retraction).
    counts: BTreeMap<Vec<u8>, usize>,
    bytes: usize,
}

impl CollectSetAccumulator {
    fn try_new(data_type: &DataType) -> Result<Self> {
        Ok(Self {
            converter: RowConverter::new(vec![SortField::new(data_type.clone())])?,
            counts: BTreeMap::new(),
            bytes: 0,
        })
    }

    /// Adds (or, when `retract`, removes) every non-NULL value of `values` in `range`.
    fn apply(&mut self, values: &ArrayRef, range: std::ops::Range<usize>, retract: bool) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let encoded = self.converter.convert_columns(&[values.slice(range.start, range.len())])?;
        let nulls = values.logical_nulls();
        for (i, row) in encoded.iter().enumerate() {
            if nulls.as_ref().is_some_and(|n| n.is_null(range.start + i)) {
                continue;
            }
            let bytes = row.as_ref();
            if retract {
                if let Some(count) = self.counts.get_mut(bytes) {
                    *count -= 1;
                    if *count == 0 {
                        self.counts.remove(bytes);
                        self.bytes -= bytes.len();
                    }
                }
            } else if let Some(count) = self.counts.get_mut(bytes) {
                *count += 1;
            } else {
                self.bytes += bytes.len();
                self.counts.insert(bytes.to_vec(), 1);
            }
        }
        Ok(())
    }

    fn as_list(&self) -> Result<ScalarValue> {
        let parser = self.converter.parser();
        let mut columns = self.converter.convert_rows(self.counts.keys().map(|bytes| parser.parse(bytes)))?;
        let values = columns.pop().ok_or_else(|| internal("collect_set", "row decoding produced no column"))?;
        Ok(SingleRowListArrayBuilder::new(values).with_nullable(true).build_list_scalar())
    }
}

fn first(values: &[ArrayRef]) -> Result<&ArrayRef> {
    values.first().ok_or_else(|| internal("collect_set", "expected one argument"))
}

impl Accumulator for CollectSetAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = first(values)?;
        self.apply(values, 0..values.len(), false)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = first(values)?;
        self.apply(values, 0..values.len(), true)
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = first(states)?
            .as_list_opt::<i32>()
            .ok_or_else(|| internal("collect_set", "state is not a list"))?;
        let offsets = lists.value_offsets();
        for row in 0..lists.len() {
            if lists.is_valid(row) {
                let range = offsets[row] as usize..offsets[row + 1] as usize;
                self.apply(lists.values(), range, false)?;
            }
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.as_list()?])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.as_list()
    }
    fn size(&self) -> usize {
        size_of_val(self) + self.bytes + self.counts.len() * (size_of::<Vec<u8>>() + size_of::<usize>()) + self.converter.size()
    }
}
