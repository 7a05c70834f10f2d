//! `DeltaProvider`: the one table provider behind every way into a Delta table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::execution::session_state::SessionState;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use deltalake::delta_datafusion::{DeltaScanConfig, DeltaScanNext};
use deltalake::DeltaTable;
use df_plugin_api::{ErrorCode, PluginError, TableProviderBuilder};

use super::direct_scan::{ineligible_reason, DirectScan};
use super::exec::{spread_files, DeltaTableExec, ScanSummary};
use super::options::{DeltaTableOptions, TableVersion};
use super::runtime::{block_on_plugin_runtime, on_plugin_runtime, plugin_session, plugin_session_for};
use super::table::{check_snapshot_files, delta_error, in_table, map_delta_error, open_table};
use super::dml::{check_writable, DeltaDml, DeltaDmlExec};
use super::write::DeltaWriteExec;
use crate::config::CodeAnatomyConfig;

/// A loaded snapshot and the deltalake scan over it.
#[derive(Clone)]
struct Loaded {
    table: DeltaTable,
    scan: Arc<DeltaScanNext>,
    files_total: usize,
    /// The table's protocol enables deletion vectors.
    deletion_vectors: bool,
    partition_columns: Vec<String>,
    /// Reads this snapshot's files as plain Parquet where the protocol allows.
    direct: Option<Arc<DirectScan>>,
    /// deltalake's pushdown answer per filter expression for this snapshot: the optimizer
    /// asks for the same filters in every pass of every query, and each answer depends only on
    /// the expression and the snapshot's protocol and partition columns.
    pushdown: Arc<Mutex<HashMap<Expr, TableProviderFilterPushDown>>>,
}

/// Pushdown answers kept per snapshot before the memo starts over.
const PUSHDOWN_ANSWERS_KEPT: usize = 1024;

struct Inner {
    options: DeltaTableOptions,
    /// The snapshot's schema, as deltalake reads it.
    schema: SchemaRef,
    /// What the provider reports: `schema`, with the source identity when the options ask
    /// for one (see [`DeltaTableOptions::identify_source`]).
    output_schema: SchemaRef,
    current: RwLock<Loaded>,
}

/// A Delta table as a DataFusion table provider. Reads the version its options pin, or the
/// latest version at each scan; scans plan and run in the plugin's environment.
#[derive(Clone)]
pub struct DeltaProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DeltaProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaProvider").field("table", &self.inner.options.table_uri).field("version", &self.version()).finish()
    }
}

fn scan_config(options: &DeltaTableOptions, session: &dyn Session) -> DeltaScanConfig {
    // Plain partition values: the table's own column types, as other engines show them.
    // Parquet pushdown always on: without it deltalake hands Parquet no predicate at all, so
    // row groups and pages could not be pruned (DataFusion's ListingTable prunes them even with
    // `pushdown_filters = false`). deltalake still reports data predicates as Inexact and turns
    // it off itself for deletion vectors and row tracking.
    let config = DeltaScanConfig::new_from_session(session).with_wrap_partition_values(false).with_parquet_pushdown(true);
    match &options.file_column {
        Some(name) => config.with_file_column_name(name),
        None => config,
    }
}

async fn build_scan(options: &DeltaTableOptions, table: &DeltaTable, session: &SessionState) -> Result<Loaded> {
    let uri = &options.table_uri;
    // Every file a scan of this snapshot may read lies in the table (or is allowed outside it).
    check_snapshot_files(options, table)?;
    let state = table.snapshot().map_err(|e| map_delta_error(uri, e))?;
    let snapshot = Arc::new(state.snapshot().clone());
    // `DeltaScanNext::new` is the protocol gate: a reader feature deltalake lacks is an error
    // naming that feature, never a scan that ignores it.
    let mut scan = DeltaScanNext::new(Arc::clone(&snapshot), scan_config(options, session)).map_err(|e| {
        let text = e.to_string();
        let code = if text.to_ascii_lowercase().contains("feature") { ErrorCode::Unsupported } else { ErrorCode::Execution };
        delta_error(code, format!("delta table '{uri}' (version {}) cannot be read: {text}", state.version()))
    })?;
    let mut files_total = state.log_data().num_files();
    if let Some(files) = &options.files {
        let active: std::collections::HashSet<String> = state.log_data().iter().map(|f| f.path().into_owned()).collect();
        if let Some(missing) = files.iter().find(|f| !active.contains(f.trim_start_matches("./"))) {
            return Err(delta_error(
                ErrorCode::NotFound,
                format!(
                    "delta table '{uri}' (version {}) has no active data file '{missing}' (pinned in 'files'); \
                     delta_files('{uri}') lists the active files",
                    state.version()
                ),
            ));
        }
        scan = scan.with_file_paths(files.iter().cloned());
        files_total = files.len();
    }
    let deletion_vectors = state
        .protocol()
        .reader_features()
        .is_some_and(|features| features.iter().any(|f| f.to_string() == "deletionVectors"));
    let partition_columns = state.metadata().partition_columns().to_vec();
    let protocol = state.protocol();
    let reader_features = protocol.reader_features().map(|features| features.iter().map(|f| f.to_string()).collect());
    let schema = scan.schema();
    let direct = match ineligible_reason(protocol.min_reader_version(), reader_features, &schema, options.file_column.is_some()) {
        Some(reason) => {
            tracing::debug!(target: "codeanatomy::delta", table = %uri, %reason, "reads go through deltalake's scan");
            None
        }
        None => match DirectScan::new(&schema, &partition_columns, state.log_data().iter()) {
            Some(mut direct) => {
                // The snapshot's files as deltalake plans them (object-store locations, pinned
                // files applied), indexed once so scans of this snapshot skip deltalake's planning.
                table.update_datafusion_session(session).map_err(|e| map_delta_error(uri, e))?;
                let all = scan.scan(session, None, &[], None).await.map_err(|e| in_table(uri, e))?;
                direct.index_files(&all, &state.log_data());
                Some(Arc::new(direct))
            }
            None => None,
        },
    };
    Ok(Loaded {
        table: table.clone(),
        scan: Arc::new(scan),
        files_total,
        deletion_vectors,
        partition_columns,
        direct,
        pushdown: Default::default(),
    })
}

impl DeltaProvider {
    /// Opens the table (blocking; safe on any thread).
    ///
    /// ```no_run
    /// use codeanatomy_plugin::delta::{DeltaProvider, DeltaTableOptions};
    /// let provider = DeltaProvider::open(DeltaTableOptions::new("/data/events")).unwrap();
    /// let ctx = datafusion::prelude::SessionContext::new();
    /// ctx.register_table("events", std::sync::Arc::new(provider)).unwrap();
    /// ```
    pub fn open(options: DeltaTableOptions) -> Result<Self> {
        block_on_plugin_runtime(Self::open_async(options))
    }

    /// Opens the table; run on the plugin runtime.
    pub async fn open_async(options: DeltaTableOptions) -> Result<Self> {
        let span = tracing::info_span!(target: "codeanatomy::delta", "delta_provider", table = %options.table_uri, version = %options.version);
        let _enter = span.enter();
        let table = open_table(&options).await?;
        let session = plugin_session(&Default::default());
        let loaded = build_scan(&options, &table, &session).await?;
        let schema = loaded.scan.schema();
        let output_schema = match options.source_identity() {
            Some(identity) => df_plugin_api::schema_identity::with_source(&schema, &identity),
            None => Arc::clone(&schema),
        };
        let indexed = loaded.direct.as_ref().and_then(|d| d.indexed_files());
        tracing::info!(target: "codeanatomy::delta", version = ?table.version(), files = loaded.files_total, ?indexed, "delta provider created");
        Ok(Self { inner: Arc::new(Inner { options, schema, output_schema, current: RwLock::new(loaded) }) })
    }

    pub fn options(&self) -> &DeltaTableOptions {
        &self.inner.options
    }

    /// The version the last scan read (or the provider was opened at).
    pub fn version(&self) -> Option<u64> {
        self.current().table.version().map(|v| v as u64)
    }

    fn current(&self) -> Loaded {
        self.inner.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The snapshot to scan: for `Latest`, the table is brought up to date first.
    async fn refreshed(inner: Arc<Inner>) -> Result<Loaded> {
        let current = inner.current.read().unwrap_or_else(|p| p.into_inner()).clone();
        if inner.options.version != TableVersion::Latest {
            return Ok(current);
        }
        let before = current.table.version();
        if let Some(version) = before {
            if !newer_commit_may_exist(&current.table, version).await {
                return Ok(current);
            }
        }
        let mut table = current.table.clone();
        table.update_incremental(None).await.map_err(|e| map_delta_error(&inner.options.table_uri, e))?;
        if table.version() == before {
            return Ok(current);
        }
        // Same scan settings as at creation, so the schema compares like for like.
        let loaded = build_scan(&inner.options, &table, &plugin_session(&Default::default())).await?;
        // Partition columns are checked too: pushdown answers (which hosts keep, see
        // `stable_filter_pushdown`) and exact partition filtering depend on them.
        if loaded.scan.schema() != inner.schema || loaded.partition_columns != current.partition_columns {
            return Err(delta_error(
                ErrorCode::Plan,
                format!(
                    "delta table '{}': the schema or partition columns changed at version {} since the table was registered \
                     (at version {}); register it again to read the new layout",
                    inner.options.table_uri,
                    table.version().unwrap_or_default(),
                    before.unwrap_or_default()
                ),
            ));
        }
        *inner.current.write().unwrap_or_else(|p| p.into_inner()) = loaded.clone();
        Ok(loaded)
    }
}

/// Whether a version after `version` may exist: `false` only when its commit file is certainly
/// absent. Delta versions are contiguous and each has a commit file, so one `head` answers
/// what a log listing and snapshot rebuild would, on every scan of a table read at `Latest`.
async fn newer_commit_may_exist(table: &DeltaTable, version: u64) -> bool {
    use object_store::ObjectStoreExt;
    let log_store = table.log_store();
    let next = log_store.log_path().clone().join(format!("{:020}.json", version + 1).as_str());
    !matches!(log_store.object_store(None).head(&next).await, Err(object_store::Error::NotFound { .. }))
}

#[async_trait]
impl TableProvider for DeltaProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.inner.output_schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        host: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let inner = Arc::clone(&self.inner);
        let loaded = on_plugin_runtime(async move { Self::refreshed(inner).await }).await?;
        let version = loaded.table.version().unwrap_or(0) as u64;
        let target = ScanTarget {
            table: loaded.table,
            provider: loaded.scan,
            summary: ScanSummary {
                table: self.inner.options.table_uri.clone(),
                version,
                files_scanned: 0,
                files_total: loaded.files_total,
                partition_columns: loaded.partition_columns.clone(),
                partition_filter: false,
                direct_read: false,
                file_index: false,
            },
            spread_files: !loaded.deletion_vectors,
            direct: loaded.direct.clone(),
            schema_metadata: df_plugin_api::schema_identity::source_metadata(&self.inner.output_schema),
        };
        scan_in_plugin_env(host, target, projection, filters, limit).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // deltalake decides per expression tree: Exact only for predicates on partition
        // columns it can evaluate completely, Inexact (file skipping + Parquet pruning) otherwise.
        let current = self.inner.current.read().unwrap_or_else(|p| p.into_inner());
        let mut memo = current.pushdown.lock().unwrap_or_else(|p| p.into_inner());
        let unknown: Vec<&Expr> = filters.iter().copied().filter(|f| !memo.contains_key(*f)).collect();
        if !unknown.is_empty() {
            let answers = current.scan.supports_filters_pushdown(&unknown)?;
            if memo.len() + unknown.len() > PUSHDOWN_ANSWERS_KEPT {
                memo.clear();
            }
            memo.extend(unknown.into_iter().cloned().zip(answers));
        }
        filters
            .iter()
            .map(|f| {
                memo.get(*f).cloned().ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal(format!("no pushdown answer for filter {f}"))
                })
            })
            .collect()
    }

    async fn insert_into(
        &self,
        host: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        check_writable(&self.inner.options, "INSERT")?;
        let _ = host;
        Ok(Arc::new(DeltaWriteExec::new(input, insert_op, self.inner.options.clone())?))
    }

    async fn delete_from(&self, host: &dyn Session, filters: Vec<Expr>) -> Result<Arc<dyn ExecutionPlan>> {
        // The full-table-delete guard is decided when the statement runs, by effect (see
        // `DeltaDml::Delete`): what a predicate looks like says nothing about what it matches.
        let allow_full_table_delete = CodeAnatomyConfig::from_config_options(host.config_options())?.dml_allow_full_table_delete;
        Ok(Arc::new(DeltaDmlExec::new(self.inner.options.clone(), DeltaDml::delete(filters, allow_full_table_delete))?))
    }

    async fn update(
        &self,
        _host: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(DeltaDmlExec::new(self.inner.options.clone(), DeltaDml::update(assignments, filters))?))
    }
}

/// What [`scan_in_plugin_env`] scans.
pub(super) struct ScanTarget {
    /// The table whose object store the scan reads.
    pub table: DeltaTable,
    /// The deltalake provider that plans the scan.
    pub provider: Arc<dyn TableProvider>,
    pub summary: ScanSummary,
    /// Spread whole files over the session's target partitions (not with deletion vectors).
    pub spread_files: bool,
    /// Replaces deltalake's read with a plain Parquet read when the snapshot allows.
    pub direct: Option<Arc<DirectScan>>,
    /// Schema-level metadata the scan's output carries (the provider's source identity).
    pub schema_metadata: HashMap<String, String>,
}

/// Plans a deltalake provider's scan in the plugin's environment (runtime, `RuntimeEnv` with
/// the table's object store, host session options) and wraps it for the host.
pub(super) async fn scan_in_plugin_env(
    host: &dyn Session,
    target: ScanTarget,
    projection: Option<&Vec<usize>>,
    filters: &[Expr],
    limit: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let session = plugin_session_for(host);
    let (projection, filters) = (projection.cloned(), filters.to_vec());
    on_plugin_runtime(async move {
        let ScanTarget { table, provider, mut summary, spread_files: spread, direct, schema_metadata } = target;
        summary.partition_filter = filters
            .iter()
            .any(|f| f.column_refs().iter().any(|c| summary.partition_columns.iter().any(|p| p == &c.name)));
        let uri = summary.table.clone();
        let (session, task_ctx) = (&session.state, Arc::clone(&session.task_ctx));
        table.update_datafusion_session(session).map_err(|e| map_delta_error(&uri, e))?;
        let indexed = match &direct {
            Some(direct) => direct.read_indexed(session, projection.as_ref(), &filters, limit).await,
            None => None,
        };
        let plan = match indexed {
            Some(plan) => {
                summary.direct_read = true;
                summary.file_index = true;
                plan
            }
            None => {
                let plan = provider.scan(session, projection.as_ref(), &filters, limit).await.map_err(|e| in_table(&uri, e))?;
                let plain = match &direct {
                    Some(direct) => direct.rewrite(&plan, session, &filters, limit).await,
                    None => None,
                };
                summary.direct_read = plain.is_some();
                plain.unwrap_or(plan)
            }
        };
        if summary.direct_read {
            if let Some(direct) = &direct {
                direct.check_files(&uri, session, &plan).await?;
            }
        }
        let plan = if spread { spread_files(plan, session.config().target_partitions())? } else { plan };
        let exec = DeltaTableExec::new(plan, task_ctx, summary).with_schema_metadata(&schema_metadata)?;
        tracing::debug!(target: "codeanatomy::delta", table = %uri, summary = ?exec.summary(), "delta scan planned");
        Ok(Arc::new(exec) as Arc<dyn ExecutionPlan>)
    })
    .await
}

/// Opens Delta tables from JSON options: the plugin's `delta` table provider kind.
#[derive(Debug, Default)]
pub struct DeltaProviderBuilder;

impl TableProviderBuilder for DeltaProviderBuilder {
    fn build(&self, options_json: &str) -> std::result::Result<Arc<dyn TableProvider>, PluginError> {
        let options = DeltaTableOptions::from_json(options_json)?;
        DeltaProvider::open(options)
            .map(|p| Arc::new(p) as Arc<dyn TableProvider>)
            .map_err(|e| PluginError::from_datafusion(&e, ErrorCode::Execution))
    }
}
