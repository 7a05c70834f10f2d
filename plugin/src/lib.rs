//! CodeAnatomy: a DataFusion extension pack, usable in-process (rlib) or loaded through FFI
//! (cdylib) by any `df_plugin_host` or datafusion-python session.
//!
//! [`CodeAnatomy`] is the [`Plugin`]: its manifest ([`CodeAnatomy::MANIFEST`]) is embedded in
//! the library file, and `build` returns every object the manifest names.

use std::sync::Arc;

use df_plugin_api::manifest::{Capability, ManifestDecl, ObjectDecl};
use df_plugin_api::{Plugin, PluginContext, PluginError, PluginExports};

pub mod config;
pub mod delta;
pub mod registry;
pub mod rules;
pub mod udaf;
pub mod udf;
pub mod udwf;

/// The plugin.
pub struct CodeAnatomy;

const fn scalar(name: &'static str) -> ObjectDecl {
    ObjectDecl::new(Capability::ScalarUdf, name)
}
const fn aggregate(name: &'static str) -> ObjectDecl {
    ObjectDecl::new(Capability::AggregateUdf, name)
}
const fn window(name: &'static str) -> ObjectDecl {
    ObjectDecl::new(Capability::WindowUdf, name)
}

/// Every exported object by name. The manifest must be readable without loading the library,
/// so the names are declared here; the host (and `exports_match_manifest` below) check that
/// `build` exports exactly these.
pub const OBJECTS: &[ObjectDecl] = &[
    scalar("stable_hash64"),
    scalar("stable_hash128"),
    scalar("stable_id"),
    scalar("span_make"),
    scalar("span_len"),
    scalar("span_overlaps"),
    scalar("span_contains"),
    scalar("span_id"),
    scalar("col_to_byte"),
    scalar("byte_to_line_col"),
    scalar("line_col_to_byte"),
    scalar("canonicalize_byte_span"),
    scalar("interval_align_score"),
    scalar("utf8_normalize"),
    scalar("utf8_null_if_blank"),
    scalar("qname_normalize"),
    scalar("map_get_default"),
    scalar("map_normalize"),
    scalar("list_drop_nulls"),
    scalar("list_unique_sorted"),
    scalar("struct_pick"),
    scalar("cdf_change_rank"),
    scalar("cdf_is_upsert"),
    scalar("cdf_is_delete"),
    aggregate("collect_set"),
    aggregate("count_if"),
    aggregate("arg_max"),
    aggregate("arg_min"),
    aggregate("any_value_det"),
    aggregate("asof_select"),
    window("best_in_partition"),
    ObjectDecl::new(Capability::TableFunction, registry::FUNCTION_NAME),
    ObjectDecl::new(Capability::TableFunction, delta::functions::DELTA_SCAN),
    ObjectDecl::new(Capability::TableFunction, delta::functions::DELTA_CHANGES),
    ObjectDecl::new(Capability::TableFunction, delta::functions::DELTA_SNAPSHOT),
    ObjectDecl::new(Capability::TableFunction, delta::functions::DELTA_FILES),
    ObjectDecl::new(Capability::TableProviderFactory, delta::FACTORY_NAME),
    ObjectDecl::new(Capability::TableProvider, delta::PROVIDER_KIND),
    ObjectDecl::new(Capability::PhysicalOptimizerRule, rules::scan_guard::NAME),
    ObjectDecl::new(Capability::AnalyzerRule, rules::policy::NAME),
    ObjectDecl::new(Capability::RelationPlanner, delta::time_travel::NAME),
];

impl Plugin for CodeAnatomy {
    const MANIFEST: ManifestDecl =
        ManifestDecl::new("codeanatomy", env!("CARGO_PKG_VERSION"), df_plugin_api::build_info!())
            .with_config(&config::NAMESPACE)
            .with_capability(Capability::Dml)
            .with_objects(OBJECTS);

    fn build(_ctx: &PluginContext) -> Result<PluginExports, PluginError> {
        Ok(PluginExports::new()
            .with_scalar_udfs(udf::scalar_udfs())
            .with_aggregate_udfs(udaf::aggregate_udfs())
            .with_window_udfs(udwf::window_udfs())
            .with_table_function(registry::FUNCTION_NAME, Arc::new(registry::FunctionRegistryTable::default()))
            .with_table_function(delta::functions::DELTA_SCAN, Arc::new(delta::functions::DeltaScanFunction))
            .with_table_function(delta::functions::DELTA_CHANGES, Arc::new(delta::functions::DeltaChangesFunction))
            .with_table_function(delta::functions::DELTA_SNAPSHOT, Arc::new(delta::functions::DeltaSnapshotFunction))
            .with_table_function(delta::functions::DELTA_FILES, Arc::new(delta::functions::DeltaFilesFunction))
            .with_table_provider_factory(delta::FACTORY_NAME, Arc::new(delta::DeltaTableFactory))
            .with_table_provider(delta::PROVIDER_KIND, Arc::new(delta::DeltaProviderBuilder))
            .with_physical_optimizer_rule(Arc::new(rules::scan_guard::ScanGuard))
            .with_analyzer_rule(Arc::new(rules::policy::SqlPolicy))
            .with_relation_planner(Arc::new(delta::time_travel::DeltaTimeTravel)))
    }

    fn rule_active(kind: df_plugin_api::rule_activity::RuleKind, rule: &str, config: &datafusion::config::ConfigOptions) -> bool {
        let _ = kind;
        match rule {
            rules::scan_guard::NAME => rules::scan_guard::active(config),
            rules::policy::NAME => rules::policy::active(config),
            _ => true,
        }
    }

    fn stable_filter_pushdown(provider: &dyn datafusion::catalog::TableProvider) -> bool {
        // Answers depend on the expressions and the table's partition columns, which a
        // provider never changes (a refresh that would change them is an error).
        provider.downcast_ref::<delta::DeltaProvider>().is_some()
    }

    fn host_executable(plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> Option<df_plugin_api::scan::HostExecutable> {
        delta::exec::host_executable(plan)
    }
}

df_plugin_api::export_plugin!(CodeAnatomy);

#[cfg(test)]
mod tests {
    use super::*;
    use df_plugin_api::manifest::Manifest;

    #[test]
    fn exports_match_manifest() {
        let handle = df_plugin_api::runtime::plugin_runtime().expect("runtime");
        let exports = CodeAnatomy::build(&PluginContext::new(handle)).expect("build");
        let live = df_plugin_api::plugin::live_manifest(&CodeAnatomy::MANIFEST, &exports);
        let declared = Manifest::from_decl(&CodeAnatomy::MANIFEST);
        assert_eq!(live.differences(&declared), Vec::<String>::new());
    }
}
