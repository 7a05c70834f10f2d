//! Byte spans of source code: `span_make`, `span_len`, `span_overlaps`, `span_contains`,
//! `span_id`.
//!
//! A span records how its end should be read (`end_exclusive`) and which line base and column
//! unit its producer used, because spans from different extractors (tree-sitter, LSP, Python
//! `ast`) are joined together and silently mixing conventions is the classic off-by-one.
//! All span arithmetic below first converts to a half-open byte range `[start, end)`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int32Builder, Int64Array,
    Int64Builder, StringBuilder, StructArray,
};
use datafusion::arrow::array::NullBufferBuilder;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::config::{CodeAnatomyConfig, ColUnit};

use super::args::{
    bool_arg, build_doc, coerce_positional, finish, int64_arg, internal, invalid_arg,
    output_shape, plan_error, string_arg, BoolView, Coercer, I64View, StrView,
};
use super::hash::{coerce_parts, stable_id_kernel};

const SECTION: &str = "CodeAnatomy: spans";

/// The struct every span function produces and consumes.
pub fn span_fields() -> Fields {
    Fields::from(vec![
        Field::new("bstart", DataType::Int64, false),
        Field::new("bend", DataType::Int64, false),
        Field::new("line_base", DataType::Int32, false),
        Field::new("col_unit", DataType::Utf8, false),
        Field::new("end_exclusive", DataType::Boolean, false),
    ])
}

pub fn span_type() -> DataType {
    DataType::Struct(span_fields())
}

// ---------------------------------------------------------------------------------------
// span_make

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SpanMake {
    signature: Signature,
}

impl Default for SpanMake {
    fn default() -> Self {
        // Stable, not Immutable: omitted arguments are read from the session configuration.
        Self { signature: Signature::user_defined(Volatility::Stable) }
    }
}

static SPAN_MAKE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Builds a span struct {bstart, bend, line_base, col_unit, end_exclusive}. Omitted \
         arguments default to the session settings codeanatomy.span.line_base, \
         codeanatomy.span.col_unit and codeanatomy.span.end_exclusive. bstart must be >= 0; \
         bend >= bstart for exclusive ends, bend >= bstart - 1 for inclusive ends (an empty \
         inclusive span); line_base is 0 or 1; col_unit is BYTE, UTF16 or UTF32 (any case, \
         stored upper case). A NULL argument gives a NULL span; invalid values are errors.",
        "span_make(bstart: Int64, bend: Int64 [, line_base: Int64 [, col_unit: Utf8 [, end_exclusive: Boolean]]]) -> Struct(bstart Int64, bend Int64, line_base Int32, col_unit Utf8, end_exclusive Boolean)",
        "SELECT span_make(10, 20, 1, 'UTF16', true) AS span",
        &[
            ("bstart", "Start byte offset (>= 0)."),
            ("bend", "End byte offset."),
            ("line_base", "0 or 1: the numbering base of lines in this span's source."),
            ("col_unit", "BYTE, UTF16 or UTF32: the unit of columns in this span's source."),
            ("end_exclusive", "Whether bend is one past the last byte (true) or the last byte (false)."),
        ],
    )
});

const SPAN_MAKE_EXPECTED: &str = "(bstart integer, bend integer [, line_base integer [, col_unit string [, end_exclusive boolean]]])";

impl ScalarUDFImpl for SpanMake {
    fn name(&self) -> &str {
        "span_make"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const COERCERS: [Coercer; 5] = [int64_arg, int64_arg, int64_arg, string_arg, bool_arg];
        coerce_positional(self.name(), SPAN_MAKE_EXPECTED, arg_types, 2, &COERCERS)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(span_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let config = CodeAnatomyConfig::from_config_options(&args.config_options)?;
        let (rows, all_scalar) = output_shape(&args.args, args.number_rows);
        let arg = |i: usize| args.args.get(i);
        let (Some(bstart), Some(bend)) = (arg(0), arg(1)) else {
            return Err(internal(name, "expected at least two arguments"));
        };
        let bstart = I64View::new(name, bstart)?;
        let bend = I64View::new(name, bend)?;
        let line_base = match arg(2) {
            Some(a) => I64View::new(name, a)?,
            None => I64View::Const(Some(config.span_line_base as i64)),
        };
        let col_unit = match arg(3) {
            Some(a) => StrView::new(name, a)?,
            None => StrView::Const(Some(config.span_col_unit.as_str())),
        };
        let end_exclusive = match arg(4) {
            Some(a) => BoolView::new(name, a)?,
            None => BoolView::Const(Some(config.span_end_exclusive)),
        };

        let mut starts = Int64Builder::with_capacity(rows);
        let mut ends = Int64Builder::with_capacity(rows);
        let mut bases = Int32Builder::with_capacity(rows);
        let mut units = StringBuilder::with_capacity(rows, rows * 5);
        let mut exclusives = BooleanBuilder::with_capacity(rows);
        let mut nulls = NullBufferBuilder::new(rows);
        for row in 0..rows {
            let values = (
                bstart.get(row),
                bend.get(row),
                line_base.get(row),
                col_unit.get(row),
                end_exclusive.get(row),
            );
            let (Some(s), Some(e), Some(base), Some(unit), Some(excl)) = values else {
                // Children are non-nullable: a NULL span still carries placeholder values.
                starts.append_value(0);
                ends.append_value(0);
                bases.append_value(0);
                units.append_value("");
                exclusives.append_value(true);
                nulls.append_null();
                continue;
            };
            let row_text = || format!("span_make({s}, {e}, {base}, {unit:?}, {excl})");
            if s < 0 {
                return Err(invalid_arg(name, format!("bstart must be >= 0 in {}", row_text())));
            }
            let min_end = if excl { s } else { s - 1 };
            if e < min_end {
                return Err(invalid_arg(name, format!("bend precedes bstart in {}", row_text())));
            }
            if base != 0 && base != 1 {
                return Err(invalid_arg(name, format!("line_base must be 0 or 1 in {}", row_text())));
            }
            let Some(unit) = ColUnit::parse(unit) else {
                return Err(invalid_arg(
                    name,
                    format!("col_unit must be one of BYTE, UTF16, UTF32 in {}", row_text()),
                ));
            };
            starts.append_value(s);
            ends.append_value(e);
            bases.append_value(base as i32);
            units.append_value(unit.as_str());
            exclusives.append_value(excl);
            nulls.append_non_null();
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(starts.finish()),
            Arc::new(ends.finish()),
            Arc::new(bases.finish()),
            Arc::new(units.finish()),
            Arc::new(exclusives.finish()),
        ];
        let spans = StructArray::try_new(span_fields(), columns, nulls.finish())?;
        finish(Arc::new(spans), all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&SPAN_MAKE_DOC)
    }
}

// ---------------------------------------------------------------------------------------
// Reading spans

/// A span column must be a struct with integer `bstart` and `bend`; `end_exclusive` is
/// optional (absent means exclusive) so spans produced elsewhere can be used directly.
fn span_arg(t: &DataType) -> Option<DataType> {
    let DataType::Struct(fields) = t else { return None };
    let int_field = |name: &str| fields.iter().any(|f| f.name() == name && f.data_type().is_integer());
    let excl_ok = fields
        .iter()
        .find(|f| f.name() == "end_exclusive")
        .is_none_or(|f| matches!(f.data_type(), DataType::Boolean | DataType::Null));
    (int_field("bstart") && int_field("bend") && excl_ok).then(|| t.clone())
}

const SPAN_EXPECTED: &str = "a span struct with integer fields bstart and bend (and optional boolean end_exclusive), as built by span_make";

/// Half-open byte ranges of a span column.
struct SpanRanges {
    starts: Int64Array,
    ends: Int64Array,
    exclusive: Option<BooleanArray>,
    spans: StructArray,
}

impl SpanRanges {
    fn new(func: &str, array: &ArrayRef) -> Result<Self> {
        let spans = array
            .as_struct_opt()
            .ok_or_else(|| internal(func, format!("expected a span struct, got {}", array.data_type())))?
            .clone();
        let int_column = |name: &str| -> Result<Int64Array> {
            let column = spans
                .column_by_name(name)
                .ok_or_else(|| internal(func, format!("span has no field {name}")))?;
            Ok(cast(column, &DataType::Int64)?.as_primitive().clone())
        };
        let exclusive = match spans.column_by_name("end_exclusive") {
            Some(c) if c.data_type() == &DataType::Boolean => Some(c.as_boolean().clone()),
            Some(c) if c.data_type() == &DataType::Null => {
                Some(BooleanArray::new_null(c.len()))
            }
            _ => None,
        };
        Ok(Self { starts: int_column("bstart")?, ends: int_column("bend")?, exclusive, spans })
    }

    /// `[start, end)` of a row, or `None` when the span or one of its fields is NULL.
    ///
    /// An inclusive end at `i64::MAX` has no exclusive form in Int64: that is an error, never a
    /// saturated end (which would make the span empty and every comparison on it wrong).
    #[inline]
    fn range(&self, func: &str, row: usize) -> Result<Option<(i64, i64)>> {
        if self.spans.is_null(row) || self.starts.is_null(row) || self.ends.is_null(row) {
            return Ok(None);
        }
        let exclusive = match &self.exclusive {
            Some(e) if e.is_null(row) => return Ok(None),
            Some(e) => e.value(row),
            None => true,
        };
        let (start, end) = (self.starts.value(row), self.ends.value(row));
        if exclusive {
            return Ok(Some((start, end)));
        }
        match end.checked_add(1) {
            Some(end) => Ok(Some((start, end))),
            None => Err(invalid_arg(
                func,
                format!(
                    "span end overflows Int64: the inclusive end bend={end} (bstart={start}) has no exclusive form; \
                     spans must end before {}",
                    i64::MAX
                ),
            )),
        }
    }
}

/// The three span predicates/measures differ only in their row kernel.
#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum SpanOp {
    Len,
    Overlaps,
    Contains,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SpanFunction {
    signature: Signature,
    op: SpanOp,
}

impl SpanFunction {
    fn new(op: SpanOp) -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable), op }
    }
    pub fn len() -> Self {
        Self::new(SpanOp::Len)
    }
    pub fn overlaps() -> Self {
        Self::new(SpanOp::Overlaps)
    }
    pub fn contains() -> Self {
        Self::new(SpanOp::Contains)
    }
}

static SPAN_LEN_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Length of a span in bytes: bend - bstart, plus one when the span's end is inclusive \
         (end_exclusive = false). NULL for a NULL span.",
        "span_len(span: Struct) -> Int64",
        "SELECT span_len(span_make(10, 20, 0, 'BYTE', false)) AS len",
        &[("span", "A span struct, as built by span_make.")],
    )
});

static SPAN_OVERLAPS_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Whether two spans share at least one byte. Each span is first read as a half-open \
         range [bstart, bend + (end_exclusive ? 0 : 1)); spans that merely touch do not \
         overlap, and an empty span overlaps nothing.",
        "span_overlaps(a: Struct, b: Struct) -> Boolean",
        "SELECT span_overlaps(span_make(0, 10), span_make(9, 12)) AS overlaps",
        &[("a", "A span struct."), ("b", "A span struct.")],
    )
});

static SPAN_CONTAINS_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Whether span a contains span b: a.start <= b.start and b.end <= a.end on the half-open \
         ranges (inclusive ends are converted first). Every span contains itself; an empty span \
         at a's boundary is contained.",
        "span_contains(a: Struct, b: Struct) -> Boolean",
        "SELECT span_contains(span_make(0, 10), span_make(2, 5)) AS contains",
        &[("a", "The outer span."), ("b", "The inner span.")],
    )
});

impl SpanFunction {
    /// `op` over the `[start, end)` ranges of two span columns, row by row (NULL when either is).
    fn compare(
        &self,
        a: &SpanRanges,
        b: &SpanRanges,
        rows: usize,
        op: impl Fn((i64, i64), (i64, i64)) -> bool,
    ) -> Result<BooleanArray> {
        (0..rows)
            .map(|r| Ok(match (a.range(self.name(), r)?, b.range(self.name(), r)?) {
                (Some(x), Some(y)) => Some(op(x, y)),
                _ => None,
            }))
            .collect()
    }
}

impl ScalarUDFImpl for SpanFunction {
    fn name(&self) -> &str {
        match self.op {
            SpanOp::Len => "span_len",
            SpanOp::Overlaps => "span_overlaps",
            SpanOp::Contains => "span_contains",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let arity = if self.op == SpanOp::Len { 1 } else { 2 };
        let expected = if arity == 1 {
            format!("(span) where span is {SPAN_EXPECTED}")
        } else {
            format!("(a, b) where a and b are {SPAN_EXPECTED}")
        };
        if arg_types.len() != arity {
            return Err(plan_error(self.name(), &expected, arg_types));
        }
        arg_types
            .iter()
            .map(|t| span_arg(t).ok_or_else(|| plan_error(self.name(), &expected, arg_types)))
            .collect()
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.op == SpanOp::Len { DataType::Int64 } else { DataType::Boolean })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (_, all_scalar) = output_shape(&args.args, args.number_rows);
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let spans = arrays.iter().map(|a| SpanRanges::new(self.name(), a)).collect::<Result<Vec<_>>>()?;
        let rows = arrays.first().map_or(0, |a| a.len());
        let result: ArrayRef = match (self.op, spans.as_slice()) {
            (SpanOp::Len, [a]) => {
                let lengths = (0..rows)
                    .map(|r| match a.range(self.name(), r)? {
                        None => Ok(None),
                        Some((s, e)) => e.checked_sub(s).map(Some).ok_or_else(|| {
                            invalid_arg(self.name(), format!("span length overflows Int64 (bstart={s}, end={e})"))
                        }),
                    })
                    .collect::<Result<Int64Array>>()?;
                Arc::new(lengths)
            }
            (SpanOp::Overlaps, [a, b]) => Arc::new(self.compare(a, b, rows, |(s1, e1), (s2, e2)| s1.max(s2) < e1.min(e2))?),
            (SpanOp::Contains, [a, b]) => Arc::new(self.compare(a, b, rows, |(s1, e1), (s2, e2)| s1 <= s2 && e2 <= e1)?),
            _ => return Err(internal(self.name(), "wrong number of arguments")),
        };
        finish(result, all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.op {
            SpanOp::Len => &SPAN_LEN_DOC,
            SpanOp::Overlaps => &SPAN_OVERLAPS_DOC,
            SpanOp::Contains => &SPAN_CONTAINS_DOC,
        })
    }
}

// ---------------------------------------------------------------------------------------
// span_id

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SpanId {
    signature: Signature,
}

impl Default for SpanId {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static SPAN_ID_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Stable id of a span of a file: exactly stable_id(prefix, path, bstart, bend[, kind]), \
         so ids computed here and by any other stable_id implementation agree.",
        "span_id(prefix: Utf8, path: Utf8, bstart: Int64, bend: Int64 [, kind: Utf8]) -> Utf8",
        "SELECT span_id('node', 'src/lib.rs', 10, 20, 'function') AS id",
        &[
            ("prefix", "Namespace of the id."),
            ("path", "Path of the file the span belongs to."),
            ("bstart", "Start byte offset."),
            ("bend", "End byte offset."),
            ("kind", "Optional kind of the spanned node."),
        ],
    )
});

const SPAN_ID_EXPECTED: &str = "(prefix string, path string, bstart integer, bend integer [, kind string])";

impl ScalarUDFImpl for SpanId {
    fn name(&self) -> &str {
        "span_id"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const COERCERS: [Coercer; 5] = [string_arg, string_arg, int64_arg, int64_arg, string_arg];
        let coerced = coerce_positional(self.name(), SPAN_ID_EXPECTED, arg_types, 4, &COERCERS)?;
        // The parts must also be hashable exactly as stable_id would hash them.
        coerce_parts(self.name(), SPAN_ID_EXPECTED, &coerced[1..], arg_types)?;
        Ok(coerced)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some((prefix, parts)) = args.args.split_first() else {
            return Err(internal(self.name(), "called without arguments"));
        };
        stable_id_kernel(self.name(), prefix, parts, args.number_rows, &args.args)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&SPAN_ID_DOC)
    }
}
