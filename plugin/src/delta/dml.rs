//! `DELETE FROM t WHERE …` and `UPDATE t SET … WHERE …` on a Delta table: one commit per
//! statement, through deltalake's operations (which enforce the table's CHECK constraints and
//! NOT NULL columns, and retry commits that conflict with concurrent writers).
//!
//! Hosts reach these through the plugin ABI's DML forwarding: datafusion-ffi drops them.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use deltalake::DeltaTable;
use df_plugin_api::ErrorCode;
use futures::StreamExt;

use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::Column;
use datafusion::prelude::SessionContext;

use super::options::{DeltaTableOptions, TableVersion};
use super::provider::DeltaProvider;
use super::runtime::plugin_session;
use super::runtime::on_plugin_runtime;
use super::table::{delta_error, map_write_error, open_table};
use super::write::{count_batch, count_properties, count_schema};

/// What a [`DeltaDmlExec`] does.
#[derive(Debug, Clone)]
pub enum DeltaDml {
    /// Delete the rows matching the predicate (all rows when `None`). Unless
    /// `allow_full_table_delete`, a delete that would leave a non-empty table empty is refused
    /// when it runs, before anything is written.
    Delete { predicate: Option<Expr>, allow_full_table_delete: bool },
    /// Set columns to expressions on the rows matching the predicate.
    Update { assignments: Vec<(String, Expr)>, predicate: Option<Expr> },
}

/// Refuses DML on a pinned table: writes always go to the latest version.
pub fn check_writable(options: &DeltaTableOptions, statement: &str) -> Result<()> {
    if options.version != TableVersion::Latest || options.files.is_some() {
        return Err(delta_error(
            ErrorCode::InvalidArgument,
            format!(
                "delta table '{}' is pinned (version {}{}); {statement} goes to the latest version: register it \
                 without 'version', 'timestamp' or 'files'",
                options.table_uri,
                options.version,
                if options.files.is_some() { ", pinned files" } else { "" }
            ),
        ));
    }
    Ok(())
}

impl DeltaDml {
    /// A DELETE of the rows matching every filter.
    pub fn delete(filters: Vec<Expr>, allow_full_table_delete: bool) -> Self {
        DeltaDml::Delete { predicate: conjunction(filters), allow_full_table_delete }
    }

    /// An UPDATE of the rows matching every filter.
    pub fn update(assignments: Vec<(String, Expr)>, filters: Vec<Expr>) -> Self {
        DeltaDml::Update { assignments, predicate: conjunction(filters) }
    }

    fn statement(&self) -> &'static str {
        match self {
            DeltaDml::Delete { .. } => "DELETE",
            DeltaDml::Update { .. } => "UPDATE",
        }
    }
}

/// Row counts of the files of a table's current snapshot, by path.
fn file_rows(table: &DeltaTable) -> HashMap<String, Option<usize>> {
    match table.snapshot() {
        Ok(state) => state.log_data().iter().map(|f| (f.path().into_owned(), f.num_records())).collect(),
        Err(_) => HashMap::new(),
    }
}

async fn run(options: DeltaTableOptions, dml: DeltaDml) -> Result<u64> {
    let uri = options.table_uri.clone();
    let table = open_table(&options).await?;
    let rows = match dml {
        DeltaDml::Delete { predicate, allow_full_table_delete } => {
            if !allow_full_table_delete {
                refuse_full_table_delete(&options, predicate.as_ref()).await?;
            }
            let before = file_rows(&table);
            let builder = table.clone().delete();
            let builder = match predicate {
                Some(p) => builder.with_predicate(p),
                None => builder,
            };
            let (table, metrics) = builder.await.map_err(|e| map_write_error(&table, &uri, e))?;
            match metrics.num_deleted_rows {
                Some(n) => n as u64,
                // Whole files removed from the log: their rows are what was deleted.
                None => {
                    let after = file_rows(&table);
                    let removed = before.iter().filter(|(path, _)| !after.contains_key(*path));
                    let (counted, missing): (Vec<_>, Vec<_>) = removed.map(|(_, n)| *n).partition(Option::is_some);
                    if !missing.is_empty() {
                        tracing::warn!(target: "codeanatomy::delta", table = %uri, files = missing.len(), "deleted files carry no row count; the reported count omits them");
                    }
                    counted.into_iter().flatten().sum::<usize>() as u64
                }
            }
        }
        DeltaDml::Update { assignments, predicate } => {
            let mut builder = table.clone().update();
            if let Some(p) = predicate {
                builder = builder.with_predicate(p);
            }
            for (column, value) in assignments {
                builder = builder.with_update(column, value);
            }
            let (_, metrics) = builder.await.map_err(|e| map_write_error(&table, &uri, e))?;
            metrics.num_updated_rows as u64
        }
    };
    Ok(rows)
}

/// The full-table-delete guard, decided by effect: a DELETE that would leave a table with rows
/// empty is refused, whatever its predicate looks like (`WHERE true`, `WHERE id = id`,
/// `WHERE id IS NULL OR id IS NOT NULL`, no WHERE at all). Counts the rows the predicate keeps
/// (false or NULL) first; only when none are kept does it count the table.
async fn refuse_full_table_delete(options: &DeltaTableOptions, predicate: Option<&Expr>) -> Result<()> {
    let latest = DeltaTableOptions { version: TableVersion::Latest, files: None, ..options.clone() };
    let provider: Arc<dyn datafusion::catalog::TableProvider> = Arc::new(DeltaProvider::open_async(latest).await?);
    let ctx = SessionContext::new_with_state(plugin_session(&Default::default()));
    let kept = match predicate {
        None => 0,
        Some(predicate) => {
            let unqualified = predicate
                .clone()
                .transform(|e| match e {
                    Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))),
                    other => Ok(Transformed::no(other)),
                })
                .data()?;
            ctx.read_table(Arc::clone(&provider))?.filter(unqualified.is_not_true())?.count().await?
        }
    };
    if kept > 0 {
        return Ok(());
    }
    let total = ctx.read_table(provider)?.count().await?;
    if total == 0 {
        return Ok(());
    }
    let what = match predicate {
        None => "DELETE without WHERE".to_string(),
        Some(p) => format!("DELETE ... WHERE {p}"),
    };
    Err(delta_error(
        ErrorCode::PolicyViolation,
        format!(
            "{what} on delta table '{}' would delete every row ({total} of {total}); nothing was deleted. Narrow the \
             WHERE clause, or SET codeanatomy.dml.allow_full_table_delete = true to delete them all",
            options.table_uri
        ),
    ))
}

/// Runs a DELETE or UPDATE on a Delta table when executed and returns the affected-row count.
#[derive(Debug)]
pub struct DeltaDmlExec {
    options: DeltaTableOptions,
    dml: DeltaDml,
    properties: Arc<PlanProperties>,
}

impl DeltaDmlExec {
    pub fn new(options: DeltaTableOptions, dml: DeltaDml) -> Result<Self> {
        check_writable(&options, dml.statement())?;
        Ok(Self { options, dml, properties: count_properties() })
    }
}

impl DisplayAs for DeltaDmlExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeltaDmlExec: {} table={}", self.dml.statement(), df_plugin_api::redact::redact_urls(&self.options.table_uri))
    }
}

impl ExecutionPlan for DeltaDmlExec {
    fn name(&self) -> &str {
        "DeltaDmlExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(format!("DeltaDmlExec is a leaf; got {} children", children.len())))
        }
    }

    fn execute(&self, partition: usize, _ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("DeltaDmlExec has one partition; asked for {partition}")));
        }
        let (options, dml) = (self.options.clone(), self.dml.clone());
        let work = async move {
            let statement = dml.statement();
            let uri = options.table_uri.clone();
            let rows = on_plugin_runtime(run(options, dml)).await?;
            tracing::info!(target: "codeanatomy::delta", table = %uri, statement, rows, "delta DML committed");
            count_batch(rows)
        };
        let object = format!("{} on delta table '{}'", self.dml.statement(), self.options.table_uri);
        Ok(df_plugin_api::safety::PanicSafeStream::wrap(
            object,
            Box::pin(RecordBatchStreamAdapter::new(count_schema(), futures::stream::once(work).boxed())),
        ))
    }
}
