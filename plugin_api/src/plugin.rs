//! What a plugin author implements: one [`Plugin`] trait, then [`export_plugin!`].
//!
//! [`export_plugin!`]: crate::export_plugin

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::{TableFunctionImpl, TableProvider, TableProviderFactory};
use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::prelude::SessionContext;
use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;
use tokio::runtime::Handle;

use crate::analyzer::PluginAnalyzerRule;
use crate::error::{ErrorCode, PluginError};
use crate::relation_planner::PluginRelationPlanner;
use crate::manifest::{Capability, Manifest, ManifestDecl};
use crate::version::{linked_datafusion_ffi_version, ARROW_VERSION, DATAFUSION_VERSION};

/// A DataFusion plugin.
///
/// ```ignore
/// pub struct MyPlugin;
/// impl df_plugin_api::Plugin for MyPlugin {
///     const MANIFEST: ManifestDecl = ManifestDecl::new("my_plugin", env!("CARGO_PKG_VERSION"), df_plugin_api::build_info!())
///         .with_objects(&[ObjectDecl::new(Capability::ScalarUdf, "my_fn")]);
///     fn build(ctx: &PluginContext) -> Result<PluginExports, PluginError> {
///         Ok(PluginExports::new().with_scalar_udf(my_fn()))
///     }
/// }
/// df_plugin_api::export_plugin!(MyPlugin);
/// ```
pub trait Plugin: 'static {
    /// The manifest, embedded in the library file at compile time.
    const MANIFEST: ManifestDecl;

    /// Builds every exported object. Called once per process (the result is cached); must
    /// export exactly the objects [`Self::MANIFEST`] declares, which the host verifies.
    fn build(ctx: &PluginContext) -> Result<PluginExports, PluginError>;

    /// Whether the analyzer or physical optimizer rule named `rule` can change or reject a
    /// plan under `config` (the session's values of the plugin's namespace, validated). A
    /// Rust host (ABI 1.5) calls a rule only when this says yes, which saves sending the whole
    /// plan (and, for physical rules, every session option) on each query. The default,
    /// `true`, always calls it; say `false` only when the rule would accept every plan as is.
    fn rule_active(kind: crate::rule_activity::RuleKind, rule: &str, config: &datafusion::config::ConfigOptions) -> bool {
        let _ = kind;
        let _ = (rule, config);
        true
    }

    /// Whether `provider` (one of this plugin's) answers `supports_filters_pushdown` the same
    /// way for the same filters for as long as it lives. A Rust host (ABI 1.5) then keeps the
    /// answers instead of asking in every optimizer pass of every query. Default: `false`.
    fn stable_filter_pushdown(provider: &dyn datafusion::catalog::TableProvider) -> bool {
        let _ = provider;
        false
    }

    /// The part of a scan plan of this plugin's providers that a Rust host may run itself
    /// (ABI 1.4 `scan_table`): DataFusion's own nodes reading files the host can reach too.
    /// The host then reads them with its own Parquet reader, on its own threads, instead of
    /// pulling each batch through FFI. `None` (the default) keeps every plan in the plugin.
    fn host_executable(plan: &std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> Option<crate::scan::HostExecutable> {
        let _ = plan;
        None
    }
}

/// What a plugin gets to build its objects with.
#[derive(Clone)]
pub struct PluginContext {
    runtime: Handle,
}

impl PluginContext {
    pub fn new(runtime: Handle) -> Self {
        Self { runtime }
    }

    /// The plugin-owned tokio runtime: run async work (e.g. reading table logs) here, since
    /// datafusion-ffi does not share the host's runtime.
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }
}

/// A table function and its SQL name.
#[derive(Debug, Clone)]
pub struct TableFunctionExport {
    pub name: String,
    pub function: Arc<dyn TableFunctionImpl>,
}

/// A factory for `CREATE EXTERNAL TABLE ... STORED AS <name>`.
#[derive(Debug, Clone)]
pub struct TableProviderFactoryExport {
    /// The `STORED AS` keyword, upper case (DataFusion upper-cases it before lookup).
    pub name: String,
    pub factory: Arc<dyn TableProviderFactory>,
}

/// Builds a table provider of one kind from JSON options, so hosts can open a table without
/// SQL (e.g. `LoadedPlugin::table_provider("delta", r#"{"table_uri": "..."}"#)`).
pub trait TableProviderBuilder: Send + Sync + std::fmt::Debug {
    /// Validates `options_json` and opens the table. Blocking: runs any I/O on the plugin's
    /// runtime, so it may be called from any host thread.
    fn build(&self, options_json: &str) -> Result<Arc<dyn TableProvider>, PluginError>;
}

/// A named kind of table provider.
#[derive(Debug, Clone)]
pub struct TableProviderExport {
    pub kind: String,
    pub builder: Arc<dyn TableProviderBuilder>,
}

/// Everything a plugin exports.
#[derive(Default, Clone)]
pub struct PluginExports {
    pub scalar_udfs: Vec<Arc<ScalarUDF>>,
    pub aggregate_udfs: Vec<Arc<AggregateUDF>>,
    pub window_udfs: Vec<Arc<WindowUDF>>,
    pub table_functions: Vec<TableFunctionExport>,
    pub physical_optimizer_rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
    pub table_provider_factories: Vec<TableProviderFactoryExport>,
    pub table_providers: Vec<TableProviderExport>,
    pub analyzer_rules: Vec<Arc<dyn PluginAnalyzerRule>>,
    pub relation_planners: Vec<Arc<dyn PluginRelationPlanner>>,
}

impl std::fmt::Debug for PluginExports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.names()).finish()
    }
}

impl PluginExports {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_scalar_udfs(mut self, udfs: impl IntoIterator<Item = Arc<ScalarUDF>>) -> Self {
        self.scalar_udfs.extend(udfs);
        self
    }

    pub fn with_aggregate_udfs(mut self, udfs: impl IntoIterator<Item = Arc<AggregateUDF>>) -> Self {
        self.aggregate_udfs.extend(udfs);
        self
    }

    pub fn with_window_udfs(mut self, udfs: impl IntoIterator<Item = Arc<WindowUDF>>) -> Self {
        self.window_udfs.extend(udfs);
        self
    }

    pub fn with_table_function(mut self, name: impl Into<String>, function: Arc<dyn TableFunctionImpl>) -> Self {
        self.table_functions.push(TableFunctionExport { name: name.into(), function });
        self
    }

    pub fn with_physical_optimizer_rule(mut self, rule: Arc<dyn PhysicalOptimizerRule + Send + Sync>) -> Self {
        self.physical_optimizer_rules.push(rule);
        self
    }

    pub fn with_table_provider_factory(mut self, name: impl Into<String>, factory: Arc<dyn TableProviderFactory>) -> Self {
        self.table_provider_factories.push(TableProviderFactoryExport { name: name.into().to_uppercase(), factory });
        self
    }

    pub fn with_table_provider(mut self, kind: impl Into<String>, builder: Arc<dyn TableProviderBuilder>) -> Self {
        self.table_providers.push(TableProviderExport { kind: kind.into(), builder });
        self
    }

    /// An inspecting analyzer rule (ABI 1.3; Rust hosts only).
    pub fn with_analyzer_rule(mut self, rule: Arc<dyn PluginAnalyzerRule>) -> Self {
        self.analyzer_rules.push(rule);
        self
    }

    /// A relation planner (ABI 1.3; Rust hosts only).
    pub fn with_relation_planner(mut self, planner: Arc<dyn PluginRelationPlanner>) -> Self {
        self.relation_planners.push(planner);
        self
    }

    /// The provider of `kind` opened with `options_json`.
    pub fn table_provider(&self, kind: &str, options_json: &str) -> Result<Arc<dyn TableProvider>, PluginError> {
        let export = self.table_providers.iter().find(|p| p.kind == kind).ok_or_else(|| {
            let kinds: Vec<&str> = self.table_providers.iter().map(|p| p.kind.as_str()).collect();
            PluginError::new(
                ErrorCode::UnknownObject,
                format!("this plugin exports no table provider kind '{kind}'; available: {}", kinds.join(", ")),
            )
        })?;
        export.builder.build(options_json)
    }

    /// Exported names by capability, sorted.
    pub fn names(&self) -> BTreeMap<Capability, Vec<String>> {
        let mut out: BTreeMap<Capability, Vec<String>> = BTreeMap::new();
        let mut put = |kind: Capability, name: &str| out.entry(kind).or_default().push(name.to_string());
        self.scalar_udfs.iter().for_each(|u| put(Capability::ScalarUdf, u.name()));
        self.aggregate_udfs.iter().for_each(|u| put(Capability::AggregateUdf, u.name()));
        self.window_udfs.iter().for_each(|u| put(Capability::WindowUdf, u.name()));
        self.table_functions.iter().for_each(|t| put(Capability::TableFunction, &t.name));
        self.physical_optimizer_rules.iter().for_each(|r| put(Capability::PhysicalOptimizerRule, r.name()));
        self.table_provider_factories.iter().for_each(|f| put(Capability::TableProviderFactory, &f.name));
        self.table_providers.iter().for_each(|p| put(Capability::TableProvider, &p.kind));
        self.analyzer_rules.iter().for_each(|r| put(Capability::AnalyzerRule, r.name()));
        self.relation_planners.iter().for_each(|r| put(Capability::RelationPlanner, r.name()));
        for names in out.values_mut() {
            names.sort();
        }
        out
    }
}

/// The manifest a built plugin really has: the declaration's identity, the versions linked
/// into this image, and the objects actually exported.
pub fn live_manifest(decl: &ManifestDecl, exports: &PluginExports) -> Manifest {
    let mut manifest = Manifest::from_decl(decl);
    manifest.datafusion = DATAFUSION_VERSION.to_string();
    manifest.datafusion_ffi = linked_datafusion_ffi_version();
    manifest.arrow = ARROW_VERSION.to_string();
    let names = exports.names();
    manifest.objects = names.iter().map(|(k, v)| (k.name().to_string(), v.clone())).collect();
    // Object-bearing capabilities are what is exported; others are taken as declared.
    manifest.capabilities = Capability::ALL
        .iter()
        .filter(|c| if c.is_object_kind() { names.contains_key(c) } else { decl.capabilities.contains(**c) })
        .map(|c| c.name().to_string())
        .collect();
    // Bits the declaration set but this crate cannot name stay visible to the host.
    let unknown = decl.capabilities.unknown_bits();
    for bit in 0..64 {
        if unknown & (1u64 << bit) != 0 {
            manifest.capabilities.push(format!("bit{bit}"));
        }
    }
    manifest
}

/// The configuration namespace of `decl` as an extension-options bag, with install options
/// (JSON) applied. A plugin without a namespace accepts only empty options.
pub fn config_options_for(decl: &ManifestDecl, options_json: &str) -> Result<FFI_ExtensionOptions, PluginError> {
    match decl.config {
        Some(ns) => {
            let values = ns.parse_options_json(options_json)?;
            Ok(ns.to_ffi_options(&values))
        }
        None => {
            let trimmed = options_json.trim();
            if trimmed.is_empty() || trimmed == "null" || trimmed == "{}" {
                Ok(FFI_ExtensionOptions::default())
            } else {
                Err(PluginError::new(
                    ErrorCode::InvalidOptions,
                    format!("plugin '{}' declares no configuration namespace, so it takes no options; found {trimmed}", decl.name),
                ))
            }
        }
    }
}

/// Session options holding the plugin's namespace with the values a host sent as
/// `settings_json` (see [`crate::config::settings_json`]), validated: an unknown key or a bad
/// value is an `invalid_config` error naming the key.
pub fn options_from_settings(decl: &ManifestDecl, settings_json: &str) -> Result<datafusion::config::ConfigOptions, PluginError> {
    let bag = config_options_for(decl, settings_json).map_err(|e| e.with_code(ErrorCode::InvalidConfig))?;
    let mut options = datafusion::config::ConfigOptions::new();
    options.extensions.insert(bag);
    Ok(options)
}

/// A session holding the plugin's own functions, used to decode expressions that hosts send
/// to the plugin's table functions (e.g. a call of a plugin UDF inside the arguments).
pub fn plugin_task_context(exports: &PluginExports) -> Arc<SessionContext> {
    let ctx = SessionContext::new();
    for udf in &exports.scalar_udfs {
        ctx.register_udf(udf.as_ref().clone());
    }
    for udaf in &exports.aggregate_udfs {
        ctx.register_udaf(udaf.as_ref().clone());
    }
    for udwf in &exports.window_udfs {
        ctx.register_udwf(udwf.as_ref().clone());
    }
    Arc::new(ctx)
}
