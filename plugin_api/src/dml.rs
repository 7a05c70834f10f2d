//! ABI 1.3 DML on plugin tables, both sides side by side.
//!
//! `FFI_TableProvider` carries scans and `INSERT` but not `DELETE`, `UPDATE` or `TRUNCATE`:
//! through datafusion-ffi they fail even when the plugin's provider implements them. A host
//! wraps every provider a plugin hands it in [`AbiTableProvider`], which forwards everything
//! datafusion-ffi carries and sends the rest through [`TableDmlFn`]: the target provider, the
//! filters and assignments as datafusion-proto bytes, and the session's values of the plugin's
//! configuration namespace. The plugin runs its provider's own `delete_from` / `update` /
//! `truncate` and returns the plan (one `count` row when executed).

use std::sync::Arc;

use abi_stable::std_types::{RResult, RString, RVec, Tuple2};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProviderFactory;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::CreateExternalTable;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{lit, Expr, FetchType, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown};
use datafusion::physical_plan::{ExecutionPlan, Statistics};
use datafusion_ffi::execution_plan::FFI_ExecutionPlan;
use datafusion_ffi::table_provider::{FFI_TableProvider, ForeignTableProvider};

use crate::config::settings_json;
use crate::error::{ErrorCode, PluginError};
use crate::export::{exported_state, Exported};
use crate::expr_bytes::{decode_expr, decode_exprs, encode_expr, encode_exprs};
use crate::filter_pushdown::PushdownMemo;
use crate::guard::guard_ffi;
use crate::plugin::options_from_settings;
use crate::runtime::block_on_plugin_runtime;
use crate::scalar_udf::ConfigCache;
use crate::scan::{scan_session, scan_through_abi, PluginScanExec, TableCalls};

/// The DML operations this ABI forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DmlOp {
    Delete = 0,
    Update = 1,
    Truncate = 2,
}

impl DmlOp {
    fn from_u8(op: u8) -> Option<DmlOp> {
        [DmlOp::Delete, DmlOp::Update, DmlOp::Truncate]
            .into_iter()
            .find(|o| *o as u8 == op)
    }

    pub const fn sql(self) -> &'static str {
        match self {
            DmlOp::Delete => "DELETE",
            DmlOp::Update => "UPDATE",
            DmlOp::Truncate => "TRUNCATE",
        }
    }
}

/// One DML call.
#[repr(C)]
pub struct DmlRequest {
    /// A [`DmlOp`] as its number (a newer host may send an operation this plugin lacks).
    pub op: u8,
    /// Conjuncts of the `WHERE` clause, each an `Expr` as datafusion-proto bytes.
    pub filters: RVec<RVec<u8>>,
    /// `UPDATE` assignments: column name and `Expr` as datafusion-proto bytes.
    pub assignments: RVec<Tuple2<RString, RVec<u8>>>,
    /// The session's values of the plugin's namespace (see [`settings_json`]).
    pub settings_json: RString,
}

/// `table_dml(table, request)`: the plan that performs the operation on `table`.
pub type TableDmlFn = extern "C" fn(
    table: &FFI_TableProvider,
    request: DmlRequest,
) -> RResult<FFI_ExecutionPlan, PluginError>;

/// Plugin side of [`TableDmlFn`].
pub extern "C" fn table_dml<P: Exported>(
    table: &FFI_TableProvider,
    request: DmlRequest,
) -> RResult<FFI_ExecutionPlan, PluginError> {
    guard_ffi("table_dml", || {
        let state = exported_state::<P>()?;
        let op = DmlOp::from_u8(request.op).ok_or_else(|| {
            PluginError::new(
                ErrorCode::Unsupported,
                format!(
                    "DML operation number {} is unknown to this plugin",
                    request.op
                ),
            )
        })?;
        let provider = <Arc<dyn TableProvider>>::from(table);
        let task_ctx = state.task_ctx();
        let filters = decode_exprs(&request.filters, &task_ctx)?;
        let assignments = request
            .assignments
            .iter()
            .map(|Tuple2(column, expr)| Ok((column.to_string(), decode_expr(expr, &task_ctx)?)))
            .collect::<Result<Vec<_>, PluginError>>()?;
        let mut session = state.session().state();
        let config = options_from_settings(&P::MANIFEST, request.settings_json.as_str())?;
        session.config_mut().options_mut().extensions = config.extensions;
        let _span = tracing::info_span!(target: "df_plugin", "table_dml", op = op.sql()).entered();
        let plan = block_on_plugin_runtime(async {
            match op {
                DmlOp::Delete => provider.delete_from(&session, filters).await,
                DmlOp::Update => provider.update(&session, assignments, filters).await,
                DmlOp::Truncate => provider.truncate(&session).await,
            }
        })?
        .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Execution))?;
        Ok(FFI_ExecutionPlan::new(plan, Some(state.runtime().clone())))
    })
}

/// Host side: a plugin's table provider. Scans, pushdown, statistics and `INSERT` go through
/// datafusion-ffi; `DELETE`, `UPDATE` and `TRUNCATE` through [`TableDmlFn`].
#[derive(Debug)]
pub struct AbiTableProvider {
    plugin: String,
    namespace: Option<String>,
    ffi: FFI_TableProvider,
    inner: Arc<dyn TableProvider>,
    /// Read once: each call through datafusion-ffi exports and imports the schema again, and
    /// planning one query asks several times. DataFusion plans against a provider's schema as
    /// it was when the table was resolved anyway.
    schema: SchemaRef,
    table_type: TableType,
    calls: TableCalls,
    config: ConfigCache,
    pushdown: PushdownMemo,
}

impl AbiTableProvider {
    /// Wraps the provider `ffi` of `plugin`; `calls` are the plugin's ABI table calls (fields
    /// of an older ABI are `None`).
    pub fn new(
        plugin: &str,
        namespace: Option<&str>,
        ffi: FFI_TableProvider,
        calls: TableCalls,
    ) -> Self {
        let inner = <Arc<dyn TableProvider>>::from(&ffi);
        Self {
            plugin: plugin.to_string(),
            namespace: namespace.map(str::to_string),
            ffi,
            schema: inner.schema(),
            table_type: inner.table_type(),
            inner,
            calls,
            config: ConfigCache::default(),
            pushdown: PushdownMemo::default(),
        }
    }

    /// `provider` as a plugin's table: a datafusion-ffi proxy is wrapped so DML reaches the
    /// plugin; a provider of a plugin linked in-process is returned as is (its own
    /// `delete_from` / `update` run directly).
    pub fn wrap(
        plugin: &str,
        namespace: Option<&str>,
        provider: Arc<dyn TableProvider>,
        calls: TableCalls,
    ) -> Arc<dyn TableProvider> {
        match provider.downcast_ref::<ForeignTableProvider>() {
            Some(foreign) => Arc::new(Self::new(plugin, namespace, foreign.0.clone(), calls)),
            None => provider,
        }
    }

    /// The provider as datafusion-ffi carries it (to hand it back to its plugin).
    pub fn ffi(&self) -> &FFI_TableProvider {
        &self.ffi
    }

    fn forward(
        &self,
        state: &dyn Session,
        op: DmlOp,
        filters: &[Expr],
        assignments: &[(String, Expr)],
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(call) = self.calls.dml else {
            return Err(PluginError::new(
                ErrorCode::Unsupported,
                format!(
                    "{} on a table of plugin '{}' needs plugin ABI 1.3 or newer (DML forwarding); the plugin was built \
                     with an older df_plugin_api: rebuild it against the host's df_plugin_api",
                    op.sql(),
                    self.plugin
                ),
            )
            .into());
        };
        let request = DmlRequest {
            op: op as u8,
            filters: encode_exprs(filters)?,
            assignments: assignments
                .iter()
                .map(|(c, e)| Ok(Tuple2(RString::from(c.as_str()), encode_expr(e)?)))
                .collect::<Result<RVec<_>>>()?,
            settings_json: RString::from(
                self.namespace
                    .as_deref()
                    .map(|ns| settings_json(state.config_options(), ns))
                    .unwrap_or_default(),
            ),
        };
        tracing::debug!(target: "df_plugin", plugin = %self.plugin, op = op.sql(), filters = filters.len(), "DML forwarded to plugin");
        match call(&self.ffi, request) {
            RResult::ROk(plan) => <Arc<dyn ExecutionPlan>>::try_from(&plan),
            RResult::RErr(error) => Err(DataFusionError::from(error)),
        }
    }
}

#[async_trait]
impl TableProvider for AbiTableProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        self.table_type
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // ABI 1.4: one call with the session options as a cached handle; the plan may come
        // back as one the host runs itself.
        if let Some(plan) = scan_through_abi(
            &self.calls,
            &self.config,
            &self.ffi,
            &self.schema(),
            state,
            projection,
            filters,
            limit,
        ) {
            return plan;
        }
        Ok(PluginScanExec::wrap(
            self.inner
                .scan(&scan_session(state), projection, filters, limit)
                .await?,
        ))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        match self.calls.pushdown {
            // ABI 1.5: stable answers are asked once per distinct filters.
            Some(call) => self
                .pushdown
                .answers(filters, |encoded| call(&self.ffi, encoded)),
            None => self.inner.supports_filters_pushdown(filters),
        }
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.insert_into(state, input, insert_op).await
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.forward(state, DmlOp::Delete, &filters, &[])
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.forward(state, DmlOp::Update, &filters, &assignments)
    }

    async fn truncate(&self, state: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        self.forward(state, DmlOp::Truncate, &[], &[])
    }
}

/// Host side: a plugin's table provider factory whose tables take DML (see [`AbiTableProvider::wrap`]).
#[derive(Debug)]
pub struct AbiTableProviderFactory {
    plugin: String,
    namespace: Option<String>,
    inner: Arc<dyn TableProviderFactory>,
    calls: TableCalls,
}

impl AbiTableProviderFactory {
    pub fn new(
        plugin: &str,
        namespace: Option<&str>,
        inner: Arc<dyn TableProviderFactory>,
        calls: TableCalls,
    ) -> Self {
        Self {
            plugin: plugin.to_string(),
            namespace: namespace.map(str::to_string),
            inner,
            calls,
        }
    }
}

#[async_trait]
impl TableProviderFactory for AbiTableProviderFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let provider = self.inner.create(state, cmd).await?;
        Ok(AbiTableProvider::wrap(
            &self.plugin,
            self.namespace.as_deref(),
            provider,
            self.calls,
        ))
    }
}

/// Whether a DML input `plan` can produce no row at all, as DataFusion's optimizer leaves it
/// (`DELETE … WHERE false`): its provider must not be asked, since `delete_from` with no filter
/// means every row.
pub fn provably_empty_dml_input(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::EmptyRelation(empty) => !empty.produce_one_row,
        LogicalPlan::Filter(filter) => {
            matches!(
                &filter.predicate,
                Expr::Literal(
                    ScalarValue::Boolean(Some(false) | None)
                        | ScalarValue::Null,
                    _
                )
            ) || provably_empty_dml_input(&filter.input)
        }
        LogicalPlan::Limit(limit) => {
            matches!(
                limit.get_fetch_type(),
                Ok(FetchType::Literal(Some(0)))
            ) || provably_empty_dml_input(&limit.input)
        }
        LogicalPlan::Projection(p) => provably_empty_dml_input(&p.input),
        LogicalPlan::SubqueryAlias(a) => {
            provably_empty_dml_input(&a.input)
        }
        _ => false,
    }
}

/// What a DML statement over a provably empty input returns instead: `SELECT 0 AS count`.
pub fn nothing_changed_plan() -> Result<LogicalPlan> {
    LogicalPlanBuilder::empty(true).project(vec![lit(ScalarValue::UInt64(Some(0))).alias("count")])?.build()
}
