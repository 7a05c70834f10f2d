//! Loading a plugin library: every check, in order, before any datafusion-ffi value is touched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::{RResult, RStr};
use datafusion::catalog::{TableFunctionImpl, TableProvider, TableProviderFactory};
use datafusion::logical_expr::{AggregateUDF, AggregateUDFImpl, ScalarUDF, ScalarUDFImpl, WindowUDF, WindowUDFImpl};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;
use df_plugin_api::export::exported_state;
use df_plugin_api::log::LogSink;
use df_plugin_api::manifest::{Capability, Manifest};
use df_plugin_api::module::PluginModuleRef;
use df_plugin_api::plugin::config_options_for;
use df_plugin_api::analyzer::AbiAnalyzerRule;
use df_plugin_api::rule_activity::AbiPhysicalOptimizerRule;
use df_plugin_api::aggregate_udf::AbiAggregateUdf;
use df_plugin_api::dml::{AbiTableProvider, AbiTableProviderFactory};
use df_plugin_api::scan::TableCalls;
use df_plugin_api::relation_planner::AbiRelationPlanner;
use df_plugin_api::scalar_udf::AbiScalarUdf;
use df_plugin_api::table_function::AbiTableFunction;
use df_plugin_api::version::{major_of, ARROW_VERSION, DATAFUSION_FFI_VERSION, DATAFUSION_VERSION};
use df_plugin_api::{AbiVersion, PluginError};

use crate::error::HostError;
use crate::inspect::read_embedded_manifest;

/// The target triple this host was built for.
pub const HOST_TARGET: &str = env!("DFP_TARGET");

/// Objects of a plugin, ready to register in a session.
#[derive(Clone)]
pub struct PluginObjects {
    pub scalar_udfs: Vec<Arc<ScalarUDF>>,
    pub aggregate_udfs: Vec<Arc<AggregateUDF>>,
    pub window_udfs: Vec<Arc<WindowUDF>>,
    pub table_functions: Vec<(String, Arc<dyn TableFunctionImpl>)>,
    pub physical_optimizer_rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
    /// Factories for `CREATE EXTERNAL TABLE ... STORED AS <name>` (names upper case).
    pub table_provider_factories: Vec<(String, Arc<dyn TableProviderFactory>)>,
    /// The plugin's configuration namespace, if it declares one.
    pub config: Option<FFI_ExtensionOptions>,
    /// Inspecting analyzer rules (ABI 1.3+), in the order they run.
    pub analyzer_rules: Vec<AbiAnalyzerRule>,
    /// Relation planners (ABI 1.3+).
    pub relation_planners: Vec<AbiRelationPlanner>,
}

enum Source {
    /// Loaded with dlopen; objects cross as datafusion-ffi values.
    Dynamic(PluginModuleRef),
    /// Linked in-process (rlib); objects are the plugin's own.
    Native(NativeEntries),
}

/// The entry points of a plugin linked into this process.
struct NativeEntries {
    objects: fn(&str) -> Result<PluginObjects, PluginError>,
    table_provider: fn(&str, &str) -> Result<Arc<dyn TableProvider>, PluginError>,
    /// The same entry points as a dynamically loaded plugin (for the ABI-only kinds).
    module: PluginModuleRef,
}

/// A plugin that passed every check. Obtained from [`load`] (or [`LoadedPlugin::native`]).
pub struct LoadedPlugin {
    path: PathBuf,
    manifest: Manifest,
    source: Source,
    /// What the file's signature said when it was loaded (native plugins: unsigned).
    signature: crate::trust::SignatureState,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("plugin", &self.manifest.plugin.name)
            .field("native", &matches!(self.source, Source::Native(_)))
            .finish()
    }
}

/// Plugins loaded in this process, by canonical path. Libraries are never unloaded: objects
/// they created may live in any session, and unloading would leave dangling code pointers.
fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<LoadedPlugin>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<LoadedPlugin>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Checks a manifest against this host: ABI, DataFusion, datafusion-ffi, arrow, target and
/// capabilities, in that order.
pub fn check_compatibility(path: &Path, manifest: &Manifest) -> Result<(), HostError> {
    let host = AbiVersion::CURRENT;
    let plugin = manifest.abi;
    let p = path.to_path_buf();
    if plugin.major != host.major {
        return Err(HostError::AbiMajorMismatch { path: p, plugin, host });
    }
    if plugin.minor > host.minor {
        return Err(HostError::AbiMinorTooNew { path: p, plugin, host });
    }
    let same_major = |a: &str, b: &str| major_of(a).is_some() && major_of(a) == major_of(b);
    if !same_major(&manifest.datafusion, DATAFUSION_VERSION) {
        return Err(HostError::DataFusionMismatch { path: p, plugin: manifest.datafusion.clone(), host: DATAFUSION_VERSION.into() });
    }
    if !same_major(&manifest.datafusion_ffi, DATAFUSION_FFI_VERSION) {
        return Err(HostError::FfiMismatch { path: p, plugin: manifest.datafusion_ffi.clone(), host: DATAFUSION_FFI_VERSION.into() });
    }
    if !same_major(&manifest.arrow, ARROW_VERSION) {
        return Err(HostError::ArrowMismatch { path: p, plugin: manifest.arrow.clone(), host: ARROW_VERSION.into() });
    }
    if manifest.target != HOST_TARGET {
        return Err(HostError::TargetMismatch { path: p, plugin: manifest.target.clone(), host: HOST_TARGET.into() });
    }
    let capabilities = manifest.capability_set().map_err(|capability| HostError::UnknownCapability {
        path: p.clone(),
        capability,
        known: Capability::ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", "),
    })?;
    for capability in capabilities.iter() {
        let carried = capability.carried_since_minor().is_some_and(|since| since <= plugin.minor);
        if !carried {
            return Err(HostError::CapabilityNotCarried { path: p, capability: capability.name().into(), abi: plugin });
        }
    }
    tracing::debug!(path = %path.display(), abi = %plugin, "compatibility checks passed");
    Ok(())
}

/// The most verbose level this host's subscriber records (LogSink numbering). The plugin
/// formats only events at or above it: formatting every dependency's debug events the host
/// then drops costs milliseconds per query.
fn host_max_log_level() -> u8 {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => 1,
        LevelFilter::WARN => 2,
        LevelFilter::INFO => 3,
        LevelFilter::DEBUG => 4,
        _ => 5,
    }
}

extern "C" fn forward_plugin_log(level: u8, target: RStr<'_>, message: RStr<'_>) {
    let (target, message) = (target.as_str(), message.as_str());
    match level {
        1 => tracing::error!(target: "df_plugin::remote", plugin_target = target, "{message}"),
        2 => tracing::warn!(target: "df_plugin::remote", plugin_target = target, "{message}"),
        3 => tracing::info!(target: "df_plugin::remote", plugin_target = target, "{message}"),
        4 => tracing::debug!(target: "df_plugin::remote", plugin_target = target, "{message}"),
        _ => tracing::trace!(target: "df_plugin::remote", plugin_target = target, "{message}"),
    }
}

/// Loads the plugin library at `path` (once per process; a second call returns the same
/// plugin). Checks, in order: the file is a readable regular file; its signature satisfies the
/// process's trust policy ([`crate::trust`]); its embedded manifest is present and
/// parses; ABI major equal and minor not newer; DataFusion, datafusion-ffi and arrow majors
/// equal; target equal; capabilities known. Only then is the library opened, and the live
/// manifest it reports must equal the embedded one.
pub fn load(path: impl AsRef<Path>) -> Result<Arc<LoadedPlugin>, HostError> {
    let path = path.as_ref();
    let span = tracing::info_span!("load_plugin", path = %path.display());
    let _enter = span.enter();

    if let Ok(canonical) = std::fs::canonicalize(path) {
        if let Some(existing) = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&canonical) {
            // The policy may have been tightened since: it must still admit this library.
            crate::trust::admit(path, &existing.signature)?;
            tracing::debug!("plugin already loaded; reusing it");
            return Ok(Arc::clone(existing));
        }
    }
    // Before anything else reads the file as a library: only trusted bytes are looked at.
    let signature = crate::trust::check_trusted(path)?;
    let embedded = read_embedded_manifest(path)?;
    check_compatibility(path, &embedded)?;
    let canonical = std::fs::canonicalize(path).map_err(|e| HostError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;

    // Held across open + checks so two threads loading one file get one plugin.
    let mut loaded = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(existing) = loaded.get(&canonical) {
        tracing::debug!("plugin already loaded; reusing it");
        return Ok(Arc::clone(existing));
    }

    let header = lib_header_from_path(&canonical).map_err(|e| match e {
        LibraryError::OpenError { err, .. } => HostError::Open { path: path.to_path_buf(), reason: err.to_string() },
        LibraryError::GetSymbolError { err, .. } => {
            HostError::MissingRootModule { path: path.to_path_buf(), reason: err.to_string() }
        }
        other => HostError::Layout { path: path.to_path_buf(), host: AbiVersion::CURRENT, reason: other.to_string() },
    })?;
    if embedded.abi.minor < 2 {
        return Err(HostError::Layout {
            path: path.to_path_buf(),
            host: AbiVersion::CURRENT,
            reason: format!(
                "plugins of ABI {} predate the oldest root-module layout this host keeps (1.2); rebuild the plugin \
                 against the host's df_plugin_api",
                embedded.abi
            ),
        });
    }
    let module = df_plugin_api::module::checked_root_module(&header, embedded.abi.minor).map_err(|e| HostError::Layout {
        path: path.to_path_buf(),
        host: AbiVersion::CURRENT,
        reason: e.to_string(),
    })?;
    tracing::debug!("library opened and root module layout checked");

    (module.set_log_sink())(LogSink { log: forward_plugin_log, max_level: host_max_log_level() });

    let live_json = match (module.manifest_json())() {
        RResult::ROk(json) => json,
        RResult::RErr(error) => return Err(HostError::Plugin { path: path.to_path_buf(), entry: "manifest_json", error }),
    };
    let live: Manifest = serde_json::from_str(live_json.as_str())
        .map_err(|e| HostError::MalformedManifest { path: path.to_path_buf(), reason: format!("live manifest: {e}") })?;
    let mut differences = embedded.differences(&live);
    if module.abi_version() != embedded.abi {
        differences.push(format!("root module abi_version: {} != {}", module.abi_version(), embedded.abi));
    }
    if !differences.is_empty() {
        return Err(HostError::LiveManifestMismatch { path: path.to_path_buf(), differences });
    }

    let plugin = Arc::new(LoadedPlugin { path: canonical.clone(), manifest: embedded, source: Source::Dynamic(module), signature });
    loaded.insert(canonical, Arc::clone(&plugin));
    tracing::info!(plugin = %plugin.manifest.plugin.name, version = %plugin.manifest.plugin.version, build = %plugin.manifest.build.id, "plugin loaded");
    Ok(plugin)
}

fn native_objects<P: df_plugin_api::export::Exported>(options_json: &str) -> Result<PluginObjects, PluginError> {
    let state = exported_state::<P>()?;
    let exports = &state.exports;
    Ok(PluginObjects {
        scalar_udfs: exports.scalar_udfs.clone(),
        aggregate_udfs: exports.aggregate_udfs.clone(),
        window_udfs: exports.window_udfs.clone(),
        table_functions: exports.table_functions.iter().map(|t| (t.name.clone(), Arc::clone(&t.function))).collect(),
        physical_optimizer_rules: exports.physical_optimizer_rules.clone(),
        table_provider_factories: exports.table_provider_factories.iter().map(|f| (f.name.clone(), Arc::clone(&f.factory))).collect(),
        config: P::MANIFEST.config.map(|_| config_options_for(&P::MANIFEST, options_json)).transpose()?,
        // Filled from the module by `LoadedPlugin::objects`.
        analyzer_rules: Vec::new(),
        relation_planners: Vec::new(),
    })
}

fn native_table_provider<P: df_plugin_api::export::Exported>(
    kind: &str,
    options_json: &str,
) -> Result<Arc<dyn TableProvider>, PluginError> {
    exported_state::<P>()?.exports.table_provider(kind, options_json)
}

fn unwrap_plugin<T>(path: &Path, entry: &'static str, result: RResult<T, PluginError>) -> Result<T, HostError> {
    match result {
        RResult::ROk(v) => Ok(v),
        RResult::RErr(error) => Err(HostError::Plugin { path: path.to_path_buf(), entry, error }),
    }
}

impl LoadedPlugin {
    /// A plugin linked into this process as a Rust library: same objects, no FFI. Used as
    /// the baseline that dlopen'ed plugins are compared against.
    pub fn native<P: df_plugin_api::export::Exported>() -> Result<Arc<LoadedPlugin>, HostError> {
        let state = exported_state::<P>().map_err(|error| HostError::Plugin {
            path: PathBuf::from("<native>"),
            entry: "build",
            error,
        })?;
        Ok(Arc::new(LoadedPlugin {
            path: PathBuf::from(format!("<native:{}>", P::MANIFEST.name)),
            manifest: state.manifest.clone(),
            source: Source::Native(NativeEntries {
                objects: native_objects::<P>,
                table_provider: native_table_provider::<P>,
                module: df_plugin_api::export::native_module::<P>(),
            }),
            signature: crate::trust::SignatureState::Unsigned,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn name(&self) -> &str {
        &self.manifest.plugin.name
    }

    /// The library's signature as checked when it was loaded.
    pub fn signature(&self) -> &crate::trust::SignatureState {
        &self.signature
    }

    pub fn is_native(&self) -> bool {
        matches!(self.source, Source::Native(_))
    }

    /// Objects handed out through the plugin's plain C entry points and not yet freed.
    pub fn live_objects(&self) -> Option<u64> {
        match &self.source {
            Source::Dynamic(module) => Some((module.live_objects())()),
            Source::Native(_) => None,
        }
    }

    /// Fresh objects of every declared kind, with install options (JSON) applied to the
    /// configuration namespace.
    pub fn objects(&self, options_json: &str) -> Result<PluginObjects, HostError> {
        let span = tracing::debug_span!("plugin_objects", plugin = %self.name());
        let _enter = span.enter();
        let module = match &self.source {
            Source::Native(entries) => {
                let mut objects =
                    (entries.objects)(options_json).map_err(|error| self.options_or_plugin_error("objects", error))?;
                (objects.analyzer_rules, objects.relation_planners) = self.abi_rules(&entries.module)?;
                return Ok(objects);
            }
            Source::Dynamic(module) => module,
        };
        let path = &self.path;
        let caps = self.manifest.capability_set().unwrap_or_default();
        let config = if caps.contains(Capability::ConfigNamespace) {
            Some(match (module.config_options())(RStr::from_str(options_json)) {
                RResult::ROk(v) => v,
                RResult::RErr(error) => return Err(self.options_or_plugin_error("config_options", error)),
            })
        } else {
            None
        };
        // Planning goes through datafusion-ffi's proxy; invocation through this ABI (1.1+).
        let scalar_udfs = unwrap_plugin(path, "scalar_udfs", (module.scalar_udfs())())?
            .iter()
            .enumerate()
            .map(|(index, f)| {
                let planning = Arc::new(ScalarUDF::new_from_shared_impl(<Arc<dyn ScalarUDFImpl>>::from(f)));
                AbiScalarUdf::wrap(*module, index, planning)
            })
            .collect();
        let aggregate_udfs = unwrap_plugin(path, "aggregate_udfs", (module.aggregate_udfs())())?
            .iter()
            .enumerate()
            .map(|(index, f)| {
                let planning = Arc::new(AggregateUDF::new_from_shared_impl(<Arc<dyn AggregateUDFImpl>>::from(f)));
                AbiAggregateUdf::wrap(*module, index, planning)
            })
            .collect();
        let window_udfs = unwrap_plugin(path, "window_udfs", (module.window_udfs())())?
            .iter()
            .map(|f| Arc::new(WindowUDF::new_from_shared_impl(<Arc<dyn WindowUDFImpl>>::from(f))))
            .collect();
        // ABI 1.2+: called through this ABI so their providers accept filter pushdown.
        let table_functions = unwrap_plugin(path, "table_functions", (module.table_functions())())?
            .into_iter()
            .map(|t| {
                let name = t.name.to_string();
                let function: Arc<dyn TableFunctionImpl> = match AbiTableFunction::new(*module, self.name(), self.namespace(), &name) {
                    Some(abi) => Arc::new(abi),
                    None => <Arc<dyn TableFunctionImpl>>::from(t.function),
                };
                (name, function)
            })
            .collect();
        let physical_optimizer_rules = unwrap_plugin(path, "physical_optimizer_rules", (module.physical_optimizer_rules())())?
            .iter()
            .map(|r| {
                let rule = <Arc<dyn PhysicalOptimizerRule + Send + Sync>>::from(r);
                // ABI 1.5+: called only when the plugin says it can change the plan.
                match module.rule_active() {
                    Some(active) => Arc::new(AbiPhysicalOptimizerRule::new(rule, self.namespace(), active)) as Arc<dyn PhysicalOptimizerRule + Send + Sync>,
                    None => rule,
                }
            })
            .collect();
        // ABI 1.2+: older plugins have no factories (and declare none: checked at load).
        let table_provider_factories = match module.table_provider_factories() {
            Some(factories) => unwrap_plugin(path, "table_provider_factories", factories())?
                .into_iter()
                .map(|f| {
                    let inner = <Arc<dyn TableProviderFactory>>::from(&f.factory);
                    let factory = AbiTableProviderFactory::new(self.name(), self.namespace(), inner, self.table_calls());
                    (f.name.to_string(), Arc::new(factory) as Arc<dyn TableProviderFactory>)
                })
                .collect(),
            None => Vec::new(),
        };
        let (analyzer_rules, relation_planners) = self.abi_rules(module)?;
        Ok(PluginObjects {
            scalar_udfs,
            aggregate_udfs,
            window_udfs,
            table_functions,
            physical_optimizer_rules,
            table_provider_factories,
            config,
            analyzer_rules,
            relation_planners,
        })
    }

    /// The root module: the library's, or the in-process one of a native plugin.
    pub fn module(&self) -> PluginModuleRef {
        match &self.source {
            Source::Dynamic(module) => *module,
            Source::Native(entries) => entries.module,
        }
    }

    fn namespace(&self) -> Option<&str> {
        self.manifest.config.as_ref().map(|c| c.namespace.as_str())
    }

    /// The ABI's table calls (DML forwarding from 1.3, `scan_table` from 1.4).
    fn table_calls(&self) -> TableCalls {
        TableCalls::of(self.module())
    }

    /// Refuses, clearly, a capability this plugin's ABI minor cannot carry.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let plugin = df_plugin_host::load("target/release/libcodeanatomy_plugin.so")?;
    /// plugin.require(df_plugin_api::Capability::AnalyzerRule)?;
    /// # Ok(()) }
    /// ```
    pub fn require(&self, capability: Capability) -> Result<(), HostError> {
        let carried = capability.carried_since_minor().is_some_and(|m| self.manifest.abi.minor >= m);
        if !carried {
            return Err(HostError::CapabilityUnavailable {
                plugin: self.name().to_string(),
                capability: capability.name().to_string(),
                needed: capability.carried_since_minor().map_or("a newer".to_string(), |m| format!("1.{m}")),
                abi: self.manifest.abi,
            });
        }
        Ok(())
    }

    /// Analyzer rules and relation planners (ABI 1.3+; none from older plugins).
    fn abi_rules(&self, module: &PluginModuleRef) -> Result<(Vec<AbiAnalyzerRule>, Vec<AbiRelationPlanner>), HostError> {
        let path = &self.path;
        let namespace = self.namespace();
        let mut rules = Vec::new();
        if let (Some(names), Some(call)) = (module.analyzer_rules(), module.analyze_plan()) {
            for name in unwrap_plugin(path, "analyzer_rules", names())? {
                let rule = AbiAnalyzerRule::new(name.as_str(), namespace, call);
                rules.push(match module.rule_active() {
                    Some(active) => rule.with_activity(active),
                    None => rule,
                });
            }
        }
        let mut planners = Vec::new();
        if let (Some(names), Some(call)) = (module.relation_planners(), module.plan_relation()) {
            for name in unwrap_plugin(path, "relation_planners", names())? {
                planners.push(AbiRelationPlanner::new(name.as_str(), self.name(), namespace, call, TableCalls::of(*module)));
            }
        }
        Ok((rules, planners))
    }

    /// Opens a table with the plugin's table provider of `kind` (e.g. `"delta"`), configured by
    /// `options_json`. The provider can be registered in any session.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let plugin = df_plugin_host::load("target/release/libcodeanatomy_plugin.so")?;
    /// let table = plugin.table_provider("delta", r#"{"table_uri": "/data/events", "version": 3}"#)?;
    /// let ctx = datafusion::prelude::SessionContext::new();
    /// ctx.register_table("events", table)?;
    /// # Ok(()) }
    /// ```
    pub fn table_provider(&self, kind: &str, options_json: &str) -> Result<Arc<dyn TableProvider>, HostError> {
        let span = tracing::info_span!("table_provider", plugin = %self.name(), kind);
        let _enter = span.enter();
        let create = match &self.source {
            Source::Native(entries) => {
                return (entries.table_provider)(kind, options_json)
                    .map_err(|error| HostError::Plugin { path: self.path.clone(), entry: "table_provider", error })
            }
            Source::Dynamic(module) => module.create_table_provider(),
        };
        let Some(create) = create else {
            return Err(HostError::CapabilityUnavailable {
                plugin: self.name().to_string(),
                capability: Capability::TableProvider.name().to_string(),
                needed: "1.2".to_string(),
                abi: self.manifest.abi,
            });
        };
        let ffi = unwrap_plugin(&self.path, "create_table_provider", create(RStr::from_str(kind), RStr::from_str(options_json)))?;
        Ok(Arc::new(AbiTableProvider::new(self.name(), self.namespace(), ffi, self.table_calls())))
    }

    fn options_or_plugin_error(&self, entry: &'static str, error: PluginError) -> HostError {
        if error.code() == df_plugin_api::ErrorCode::InvalidOptions {
            HostError::InvalidOptions { plugin: self.name().to_string(), error }
        } else {
            HostError::Plugin { path: self.path.clone(), entry, error }
        }
    }
}

/// Every plugin loaded with [`load`] in this process.
pub fn loaded_plugins() -> Vec<Arc<LoadedPlugin>> {
    let loaded = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut all: Vec<_> = loaded.values().cloned().collect();
    all.sort_by(|a, b| a.path.cmp(&b.path));
    all
}
