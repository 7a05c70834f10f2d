//! A snapshot's file list with its statistics, held in memory so a scan can choose its files
//! without replaying the Delta log.
//!
//! deltalake plans every scan from the log: kernel log replay, statistics parsing and data
//! skipping on each query, about 0.65 ms for a 16-file table before a single byte of data is
//! read (see `docs/BENCHMARKS.md`). A snapshot never changes, so for snapshots read directly
//! (`DirectScan`) the plugin asks deltalake once for the snapshot's files (with their exact
//! object-store locations) and keeps their statistics as Arrow arrays. Each scan then:
//! - evaluates filters on partition columns exactly, on the files' typed partition values;
//! - prunes with DataFusion's `PruningPredicate` over the files' min/max/null statistics.
//!
//! Only statistics Delta writes exactly are used: integers and dates. Spark and delta-rs
//! truncate string statistics and store timestamps at millisecond precision, and float
//! statistics say nothing of NaN. A scan whose filters need any other column's statistics is
//! planned by deltalake as before, so no scan prunes less than deltalake would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::Expr;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;

use super::direct_scan::{deltalake_files, percent_decode, table_relative};

/// Column types whose Delta statistics are exact (see the module docs).
fn exact_statistics(data_type: &DataType) -> bool {
    data_type.is_integer() || matches!(data_type, DataType::Date32 | DataType::Date64)
}

/// The files of one snapshot, in the order deltalake lists them, with what pruning needs.
#[derive(Debug)]
pub struct FileIndex {
    object_store_url: ObjectStoreUrl,
    files: Vec<PartitionedFile>,
    /// One row per file: its typed partition values (no columns for an unpartitioned table).
    partitions: RecordBatch,
    statistics: FileStatistics,
    /// Files chosen for recent filters (`None`: deltalake must plan that scan).
    chosen: Mutex<Vec<(Vec<Expr>, Option<Arc<[usize]>>)>>,
}

/// Filter lists whose choice of files an index remembers.
const CHOICES_KEPT: usize = 32;

/// Per-file statistics as `PruningPredicate` reads them, one entry per file.
#[derive(Debug, Default)]
struct FileStatistics {
    files: usize,
    /// Column → (min, max), for exact-typed data columns and partition columns.
    min_max: HashMap<String, (ArrayRef, ArrayRef)>,
    null_counts: HashMap<String, ArrayRef>,
    row_counts: Option<ArrayRef>,
}

impl PruningStatistics for FileStatistics {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.min_max.get(column.name()).map(|(min, _)| Arc::clone(min))
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.min_max.get(column.name()).map(|(_, max)| Arc::clone(max))
    }

    fn num_containers(&self) -> usize {
        self.files
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        self.null_counts.get(column.name()).cloned()
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        self.row_counts.clone()
    }

    fn contained(&self, _column: &Column, _values: &std::collections::HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// What [`FileIndex::build`] reads: the snapshot's files from the log, as typed values.
pub struct SnapshotFiles<'a> {
    /// Table-relative, percent-decoded path of each file, in log order.
    pub paths: Vec<String>,
    /// The log's statistics, in the same order.
    pub statistics: &'a dyn PruningStatistics,
    pub file_schema: &'a SchemaRef,
    pub partition_fields: &'a [FieldRef],
    /// Partition values by table-relative path, in `partition_fields` order.
    pub partition_values: &'a HashMap<String, Vec<ScalarValue>>,
}

impl FileIndex {
    /// Indexes the files of `plan`, deltalake's plan of an unfiltered scan of the snapshot, or
    /// returns `None` when the plan is not a plain Parquet scan or a file cannot be matched to
    /// the log (the scan is then planned by deltalake each time, as before).
    pub fn build(plan: &Arc<dyn ExecutionPlan>, snapshot: SnapshotFiles<'_>) -> Option<Self> {
        let (config, planned) = deltalake_files(plan)?;
        let log_row: HashMap<&str, u32> =
            snapshot.paths.iter().enumerate().map(|(i, p)| (p.as_str(), i as u32)).collect::<HashMap<_, _>>();

        let mut files = Vec::new();
        let mut rows = Vec::new();
        for file in planned {
            let decoded = percent_decode(file.object_meta.location.as_ref())?;
            let (path, row) = table_relative(&decoded, |p| log_row.get(p).copied())?;
            let mut file = file.clone();
            file.partition_values = if snapshot.partition_fields.is_empty() {
                Vec::new()
            } else {
                snapshot.partition_values.get(path)?.clone()
            };
            file.statistics = None;
            files.push(file);
            rows.push(row);
        }
        let rows = datafusion::arrow::array::UInt32Array::from(rows);
        let in_index_order = |array: ArrayRef| -> Option<ArrayRef> {
            (array.len() == snapshot.paths.len()).then(|| take(array.as_ref(), &rows, None).ok()).flatten()
        };

        let mut statistics = FileStatistics { files: files.len(), ..Default::default() };
        statistics.row_counts = snapshot
            .statistics
            .row_counts()
            .and_then(in_index_order)
            .and_then(|counts| cast(counts.as_ref(), &DataType::UInt64).ok());
        for field in snapshot.file_schema.fields().iter().filter(|f| exact_statistics(f.data_type())) {
            let column = Column::from_name(field.name());
            let typed =
                |array: Option<ArrayRef>| array.and_then(in_index_order).filter(|a| a.data_type() == field.data_type());
            if let (Some(min), Some(max)) =
                (typed(snapshot.statistics.min_values(&column)), typed(snapshot.statistics.max_values(&column)))
            {
                statistics.min_max.insert(field.name().clone(), (min, max));
            }
            if let Some(nulls) = snapshot.statistics.null_counts(&column).and_then(in_index_order) {
                statistics.null_counts.insert(field.name().clone(), cast(nulls.as_ref(), &DataType::UInt64).ok()?);
            }
        }

        let partition_schema = Arc::new(Schema::new(snapshot.partition_fields.to_vec()));
        let mut columns = Vec::with_capacity(snapshot.partition_fields.len());
        for (i, field) in snapshot.partition_fields.iter().enumerate() {
            let values = ScalarValue::iter_to_array(files.iter().map(|f| f.partition_values[i].clone())).ok()?;
            if let Some(rows) = statistics.row_counts.as_ref().and_then(|r| r.as_any().downcast_ref::<UInt64Array>()) {
                // A partition value is the same in every row of its file: all nulls or none.
                let nulls: UInt64Array =
                    (0..values.len()).map(|r| Some(if values.is_null(r) { rows.value(r) } else { 0 })).collect();
                statistics.null_counts.insert(field.name().clone(), Arc::new(nulls));
            }
            statistics.min_max.insert(field.name().clone(), (Arc::clone(&values), Arc::clone(&values)));
            columns.push(values);
        }
        let partitions = if columns.is_empty() {
            RecordBatch::try_new_with_options(
                partition_schema,
                columns,
                &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(files.len())),
            )
            .ok()?
        } else {
            RecordBatch::try_new(partition_schema, columns).ok()?
        };
        Some(Self {
            object_store_url: config.object_store_url.clone(),
            files,
            partitions,
            statistics,
            chosen: Mutex::new(Vec::new()),
        })
    }

    pub fn object_store_url(&self) -> &ObjectStoreUrl {
        &self.object_store_url
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The files a scan with `filters` must read, or `None` when a filter needs statistics
    /// this index does not hold (the caller lets deltalake plan that scan).
    ///
    /// Filters on partition columns only are applied exactly (deltalake reports them as
    /// `Exact` to the host, which then does not apply them again); the others only skip files
    /// that cannot match, and the host still applies them.
    pub fn select(&self, filters: &[Expr], table_schema: &SchemaRef, session: &dyn Session) -> Option<Vec<PartitionedFile>> {
        // The same filters choose the same files of a snapshot, unless they call a function
        // (whose value may depend on the query, like `now()`).
        let memoizable = !filters.iter().any(|f| f.exists(|e| Ok(matches!(e, Expr::ScalarFunction(_)))).unwrap_or(true));
        if memoizable {
            let memo = self.chosen.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, chosen)) = memo.iter().find(|(seen, _)| seen.as_slice() == filters) {
                return chosen.as_ref().map(|rows| rows.iter().map(|r| self.files[*r].clone()).collect());
            }
        }
        let chosen = self.choose(filters, table_schema, session);
        if memoizable {
            let mut memo = self.chosen.lock().unwrap_or_else(|p| p.into_inner());
            if memo.len() >= CHOICES_KEPT {
                memo.remove(0);
            }
            memo.push((filters.to_vec(), chosen.clone()));
        }
        chosen.map(|rows| rows.iter().map(|r| self.files[*r].clone()).collect())
    }

    /// Indices of the files [`Self::select`] returns.
    fn choose(&self, filters: &[Expr], table_schema: &SchemaRef, session: &dyn Session) -> Option<Arc<[usize]>> {
        let partition_schema = self.partitions.schema();
        let is_partition = |name: &str| partition_schema.index_of(name).is_ok();
        let (mut on_partitions, mut on_data) = (Vec::new(), Vec::new());
        for filter in filters {
            let columns = filter.column_refs();
            if columns.iter().all(|c| is_partition(c.name())) {
                on_partitions.push(filter.clone());
            } else if columns.iter().all(|c| is_partition(c.name()) || self.statistics.min_max.contains_key(c.name())) {
                on_data.push(filter.clone());
            } else {
                return None;
            }
        }

        let mut keep = vec![true; self.files.len()];
        if let Some(predicate) = conjunction(on_partitions) {
            let schema = DFSchema::try_from(Arc::clone(&partition_schema)).ok()?;
            let physical = session.create_physical_expr(predicate, &schema).ok()?;
            let matched = physical.evaluate(&self.partitions).ok()?.into_array(self.files.len()).ok()?;
            let matched = matched.as_any().downcast_ref::<BooleanArray>()?;
            for (k, m) in keep.iter_mut().zip(matched.iter()) {
                *k &= m == Some(true);
            }
        }
        if let Some(predicate) = conjunction(on_data) {
            let schema = DFSchema::try_from(Arc::clone(table_schema)).ok()?;
            let physical = session.create_physical_expr(predicate, &schema).ok()?;
            let pruning =
                PruningPredicateBuilder::new().with_file_schema(Arc::clone(table_schema)).try_build(physical).ok()?;
            for (k, m) in keep.iter_mut().zip(pruning.prune(&self.statistics).ok()?) {
                *k &= m;
            }
        }
        Some(keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect())
    }
}
