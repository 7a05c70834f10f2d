//! Argument plumbing shared by every function of the pack.
//!
//! Type checks happen in `coerce_types` (plan time) and fail with a `[E0006 plan]` error that
//! names the function and the expected types, so a wrong call never reaches execution. At
//! execution time the views below borrow scalar-or-array arguments without expanding literals
//! to full columns: a literal `'UTF16'` unit costs nothing per row.

use std::fmt::Display;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, LargeStringArray, StringArray,
    StringBuilder, StringViewArray,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{ColumnarValue, DocSection, Documentation};
use df_plugin_api::error::{df_error, ErrorCode};

/// A plan-time argument error: names the function, what it accepts and what it got.
pub(crate) fn plan_error(func: &str, expected: &str, got: &[DataType]) -> DataFusionError {
    let got = got.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    df_error(ErrorCode::Plan, format!("{func} expects {expected}; got ({got})"))
}

/// An execution-time error about a value (not a type) the function cannot process.
pub(crate) fn invalid_arg(func: &str, message: impl Display) -> DataFusionError {
    df_error(ErrorCode::InvalidArgument, format!("{func}: {message}"))
}

/// An invariant the planner should have guaranteed was broken (e.g. coercion skipped).
pub(crate) fn internal(func: &str, message: impl Display) -> DataFusionError {
    df_error(ErrorCode::Internal, format!("{func}: {message}"))
}

/// Quotes a row value for an error message, bounded so a huge text cannot flood logs.
pub(crate) fn preview(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    if text.chars().count() <= MAX_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(MAX_CHARS).collect();
        format!("{head:?}…")
    }
}

/// Maps an argument type to the type the kernel wants, or `None` when it is not accepted.
pub(crate) type Coercer = fn(&DataType) -> Option<DataType>;

/// Strings keep their physical layout (Utf8, LargeUtf8 and Utf8View are read natively) so
/// that Parquet's view-typed columns are not copied before every call.
pub(crate) fn string_arg(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(t.clone()),
        DataType::Null => Some(DataType::Utf8),
        DataType::Dictionary(_, value) => string_arg(value).filter(|v| *v != DataType::Null),
        _ => None,
    }
}

/// Any integer width is widened to Int64, the width every position kernel computes in.
pub(crate) fn int64_arg(t: &DataType) -> Option<DataType> {
    match t {
        t if t.is_integer() => Some(DataType::Int64),
        DataType::Null => Some(DataType::Int64),
        DataType::Dictionary(_, value) if value.is_integer() => Some(DataType::Int64),
        _ => None,
    }
}

pub(crate) fn bool_arg(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Boolean | DataType::Null => Some(DataType::Boolean),
        _ => None,
    }
}

/// Checks arity and per-position types in one place, so every function reports wrong calls
/// with the same shape of message.
pub(crate) fn coerce_positional(
    func: &str,
    expected: &str,
    arg_types: &[DataType],
    required: usize,
    coercers: &[Coercer],
) -> Result<Vec<DataType>> {
    if arg_types.len() < required || arg_types.len() > coercers.len() {
        return Err(plan_error(func, expected, arg_types));
    }
    arg_types
        .iter()
        .zip(coercers)
        .map(|(t, coerce)| coerce(t).ok_or_else(|| plan_error(func, expected, arg_types)))
        .collect()
}

/// How many rows to compute, and whether the result must be handed back as a scalar: when
/// every argument is a literal one row is enough whatever the batch size.
pub(crate) fn output_shape(args: &[ColumnarValue], number_rows: usize) -> (usize, bool) {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    (if all_scalar { 1 } else { number_rows }, all_scalar)
}

pub(crate) fn finish(array: ArrayRef, all_scalar: bool) -> Result<ColumnarValue> {
    if all_scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// A string argument, borrowed: one of the three Arrow string layouts or a literal.
#[derive(Clone, Copy)]
pub(crate) enum StrView<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
    Const(Option<&'a str>),
}

impl<'a> StrView<'a> {
    pub(crate) fn new(func: &str, arg: &'a ColumnarValue) -> Result<Self> {
        match arg {
            ColumnarValue::Array(a) => Self::from_array(func, a.as_ref()),
            ColumnarValue::Scalar(s) => match s {
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                    Ok(StrView::Const(v.as_deref()))
                }
                ScalarValue::Null => Ok(StrView::Const(None)),
                other => Err(internal(func, format!("expected a string, got {}", other.data_type()))),
            },
        }
    }

    /// The `index`-th argument when present (optional trailing arguments).
    pub(crate) fn optional(func: &str, args: &'a [ColumnarValue], index: usize) -> Result<Option<Self>> {
        args.get(index).map(|a| Self::new(func, a)).transpose()
    }

    pub(crate) fn from_array(func: &str, array: &'a dyn Array) -> Result<Self> {
        match array.data_type() {
            DataType::Utf8 => Ok(StrView::Utf8(array.as_string::<i32>())),
            DataType::LargeUtf8 => Ok(StrView::Large(array.as_string::<i64>())),
            DataType::Utf8View => Ok(StrView::View(array.as_string_view())),
            DataType::Null => Ok(StrView::Const(None)),
            other => Err(internal(func, format!("expected a string column, got {other}"))),
        }
    }

    #[inline]
    pub(crate) fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            StrView::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            StrView::Large(a) => a.is_valid(row).then(|| a.value(row)),
            StrView::View(a) => a.is_valid(row).then(|| a.value(row)),
            StrView::Const(v) => *v,
        }
    }

    pub(crate) fn as_const(&self) -> Option<Option<&'a str>> {
        match self {
            StrView::Const(v) => Some(*v),
            _ => None,
        }
    }
}

/// An Int64 argument (after coercion), borrowed.
#[derive(Clone, Copy)]
pub(crate) enum I64View<'a> {
    Col(&'a Int64Array),
    Const(Option<i64>),
}

impl<'a> I64View<'a> {
    pub(crate) fn new(func: &str, arg: &'a ColumnarValue) -> Result<Self> {
        match arg {
            ColumnarValue::Array(a) => match a.data_type() {
                DataType::Int64 => Ok(I64View::Col(a.as_primitive())),
                DataType::Null => Ok(I64View::Const(None)),
                other => Err(internal(func, format!("expected an Int64 column, got {other}"))),
            },
            ColumnarValue::Scalar(ScalarValue::Int64(v)) => Ok(I64View::Const(*v)),
            ColumnarValue::Scalar(ScalarValue::Null) => Ok(I64View::Const(None)),
            ColumnarValue::Scalar(other) => {
                Err(internal(func, format!("expected Int64, got {}", other.data_type())))
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, row: usize) -> Option<i64> {
        match self {
            I64View::Col(a) => a.is_valid(row).then(|| a.value(row)),
            I64View::Const(v) => *v,
        }
    }
}

/// A Boolean argument, borrowed.
#[derive(Clone, Copy)]
pub(crate) enum BoolView<'a> {
    Col(&'a BooleanArray),
    Const(Option<bool>),
}

impl<'a> BoolView<'a> {
    pub(crate) fn new(func: &str, arg: &'a ColumnarValue) -> Result<Self> {
        match arg {
            ColumnarValue::Array(a) => match a.data_type() {
                DataType::Boolean => Ok(BoolView::Col(a.as_boolean())),
                DataType::Null => Ok(BoolView::Const(None)),
                other => Err(internal(func, format!("expected a Boolean column, got {other}"))),
            },
            ColumnarValue::Scalar(ScalarValue::Boolean(v)) => Ok(BoolView::Const(*v)),
            ColumnarValue::Scalar(ScalarValue::Null) => Ok(BoolView::Const(None)),
            ColumnarValue::Scalar(other) => {
                Err(internal(func, format!("expected Boolean, got {}", other.data_type())))
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, row: usize) -> Option<bool> {
        match self {
            BoolView::Col(a) => a.is_valid(row).then(|| a.value(row)),
            BoolView::Const(v) => *v,
        }
    }
}

/// A Utf8 output column that reports offset overflow as an error instead of the builder's
/// panic (a batch whose output exceeds 2 GiB of text).
pub(crate) struct Utf8Out {
    builder: StringBuilder,
    bytes: usize,
}

impl Utf8Out {
    pub(crate) fn with_capacity(rows: usize, bytes: usize) -> Self {
        Self { builder: StringBuilder::with_capacity(rows, bytes.min(i32::MAX as usize)), bytes: 0 }
    }

    #[inline]
    pub(crate) fn push(&mut self, func: &str, value: &str) -> Result<()> {
        self.bytes += value.len();
        if self.bytes > i32::MAX as usize {
            return Err(invalid_arg(func, "output of one batch exceeds 2 GiB of text; lower datafusion.execution.batch_size"));
        }
        self.builder.append_value(value);
        Ok(())
    }

    #[inline]
    pub(crate) fn push_null(&mut self) {
        self.builder.append_null();
    }

    pub(crate) fn finish(mut self) -> ArrayRef {
        Arc::new(self.builder.finish())
    }
}

/// Builds a function's documentation. By convention of this pack the syntax line ends with
/// `-> ReturnType`, which `codeanatomy_functions()` splits into its `signatures` and
/// `return_type` columns, so the registry never needs a hand-kept table.
pub(crate) fn build_doc(
    section: &'static str,
    description: &str,
    syntax: &str,
    sql_example: &str,
    arguments: &[(&str, &str)],
) -> Documentation {
    let section = DocSection { include: true, label: section, description: None };
    let mut builder = Documentation::builder(section, description, syntax).with_sql_example(sql_example);
    for (name, text) in arguments {
        builder = builder.with_argument(*name, *text);
    }
    builder.build()
}
