//! What a SQL statement is, before DataFusion plans it: its kind (for a policy on statements
//! DataFusion executes without planning, such as DDL and `SET`), the variable a `SET` assigns,
//! and every relation with a time-travel clause (`VERSION AS OF`, `TIMESTAMP AS OF`,
//! `FOR SYSTEM_TIME AS OF`).
//!
//! DataFusion 55's SQL planner drops a version clause that no relation planner claims, so a
//! host without relation planners (datafusion-python) would read the latest snapshot. Such a
//! host inspects the statement here first, resolves each clause to a provider at that version,
//! and runs the statement [`rewrite`]n to scan those providers instead.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use datafusion::sql::parser::{CopyToSource, DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, Set, Statement, TableAlias, TableFactor, TableVersion, UnaryOperator,
    Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::dialect_from_str;
use serde::{Deserialize, Serialize};

use crate::analyzer::StatementKind;
use crate::{ErrorCode, PluginError};

/// A `SET <variable> = <value>` statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetVariable {
    /// The variable, lower-cased as DataFusion stores it.
    pub key: String,
    /// The value as `SET` would store it (string literals unquoted).
    pub value: String,
}

/// A relation carrying a time-travel clause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeTravelRelation {
    /// Position among the statement's time-travel relations, in visiting order.
    pub index: usize,
    /// The table (or table function) name as written.
    pub table: String,
    /// `VERSION AS OF`, `TIMESTAMP AS OF` or `FOR SYSTEM_TIME AS OF`.
    pub clause: String,
    /// The clause's literal: an integer or a string; `null` when it is not a literal.
    pub value: serde_json::Value,
    /// The clause's expression as written (for messages).
    pub value_sql: String,
    /// Whether the relation is a table function call (`delta_scan(...) VERSION AS OF 1`).
    pub function: bool,
}

/// One statement, inspected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementInfo {
    pub kind: StatementKind,
    /// The statement's name, e.g. `Query`, `CreateView`, `SetVariable`, `Delete`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_variable: Option<SetVariable>,
    #[serde(default)]
    pub time_travel: Vec<TimeTravelRelation>,
    /// The query inside a statement DataFusion runs as it plans it (`CREATE TABLE ... AS`,
    /// `CREATE VIEW ... AS`) or whose plan a host may not hand over (`COPY (query) TO`), so a
    /// policy can check that query on its own before the statement runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// For `EXPLAIN <statement>`: the explained statement, and the `EXPLAIN ...` words before
    /// it (options included), so a host can explain what it runs in the statement's place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explained: Option<ExplainedStatement>,
}

/// The statement inside an `EXPLAIN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainedStatement {
    /// `EXPLAIN`, `EXPLAIN ANALYZE VERBOSE`, ... (everything before the statement).
    pub prefix: String,
    pub statement: String,
}

fn explained(statement: &DFStatement) -> Option<ExplainedStatement> {
    let DFStatement::Explain(explain) = statement else {
        return None;
    };
    let inner = explain.statement.to_string();
    let full = explain.to_string();
    let prefix = full.strip_suffix(&inner)?.trim_end().to_string();
    Some(ExplainedStatement { prefix, statement: inner })
}

fn parse(sql: &str, dialect: &str) -> Result<DFStatement, PluginError> {
    let dialect = dialect_from_str(dialect).ok_or_else(|| {
        PluginError::new(
            ErrorCode::InvalidArgument,
            format!("unknown SQL dialect '{dialect}'"),
        )
    })?;
    let mut statements = DFParser::parse_sql_with_dialect(sql, dialect.as_ref())
        .map_err(|e| PluginError::new(ErrorCode::Plan, e.to_string()))?;
    if statements.len() != 1 {
        return Err(PluginError::new(
            ErrorCode::InvalidArgument,
            format!(
                "expected exactly one SQL statement, found {}",
                statements.len()
            ),
        ));
    }
    statements.pop_front().ok_or_else(|| {
        PluginError::new(
            ErrorCode::InvalidArgument,
            "expected one SQL statement, found none",
        )
    })
}

fn literal(expr: &Expr) -> serde_json::Value {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n
                .parse::<i64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| n.clone().into()),
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                serde_json::Value::String(s.clone())
            }
            _ => serde_json::Value::Null,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(expr) {
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(|i| serde_json::Value::from(-i))
                .unwrap_or(serde_json::Value::Null),
            _ => serde_json::Value::Null,
        },
        Expr::TypedString(t) => match &t.value.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                serde_json::Value::String(s.clone())
            }
            _ => serde_json::Value::Null,
        },
        _ => serde_json::Value::Null,
    }
}

/// Visits every relation with a version clause; replaces those listed in `replacements`.
struct TimeTravelVisitor<'a> {
    found: Vec<TimeTravelRelation>,
    replacements: &'a BTreeMap<usize, String>,
}

impl VisitorMut for TimeTravelVisitor<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args,
            version,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let (clause, expr) = match version {
            Some(TableVersion::VersionAsOf(e)) => ("VERSION AS OF", e),
            Some(TableVersion::TimestampAsOf(e)) => ("TIMESTAMP AS OF", e),
            Some(TableVersion::ForSystemTimeAsOf(e)) => ("FOR SYSTEM_TIME AS OF", e),
            Some(TableVersion::Function(e)) => ("AT", e),
            // `CHANGES (...)` and no clause: nothing to resolve here.
            Some(TableVersion::Changes { .. }) | None => return ControlFlow::Continue(()),
        };
        let index = self.found.len();
        self.found.push(TimeTravelRelation {
            index,
            table: name.to_string(),
            clause: clause.to_string(),
            value: literal(expr),
            value_sql: expr.to_string(),
            function: args.is_some(),
        });
        if let Some(replacement) = self.replacements.get(&index) {
            // Keep the name the query refers to: `t.id` still resolves after the swap.
            let visible = alias
                .as_ref()
                .map(|a| a.name.clone())
                .or_else(|| name.0.last().and_then(|part| part.as_ident().cloned()));
            *name = ObjectName::from(vec![Ident::new(replacement.clone())]);
            *version = None;
            *args = None;
            if alias.is_none() {
                *alias = visible.map(|name| TableAlias {
                    explicit: true,
                    name,
                    columns: vec![],
                    at: None,
                });
            }
        }
        ControlFlow::Continue(())
    }
}

fn visit_relations(statement: &mut DFStatement, visitor: &mut TimeTravelVisitor<'_>) {
    match statement {
        DFStatement::Statement(s) => {
            let _ = s.visit(visitor);
        }
        DFStatement::CopyTo(copy) => {
            if let CopyToSource::Query(query) = &mut copy.source {
                let _ = query.visit(visitor);
            }
        }
        DFStatement::Explain(explain) => visit_relations(&mut explain.statement, visitor),
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => {}
    }
}

/// The query a DDL or COPY statement carries (see [`StatementInfo::query`]).
fn embedded_query(statement: &DFStatement) -> Option<String> {
    match statement {
        DFStatement::CopyTo(copy) => match &copy.source {
            CopyToSource::Query(query) => Some(query.to_string()),
            CopyToSource::Relation(_) => None,
        },
        DFStatement::Statement(s) => match s.as_ref() {
            Statement::CreateTable(create) => create.query.as_ref().map(ToString::to_string),
            Statement::CreateView(view) => Some(view.query.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn classify(statement: &DFStatement) -> (StatementKind, String, Option<SetVariable>) {
    let s = match statement {
        DFStatement::CreateExternalTable(_) => {
            return (StatementKind::Ddl, "CreateExternalTable".into(), None)
        }
        DFStatement::CopyTo(_) => return (StatementKind::Copy, "CopyTo".into(), None),
        DFStatement::Explain(_) => return (StatementKind::Query, "Explain".into(), None),
        DFStatement::Reset(_) => return (StatementKind::Statement, "ResetVariable".into(), None),
        DFStatement::Statement(s) => s.as_ref(),
    };
    let name = |n: &str| n.to_string();
    match s {
        Statement::Query(_) => (StatementKind::Query, name("Query"), None),
        Statement::Insert(_) => (StatementKind::Dml, name("Insert"), None),
        Statement::Update { .. } => (StatementKind::Dml, name("Update"), None),
        Statement::Delete(_) => (StatementKind::Dml, name("Delete"), None),
        Statement::Merge { .. } => (StatementKind::Dml, name("Merge"), None),
        Statement::Copy { .. } => (StatementKind::Copy, name("Copy"), None),
        Statement::Set(Set::SingleAssignment {
            variable, values, ..
        }) => {
            let value = match values.as_slice() {
                [Expr::Value(v)] => match &v.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                },
                [other] => other.to_string(),
                many => many
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let key = variable.to_string().to_ascii_lowercase();
            (
                StatementKind::Statement,
                name("SetVariable"),
                Some(SetVariable { key, value }),
            )
        }
        Statement::Set(_) | Statement::ShowVariable { .. } | Statement::ShowVariables { .. } => {
            (StatementKind::Statement, name("SetVariable"), None)
        }
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => (StatementKind::Statement, name("Transaction"), None),
        Statement::CreateTable(_) => (StatementKind::Ddl, name("CreateTable"), None),
        Statement::CreateView(_) => (StatementKind::Ddl, name("CreateView"), None),
        Statement::CreateSchema { .. } => (StatementKind::Ddl, name("CreateSchema"), None),
        Statement::CreateDatabase { .. } => (StatementKind::Ddl, name("CreateCatalog"), None),
        Statement::CreateFunction(_) => (StatementKind::Ddl, name("CreateFunction"), None),
        Statement::CreateIndex(_) => (StatementKind::Ddl, name("CreateIndex"), None),
        Statement::Drop { .. } | Statement::DropFunction(_) => {
            (StatementKind::Ddl, name("Drop"), None)
        }
        Statement::AlterTable(_) => (StatementKind::Ddl, name("AlterTable"), None),
        Statement::Truncate(_) => (StatementKind::Dml, name("Truncate"), None),
        Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. } => (StatementKind::Query, name("Describe"), None),
        Statement::Explain { .. } => (StatementKind::Query, name("Explain"), None),
        _ => (StatementKind::Statement, name("Statement"), None),
    }
}

/// Inspects one SQL statement parsed with `dialect` (DataFusion's dialect names).
pub fn inspect(sql: &str, dialect: &str) -> Result<StatementInfo, PluginError> {
    let mut statement = parse(sql, dialect)?;
    let (kind, name, set_variable) = classify(&statement);
    let none = BTreeMap::new();
    let mut visitor = TimeTravelVisitor {
        found: Vec::new(),
        replacements: &none,
    };
    visit_relations(&mut statement, &mut visitor);
    Ok(StatementInfo {
        kind,
        name,
        set_variable,
        time_travel: visitor.found,
        query: embedded_query(&statement),
        explained: explained(&statement),
    })
}

/// The statement with the time-travel relations listed in `replacements` (by index) scanning the
/// named table instead, without the clause and under the name the query used for them.
pub fn rewrite(
    sql: &str,
    dialect: &str,
    replacements: &BTreeMap<usize, String>,
) -> Result<String, PluginError> {
    let mut statement = parse(sql, dialect)?;
    let mut visitor = TimeTravelVisitor {
        found: Vec::new(),
        replacements,
    };
    visit_relations(&mut statement, &mut visitor);
    if let Some(missing) = replacements.keys().find(|i| **i >= visitor.found.len()) {
        return Err(PluginError::new(
            ErrorCode::InvalidArgument,
            format!(
                "no time-travel relation {missing}: the statement has {}",
                visitor.found.len()
            ),
        ));
    }
    Ok(statement.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_an_explain_into_its_words_and_statement() {
        let info = inspect("EXPLAIN ANALYZE DELETE FROM t WHERE id = 1", "generic").unwrap();
        let explained = info.explained.expect("explained");
        assert_eq!(explained.statement, "DELETE FROM t WHERE id = 1");
        assert_eq!(explained.prefix, "EXPLAIN ANALYZE");
        assert_eq!(inspect("EXPLAIN SELECT 1", "generic").unwrap().explained.unwrap().prefix, "EXPLAIN");
        assert!(inspect("SELECT 1", "generic").unwrap().explained.is_none());
    }

    #[test]
    fn carries_the_query_of_ddl_and_copy() {
        let query = |sql: &str| inspect(sql, "generic").unwrap().query;
        assert_eq!(query("CREATE TABLE x AS SELECT random() AS r").as_deref(), Some("SELECT random() AS r"));
        assert_eq!(query("CREATE VIEW v AS SELECT 1").as_deref(), Some("SELECT 1"));
        assert_eq!(query("COPY (SELECT 1 AS x) TO '/tmp/o.parquet'").as_deref(), Some("SELECT 1 AS x"));
        assert_eq!(query("COPY t TO '/tmp/o.parquet'"), None);
        assert_eq!(query("CREATE TABLE x (a INT)"), None);
        assert_eq!(query("SELECT 1"), None);
    }

    #[test]
    fn finds_every_version_clause_and_rewrites_under_the_same_name() {
        let sql = "SELECT a.id FROM t VERSION AS OF 2 AS a JOIN (SELECT * FROM s.u TIMESTAMP AS OF '2026-01-01') b ON a.id = b.id";
        let info = inspect(sql, "databricks").unwrap();
        assert_eq!(info.kind, StatementKind::Query);
        assert_eq!(info.time_travel.len(), 2);
        assert_eq!(info.time_travel[0].table, "t");
        assert_eq!(info.time_travel[0].value, serde_json::json!(2));
        assert_eq!(info.time_travel[1].clause, "TIMESTAMP AS OF");
        assert_eq!(info.time_travel[1].value, serde_json::json!("2026-01-01"));
        let replaced = rewrite(
            sql,
            "databricks",
            &BTreeMap::from([(0, "tt0".to_string()), (1, "tt1".to_string())]),
        )
        .unwrap();
        assert!(
            replaced.contains("FROM tt0 AS a") && replaced.contains("FROM tt1 AS u"),
            "{replaced}"
        );
        assert!(!replaced.contains("AS OF"), "{replaced}");
    }

    #[test]
    fn classifies_statements_datafusion_runs_without_planning() {
        let set = inspect("SET codeanatomy.Span.line_base = '0'", "generic").unwrap();
        assert_eq!(set.kind, StatementKind::Statement);
        assert_eq!(
            set.set_variable,
            Some(SetVariable {
                key: "codeanatomy.span.line_base".into(),
                value: "0".into()
            })
        );
        assert_eq!(
            inspect("CREATE VIEW v AS SELECT 1", "generic")
                .unwrap()
                .kind,
            StatementKind::Ddl
        );
        assert_eq!(
            inspect(
                "CREATE EXTERNAL TABLE t STORED AS DELTA LOCATION '/x'",
                "generic"
            )
            .unwrap()
            .kind,
            StatementKind::Ddl
        );
        assert_eq!(
            inspect("DELETE FROM t WHERE id = 1", "generic")
                .unwrap()
                .kind,
            StatementKind::Dml
        );
        assert!(inspect("SELECT 1; SELECT 2", "generic")
            .unwrap_err()
            .message()
            .contains("exactly one"));
    }
}
