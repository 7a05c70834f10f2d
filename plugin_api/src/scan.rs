//! Host side of plugin scans: what a Rust host hands a plugin provider's `scan` and its plan's
//! `execute`.
//!
//! datafusion-ffi converts the session or task context it is given on every `scan` and every
//! `execute`: each of the host's scalar, aggregate and window functions is exported and imported
//! again (hundreds of FFI objects, most of a millisecond each time). A scan's filters arrive
//! already resolved and its plan's expressions are physical, so neither call has a use for the
//! registries. Both calls therefore get the host's configuration and runtime and nothing
//! registered; providers that need host functions can hold them themselves.

use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt;
use std::sync::{Arc, OnceLock};

use abi_stable::std_types::{ROption, RResult, RString, RVec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, Statistics};
use datafusion_ffi::execution_plan::FFI_ExecutionPlan;
use datafusion_ffi::table_provider::FFI_TableProvider;
use datafusion_proto::bytes::{physical_plan_from_bytes, physical_plan_to_bytes};

use crate::dml::TableDmlFn;
use crate::expr_bytes::{decode_exprs, encode_exprs};
use crate::filter_pushdown::TableFiltersPushdownFn;
use crate::error::{ErrorCode, PluginError};
use crate::export::{exported_state, Exported};
use crate::guard::guard_ffi;
use crate::module::PluginModuleRef;
use crate::runtime::block_on_plugin_runtime;
use crate::scalar_udf::{ConfigCache, RegisterConfigFn};

/// The session a plugin provider's `scan` receives: the host's configuration (batch size,
/// target partitions, Parquet and plugin settings) and runtime, and nothing registered.
pub fn scan_session(host: &dyn Session) -> SessionState {
    SessionStateBuilder::new()
        .with_config(host.config().clone())
        .with_runtime_env(Arc::clone(host.runtime_env()))
        .build()
}

/// `context` without its function registries.
pub fn registry_free(context: &TaskContext) -> Arc<TaskContext> {
    Arc::new(TaskContext::new(
        context.task_id(),
        context.session_id(),
        context.session_config().clone(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        context.runtime_env(),
    ))
}

/// A plugin scan's plan as a Rust host runs it: every call goes to datafusion-ffi's proxy,
/// except that `execute` passes a [`registry_free`] task context.
///
/// Downcasts see the proxy ([`ExecutionPlan::downcast_delegate`]), so handing the plan back
/// to its plugin (for example to a physical optimizer rule) still gives the plugin its own
/// node.
#[derive(Debug)]
pub struct PluginScanExec {
    inner: Arc<dyn ExecutionPlan>,
}

impl PluginScanExec {
    /// Wraps the plan a plugin provider's `scan` returned.
    pub fn wrap(inner: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        Arc::new(Self { inner })
    }

    /// The datafusion-ffi proxy underneath.
    pub fn inner(&self) -> &Arc<dyn ExecutionPlan> {
        &self.inner
    }
}

impl DisplayAs for PluginScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for PluginScanExec {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn downcast_delegate(&self) -> Option<&dyn ExecutionPlan> {
        Some(self.inner.as_ref())
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inner.children()
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Self::wrap(Arc::clone(&self.inner).with_new_children(children)?))
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Self::wrap(Arc::clone(&self.inner).reset_state()?))
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn dynamic_expressions_produced(&self) -> Vec<Arc<dyn PhysicalExpr>> {
        self.inner.dynamic_expressions_produced()
    }

    fn repartitioned(&self, target_partitions: usize, config: &ConfigOptions) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        Ok(self.inner.repartitioned(target_partitions, config)?.map(Self::wrap))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, registry_free(&context))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }

    #[allow(deprecated)]
    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        self.inner.partition_statistics(partition)
    }
}

// ---------------------------------------------------------------------------------------------
// ABI 1.4: `scan_table`, and plans the host runs itself

/// A scan plan a Rust host may rebuild from datafusion-proto bytes and run itself, instead
/// of pulling every batch through FFI (see [`crate::Plugin::host_executable`]).
pub struct HostExecutable {
    /// The name the host's node shows in `EXPLAIN` and to physical optimizer rules (for
    /// example the plugin's own node name, which its rules may read).
    pub label: String,
    /// Built from DataFusion's own nodes only, reading files through an object store the
    /// host has too (`file://`).
    pub plan: Arc<dyn ExecutionPlan>,
}

/// One `scan_table` call.
#[repr(C)]
pub struct ScanRequest {
    /// Column indices of the table's schema, or all columns.
    pub projection: ROption<RVec<usize>>,
    /// Pushed-down filters, each an `Expr` as datafusion-proto bytes.
    pub filters: RVec<RVec<u8>>,
    pub limit: ROption<usize>,
    /// The session's options: a live handle from `register_config`.
    pub config: *const c_void,
}

/// What `scan_table` returns.
#[repr(C)]
pub struct ScanResponse {
    /// The plugin's plan, run through datafusion-ffi.
    pub plan: FFI_ExecutionPlan,
    /// The same scan as plain DataFusion nodes (datafusion-proto bytes) when the plugin allows
    /// the host to run it ([`HostExecutable`]); empty otherwise.
    pub host_plan: RVec<u8>,
    /// [`HostExecutable::label`] (empty without a host plan).
    pub label: RString,
}

/// `scan_table(table, request)`: a scan of a table provider of this plugin.
pub type ScanTableFn = extern "C" fn(table: &FFI_TableProvider, request: ScanRequest) -> RResult<ScanResponse, PluginError>;

/// Plugin side of [`ScanTableFn`].
pub extern "C" fn scan_table<P: Exported>(table: &FFI_TableProvider, request: ScanRequest) -> RResult<ScanResponse, PluginError> {
    guard_ffi("scan_table", || {
        let state = exported_state::<P>()?;
        if request.config.is_null() {
            return Err(PluginError::new(ErrorCode::InvalidArgument, "scan_table: NULL config handle"));
        }
        // SAFETY: `config` is a live handle from `register_config`, held by the host for the
        // duration of this call.
        let options = unsafe { &*(request.config as *const Arc<ConfigOptions>) };
        let provider = <Arc<dyn TableProvider>>::from(table);
        let task_ctx = state.task_ctx();
        let filters = decode_exprs(&request.filters, &task_ctx)?;
        let projection: Option<Vec<usize>> = request.projection.into_option().map(|p| p.into_vec());
        let session = state.scan_session(options);
        let plan = block_on_plugin_runtime(provider.scan(session.as_ref(), projection.as_ref(), &filters, request.limit.into_option()))?
            .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Execution))?;
        let (host_plan, label) = match P::host_executable(&plan) {
            Some(host) => match physical_plan_to_bytes(Arc::clone(&host.plan)) {
                Ok(bytes) => (RVec::from(bytes.to_vec()), RString::from(host.label)),
                Err(e) => {
                    tracing::debug!(target: "df_plugin", error = %e, "scan plan does not serialize; the host runs it through FFI");
                    (RVec::new(), RString::new())
                }
            },
            None => (RVec::new(), RString::new()),
        };
        Ok(ScanResponse { plan: FFI_ExecutionPlan::new(plan, Some(state.runtime().clone())), host_plan, label })
    })
}

/// Host side: a scan through [`ScanTableFn`], or `None` when the plugin's ABI lacks it.
///
/// The options cross once per distinct session options (see [`ConfigCache`]); the plan the
/// host runs is the plugin's [`HostExecutable`] rebuilt with the host's own registry when there
/// is one that decodes to the expected schema, and the plugin's plan otherwise.
pub(crate) fn scan_through_abi(
    calls: &TableCalls,
    config: &ConfigCache,
    table: &FFI_TableProvider,
    table_schema: &SchemaRef,
    state: &dyn Session,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    limit: Option<usize>,
) -> Option<Result<Arc<dyn ExecutionPlan>>> {
    let (Some(scan), Some(register)) = (calls.scan, calls.register_config) else { return None };
    Some((|| {
        let handle = config.handle(register, state.config().options())?;
        let request = ScanRequest {
            projection: projection.map(|p| RVec::from(p.clone())).into(),
            filters: encode_exprs(filters)?,
            limit: limit.into(),
            config: handle.ptr,
        };
        let response = match scan(table, request) {
            RResult::ROk(response) => response,
            RResult::RErr(error) => return Err(DataFusionError::from(error)),
        };
        if !response.host_plan.is_empty() {
            match host_scan(&response, table_schema, state, projection) {
                Ok(plan) => return Ok(plan),
                Err(e) => tracing::debug!(target: "df_plugin", error = %e, "plugin scan not runnable by the host; running it through FFI"),
            }
        }
        Ok(PluginScanExec::wrap(<Arc<dyn ExecutionPlan>>::try_from(&response.plan)?))
    })())
}

fn host_scan(
    response: &ScanResponse,
    table_schema: &SchemaRef,
    state: &dyn Session,
    projection: Option<&Vec<usize>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    // Most scan plans name no function: decode them without copying the session's registries
    // into a task context, and with them only when a predicate calls a function.
    static BARE: OnceLock<Arc<TaskContext>> = OnceLock::new();
    let bare = BARE.get_or_init(|| Arc::new(TaskContext::default()));
    let plan = match physical_plan_from_bytes(response.host_plan.as_slice(), bare) {
        Ok(plan) => plan,
        Err(_) => physical_plan_from_bytes(response.host_plan.as_slice(), &state.task_ctx())?,
    };
    let expected = match projection {
        Some(p) => Arc::new(table_schema.project(p)?),
        None => Arc::clone(table_schema),
    };
    if plan.schema().fields() != expected.fields() {
        return Err(DataFusionError::Plan(format!(
            "host plan schema {:?} differs from the scan's {:?}",
            plan.schema().fields(),
            expected.fields()
        )));
    }
    HostScanExec::new(response.label.to_string(), plan, expected.metadata())
}

/// A plugin's scan run by the host: DataFusion's own nodes (usually one Parquet
/// `DataSourceExec`) under the plugin's name for the scan.
///
/// A leaf, like the plugin node it stands for, so host optimizers treat it as the plugin
/// scan it is; it forwards repartitioning, statistics and metrics to the plan inside.
#[derive(Debug)]
pub struct HostScanExec {
    label: String,
    inner: Arc<dyn ExecutionPlan>,
    /// The inner plan's properties with the scan's schema-level metadata (the provider's
    /// source identity, see [`crate::schema_identity`]), when the decoded plan lacks it.
    relabelled: Option<Arc<PlanProperties>>,
}

impl HostScanExec {
    fn new(
        label: String,
        inner: Arc<dyn ExecutionPlan>,
        metadata: &std::collections::HashMap<String, String>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let relabelled = if inner.schema().metadata() == metadata {
            None
        } else {
            let schema = crate::schema_identity::with_metadata(&inner.schema(), metadata);
            Some(crate::schema_identity::properties_with_schema(&inner, schema)?)
        };
        Ok(Arc::new(Self { label, inner, relabelled }))
    }

    fn with_inner(&self, inner: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
        let metadata = match &self.relabelled {
            Some(props) => props.eq_properties.schema().metadata().clone(),
            None => inner.schema().metadata().clone(),
        };
        Self::new(self.label.clone(), inner, &metadata)
    }

    /// The plan the host runs.
    pub fn inner(&self) -> &Arc<dyn ExecutionPlan> {
        &self.inner
    }
}

impl DisplayAs for HostScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}, run by host: ", self.label)?;
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for HostScanExec {
    fn name(&self) -> &str {
        &self.label
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.relabelled.as_ref().unwrap_or_else(|| self.inner.properties())
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    #[allow(deprecated)]
    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(format!("{} is a leaf; got {} children", self.label, children.len())))
        }
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        self.with_inner(Arc::clone(&self.inner).reset_state()?)
    }

    fn repartitioned(&self, target_partitions: usize, config: &ConfigOptions) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        self.inner.repartitioned(target_partitions, config)?.map(|inner| self.with_inner(inner)).transpose()
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        // The host runs the plugin's Parquet read itself: a corrupt file must end in an error,
        // not a panic that takes the host process down.
        let stream = crate::safety::execute_contained(&self.label, &self.inner, partition, context)?;
        Ok(match &self.relabelled {
            Some(props) => crate::schema_identity::relabel_stream(stream, Arc::clone(props.eq_properties.schema())),
            None => stream,
        })
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }

    #[allow(deprecated)]
    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        self.inner.partition_statistics(partition)
    }
}

/// The table calls of a plugin's ABI a host uses on its providers (absent fields: older ABI).
#[derive(Debug, Clone, Copy, Default)]
pub struct TableCalls {
    /// `DELETE` / `UPDATE` / `TRUNCATE` (1.3).
    pub dml: Option<TableDmlFn>,
    /// `scan_table` (1.4).
    pub scan: Option<ScanTableFn>,
    /// `register_config` (1.1), for the options `scan_table` takes.
    pub register_config: Option<RegisterConfigFn>,
    /// `table_filters_pushdown` (1.5).
    pub pushdown: Option<TableFiltersPushdownFn>,
}

impl TableCalls {
    pub fn of(module: PluginModuleRef) -> Self {
        Self {
            dml: module.table_dml(),
            scan: module.scan_table(),
            register_config: module.register_config(),
            pushdown: module.table_filters_pushdown(),
        }
    }
}
