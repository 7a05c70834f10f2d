//! The plugin's whole-session planner, for hosts that take query planners and extension codecs
//! but no analyzer rules, relation planners or DML wrappers: datafusion-python 55
//! (`SessionContext.with_extensions`, datafusion-ffi's `FFI_QueryPlanner`).
//!
//! The planner wraps the session's own planner (the *fallback*). For every plan that reaches
//! physical planning (queries, `INSERT`, `DELETE`, `UPDATE`, `COPY`, `EXPLAIN`, DataFrame plans)
//! it runs the plugin's analyzer rules, and it plans `DELETE` / `UPDATE` on the plugin's own
//! tables itself (datafusion-ffi's table provider does not carry them); everything else goes to
//! the fallback unchanged.
//!
//! Plans cross datafusion-ffi's query-planner boundary as protobuf bytes. Table providers and
//! execution plans that protobuf cannot describe travel through the in-process codecs here:
//! the object stays in this process and the bytes carry a handle to it. The handles are only
//! meaningful inside the process that wrote them; they are not a storage format.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{DmlStatement, Extension, LogicalPlan, TableSource, WriteOp};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_ffi::table_provider::ForeignTableProvider;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use tracing::Instrument;

use crate::analyzer::{describe_plan, PluginAnalyzerRule};
use crate::dml::{nothing_changed_plan, provably_empty_dml_input};

/// Bytes that start every handle, followed by the process id and the handle number.
const HANDLE_MAGIC: &[u8; 8] = b"DFPHNDL1";

/// Objects waiting to be picked up on the decoding side, by handle number.
struct HandleTable<T: ?Sized> {
    entries: Mutex<HashMap<u64, Arc<T>>>,
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
        // A poisoned lock only means another thread panicked while holding it; the map is
        // still consistent (insert and remove are single operations).
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, value);
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
        let pid = u32::from_le_bytes(
            buf[8..12]
                .try_into()
                .map_err(|_| invalid("a short process id"))?,
        );
        if pid != std::process::id() {
            return Err(invalid(&format!("a handle of process {pid}")));
        }
        let id = u64::from_le_bytes(
            buf[12..20]
                .try_into()
                .map_err(|_| invalid("a short handle"))?,
        );
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
            .ok_or_else(|| {
                invalid(&format!(
                    "handle {id}, which was already decoded or never written"
                ))
            })
    }
}

fn table_handles() -> &'static HandleTable<dyn TableProvider> {
    static TABLES: std::sync::OnceLock<HandleTable<dyn TableProvider>> = std::sync::OnceLock::new();
    TABLES.get_or_init(HandleTable::new)
}

fn plan_handles() -> &'static HandleTable<dyn ExecutionPlan> {
    static PLANS: std::sync::OnceLock<HandleTable<dyn ExecutionPlan>> = std::sync::OnceLock::new();
    PLANS.get_or_init(HandleTable::new)
}

/// Logical codec: any table provider protobuf cannot describe travels as an in-process handle.
#[derive(Debug, Default)]
pub struct InProcessLogicalCodec;

impl LogicalExtensionCodec for InProcessLogicalCodec {
    fn try_decode(
        &self,
        _buf: &[u8],
        _inputs: &[LogicalPlan],
        _ctx: &TaskContext,
    ) -> Result<Extension> {
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
        _schema: arrow::datatypes::SchemaRef,
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

/// Physical codec: any execution plan protobuf cannot describe travels as an in-process handle.
#[derive(Debug, Default)]
pub struct InProcessPhysicalCodec;

impl PhysicalExtensionCodec for InProcessPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        _inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan_handles().take(buf, "execution plan")
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        plan_handles().put(node, buf);
        Ok(())
    }
}

/// The plugin's query planner around the session's own (`fallback`).
#[derive(Debug)]
pub struct SessionPlanner {
    plugin: String,
    fallback: Arc<dyn QueryPlanner + Send + Sync>,
    analyzer_rules: Vec<Arc<dyn PluginAnalyzerRule>>,
}

impl SessionPlanner {
    pub fn new(
        plugin: &str,
        fallback: Arc<dyn QueryPlanner + Send + Sync>,
        analyzer_rules: Vec<Arc<dyn PluginAnalyzerRule>>,
    ) -> Self {
        Self {
            plugin: plugin.to_string(),
            fallback,
            analyzer_rules,
        }
    }
}

/// Runs `rules` on `plan` with the session's configuration.
pub fn check_plan(
    plugin: &str,
    rules: &[Arc<dyn PluginAnalyzerRule>],
    plan: &LogicalPlan,
    config: &datafusion::config::ConfigOptions,
) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let description = describe_plan(plan)?;
    for rule in rules {
        let _span =
            tracing::debug_span!(target: "df_plugin", "analyzer_rule", plugin, rule = rule.name())
                .entered();
        rule.analyze(&description, config)
            .map_err(DataFusionError::from)?;
    }
    Ok(())
}

/// The provider behind `source` when it is this plugin's own object: a plan decoded through
/// the plugin's codecs hands the plugin its providers unwrapped, while a provider of another
/// library stays a `ForeignTableProvider`.
pub fn own_provider(source: &Arc<dyn TableSource>) -> Option<Arc<dyn TableProvider>> {
    source_as_provider(source).ok().filter(|p| p.downcast_ref::<ForeignTableProvider>().is_none())
}

/// The DELETE / UPDATE in `plan` when it targets this plugin's own table.
fn own_dml(plan: &LogicalPlan) -> Option<&DmlStatement> {
    match plan {
        LogicalPlan::Dml(dml)
            if matches!(dml.op, WriteOp::Delete | WriteOp::Update) && own_provider(&dml.target).is_some() =>
        {
            Some(dml)
        }
        _ => None,
    }
}

#[async_trait]
impl QueryPlanner for SessionPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        check_plan(
            &self.plugin,
            &self.analyzer_rules,
            plan,
            session.config_options(),
        )?;
        let Some(dml) = own_dml(plan) else {
            return self.fallback.create_physical_plan(plan, session).await;
        };
        let table = &dml.table_name;
        let span = tracing::info_span!(target: "df_plugin", "plan_dml", plugin = %self.plugin, table = %table, op = %dml.op);
        async {
            // DataFusion's own planner, on this side of the boundary, where the provider is the
            // plugin's object and its `delete_from` / `update` are reachable: the same calls, with
            // the same filters and assignments, as in a Rust host.
            let state = SessionStateBuilder::new()
                .with_config(session.config().clone())
                .with_runtime_env(Arc::clone(session.runtime_env()))
                .with_default_features()
                .build();
            let planner = DefaultPhysicalPlanner::default();
            if provably_empty_dml_input(&dml.input) {
                // `DELETE … WHERE false`: the optimizer folded the input away, and the provider
                // would be asked to delete with no filter at all. Nothing matches: nothing changes.
                tracing::debug!(target: "df_plugin", %table, "DML over a provably empty input: nothing to change");
                return planner.create_physical_plan(&nothing_changed_plan()?, &state).await;
            }
            planner.create_physical_plan(plan, &state).await
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
