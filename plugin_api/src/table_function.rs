//! ABI 1.2 table-function calls, both sides side by side.
//!
//! datafusion-ffi's `FFI_TableFunction` wraps every provider a table function returns with
//! filter pushdown switched off, so `SELECT … FROM delta_scan(…) WHERE part = 'x'` could never
//! prune files. Rust hosts call table functions through this ABI instead: the arguments cross
//! as datafusion-proto bytes, and the provider comes back as an `FFI_TableProvider` that
//! accepts pushdown. Python hosts still use `FFI_TableFunction` (datafusion-python takes no
//! other kind of table function).

use std::sync::Arc;

use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion_ffi::table_provider::FFI_TableProvider;

use crate::dml::AbiTableProvider;
use crate::error::{ErrorCode, PluginError};
use crate::expr_bytes::{decode_exprs, encode_exprs};
use crate::export::{exported_state, Exported};
use crate::guard::guard_ffi;
use crate::module::PluginModuleRef;
use crate::scan::TableCalls;

/// `call_table_function(name, args)`: each argument is one `Expr` as datafusion-proto bytes.
pub type CallTableFunctionFn =
    extern "C" fn(name: RStr<'_>, args: RSlice<'_, RVec<u8>>) -> RResult<FFI_TableProvider, PluginError>;

/// Plugin side: decodes the arguments against the plugin's own functions, calls the function,
/// exports its provider with pushdown on.
pub extern "C" fn call_table_function<P: Exported>(
    name: RStr<'_>,
    args: RSlice<'_, RVec<u8>>,
) -> RResult<FFI_TableProvider, PluginError> {
    guard_ffi("call_table_function", || {
        let state = exported_state::<P>()?;
        let name = name.as_str();
        let export = state.exports.table_functions.iter().find(|t| t.name == name).ok_or_else(|| {
            PluginError::new(ErrorCode::UnknownObject, format!("this plugin exports no table function named '{name}'"))
        })?;
        let session = state.session();
        let task_ctx = state.task_ctx();
        let exprs = decode_exprs(&args, &task_ctx)?;
        let session_state = session.state();
        let provider = export
            .function
            .call_with_args(TableFunctionArgs::new(&exprs, &session_state))
            .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Execution))?;
        Ok(FFI_TableProvider::new(provider, true, Some(state.runtime().clone()), &state.task_context_provider(), None))
    })
}

/// Host side: a plugin table function called through [`CallTableFunctionFn`].
#[derive(Debug)]
pub struct AbiTableFunction {
    name: String,
    call: CallTableFunctionFn,
    plugin: String,
    namespace: Option<String>,
    calls: TableCalls,
}

impl AbiTableFunction {
    /// The table function `name` of `module` (of plugin `plugin`, configuration namespace
    /// `namespace`), when the module has the ABI 1.2 entry point. The providers it returns
    /// scan and take DML through the plugin's ABI like its other tables ([`AbiTableProvider`]).
    pub fn new(module: PluginModuleRef, plugin: &str, namespace: Option<&str>, name: &str) -> Option<Self> {
        module.call_table_function().map(|call| Self {
            name: name.to_string(),
            call,
            plugin: plugin.to_string(),
            namespace: namespace.map(str::to_string),
            calls: TableCalls::of(module),
        })
    }
}

impl TableFunctionImpl for AbiTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let encoded = encode_exprs(args.exprs())?;
        match (self.call)(RStr::from_str(&self.name), RSlice::from_slice(&encoded)) {
            RResult::ROk(provider) => Ok(AbiTableProvider::wrap(
                &self.plugin,
                self.namespace.as_deref(),
                <Arc<dyn TableProvider>>::from(&provider),
                self.calls,
            )),
            RResult::RErr(error) => Err(DataFusionError::from(error)),
        }
    }
}
