//! Logical expressions as they cross this ABI: datafusion-proto bytes, one buffer per
//! expression (filters, DML assignments, table-function arguments).

use abi_stable::std_types::RVec;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion_proto::bytes::Serializeable;

use crate::error::{ErrorCode, PluginError};

/// Host side: one expression as bytes.
pub fn encode_expr(expr: &Expr) -> Result<RVec<u8>> {
    expr.to_bytes().map(|b| RVec::from(b.to_vec()))
}

/// Host side: expressions as bytes, in order.
pub fn encode_exprs<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Result<RVec<RVec<u8>>> {
    exprs.into_iter().map(encode_expr).collect()
}

/// Plugin side: one expression, its functions resolved in `task_ctx` (the plugin's own); bytes
/// that do not decode are the host's `invalid_argument`.
pub fn decode_expr(bytes: &RVec<u8>, task_ctx: &TaskContext) -> Result<Expr, PluginError> {
    Expr::from_bytes_with_ctx(bytes.as_slice(), task_ctx).map_err(|e| PluginError::from_datafusion(&e, ErrorCode::InvalidArgument))
}

/// Plugin side: [`decode_expr`] for each buffer, in order.
pub fn decode_exprs(buffers: &[RVec<u8>], task_ctx: &TaskContext) -> Result<Vec<Expr>, PluginError> {
    buffers.iter().map(|bytes| decode_expr(bytes, task_ctx)).collect()
}
