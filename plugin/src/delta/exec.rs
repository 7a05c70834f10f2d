//! `DeltaTableExec`: the plan node a Delta scan hands to the host.
//!
//! It wraps deltalake's plan and executes it with the plugin's `TaskContext`: the context a
//! host passes through datafusion-ffi carries a fresh `RuntimeEnv` without the table's object
//! store. It is a leaf to the host, so host optimizers cannot rewire its inside, and it says in
//! `EXPLAIN` how many files the scan reads of how many the snapshot has.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::execution::object_store::ObjectStoreUrl;
use df_plugin_api::scan::HostExecutable;
use futures::TryStreamExt;

use super::table::in_table;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, Statistics};

/// Where a scan's rows come from, for `EXPLAIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    pub table: String,
    pub version: u64,
    /// Data files the plan reads.
    pub files_scanned: usize,
    /// Data files in the snapshot (or pinned by the provider's `files` option).
    pub files_total: usize,
    /// The table's partition columns.
    pub partition_columns: Vec<String>,
    /// A pushed-down filter references a partition column.
    pub partition_filter: bool,
    /// The files are read as plain Parquet (`DirectScan`), not through deltalake's exec.
    pub direct_read: bool,
    /// The plugin chose the files from its per-snapshot index (`FileIndex`), not deltalake.
    pub file_index: bool,
}

/// Runs a deltalake plan in the plugin's execution environment.
#[derive(Debug)]
pub struct DeltaTableExec {
    inner: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    summary: ScanSummary,
    /// The name carries the summary: a host sees a plugin node through datafusion-ffi only
    /// by its name (`FFI_ExecutionPlan: <name>`), not by its `DisplayAs`.
    label: String,
    /// The inner plan's properties with the provider's source identity in the schema
    /// metadata (see `df_plugin_api::schema_identity`), when it has one.
    relabelled: Option<Arc<PlanProperties>>,
}

impl DeltaTableExec {
    pub fn new(inner: Arc<dyn ExecutionPlan>, task_ctx: Arc<TaskContext>, mut summary: ScanSummary) -> Self {
        summary.files_scanned = files_in_plan(&inner);
        // Providers that do not know their snapshot's file count report what they read.
        summary.files_total = summary.files_total.max(summary.files_scanned);
        let label = format!(
            "DeltaTableExec: table={}, version={}, files={}/{}, pruned={}, partition_columns=[{}], partition_filter={}, reader={}, file_selection={}",
            df_plugin_api::redact::redact_urls(&summary.table),
            summary.version,
            summary.files_scanned,
            summary.files_total,
            summary.files_total.saturating_sub(summary.files_scanned),
            summary.partition_columns.join(","),
            summary.partition_filter,
            if summary.direct_read { "parquet" } else { "deltalake" },
            if summary.file_index { "index" } else { "deltalake" }
        );
        Self { inner, task_ctx, summary, label, relabelled: None }
    }

    /// Output batches carry `metadata` (the provider's source identity) in their schema.
    pub fn with_schema_metadata(mut self, metadata: &std::collections::HashMap<String, String>) -> Result<Self> {
        if !metadata.is_empty() {
            let schema = df_plugin_api::schema_identity::with_metadata(&self.inner.schema(), metadata);
            self.relabelled = Some(df_plugin_api::schema_identity::properties_with_schema(&self.inner, schema)?);
        }
        Ok(self)
    }

    pub fn summary(&self) -> &ScanSummary {
        &self.summary
    }

    pub fn inner(&self) -> &Arc<dyn ExecutionPlan> {
        &self.inner
    }
}

/// The scan a Rust host may run itself (ABI 1.4): a direct read (`DirectScan`) of local files is
/// DataFusion's own Parquet scan over `file://` paths, which the host's reader reads the same
/// way, so the host can skip pulling every batch through FFI. Scans through deltalake's
/// reader, or over an object store only the plugin holds (S3 credentials), stay here.
pub fn host_executable(plan: &Arc<dyn ExecutionPlan>) -> Option<HostExecutable> {
    let exec = plan.downcast_ref::<DeltaTableExec>()?;
    if !exec.summary.direct_read {
        return None;
    }
    let config = exec.inner.downcast_ref::<DataSourceExec>()?.data_source().downcast_ref::<FileScanConfig>()?;
    (config.object_store_url == ObjectStoreUrl::local_filesystem())
        .then(|| HostExecutable { label: exec.label.clone(), plan: Arc::clone(&exec.inner) })
}

/// Spreads the files of every file scan in `plan` over `partitions` groups, whole files
/// only, largest first onto the least loaded group.
///
/// deltalake puts all files of a scan into one group, and the host's optimizer cannot split
/// them: it sees the scan only as an opaque plugin node. Whole files keep deltalake's per-file
/// row ordinals valid; scans that apply deletion vectors are left alone (`spread = false`).
pub fn spread_files(plan: Arc<dyn ExecutionPlan>, partitions: usize) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>() {
        let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
            return Ok(plan);
        };
        let mut files: Vec<PartitionedFile> = config.file_groups.iter().flat_map(|g| g.iter().cloned()).collect();
        if files.len() < 2 || config.file_groups.len() >= partitions {
            return Ok(plan);
        }
        let groups = partitions.min(files.len());
        files.sort_by_key(|f| std::cmp::Reverse(f.object_meta.size));
        let mut buckets: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); groups];
        for file in files {
            if let Some(bucket) = buckets.iter_mut().min_by_key(|(size, _)| *size) {
                bucket.0 += file.object_meta.size;
                bucket.1.push(file);
            }
        }
        let mut config = config.clone();
        config.file_groups = buckets.into_iter().map(|(_, files)| FileGroup::new(files)).collect();
        return Ok(DataSourceExec::from_data_source(config));
    }
    let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(plan);
    }
    let children = children.into_iter().map(|c| spread_files(c, partitions)).collect::<Result<Vec<_>>>()?;
    #[allow(deprecated)]
    plan.with_new_children(children)
}

/// Data files read by the file scans in `plan`.
pub fn files_in_plan(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let own = plan
        .downcast_ref::<DataSourceExec>()
        .and_then(|exec| exec.data_source().downcast_ref::<FileScanConfig>())
        .map(|config| config.file_groups.iter().map(|g| g.len()).sum::<usize>())
        .unwrap_or(0);
    own + plan.children().iter().map(|child| files_in_plan(child)).sum::<usize>()
}

impl DisplayAs for DeltaTableExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl ExecutionPlan for DeltaTableExec {
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
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(format!("DeltaTableExec is a leaf; got {} children", children.len())))
        }
    }

    fn execute(&self, partition: usize, _host_ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let table = self.summary.table.clone();
        let object = format!("delta table '{table}'");
        let stream = df_plugin_api::safety::execute_contained(&object, &self.inner, partition, Arc::clone(&self.task_ctx))
            .map_err(|e| in_table(&table, e))?;
        let schema = stream.schema();
        let stream = stream.map_err(move |e| in_table(&table, e));
        let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(schema, stream));
        Ok(match &self.relabelled {
            Some(props) => df_plugin_api::schema_identity::relabel_stream(stream, Arc::clone(props.eq_properties.schema())),
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
