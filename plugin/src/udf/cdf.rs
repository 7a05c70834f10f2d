//! Delta Lake change data feed helpers: `cdf_change_rank`, `cdf_is_upsert`, `cdf_is_delete`.
//!
//! Delta writes `_change_type` as one of `insert`, `update_preimage`, `update_postimage`,
//! `delete`. Folding a feed into current state means ordering a key's changes within one
//! commit version and keeping the last; the rank below encodes that order so that
//! `ORDER BY _commit_version, cdf_change_rank(_change_type)` puts the row describing the state
//! after the commit last. An unknown change type is an error, not NULL: it means the feed is
//! not a Delta CDF (or a newer protocol), and silently dropping rows would corrupt state.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, BooleanBuilder, Int32Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{
    build_doc, coerce_positional, finish, internal, invalid_arg, output_shape, preview,
    string_arg, Coercer, StrView,
};

const SECTION: &str = "CodeAnatomy: change data feed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    UpdatePreimage,
    Delete,
    Insert,
    UpdatePostimage,
}

impl ChangeType {
    pub fn parse(text: &str) -> Option<ChangeType> {
        const NAMES: [(&str, ChangeType); 4] = [
            ("update_preimage", ChangeType::UpdatePreimage),
            ("delete", ChangeType::Delete),
            ("insert", ChangeType::Insert),
            ("update_postimage", ChangeType::UpdatePostimage),
        ];
        NAMES.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|(_, t)| *t)
    }

    /// Pre-images and deletes describe state before the commit, inserts and post-images the
    /// state after it; a delete before an insert of the same key (overwrite) must leave the
    /// insert last.
    pub fn rank(self) -> i32 {
        match self {
            ChangeType::UpdatePreimage => 1,
            ChangeType::Delete => 2,
            ChangeType::Insert => 3,
            ChangeType::UpdatePostimage => 4,
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
enum CdfOp {
    Rank,
    IsUpsert,
    IsDelete,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CdfFunction {
    signature: Signature,
    op: CdfOp,
}

impl CdfFunction {
    fn new(op: CdfOp) -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable), op }
    }
    pub fn change_rank() -> Self {
        Self::new(CdfOp::Rank)
    }
    pub fn is_upsert() -> Self {
        Self::new(CdfOp::IsUpsert)
    }
    pub fn is_delete() -> Self {
        Self::new(CdfOp::IsDelete)
    }
}

static CDF_CHANGE_RANK_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Order of a Delta change data feed _change_type within one commit version: \
         update_preimage = 1, delete = 2, insert = 3, update_postimage = 4 (case-insensitive). \
         Ordering a key's changes by (_commit_version, rank) puts the row describing the state \
         after the commit last. Any other value is an invalid_argument error.",
        "cdf_change_rank(change_type: Utf8) -> Int32",
        "SELECT cdf_change_rank('update_postimage') AS rank",
        &[("change_type", "A Delta _change_type value.")],
    )
});

static CDF_IS_UPSERT_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Whether a Delta _change_type carries the row's new state: true for insert and \
         update_postimage, false for delete and update_preimage (case-insensitive). Any other \
         value is an invalid_argument error.",
        "cdf_is_upsert(change_type: Utf8) -> Boolean",
        "SELECT cdf_is_upsert('insert') AS a, cdf_is_upsert('update_preimage') AS b",
        &[("change_type", "A Delta _change_type value.")],
    )
});

static CDF_IS_DELETE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    build_doc(
        SECTION,
        "Whether a Delta _change_type removes the row: true only for delete (case-insensitive); \
         update_preimage is not a delete (the row survives in its post-image). Any other value \
         is an invalid_argument error.",
        "cdf_is_delete(change_type: Utf8) -> Boolean",
        "SELECT cdf_is_delete('delete') AS a, cdf_is_delete('update_preimage') AS b",
        &[("change_type", "A Delta _change_type value.")],
    )
});

impl ScalarUDFImpl for CdfFunction {
    fn name(&self) -> &str {
        match self.op {
            CdfOp::Rank => "cdf_change_rank",
            CdfOp::IsUpsert => "cdf_is_upsert",
            CdfOp::IsDelete => "cdf_is_delete",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        const COERCERS: [Coercer; 1] = [string_arg];
        coerce_positional(self.name(), "(change_type string)", arg_types, 1, &COERCERS)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.op == CdfOp::Rank { DataType::Int32 } else { DataType::Boolean })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let (rows, all_scalar) = output_shape(&args.args, args.number_rows);
        let values = match args.args.first() {
            Some(a) => StrView::new(name, a)?,
            None => return Err(internal(name, "called without arguments")),
        };
        let parse = |row: usize| -> Result<Option<ChangeType>> {
            values
                .get(row)
                .map(|text| {
                    ChangeType::parse(text).ok_or_else(|| {
                        invalid_arg(
                            name,
                            format!(
                                "unknown change type {}; allowed values are insert, update_preimage, update_postimage, delete",
                                preview(text)
                            ),
                        )
                    })
                })
                .transpose()
        };
        let result: ArrayRef = match self.op {
            CdfOp::Rank => {
                let mut out = Int32Builder::with_capacity(rows);
                for row in 0..rows {
                    out.append_option(parse(row)?.map(ChangeType::rank));
                }
                Arc::new(out.finish())
            }
            CdfOp::IsUpsert | CdfOp::IsDelete => {
                let mut out = BooleanBuilder::with_capacity(rows);
                for row in 0..rows {
                    out.append_option(parse(row)?.map(|t| match self.op {
                        CdfOp::IsUpsert => matches!(t, ChangeType::Insert | ChangeType::UpdatePostimage),
                        _ => t == ChangeType::Delete,
                    }));
                }
                Arc::new(out.finish())
            }
        };
        finish(result, all_scalar)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.op {
            CdfOp::Rank => &CDF_CHANGE_RANK_DOC,
            CdfOp::IsUpsert => &CDF_IS_UPSERT_DOC,
            CdfOp::IsDelete => &CDF_IS_DELETE_DOC,
        })
    }
}
