//! ABI 1.3 analyzer rules, both sides side by side.
//!
//! datafusion-ffi carries no `AnalyzerRule`. This ABI carries *inspecting* analyzer rules: the
//! host describes the logical plan as JSON ([`PlanDescription`]: every node with its statement
//! kind, every function call with its declared volatility, each with where in the plan it sits)
//! and the plugin's rule accepts it or returns a coded error. A description, not
//! datafusion-proto bytes, because the plans a policy must see most (DDL, `SET` and other
//! statements, plans over foreign providers) do not serialize to protobuf.

use std::sync::Arc;

use abi_stable::std_types::{RResult, RStr, RString, RVec};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::WindowFunctionDefinition;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use datafusion::optimizer::AnalyzerRule;
use serde::{Deserialize, Serialize};

use crate::config::settings_json;
use crate::plugin::options_from_settings;
use crate::error::{ErrorCode, PluginError};
use crate::export::{exported_state, Exported};
use crate::guard::guard_ffi;
use crate::rule_activity::{RuleActiveFn, RuleActivity, RuleKind};

/// A logical plan as an inspecting rule sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDescription {
    /// Every plan node, parents before children, subqueries and views included.
    pub nodes: Vec<PlanNode>,
    /// Every function call in the plan's expressions.
    pub functions: Vec<FunctionUse>,
    /// Parts of the statement the host could not describe, each with the reason (e.g. a plan
    /// datafusion-python cannot hand over). A rule that needs to see inside them must refuse
    /// the statement, naming the reason: an unseen part is never taken as harmless.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
}

/// Where in the plan something sits: `top level`, or a path such as
/// `top level > subquery 'c' > UNION branch`.
pub type PlanContext = String;

/// The statement kinds a policy distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// A query node (projection, join, scan, ...).
    Query,
    /// `CREATE` / `DROP` of tables, views, schemas, catalogs, functions.
    Ddl,
    /// `INSERT`, `DELETE`, `UPDATE`, `TRUNCATE`, `CREATE TABLE AS` inserts.
    Dml,
    /// `COPY ... TO`.
    Copy,
    /// `SET`, `RESET`, `PREPARE`, `EXECUTE`, transactions.
    Statement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanNode {
    pub kind: StatementKind,
    /// The node's name, e.g. `CreateView`, `Insert Into`, `SetVariable`, `TableScan`.
    pub name: String,
    /// The table a scan or DML node targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub context: PlanContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionKind {
    Scalar,
    Aggregate,
    Window,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionUse {
    pub name: String,
    pub kind: FunctionKind,
    /// `immutable`, `stable` or `volatile`, as the function declares it.
    pub volatility: String,
    pub context: PlanContext,
}

fn volatility_name(v: Volatility) -> String {
    format!("{v:?}").to_ascii_lowercase()
}

fn node_of(plan: &LogicalPlan, context: &str) -> PlanNode {
    let (kind, name, table) = match plan {
        LogicalPlan::Ddl(ddl) => (StatementKind::Ddl, ddl.name().to_string(), None),
        LogicalPlan::Dml(dml) => (StatementKind::Dml, dml.op.name().to_string(), Some(dml.table_name.to_string())),
        LogicalPlan::Copy(copy) => (StatementKind::Copy, "CopyTo".to_string(), Some(copy.output_url.clone())),
        LogicalPlan::Statement(s) => (StatementKind::Statement, s.name().to_string(), None),
        LogicalPlan::TableScan(scan) => (StatementKind::Query, "TableScan".to_string(), Some(scan.table_name.to_string())),
        other => {
            // The first word of the one-line display is the node's name (`Projection: ...`).
            let line = other.display().to_string();
            let name = line.split([':', ' ']).next().unwrap_or("Plan").to_string();
            (StatementKind::Query, name, None)
        }
    };
    PlanNode { kind, name, table, context: context.to_string() }
}

fn describe_into(plan: &LogicalPlan, context: &str, out: &mut PlanDescription) -> Result<()> {
    out.nodes.push(node_of(plan, context));
    let mut subqueries: Vec<Arc<LogicalPlan>> = Vec::new();
    plan.apply_expressions(|expr| {
        expr.apply(|e| {
            let call = match e {
                Expr::ScalarFunction(f) => Some((f.func.name().to_string(), FunctionKind::Scalar, f.func.signature().volatility)),
                Expr::AggregateFunction(f) => Some((f.func.name().to_string(), FunctionKind::Aggregate, f.func.signature().volatility)),
                Expr::WindowFunction(w) => match &w.fun {
                    WindowFunctionDefinition::AggregateUDF(u) => Some((u.name().to_string(), FunctionKind::Window, u.signature().volatility)),
                    WindowFunctionDefinition::WindowUDF(u) => Some((u.name().to_string(), FunctionKind::Window, u.signature().volatility)),
                },
                Expr::ScalarSubquery(q) => {
                    subqueries.push(Arc::clone(&q.subquery));
                    None
                }
                Expr::Exists(x) => {
                    subqueries.push(Arc::clone(&x.subquery.subquery));
                    None
                }
                Expr::InSubquery(x) => {
                    subqueries.push(Arc::clone(&x.subquery.subquery));
                    None
                }
                _ => None,
            };
            if let Some((name, kind, volatility)) = call {
                out.functions.push(FunctionUse { name, kind, volatility: volatility_name(volatility), context: context.to_string() });
            }
            Ok(TreeNodeRecursion::Continue)
        })
    })?;
    for subquery in subqueries {
        describe_into(&subquery, &format!("{context} > subquery"), out)?;
    }
    if let LogicalPlan::TableScan(scan) = plan {
        if let Some(view) = scan.source.get_logical_plan() {
            describe_into(&view, &format!("{context} > view '{}'", scan.table_name), out)?;
        }
    }
    let child_context = match plan {
        LogicalPlan::Union(_) => format!("{context} > UNION branch"),
        LogicalPlan::SubqueryAlias(alias) => format!("{context} > subquery '{}'", alias.alias),
        LogicalPlan::Subquery(_) => format!("{context} > subquery"),
        _ => context.to_string(),
    };
    for input in plan.inputs() {
        describe_into(input, &child_context, out)?;
    }
    Ok(())
}

/// Describes `plan` (host side).
///
/// ```
/// use datafusion::prelude::SessionContext;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> datafusion::error::Result<()> {
/// let ctx = SessionContext::new();
/// let plan = ctx.state().create_logical_plan("SELECT random() FROM (VALUES (1)) t(x)").await?;
/// let described = df_plugin_api::analyzer::describe_plan(&plan)?;
/// assert!(described.functions.iter().any(|f| f.name == "random" && f.volatility == "volatile"));
/// # Ok(()) }
/// ```
pub fn describe_plan(plan: &LogicalPlan) -> Result<PlanDescription> {
    let mut out = PlanDescription::default();
    describe_into(plan, "top level", &mut out)?;
    Ok(out)
}

/// An inspecting analyzer rule, as a plugin implements it.
pub trait PluginAnalyzerRule: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;

    /// Accepts the plan or returns a coded error. `config` holds the plugin's configuration
    /// namespace as the session has it (validated).
    fn analyze(&self, plan: &PlanDescription, config: &ConfigOptions) -> Result<(), PluginError>;
}

/// `analyze_plan(rule, plan_json, settings_json)`: `settings_json` is the session's values of
/// the plugin's configuration namespace as a JSON object.
pub type AnalyzePlanFn =
    extern "C" fn(rule: RStr<'_>, plan_json: RStr<'_>, settings_json: RStr<'_>) -> RResult<(), PluginError>;

/// Plugin side of `analyzer_rules`: the exported rule names, in order.
pub extern "C" fn analyzer_rules<P: Exported>() -> RResult<RVec<RString>, PluginError> {
    guard_ffi("analyzer_rules", || {
        Ok(exported_state::<P>()?.exports.analyzer_rules.iter().map(|r| RString::from(r.name())).collect())
    })
}

/// Plugin side of [`AnalyzePlanFn`].
pub extern "C" fn analyze_plan<P: Exported>(
    rule: RStr<'_>,
    plan_json: RStr<'_>,
    settings_json: RStr<'_>,
) -> RResult<(), PluginError> {
    guard_ffi("analyze_plan", || {
        let state = exported_state::<P>()?;
        let name = rule.as_str();
        let rule = state.exports.analyzer_rules.iter().find(|r| r.name() == name).ok_or_else(|| {
            PluginError::new(ErrorCode::UnknownObject, format!("this plugin exports no analyzer rule named '{name}'"))
        })?;
        let plan: PlanDescription = serde_json::from_str(plan_json.as_str()).map_err(|e| {
            PluginError::new(ErrorCode::InvalidArgument, format!("analyzer rule '{name}': the plan description is not valid: {e}"))
        })?;
        let config = options_from_settings(&P::MANIFEST, settings_json.as_str())?;
        rule.analyze(&plan, &config)
    })
}

/// Host side: a plugin's analyzer rule, called through [`AnalyzePlanFn`]. Returns the plan
/// unchanged or the rule's error.
#[derive(Debug, Clone)]
pub struct AbiAnalyzerRule {
    name: String,
    namespace: Option<String>,
    call: AnalyzePlanFn,
    /// ABI 1.5: asked first whether the rule can reject anything under the settings.
    activity: Option<Arc<RuleActivity>>,
}

impl AbiAnalyzerRule {
    /// Rule `name` reached through `call`; `namespace` is the plugin's configuration prefix.
    pub fn new(name: &str, namespace: Option<&str>, call: AnalyzePlanFn) -> Self {
        Self { name: name.to_string(), namespace: namespace.map(str::to_string), call, activity: None }
    }

    /// Skips describing and sending plans while the plugin says the rule is inactive (ABI 1.5).
    pub fn with_activity(mut self, call: RuleActiveFn) -> Self {
        self.activity = Some(Arc::new(RuleActivity::new(RuleKind::Analyzer, call)));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the rule on `plan` without changing it.
    pub fn check(&self, plan: &LogicalPlan, config: &ConfigOptions) -> Result<()> {
        let settings = self.namespace.as_deref().map(|ns| settings_json(config, ns)).unwrap_or_default();
        if let Some(activity) = &self.activity {
            if !activity.is_active(&self.name, &settings)? {
                return Ok(());
            }
        }
        let description = describe_plan(plan)?;
        let json = serde_json::to_string(&description)
            .map_err(|e| DataFusionError::Internal(format!("plan description does not serialize: {e}")))?;
        tracing::debug!(target: "df_plugin", rule = %self.name, nodes = description.nodes.len(), "analyzer rule applied");
        match (self.call)(RStr::from_str(&self.name), RStr::from_str(&json), RStr::from_str(&settings)) {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(error) => {
                tracing::warn!(target: "df_plugin", rule = %self.name, code = error.code().name(), "analyzer rule rejected the plan");
                Err(DataFusionError::from(error))
            }
        }
    }
}

impl AnalyzerRule for AbiAnalyzerRule {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        self.check(&plan, config)?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        &self.name
    }
}
