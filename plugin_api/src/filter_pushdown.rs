//! ABI 1.5 filter pushdown answers, both sides side by side.
//!
//! DataFusion asks a table provider `supports_filters_pushdown` in every optimizer pass of
//! every query. Through datafusion-ffi each question serializes the filters to protobuf and
//! decodes them in the plugin, about 0.1 ms per question. This call carries the same question,
//! and the plugin adds whether its answers for this provider are *stable*: the same filters
//! always get the same answers for as long as the provider lives (a Delta provider's answers
//! depend only on the expressions and the table's partition columns, which it never changes).
//! A host keeps stable answers and asks again only for filters it has not seen.

use std::sync::Mutex;

use abi_stable::std_types::{RResult, RVec};
use abi_stable::StableAbi;
use datafusion::catalog::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion_ffi::table_provider::FFI_TableProvider;

use crate::error::{ErrorCode, PluginError};
use crate::expr_bytes::{decode_exprs, encode_exprs};
use crate::export::{exported_state, Exported};
use crate::guard::guard_ffi;

/// A plugin's answers to one `supports_filters_pushdown` question.
#[repr(C)]
#[derive(StableAbi)]
pub struct PushdownAnswers {
    /// One per filter: 0 unsupported, 1 inexact, 2 exact.
    pub answers: RVec<u8>,
    /// The provider answers the same filters the same way for as long as it lives.
    pub stable: bool,
}

/// `table_filters_pushdown(table, filters)`: filters as datafusion-proto bytes, one per filter.
pub type TableFiltersPushdownFn =
    extern "C" fn(table: &FFI_TableProvider, filters: RVec<RVec<u8>>) -> RResult<PushdownAnswers, PluginError>;

fn to_code(answer: &TableProviderFilterPushDown) -> u8 {
    match answer {
        TableProviderFilterPushDown::Unsupported => 0,
        TableProviderFilterPushDown::Inexact => 1,
        TableProviderFilterPushDown::Exact => 2,
    }
}

fn from_code(code: u8) -> Result<TableProviderFilterPushDown> {
    match code {
        0 => Ok(TableProviderFilterPushDown::Unsupported),
        1 => Ok(TableProviderFilterPushDown::Inexact),
        2 => Ok(TableProviderFilterPushDown::Exact),
        other => Err(DataFusionError::Internal(format!("plugin pushdown answer: expected 0, 1 or 2, found {other}"))),
    }
}

/// Plugin side of [`TableFiltersPushdownFn`].
pub extern "C" fn table_filters_pushdown<P: Exported>(
    table: &FFI_TableProvider,
    filters: RVec<RVec<u8>>,
) -> RResult<PushdownAnswers, PluginError> {
    guard_ffi("table_filters_pushdown", || {
        let state = exported_state::<P>()?;
        let task_ctx = state.task_ctx();
        let filters = decode_exprs(&filters, &task_ctx)?;
        let provider = <std::sync::Arc<dyn TableProvider>>::from(table);
        let answers = provider
            .supports_filters_pushdown(&filters.iter().collect::<Vec<_>>())
            .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Plan))?;
        if answers.len() != filters.len() {
            return Err(PluginError::new(
                ErrorCode::Internal,
                format!("supports_filters_pushdown: expected {} answers, found {}", filters.len(), answers.len()),
            ));
        }
        Ok(PushdownAnswers {
            answers: answers.iter().map(to_code).collect(),
            stable: P::stable_filter_pushdown(provider.as_ref()),
        })
    })
}

/// Stable answers a host keeps per provider before it starts over.
const ANSWERS_KEPT: usize = 64;

/// Host side: a provider's stable pushdown answers, per filter list.
#[derive(Debug, Default)]
pub struct PushdownMemo(Mutex<Vec<(Vec<Expr>, Vec<TableProviderFilterPushDown>)>>);

impl PushdownMemo {
    /// The provider's answers for `filters`, from memory when it gave them before as stable;
    /// `ask` puts the question to the plugin (`table_filters_pushdown` on the provider).
    pub fn answers(
        &self,
        filters: &[&Expr],
        ask: impl FnOnce(RVec<RVec<u8>>) -> RResult<PushdownAnswers, PluginError>,
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        {
            let memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let same = |seen: &Vec<Expr>| seen.len() == filters.len() && seen.iter().zip(filters).all(|(a, b)| a == *b);
            if let Some((_, answers)) = memo.iter().find(|(seen, _)| same(seen)) {
                return Ok(answers.clone());
            }
        }
        let encoded = encode_exprs(filters.iter().copied())?;
        let reply = match ask(encoded) {
            RResult::ROk(reply) => reply,
            RResult::RErr(error) => return Err(DataFusionError::from(error)),
        };
        let answers = reply.answers.iter().map(|c| from_code(*c)).collect::<Result<Vec<_>>>()?;
        if answers.len() != filters.len() {
            return Err(DataFusionError::Internal(format!(
                "plugin pushdown answers: expected {}, found {}",
                filters.len(),
                answers.len()
            )));
        }
        if reply.stable {
            let mut memo = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if memo.len() >= ANSWERS_KEPT {
                memo.remove(0);
            }
            memo.push((filters.iter().map(|e| (*e).clone()).collect(), answers.clone()));
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_codes_round_trip_and_reject_unknown() {
        for answer in
            [TableProviderFilterPushDown::Unsupported, TableProviderFilterPushDown::Inexact, TableProviderFilterPushDown::Exact]
        {
            assert_eq!(from_code(to_code(&answer)).unwrap(), answer);
        }
        assert!(from_code(3).unwrap_err().to_string().contains("found 3"));
    }

    #[test]
    fn stable_answers_are_asked_once_unstable_ones_every_time() {
        use datafusion::prelude::{col, lit};
        let (a, b) = (col("part").eq(lit(1)), col("v").gt(lit(2)));
        for stable in [true, false] {
            let memo = PushdownMemo::default();
            let asked = std::cell::Cell::new(0);
            let ask = |filters: RVec<RVec<u8>>| {
                asked.set(asked.get() + 1);
                let answers = (0..filters.len()).map(|i| if i == 0 { 2 } else { 1 }).collect();
                RResult::ROk(PushdownAnswers { answers, stable })
            };
            let expected = vec![TableProviderFilterPushDown::Exact, TableProviderFilterPushDown::Inexact];
            assert_eq!(memo.answers(&[&a, &b], ask).unwrap(), expected);
            assert_eq!(memo.answers(&[&a, &b], ask).unwrap(), expected);
            assert_eq!(asked.get(), if stable { 1 } else { 2 });
            // Other filters (or another order) are a new question.
            assert_eq!(memo.answers(&[&b], ask).unwrap(), vec![TableProviderFilterPushDown::Exact]);
            assert_eq!(asked.get(), if stable { 2 } else { 3 });
        }
    }
}
