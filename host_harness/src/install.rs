//! Installing a loaded plugin into a session: every declared object, all or nothing, with a
//! name-collision policy, recorded so SQL can list it (`dfplugin_loaded()`,
//! `dfplugin_objects()`).

use std::sync::Arc;

use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_api::manifest::Capability;

use crate::config::PluginConfigOptions;
use crate::error::HostError;
use crate::introspect::{InstalledObject, InstalledPlugin, SessionPlugins};
use crate::load::{LoadedPlugin, PluginObjects};

/// What to do when a plugin object's name is already registered in the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CollisionPolicy {
    /// Refuse the whole install (default).
    #[default]
    Error,
    /// The plugin's object replaces the existing one.
    Replace,
    /// Keep the existing object; the plugin's is not installed.
    Skip,
}

impl std::str::FromStr for CollisionPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(Self::Error),
            "replace" => Ok(Self::Replace),
            "skip" => Ok(Self::Skip),
            other => Err(format!("unknown collision policy '{other}'; expected error, replace or skip")),
        }
    }
}

/// Options for [`LoadedPlugin::install`].
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    pub on_collision: CollisionPolicy,
    /// Plugin options: a JSON object of the plugin's configuration keys (validated by the
    /// plugin; unknown keys and bad values are errors naming the key).
    pub options_json: String,
}

impl InstallOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn on_collision(mut self, policy: CollisionPolicy) -> Self {
        self.on_collision = policy;
        self
    }

    pub fn with_options_json(mut self, json: impl Into<String>) -> Self {
        self.options_json = json.into();
        self
    }
}

/// Names already taken in a builder, by kind.
fn taken(builder: &mut SessionStateBuilder, kind: Capability, name: &str) -> bool {
    match kind {
        Capability::ScalarUdf => builder
            .scalar_functions()
            .as_ref()
            .is_some_and(|fs| fs.iter().any(|f| f.name() == name || f.aliases().iter().any(|a| a == name))),
        Capability::AggregateUdf => builder
            .aggregate_functions()
            .as_ref()
            .is_some_and(|fs| fs.iter().any(|f| f.name() == name || f.aliases().iter().any(|a| a == name))),
        Capability::WindowUdf => builder
            .window_functions()
            .as_ref()
            .is_some_and(|fs| fs.iter().any(|f| f.name() == name || f.aliases().iter().any(|a| a == name))),
        Capability::TableFunction => builder.table_functions().as_ref().is_some_and(|fs| fs.contains_key(name)),
        Capability::TableProviderFactory => builder.table_factories().as_ref().is_some_and(|fs| fs.contains_key(name)),
        Capability::PhysicalOptimizerRule => {
            builder.physical_optimizers().as_ref().is_some_and(|o| o.rules.iter().any(|r| r.name() == name))
                || builder.physical_optimizer_rules().as_ref().is_some_and(|rs| rs.iter().any(|r| r.name() == name))
        }
        Capability::ConfigNamespace => builder.config().as_ref().is_some_and(|c| {
            c.options().extensions.get::<PluginConfigOptions>().is_some_and(|bag| bag.has_namespace(name))
        }),
        Capability::AnalyzerRule => builder.analyzer_rules().as_ref().is_some_and(|rs| rs.iter().any(|r| r.name() == name)),
        // Relation planners carry no name in a session: ask the install record.
        Capability::RelationPlanner => SessionPlugins::installed_objects(builder)
            .iter()
            .any(|o| o.kind == Capability::RelationPlanner.name() && o.name == name),
        _ => false,
    }
}

fn remove(builder: &mut SessionStateBuilder, kind: Capability, name: &str) {
    match kind {
        Capability::ScalarUdf => {
            if let Some(fs) = builder.scalar_functions().as_mut() {
                fs.retain(|f| f.name() != name && !f.aliases().iter().any(|a| a == name));
            }
        }
        Capability::AggregateUdf => {
            if let Some(fs) = builder.aggregate_functions().as_mut() {
                fs.retain(|f| f.name() != name && !f.aliases().iter().any(|a| a == name));
            }
        }
        Capability::WindowUdf => {
            if let Some(fs) = builder.window_functions().as_mut() {
                fs.retain(|f| f.name() != name && !f.aliases().iter().any(|a| a == name));
            }
        }
        Capability::TableFunction => {
            if let Some(fs) = builder.table_functions().as_mut() {
                fs.remove(name);
            }
        }
        Capability::TableProviderFactory => {
            if let Some(fs) = builder.table_factories().as_mut() {
                fs.remove(name);
            }
        }
        Capability::PhysicalOptimizerRule => {
            if let Some(o) = builder.physical_optimizers().as_mut() {
                o.rules.retain(|r| r.name() != name);
            }
            if let Some(rs) = builder.physical_optimizer_rules().as_mut() {
                rs.retain(|r| r.name() != name);
            }
        }
        Capability::AnalyzerRule => {
            if let Some(rs) = builder.analyzer_rules().as_mut() {
                rs.retain(|r| r.name() != name);
            }
        }
        // Config keys are overwritten by the merge itself.
        _ => {}
    }
}

fn object_list(objects: &PluginObjects, namespace: Option<&str>) -> Vec<(Capability, String)> {
    let mut list = Vec::new();
    list.extend(objects.scalar_udfs.iter().map(|f| (Capability::ScalarUdf, f.name().to_string())));
    list.extend(objects.aggregate_udfs.iter().map(|f| (Capability::AggregateUdf, f.name().to_string())));
    list.extend(objects.window_udfs.iter().map(|f| (Capability::WindowUdf, f.name().to_string())));
    list.extend(objects.table_functions.iter().map(|(n, _)| (Capability::TableFunction, n.clone())));
    list.extend(objects.physical_optimizer_rules.iter().map(|r| (Capability::PhysicalOptimizerRule, r.name().to_string())));
    list.extend(objects.table_provider_factories.iter().map(|(n, _)| (Capability::TableProviderFactory, n.clone())));
    list.extend(objects.analyzer_rules.iter().map(|r| (Capability::AnalyzerRule, r.name().to_string())));
    list.extend(objects.relation_planners.iter().map(|p| (Capability::RelationPlanner, p.name().to_string())));
    if let (Some(_), Some(ns)) = (&objects.config, namespace) {
        list.push((Capability::ConfigNamespace, ns.to_string()));
    }
    list
}

impl LoadedPlugin {
    /// Installs every object the plugin declares into `builder`. All or nothing: if any
    /// object cannot be installed (collision under [`CollisionPolicy::Error`], plugin error,
    /// invalid options), `builder` is left unchanged.
    ///
    /// ```no_run
    /// use datafusion::execution::session_state::SessionStateBuilder;
    /// use datafusion::prelude::SessionContext;
    /// use df_plugin_host::{load, InstallOptions};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let plugin = load("target/release/libcodeanatomy_plugin.so")?;
    /// let mut builder = SessionStateBuilder::new().with_default_features();
    /// plugin.install(&mut builder, &InstallOptions::new())?;
    /// let ctx = SessionContext::new_with_state(builder.build());
    /// # Ok(()) }
    /// ```
    pub fn install(&self, builder: &mut SessionStateBuilder, options: &InstallOptions) -> Result<InstalledPlugin, HostError> {
        let span = tracing::info_span!("install_plugin", plugin = %self.name());
        let _enter = span.enter();
        let declared = self.manifest().capability_set().unwrap_or_default();
        for capability in declared.iter() {
            let installable = matches!(
                capability,
                Capability::ScalarUdf
                    | Capability::AggregateUdf
                    | Capability::WindowUdf
                    | Capability::TableFunction
                    | Capability::PhysicalOptimizerRule
                    | Capability::TableProviderFactory
                    // Nothing to register: opened on demand with `LoadedPlugin::table_provider`.
                    | Capability::TableProvider
                    | Capability::ConfigNamespace
                    | Capability::AnalyzerRule
                    | Capability::RelationPlanner
                    // Carried by the providers themselves (DML forwarding).
                    | Capability::Dml
            );
            if !installable {
                return Err(HostError::CapabilityUnavailable {
                    plugin: self.name().to_string(),
                    capability: capability.name().to_string(),
                    needed: "a newer".to_string(),
                    abi: self.manifest().abi,
                });
            }
            self.require(capability)?;
        }
        let objects = self.objects(&options.options_json)?;
        let namespace = self.manifest().config.as_ref().map(|c| c.namespace.clone());
        let list = object_list(&objects, namespace.as_deref());

        // Decide everything before touching the builder.
        let mut skip = Vec::new();
        let mut replace = Vec::new();
        for (kind, name) in &list {
            if taken(builder, *kind, name) {
                match options.on_collision {
                    CollisionPolicy::Error => {
                        return Err(HostError::NameCollision {
                            plugin: self.name().to_string(),
                            kind: kind.name(),
                            name: name.clone(),
                            owner: "registered before this install".to_string(),
                        })
                    }
                    CollisionPolicy::Skip => skip.push((*kind, name.clone())),
                    CollisionPolicy::Replace => replace.push((*kind, name.clone())),
                }
            }
        }
        let skipped = |kind: Capability, name: &str| skip.iter().any(|(k, n)| *k == kind && n == name);
        for (kind, name) in &replace {
            remove(builder, *kind, name);
            tracing::warn!(kind = kind.name(), %name, "plugin object replaces an existing registration");
        }

        let mut installed = Vec::new();
        let mut record = |kind: Capability, name: &str| {
            installed.push(InstalledObject { kind: kind.name().to_string(), name: name.to_string() });
        };
        for f in objects.scalar_udfs {
            if !skipped(Capability::ScalarUdf, f.name()) {
                record(Capability::ScalarUdf, f.name());
                builder.scalar_functions().get_or_insert_with(Vec::new).push(f);
            }
        }
        for f in objects.aggregate_udfs {
            if !skipped(Capability::AggregateUdf, f.name()) {
                record(Capability::AggregateUdf, f.name());
                builder.aggregate_functions().get_or_insert_with(Vec::new).push(f);
            }
        }
        for f in objects.window_udfs {
            if !skipped(Capability::WindowUdf, f.name()) {
                record(Capability::WindowUdf, f.name());
                builder.window_functions().get_or_insert_with(Vec::new).push(f);
            }
        }
        for (name, f) in objects.table_functions {
            if !skipped(Capability::TableFunction, &name) {
                record(Capability::TableFunction, &name);
                builder
                    .table_functions()
                    .get_or_insert_with(Default::default)
                    .insert(name.clone(), Arc::new(datafusion::catalog::TableFunction::new(name, f)));
            }
        }
        for r in objects.physical_optimizer_rules {
            if !skipped(Capability::PhysicalOptimizerRule, r.name()) {
                record(Capability::PhysicalOptimizerRule, r.name());
                builder.physical_optimizer_rules().get_or_insert_with(Vec::new).push(r);
            }
        }
        for (name, factory) in objects.table_provider_factories {
            if !skipped(Capability::TableProviderFactory, &name) {
                record(Capability::TableProviderFactory, &name);
                builder.table_factories().get_or_insert_with(Default::default).insert(name, factory);
            }
        }
        let mut checked_rules = Vec::new();
        for rule in objects.analyzer_rules {
            if !skipped(Capability::AnalyzerRule, rule.name()) {
                record(Capability::AnalyzerRule, rule.name());
                checked_rules.push(rule.clone());
                // Appended: DataFusion's own rules (type coercion, ...) keep running first.
                builder.analyzer_rules().get_or_insert_with(Vec::new).push(Arc::new(rule));
            }
        }
        for planner in objects.relation_planners {
            if skipped(Capability::RelationPlanner, planner.name()) {
                continue;
            }
            // Replace needs no removal: the new planner goes first and answers before the old.
            record(Capability::RelationPlanner, planner.name());
            // Planners are asked in order; the plugin's only take relations they recognise.
            builder.relation_planners().get_or_insert_with(Vec::new).insert(0, Arc::new(planner));
        }
        // `DELETE ... WHERE false` must reach no provider as a filterless delete (see empty_dml).
        let rules = builder.optimizer_rules().get_or_insert_with(Vec::new);
        if !rules.iter().any(|r| r.name() == crate::empty_dml::EMPTY_DML_RULE) {
            rules.push(Arc::new(crate::empty_dml::EmptyDmlRule));
        }
        let mut config = builder.config().take().unwrap_or_else(SessionConfig::new);
        if let (Some(bag), Some(ns), Some(manifest)) = (objects.config, namespace.as_deref(), self.manifest().config.as_ref()) {
            if !skipped(Capability::ConfigNamespace, ns) {
                record(Capability::ConfigNamespace, ns);
                // One validating bag per session: several plugins' namespaces share it.
                let mut merged = config.options().extensions.get::<PluginConfigOptions>().cloned().unwrap_or_default();
                let values = datafusion::config::ExtensionOptions::entries(&bag)
                    .into_iter()
                    .filter_map(|e| e.value.map(|v| (e.key, v)));
                merged.add_namespace(self.name(), manifest, values);
                config = config.with_option_extension(merged);
            }
        }
        if !checked_rules.is_empty() {
            config = crate::sql::with_statement_rules(config, checked_rules);
        }
        *builder.config() = Some(config);

        let entry = InstalledPlugin {
            plugin: self.name().to_string(),
            version: self.manifest().plugin.version.clone(),
            path: self.path().display().to_string(),
            build_id: self.manifest().build.id.clone(),
            abi: self.manifest().abi.to_string(),
            capabilities: self.manifest().capabilities.clone(),
            native: self.is_native(),
            objects: installed,
        };
        SessionPlugins::record(builder, entry.clone());
        tracing::info!(objects = entry.objects.len(), skipped = skip.len(), replaced = replace.len(), "plugin installed");
        Ok(entry)
    }

    /// Installs into an existing context by rebuilding its state (physical optimizer rules and
    /// config extensions cannot be added to a built state otherwise). All or nothing.
    pub fn install_into_context(&self, ctx: &SessionContext, options: &InstallOptions) -> Result<InstalledPlugin, HostError> {
        let mut builder = SessionStateBuilder::new_from_existing(ctx.state());
        let entry = self.install(&mut builder, options)?;
        *ctx.state_ref().write() = builder.build();
        Ok(entry)
    }
}
