//! `codeanatomy_policy`: an SQL policy, run as an analyzer rule through the plugin ABI.
//!
//! It sees the whole plan as the host describes it (subqueries, CTEs, views and UNION
//! branches included) and denies statement kinds and volatile functions the session's
//! `codeanatomy.policy.*` settings do not allow. It decides by statement kind and by each
//! function's declared volatility, never by matching SQL text or a list of names.

use datafusion::config::ConfigOptions;
use df_plugin_api::analyzer::{PlanDescription, PluginAnalyzerRule, StatementKind};
use df_plugin_api::{ErrorCode, PluginError};

use crate::config::{CodeAnatomyConfig, PolicySettings};

pub const NAME: &str = "codeanatomy_policy";

#[derive(Debug, Default)]
pub struct SqlPolicy;

fn deny(what: &str, context: &str, fix: &str) -> PluginError {
    tracing::warn!(target: "codeanatomy::policy", %what, %context, %fix, "statement denied by policy");
    PluginError::new(ErrorCode::PolicyViolation, format!("{what} is not allowed by the SQL policy ({context}); {fix} allows it"))
}

/// Whether the policy can deny anything under `config`: not while it allows every statement
/// kind and volatile functions. Settings that do not parse count as active, so the rule itself
/// reports them.
pub fn active(config: &ConfigOptions) -> bool {
    CodeAnatomyConfig::from_config_options(config).map_or(true, |s| {
        let p = s.policy;
        !(p.allow_ddl && p.allow_dml && p.allow_copy && p.allow_statements && !p.deterministic)
    })
}

/// Checks a plan description against `settings`.
pub fn check(plan: &PlanDescription, settings: &PolicySettings) -> Result<(), PluginError> {
    for node in &plan.nodes {
        let (allowed, label, key) = match node.kind {
            StatementKind::Query => continue,
            StatementKind::Ddl => (settings.allow_ddl, "DDL", "SET codeanatomy.policy.allow_ddl = true"),
            StatementKind::Dml => (settings.allow_dml, "DML", "SET codeanatomy.policy.allow_dml = true"),
            StatementKind::Copy => (settings.allow_copy, "COPY", "SET codeanatomy.policy.allow_copy = true"),
            StatementKind::Statement => {
                (settings.allow_statements, "statement", "SET codeanatomy.policy.allow_statements = true")
            }
        };
        if !allowed {
            let target = node.table.as_deref().map(|t| format!(" on '{t}'")).unwrap_or_default();
            return Err(deny(&format!("{label} {}{target}", node.name), &node.context, key));
        }
    }
    if settings.deterministic {
        if let Some(reason) = plan.unchecked.first() {
            return Err(deny(
                &format!("a statement whose functions cannot be checked for volatility ({reason})"),
                "top level",
                "SET codeanatomy.policy.deterministic = false",
            ));
        }
        if let Some(f) = plan.functions.iter().find(|f| f.volatility == "volatile") {
            return Err(deny(&format!("volatile function {}()", f.name), &f.context, "SET codeanatomy.policy.deterministic = false"));
        }
    }
    Ok(())
}

impl PluginAnalyzerRule for SqlPolicy {
    fn name(&self) -> &str {
        NAME
    }

    fn analyze(&self, plan: &PlanDescription, config: &ConfigOptions) -> Result<(), PluginError> {
        let settings = CodeAnatomyConfig::from_config_options(config)
            .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::InvalidConfig))?
            .policy;
        check(plan, &settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use df_plugin_api::analyzer::{FunctionKind, FunctionUse, PlanNode};

    fn plan(kind: StatementKind, name: &str) -> PlanDescription {
        PlanDescription {
            nodes: vec![PlanNode { kind, name: name.into(), table: None, context: "top level > subquery".into() }],
            functions: vec![],
            unchecked: vec![],
        }
    }

    #[test]
    fn denial_names_kind_context_and_key() {
        let settings = PolicySettings { allow_ddl: false, ..Default::default() };
        let err = check(&plan(StatementKind::Ddl, "CreateView"), &settings).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PolicyViolation);
        let m = err.message();
        assert!(m.contains("DDL CreateView") && m.contains("top level > subquery") && m.contains("SET codeanatomy.policy.allow_ddl = true"), "{m}");
        assert!(check(&plan(StatementKind::Ddl, "CreateView"), &PolicySettings::default()).is_ok());
    }

    #[test]
    fn volatile_functions_only_when_deterministic() {
        let mut p = plan(StatementKind::Query, "Projection");
        p.functions.push(FunctionUse { name: "random".into(), kind: FunctionKind::Scalar, volatility: "volatile".into(), context: "top level".into() });
        p.functions.push(FunctionUse { name: "now".into(), kind: FunctionKind::Scalar, volatility: "stable".into(), context: "top level".into() });
        assert!(check(&p, &PolicySettings::default()).is_ok());
        let err = check(&p, &PolicySettings { deterministic: true, ..Default::default() }).unwrap_err();
        assert!(err.message().contains("random()") && err.message().contains("deterministic = false allows it"), "{}", err.message());
    }

    #[test]
    fn an_unchecked_part_is_refused_only_when_functions_matter() {
        let mut p = plan(StatementKind::Query, "Query");
        p.unchecked.push("IN (subquery) does not serialize".into());
        assert!(check(&p, &PolicySettings { allow_ddl: false, ..Default::default() }).is_ok());
        let err = check(&p, &PolicySettings { deterministic: true, ..Default::default() }).unwrap_err();
        assert!(err.message().contains("IN (subquery) does not serialize"), "{}", err.message());
    }
}
