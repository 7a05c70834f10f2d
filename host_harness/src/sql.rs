//! Running SQL with the installed plugins' analyzer rules applied everywhere.
//!
//! DataFusion runs analyzer rules when a plan is optimized: every query, `INSERT`/`DELETE`/
//! `UPDATE`, `COPY` and DataFrame plan passes them. `SessionContext::execute_logical_plan`
//! however executes DDL (`CREATE`, `DROP`) and `SET` directly, without the analyzer. [`sql`]
//! and [`execute_logical_plan`] close that gap: they run the installed plugin analyzer rules on
//! those statements first. Hosts that want a policy to hold for DDL and `SET` use them instead
//! of `SessionContext::sql`.

use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{LogicalPlan, Statement};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use df_plugin_api::analyzer::AbiAnalyzerRule;

/// The plugin analyzer rules installed in a session, kept in its config so statements the
/// analyzer never sees can be checked too.
#[derive(Debug, Default)]
struct StatementRules(Vec<AbiAnalyzerRule>);

/// `config` with `rules` added to the rules [`check_plan`] runs.
pub(crate) fn with_statement_rules(config: SessionConfig, rules: Vec<AbiAnalyzerRule>) -> SessionConfig {
    let mut all = config.get_extension::<StatementRules>().map(|r| r.0.clone()).unwrap_or_default();
    all.extend(rules);
    config.with_extension(Arc::new(StatementRules(all)))
}

/// Runs the installed plugin analyzer rules on `plan` (which is not changed).
pub fn check_plan(state: &SessionState, plan: &LogicalPlan) -> Result<()> {
    if let Some(rules) = state.config().get_extension::<StatementRules>() {
        for rule in &rules.0 {
            rule.check(plan, state.config_options())?;
        }
    }
    Ok(())
}

/// `ctx.execute_logical_plan(plan)`, with DDL and statements checked by the plugin rules.
pub async fn execute_logical_plan(ctx: &SessionContext, plan: LogicalPlan) -> Result<DataFrame> {
    if matches!(plan, LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)) {
        check_plan(&ctx.state(), &plan)?;
    }
    if let LogicalPlan::Statement(Statement::ResetVariable(reset)) = &plan {
        if let Some(done) = reset_plugin_key(ctx, &reset.variable)? {
            return Ok(done);
        }
    }
    ctx.execute_logical_plan(plan).await
}

/// `RESET <namespace>.<key>` for a plugin's key: DataFusion 55 resets only `datafusion.*` keys
/// ("Could not find config namespace"), so the host sets the key back to its declared default,
/// as `SET` would (validated, and seen by the plugin). `None` for keys of no plugin.
fn reset_plugin_key(ctx: &SessionContext, variable: &str) -> Result<Option<DataFrame>> {
    let key = variable.trim().to_ascii_lowercase();
    let state = ctx.state();
    let Some(bag) = state.config().options().extensions.get::<crate::config::PluginConfigOptions>() else { return Ok(None) };
    let Some(default) = bag.default_of(&key) else {
        return match key.split_once('.') {
            // A plugin's namespace with an unknown key: the same error SET gives.
            Some((prefix, _)) if bag.has_namespace(prefix) => {
                let mut probe = bag.clone();
                datafusion::config::ExtensionOptions::set(&mut probe, &key, "")?;
                Ok(None)
            }
            _ => Ok(None),
        };
    };
    ctx.state_ref().write().config_mut().options_mut().set(&key, &default)?;
    tracing::debug!(target: "df_plugin_host", %key, %default, "plugin configuration reset");
    Ok(Some(DataFrame::new(ctx.state(), LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
        produce_one_row: false,
        schema: Arc::new(datafusion::common::DFSchema::empty()),
    }))))
}

/// `ctx.sql(sql)` with every statement kind checked by the installed plugin analyzer rules.
///
/// ```no_run
/// # async fn demo() -> datafusion::error::Result<()> {
/// # let ctx = datafusion::prelude::SessionContext::new();
/// let rows = df_plugin_host::sql::sql(&ctx, "SELECT 1").await?.collect().await?;
/// # Ok(()) }
/// ```
pub async fn sql(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let plan = ctx.state().create_logical_plan(sql).await?;
    execute_logical_plan(ctx, plan).await
}

/// Splits a script into statements at top-level semicolons (quotes and comments respected),
/// without parsing them, so each can be parsed with the dialect in force when it runs.
pub fn split_statements(text: &str) -> Result<Vec<String>> {
    let tokens = Tokenizer::new(&GenericDialect {}, text)
        .tokenize()
        .map_err(|e| DataFusionError::Plan(format!("could not split the SQL into statements: {e}")))?;
    let mut statements = Vec::new();
    let mut current = String::new();
    for token in tokens {
        if token == Token::SemiColon {
            statements.push(std::mem::take(&mut current));
        } else {
            current.push_str(&token.to_string());
        }
    }
    statements.push(current);
    Ok(statements.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let parts = split_statements("SELECT 'a;b'; -- c;\nSELECT 2 ;;").unwrap();
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(parts[0].contains("'a;b'"), "{parts:?}");
        assert!(parts[1].ends_with("SELECT 2"), "{parts:?}");
    }
}
