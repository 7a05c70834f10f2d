//! The root module: the one object a host obtains from a loaded plugin library.
//!
//! # Evolution rule (read before editing)
//! `PluginModule` is an abi_stable *prefix type*. Its fields are **only ever appended**, below
//! the last existing field, each addition bumps [`AbiVersion::CURRENT`]'s minor, and the
//! `#[sabi(last_prefix_field)]` marker stays where it is until the next major. A host built
//! with more fields than a plugin sees the missing ones as `None` through the accessor methods
//! (`module.field_name()`), and must then refuse, clearly, only the capabilities those fields
//! carry. Removing, reordering or retyping a field is a major bump.
//!
//! Fields that mention datafusion-ffi types are `unsafe_opaque_field`: datafusion-ffi 55 is
//! built on `stabby`, not abi_stable, so abi_stable checks only their size and alignment. Their
//! layout is protected by the manifest's version gate, which refuses a plugin of another
//! DataFusion / datafusion-ffi major *before* any of these fields is touched.
//!
//! [`AbiVersion::CURRENT`]: crate::version::AbiVersion::CURRENT

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, package_version_strings, StableAbi};
use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;
use datafusion_ffi::physical_optimizer::FFI_PhysicalOptimizerRule;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_ffi::table_provider_factory::FFI_TableProviderFactory;
use datafusion_ffi::udaf::FFI_AggregateUDF;
use datafusion_ffi::udf::FFI_ScalarUDF;
use datafusion_ffi::udtf::FFI_TableFunction;
use datafusion_ffi::udwf::FFI_WindowUDF;

use datafusion_ffi::config::FFI_ConfigOptions;

use crate::error::PluginError;
use crate::scalar_udf::{ConfigHandle, InvokePreparedScalarUdfFn, InvokeScalarUdfFn, PrepareScalarUdfFn};
use crate::table_function::{CallTableFunctionFn, CallTableFunctionWithConfigFn};
use crate::{analyzer::AnalyzePlanFn, dml::TableDmlFn, relation_planner::PlanRelationFn};
use crate::aggregate_udf::CreateGroupsAccumulatorFn;
use crate::log::LogSink;
use crate::filter_pushdown::TableFiltersPushdownFn;
use crate::rule_activity::RuleActiveFn;
use crate::scan::ScanTableFn;
use crate::version::AbiVersion;

/// A table function with the name it is registered under (datafusion-ffi's
/// `FFI_TableFunction` carries no name).
#[repr(C)]
pub struct NamedTableFunction {
    pub name: RString,
    pub function: FFI_TableFunction,
}

/// A table provider factory with the `STORED AS` keyword it serves (upper case).
#[repr(C)]
pub struct NamedTableProviderFactory {
    pub name: RString,
    pub factory: FFI_TableProviderFactory,
}

/// The plugin's root module (ABI 1.0). See the module docs for the evolution rule.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef, prefix_fields = PluginModulePrefix)))]
pub struct PluginModule {
    /// ABI version the library was built with.
    pub abi_version: AbiVersion,

    /// The live manifest as JSON, built from the objects the library really exports.
    pub manifest_json: extern "C" fn() -> RResult<RString, PluginError>,

    /// Routes the plugin's `tracing` events to the host.
    pub set_log_sink: extern "C" fn(sink: LogSink),

    /// Validates install options (a JSON object of config keys) and returns the plugin's
    /// configuration namespace as an extension-options bag for `SessionConfig`.
    #[sabi(unsafe_opaque_field)]
    pub config_options: extern "C" fn(options_json: RStr<'_>) -> RResult<FFI_ExtensionOptions, PluginError>,

    #[sabi(unsafe_opaque_field)]
    pub scalar_udfs: extern "C" fn() -> RResult<RVec<FFI_ScalarUDF>, PluginError>,

    #[sabi(unsafe_opaque_field)]
    pub aggregate_udfs: extern "C" fn() -> RResult<RVec<FFI_AggregateUDF>, PluginError>,

    #[sabi(unsafe_opaque_field)]
    pub window_udfs: extern "C" fn() -> RResult<RVec<FFI_WindowUDF>, PluginError>,

    #[sabi(unsafe_opaque_field)]
    pub table_functions: extern "C" fn() -> RResult<RVec<NamedTableFunction>, PluginError>,

    #[sabi(unsafe_opaque_field)]
    pub physical_optimizer_rules: extern "C" fn() -> RResult<RVec<FFI_PhysicalOptimizerRule>, PluginError>,

    /// Objects handed out through the plain C entry points and not yet freed.
    #[sabi(last_prefix_field)]
    pub live_objects: extern "C" fn() -> u64,

    // ---- ABI 1.1 ----------------------------------------------------------------------
    /// Converts session options once; the handle is passed to `invoke_scalar_udf`.
    #[sabi(unsafe_opaque_field)]
    pub register_config: extern "C" fn(options: FFI_ConfigOptions) -> RResult<ConfigHandle, PluginError>,

    /// Invokes the scalar function at `index` of `scalar_udfs()` (scalars stay scalars).
    #[sabi(unsafe_opaque_field)]
    pub invoke_scalar_udf: InvokeScalarUdfFn,

    // ---- ABI 1.2 ----------------------------------------------------------------------
    /// Factories for `CREATE EXTERNAL TABLE ... STORED AS <name>`.
    #[sabi(unsafe_opaque_field)]
    pub table_provider_factories: extern "C" fn() -> RResult<RVec<NamedTableProviderFactory>, PluginError>,

    /// Builds the table provider of kind `kind` from its JSON options.
    #[sabi(unsafe_opaque_field)]
    pub create_table_provider:
        extern "C" fn(kind: RStr<'_>, options_json: RStr<'_>) -> RResult<FFI_TableProvider, PluginError>,

    /// Calls table function `name` (arguments as datafusion-proto bytes, one per argument); the
    /// provider it returns accepts filter pushdown, which datafusion-ffi's `FFI_TableFunction`
    /// switches off.
    #[sabi(unsafe_opaque_field)]
    pub call_table_function: CallTableFunctionFn,

    // ---- ABI 1.3 ----------------------------------------------------------------------
    /// Names of the plugin's inspecting analyzer rules, in the order they run.
    pub analyzer_rules: extern "C" fn() -> RResult<RVec<RString>, PluginError>,

    /// Runs one analyzer rule on a plan description ([`crate::analyzer`]).
    #[sabi(unsafe_opaque_field)]
    pub analyze_plan: AnalyzePlanFn,

    /// Names of the plugin's relation planners.
    pub relation_planners: extern "C" fn() -> RResult<RVec<RString>, PluginError>,

    /// Plans one SQL relation ([`crate::relation_planner`]).
    #[sabi(unsafe_opaque_field)]
    pub plan_relation: PlanRelationFn,

    /// `DELETE` / `UPDATE` / `TRUNCATE` on a provider of this plugin ([`crate::dml`]).
    #[sabi(unsafe_opaque_field)]
    pub table_dml: TableDmlFn,

    // ---- ABI 1.4 ----------------------------------------------------------------------
    /// Scans a provider of this plugin with session options from `register_config`; the
    /// answer may include a plan the host runs itself ([`crate::scan`]).
    #[sabi(unsafe_opaque_field)]
    pub scan_table: ScanTableFn,

    /// Prepares a call of the scalar function at `index` for one call shape (argument and
    /// return fields, literal arguments, session options), converted once.
    #[sabi(unsafe_opaque_field)]
    pub prepare_scalar_udf: PrepareScalarUdfFn,

    /// Invokes a prepared call with the batch's non-literal arguments.
    #[sabi(unsafe_opaque_field)]
    pub invoke_prepared_scalar_udf: InvokePreparedScalarUdfFn,

    /// The groups accumulator of the aggregate at `index` of `aggregate_udfs()`
    /// ([`crate::aggregate_udf`]: group indices cross borrowed, not copied).
    #[sabi(unsafe_opaque_field)]
    pub create_groups_accumulator: CreateGroupsAccumulatorFn,

    // ---- ABI 1.5 ----------------------------------------------------------------------
    /// Whether an analyzer or physical optimizer rule can change or reject a plan under the
    /// session's settings; a host skips calling one that cannot ([`crate::rule_activity`]).
    #[sabi(unsafe_opaque_field)]
    pub rule_active: RuleActiveFn,

    /// `supports_filters_pushdown` on a provider of this plugin, with whether the answers are
    /// stable for the provider's lifetime ([`crate::filter_pushdown`]).
    #[sabi(unsafe_opaque_field)]
    pub table_filters_pushdown: TableFiltersPushdownFn,

    // ---- ABI 1.6 ----------------------------------------------------------------------
    /// `call_table_function` with the session's options (a `register_config` handle), so a
    /// table function sees the session's settings (e.g. the location policy) when it opens
    /// its table ([`crate::table_function`]).
    #[sabi(unsafe_opaque_field)]
    pub call_table_function_with_config: CallTableFunctionWithConfigFn,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "df_plugin";
    const NAME: &'static str = "df_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The root module of a library whose manifest declares ABI 1.`minor`, layout-checked.
///
/// abi_stable accepts a library whose prefix type has *more* fields than the interface (an
/// older host), not fewer. So a library of an older minor is checked against that minor's
/// frozen interface ([`v1_2`], [`v1_3`], [`v1_4`], [`v1_5`]) and then read through the current one: the fields it lacks are
/// not accessible in its own prefix metadata, so their accessors return `None`.
pub fn checked_root_module(header: &abi_stable::library::LibHeader, minor: u16) -> Result<PluginModuleRef, abi_stable::library::LibraryError> {
    if minor == 2 {
        let module = header.check_layout::<v1_2::PluginModuleRef>()?;
        // SAFETY: both are `PrefixRef`s (one pointer) to the same prefix data; the first 15
        // fields have the layout just checked, and every later field is read only through an
        // accessor that first consults the library's own field-accessibility bits.
        return Ok(unsafe { std::mem::transmute::<v1_2::PluginModuleRef, PluginModuleRef>(module) });
    }
    if minor == 3 {
        let module = header.check_layout::<v1_3::PluginModuleRef>()?;
        // SAFETY: as for 1.2, with the first 20 fields checked.
        return Ok(unsafe { std::mem::transmute::<v1_3::PluginModuleRef, PluginModuleRef>(module) });
    }
    if minor == 4 {
        let module = header.check_layout::<v1_4::PluginModuleRef>()?;
        // SAFETY: as for 1.2, with the first 24 fields checked.
        return Ok(unsafe { std::mem::transmute::<v1_4::PluginModuleRef, PluginModuleRef>(module) });
    }
    if minor == 5 {
        let module = header.check_layout::<v1_5::PluginModuleRef>()?;
        // SAFETY: as for 1.2, with the first 26 fields checked.
        return Ok(unsafe { std::mem::transmute::<v1_5::PluginModuleRef, PluginModuleRef>(module) });
    }
    header.check_layout::<PluginModuleRef>()
}

/// Frozen layouts of earlier minors, so a library can still be built exactly as an older
/// plugin was (the evolution fixture proves a new host loads it). abi_stable compares a root
/// module's type name, package and fields, not its Rust module path, so this `PluginModule`
/// is the ABI 1.2 prefix of the current one. Never edit these.
#[doc(hidden)]
pub mod v1_2 {
    use super::*;

    /// The root module as ABI 1.2 defined it.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef, prefix_fields = PluginModulePrefix)))]
    pub struct PluginModule {
        pub abi_version: AbiVersion,
        pub manifest_json: extern "C" fn() -> RResult<RString, PluginError>,
        pub set_log_sink: extern "C" fn(sink: LogSink),
        #[sabi(unsafe_opaque_field)]
        pub config_options: extern "C" fn(options_json: RStr<'_>) -> RResult<FFI_ExtensionOptions, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub scalar_udfs: extern "C" fn() -> RResult<RVec<FFI_ScalarUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub aggregate_udfs: extern "C" fn() -> RResult<RVec<FFI_AggregateUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub window_udfs: extern "C" fn() -> RResult<RVec<FFI_WindowUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub table_functions: extern "C" fn() -> RResult<RVec<NamedTableFunction>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub physical_optimizer_rules: extern "C" fn() -> RResult<RVec<FFI_PhysicalOptimizerRule>, PluginError>,
        #[sabi(last_prefix_field)]
        pub live_objects: extern "C" fn() -> u64,
        #[sabi(unsafe_opaque_field)]
        pub register_config: extern "C" fn(options: FFI_ConfigOptions) -> RResult<ConfigHandle, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub invoke_scalar_udf: InvokeScalarUdfFn,
        #[sabi(unsafe_opaque_field)]
        pub table_provider_factories: extern "C" fn() -> RResult<RVec<NamedTableProviderFactory>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub create_table_provider:
            extern "C" fn(kind: RStr<'_>, options_json: RStr<'_>) -> RResult<FFI_TableProvider, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub call_table_function: CallTableFunctionFn,
    }

    impl RootModule for PluginModuleRef {
        declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "df_plugin";
        const NAME: &'static str = "df_plugin";
        const VERSION_STRINGS: VersionStrings = package_version_strings!();
    }
}

/// See [`v1_2`]. Never edit.
#[doc(hidden)]
pub mod v1_3 {
    use super::*;

    /// The root module as ABI 1.3 defined it.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef, prefix_fields = PluginModulePrefix)))]
    pub struct PluginModule {
        pub abi_version: AbiVersion,
        pub manifest_json: extern "C" fn() -> RResult<RString, PluginError>,
        pub set_log_sink: extern "C" fn(sink: LogSink),
        #[sabi(unsafe_opaque_field)]
        pub config_options: extern "C" fn(options_json: RStr<'_>) -> RResult<FFI_ExtensionOptions, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub scalar_udfs: extern "C" fn() -> RResult<RVec<FFI_ScalarUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub aggregate_udfs: extern "C" fn() -> RResult<RVec<FFI_AggregateUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub window_udfs: extern "C" fn() -> RResult<RVec<FFI_WindowUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub table_functions: extern "C" fn() -> RResult<RVec<NamedTableFunction>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub physical_optimizer_rules: extern "C" fn() -> RResult<RVec<FFI_PhysicalOptimizerRule>, PluginError>,
        #[sabi(last_prefix_field)]
        pub live_objects: extern "C" fn() -> u64,
        #[sabi(unsafe_opaque_field)]
        pub register_config: extern "C" fn(options: FFI_ConfigOptions) -> RResult<ConfigHandle, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub invoke_scalar_udf: InvokeScalarUdfFn,
        #[sabi(unsafe_opaque_field)]
        pub table_provider_factories: extern "C" fn() -> RResult<RVec<NamedTableProviderFactory>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub create_table_provider:
            extern "C" fn(kind: RStr<'_>, options_json: RStr<'_>) -> RResult<FFI_TableProvider, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub call_table_function: CallTableFunctionFn,
        pub analyzer_rules: extern "C" fn() -> RResult<RVec<RString>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub analyze_plan: AnalyzePlanFn,
        pub relation_planners: extern "C" fn() -> RResult<RVec<RString>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub plan_relation: PlanRelationFn,
        #[sabi(unsafe_opaque_field)]
        pub table_dml: TableDmlFn,
    }

    impl RootModule for PluginModuleRef {
        declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "df_plugin";
        const NAME: &'static str = "df_plugin";
        const VERSION_STRINGS: VersionStrings = package_version_strings!();
    }
}

/// See [`v1_2`]. Never edit.
#[doc(hidden)]
pub mod v1_4 {
    use super::*;

    /// The root module as ABI 1.4 defined it.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef, prefix_fields = PluginModulePrefix)))]
    pub struct PluginModule {
        pub abi_version: AbiVersion,
        pub manifest_json: extern "C" fn() -> RResult<RString, PluginError>,
        pub set_log_sink: extern "C" fn(sink: LogSink),
        #[sabi(unsafe_opaque_field)]
        pub config_options: extern "C" fn(options_json: RStr<'_>) -> RResult<FFI_ExtensionOptions, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub scalar_udfs: extern "C" fn() -> RResult<RVec<FFI_ScalarUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub aggregate_udfs: extern "C" fn() -> RResult<RVec<FFI_AggregateUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub window_udfs: extern "C" fn() -> RResult<RVec<FFI_WindowUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub table_functions: extern "C" fn() -> RResult<RVec<NamedTableFunction>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub physical_optimizer_rules: extern "C" fn() -> RResult<RVec<FFI_PhysicalOptimizerRule>, PluginError>,
        #[sabi(last_prefix_field)]
        pub live_objects: extern "C" fn() -> u64,
        #[sabi(unsafe_opaque_field)]
        pub register_config: extern "C" fn(options: FFI_ConfigOptions) -> RResult<ConfigHandle, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub invoke_scalar_udf: InvokeScalarUdfFn,
        #[sabi(unsafe_opaque_field)]
        pub table_provider_factories: extern "C" fn() -> RResult<RVec<NamedTableProviderFactory>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub create_table_provider:
            extern "C" fn(kind: RStr<'_>, options_json: RStr<'_>) -> RResult<FFI_TableProvider, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub call_table_function: CallTableFunctionFn,
        pub analyzer_rules: extern "C" fn() -> RResult<RVec<RString>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub analyze_plan: AnalyzePlanFn,
        pub relation_planners: extern "C" fn() -> RResult<RVec<RString>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub plan_relation: PlanRelationFn,
        #[sabi(unsafe_opaque_field)]
        pub table_dml: TableDmlFn,
        #[sabi(unsafe_opaque_field)]
        pub scan_table: ScanTableFn,
        #[sabi(unsafe_opaque_field)]
        pub prepare_scalar_udf: PrepareScalarUdfFn,
        #[sabi(unsafe_opaque_field)]
        pub invoke_prepared_scalar_udf: InvokePreparedScalarUdfFn,
        #[sabi(unsafe_opaque_field)]
        pub create_groups_accumulator: CreateGroupsAccumulatorFn,
    }

    impl RootModule for PluginModuleRef {
        declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "df_plugin";
        const NAME: &'static str = "df_plugin";
        const VERSION_STRINGS: VersionStrings = package_version_strings!();
    }
}

/// See [`v1_2`]. Never edit.
#[doc(hidden)]
pub mod v1_5 {
    use super::*;

    /// The root module as ABI 1.5 defined it.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef, prefix_fields = PluginModulePrefix)))]
    pub struct PluginModule {
        pub abi_version: AbiVersion,
        pub manifest_json: extern "C" fn() -> RResult<RString, PluginError>,
        pub set_log_sink: extern "C" fn(sink: LogSink),
        #[sabi(unsafe_opaque_field)]
        pub config_options: extern "C" fn(options_json: RStr<'_>) -> RResult<FFI_ExtensionOptions, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub scalar_udfs: extern "C" fn() -> RResult<RVec<FFI_ScalarUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub aggregate_udfs: extern "C" fn() -> RResult<RVec<FFI_AggregateUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub window_udfs: extern "C" fn() -> RResult<RVec<FFI_WindowUDF>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub table_functions: extern "C" fn() -> RResult<RVec<NamedTableFunction>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub physical_optimizer_rules: extern "C" fn() -> RResult<RVec<FFI_PhysicalOptimizerRule>, PluginError>,
        #[sabi(last_prefix_field)]
        pub live_objects: extern "C" fn() -> u64,
        #[sabi(unsafe_opaque_field)]
        pub register_config: extern "C" fn(options: FFI_ConfigOptions) -> RResult<ConfigHandle, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub invoke_scalar_udf: InvokeScalarUdfFn,
        #[sabi(unsafe_opaque_field)]
        pub table_provider_factories: extern "C" fn() -> RResult<RVec<NamedTableProviderFactory>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub create_table_provider:
            extern "C" fn(kind: RStr<'_>, options_json: RStr<'_>) -> RResult<FFI_TableProvider, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub call_table_function: CallTableFunctionFn,
        pub analyzer_rules: extern "C" fn() -> RResult<RVec<RString>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub analyze_plan: AnalyzePlanFn,
        pub relation_planners: extern "C" fn() -> RResult<RVec<RString>, PluginError>,
        #[sabi(unsafe_opaque_field)]
        pub plan_relation: PlanRelationFn,
        #[sabi(unsafe_opaque_field)]
        pub table_dml: TableDmlFn,
        #[sabi(unsafe_opaque_field)]
        pub scan_table: ScanTableFn,
        #[sabi(unsafe_opaque_field)]
        pub prepare_scalar_udf: PrepareScalarUdfFn,
        #[sabi(unsafe_opaque_field)]
        pub invoke_prepared_scalar_udf: InvokePreparedScalarUdfFn,
        #[sabi(unsafe_opaque_field)]
        pub create_groups_accumulator: CreateGroupsAccumulatorFn,
        #[sabi(unsafe_opaque_field)]
        pub rule_active: RuleActiveFn,
        #[sabi(unsafe_opaque_field)]
        pub table_filters_pushdown: TableFiltersPushdownFn,
    }

    impl RootModule for PluginModuleRef {
        declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "df_plugin";
        const NAME: &'static str = "df_plugin";
        const VERSION_STRINGS: VersionStrings = package_version_strings!();
    }
}
