//! ABI 1.2 table-function calls, both sides side by side.
//!
//! datafusion-ffi's `FFI_TableFunction` wraps every provider a table function returns with
//! filter pushdown switched off, so `SELECT … FROM delta_scan(…) WHERE part = 'x'` could never
//! prune files. Rust hosts call table functions through this ABI instead: the arguments cross
//! as datafusion-proto bytes, and the provider comes back as an `FFI_TableProvider` that
//! accepts pushdown. Python hosts register a Python table function that calls the C entry
//! point `dfplugin_call_table_function` the same way (see `export.rs`).

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

/// `call_table_function_with_config(name, args, config)` (ABI 1.6): as [`CallTableFunctionFn`],
/// with the session's options as a live handle from `register_config`.
pub type CallTableFunctionWithConfigFn = extern "C" fn(
    name: RStr<'_>,
    args: RSlice<'_, RVec<u8>>,
    config: *const std::ffi::c_void,
) -> RResult<FFI_TableProvider, PluginError>;

/// Calls the plugin's table function `name` with `exprs` in `session`.
pub(crate) fn call_provider<P: Exported>(
    name: &str,
    exprs: &[datafusion::logical_expr::Expr],
    session: &dyn datafusion::catalog::Session,
) -> Result<Arc<dyn TableProvider>, PluginError> {
    let state = exported_state::<P>()?;
    let export = state.exports.table_functions.iter().find(|t| t.name == name).ok_or_else(|| {
        PluginError::new(ErrorCode::UnknownObject, format!("this plugin exports no table function named '{name}'"))
    })?;
    export
        .function
        .call_with_args(TableFunctionArgs::new(exprs, session))
        .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Execution))
}

/// Calls the plugin's table function `name` with `session`, and exports its provider with
/// pushdown on.
fn call_in<P: Exported>(name: &str, args: &[RVec<u8>], session: &dyn datafusion::catalog::Session) -> Result<FFI_TableProvider, PluginError> {
    let state = exported_state::<P>()?;
    let exprs = decode_exprs(args, &state.task_ctx())?;
    let provider = call_provider::<P>(name, &exprs, session)?;
    Ok(FFI_TableProvider::new(provider, true, Some(state.runtime().clone()), &state.task_context_provider(), None))
}

/// Plugin side of [`CallTableFunctionFn`]: the plugin's own session (default settings).
pub extern "C" fn call_table_function<P: Exported>(
    name: RStr<'_>,
    args: RSlice<'_, RVec<u8>>,
) -> RResult<FFI_TableProvider, PluginError> {
    guard_ffi("call_table_function", || {
        let session = exported_state::<P>()?.session().state();
        call_in::<P>(name.as_str(), &args, &session)
    })
}

/// Plugin side of [`CallTableFunctionWithConfigFn`]: a session with the host's options.
pub extern "C" fn call_table_function_with_config<P: Exported>(
    name: RStr<'_>,
    args: RSlice<'_, RVec<u8>>,
    config: *const std::ffi::c_void,
) -> RResult<FFI_TableProvider, PluginError> {
    guard_ffi("call_table_function_with_config", || {
        if config.is_null() {
            return Err(PluginError::new(ErrorCode::InvalidArgument, "call_table_function_with_config: NULL config handle"));
        }
        // SAFETY: `config` is a live handle from `register_config`, held by the host for the
        // duration of this call.
        let options = unsafe { &*(config as *const std::sync::Arc<datafusion::config::ConfigOptions>) };
        let session = exported_state::<P>()?.scan_session(options);
        call_in::<P>(name.as_str(), &args, session.as_ref())
    })
}

/// Host side: a plugin table function called through [`CallTableFunctionFn`].
#[derive(Debug)]
pub struct AbiTableFunction {
    name: String,
    call: CallTableFunctionFn,
    /// ABI 1.6: the call with the session's options (with `register_config`).
    call_with_config: Option<(CallTableFunctionWithConfigFn, crate::scalar_udf::RegisterConfigFn)>,
    config: crate::scalar_udf::ConfigCache,
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
            call_with_config: module.call_table_function_with_config().zip(module.register_config()),
            config: Default::default(),
            plugin: plugin.to_string(),
            namespace: namespace.map(str::to_string),
            calls: TableCalls::of(module),
        })
    }
}

impl TableFunctionImpl for AbiTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let encoded = encode_exprs(args.exprs())?;
        let answer = match self.call_with_config {
            Some((call, register)) => {
                let handle = self.config.handle(register, args.session().config().options())?;
                call(RStr::from_str(&self.name), RSlice::from_slice(&encoded), handle.ptr)
            }
            None => (self.call)(RStr::from_str(&self.name), RSlice::from_slice(&encoded)),
        };
        match answer {
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
