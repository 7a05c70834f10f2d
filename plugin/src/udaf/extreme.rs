//! Deterministic "pick one row" aggregates: `arg_max`, `arg_min`, `any_value_det`,
//! `asof_select`.
//!
//! All four choose, per group, the row with the smallest (key, value) pair under a key order
//! (descending for `arg_max`/`asof_select`) and ascending value order, ignoring rows whose key
//! or value is NULL. Tie-breaking on the value makes the result a pure function of the group's
//! multiset of rows: it does not depend on input order, batch size or partitioning, which
//! `first_value`/`any_value` cannot promise.
//!
//! Keys and values of any orderable type are compared through Arrow's row format (bytes whose
//! memcmp order is the sort order), and per-group winners are stored as those bytes, so one
//! implementation serves every type without per-row `ScalarValue`s. Within a batch only the
//! keys are encoded up front; values are encoded just for each group's batch winner.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    make_comparator, new_null_array, Array, ArrayRef, BooleanArray, DynComparator, UInt64Array,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::kernels::cmp::lt_eq;
use datafusion::arrow::compute::{can_cast_types, nullif, not, take, SortOptions};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF,
    Signature, Volatility,
};

use crate::udf::args::{build_doc, internal, plan_error};

use super::{orderable, SECTION};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pick {
    ArgMax,
    ArgMin,
    AnyValueDet,
    AsofSelect,
}

impl Pick {
    fn name(self) -> &'static str {
        match self {
            Pick::ArgMax => "arg_max",
            Pick::ArgMin => "arg_min",
            Pick::AnyValueDet => "any_value_det",
            Pick::AsofSelect => "asof_select",
        }
    }

    /// The greatest key wins for these; encoding the key descending turns every pick into
    /// "smallest (key, value) bytes".
    fn key_descending(self) -> bool {
        matches!(self, Pick::ArgMax | Pick::AsofSelect)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PickAggregate {
    signature: Signature,
    pick: Pick,
}

impl PickAggregate {
    fn new(pick: Pick) -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable), pick }
    }
    pub fn arg_max() -> Self {
        Self::new(Pick::ArgMax)
    }
    pub fn arg_min() -> Self {
        Self::new(Pick::ArgMin)
    }
    pub fn any_value_det() -> Self {
        Self::new(Pick::AnyValueDet)
    }
    pub fn asof_select() -> Self {
        Self::new(Pick::AsofSelect)
    }

    fn converters(&self, value_type: &DataType, key_type: &DataType) -> Result<(RowConverter, RowConverter)> {
        let key_order = SortOptions { descending: self.pick.key_descending(), nulls_first: false };
        let keys = RowConverter::new(vec![SortField::new_with_options(key_type.clone(), key_order)])?;
        let values = RowConverter::new(vec![SortField::new(value_type.clone())])?;
        Ok((keys, values))
    }

    fn types_from(&self, fields: &[FieldRef]) -> Result<(DataType, DataType)> {
        match fields {
            [value, key, ..] => Ok((value.data_type().clone(), key.data_type().clone())),
            _ => Err(internal(self.pick.name(), "expected a value and a key argument")),
        }
    }
}

static ARG_MAX_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "The value of the row with the greatest key; among rows sharing that key, the smallest \
         value. Rows whose key or value is NULL are ignored; NULL when no row remains. Any \
         orderable value and key types; deterministic regardless of input order.",
        "arg_max(value: any orderable, key: any orderable) -> type of value",
        "SELECT arg_max(name, score) AS best FROM (VALUES ('a', 1), ('c', 3), ('b', 3)) AS t(name, score)",
        &[("value", "The value to return."), ("key", "The key to maximize.")],
    )
});

static ARG_MIN_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "The value of the row with the smallest key; among rows sharing that key, the smallest \
         value. Rows whose key or value is NULL are ignored; NULL when no row remains.",
        "arg_min(value: any orderable, key: any orderable) -> type of value",
        "SELECT arg_min(name, score) AS worst FROM (VALUES ('a', 1), ('c', 3), ('b', 1)) AS t(name, score)",
        &[("value", "The value to return."), ("key", "The key to minimize.")],
    )
});

static ANY_VALUE_DET_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "A deterministic any_value: the value at the smallest key (ties: the smallest value), \
         so repeated runs, batch sizes and partitionings agree. Rows whose key or value is NULL \
         are ignored; NULL when no row remains.",
        "any_value_det(value: any orderable, key: any orderable) -> type of value",
        "SELECT g, any_value_det(path, id) AS path FROM (VALUES (1, 'b.py', 20), (1, 'a.py', 10), (2, 'c.py', 5)) AS t(g, path, id) GROUP BY g ORDER BY g",
        &[("value", "The value to return."), ("key", "Orders the candidates; the smallest wins.")],
    )
});

static ASOF_SELECT_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "As-of lookup: the value of the row with the greatest ts that is <= as_of (ties: the \
         smallest value). Each row is compared with its own as_of, which is usually a literal. \
         Rows whose value, ts or as_of is NULL, or whose ts is after as_of, are ignored; NULL \
         when no row qualifies. as_of is cast to the type of ts.",
        "asof_select(value: any orderable, ts: any orderable, as_of: type of ts) -> type of value",
        "SELECT asof_select(version, ts, 15) AS v FROM (VALUES ('v1', 10), ('v2', 15), ('v3', 20)) AS t(version, ts)",
        &[
            ("value", "The value to return."),
            ("ts", "The row's time (or version)."),
            ("as_of", "The point in time to look up."),
        ],
    )
});

impl AggregateUDFImpl for PickAggregate {
    fn name(&self) -> &str {
        self.pick.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let expected = match self.pick {
            Pick::AsofSelect => "(value of an orderable type, ts of an orderable type, as_of castable to the type of ts)",
            Pick::ArgMax | Pick::ArgMin => "(value of an orderable type, key of an orderable type)",
            Pick::AnyValueDet => "(value of an orderable type, key of an orderable type)",
        };
        let err = || plan_error(self.name(), expected, arg_types);
        match (self.pick, arg_types) {
            (Pick::AsofSelect, [value, ts, as_of]) => {
                let value = orderable(value).ok_or_else(err)?;
                let ts = orderable(ts).ok_or_else(err)?;
                let comparable = as_of == &ts
                    || as_of == &DataType::Null
                    || (as_of.is_numeric() && ts.is_numeric())
                    || (as_of.is_temporal() && ts.is_temporal())
                    || (matches!(as_of, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) && ts.is_temporal());
                if !comparable || !can_cast_types(as_of, &ts) {
                    return Err(err());
                }
                Ok(vec![value, ts.clone(), ts])
            }
            (Pick::AsofSelect, _) => Err(err()),
            (_, [value, key]) => Ok(vec![orderable(value).ok_or_else(err)?, orderable(key).ok_or_else(err)?]),
            _ => Err(err()),
        }
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        arg_types.first().cloned().ok_or_else(|| internal(self.name(), "called without arguments"))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let (value, key) = self.types_from(args.input_fields)?;
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "value"), value, true)),
            Arc::new(Field::new(format_state_name(args.name, "key"), key, true)),
        ])
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let (value, key) = self.types_from(args.expr_fields)?;
        let (keys, values) = self.converters(&value, &key)?;
        Ok(Box::new(PickAccumulator {
            pick: self.pick,
            best: BestRows::new(keys, values, value, key),
            group_zero: Vec::new(),
        }))
    }
    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let (value, key) = self.types_from(args.expr_fields)?;
        let (keys, values) = self.converters(&value, &key)?;
        Ok(Box::new(PickGroups { pick: self.pick, best: BestRows::new(keys, values, value, key) }))
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let (value, key) = self.types_from(args.expr_fields)?;
        let (keys, values) = self.converters(&value, &key)?;
        Ok(Box::new(SlidingPick {
            pick: self.pick,
            key_converter: keys,
            value_converter: values,
            value_type: value,
            key_type: key,
            candidates: BTreeMap::new(),
            bytes: 0,
        }))
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.pick {
            Pick::ArgMax => &ARG_MAX_DOC,
            Pick::ArgMin => &ARG_MIN_DOC,
            Pick::AnyValueDet => &ANY_VALUE_DET_DOC,
            Pick::AsofSelect => &ASOF_SELECT_DOC,
        })
    }
}

/// Input columns of one update: (value, key) and the rows that may take part.
struct Candidates {
    values: ArrayRef,
    keys: ArrayRef,
    eligible: BooleanBuffer,
}

fn and_valid(bits: BooleanBuffer, array: &dyn Array) -> BooleanBuffer {
    match array.logical_nulls() {
        Some(nulls) => &bits & nulls.inner(),
        None => bits,
    }
}

fn and_true(bits: BooleanBuffer, mask: &BooleanArray) -> BooleanBuffer {
    and_valid(&bits & mask.values(), mask)
}

/// Update inputs: `asof_select` also filters on `ts <= as_of`.
fn update_candidates(pick: Pick, values: &[ArrayRef], filter: Option<&BooleanArray>) -> Result<Candidates> {
    let (value, key) = match values {
        [v, k, ..] => (Arc::clone(v), Arc::clone(k)),
        _ => return Err(internal(pick.name(), "expected a value and a key argument")),
    };
    let mut eligible = and_valid(and_valid(BooleanBuffer::new_set(value.len()), value.as_ref()), key.as_ref());
    if let Some(filter) = filter {
        eligible = and_true(eligible, filter);
    }
    if pick == Pick::AsofSelect {
        let as_of = values.get(2).ok_or_else(|| internal(pick.name(), "expected an as_of argument"))?;
        eligible = and_true(eligible, &lt_eq(&key, as_of)?);
    }
    Ok(Candidates { values: value, keys: key, eligible })
}

/// Merge inputs: states are (value, key) with as-of filtering already applied.
fn state_candidates(pick: Pick, states: &[ArrayRef]) -> Result<Candidates> {
    match states {
        [value, key] => Ok(Candidates {
            eligible: and_valid(and_valid(BooleanBuffer::new_set(value.len()), value.as_ref()), key.as_ref()),
            values: Arc::clone(value),
            keys: Arc::clone(key),
        }),
        _ => Err(internal(pick.name(), "expected (value, key) state")),
    }
}

/// Ascending comparison of values for in-batch ties; falls back to row bytes for types the
/// dynamic comparator does not support.
enum ValueOrder {
    Dynamic(DynComparator),
    Encoded(Rows),
}

impl ValueOrder {
    fn new(converter: &RowConverter, values: &ArrayRef) -> Result<Self> {
        match make_comparator(values.as_ref(), values.as_ref(), SortOptions::default()) {
            Ok(cmp) => Ok(ValueOrder::Dynamic(cmp)),
            Err(_) => Ok(ValueOrder::Encoded(converter.convert_columns(&[Arc::clone(values)])?)),
        }
    }

    #[inline]
    fn compare(&self, a: usize, b: usize) -> std::cmp::Ordering {
        match self {
            ValueOrder::Dynamic(cmp) => cmp(a, b),
            ValueOrder::Encoded(rows) => rows.row(a).cmp(&rows.row(b)),
        }
    }
}

/// Per-group winners as row-format bytes.
struct BestRows {
    key_converter: RowConverter,
    value_converter: RowConverter,
    value_type: DataType,
    key_type: DataType,
    best_key: Vec<Vec<u8>>,
    best_value: Vec<Vec<u8>>,
    present: Vec<bool>,
    /// Scratch: this batch's best row per group (`usize::MAX` = none yet), and which groups
    /// were touched so resetting costs O(touched).
    batch_best: Vec<usize>,
    touched: Vec<usize>,
    heap_bytes: usize,
}

const NO_ROW: usize = usize::MAX;

impl BestRows {
    fn new(key_converter: RowConverter, value_converter: RowConverter, value_type: DataType, key_type: DataType) -> Self {
        Self {
            key_converter,
            value_converter,
            value_type,
            key_type,
            best_key: Vec::new(),
            best_value: Vec::new(),
            present: Vec::new(),
            batch_best: Vec::new(),
            touched: Vec::new(),
            heap_bytes: 0,
        }
    }

    fn resize(&mut self, groups: usize) {
        if self.present.len() < groups {
            self.best_key.resize_with(groups, Vec::new);
            self.best_value.resize_with(groups, Vec::new);
            self.present.resize(groups, false);
            self.batch_best.resize(groups, NO_ROW);
        }
    }

    fn update(&mut self, input: &Candidates, group_indices: &[usize], groups: usize) -> Result<()> {
        self.resize(groups);
        if input.eligible.count_set_bits() == 0 {
            return Ok(());
        }
        let key_rows = self.key_converter.convert_columns(&[Arc::clone(&input.keys)])?;
        let value_order = ValueOrder::new(&self.value_converter, &input.values)?;
        for row in input.eligible.set_indices() {
            let Some(&group) = group_indices.get(row) else { continue };
            let Some(current) = self.batch_best.get_mut(group) else { continue };
            if *current == NO_ROW {
                *current = row;
                self.touched.push(group);
            } else {
                let order = key_rows.row(row).cmp(&key_rows.row(*current)).then_with(|| value_order.compare(row, *current));
                if order.is_lt() {
                    *current = row;
                }
            }
        }
        let winners: UInt64Array = self.touched.iter().map(|&g| self.batch_best[g] as u64).collect();
        let winner_values = take(input.values.as_ref(), &winners, None)?;
        let value_rows = self.value_converter.convert_columns(&[winner_values])?;
        for (position, &group) in self.touched.iter().enumerate() {
            let row = self.batch_best[group];
            self.batch_best[group] = NO_ROW;
            let key = key_rows.row(row);
            let value = value_rows.row(position);
            let better = !self.present[group]
                || (key.as_ref(), value.as_ref()) < (self.best_key[group].as_slice(), self.best_value[group].as_slice());
            if better {
                let before = self.best_key[group].capacity() + self.best_value[group].capacity();
                self.best_key[group].clear();
                self.best_key[group].extend_from_slice(key.as_ref());
                self.best_value[group].clear();
                self.best_value[group].extend_from_slice(value.as_ref());
                self.present[group] = true;
                let after = self.best_key[group].capacity() + self.best_value[group].capacity();
                self.heap_bytes = self.heap_bytes + after - before;
            }
        }
        self.touched.clear();
        Ok(())
    }

    /// Decodes stored rows back to an array, NULL where a group has no winner.
    fn decode(converter: &RowConverter, data_type: &DataType, encoded: &[Vec<u8>], present: &[bool]) -> Result<ArrayRef> {
        if !present.iter().any(|p| *p) {
            return Ok(new_null_array(data_type, present.len()));
        }
        let parser = converter.parser();
        let rows = encoded.iter().zip(present).filter(|(_, p)| **p).map(|(bytes, _)| parser.parse(bytes));
        let mut arrays = converter.convert_rows(rows)?;
        let dense = arrays.pop().ok_or_else(|| internal("pick", "row decoding produced no column"))?;
        if present.iter().all(|p| *p) {
            return Ok(dense);
        }
        let mut next = 0u64;
        let positions: UInt64Array = present
            .iter()
            .map(|p| {
                p.then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        Ok(take(dense.as_ref(), &positions, None)?)
    }

    /// Removes the first groups (or all) and returns their (values, keys).
    fn emit(&mut self, emit_to: EmitTo) -> Result<(ArrayRef, ArrayRef)> {
        let keys = emit_to.take_needed(&mut self.best_key);
        let values = emit_to.take_needed(&mut self.best_value);
        let present = emit_to.take_needed(&mut self.present);
        let _ = emit_to.take_needed(&mut self.batch_best);
        self.heap_bytes = self.best_key.iter().chain(self.best_value.iter()).map(Vec::capacity).sum();
        let value_array = Self::decode(&self.value_converter, &self.value_type, &values, &present)?;
        let key_array = Self::decode(&self.key_converter, &self.key_type, &keys, &present)?;
        Ok((value_array, key_array))
    }

    fn size(&self) -> usize {
        self.heap_bytes
            + (self.best_key.capacity() + self.best_value.capacity()) * size_of::<Vec<u8>>()
            + self.present.capacity()
            + (self.batch_best.capacity() + self.touched.capacity()) * size_of::<usize>()
            + self.key_converter.size()
            + self.value_converter.size()
    }
}

/// Single-group accumulator (no GROUP BY, or growing window frames). `evaluate` may be called
/// after every update in a window, so it reads the winner without consuming it.
struct PickAccumulator {
    pick: Pick,
    best: BestRows,
    group_zero: Vec<usize>,
}

impl std::fmt::Debug for PickAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PickAccumulator").field("pick", &self.pick).finish()
    }
}

impl PickAccumulator {
    fn absorb(&mut self, input: Candidates) -> Result<()> {
        self.group_zero.clear();
        self.group_zero.resize(input.values.len(), 0);
        let groups = std::mem::take(&mut self.group_zero);
        let result = self.best.update(&input, &groups, 1);
        self.group_zero = groups;
        result
    }

    fn winner(&self) -> Result<(ScalarValue, ScalarValue)> {
        let present = self.best.present.first().copied().unwrap_or(false);
        if !present {
            return Ok((ScalarValue::try_from(&self.best.value_type)?, ScalarValue::try_from(&self.best.key_type)?));
        }
        let value = BestRows::decode(&self.best.value_converter, &self.best.value_type, &self.best.best_value[..1], &[true])?;
        let key = BestRows::decode(&self.best.key_converter, &self.best.key_type, &self.best.best_key[..1], &[true])?;
        Ok((ScalarValue::try_from_array(&value, 0)?, ScalarValue::try_from_array(&key, 0)?))
    }
}

impl Accumulator for PickAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let input = update_candidates(self.pick, values, None)?;
        self.absorb(input)
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let input = state_candidates(self.pick, states)?;
        self.absorb(input)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (value, key) = self.winner()?;
        Ok(vec![value, key])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.winner()?.0)
    }
    fn size(&self) -> usize {
        size_of_val(self) + self.best.size() + self.group_zero.capacity() * size_of::<usize>()
    }
}

struct PickGroups {
    pick: Pick,
    best: BestRows,
}

impl GroupsAccumulator for PickGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let input = update_candidates(self.pick, values, opt_filter)?;
        self.best.update(&input, group_indices, total_num_groups)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        let input = state_candidates(self.pick, values)?;
        self.best.update(&input, group_indices, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(self.best.emit(emit_to)?.0)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (values, keys) = self.best.emit(emit_to)?;
        Ok(vec![values, keys])
    }

    /// Each row is its own candidate; ineligible rows get a NULL key so merging skips them.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let input = update_candidates(self.pick, values, opt_filter)?;
        let ineligible = not(&BooleanArray::new(input.eligible, None))?;
        let keys = nullif(input.keys.as_ref(), &ineligible)?;
        Ok(vec![input.values, keys])
    }

    fn size(&self) -> usize {
        self.best.size()
    }
}

/// Sliding window frames retract rows, so the accumulator keeps every candidate (as a
/// multiset of encoded (key, value) pairs) and the smallest entry is the pick.
struct SlidingPick {
    pick: Pick,
    key_converter: RowConverter,
    value_converter: RowConverter,
    value_type: DataType,
    key_type: DataType,
    candidates: BTreeMap<(Vec<u8>, Vec<u8>), usize>,
    bytes: usize,
}

impl std::fmt::Debug for SlidingPick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlidingPick").field("pick", &self.pick).field("candidates", &self.candidates.len()).finish()
    }
}

impl SlidingPick {
    fn encoded(&self, input: &Candidates) -> Result<(Rows, Rows)> {
        let keys = self.key_converter.convert_columns(&[Arc::clone(&input.keys)])?;
        let values = self.value_converter.convert_columns(&[Arc::clone(&input.values)])?;
        Ok((keys, values))
    }

    fn add(&mut self, input: Candidates) -> Result<()> {
        let (keys, values) = self.encoded(&input)?;
        for row in input.eligible.set_indices() {
            let entry = (keys.row(row).as_ref().to_vec(), values.row(row).as_ref().to_vec());
            let size = entry.0.len() + entry.1.len();
            let count = self.candidates.entry(entry).or_insert(0);
            if *count == 0 {
                self.bytes += size;
            }
            *count += 1;
        }
        Ok(())
    }

    fn best(&self) -> Result<(ScalarValue, ScalarValue)> {
        let Some(((key, value), _)) = self.candidates.first_key_value() else {
            return Ok((ScalarValue::try_from(&self.value_type)?, ScalarValue::try_from(&self.key_type)?));
        };
        let key_parser = self.key_converter.parser();
        let value_parser = self.value_converter.parser();
        let keys = self.key_converter.convert_rows(std::iter::once(key_parser.parse(key)))?;
        let values = self.value_converter.convert_rows(std::iter::once(value_parser.parse(value)))?;
        let first = |arrays: &[ArrayRef]| -> Result<ScalarValue> {
            let array = arrays.first().ok_or_else(|| internal(self.pick.name(), "row decoding produced no column"))?;
            ScalarValue::try_from_array(array, 0)
        };
        Ok((first(&values)?, first(&keys)?))
    }
}

impl Accumulator for SlidingPick {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let input = update_candidates(self.pick, values, None)?;
        self.add(input)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let input = update_candidates(self.pick, values, None)?;
        let (keys, encoded_values) = self.encoded(&input)?;
        for row in input.eligible.set_indices() {
            let entry = (keys.row(row).as_ref().to_vec(), encoded_values.row(row).as_ref().to_vec());
            if let Some(count) = self.candidates.get_mut(&entry) {
                *count -= 1;
                if *count == 0 {
                    self.bytes -= entry.0.len() + entry.1.len();
                    self.candidates.remove(&entry);
                }
            }
        }
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let input = state_candidates(self.pick, states)?;
        self.add(input)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (value, key) = self.best()?;
        Ok(vec![value, key])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.best()?.0)
    }
    fn size(&self) -> usize {
        size_of_val(self)
            + self.bytes
            + self.candidates.len() * (2 * size_of::<Vec<u8>>() + size_of::<usize>())
            + self.key_converter.size()
            + self.value_converter.size()
    }
}
