//! Nested-value helpers: `map_get_default`, `map_normalize`, `list_drop_nulls`,
//! `list_unique_sorted`, `struct_pick`.
//!
//! Kernels work on the flattened child arrays (one comparison kernel over all map keys, one
//! `take` for all selected values) rather than row by row through `ScalarValue`, and element
//! ordering uses Arrow's row format so every orderable element type shares one code path.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, GenericListArray, MapArray, OffsetSizeTrait, Scalar,
    StringBuilder, StructArray, UInt64Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use super::args::{
    bool_arg, build_doc, finish, internal, invalid_arg, output_shape, plan_error, preview,
    string_arg, BoolView, StrView,
};

const SECTION: &str = "CodeAnatomy: collections";

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Whether a value of type `from` may be implicitly cast to `to` for a lookup or a default:
/// same family only, so `map_get_default(string_map, 1, ...)` is a plan error, not a silent
/// cast.
fn same_family(from: &DataType, to: &DataType) -> bool {
    from == to
        || from == &DataType::Null
        || (is_string(from) && is_string(to))
        || (from.is_numeric() && to.is_numeric())
        || (from.is_temporal() && to.is_temporal())
        || (matches!(from, DataType::Binary | DataType::LargeBinary | DataType::BinaryView)
            && matches!(to, DataType::Binary | DataType::LargeBinary | DataType::BinaryView))
}

fn map_entry_types(t: &DataType) -> Option<(&Field, &Field)> {
    let DataType::Map(entries, _) = t else { return None };
    let DataType::Struct(fields) = entries.data_type() else { return None };
    match fields.iter().as_slice() {
        [key, value] => Some((key.as_ref(), value.as_ref())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// map_get_default

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MapGetDefault {
    signature: Signature,
}

impl Default for MapGetDefault {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static MAP_GET_DEFAULT_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "The value stored under key in map, or default when the key is absent. A NULL map \
         behaves as an empty map and a NULL key is never present, so both give default; a key \
         present with a NULL value gives NULL (like Python's dict.get). key must be of the map's \
         key type family and default of its value type family.",
        "map_get_default(map: Map(K, V), key: K, default: V) -> V",
        "SELECT map_get_default(MAP {'lang': 'python'}, 'lang', 'unknown') AS hit, map_get_default(MAP {'lang': 'python'}, 'kind', 'unknown') AS miss",
        &[
            ("map", "The map to look in."),
            ("key", "The key to look up."),
            ("default", "Returned when the key is absent."),
        ],
    )
});

impl ScalarUDFImpl for MapGetDefault {
    fn name(&self) -> &str {
        "map_get_default"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let expected = "(map, key of the map's key type, default of the map's value type)";
        let err = || plan_error(self.name(), expected, arg_types);
        let [map, key, default] = arg_types else { return Err(err()) };
        let (key_field, value_field) = map_entry_types(map).ok_or_else(err)?;
        if !same_family(key, key_field.data_type()) || !same_family(default, value_field.data_type()) {
            return Err(err());
        }
        Ok(vec![map.clone(), key_field.data_type().clone(), value_field.data_type().clone()])
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        arg_types
            .first()
            .and_then(map_entry_types)
            .map(|(_, value)| value.data_type().clone())
            .ok_or_else(|| internal(self.name(), "first argument is not a map"))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let (_, all_scalar) = output_shape(&args.args, args.number_rows);
        let [map_arg, key_arg, default_arg] = args.args.as_slice() else {
            return Err(internal(name, "expected three arguments"));
        };
        // The map is always materialized; key and default literals stay scalars.
        let map_array = match map_arg {
            ColumnarValue::Array(a) => Arc::clone(a),
            ColumnarValue::Scalar(s) => s.to_array_of_size(if all_scalar { 1 } else { args.number_rows })?,
        };
        let map = map_array
            .as_map_opt()
            .ok_or_else(|| internal(name, format!("expected a map, got {}", map_array.data_type())))?;
        let rows = map.len();
        let offsets = map.value_offsets();
        let keys = map.keys();

        let matches: BooleanArray = match key_arg {
            ColumnarValue::Scalar(key) => eq(keys, &Scalar::new(key.to_array()?))?,
            ColumnarValue::Array(key) => {
                // Spread each row's key over that row's entries, then compare once.
                let mut owner: Vec<Option<u64>> = vec![None; keys.len()];
                for row in 0..rows {
                    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                    owner[start..end].iter_mut().for_each(|o| *o = Some(row as u64));
                }
                let spread = take(key.as_ref(), &UInt64Array::from(owner), None)?;
                eq(keys, &spread)?
            }
        };
        let found: UInt64Array = (0..rows)
            .map(|row| {
                if map.is_null(row) {
                    return None;
                }
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                (start..end).find(|&j| matches.is_valid(j) && matches.value(j)).map(|j| j as u64)
            })
            .collect();
        let hit_mask: BooleanArray = found.iter().map(|f| Some(f.is_some())).collect();
        let hits = take(map.values().as_ref(), &found, None)?;
        let result = match default_arg {
            ColumnarValue::Scalar(default) => zip(&hit_mask, &hits, &Scalar::new(default.to_array()?))?,
            ColumnarValue::Array(default) => zip(&hit_mask, &hits, default)?,
        };
        finish(result, all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&MAP_GET_DEFAULT_DOC)
    }
}

// ---------------------------------------------------------------------------------------
// map_normalize

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyCase {
    Lower,
    Upper,
    Casefold,
    Preserve,
}

fn parse_key_case(func: &str, text: &str) -> Result<KeyCase> {
    match text.to_ascii_lowercase().as_str() {
        "lower" => Ok(KeyCase::Lower),
        "upper" => Ok(KeyCase::Upper),
        "casefold" => Ok(KeyCase::Casefold),
        "preserve" => Ok(KeyCase::Preserve),
        _ => Err(invalid_arg(
            func,
            format!("unknown key_case {text:?}; allowed values are lower, upper, casefold, preserve"),
        )),
    }
}

fn normalize_key(key: &str, case: KeyCase) -> String {
    let trimmed = key.trim();
    let composed: String = if trimmed.is_ascii() || is_nfc_quick(trimmed.chars()) == IsNormalized::Yes {
        trimmed.to_string()
    } else {
        trimmed.nfc().collect()
    };
    match case {
        KeyCase::Lower => composed.to_lowercase(),
        KeyCase::Upper => composed.to_uppercase(),
        KeyCase::Casefold => caseless::default_case_fold_str(&composed).nfc().collect(),
        KeyCase::Preserve => composed,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MapNormalize {
    signature: Signature,
}

impl Default for MapNormalize {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static MAP_NORMALIZE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Normalizes the string keys of a map: each key is trimmed of Unicode whitespace, put in \
         NFC, then cased per key_case ('lower' (default), 'upper', 'casefold' = full Unicode case \
         folding, or 'preserve'); with sort_keys (default true) entries are ordered by normalized \
         key (byte order), otherwise the original order is kept. Two keys of one map that \
         normalize to the same key are an invalid_argument error naming both, never a silent \
         drop. Values are unchanged; the result's keys are Utf8.",
        "map_normalize(map: Map(Utf8, V) [, key_case: Utf8 [, sort_keys: Boolean]]) -> Map(Utf8, V)",
        "SELECT map_normalize(MAP {' Lang ': 'python', 'KIND': 'module'}) AS m",
        &[
            ("map", "A map with string keys."),
            ("key_case", "lower, upper, casefold or preserve (any case)."),
            ("sort_keys", "Order entries by normalized key."),
        ],
    )
});

fn map_normalize_output(input: &DataType) -> Option<DataType> {
    let DataType::Map(entries, _) = input else { return None };
    let (key, value) = map_entry_types(input)?;
    let fields = Fields::from(vec![
        Field::new(key.name(), DataType::Utf8, false),
        value.clone(),
    ]);
    let entries = Field::new(entries.name(), DataType::Struct(fields), false);
    Some(DataType::Map(Arc::new(entries), false))
}

impl ScalarUDFImpl for MapNormalize {
    fn name(&self) -> &str {
        "map_normalize"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let expected = "(map with string keys [, key_case string [, sort_keys boolean]])";
        let err = || plan_error(self.name(), expected, arg_types);
        let Some((map, rest)) = arg_types.split_first() else { return Err(err()) };
        let (key, _) = map_entry_types(map).ok_or_else(err)?;
        if !is_string(key.data_type()) || rest.len() > 2 {
            return Err(err());
        }
        let mut coerced = vec![map.clone()];
        if let Some(t) = rest.first() {
            coerced.push(string_arg(t).ok_or_else(err)?);
        }
        if let Some(t) = rest.get(1) {
            coerced.push(bool_arg(t).ok_or_else(err)?);
        }
        Ok(coerced)
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        arg_types
            .first()
            .and_then(map_normalize_output)
            .ok_or_else(|| internal(self.name(), "first argument is not a map"))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let (_, all_scalar) = output_shape(&args.args, args.number_rows);
        let map_array = match args.args.first() {
            Some(ColumnarValue::Array(a)) => Arc::clone(a),
            Some(ColumnarValue::Scalar(s)) => s.to_array_of_size(if all_scalar { 1 } else { args.number_rows })?,
            None => return Err(internal(name, "called without arguments")),
        };
        let map = map_array
            .as_map_opt()
            .ok_or_else(|| internal(name, format!("expected a map, got {}", map_array.data_type())))?;
        let key_cases = match args.args.get(1) {
            Some(a) => StrView::new(name, a)?,
            None => StrView::Const(Some("lower")),
        };
        let sorts = match args.args.get(2) {
            Some(a) => BoolView::new(name, a)?,
            None => BoolView::Const(Some(true)),
        };
        let fixed_case = match key_cases.as_const() {
            Some(Some(text)) => Some(Some(parse_key_case(name, text)?)),
            Some(None) => Some(None),
            None => None,
        };
        let keys = StrView::from_array(name, map.keys().as_ref())?;
        let offsets = map.value_offsets();
        let rows = map.len();

        let mut out_keys = StringBuilder::new();
        let mut picked: Vec<u64> = Vec::with_capacity(map.keys().len());
        let mut out_offsets: Vec<i32> = Vec::with_capacity(rows + 1);
        out_offsets.push(0);
        let mut validity: Vec<bool> = Vec::with_capacity(rows);
        let mut entries: Vec<(String, usize)> = Vec::new();
        let mut order: Vec<usize> = Vec::new();
        for row in 0..rows {
            let case = match fixed_case {
                Some(case) => case,
                None => key_cases.get(row).map(|t| parse_key_case(name, t)).transpose()?,
            };
            let (Some(case), Some(sort), false) = (case, sorts.get(row), map.is_null(row)) else {
                validity.push(false);
                out_offsets.push(picked.len() as i32);
                continue;
            };
            entries.clear();
            for j in offsets[row] as usize..offsets[row + 1] as usize {
                let key = keys.get(j).ok_or_else(|| internal(name, "map key is NULL"))?;
                entries.push((normalize_key(key, case), j));
            }
            order.clear();
            order.extend(0..entries.len());
            order.sort_by(|&a, &b| entries[a].0.cmp(&entries[b].0));
            if let Some(pair) = order.windows(2).find(|w| entries[w[0]].0 == entries[w[1]].0) {
                let original = |i: usize| keys.get(entries[i].1).map(preview).unwrap_or_default();
                return Err(invalid_arg(
                    name,
                    format!(
                        "keys {} and {} both normalize to {} (row {row})",
                        original(pair[0]),
                        original(pair[1]),
                        preview(&entries[pair[0]].0)
                    ),
                ));
            }
            if !sort {
                order.sort_unstable();
            }
            for &i in &order {
                out_keys.append_value(&entries[i].0);
                picked.push(entries[i].1 as u64);
            }
            let end = i32::try_from(picked.len()).map_err(|_| invalid_arg(name, "too many map entries in one batch"))?;
            out_offsets.push(end);
            validity.push(true);
        }
        let values = take(map.values().as_ref(), &UInt64Array::from(picked), None)?;
        let output_type = map_normalize_output(map.data_type())
            .ok_or_else(|| internal(name, "first argument is not a map"))?;
        let DataType::Map(entries_field, _) = &output_type else {
            return Err(internal(name, "output is not a map"));
        };
        let DataType::Struct(entry_fields) = entries_field.data_type() else {
            return Err(internal(name, "map entries are not a struct"));
        };
        let entries_array = StructArray::try_new(entry_fields.clone(), vec![Arc::new(out_keys.finish()) as ArrayRef, values], None)?;
        let nulls = map.nulls().is_some() || validity.iter().any(|v| !v);
        let result = MapArray::try_new(
            Arc::clone(entries_field),
            OffsetBuffer::new(out_offsets.into()),
            entries_array,
            nulls.then(|| validity.into()),
            false,
        )?;
        finish(Arc::new(result), all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&MAP_NORMALIZE_DOC)
    }
}

// ---------------------------------------------------------------------------------------
// list_drop_nulls and list_unique_sorted

fn list_arg(t: &DataType) -> Option<DataType> {
    match t {
        DataType::List(_) | DataType::LargeList(_) => Some(t.clone()),
        DataType::FixedSizeList(field, _) => Some(DataType::List(Arc::clone(field))),
        DataType::ListView(field) => Some(DataType::List(Arc::clone(field))),
        DataType::LargeListView(field) => Some(DataType::LargeList(Arc::clone(field))),
        _ => None,
    }
}

fn list_element(t: &DataType) -> Option<&FieldRef> {
    match t {
        DataType::List(f) | DataType::LargeList(f) => Some(f),
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum ListOp {
    DropNulls,
    UniqueSorted,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ListFunction {
    signature: Signature,
    op: ListOp,
}

impl ListFunction {
    pub fn drop_nulls() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable), op: ListOp::DropNulls }
    }
    pub fn unique_sorted() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable), op: ListOp::UniqueSorted }
    }
}

static LIST_DROP_NULLS_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "The list without its NULL elements, order kept, element type kept (the spec's \
         list_compact; renamed because list_compact is a DataFusion built-in alias of \
         array_compact). A NULL list gives NULL.",
        "list_drop_nulls(list: List(T)) -> List(T)",
        "SELECT list_drop_nulls([1, NULL, 2, NULL]) AS compacted",
        &[("list", "A List or LargeList (FixedSizeList is accepted as List).")],
    )
});

static LIST_UNIQUE_SORTED_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "The distinct non-NULL elements of the list in ascending order (Arrow row-format order: \
         floats by total order, so -0.0 < 0.0 and NaN sorts last; strings by bytes). A NULL list \
         gives NULL.",
        "list_unique_sorted(list: List(T)) -> List(T)",
        "SELECT list_unique_sorted(['b', 'a', NULL, 'b']) AS uniq",
        &[("list", "A List or LargeList of an orderable element type.")],
    )
});

impl ScalarUDFImpl for ListFunction {
    fn name(&self) -> &str {
        match self.op {
            ListOp::DropNulls => "list_drop_nulls",
            ListOp::UniqueSorted => "list_unique_sorted",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let expected = match self.op {
            ListOp::DropNulls => "(list)",
            ListOp::UniqueSorted => "(list of an orderable element type)",
        };
        let err = || plan_error(self.name(), expected, arg_types);
        let [t] = arg_types else { return Err(err()) };
        let list = list_arg(t).ok_or_else(err)?;
        if self.op == ListOp::UniqueSorted {
            let element = list_element(&list).ok_or_else(err)?;
            if !RowConverter::supports_fields(&[SortField::new(element.data_type().clone())]) {
                return Err(err());
            }
        }
        Ok(vec![list])
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        arg_types.first().cloned().ok_or_else(|| internal(self.name(), "called without arguments"))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (_, all_scalar) = output_shape(&args.args, args.number_rows);
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(array) = arrays.first() else {
            return Err(internal(self.name(), "called without arguments"));
        };
        let result = match array.data_type() {
            DataType::List(_) => self.apply(array.as_list::<i32>())?,
            DataType::LargeList(_) => self.apply(array.as_list::<i64>())?,
            other => return Err(internal(self.name(), format!("expected a list, got {other}"))),
        };
        finish(result, all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.op {
            ListOp::DropNulls => &LIST_DROP_NULLS_DOC,
            ListOp::UniqueSorted => &LIST_UNIQUE_SORTED_DOC,
        })
    }
}

impl ListFunction {
    fn apply<O: OffsetSizeTrait>(&self, list: &GenericListArray<O>) -> Result<ArrayRef> {
        let values = list.values();
        let value_nulls = values.logical_nulls();
        let is_valid = |j: usize| value_nulls.as_ref().is_none_or(|n| n.is_valid(j));
        let ordering = match self.op {
            ListOp::DropNulls => None,
            ListOp::UniqueSorted => {
                let converter = RowConverter::new(vec![SortField::new(values.data_type().clone())])?;
                Some(converter.convert_columns(&[Arc::clone(values)])?)
            }
        };
        if ordering.is_none() && value_nulls.is_none() {
            return Ok(Arc::new(list.clone()));
        }
        let offsets = list.value_offsets();
        let mut picked: Vec<u64> = Vec::with_capacity(values.len());
        let mut new_offsets: Vec<O> = Vec::with_capacity(list.len() + 1);
        new_offsets.push(O::usize_as(0));
        let mut row_items: Vec<usize> = Vec::new();
        for row in 0..list.len() {
            if list.is_valid(row) {
                let range = offsets[row].as_usize()..offsets[row + 1].as_usize();
                match &ordering {
                    None => picked.extend(range.filter(|&j| is_valid(j)).map(|j| j as u64)),
                    Some(rows) => {
                        row_items.clear();
                        row_items.extend(range.filter(|&j| is_valid(j)));
                        row_items.sort_by(|&a, &b| rows.row(a).cmp(&rows.row(b)));
                        row_items.dedup_by(|a, b| rows.row(*a) == rows.row(*b));
                        picked.extend(row_items.iter().map(|&j| j as u64));
                    }
                }
            }
            new_offsets.push(O::usize_as(picked.len()));
        }
        let field = list_element(list.data_type())
            .cloned()
            .ok_or_else(|| internal(self.name(), "expected a list"))?;
        let new_values = take(values.as_ref(), &UInt64Array::from(picked), None)?;
        Ok(Arc::new(GenericListArray::<O>::try_new(
            field,
            OffsetBuffer::new(new_offsets.into()),
            new_values,
            list.nulls().cloned(),
        )?))
    }
}

// ---------------------------------------------------------------------------------------
// struct_pick

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StructPick {
    signature: Signature,
}

impl Default for StructPick {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static STRUCT_PICK_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "A struct with only the named fields, in the order given. Field names must be string \
         literals naming existing fields (case-sensitive), without duplicates; this is checked \
         at plan time. A NULL struct gives NULL.",
        "struct_pick(s: Struct, field: Utf8 literal [, field ...]) -> Struct",
        "SELECT struct_pick(named_struct('a', 1, 'b', 'x', 'c', true), 'c', 'a') AS picked",
        &[("s", "The struct."), ("field", "Names of the fields to keep.")],
    )
});

const STRUCT_PICK_EXPECTED: &str = "(struct, field name string literal, ...)";

impl ScalarUDFImpl for StructPick {
    fn name(&self) -> &str {
        "struct_pick"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let err = || plan_error(self.name(), STRUCT_PICK_EXPECTED, arg_types);
        let Some((first, names)) = arg_types.split_first() else { return Err(err()) };
        if !matches!(first, DataType::Struct(_)) || names.is_empty() {
            return Err(err());
        }
        let mut coerced = vec![first.clone()];
        for t in names {
            string_arg(t).ok_or_else(err)?;
            coerced.push(DataType::Utf8);
        }
        Ok(coerced)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Err(internal(self.name(), "the return type depends on literal arguments; use return_field_from_args"))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let name = self.name();
        let types: Vec<DataType> = args.arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let Some(first) = args.arg_fields.first() else {
            return Err(plan_error(name, STRUCT_PICK_EXPECTED, &types));
        };
        let DataType::Struct(fields) = first.data_type() else {
            return Err(plan_error(name, STRUCT_PICK_EXPECTED, &types));
        };
        let mut picked: Vec<FieldRef> = Vec::new();
        for literal in args.scalar_arguments.iter().skip(1) {
            let field_name = match literal {
                Some(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => s,
                _ => {
                    return Err(df_plan(format!(
                        "{name}: field names must be non-NULL string literals ({STRUCT_PICK_EXPECTED})"
                    )))
                }
            };
            let Some((_, field)) = fields.find(field_name) else {
                let available = fields.iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
                return Err(df_plan(format!("{name}: struct has no field {field_name:?}; fields are: {available}")));
            };
            if picked.iter().any(|f| f.name() == field_name) {
                return Err(df_plan(format!("{name}: field {field_name:?} is picked twice")));
            }
            picked.push(Arc::clone(field));
        }
        Ok(Arc::new(Field::new(name, DataType::Struct(Fields::from(picked)), first.is_nullable())))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let DataType::Struct(fields) = args.return_field.data_type() else {
            return Err(internal(name, "return type is not a struct"));
        };
        let fields = fields.clone();
        let (_, all_scalar) = output_shape(&args.args, args.number_rows);
        let input = match args.args.first() {
            Some(ColumnarValue::Array(a)) => Arc::clone(a),
            Some(ColumnarValue::Scalar(s)) => s.to_array()?,
            None => return Err(internal(name, "called without arguments")),
        };
        let input = input
            .as_struct_opt()
            .ok_or_else(|| internal(name, format!("expected a struct, got {}", input.data_type())))?;
        let columns = fields
            .iter()
            .map(|f| {
                input
                    .column_by_name(f.name())
                    .cloned()
                    .ok_or_else(|| internal(name, format!("struct has no field {}", f.name())))
            })
            .collect::<Result<Vec<_>>>()?;
        let picked = StructArray::try_new(fields, columns, input.nulls().cloned())?;
        finish(Arc::new(picked), all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&STRUCT_PICK_DOC)
    }
}

fn df_plan(message: String) -> datafusion::error::DataFusionError {
    df_plugin_api::error::df_error(df_plugin_api::error::ErrorCode::Plan, message)
}
