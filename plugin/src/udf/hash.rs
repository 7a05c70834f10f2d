//! Content-addressed hashing: `stable_hash64`, `stable_hash128`, `stable_id`.
//!
//! The digests are persisted as identifiers, so they must never depend on platform, batch
//! size, partitioning, Arrow physical layout or the crate version. That is why parts are
//! hashed through a text encoding we define ourselves (not Arrow's display code, not
//! `ScalarValue`'s `Hash`), and why integer widths and string layouts hash alike.
//!
//! Canonical bytes of one row: each part's text, parts separated by 0x1F (ASCII unit
//! separator), a NULL part written as the single byte 0x00. Part texts:
//! - strings: their UTF-8 bytes, unchanged;
//! - integers of any width: decimal, `-` for negatives;
//! - booleans: `true` / `false`;
//! - floats: Rust's shortest round-trip `Display` (`1.5`, `1`, `-0`, `NaN`, `inf`; no exponent);
//!   Float16 is widened to Float32 first;
//! - decimals: Arrow's decimal text (`123.45`);
//! - Date32/Date64: `YYYY-MM-DD` (proleptic Gregorian; Date64 sub-day millis are ignored);
//! - timestamps: `YYYY-MM-DDTHH:MM:SS[.fraction]` with the fraction's trailing zeros removed,
//!   suffixed by `Z` when the column has a time zone (the stored instant is UTC), so the same
//!   instant hashes alike in every unit;
//! - Time32/Time64: `HH:MM:SS[.fraction]`;
//! - binary: lowercase hex.
//!
//! All parts NULL gives NULL (there is nothing to identify).

use std::io::Write as _;
use std::sync::{Arc, LazyLock};

use blake2::digest::consts::{U16, U8};
use blake2::{Blake2b, Digest};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Builder, PrimitiveArray,
};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal128Type, Decimal256Type,
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{
    build_doc, finish, internal, output_shape, plan_error, string_arg, StrView, Utf8Out,
};

const SECTION: &str = "CodeAnatomy: hashing and ids";
const PART_SEPARATOR: u8 = 0x1F;
const NULL_PART: u8 = 0x00;
pub(crate) const MAX_PARTS: usize = 16;

/// Accepted part types, after unwrapping dictionaries (their values are what the user sees).
fn part_type(t: &DataType) -> Option<DataType> {
    use DataType::*;
    match t {
        Null | Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
        | Float32 | Float64 | Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary
        | BinaryView | FixedSizeBinary(_) | Date32 | Date64 | Timestamp(_, _)
        | Time32(TimeUnit::Second | TimeUnit::Millisecond)
        | Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
        | Decimal128(_, _) | Decimal256(_, _) => Some(t.clone()),
        // Widened so its text is the (well-defined) f32 shortest form.
        Float16 => Some(Float32),
        Dictionary(_, value) => part_type(value),
        _ => None,
    }
}

/// Plan-time check shared by every function that hashes parts.
pub(crate) fn coerce_parts(func: &str, expected: &str, parts: &[DataType], all: &[DataType]) -> Result<Vec<DataType>> {
    if parts.is_empty() || parts.len() > MAX_PARTS {
        return Err(plan_error(func, expected, all));
    }
    parts.iter().map(|t| part_type(t).ok_or_else(|| plan_error(func, expected, all))).collect()
}

/// Writes one row of one part; `false` means the value is NULL.
trait PartEncoder {
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> bool;
}

struct StrPart<'a>(StrView<'a>);
impl PartEncoder for StrPart<'_> {
    #[inline]
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> bool {
        match self.0.get(row) {
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                true
            }
            None => false,
        }
    }
}

struct NullPart;
impl PartEncoder for NullPart {
    fn encode(&self, _row: usize, _out: &mut Vec<u8>) -> bool {
        false
    }
}

struct BoolPart<'a>(&'a BooleanArray);
impl PartEncoder for BoolPart<'_> {
    #[inline]
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> bool {
        if self.0.is_null(row) {
            return false;
        }
        out.extend_from_slice(if self.0.value(row) { b"true" } else { b"false" });
        true
    }
}

/// Decimal text of an integer without going through `fmt` (this is the hot path of ids
/// built from offsets).
#[inline]
pub(crate) fn write_u64(mut value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut pos = digits.len();
    loop {
        pos -= 1;
        digits[pos] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[pos..]);
}

#[inline]
pub(crate) fn write_i64(value: i64, out: &mut Vec<u8>) {
    if value < 0 {
        out.push(b'-');
    }
    write_u64(value.unsigned_abs(), out);
}

/// Integer columns of every width share one text form, so `1::TINYINT` and `1::BIGINT`
/// hash alike.
struct IntPart<'a, T: ArrowPrimitiveType>(&'a PrimitiveArray<T>, fn(T::Native, &mut Vec<u8>));
impl<T: ArrowPrimitiveType> PartEncoder for IntPart<'_, T> {
    #[inline]
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> bool {
        if self.0.is_null(row) {
            return false;
        }
        (self.1)(self.0.value(row), out);
        true
    }
}

struct FloatPart<'a, T: ArrowPrimitiveType>(&'a PrimitiveArray<T>, fn(T::Native, &mut Vec<u8>));
impl<T: ArrowPrimitiveType> PartEncoder for FloatPart<'_, T> {
    #[inline]
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> bool {
        if self.0.is_null(row) {
            return false;
        }
        (self.1)(self.0.value(row), out);
        true
    }
}

// Writing into a Vec<u8> cannot fail, so the io::Result is discarded deliberately.
fn write_f64(v: f64, out: &mut Vec<u8>) {
    let _ = write!(out, "{v}");
}
fn write_f32(v: f32, out: &mut Vec<u8>) {
    let _ = write!(out, "{v}");
}

struct DecimalPart<'a, T: datafusion::arrow::datatypes::DecimalType>(&'a PrimitiveArray<T>);
impl<T: datafusion::arrow::datatypes::DecimalType> PartEncoder for DecimalPart<'_, T> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> bool {
        if self.0.is_null(row) {
            return false;
        }
        out.extend_from_slice(self.0.value_as_string(row).as_bytes());
        true
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn write_hex(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0x0F) as usize]);
    }
}

struct BinaryPart<'a>(&'a dyn Array, BinaryLayout);
#[derive(Clone, Copy)]
enum BinaryLayout {
    Small,
    Large,
    View,
    Fixed,
}
impl PartEncoder for BinaryPart<'_> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> bool {
        if self.0.is_null(row) {
            return false;
        }
        let bytes: &[u8] = match self.1 {
            BinaryLayout::Small => self.0.as_binary::<i32>().value(row),
            BinaryLayout::Large => self.0.as_binary::<i64>().value(row),
            BinaryLayout::View => self.0.as_binary_view().value(row),
            BinaryLayout::Fixed => self.0.as_fixed_size_binary().value(row),
        };
        write_hex(bytes, out);
        true
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); H. Hinnant's
/// `civil_from_days`, exact for the whole i64 day range Arrow can express here.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// ISO-8601 date; years outside 0000..=9999 use the expanded `+YYYYY` / `-YYYY` form.
fn write_date(days: i64, out: &mut Vec<u8>) {
    let (y, m, d) = civil_from_days(days);
    let _ = if (0..=9999).contains(&y) {
        write!(out, "{y:04}-{m:02}-{d:02}")
    } else if y > 9999 {
        write!(out, "+{y}-{m:02}-{d:02}")
    } else {
        write!(out, "-{:04}-{m:02}-{d:02}", y.unsigned_abs())
    };
}

/// `HH:MM:SS[.fraction]` of a time of day given in `units_per_second` units.
fn write_time_of_day(units: i64, units_per_second: i64, digits: usize, out: &mut Vec<u8>) {
    let secs = units.div_euclid(units_per_second);
    let frac = units.rem_euclid(units_per_second);
    let _ = write!(out, "{:02}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60);
    if frac != 0 {
        let mut text = format!("{frac:0digits$}");
        while text.ends_with('0') {
            text.pop();
        }
        out.push(b'.');
        out.extend_from_slice(text.as_bytes());
    }
}

fn unit_scale(unit: TimeUnit) -> (i64, usize) {
    match unit {
        TimeUnit::Second => (1, 0),
        TimeUnit::Millisecond => (1_000, 3),
        TimeUnit::Microsecond => (1_000_000, 6),
        TimeUnit::Nanosecond => (1_000_000_000, 9),
    }
}

struct TemporalPart<'a> {
    array: &'a dyn Array,
    kind: TemporalKind,
}
#[derive(Clone, Copy)]
enum TemporalKind {
    Date32,
    Date64,
    Timestamp { unit: TimeUnit, zoned: bool },
    Time { unit: TimeUnit },
}

impl TemporalPart<'_> {
    fn raw(&self, row: usize) -> i64 {
        match self.kind {
            TemporalKind::Date32 => self.array.as_primitive::<Date32Type>().value(row) as i64,
            TemporalKind::Date64 => self.array.as_primitive::<Date64Type>().value(row),
            TemporalKind::Timestamp { unit, .. } => match unit {
                TimeUnit::Second => self.array.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => self.array.as_primitive::<TimestampMillisecondType>().value(row),
                TimeUnit::Microsecond => self.array.as_primitive::<TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => self.array.as_primitive::<TimestampNanosecondType>().value(row),
            },
            TemporalKind::Time { unit } => match unit {
                TimeUnit::Second => self.array.as_primitive::<Time32SecondType>().value(row) as i64,
                TimeUnit::Millisecond => self.array.as_primitive::<Time32MillisecondType>().value(row) as i64,
                TimeUnit::Microsecond => self.array.as_primitive::<Time64MicrosecondType>().value(row),
                TimeUnit::Nanosecond => self.array.as_primitive::<Time64NanosecondType>().value(row),
            },
        }
    }
}

impl PartEncoder for TemporalPart<'_> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> bool {
        if self.array.is_null(row) {
            return false;
        }
        let raw = self.raw(row);
        match self.kind {
            TemporalKind::Date32 => write_date(raw, out),
            TemporalKind::Date64 => write_date(raw.div_euclid(86_400_000), out),
            TemporalKind::Timestamp { unit, zoned } => {
                let (per_second, digits) = unit_scale(unit);
                let per_day = per_second * 86_400;
                write_date(raw.div_euclid(per_day), out);
                out.push(b'T');
                write_time_of_day(raw.rem_euclid(per_day), per_second, digits, out);
                if zoned {
                    out.push(b'Z');
                }
            }
            TemporalKind::Time { unit } => {
                let (per_second, digits) = unit_scale(unit);
                write_time_of_day(raw, per_second, digits, out);
            }
        }
        true
    }
}

fn encoder_for<'a>(func: &str, array: &'a dyn Array) -> Result<Box<dyn PartEncoder + 'a>> {
    use DataType::*;
    Ok(match array.data_type() {
        Null => Box::new(NullPart),
        Boolean => Box::new(BoolPart(array.as_boolean())),
        Int8 => Box::new(IntPart::<Int8Type>(array.as_primitive(), |v, o| write_i64(v as i64, o))),
        Int16 => Box::new(IntPart::<Int16Type>(array.as_primitive(), |v, o| write_i64(v as i64, o))),
        Int32 => Box::new(IntPart::<Int32Type>(array.as_primitive(), |v, o| write_i64(v as i64, o))),
        Int64 => Box::new(IntPart::<Int64Type>(array.as_primitive(), write_i64)),
        UInt8 => Box::new(IntPart::<UInt8Type>(array.as_primitive(), |v, o| write_u64(v as u64, o))),
        UInt16 => Box::new(IntPart::<UInt16Type>(array.as_primitive(), |v, o| write_u64(v as u64, o))),
        UInt32 => Box::new(IntPart::<UInt32Type>(array.as_primitive(), |v, o| write_u64(v as u64, o))),
        UInt64 => Box::new(IntPart::<UInt64Type>(array.as_primitive(), write_u64)),
        Float32 => Box::new(FloatPart::<Float32Type>(array.as_primitive(), write_f32)),
        Float64 => Box::new(FloatPart::<Float64Type>(array.as_primitive(), write_f64)),
        Decimal128(_, _) => Box::new(DecimalPart::<Decimal128Type>(array.as_primitive())),
        Decimal256(_, _) => Box::new(DecimalPart::<Decimal256Type>(array.as_primitive())),
        Utf8 | LargeUtf8 | Utf8View => Box::new(StrPart(StrView::from_array(func, array)?)),
        Binary => Box::new(BinaryPart(array, BinaryLayout::Small)),
        LargeBinary => Box::new(BinaryPart(array, BinaryLayout::Large)),
        BinaryView => Box::new(BinaryPart(array, BinaryLayout::View)),
        FixedSizeBinary(_) => Box::new(BinaryPart(array, BinaryLayout::Fixed)),
        Date32 => Box::new(TemporalPart { array, kind: TemporalKind::Date32 }),
        Date64 => Box::new(TemporalPart { array, kind: TemporalKind::Date64 }),
        Timestamp(unit, tz) => Box::new(TemporalPart {
            array,
            kind: TemporalKind::Timestamp { unit: *unit, zoned: tz.is_some() },
        }),
        Time32(unit) | Time64(unit) => Box::new(TemporalPart { array, kind: TemporalKind::Time { unit: *unit } }),
        other => return Err(internal(func, format!("cannot hash a part of type {other}"))),
    })
}

/// One argument of a hash: a column, or a literal whose canonical bytes were computed once.
enum Part<'a> {
    Column(Box<dyn PartEncoder + 'a>),
    Literal(Option<Vec<u8>>),
}

/// Streams the canonical bytes of every row to `emit` (`None` when all parts are NULL).
/// The byte buffer is reused across rows; literals are encoded once per batch.
pub(crate) fn for_each_canonical_row(
    func: &str,
    parts: &[ColumnarValue],
    rows: usize,
    mut emit: impl FnMut(Option<&[u8]>) -> Result<()>,
) -> Result<()> {
    let mut encoded: Vec<Part<'_>> = Vec::with_capacity(parts.len());
    for part in parts {
        encoded.push(match part {
            ColumnarValue::Array(array) => Part::Column(encoder_for(func, array.as_ref())?),
            ColumnarValue::Scalar(scalar) => {
                let single: ArrayRef = scalar.to_array()?;
                let encoder = encoder_for(func, single.as_ref())?;
                let mut bytes = Vec::new();
                Part::Literal(encoder.encode(0, &mut bytes).then_some(bytes))
            }
        });
    }
    let mut buffer = Vec::with_capacity(64);
    for row in 0..rows {
        buffer.clear();
        let mut any_value = false;
        for (i, part) in encoded.iter().enumerate() {
            if i > 0 {
                buffer.push(PART_SEPARATOR);
            }
            let present = match part {
                Part::Column(encoder) => encoder.encode(row, &mut buffer),
                Part::Literal(Some(bytes)) => {
                    buffer.extend_from_slice(bytes);
                    true
                }
                Part::Literal(None) => false,
            };
            if present {
                any_value = true;
            } else {
                buffer.push(NULL_PART);
            }
        }
        emit(any_value.then_some(buffer.as_slice()))?;
    }
    Ok(())
}

#[inline]
pub(crate) fn hash64(bytes: &[u8]) -> i64 {
    let digest = Blake2b::<U8>::digest(bytes);
    let mut le = [0u8; 8];
    le.copy_from_slice(&digest);
    i64::from_le_bytes(le)
}

/// Lowercase hex of the 16-byte digest, written into a stack buffer.
#[inline]
pub(crate) fn hash128_hex(bytes: &[u8], out: &mut [u8; 32]) {
    let digest = Blake2b::<U16>::digest(bytes);
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0x0F) as usize];
    }
}

fn hex_str(hex: &[u8; 32]) -> &str {
    // Only ASCII hex digits are ever written, so this never fails; an empty string would
    // only appear if that invariant broke.
    std::str::from_utf8(hex).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StableHash64 {
    signature: Signature,
}

impl Default for StableHash64 {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

const PARTS_EXPECTED: &str = "1 to 16 parts of type string, integer, boolean, float, decimal, date, time, timestamp or binary";

static STABLE_HASH64_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Deterministic 64-bit hash of the parts: BLAKE2b with an 8-byte digest, read as a \
         little-endian signed integer, over the parts' canonical bytes. Canonical bytes: each \
         part as text (strings as is, integers in decimal, booleans true/false, floats in Rust's \
         shortest round-trip form, decimals as decimal text, dates YYYY-MM-DD, timestamps \
         YYYY-MM-DDTHH:MM:SS[.f] with a Z suffix when zoned, times HH:MM:SS[.f], binary as \
         lowercase hex), parts joined by byte 0x1F, a NULL part written as byte 0x00. NULL when \
         every part is NULL. Identical on every platform, batch size and partitioning.",
        "stable_hash64(part: any scalar type [, part ...up to 16]) -> Int64",
        "SELECT stable_hash64('a', 'b') AS h",
        &[("part", "1 to 16 values of type string, integer, boolean, float, decimal, date, time, timestamp or binary.")],
    )
});

impl ScalarUDFImpl for StableHash64 {
    fn name(&self) -> &str {
        "stable_hash64"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_parts(self.name(), PARTS_EXPECTED, arg_types, arg_types)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, all_scalar) = output_shape(&args.args, args.number_rows);
        let mut out = Int64Builder::with_capacity(rows);
        for_each_canonical_row(self.name(), &args.args, rows, |bytes| {
            match bytes {
                Some(b) => out.append_value(hash64(b)),
                None => out.append_null(),
            }
            Ok(())
        })?;
        finish(Arc::new(out.finish()), all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&STABLE_HASH64_DOC)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StableHash128 {
    signature: Signature,
}

impl Default for StableHash128 {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static STABLE_HASH128_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Deterministic 128-bit hash of the parts as 32 lowercase hex digits: BLAKE2b with a \
         16-byte digest over the same canonical bytes as stable_hash64 (parts as text joined by \
         byte 0x1F, NULL parts as byte 0x00). NULL when every part is NULL.",
        "stable_hash128(part: any scalar type [, part ...up to 16]) -> Utf8",
        "SELECT stable_hash128('a', 'b') AS h",
        &[("part", "1 to 16 values of type string, integer, boolean, float, decimal, date, time, timestamp or binary.")],
    )
});

impl ScalarUDFImpl for StableHash128 {
    fn name(&self) -> &str {
        "stable_hash128"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_parts(self.name(), PARTS_EXPECTED, arg_types, arg_types)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, all_scalar) = output_shape(&args.args, args.number_rows);
        let mut out = Utf8Out::with_capacity(rows, rows * 32);
        let mut hex = [0u8; 32];
        for_each_canonical_row(self.name(), &args.args, rows, |bytes| {
            match bytes {
                Some(b) => {
                    hash128_hex(b, &mut hex);
                    out.push("stable_hash128", hex_str(&hex))?;
                }
                None => out.push_null(),
            }
            Ok(())
        })?;
        finish(out.finish(), all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&STABLE_HASH128_DOC)
    }
}

/// `prefix:hash128(parts)` for every row; shared by `stable_id` and `span_id`.
pub(crate) fn stable_id_kernel(
    func: &str,
    prefix: &ColumnarValue,
    parts: &[ColumnarValue],
    number_rows: usize,
    all_args: &[ColumnarValue],
) -> Result<ColumnarValue> {
    let (rows, all_scalar) = output_shape(all_args, number_rows);
    let prefix = StrView::new(func, prefix)?;
    let mut out = Utf8Out::with_capacity(rows, rows * 48);
    let mut hex = [0u8; 32];
    let mut text = String::with_capacity(64);
    let mut row = 0usize;
    for_each_canonical_row(func, parts, rows, |bytes| {
        match (prefix.get(row), bytes) {
            (Some(p), Some(b)) => {
                hash128_hex(b, &mut hex);
                text.clear();
                text.push_str(p);
                text.push(':');
                text.push_str(hex_str(&hex));
                out.push(func, &text)?;
            }
            _ => out.push_null(),
        }
        row += 1;
        Ok(())
    })?;
    finish(out.finish(), all_scalar)
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StableId {
    signature: Signature,
}

impl Default for StableId {
    fn default() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

static STABLE_ID_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Namespaced stable identifier: prefix || ':' || stable_hash128(part, ...). NULL when the \
         prefix is NULL or every part is NULL.",
        "stable_id(prefix: Utf8, part: any scalar type [, part ...up to 16]) -> Utf8",
        "SELECT stable_id('file', 'src/lib.rs') AS id",
        &[
            ("prefix", "Namespace of the id, e.g. 'file' or 'symbol'."),
            ("part", "1 to 16 values hashed as in stable_hash128."),
        ],
    )
});

const STABLE_ID_EXPECTED: &str = "(prefix string, 1 to 16 parts of type string, integer, boolean, float, decimal, date, time, timestamp or binary)";

impl ScalarUDFImpl for StableId {
    fn name(&self) -> &str {
        "stable_id"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let Some((prefix, parts)) = arg_types.split_first() else {
            return Err(plan_error(self.name(), STABLE_ID_EXPECTED, arg_types));
        };
        let prefix = string_arg(prefix).ok_or_else(|| plan_error(self.name(), STABLE_ID_EXPECTED, arg_types))?;
        let mut coerced = vec![prefix];
        coerced.extend(coerce_parts(self.name(), STABLE_ID_EXPECTED, parts, arg_types)?);
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
        Some(&STABLE_ID_DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn integers_as_decimal() {
        let mut out = Vec::new();
        write_i64(i64::MIN, &mut out);
        assert_eq!(out, i64::MIN.to_string().as_bytes());
        out.clear();
        write_u64(u64::MAX, &mut out);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
        out.clear();
        write_i64(0, &mut out);
        assert_eq!(out, b"0");
    }

    #[test]
    fn timestamp_text() {
        let mut out = Vec::new();
        write_date(0, &mut out);
        out.push(b'T');
        write_time_of_day(1_500, 1_000, 3, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "1970-01-01T00:00:01.5");
        out.clear();
        write_time_of_day(5, 1_000_000_000, 9, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "00:00:00.000000005");
    }
}
