//! ABI 1.3 relation planners, both sides side by side.
//!
//! datafusion-ffi carries no `RelationPlanner`. This ABI carries planners that turn one SQL
//! relation (a table reference, optionally with a version clause such as `VERSION AS OF 3` or
//! `TIMESTAMP AS OF '...'`) into a table provider to scan in its place. The host describes the
//! relation as JSON ([`RelationDescription`]) and hands over the provider the name resolves to
//! when it came from a plugin, so the plugin can recognise its own tables; the answer is a new
//! provider or "not mine" (`None`), which leaves the relation to DataFusion.

use std::sync::Arc;

use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use datafusion::catalog::TableProvider;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::planner::{PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::{TableFactor, TableVersion};
use datafusion_ffi::table_provider::FFI_TableProvider;
use serde::{Deserialize, Serialize};

use crate::config::settings_json;
use crate::dml::AbiTableProvider;
use crate::error::{ErrorCode, PluginError};
use crate::export::{exported_state, Exported};
use crate::guard::guard_ffi;
use crate::plugin::options_from_settings;

/// One SQL relation, as a plugin's relation planner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationDescription {
    /// The table reference, normalized as the session normalizes identifiers.
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<RelationVersion>,
}

/// A version clause and its literal value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationVersion {
    /// `VERSION AS OF`, `TIMESTAMP AS OF` or `FOR SYSTEM_TIME AS OF`.
    pub clause: String,
    /// An integer or a string.
    pub value: serde_json::Value,
}

/// A relation planner, as a plugin implements it.
pub trait PluginRelationPlanner: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;

    /// The provider to scan for `relation`, or `None` when the relation is not this planner's.
    /// `table` is the provider the relation's name resolves to, when a plugin made it.
    fn plan_relation(
        &self,
        relation: &RelationDescription,
        table: Option<Arc<dyn TableProvider>>,
        config: &ConfigOptions,
    ) -> Result<Option<Arc<dyn TableProvider>>, PluginError>;
}

/// `plan_relation(planner, relation_json, table, settings_json)`; `table` may be null.
pub type PlanRelationFn = extern "C" fn(
    planner: RStr<'_>,
    relation_json: RStr<'_>,
    table: *const FFI_TableProvider,
    settings_json: RStr<'_>,
) -> RResult<ROption<FFI_TableProvider>, PluginError>;

/// Plugin side of `relation_planners`: the exported planner names.
pub extern "C" fn relation_planners<P: Exported>() -> RResult<RVec<RString>, PluginError> {
    guard_ffi("relation_planners", || {
        Ok(exported_state::<P>()?.exports.relation_planners.iter().map(|r| RString::from(r.name())).collect())
    })
}

/// Plugin side of [`PlanRelationFn`].
pub extern "C" fn plan_relation<P: Exported>(
    planner: RStr<'_>,
    relation_json: RStr<'_>,
    table: *const FFI_TableProvider,
    settings_json: RStr<'_>,
) -> RResult<ROption<FFI_TableProvider>, PluginError> {
    guard_ffi("plan_relation", || {
        let state = exported_state::<P>()?;
        let name = planner.as_str();
        let planner = state.exports.relation_planners.iter().find(|r| r.name() == name).ok_or_else(|| {
            PluginError::new(ErrorCode::UnknownObject, format!("this plugin exports no relation planner named '{name}'"))
        })?;
        let relation: RelationDescription = serde_json::from_str(relation_json.as_str()).map_err(|e| {
            PluginError::new(ErrorCode::InvalidArgument, format!("relation planner '{name}': the relation description is not valid: {e}"))
        })?;
        // SAFETY: the host passes null or a pointer to a live FFI_TableProvider for the call.
        let table = unsafe { table.as_ref() }.map(<Arc<dyn TableProvider>>::from);
        let config = options_from_settings(&P::MANIFEST, settings_json.as_str())?;
        Ok(match planner.plan_relation(&relation, table, &config)? {
            Some(provider) => ROption::RSome(FFI_TableProvider::new(
                provider,
                true,
                Some(state.runtime().clone()),
                &state.task_context_provider(),
                None,
            )),
            None => ROption::RNone,
        })
    })
}

/// The literal a version clause holds, as JSON.
fn literal_json(expr: &Expr) -> Option<serde_json::Value> {
    match expr {
        Expr::Literal(value, _) => match value {
            ScalarValue::Int8(Some(v)) => Some((*v as i64).into()),
            ScalarValue::Int16(Some(v)) => Some((*v as i64).into()),
            ScalarValue::Int32(Some(v)) => Some((*v as i64).into()),
            ScalarValue::Int64(Some(v)) => Some((*v).into()),
            ScalarValue::UInt8(Some(v)) => Some((*v as u64).into()),
            ScalarValue::UInt16(Some(v)) => Some((*v as u64).into()),
            ScalarValue::UInt32(Some(v)) => Some((*v as u64).into()),
            ScalarValue::UInt64(Some(v)) => Some((*v).into()),
            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s.clone().into()),
            other if !other.is_null() => Some(other.to_string().into()),
            _ => None,
        },
        // `TIMESTAMP '...'` plans as a cast of the string.
        Expr::Cast(cast) => literal_json(&cast.expr),
        Expr::TryCast(cast) => literal_json(&cast.expr),
        _ => None,
    }
}

/// The task-context provider a host attaches to providers it exports for the call (the
/// plugin only identifies them; it never scans through it). It must outlive them.
fn host_task_context_provider() -> Arc<dyn datafusion::execution::TaskContextProvider> {
    static SESSION: std::sync::OnceLock<Arc<datafusion::prelude::SessionContext>> = std::sync::OnceLock::new();
    Arc::clone(SESSION.get_or_init(|| Arc::new(datafusion::prelude::SessionContext::new()))) as Arc<dyn datafusion::execution::TaskContextProvider>
}

/// Host side: a plugin's relation planner, called through [`PlanRelationFn`]. It handles
/// table references with a version clause and leaves every other relation to DataFusion.
#[derive(Debug, Clone)]
pub struct AbiRelationPlanner {
    name: String,
    plugin: String,
    namespace: Option<String>,
    call: PlanRelationFn,
    calls: crate::scan::TableCalls,
}

impl AbiRelationPlanner {
    /// Planner `name` of `plugin`; `calls` let the providers it returns take DELETE/UPDATE and
    /// scan through the ABI.
    pub fn new(
        name: &str,
        plugin: &str,
        namespace: Option<&str>,
        call: PlanRelationFn,
        calls: crate::scan::TableCalls,
    ) -> Self {
        Self { name: name.to_string(), plugin: plugin.to_string(), namespace: namespace.map(str::to_string), call, calls }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl RelationPlanner for AbiRelationPlanner {
    fn plan_relation(&self, relation: TableFactor, context: &mut dyn RelationPlannerContext) -> Result<RelationPlanning> {
        let TableFactor::Table { name, alias, version: Some(version), args: None, .. } = &relation else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let (clause, expr) = match version {
            TableVersion::VersionAsOf(e) => ("VERSION AS OF", e),
            TableVersion::TimestampAsOf(e) => ("TIMESTAMP AS OF", e),
            TableVersion::ForSystemTimeAsOf(e) => ("FOR SYSTEM_TIME AS OF", e),
            _ => return Ok(RelationPlanning::Original(Box::new(relation))),
        };
        let table_ref = context.object_name_to_table_reference(name.clone())?;
        let planned = context.sql_to_expr(expr.clone(), &DFSchema::empty())?;
        let value = literal_json(&planned).ok_or_else(|| {
            DataFusionError::from(PluginError::new(
                ErrorCode::Plan,
                format!("{clause} on table '{table_ref}' takes a literal (a version number or a timestamp string); found {expr}"),
            ))
        })?;
        let source = context.context_provider().get_table_source(table_ref.clone()).ok();
        let table = source.as_ref().and_then(|s| source_as_provider(s).ok()).map(|p| match p.downcast_ref::<AbiTableProvider>() {
            Some(t) => t.ffi().clone(),
            // A plugin linked in-process hands out its providers unwrapped; the plugin
            // recognises its own through the FFI struct's library marker either way.
            None => FFI_TableProvider::new(p, true, None, &host_task_context_provider(), None),
        });
        let description = RelationDescription { table: table_ref.to_string(), version: Some(RelationVersion { clause: clause.to_string(), value }) };
        let json = serde_json::to_string(&description)
            .map_err(|e| DataFusionError::Internal(format!("relation description does not serialize: {e}")))?;
        let settings = self
            .namespace
            .as_deref()
            .map(|ns| settings_json(context.context_provider().options(), ns))
            .unwrap_or_default();
        let table_ptr = table.as_ref().map_or(std::ptr::null(), |t| t as *const FFI_TableProvider);
        let result = (self.call)(RStr::from_str(&self.name), RStr::from_str(&json), table_ptr, RStr::from_str(&settings));
        match result {
            RResult::ROk(ROption::RSome(ffi)) => {
                tracing::debug!(target: "df_plugin", planner = %self.name, table = %table_ref, clause, "relation planned by plugin");
                let provider = AbiTableProvider::new(&self.plugin, self.namespace.as_deref(), ffi, self.calls);
                let plan = LogicalPlanBuilder::scan(table_ref, provider_as_source(Arc::new(provider)), None)?.build()?;
                Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(plan, alias.clone()))))
            }
            RResult::ROk(ROption::RNone) => Ok(RelationPlanning::Original(Box::new(relation))),
            RResult::RErr(error) => Err(DataFusionError::from(error)),
        }
    }
}
