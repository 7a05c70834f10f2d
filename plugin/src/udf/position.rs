//! Conversions between editor coordinates (line, column in some unit) and byte offsets:
//! `col_to_byte`, `byte_to_line_col`, `line_col_to_byte`, `canonicalize_byte_span`, and
//! `interval_align_score` for matching spans produced by different tools.
//!
//! Columns are 0-based and counted in a unit: BYTE (UTF-8 bytes), UTF16 (UTF-16 code units,
//! LSP's default) or UTF32 (Unicode scalar values, i.e. Rust `char`s / Python `str` indices).
//! Following the LSP rule, a column past the end of its line means the end of the line. A
//! column that would split a character is rejected rather than rounded: it means the producer
//! used a different unit than declared, and rounding would hide that bug.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StructArray,
};
use datafusion::arrow::array::NullBufferBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::config::ColUnit;

use super::args::{
    build_doc, coerce_positional, finish, int64_arg, internal, invalid_arg, output_shape,
    preview, string_arg, Coercer, I64View, StrView,
};

const SECTION: &str = "CodeAnatomy: positions";
const UNITS: &str = "BYTE, UTF16, UTF32";

/// Why a column could not be mapped to a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnError {
    Negative,
    InsideUtf8Sequence,
    InsideSurrogatePair,
}

impl ColumnError {
    fn describe(self) -> &'static str {
        match self {
            ColumnError::Negative => "column is negative",
            ColumnError::InsideUtf8Sequence => "column falls inside a multi-byte UTF-8 sequence",
            ColumnError::InsideSurrogatePair => "column falls inside a UTF-16 surrogate pair",
        }
    }
}

/// Byte offset within `line` of the 0-based column `col` counted in `unit`; columns past the
/// end clamp to the line's byte length.
pub fn col_to_byte_in_line(line: &str, col: i64, unit: ColUnit) -> std::result::Result<usize, ColumnError> {
    if col < 0 {
        return Err(ColumnError::Negative);
    }
    let col = col as u64;
    let len = line.len();
    if col >= len as u64 {
        // No unit has more units than bytes per character, so a column at or past the byte
        // length is at or past the end in every unit.
        return Ok(len);
    }
    let col = col as usize;
    // ASCII: every unit is one byte.
    if line.is_ascii() {
        return Ok(col);
    }
    match unit {
        ColUnit::Byte => {
            if line.is_char_boundary(col) {
                Ok(col)
            } else {
                Err(ColumnError::InsideUtf8Sequence)
            }
        }
        ColUnit::Utf16 => {
            let mut units = 0usize;
            for (offset, ch) in line.char_indices() {
                if units == col {
                    return Ok(offset);
                }
                units += ch.len_utf16();
                if units > col {
                    return Err(ColumnError::InsideSurrogatePair);
                }
            }
            Ok(len)
        }
        ColUnit::Utf32 => Ok(line.char_indices().nth(col).map_or(len, |(offset, _)| offset)),
    }
}

/// Number of `unit`s in `text`.
fn count_units(text: &str, unit: ColUnit) -> usize {
    match unit {
        ColUnit::Byte => text.len(),
        _ if text.is_ascii() => text.len(),
        ColUnit::Utf16 => text.chars().map(char::len_utf16).sum(),
        ColUnit::Utf32 => text.chars().count(),
    }
}

/// Resolves a unit argument; literals are parsed once per batch.
enum UnitArg<'a> {
    Fixed(Option<ColUnit>),
    PerRow(StrView<'a>),
}

impl<'a> UnitArg<'a> {
    fn new(func: &str, view: StrView<'a>) -> Result<Self> {
        match view.as_const() {
            Some(None) => Ok(UnitArg::Fixed(None)),
            Some(Some(text)) => Ok(UnitArg::Fixed(Some(parse_unit(func, text)?))),
            None => Ok(UnitArg::PerRow(view)),
        }
    }

    #[inline]
    fn get(&self, func: &str, row: usize) -> Result<Option<ColUnit>> {
        match self {
            UnitArg::Fixed(unit) => Ok(*unit),
            UnitArg::PerRow(view) => view.get(row).map(|t| parse_unit(func, t)).transpose(),
        }
    }
}

fn parse_unit(func: &str, text: &str) -> Result<ColUnit> {
    ColUnit::parse(text)
        .ok_or_else(|| invalid_arg(func, format!("unknown unit {text:?}; allowed units are {UNITS} (any case)")))
}

fn column_error(func: &str, err: ColumnError, line: &str, col: i64, unit: ColUnit) -> DataFusionError {
    invalid_arg(
        func,
        format!("{} (line_text={}, col={col}, unit={})", err.describe(), preview(line), unit.as_str()),
    )
}

fn to_i64(func: &str, value: usize) -> Result<i64> {
    i64::try_from(value).map_err(|_| invalid_arg(func, "offset exceeds Int64"))
}

// ---------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum PositionOp {
    ColToByte,
    ByteToLineCol,
    LineColToByte,
    CanonicalizeByteSpan,
    IntervalAlignScore,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PositionFunction {
    signature: Signature,
    op: PositionOp,
}

impl PositionFunction {
    fn new(op: PositionOp) -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable), op }
    }
    pub fn col_to_byte() -> Self {
        Self::new(PositionOp::ColToByte)
    }
    pub fn byte_to_line_col() -> Self {
        Self::new(PositionOp::ByteToLineCol)
    }
    pub fn line_col_to_byte() -> Self {
        Self::new(PositionOp::LineColToByte)
    }
    pub fn canonicalize_byte_span() -> Self {
        Self::new(PositionOp::CanonicalizeByteSpan)
    }
    pub fn interval_align_score() -> Self {
        Self::new(PositionOp::IntervalAlignScore)
    }
}

fn line_col_fields() -> Fields {
    Fields::from(vec![
        Field::new("line", DataType::Int64, false),
        Field::new("col", DataType::Int64, false),
    ])
}

fn byte_span_fields() -> Fields {
    Fields::from(vec![
        Field::new("bstart", DataType::Int64, false),
        Field::new("bend", DataType::Int64, false),
    ])
}

static COL_TO_BYTE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Byte offset within a line of a 0-based column counted in unit (BYTE, UTF16 or UTF32 = \
         Unicode scalar values; any case). A column past the end of the line clamps to the \
         line's byte length (LSP rule). A negative column, a UTF16 column inside a surrogate \
         pair, or a BYTE column inside a multi-byte character is an invalid_argument error \
         naming the row's values; an unknown unit is an error naming the allowed units.",
        "col_to_byte(line_text: Utf8, col: Int64, unit: Utf8) -> Int64",
        "SELECT col_to_byte('a😀b', 3, 'UTF16') AS byte_offset",
        &[
            ("line_text", "Text of the line (without its terminator)."),
            ("col", "0-based column."),
            ("unit", "BYTE, UTF16 or UTF32."),
        ],
    )
});

static BYTE_TO_LINE_COL_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "0-based {line, col} of a byte offset in a text. Lines end at \\n, \\r\\n or \\r; col is \
         counted in unit (BYTE, UTF16, UTF32) from the start of the line. The offset may equal \
         the text's length (end of text); an offset past the end, negative, or inside a \
         multi-byte character is an error. An offset between the \\r and \\n of a \\r\\n counts \
         the \\r as part of its line.",
        "byte_to_line_col(text: Utf8, byte_offset: Int64, unit: Utf8) -> Struct(line Int64, col Int64)",
        "SELECT byte_to_line_col(E'ab\\ncd', 4, 'UTF32') AS pos",
        &[
            ("text", "The whole text (e.g. a file's contents)."),
            ("byte_offset", "Byte offset into the text."),
            ("unit", "Unit of the returned column."),
        ],
    )
});

static LINE_COL_TO_BYTE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Byte offset in a text of a 0-based line and column (the inverse of byte_to_line_col). \
         Lines end at \\n, \\r\\n or \\r. A column past the end of its line clamps to the end of \
         the line's content (LSP rule); a line past the last line, a negative line or column, \
         or a column splitting a character is an error.",
        "line_col_to_byte(text: Utf8, line: Int64, col: Int64, unit: Utf8) -> Int64",
        "SELECT line_col_to_byte(E'ab\\ncd', 1, 1, 'UTF16') AS byte_offset",
        &[
            ("text", "The whole text."),
            ("line", "0-based line."),
            ("col", "0-based column in unit."),
            ("unit", "BYTE, UTF16 or UTF32."),
        ],
    )
});

static CANONICALIZE_BYTE_SPAN_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Converts a (line, column) span to absolute byte offsets: bstart = start_line_start_byte \
         + col_to_byte(start_line_text, start_col, unit), bend likewise for the end. Columns past \
         the end of their line clamp (LSP rule). Negative line starts, columns splitting a \
         character, or an end before the start are errors.",
        "canonicalize_byte_span(start_line_start_byte: Int64, start_line_text: Utf8, start_col: Int64, end_line_start_byte: Int64, end_line_text: Utf8, end_col: Int64, unit: Utf8) -> Struct(bstart Int64, bend Int64)",
        "SELECT canonicalize_byte_span(0, 'a😀b', 1, 0, 'a😀b', 3, 'UTF16') AS span",
        &[
            ("start_line_start_byte", "Byte offset of the start line in the file."),
            ("start_line_text", "Text of the start line."),
            ("start_col", "Start column in unit."),
            ("end_line_start_byte", "Byte offset of the end line in the file."),
            ("end_line_text", "Text of the end line."),
            ("end_col", "End column in unit."),
            ("unit", "BYTE, UTF16 or UTF32."),
        ],
    )
});

static INTERVAL_ALIGN_SCORE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Jaccard similarity of two half-open intervals [l_start, l_end) and [r_start, r_end): \
         overlap length / union length, 0.0 when disjoint or merely touching, 1.0 when equal. \
         Empty intervals: two empty intervals at the same position score 1.0, any other pair \
         involving an empty interval scores 0.0. An interval whose end precedes its start is an \
         error.",
        "interval_align_score(l_start: Int64, l_end: Int64, r_start: Int64, r_end: Int64) -> Float64",
        "SELECT interval_align_score(0, 10, 5, 15) AS score",
        &[
            ("l_start", "Start of the left interval."),
            ("l_end", "End (exclusive) of the left interval."),
            ("r_start", "Start of the right interval."),
            ("r_end", "End (exclusive) of the right interval."),
        ],
    )
});

impl ScalarUDFImpl for PositionFunction {
    fn name(&self) -> &str {
        match self.op {
            PositionOp::ColToByte => "col_to_byte",
            PositionOp::ByteToLineCol => "byte_to_line_col",
            PositionOp::LineColToByte => "line_col_to_byte",
            PositionOp::CanonicalizeByteSpan => "canonicalize_byte_span",
            PositionOp::IntervalAlignScore => "interval_align_score",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const TEXT_OFFSET_UNIT: [Coercer; 3] = [string_arg, int64_arg, string_arg];
        const TEXT_LINE_COL_UNIT: [Coercer; 4] = [string_arg, int64_arg, int64_arg, string_arg];
        const LINE_SPAN: [Coercer; 7] = [int64_arg, string_arg, int64_arg, int64_arg, string_arg, int64_arg, string_arg];
        const INTERVALS: [Coercer; 4] = [int64_arg, int64_arg, int64_arg, int64_arg];
        let (expected, coercers): (&str, &[Coercer]) = match self.op {
            PositionOp::ColToByte => ("(line_text string, col integer, unit string)", &TEXT_OFFSET_UNIT),
            PositionOp::ByteToLineCol => ("(text string, byte_offset integer, unit string)", &TEXT_OFFSET_UNIT),
            PositionOp::LineColToByte => ("(text string, line integer, col integer, unit string)", &TEXT_LINE_COL_UNIT),
            PositionOp::CanonicalizeByteSpan => (
                "(start_line_start_byte integer, start_line_text string, start_col integer, end_line_start_byte integer, end_line_text string, end_col integer, unit string)",
                &LINE_SPAN,
            ),
            PositionOp::IntervalAlignScore => ("(l_start integer, l_end integer, r_start integer, r_end integer)", &INTERVALS),
        };
        coerce_positional(self.name(), expected, arg_types, coercers.len(), coercers)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.op {
            PositionOp::ColToByte | PositionOp::LineColToByte => DataType::Int64,
            PositionOp::ByteToLineCol => DataType::Struct(line_col_fields()),
            PositionOp::CanonicalizeByteSpan => DataType::Struct(byte_span_fields()),
            PositionOp::IntervalAlignScore => DataType::Float64,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, all_scalar) = output_shape(&args.args, args.number_rows);
        let name = self.name();
        let result = match self.op {
            PositionOp::ColToByte => col_to_byte(name, &args.args, rows)?,
            PositionOp::ByteToLineCol => byte_to_line_col(name, &args.args, rows)?,
            PositionOp::LineColToByte => line_col_to_byte(name, &args.args, rows)?,
            PositionOp::CanonicalizeByteSpan => canonicalize_byte_span(name, &args.args, rows)?,
            PositionOp::IntervalAlignScore => interval_align_score(name, &args.args, rows)?,
        };
        finish(result, all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.op {
            PositionOp::ColToByte => &COL_TO_BYTE_DOC,
            PositionOp::ByteToLineCol => &BYTE_TO_LINE_COL_DOC,
            PositionOp::LineColToByte => &LINE_COL_TO_BYTE_DOC,
            PositionOp::CanonicalizeByteSpan => &CANONICALIZE_BYTE_SPAN_DOC,
            PositionOp::IntervalAlignScore => &INTERVAL_ALIGN_SCORE_DOC,
        })
    }
}

fn arg<'a>(func: &str, args: &'a [ColumnarValue], i: usize) -> Result<&'a ColumnarValue> {
    args.get(i).ok_or_else(|| internal(func, format!("missing argument {}", i + 1)))
}

fn col_to_byte(func: &str, args: &[ColumnarValue], rows: usize) -> Result<ArrayRef> {
    let lines = StrView::new(func, arg(func, args, 0)?)?;
    let cols = I64View::new(func, arg(func, args, 1)?)?;
    let units = UnitArg::new(func, StrView::new(func, arg(func, args, 2)?)?)?;
    let mut out = Int64Builder::with_capacity(rows);
    for row in 0..rows {
        let (Some(line), Some(col), Some(unit)) = (lines.get(row), cols.get(row), units.get(func, row)?) else {
            out.append_null();
            continue;
        };
        let offset = col_to_byte_in_line(line, col, unit).map_err(|e| column_error(func, e, line, col, unit))?;
        out.append_value(to_i64(func, offset)?);
    }
    Ok(Arc::new(out.finish()))
}

/// Byte ranges `[start, content_end)` of each line's content and where the next line starts.
/// Yields lines lazily so a lookup near the top of a large file stops early.
struct LineCursor<'a> {
    bytes: &'a [u8],
    next_start: Option<usize>,
}

impl<'a> LineCursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { bytes: text.as_bytes(), next_start: Some(0) }
    }
}

impl Iterator for LineCursor<'_> {
    /// (line start, content end)
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        let start = self.next_start?;
        let rest = &self.bytes[start..];
        match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) => {
                let content_end = start + i;
                let terminator = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                self.next_start = Some(content_end + terminator);
                Some((start, content_end))
            }
            None => {
                self.next_start = None;
                Some((start, self.bytes.len()))
            }
        }
    }
}

fn byte_to_line_col(func: &str, args: &[ColumnarValue], rows: usize) -> Result<ArrayRef> {
    let texts = StrView::new(func, arg(func, args, 0)?)?;
    let offsets = I64View::new(func, arg(func, args, 1)?)?;
    let units = UnitArg::new(func, StrView::new(func, arg(func, args, 2)?)?)?;
    let mut lines = Int64Builder::with_capacity(rows);
    let mut cols = Int64Builder::with_capacity(rows);
    let mut nulls = NullBufferBuilder::new(rows);
    for row in 0..rows {
        let (Some(text), Some(offset), Some(unit)) = (texts.get(row), offsets.get(row), units.get(func, row)?) else {
            lines.append_value(0);
            cols.append_value(0);
            nulls.append_null();
            continue;
        };
        let bad = |why: &str| {
            invalid_arg(func, format!("{why} (text={}, byte_offset={offset}, unit={})", preview(text), unit.as_str()))
        };
        if offset < 0 {
            return Err(bad("byte offset is negative"));
        }
        if offset as u64 > text.len() as u64 {
            return Err(bad("byte offset is past the end of the text"));
        }
        let offset = offset as usize;
        if !text.is_char_boundary(offset) {
            return Err(bad("byte offset falls inside a multi-byte UTF-8 sequence"));
        }
        let mut line = 0usize;
        let mut line_start = 0usize;
        for (index, (start, _)) in LineCursor::new(text).enumerate() {
            if start > offset {
                break;
            }
            line = index;
            line_start = start;
        }
        lines.append_value(to_i64(func, line)?);
        cols.append_value(to_i64(func, count_units(&text[line_start..offset], unit))?);
        nulls.append_non_null();
    }
    let columns: Vec<ArrayRef> = vec![Arc::new(lines.finish()), Arc::new(cols.finish())];
    Ok(Arc::new(StructArray::try_new(line_col_fields(), columns, nulls.finish())?))
}

fn line_col_to_byte(func: &str, args: &[ColumnarValue], rows: usize) -> Result<ArrayRef> {
    let texts = StrView::new(func, arg(func, args, 0)?)?;
    let line_numbers = I64View::new(func, arg(func, args, 1)?)?;
    let cols = I64View::new(func, arg(func, args, 2)?)?;
    let units = UnitArg::new(func, StrView::new(func, arg(func, args, 3)?)?)?;
    let mut out = Int64Builder::with_capacity(rows);
    for row in 0..rows {
        let (Some(text), Some(line), Some(col), Some(unit)) =
            (texts.get(row), line_numbers.get(row), cols.get(row), units.get(func, row)?)
        else {
            out.append_null();
            continue;
        };
        let bad = |why: &str| {
            invalid_arg(
                func,
                format!("{why} (text={}, line={line}, col={col}, unit={})", preview(text), unit.as_str()),
            )
        };
        if line < 0 {
            return Err(bad("line is negative"));
        }
        let Some((start, content_end)) = LineCursor::new(text).nth(line as usize) else {
            return Err(bad("line is past the last line of the text"));
        };
        let within = col_to_byte_in_line(&text[start..content_end], col, unit)
            .map_err(|e| bad(e.describe()))?;
        out.append_value(to_i64(func, start + within)?);
    }
    Ok(Arc::new(out.finish()))
}

fn canonicalize_byte_span(func: &str, args: &[ColumnarValue], rows: usize) -> Result<ArrayRef> {
    let start_line_bytes = I64View::new(func, arg(func, args, 0)?)?;
    let start_texts = StrView::new(func, arg(func, args, 1)?)?;
    let start_cols = I64View::new(func, arg(func, args, 2)?)?;
    let end_line_bytes = I64View::new(func, arg(func, args, 3)?)?;
    let end_texts = StrView::new(func, arg(func, args, 4)?)?;
    let end_cols = I64View::new(func, arg(func, args, 5)?)?;
    let units = UnitArg::new(func, StrView::new(func, arg(func, args, 6)?)?)?;
    let mut starts = Int64Builder::with_capacity(rows);
    let mut ends = Int64Builder::with_capacity(rows);
    let mut nulls = NullBufferBuilder::new(rows);
    for row in 0..rows {
        let values = (
            start_line_bytes.get(row),
            start_texts.get(row),
            start_cols.get(row),
            end_line_bytes.get(row),
            end_texts.get(row),
            end_cols.get(row),
            units.get(func, row)?,
        );
        let (Some(sl), Some(st), Some(sc), Some(el), Some(et), Some(ec), Some(unit)) = values else {
            starts.append_value(0);
            ends.append_value(0);
            nulls.append_null();
            continue;
        };
        let describe = || {
            format!(
                "start_line_start_byte={sl}, start_line_text={}, start_col={sc}, end_line_start_byte={el}, end_line_text={}, end_col={ec}, unit={}",
                preview(st),
                preview(et),
                unit.as_str()
            )
        };
        if sl < 0 || el < 0 {
            return Err(invalid_arg(func, format!("line start byte is negative ({})", describe())));
        }
        let start_within = col_to_byte_in_line(st, sc, unit)
            .map_err(|e| invalid_arg(func, format!("start {} ({})", e.describe(), describe())))?;
        let end_within = col_to_byte_in_line(et, ec, unit)
            .map_err(|e| invalid_arg(func, format!("end {} ({})", e.describe(), describe())))?;
        let overflow = || invalid_arg(func, format!("byte offset overflows Int64 ({})", describe()));
        let bstart = sl.checked_add(to_i64(func, start_within)?).ok_or_else(overflow)?;
        let bend = el.checked_add(to_i64(func, end_within)?).ok_or_else(overflow)?;
        if bend < bstart {
            return Err(invalid_arg(func, format!("end {bend} precedes start {bstart} ({})", describe())));
        }
        starts.append_value(bstart);
        ends.append_value(bend);
        nulls.append_non_null();
    }
    let columns: Vec<ArrayRef> = vec![Arc::new(starts.finish()), Arc::new(ends.finish())];
    Ok(Arc::new(StructArray::try_new(byte_span_fields(), columns, nulls.finish())?))
}

/// Jaccard index of two half-open intervals; see the function documentation for empties.
pub fn align_score(l: (i64, i64), r: (i64, i64)) -> f64 {
    let (ls, le) = l;
    let (rs, re) = r;
    let l_len = (le as i128) - (ls as i128);
    let r_len = (re as i128) - (rs as i128);
    if l_len == 0 || r_len == 0 {
        return if l == r { 1.0 } else { 0.0 };
    }
    let overlap = ((le.min(re) as i128) - (ls.max(rs) as i128)).max(0);
    let union = l_len + r_len - overlap;
    overlap as f64 / union as f64
}

fn interval_align_score(func: &str, args: &[ColumnarValue], rows: usize) -> Result<ArrayRef> {
    let views = (0..4).map(|i| I64View::new(func, arg(func, args, i)?)).collect::<Result<Vec<_>>>()?;
    let [ls, le, rs, re] = views.as_slice() else {
        return Err(internal(func, "expected four arguments"));
    };
    let mut out = Float64Builder::with_capacity(rows);
    for row in 0..rows {
        let (Some(a), Some(b), Some(c), Some(d)) = (ls.get(row), le.get(row), rs.get(row), re.get(row)) else {
            out.append_null();
            continue;
        };
        if b < a || d < c {
            return Err(invalid_arg(
                func,
                format!("interval end precedes its start (l=[{a}, {b}), r=[{c}, {d}))"),
            ));
        }
        out.append_value(align_score((a, b), (c, d)));
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_in_every_unit() {
        let line = "a😀é";
        assert_eq!(col_to_byte_in_line(line, 0, ColUnit::Utf16), Ok(0));
        assert_eq!(col_to_byte_in_line(line, 1, ColUnit::Utf16), Ok(1));
        assert_eq!(col_to_byte_in_line(line, 2, ColUnit::Utf16), Err(ColumnError::InsideSurrogatePair));
        assert_eq!(col_to_byte_in_line(line, 3, ColUnit::Utf16), Ok(5));
        assert_eq!(col_to_byte_in_line(line, 4, ColUnit::Utf16), Ok(7));
        assert_eq!(col_to_byte_in_line(line, 99, ColUnit::Utf16), Ok(7));
        assert_eq!(col_to_byte_in_line(line, 2, ColUnit::Utf32), Ok(5));
        assert_eq!(col_to_byte_in_line(line, 2, ColUnit::Byte), Err(ColumnError::InsideUtf8Sequence));
        assert_eq!(col_to_byte_in_line(line, 5, ColUnit::Byte), Ok(5));
        assert_eq!(col_to_byte_in_line(line, -1, ColUnit::Byte), Err(ColumnError::Negative));
    }

    #[test]
    fn line_cursor_handles_all_terminators() {
        let lines: Vec<_> = LineCursor::new("a\r\nb\rc\nd").collect();
        assert_eq!(lines, vec![(0, 1), (3, 4), (5, 6), (7, 8)]);
        let lines: Vec<_> = LineCursor::new("a\n").collect();
        assert_eq!(lines, vec![(0, 1), (2, 2)]);
    }

    #[test]
    fn align_scores() {
        assert_eq!(align_score((0, 10), (0, 10)), 1.0);
        assert_eq!(align_score((0, 10), (10, 20)), 0.0);
        assert_eq!(align_score((0, 10), (5, 15)), 5.0 / 15.0);
        assert_eq!(align_score((3, 3), (3, 3)), 1.0);
        assert_eq!(align_score((3, 3), (0, 10)), 0.0);
    }
}
