//! Plans a host hands over to the plugin as protobuf bytes, for hosts that take extension
//! codecs but no analyzer rules, relation planners or DML on foreign tables (datafusion-python
//! 55). The host plans a statement, encodes the plan with the session's codecs (the plugin's
//! in-process codec among them) and passes the bytes to a `dfplugin_*` entry point, which
//! decodes them here and:
//!
//! - describes the plan for the plugin's analyzer rules ([`describe_plan_bytes`]), the same
//!   description a Rust host's analyzer builds;
//! - plans `DELETE` / `UPDATE` on the plugin's own tables ([`DeferredDml`]): datafusion-ffi's
//!   table provider does not carry them, so the host gets a table whose scan is the DML plan;
//! - finds the plugin table a time-travel clause names.
//!
//! Table providers that protobuf cannot describe travel through the in-process codec: the
//! object stays in this process and the bytes carry a handle to it. Handles are meaningful only
//! inside the process that wrote them; they are not a storage format.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::config::ConfigOptions;
use datafusion::datasource::{source_as_provider, TableType};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{DmlStatement, Expr, Extension, LogicalPlan, TableSource, WriteOp};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::SessionConfig;
use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
use datafusion_ffi::table_provider::ForeignTableProvider;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use tracing::Instrument;

use crate::analyzer::{describe_plan, PlanDescription};
use crate::dml::{nothing_changed_plan, provably_empty_dml_input};

/// Bytes that start every handle, followed by the process id and the handle number.
const HANDLE_MAGIC: &[u8; 8] = b"DFPHNDL1";

/// How long a handle waits to be decoded. Hosts decode right after encoding; a handle written
/// for a plan that never got decoded (its encoding failed halfway, or a user kept the bytes)
/// would otherwise keep its table alive for the life of the process.
const HANDLE_LIFETIME: Duration = Duration::from_secs(600);

/// Objects waiting to be picked up on the decoding side, by handle number.
struct HandleTable<T: ?Sized> {
    entries: Mutex<HashMap<u64, (Instant, Arc<T>)>>,
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

impl<T: ?Sized> HandleTable<T> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn put(&self, value: Arc<T>, buf: &mut Vec<u8>) {
        let id = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        // A poisoned lock only means another thread panicked while holding it; the map is
        // still consistent (insert and remove are single operations).
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (written, _)| now.duration_since(*written) < HANDLE_LIFETIME);
        entries.insert(id, (now, value));
        buf.extend_from_slice(HANDLE_MAGIC);
        buf.extend_from_slice(&std::process::id().to_le_bytes());
        buf.extend_from_slice(&id.to_le_bytes());
    }

    /// Takes the object behind `buf`: every handle is decoded once.
    fn take(&self, buf: &[u8], what: &str) -> Result<Arc<T>> {
        let invalid = |found: &str| {
            DataFusionError::Plan(format!(
                "in-process {what} handle: expected {} bytes written by this process's plugin codec, found {found}; \
                 plans holding plugin objects cannot be stored or sent to another process",
                HANDLE_MAGIC.len() + 12
            ))
        };
        if buf.len() != HANDLE_MAGIC.len() + 12 || &buf[..8] != HANDLE_MAGIC {
            return Err(invalid(&format!("{} bytes of another format", buf.len())));
        }
        let pid = u32::from_le_bytes(buf[8..12].try_into().map_err(|_| invalid("a short process id"))?);
        if pid != std::process::id() {
            return Err(invalid(&format!("a handle of process {pid}")));
        }
        let id = u64::from_le_bytes(buf[12..20].try_into().map_err(|_| invalid("a short handle"))?);
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
            .map(|(_, value)| value)
            .ok_or_else(|| {
                invalid(&format!(
                    "handle {id}, which was already decoded, expired or never written"
                ))
            })
    }
}

fn table_handles() -> &'static HandleTable<dyn TableProvider> {
    static TABLES: std::sync::OnceLock<HandleTable<dyn TableProvider>> = std::sync::OnceLock::new();
    TABLES.get_or_init(HandleTable::new)
}

/// Logical codec: any table provider protobuf cannot describe travels as an in-process handle.
#[derive(Debug, Default)]
pub struct InProcessLogicalCodec;

impl LogicalExtensionCodec for InProcessLogicalCodec {
    fn try_decode(&self, _buf: &[u8], _inputs: &[LogicalPlan], _ctx: &TaskContext) -> Result<Extension> {
        Err(DataFusionError::NotImplemented(
            "the plugin's in-process codec carries no logical extension nodes".into(),
        ))
    }

    fn try_encode(&self, node: &Extension, _buf: &mut Vec<u8>) -> Result<()> {
        Err(DataFusionError::NotImplemented(format!(
            "the plugin's in-process codec carries no logical extension nodes (found {})",
            node.node.name()
        )))
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        _table_ref: &TableReference,
        _schema: SchemaRef,
        _ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        table_handles().take(buf, "table provider")
    }

    fn try_encode_table_provider(
        &self,
        _table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        table_handles().put(node, buf);
        Ok(())
    }
}

/// Decodes a plan the host encoded with its session's codecs, decoding through the same codecs
/// (`codec`, the host session's chain, which reaches this plugin's in-process codec and the
/// host's own, e.g. datafusion-python's Python functions). Functions the codecs leave to the
/// registry resolve in `task_ctx` (the plugin's functions and DataFusion's).
pub fn decode_plan(bytes: &[u8], codec: &FFI_LogicalExtensionCodec, task_ctx: &TaskContext) -> Result<LogicalPlan> {
    let decoder: Arc<dyn LogicalExtensionCodec> = codec.into();
    datafusion_proto::bytes::logical_plan_from_bytes_with_extension_codec(bytes, task_ctx, decoder.as_ref())
}

/// The description of a handed-over plan for the plugin's analyzer rules (see
/// [`crate::analyzer::describe_plan`]).
pub fn describe_plan_bytes(bytes: &[u8], codec: &FFI_LogicalExtensionCodec, task_ctx: &TaskContext) -> Result<PlanDescription> {
    describe_plan(&decode_plan(bytes, codec, task_ctx)?)
}

/// The provider behind `source` when it is this plugin's own object: a plan decoded through
/// the plugin's codecs hands the plugin its providers unwrapped, while a provider of another
/// library stays a `ForeignTableProvider`.
pub fn own_provider(source: &Arc<dyn TableSource>) -> Option<Arc<dyn TableProvider>> {
    source_as_provider(source).ok().filter(|p| p.downcast_ref::<ForeignTableProvider>().is_none())
}

/// The DELETE / UPDATE in `plan` when it targets this plugin's own table.
pub fn own_dml(plan: &LogicalPlan) -> Option<&DmlStatement> {
    match plan {
        LogicalPlan::Dml(dml)
            if matches!(dml.op, WriteOp::Delete | WriteOp::Update) && own_provider(&dml.target).is_some() =>
        {
            Some(dml)
        }
        _ => None,
    }
}

/// A `DELETE` / `UPDATE` on one of the plugin's tables, handed over by a host whose table
/// providers cannot carry DML (datafusion-ffi 55). To the host it is a table of one row,
/// `count`: scanning it plans the statement on the plugin side (optimizer, then DataFusion's
/// own physical planner, where the provider's `delete_from` / `update` are reachable: the
/// same calls a Rust host makes) and executing the scan runs it. Like a DataFrame of a DML
/// plan, every execution runs the statement again.
#[derive(Debug)]
pub struct DeferredDml {
    plan: LogicalPlan,
    table: String,
    config: ConfigOptions,
    schema: SchemaRef,
}

impl DeferredDml {
    /// `plan` when it is a DELETE / UPDATE on the plugin's own table ([`own_dml`]), else
    /// None; `config` holds the session's settings of the plugin's namespace.
    pub fn for_own_dml(plan: LogicalPlan, config: ConfigOptions) -> Option<Self> {
        let table = own_dml(&plan)?.table_name.to_string();
        let schema = Arc::clone(plan.schema().inner());
        Some(Self { plan, table, config, schema })
    }
}

/// Plans `plan` (DML on the plugin's own table, or anything else) with DataFusion's own
/// optimizer and physical planner in `state`, on this side of the boundary.
pub async fn plan_own_dml(plan: &LogicalPlan, state: &SessionState) -> Result<Arc<dyn ExecutionPlan>> {
    let planner = DefaultPhysicalPlanner::default();
    let optimized = state.optimize(plan)?;
    if let LogicalPlan::Dml(dml) = &optimized {
        if provably_empty_dml_input(&dml.input) {
            // `DELETE … WHERE false`: the optimizer folded the input away, and the provider would
            // be asked to delete with no filter at all. Nothing matches: nothing changes.
            tracing::debug!(target: "df_plugin", table = %dml.table_name, "DML over a provably empty input: nothing to change");
            return planner.create_physical_plan(&nothing_changed_plan()?, state).await;
        }
    }
    planner.create_physical_plan(&optimized, state).await
}

#[async_trait]
impl TableProvider for DeferredDml {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let span = tracing::info_span!(target: "df_plugin", "plan_dml", table = %self.table);
        async {
            let mut config = SessionConfig::from(self.config.clone());
            config.options_mut().execution.batch_size = session.config_options().execution.batch_size;
            let state = SessionStateBuilder::new()
                .with_config(config)
                .with_runtime_env(Arc::clone(session.runtime_env()))
                .with_default_features()
                .build();
            let plan = plan_own_dml(&self.plan, &state).await?;
            match projection {
                // The host only counts rows (`df.count()`): no column, one row.
                Some(columns) if columns.is_empty() => Ok(Arc::new(ProjectionExec::try_new(
                    Vec::<(Arc<dyn datafusion::physical_plan::PhysicalExpr>, String)>::new(),
                    plan,
                )?) as Arc<dyn ExecutionPlan>),
                _ => Ok(plan),
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_taken_once_and_only_in_this_process() {
        let table: Arc<dyn TableProvider> =
            Arc::new(datafusion::datasource::empty::EmptyTable::new(Arc::new(
                arrow::datatypes::Schema::empty(),
            )));
        let mut buf = Vec::new();
        table_handles().put(Arc::clone(&table), &mut buf);
        let back = table_handles()
            .take(&buf, "table provider")
            .expect("first decode");
        assert!(Arc::ptr_eq(&back, &table));
        let again = table_handles()
            .take(&buf, "table provider")
            .unwrap_err()
            .to_string();
        assert!(again.contains("already decoded"), "{again}");
        let mut foreign = buf.clone();
        foreign[8..12].copy_from_slice(&(std::process::id().wrapping_add(1)).to_le_bytes());
        let other = table_handles()
            .take(&foreign, "table provider")
            .unwrap_err()
            .to_string();
        assert!(other.contains("a handle of process"), "{other}");
        let junk = table_handles()
            .take(b"xyz", "table provider")
            .unwrap_err()
            .to_string();
        assert!(junk.contains("3 bytes of another format"), "{junk}");
    }
}
