//! The exporting side: cached exports, the root module's entry points, the plain C entry
//! points, and the [`export_plugin!`](crate::export_plugin) macro that wires them to a
//! [`Plugin`].

use std::ffi::{c_char, CStr, CString};
use std::sync::{Arc, Once, OnceLock};

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use datafusion::config::ConfigOptions;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::TaskContextProvider;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;
use datafusion_ffi::physical_optimizer::FFI_PhysicalOptimizerRule;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::table_provider_factory::FFI_TableProviderFactory;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udtf::FFI_TableFunction;
use datafusion_ffi::udwf::FFI_WindowUDF;
use tokio::runtime::Handle;

use crate::config::LastForOptions;
use crate::error::{ErrorCode, PluginError};
use crate::guard::{guard, guard_ffi, guard_or, panic_message};
use crate::log::{set_sink, LogSink};
use crate::manifest::Manifest;
use crate::module::{NamedTableFunction, NamedTableProviderFactory, PluginModule, PluginModuleRef};
use crate::plugin::{
    config_options_for, live_manifest, plugin_task_context, Plugin, PluginContext, PluginExports,
};
use crate::runtime::plugin_runtime;
use crate::safety::{PanicSafeAggregateUdf, PanicSafeScalarUdf, PanicSafeWindowUdf};
use crate::handover::{DeferredDml, InProcessLogicalCodec};
use crate::version::AbiVersion;
use datafusion::logical_expr::LogicalPlan;

/// A plugin's objects, built once per process.
pub struct ExportedState {
    pub exports: PluginExports,
    pub manifest: Manifest,
    manifest_json: CString,
    runtime: Handle,
    task_ctx: Arc<SessionContext>,
    /// Kept alive for the process: exported providers and table functions hold weak
    /// references to it.
    task_ctx_provider: Arc<FrozenTaskContext>,
    /// The session scans through this ABI hand providers, per configuration handle.
    scan_sessions: LastForOptions<SessionState>,
}

/// The plugin session's task context, built once.
///
/// datafusion-ffi asks the provider for a task context on every call that decodes
/// expressions (each `supports_filters_pushdown`, each scan). Building one from a
/// `SessionContext` copies every function registry (~400 entries with their names): most of
/// a millisecond of planning per query. The plugin's registries never change after start-up,
/// so one context serves every call.
#[derive(Debug)]
struct FrozenTaskContext(Arc<datafusion::execution::TaskContext>);

impl TaskContextProvider for FrozenTaskContext {
    fn task_ctx(&self) -> Arc<datafusion::execution::TaskContext> {
        Arc::clone(&self.0)
    }
}

impl ExportedState {
    /// The plugin's own session (its functions registered), for decoding host expressions.
    pub(crate) fn session(&self) -> &Arc<SessionContext> {
        &self.task_ctx
    }

    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// The plugin session's task context, for decoding host expressions (built once).
    pub(crate) fn task_ctx(&self) -> Arc<datafusion::execution::TaskContext> {
        self.task_ctx_provider.task_ctx()
    }

    /// The session a scan through this ABI hands the provider, built once per configuration
    /// handle: the handle's options are one `Arc` for as long as the host's session options
    /// stay the same, so providers can in turn cache what they derive from them.
    pub(crate) fn scan_session(&self, options: &Arc<ConfigOptions>) -> Arc<SessionState> {
        self.scan_sessions.get_or_make(options, || {
            SessionStateBuilder::new()
                .with_config(SessionConfig::from(options.as_ref().clone()))
                .with_runtime_env(self.task_ctx.runtime_env())
                .build()
        })
    }

    /// The plugin's own session as a task-context provider. It shares the allocation held by
    /// this state, so the weak reference datafusion-ffi keeps stays valid for the process.
    pub(crate) fn task_context_provider(&self) -> Arc<dyn TaskContextProvider> {
        Arc::clone(&self.task_ctx_provider) as Arc<dyn TaskContextProvider>
    }

    /// The factory `name` for FFI, encoding plans with `codec` when the host gave one.
    fn ffi_table_provider_factory(
        &self,
        name: &str,
        codec: Option<&FFI_LogicalExtensionCodec>,
    ) -> Result<FFI_TableProviderFactory, PluginError> {
        let list = &self.exports.table_provider_factories;
        let export = list
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                c_api::unknown(
                    "table provider factory",
                    name,
                    list.iter().map(|f| f.name.clone()).collect(),
                )
            })?;
        let factory = Arc::clone(&export.factory);
        let runtime = Some(self.runtime.clone());
        Ok(match codec {
            Some(codec) => {
                FFI_TableProviderFactory::new_with_ffi_codec(factory, runtime, codec.clone())
            }
            None => {
                FFI_TableProviderFactory::new(factory, runtime, &self.task_context_provider(), None)
            }
        })
    }

    /// A provider of `kind` opened from `options_json`, for FFI.
    fn ffi_table_provider(
        &self,
        kind: &str,
        options_json: &str,
        codec: Option<&FFI_LogicalExtensionCodec>,
    ) -> Result<FFI_TableProvider, PluginError> {
        let provider = self.exports.table_provider(kind, options_json)?;
        let runtime = Some(self.runtime.clone());
        Ok(match codec {
            Some(codec) => {
                FFI_TableProvider::new_with_ffi_codec(provider, true, runtime, codec.clone())
            }
            None => {
                FFI_TableProvider::new(provider, true, runtime, &self.task_context_provider(), None)
            }
        })
    }
}

/// Connects a [`Plugin`] to its per-process cache; implemented by `export_plugin!`.
#[doc(hidden)]
pub trait Exported: Plugin {
    fn state_cell() -> &'static OnceLock<Result<ExportedState, PluginError>>;
}

/// The cached state of `P`, building it on first use.
pub fn exported_state<P: Exported>() -> Result<&'static ExportedState, PluginError> {
    let cell = P::state_cell();
    if let Some(state) = cell.get() {
        return state.as_ref().map_err(Clone::clone);
    }
    // A panic inside `build` leaves the cell empty and propagates to the entry point's guard.
    cell.get_or_init(build_state::<P>)
        .as_ref()
        .map_err(Clone::clone)
}

fn build_state<P: Plugin>() -> Result<ExportedState, PluginError> {
    let span = tracing::info_span!(target: "df_plugin", "build_exports", plugin = P::MANIFEST.name);
    let _enter = span.enter();
    let runtime = plugin_runtime()?;
    let exports = P::build(&PluginContext::new(runtime.clone()))?;
    let manifest = live_manifest(&P::MANIFEST, &exports);
    let json = serde_json::to_string(&manifest).map_err(|e| {
        PluginError::new(
            ErrorCode::Internal,
            format!("manifest does not serialize: {e}"),
        )
    })?;
    let manifest_json = CString::new(json)
        .map_err(|_| PluginError::new(ErrorCode::Internal, "manifest JSON contains a NUL byte"))?;
    let task_ctx = plugin_task_context(&exports);
    tracing::info!(target: "df_plugin", objects = ?exports.names(), "plugin exports built");
    let task_ctx_provider = Arc::new(FrozenTaskContext(task_ctx.task_ctx()));
    Ok(ExportedState {
        exports,
        manifest,
        manifest_json,
        runtime,
        task_ctx,
        task_ctx_provider,
        scan_sessions: LastForOptions::new(),
    })
}

static IMAGE_INIT: Once = Once::new();

/// One-time set-up of a dynamically loaded plugin image: panics inside it are reported through
/// `tracing` (forwarded to the host) instead of this image's default hook writing to stderr.
/// Only entry points reached through `dlopen` call this, never a host linking the rlib.
pub fn init_loaded_image() {
    IMAGE_INIT.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = panic_message(info.payload());
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!(target: "df_plugin", %location, "panic: {message}");
        }));
    });
}

// ---------------------------------------------------------------------------------------------
// Root module entry points (generic; instantiated by the macro)

extern "C" fn manifest_json<P: Exported>() -> RResult<RString, PluginError> {
    guard_ffi("manifest_json", || {
        let state = exported_state::<P>()?;
        Ok(RString::from(
            state.manifest_json.to_string_lossy().into_owned(),
        ))
    })
}

extern "C" fn set_log_sink(sink: LogSink) {
    guard_or("set_log_sink", (), || set_sink(sink))
}

extern "C" fn config_options<P: Exported>(
    options_json: RStr<'_>,
) -> RResult<FFI_ExtensionOptions, PluginError> {
    guard_ffi("config_options", || {
        config_options_for(&P::MANIFEST, options_json.as_str())
    })
}

extern "C" fn scalar_udfs<P: Exported>() -> RResult<RVec<FFI_ScalarUDF>, PluginError> {
    guard_ffi("scalar_udfs", || {
        Ok(exported_state::<P>()?
            .exports
            .scalar_udfs
            .iter()
            .map(|u| FFI_ScalarUDF::from(PanicSafeScalarUdf::wrap(Arc::clone(u))))
            .collect())
    })
}

extern "C" fn aggregate_udfs<P: Exported>() -> RResult<RVec<FFI_AggregateUDF>, PluginError> {
    guard_ffi("aggregate_udfs", || {
        Ok(exported_state::<P>()?
            .exports
            .aggregate_udfs
            .iter()
            .map(|u| FFI_AggregateUDF::from(PanicSafeAggregateUdf::wrap(Arc::clone(u))))
            .collect())
    })
}

extern "C" fn window_udfs<P: Exported>() -> RResult<RVec<FFI_WindowUDF>, PluginError> {
    guard_ffi("window_udfs", || {
        Ok(exported_state::<P>()?
            .exports
            .window_udfs
            .iter()
            .map(|u| FFI_WindowUDF::from(PanicSafeWindowUdf::wrap(Arc::clone(u))))
            .collect())
    })
}

extern "C" fn table_functions<P: Exported>() -> RResult<RVec<NamedTableFunction>, PluginError> {
    guard_ffi("table_functions", || {
        let state = exported_state::<P>()?;
        Ok(state
            .exports
            .table_functions
            .iter()
            .map(|t| NamedTableFunction {
                name: RString::from(t.name.as_str()),
                function: FFI_TableFunction::new(
                    Arc::clone(&t.function),
                    Some(state.runtime.clone()),
                    &state.task_context_provider(),
                    None,
                ),
            })
            .collect())
    })
}

extern "C" fn physical_optimizer_rules<P: Exported>(
) -> RResult<RVec<FFI_PhysicalOptimizerRule>, PluginError> {
    guard_ffi("physical_optimizer_rules", || {
        let state = exported_state::<P>()?;
        Ok(state
            .exports
            .physical_optimizer_rules
            .iter()
            .map(|r| FFI_PhysicalOptimizerRule::new(Arc::clone(r), Some(state.runtime.clone())))
            .collect())
    })
}

extern "C" fn table_provider_factories<P: Exported>(
) -> RResult<RVec<NamedTableProviderFactory>, PluginError> {
    guard_ffi("table_provider_factories", || {
        let state = exported_state::<P>()?;
        state
            .exports
            .table_provider_factories
            .iter()
            .map(|f| {
                Ok(NamedTableProviderFactory {
                    name: RString::from(f.name.as_str()),
                    factory: state.ffi_table_provider_factory(&f.name, None)?,
                })
            })
            .collect()
    })
}

extern "C" fn create_table_provider<P: Exported>(
    kind: RStr<'_>,
    options_json: RStr<'_>,
) -> RResult<FFI_TableProvider, PluginError> {
    guard_ffi("create_table_provider", || {
        exported_state::<P>()?.ffi_table_provider(kind.as_str(), options_json.as_str(), None)
    })
}

extern "C" fn live_objects() -> u64 {
    c_api::live_objects()
}

/// The root module of `P` (called by the abi_stable loader inside the plugin image).
#[doc(hidden)]
pub fn root_module<P: Exported>() -> PluginModuleRef {
    init_loaded_image();
    module_of::<P>()
}

/// The root module of `P` for a host that links the plugin as a Rust library: the same entry
/// points, without the image set-up a dynamically loaded library does (the panic hook stays
/// the host's). Each call leaks one small module table: call it once per plugin.
pub fn native_module<P: Exported>() -> PluginModuleRef {
    module_of::<P>()
}

/// The root module of `P` in the frozen ABI 1.2 layout (the evolution fixture only).
#[doc(hidden)]
pub fn root_module_v1_2<P: Exported>() -> crate::module::v1_2::PluginModuleRef {
    init_loaded_image();
    crate::module::v1_2::PluginModule {
        abi_version: AbiVersion { major: 1, minor: 2 },
        manifest_json: manifest_json::<P>,
        set_log_sink,
        config_options: config_options::<P>,
        scalar_udfs: scalar_udfs::<P>,
        aggregate_udfs: aggregate_udfs::<P>,
        window_udfs: window_udfs::<P>,
        table_functions: table_functions::<P>,
        physical_optimizer_rules: physical_optimizer_rules::<P>,
        live_objects,
        register_config: crate::scalar_udf::register_config,
        invoke_scalar_udf: crate::scalar_udf::invoke_scalar_udf::<P>,
        table_provider_factories: table_provider_factories::<P>,
        create_table_provider: create_table_provider::<P>,
        call_table_function: crate::table_function::call_table_function::<P>,
    }
    .leak_into_prefix()
}

/// The root module of `P` in the frozen ABI 1.4 layout (the evolution fixture only).
#[doc(hidden)]
pub fn root_module_v1_4<P: Exported>() -> crate::module::v1_4::PluginModuleRef {
    init_loaded_image();
    crate::module::v1_4::PluginModule {
        abi_version: AbiVersion { major: 1, minor: 4 },
        manifest_json: manifest_json::<P>,
        set_log_sink,
        config_options: config_options::<P>,
        scalar_udfs: scalar_udfs::<P>,
        aggregate_udfs: aggregate_udfs::<P>,
        window_udfs: window_udfs::<P>,
        table_functions: table_functions::<P>,
        physical_optimizer_rules: physical_optimizer_rules::<P>,
        live_objects,
        register_config: crate::scalar_udf::register_config,
        invoke_scalar_udf: crate::scalar_udf::invoke_scalar_udf::<P>,
        table_provider_factories: table_provider_factories::<P>,
        create_table_provider: create_table_provider::<P>,
        call_table_function: crate::table_function::call_table_function::<P>,
        analyzer_rules: crate::analyzer::analyzer_rules::<P>,
        analyze_plan: crate::analyzer::analyze_plan::<P>,
        relation_planners: crate::relation_planner::relation_planners::<P>,
        plan_relation: crate::relation_planner::plan_relation::<P>,
        table_dml: crate::dml::table_dml::<P>,
        scan_table: crate::scan::scan_table::<P>,
        prepare_scalar_udf: crate::scalar_udf::prepare_scalar_udf::<P>,
        invoke_prepared_scalar_udf: crate::scalar_udf::invoke_prepared_scalar_udf,
        create_groups_accumulator: crate::aggregate_udf::create_groups_accumulator::<P>,
    }
    .leak_into_prefix()
}

fn module_of<P: Exported>() -> PluginModuleRef {
    PluginModule {
        abi_version: AbiVersion::CURRENT,
        manifest_json: manifest_json::<P>,
        set_log_sink,
        config_options: config_options::<P>,
        scalar_udfs: scalar_udfs::<P>,
        aggregate_udfs: aggregate_udfs::<P>,
        window_udfs: window_udfs::<P>,
        table_functions: table_functions::<P>,
        physical_optimizer_rules: physical_optimizer_rules::<P>,
        live_objects,
        register_config: crate::scalar_udf::register_config,
        invoke_scalar_udf: crate::scalar_udf::invoke_scalar_udf::<P>,
        table_provider_factories: table_provider_factories::<P>,
        create_table_provider: create_table_provider::<P>,
        call_table_function: crate::table_function::call_table_function::<P>,
        analyzer_rules: crate::analyzer::analyzer_rules::<P>,
        analyze_plan: crate::analyzer::analyze_plan::<P>,
        relation_planners: crate::relation_planner::relation_planners::<P>,
        plan_relation: crate::relation_planner::plan_relation::<P>,
        table_dml: crate::dml::table_dml::<P>,
        scan_table: crate::scan::scan_table::<P>,
        prepare_scalar_udf: crate::scalar_udf::prepare_scalar_udf::<P>,
        invoke_prepared_scalar_udf: crate::scalar_udf::invoke_prepared_scalar_udf,
        create_groups_accumulator: crate::aggregate_udf::create_groups_accumulator::<P>,
        rule_active: crate::rule_activity::rule_active::<P>,
        table_filters_pushdown: crate::filter_pushdown::table_filters_pushdown::<P>,
        call_table_function_with_config: crate::table_function::call_table_function_with_config::<P>,
    }
    .leak_into_prefix()
}

// ---------------------------------------------------------------------------------------------
// Plain C entry points (for hosts without abi_stable, e.g. Python via ctypes)

/// Implementations behind the `dfplugin_*` C symbols the macro exports.
///
/// Conventions: constructors return an owned pointer or NULL; after NULL,
/// `dfplugin_last_error_code()` / `dfplugin_last_error_message()` describe the failure on the
/// calling thread. Every owned pointer is released with the matching `dfplugin_free_*`.
#[doc(hidden)]
pub mod c_api {
    use super::*;
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicU64, Ordering};

    static LIVE: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        static LAST_ERROR: RefCell<(u32, CString)> = RefCell::new((0, CString::default()));
    }

    fn set_last_error(err: &PluginError) {
        let text = CString::new(err.to_string().replace('\0', " ")).unwrap_or_default();
        LAST_ERROR.with(|slot| *slot.borrow_mut() = (err.raw_code(), text));
    }

    fn clear_last_error() {
        LAST_ERROR.with(|slot| *slot.borrow_mut() = (0, CString::default()));
    }

    /// Runs a constructor: boxes its value, counts it live, or records the error.
    fn produce<T>(entry: &str, f: impl FnOnce() -> Result<T, PluginError>) -> *mut T {
        init_loaded_image();
        match guard(entry, f) {
            Ok(value) => {
                clear_last_error();
                LIVE.fetch_add(1, Ordering::Relaxed);
                Box::into_raw(Box::new(value))
            }
            Err(err) => {
                set_last_error(&err);
                std::ptr::null_mut()
            }
        }
    }

    /// Frees a pointer made by [`produce`].
    ///
    /// # Safety
    /// `ptr` must come from the matching constructor and not have been freed.
    pub unsafe fn release<T>(entry: &str, ptr: *mut T) {
        if ptr.is_null() {
            return;
        }
        let freed = guard(entry, || {
            // SAFETY: per the contract, `ptr` is a live Box<T> made by `produce`.
            drop(unsafe { Box::from_raw(ptr) });
            Ok(())
        });
        LIVE.fetch_sub(1, Ordering::Relaxed);
        if let Err(err) = freed {
            set_last_error(&err);
        }
    }

    pub fn live_objects() -> u64 {
        LIVE.load(Ordering::Relaxed)
    }

    pub fn last_error_code() -> u32 {
        LAST_ERROR.with(|slot| slot.borrow().0)
    }

    pub fn last_error_message() -> *const c_char {
        // The pointer stays valid until the next failing call on this thread.
        LAST_ERROR.with(|slot| slot.borrow().1.as_ptr())
    }

    /// # Safety
    /// `s` must be NULL or a NUL-terminated string.
    unsafe fn text<'a>(s: *const c_char, what: &str) -> Result<&'a str, PluginError> {
        if s.is_null() {
            return Err(PluginError::new(
                ErrorCode::InvalidArgument,
                format!("{what} is NULL; expected a UTF-8 string"),
            ));
        }
        // SAFETY: non-null, NUL-terminated per the contract.
        unsafe { CStr::from_ptr(s) }.to_str().map_err(|e| {
            PluginError::new(
                ErrorCode::InvalidArgument,
                format!("{what} is not UTF-8: {e}"),
            )
        })
    }

    pub(super) fn unknown(kind: &str, name: &str, available: Vec<String>) -> PluginError {
        PluginError::new(
            ErrorCode::UnknownObject,
            format!(
                "this plugin exports no {kind} named '{name}'; available: {}",
                available.join(", ")
            ),
        )
    }

    pub fn manifest_json<P: Exported>() -> *const c_char {
        init_loaded_image();
        match guard("dfplugin_manifest_json", exported_state::<P>) {
            Ok(state) => state.manifest_json.as_ptr(),
            Err(err) => {
                set_last_error(&err);
                std::ptr::null()
            }
        }
    }

    /// # Safety
    /// `options_json` must be NULL (no options) or a NUL-terminated string.
    pub unsafe fn config_options<P: Exported>(
        options_json: *const c_char,
    ) -> *mut FFI_ExtensionOptions {
        produce("dfplugin_config_options", || {
            let json = if options_json.is_null() {
                ""
            } else {
                unsafe { text(options_json, "options_json") }?
            };
            config_options_for(&P::MANIFEST, json)
        })
    }

    /// # Safety
    /// `name` must be a NUL-terminated string.
    pub unsafe fn scalar_udf<P: Exported>(name: *const c_char) -> *mut FFI_ScalarUDF {
        produce("dfplugin_scalar_udf", || {
            let name = unsafe { text(name, "name") }?;
            let list = &exported_state::<P>()?.exports.scalar_udfs;
            let udf = list.iter().find(|u| u.name() == name).ok_or_else(|| {
                unknown(
                    "scalar function",
                    name,
                    list.iter().map(|u| u.name().to_string()).collect(),
                )
            })?;
            Ok(FFI_ScalarUDF::from(PanicSafeScalarUdf::wrap(Arc::clone(
                udf,
            ))))
        })
    }

    /// # Safety
    /// `name` must be a NUL-terminated string.
    pub unsafe fn aggregate_udf<P: Exported>(name: *const c_char) -> *mut FFI_AggregateUDF {
        produce("dfplugin_aggregate_udf", || {
            let name = unsafe { text(name, "name") }?;
            let list = &exported_state::<P>()?.exports.aggregate_udfs;
            let udf = list.iter().find(|u| u.name() == name).ok_or_else(|| {
                unknown(
                    "aggregate function",
                    name,
                    list.iter().map(|u| u.name().to_string()).collect(),
                )
            })?;
            Ok(FFI_AggregateUDF::from(PanicSafeAggregateUdf::wrap(
                Arc::clone(udf),
            )))
        })
    }

    /// # Safety
    /// `name` must be a NUL-terminated string.
    pub unsafe fn window_udf<P: Exported>(name: *const c_char) -> *mut FFI_WindowUDF {
        produce("dfplugin_window_udf", || {
            let name = unsafe { text(name, "name") }?;
            let list = &exported_state::<P>()?.exports.window_udfs;
            let udf = list.iter().find(|u| u.name() == name).ok_or_else(|| {
                unknown(
                    "window function",
                    name,
                    list.iter().map(|u| u.name().to_string()).collect(),
                )
            })?;
            Ok(FFI_WindowUDF::from(PanicSafeWindowUdf::wrap(Arc::clone(
                udf,
            ))))
        })
    }

    /// # Safety
    /// `name` must be a NUL-terminated string; `codec` NULL or a valid
    /// `FFI_LogicalExtensionCodec` (the host session's, e.g. from datafusion-python).
    pub unsafe fn table_function<P: Exported>(
        name: *const c_char,
        codec: *const FFI_LogicalExtensionCodec,
    ) -> *mut FFI_TableFunction {
        produce("dfplugin_table_function", || {
            let name = unsafe { text(name, "name") }?;
            let state = exported_state::<P>()?;
            let list = &state.exports.table_functions;
            let export = list.iter().find(|t| t.name == name).ok_or_else(|| {
                unknown(
                    "table function",
                    name,
                    list.iter().map(|t| t.name.clone()).collect(),
                )
            })?;
            let function = Arc::clone(&export.function);
            let runtime = Some(state.runtime.clone());
            // SAFETY: per the contract, a non-null codec is a valid FFI_LogicalExtensionCodec.
            Ok(match unsafe { codec.as_ref() } {
                Some(codec) => {
                    FFI_TableFunction::new_with_ffi_codec(function, runtime, codec.clone())
                }
                None => {
                    FFI_TableFunction::new(function, runtime, &state.task_context_provider(), None)
                }
            })
        })
    }

    /// # Safety
    /// `name` must be a NUL-terminated string; `codec` NULL or a valid `FFI_LogicalExtensionCodec`.
    pub unsafe fn table_provider_factory<P: Exported>(
        name: *const c_char,
        codec: *const FFI_LogicalExtensionCodec,
    ) -> *mut FFI_TableProviderFactory {
        produce("dfplugin_table_provider_factory", || {
            let name = unsafe { text(name, "name") }?;
            // SAFETY: per the contract, a non-null codec is a valid FFI_LogicalExtensionCodec.
            exported_state::<P>()?.ffi_table_provider_factory(name, unsafe { codec.as_ref() })
        })
    }

    /// # Safety
    /// `kind` and `options_json` must be NUL-terminated strings; `codec` NULL or a valid
    /// `FFI_LogicalExtensionCodec`.
    pub unsafe fn table_provider<P: Exported>(
        kind: *const c_char,
        options_json: *const c_char,
        codec: *const FFI_LogicalExtensionCodec,
    ) -> *mut FFI_TableProvider {
        produce("dfplugin_table_provider", || {
            let kind = unsafe { text(kind, "kind") }?;
            let options_json = unsafe { text(options_json, "options_json") }?;
            // SAFETY: per the contract, a non-null codec is a valid FFI_LogicalExtensionCodec.
            exported_state::<P>()?.ffi_table_provider(kind, options_json, unsafe { codec.as_ref() })
        })
    }

    thread_local! {
        static LAST_TEXT: RefCell<CString> = RefCell::new(CString::default());
    }

    /// Runs a function returning text: the pointer stays valid until the next such call on
    /// this thread; NULL after an error.
    fn produce_text(entry: &str, f: impl FnOnce() -> Result<String, PluginError>) -> *const c_char {
        init_loaded_image();
        match guard(entry, f).and_then(|text| {
            CString::new(text).map_err(|_| {
                PluginError::new(
                    ErrorCode::Internal,
                    format!("{entry}: result contains a NUL byte"),
                )
            })
        }) {
            Ok(text) => {
                clear_last_error();
                LAST_TEXT.with(|slot| {
                    *slot.borrow_mut() = text;
                    slot.borrow().as_ptr()
                })
            }
            Err(err) => {
                set_last_error(&err);
                std::ptr::null()
            }
        }
    }

    /// The plugin's in-process logical codec, for a host session's codec chain.
    pub fn logical_codec<P: Exported>() -> *mut FFI_LogicalExtensionCodec {
        produce("dfplugin_logical_codec", || {
            let state = exported_state::<P>()?;
            Ok(FFI_LogicalExtensionCodec::new(
                Arc::new(InProcessLogicalCodec),
                Some(state.runtime.clone()),
                &state.task_context_provider(),
            ))
        })
    }

    /// [`crate::statement::inspect`] as JSON, or with `replacements_json` (`{"<index>": "<table>"}`)
    /// the rewritten statement.
    ///
    /// # Safety
    /// `sql` and `dialect` must be NUL-terminated strings; `replacements_json` NULL or one.
    pub unsafe fn inspect_sql(
        sql: *const c_char,
        dialect: *const c_char,
        replacements_json: *const c_char,
    ) -> *const c_char {
        produce_text("dfplugin_inspect_sql", || {
            let sql = unsafe { text(sql, "sql") }?;
            let dialect = unsafe { text(dialect, "dialect") }?;
            if replacements_json.is_null() {
                let info = crate::statement::inspect(sql, dialect)?;
                return serde_json::to_string(&info).map_err(|e| {
                    PluginError::new(
                        ErrorCode::Internal,
                        format!("statement info does not serialize: {e}"),
                    )
                });
            }
            let json = unsafe { text(replacements_json, "replacements_json") }?;
            let replacements: std::collections::BTreeMap<usize, String> =
                serde_json::from_str(json).map_err(|e| {
                    PluginError::new(
                        ErrorCode::InvalidArgument,
                        format!("replacements_json: expected {{\"<index>\": \"<table>\"}}: {e}"),
                    )
                })?;
            crate::statement::rewrite(sql, dialect, &replacements)
        })
    }

    /// Runs every exported analyzer rule on a plan description (`PlanDescription` JSON) with the
    /// session's settings of the plugin's namespace (JSON object). 0 when every rule accepts it,
    /// else the error code (message in `dfplugin_last_error_message`).
    ///
    /// # Safety
    /// Both arguments must be NUL-terminated strings.
    pub unsafe fn analyze_plan<P: Exported>(
        plan_json: *const c_char,
        settings_json: *const c_char,
    ) -> u32 {
        init_loaded_image();
        let checked = guard("dfplugin_analyze_plan", || {
            let plan_json = unsafe { text(plan_json, "plan_json") }?;
            let settings_json = unsafe { text(settings_json, "settings_json") }?;
            let plan: crate::analyzer::PlanDescription =
                serde_json::from_str(plan_json).map_err(|e| {
                    PluginError::new(
                        ErrorCode::InvalidArgument,
                        format!("plan_json: expected a plan description: {e}"),
                    )
                })?;
            let config = crate::plugin::options_from_settings(&P::MANIFEST, settings_json)?;
            for rule in &exported_state::<P>()?.exports.analyzer_rules {
                rule.analyze(&plan, &config)?;
            }
            Ok(())
        });
        match checked {
            Ok(()) => {
                clear_last_error();
                0
            }
            Err(err) => {
                let code = err.raw_code();
                set_last_error(&err);
                code
            }
        }
    }

    /// The host session's codec a hand-over entry point was given.
    ///
    /// # Safety
    /// `codec` must be NULL or a valid `FFI_LogicalExtensionCodec` for the duration of the call.
    unsafe fn session_codec<'a>(
        codec: *const FFI_LogicalExtensionCodec,
    ) -> Result<&'a FFI_LogicalExtensionCodec, PluginError> {
        // SAFETY: per the contract, a non-null codec is valid for the duration of the call.
        unsafe { codec.as_ref() }.ok_or_else(|| {
            PluginError::new(
                ErrorCode::InvalidArgument,
                "codec is NULL; expected the session's FFI_LogicalExtensionCodec",
            )
        })
    }

    /// The plan a host handed over (`plan_bytes`, `len`) decoded with its session's codec chain
    /// (`codec`), which reaches the plugin's in-process codec and the host's own.
    ///
    /// # Safety
    /// `plan_bytes` must be NULL or point to `len` readable bytes; `codec` NULL or a valid
    /// `FFI_LogicalExtensionCodec`.
    unsafe fn handed_over_plan<P: Exported>(
        plan_bytes: *const u8,
        len: usize,
        codec: *const FFI_LogicalExtensionCodec,
    ) -> Result<(LogicalPlan, FFI_LogicalExtensionCodec), PluginError> {
        if plan_bytes.is_null() {
            return Err(PluginError::new(
                ErrorCode::InvalidArgument,
                "plan_bytes is NULL; expected a plan encoded with the session's codecs",
            ));
        }
        // SAFETY: per the contract, `plan_bytes` points to `len` readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(plan_bytes, len) };
        let codec = unsafe { session_codec(codec) }?;
        let plan = crate::handover::decode_plan(bytes, codec, &exported_state::<P>()?.task_ctx.task_ctx())
            .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Plan))?;
        Ok((plan, codec.clone()))
    }

    /// The description of a handed-over plan (`PlanDescription` JSON) for the plugin's analyzer
    /// rules: what a Rust host's analyzer would describe.
    ///
    /// # Safety
    /// As [`handed_over_plan`].
    pub unsafe fn describe_plan<P: Exported>(
        plan_bytes: *const u8,
        len: usize,
        codec: *const FFI_LogicalExtensionCodec,
    ) -> *const c_char {
        produce_text("dfplugin_describe_plan", || {
            let (plan, _) = unsafe { handed_over_plan::<P>(plan_bytes, len, codec) }?;
            let description = crate::analyzer::describe_plan(&plan)
                .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Plan))?;
            serde_json::to_string(&description).map_err(|e| {
                PluginError::new(ErrorCode::Internal, format!("plan description does not serialize: {e}"))
            })
        })
    }

    /// A handed-over `DELETE` / `UPDATE` on one of the plugin's tables as a table whose scan
    /// runs it ([`DeferredDml`]); `settings_json` holds the session's values of the plugin's
    /// namespace. NULL with `unsupported` when the statement is not DML on the plugin's table.
    ///
    /// # Safety
    /// As [`handed_over_plan`]; `settings_json` a NUL-terminated string.
    pub unsafe fn dml_provider<P: Exported>(
        plan_bytes: *const u8,
        len: usize,
        codec: *const FFI_LogicalExtensionCodec,
        settings_json: *const c_char,
    ) -> *mut FFI_TableProvider {
        produce("dfplugin_dml_provider", || {
            let (plan, codec) = unsafe { handed_over_plan::<P>(plan_bytes, len, codec) }?;
            let settings_json = unsafe { text(settings_json, "settings_json") }?;
            let config = crate::plugin::options_from_settings(&P::MANIFEST, settings_json)?;
            let provider = DeferredDml::for_own_dml(plan, config).ok_or_else(|| {
                PluginError::new(
                    ErrorCode::Unsupported,
                    format!("the statement is not a DELETE or UPDATE on a table of plugin '{}'", P::MANIFEST.name),
                )
            })?;
            tracing::info!(target: "df_plugin", plugin = P::MANIFEST.name, "DML handed over for planning");
            Ok(FFI_TableProvider::new_with_ffi_codec(
                Arc::new(provider),
                false,
                Some(exported_state::<P>()?.runtime.clone()),
                codec,
            ))
        })
    }

    /// The plugin's table function `name` called with `n_args` arguments, each one expression
    /// as datafusion-proto bytes encoded with the host session's codecs (`codec`), in a session
    /// with the host's settings of the plugin's namespace (`settings_json`). Unlike
    /// datafusion-ffi's `FFI_TableFunction`, the provider accepts filter pushdown.
    ///
    /// # Safety
    /// `name` and `settings_json` must be NUL-terminated strings; `args` and `lens` NULL (no
    /// argument) or arrays of `n_args` pointers to `lens[i]` readable bytes; `codec` a valid
    /// `FFI_LogicalExtensionCodec`.
    pub unsafe fn call_table_function<P: Exported>(
        name: *const c_char,
        args: *const *const u8,
        lens: *const usize,
        n_args: usize,
        codec: *const FFI_LogicalExtensionCodec,
        settings_json: *const c_char,
    ) -> *mut FFI_TableProvider {
        produce("dfplugin_call_table_function", || {
            let name = unsafe { text(name, "name") }?;
            let settings_json = unsafe { text(settings_json, "settings_json") }?;
            let codec = unsafe { session_codec(codec) }?;
            let (pointers, sizes): (&[*const u8], &[usize]) = if n_args == 0 {
                (&[], &[])
            } else if args.is_null() || lens.is_null() {
                return Err(PluginError::new(
                    ErrorCode::InvalidArgument,
                    format!("{n_args} arguments announced but args or lens is NULL"),
                ));
            } else {
                // SAFETY: per the contract, both arrays hold `n_args` elements.
                unsafe { (std::slice::from_raw_parts(args, n_args), std::slice::from_raw_parts(lens, n_args)) }
            };
            let state = exported_state::<P>()?;
            let task_ctx = state.task_ctx();
            let decoder: Arc<dyn datafusion_proto::logical_plan::LogicalExtensionCodec> = codec.into();
            let mut exprs = Vec::with_capacity(n_args);
            for (i, (pointer, size)) in pointers.iter().zip(sizes).enumerate() {
                if pointer.is_null() {
                    return Err(PluginError::new(ErrorCode::InvalidArgument, format!("argument {i} of {name}(...) is NULL")));
                }
                // SAFETY: per the contract, `pointer` points to `size` readable bytes.
                let bytes = unsafe { std::slice::from_raw_parts(*pointer, *size) };
                let node = <datafusion_proto::protobuf::LogicalExprNode as prost::Message>::decode(bytes).map_err(|e| {
                    PluginError::new(ErrorCode::InvalidArgument, format!("argument {i} of {name}(...) is not an encoded expression: {e}"))
                })?;
                let expr = datafusion_proto::logical_plan::from_proto::parse_expr(&node, task_ctx.as_ref(), decoder.as_ref())
                    .map_err(|e| PluginError::new(ErrorCode::InvalidArgument, format!("argument {i} of {name}(...): {e}")))?;
                exprs.push(expr);
            }
            let options = Arc::new(crate::plugin::options_from_settings(&P::MANIFEST, settings_json)?);
            let session = state.scan_session(&options);
            let provider = crate::table_function::call_provider::<P>(name, &exprs, session.as_ref())?;
            Ok(FFI_TableProvider::new_with_ffi_codec(provider, true, Some(state.runtime.clone()), codec.clone()))
        })
    }

    /// The table provider a time-travel clause selects. `plan_bytes` is `SELECT * FROM <table>`
    /// encoded by the host session with the plugin's codec installed (that is how the host hands
    /// over a registered table); `relation_json` a `RelationDescription`. NULL with
    /// `unsupported` when no relation planner of the plugin takes the table.
    ///
    /// # Safety
    /// As [`handed_over_plan`]; the strings NUL-terminated.
    pub unsafe fn time_travel_provider<P: Exported>(
        plan_bytes: *const u8,
        len: usize,
        codec: *const FFI_LogicalExtensionCodec,
        relation_json: *const c_char,
        settings_json: *const c_char,
    ) -> *mut FFI_TableProvider {
        produce("dfplugin_time_travel_provider", || {
            let (plan, codec) = unsafe { handed_over_plan::<P>(plan_bytes, len, codec) }?;
            let relation_json = unsafe { text(relation_json, "relation_json") }?;
            let settings_json = unsafe { text(settings_json, "settings_json") }?;
            let relation: crate::relation_planner::RelationDescription =
                serde_json::from_str(relation_json).map_err(|e| {
                    PluginError::new(ErrorCode::InvalidArgument, format!("relation_json: {e}"))
                })?;
            let state = exported_state::<P>()?;
            let mut table = None;
            datafusion::common::tree_node::TreeNode::apply(&plan, |node| {
                if let LogicalPlan::TableScan(scan) = node {
                    table = Some(Arc::clone(&scan.source));
                }
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })
            .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Internal))?;
            let table = table.and_then(|source| crate::handover::own_provider(&source));
            let config = crate::plugin::options_from_settings(&P::MANIFEST, settings_json)?;
            for planner in &state.exports.relation_planners {
                if let Some(provider) = planner.plan_relation(&relation, table.clone(), &config)? {
                    return Ok(FFI_TableProvider::new_with_ffi_codec(
                        provider,
                        true,
                        Some(state.runtime.clone()),
                        codec.clone(),
                    ));
                }
            }
            Err(PluginError::new(
                ErrorCode::Unsupported,
                format!(
                    "table '{}' is not a table of plugin '{}' that supports {}",
                    relation.table,
                    P::MANIFEST.name,
                    relation
                        .version
                        .as_ref()
                        .map_or("time travel", |v| v.clause.as_str())
                ),
            ))
        })
    }

    /// # Safety
    /// `name` must be a NUL-terminated string.
    pub unsafe fn physical_optimizer_rule<P: Exported>(
        name: *const c_char,
    ) -> *mut FFI_PhysicalOptimizerRule {
        produce("dfplugin_physical_optimizer_rule", || {
            let name = unsafe { text(name, "name") }?;
            let state = exported_state::<P>()?;
            let list = &state.exports.physical_optimizer_rules;
            let rule = list.iter().find(|r| r.name() == name).ok_or_else(|| {
                unknown(
                    "physical optimizer rule",
                    name,
                    list.iter().map(|r| r.name().to_string()).collect(),
                )
            })?;
            Ok(FFI_PhysicalOptimizerRule::new(
                Arc::clone(rule),
                Some(state.runtime.clone()),
            ))
        })
    }
}

/// Exports a [`Plugin`]: embeds its manifest in the library file, exports the abi_stable root
/// module and the plain C entry points (`dfplugin_*`). Invoke once, in the plugin crate's root.
/// The crate needs `abi_stable` as a direct dependency and a build script calling
/// `df_plugin_build::emit()` (see [`build_info!`](crate::build_info)).
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::export_plugin!(@root $plugin, $crate::module::PluginModuleRef, $crate::export::root_module::<$plugin>());
    };
    // The evolution fixture: the same plugin in the frozen ABI 1.2 root-module layout.
    ($plugin:ty, frozen_abi_1_2) => {
        $crate::export_plugin!(@root $plugin, $crate::module::v1_2::PluginModuleRef, $crate::export::root_module_v1_2::<$plugin>());
    };
    // The evolution fixture: the same plugin in the frozen ABI 1.4 root-module layout.
    ($plugin:ty, frozen_abi_1_4) => {
        $crate::export_plugin!(@root $plugin, $crate::module::v1_4::PluginModuleRef, $crate::export::root_module_v1_4::<$plugin>());
    };
    (@root $plugin:ty, $module:ty, $root:expr) => {
        const _: () = {
            use ::std::ffi::c_char;
            use $crate::__private::*;

            impl $crate::export::Exported for $plugin {
                fn state_cell() -> &'static ::std::sync::OnceLock<::std::result::Result<$crate::export::ExportedState, $crate::PluginError>> {
                    static CELL: ::std::sync::OnceLock<::std::result::Result<$crate::export::ExportedState, $crate::PluginError>> =
                        ::std::sync::OnceLock::new();
                    &CELL
                }
            }

            const EMBEDDED_LEN: usize = $crate::manifest::embedded_len(&<$plugin as $crate::Plugin>::MANIFEST);

            /// The manifest, readable from the file without loading it.
            #[used]
            #[cfg_attr(target_vendor = "apple", unsafe(link_section = "__DATA,__dfplugin"))]
            #[cfg_attr(not(target_vendor = "apple"), unsafe(link_section = ".dfplugin_manifest"))]
            static EMBEDDED_MANIFEST: [u8; EMBEDDED_LEN] =
                $crate::manifest::embed::<EMBEDDED_LEN>(&<$plugin as $crate::Plugin>::MANIFEST);

            #[::abi_stable::export_root_module]
            fn dfplugin_root_module() -> $module {
                $root
            }

            /// ABI version as `major << 16 | minor`.
            #[unsafe(no_mangle)]
            pub extern "C" fn dfplugin_abi_version() -> u32 {
                let v = <$plugin as $crate::Plugin>::MANIFEST.abi;
                ((v.major as u32) << 16) | v.minor as u32
            }

            /// The embedded manifest bytes (header + JSON); also keeps the section linked.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_embedded_manifest(len: *mut usize) -> *const u8 {
                if !len.is_null() {
                    // SAFETY: caller passes a valid out-pointer or NULL.
                    unsafe { *len = EMBEDDED_LEN };
                }
                EMBEDDED_MANIFEST.as_ptr()
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn dfplugin_manifest_json() -> *const c_char {
                c_api::manifest_json::<$plugin>()
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn dfplugin_last_error_code() -> u32 {
                c_api::last_error_code()
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn dfplugin_last_error_message() -> *const c_char {
                c_api::last_error_message()
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn dfplugin_live_objects() -> u64 {
                c_api::live_objects()
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_config_options(options_json: *const c_char) -> *mut FFI_ExtensionOptions {
                unsafe { c_api::config_options::<$plugin>(options_json) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_free_config_options(ptr: *mut FFI_ExtensionOptions) {
                unsafe { c_api::release("dfplugin_free_config_options", ptr) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_scalar_udf(name: *const c_char) -> *mut FFI_ScalarUDF {
                unsafe { c_api::scalar_udf::<$plugin>(name) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_free_scalar_udf(ptr: *mut FFI_ScalarUDF) {
                unsafe { c_api::release("dfplugin_free_scalar_udf", ptr) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_aggregate_udf(name: *const c_char) -> *mut FFI_AggregateUDF {
                unsafe { c_api::aggregate_udf::<$plugin>(name) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_free_aggregate_udf(ptr: *mut FFI_AggregateUDF) {
                unsafe { c_api::release("dfplugin_free_aggregate_udf", ptr) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_window_udf(name: *const c_char) -> *mut FFI_WindowUDF {
                unsafe { c_api::window_udf::<$plugin>(name) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_free_window_udf(ptr: *mut FFI_WindowUDF) {
                unsafe { c_api::release("dfplugin_free_window_udf", ptr) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_table_function(
                name: *const c_char,
                codec: *const FFI_LogicalExtensionCodec,
            ) -> *mut FFI_TableFunction {
                unsafe { c_api::table_function::<$plugin>(name, codec) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_free_table_function(ptr: *mut FFI_TableFunction) {
                unsafe { c_api::release("dfplugin_free_table_function", ptr) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_table_provider_factory(
                name: *const c_char,
                codec: *const FFI_LogicalExtensionCodec,
            ) -> *mut FFI_TableProviderFactory {
                unsafe { c_api::table_provider_factory::<$plugin>(name, codec) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_free_table_provider_factory(ptr: *mut FFI_TableProviderFactory) {
                unsafe { c_api::release("dfplugin_free_table_provider_factory", ptr) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_table_provider(
                kind: *const c_char,
                options_json: *const c_char,
                codec: *const FFI_LogicalExtensionCodec,
            ) -> *mut FFI_TableProvider {
                unsafe { c_api::table_provider::<$plugin>(kind, options_json, codec) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_free_table_provider(ptr: *mut FFI_TableProvider) {
                unsafe { c_api::release("dfplugin_free_table_provider", ptr) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_physical_optimizer_rule(name: *const c_char) -> *mut FFI_PhysicalOptimizerRule {
                unsafe { c_api::physical_optimizer_rule::<$plugin>(name) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_free_physical_optimizer_rule(ptr: *mut FFI_PhysicalOptimizerRule) {
                unsafe { c_api::release("dfplugin_free_physical_optimizer_rule", ptr) }
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn dfplugin_logical_codec() -> *mut FFI_LogicalExtensionCodec {
                c_api::logical_codec::<$plugin>()
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_free_logical_codec(ptr: *mut FFI_LogicalExtensionCodec) {
                unsafe { c_api::release("dfplugin_free_logical_codec", ptr) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_inspect_sql(
                sql: *const c_char,
                dialect: *const c_char,
                replacements_json: *const c_char,
            ) -> *const c_char {
                unsafe { c_api::inspect_sql(sql, dialect, replacements_json) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_analyze_plan(plan_json: *const c_char, settings_json: *const c_char) -> u32 {
                unsafe { c_api::analyze_plan::<$plugin>(plan_json, settings_json) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_time_travel_provider(
                plan_bytes: *const u8,
                len: usize,
                codec: *const FFI_LogicalExtensionCodec,
                relation_json: *const c_char,
                settings_json: *const c_char,
            ) -> *mut FFI_TableProvider {
                unsafe { c_api::time_travel_provider::<$plugin>(plan_bytes, len, codec, relation_json, settings_json) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_call_table_function(
                name: *const c_char,
                args: *const *const u8,
                lens: *const usize,
                n_args: usize,
                codec: *const FFI_LogicalExtensionCodec,
                settings_json: *const c_char,
            ) -> *mut FFI_TableProvider {
                unsafe { c_api::call_table_function::<$plugin>(name, args, lens, n_args, codec, settings_json) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_describe_plan(
                plan_bytes: *const u8,
                len: usize,
                codec: *const FFI_LogicalExtensionCodec,
            ) -> *const c_char {
                unsafe { c_api::describe_plan::<$plugin>(plan_bytes, len, codec) }
            }

            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn dfplugin_dml_provider(
                plan_bytes: *const u8,
                len: usize,
                codec: *const FFI_LogicalExtensionCodec,
                settings_json: *const c_char,
            ) -> *mut FFI_TableProvider {
                unsafe { c_api::dml_provider::<$plugin>(plan_bytes, len, codec, settings_json) }
            }
        };
    };
}

/// The [`BuildInfo`](crate::manifest::BuildInfo) of the crate invoking it, from the variables
/// `df_plugin_build::emit()` sets in that crate's build script.
#[macro_export]
macro_rules! build_info {
    () => {
        $crate::manifest::BuildInfo {
            git_commit: env!(
                "DFP_GIT_COMMIT",
                "call df_plugin_build::emit() from this crate's build.rs"
            ),
            profile: env!(
                "DFP_PROFILE",
                "call df_plugin_build::emit() from this crate's build.rs"
            ),
            rustc: env!(
                "DFP_RUSTC_VERSION",
                "call df_plugin_build::emit() from this crate's build.rs"
            ),
            target: env!(
                "DFP_TARGET",
                "call df_plugin_build::emit() from this crate's build.rs"
            ),
        }
    };
}
