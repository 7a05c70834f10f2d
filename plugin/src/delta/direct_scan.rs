//! Direct Parquet reads for Delta snapshots that need nothing from Delta at read time.
//!
//! deltalake reads every file through its `DeltaScanExec`, which builds and evaluates a kernel
//! transform on each batch to add partition values and map physical to logical columns: about
//! 5% of a full scan's CPU (see `docs/BENCHMARKS.md`). When the protocol has no reader feature
//! that changes how rows are read (column mapping, deletion vectors, type widening, ...), a
//! Delta table is exactly its Parquet files plus constant partition values, which is what
//! DataFusion's own Parquet scan reads for a hive-partitioned `ListingTable`.
//!
//! So the plugin keeps deltalake's file selection (statistics skipping, partition pruning,
//! pinned files) and replaces only the read with a plain `DataSourceExec`. A plan it does not
//! recognise, a file it cannot place, or an output schema that differs by one bit keeps
//! deltalake's plan.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::config::TableParquetOptions;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::execution::object_store::ObjectStoreUrl;
use deltalake::kernel::{LogDataHandler, LogicalFileView};

use datafusion::error::Result;

use super::file_check::CheckedFiles;
use super::file_index::{FileIndex, SnapshotFiles};

/// Reader features that do not change how a data file's rows are read.
const READ_NEUTRAL_FEATURES: &[&str] = &["timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"];

/// What a direct read of one snapshot needs: the Parquet column layout and each file's
/// partition values, computed once per snapshot.
#[derive(Debug)]
pub struct DirectScan {
    /// The provider's schema: what a scan without projection returns.
    table_schema: SchemaRef,
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    /// Table-relative file path (percent-decoded) → partition values, in `partition_fields` order.
    partition_values: HashMap<String, Vec<ScalarValue>>,
    index: Option<FileIndex>,
    /// Files whose footers were found to fit the table's schema (see `file_check`).
    checked: CheckedFiles,
}

/// Why a snapshot is read through deltalake's own scan.
pub fn ineligible_reason(
    min_reader_version: i32,
    reader_features: Option<Vec<String>>,
    schema: &Schema,
    file_column: bool,
) -> Option<String> {
    if file_column {
        return Some("the 'file_column' option is set".into());
    }
    match reader_features {
        Some(features) => {
            if let Some(f) = features.iter().find(|f| !READ_NEUTRAL_FEATURES.contains(&f.as_str())) {
                return Some(format!("reader feature '{f}'"));
            }
        }
        None if min_reader_version > 1 => return Some(format!("reader version {min_reader_version}")),
        None => {}
    }
    // Nested types keep deltalake's read: Spark may write nested fields nullable where the
    // Delta schema says NOT NULL, which deltalake relaxes and restores.
    schema
        .fields()
        .iter()
        .find(|f| f.data_type().is_nested())
        .map(|f| format!("nested column '{}'", f.name()))
}

impl DirectScan {
    /// Plans for direct reads of `files`, or `None` when a partition value does not parse to
    /// its column's type.
    pub fn new(
        schema: &SchemaRef,
        partition_columns: &[String],
        files: impl Iterator<Item = LogicalFileView>,
    ) -> Option<Self> {
        let partition_fields: Vec<FieldRef> = partition_columns
            .iter()
            .map(|c| schema.field_with_name(c).ok().map(|f| Arc::new(f.clone())))
            .collect::<Option<_>>()?;
        let file_schema = Arc::new(Schema::new_with_metadata(
            schema.fields().iter().filter(|f| !partition_columns.contains(f.name())).cloned().collect::<Vec<_>>(),
            schema.metadata().clone(),
        ));
        let mut partition_values = HashMap::new();
        // Unpartitioned tables keep no per-file entry: every file's values are empty.
        if !partition_fields.is_empty() {
            for file in files {
                let raw = file.partition_values_map();
                let values = partition_fields
                    .iter()
                    .map(|field| partition_value(raw.get(field.name()).cloned().flatten(), field.data_type()))
                    .collect::<Option<Vec<_>>>()?;
                partition_values.insert(file.path().into_owned(), values);
            }
        }
        Some(Self {
            table_schema: Arc::clone(schema),
            file_schema,
            partition_fields,
            partition_values,
            index: None,
            checked: CheckedFiles::default(),
        })
    }

    /// Replaces deltalake's read in `plan` with a direct Parquet read of the same files, or
    /// returns `None` to keep `plan`.
    pub async fn rewrite(
        &self,
        plan: &Arc<dyn ExecutionPlan>,
        session: &dyn Session,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Option<Arc<dyn ExecutionPlan>> {
        let (config, files) = deltalake_files(plan)?;
        let files = files
            .map(|file| {
                let mut file = file.clone();
                file.partition_values = self.values_for(file.object_meta.location.as_ref())?;
                // deltalake's statistics describe its own column layout, not this one.
                file.statistics = None;
                Some(file)
            })
            .collect::<Option<Vec<_>>>()?;
        self.read(config.object_store_url.clone(), files, plan.schema(), session, filters, limit).await
    }

    /// Refuses a direct read (`plan`, from [`Self::rewrite`] or [`Self::read_indexed`]) of a
    /// file whose stored column types contradict the table's schema: DataFusion's Parquet scan
    /// would cast them silently (see `file_check`).
    pub async fn check_files(&self, table: &str, session: &dyn Session, plan: &Arc<dyn ExecutionPlan>) -> Result<()> {
        let Some(config) = plan.downcast_ref::<DataSourceExec>().and_then(|e| e.data_source().downcast_ref::<FileScanConfig>())
        else {
            return Ok(());
        };
        let files: Vec<PartitionedFile> = config.file_groups.iter().flat_map(|g| g.iter().cloned()).collect();
        let parquet = TableParquetOptions { global: session.config_options().execution.parquet.clone(), ..Default::default() };
        self.checked.check(table, session, &config.object_store_url, &files, &self.file_schema, &parquet).await
    }

    /// Indexes this snapshot's files from `plan`, deltalake's plan of an unfiltered scan, so
    /// later scans choose their files without deltalake (see [`FileIndex`]).
    pub fn index_files(&mut self, plan: &Arc<dyn ExecutionPlan>, log: &LogDataHandler<'_>) {
        let paths = log.iter().map(|f| f.path().into_owned()).collect();
        let snapshot = SnapshotFiles {
            paths,
            statistics: log,
            file_schema: &self.file_schema,
            partition_fields: &self.partition_fields,
            partition_values: &self.partition_values,
        };
        self.index = FileIndex::build(plan, snapshot);
        if self.index.is_none() {
            tracing::debug!(target: "codeanatomy::delta", "no file index for this snapshot; deltalake plans each scan");
        }
    }

    /// Files in the index, if the snapshot has one.
    pub fn indexed_files(&self) -> Option<usize> {
        self.index.as_ref().map(FileIndex::len)
    }

    /// Plans a direct read from the file index, without deltalake, or returns `None` when
    /// this scan needs deltalake to plan it (no index, a metadata-only `count(*)`, a filter on
    /// a column without exact statistics).
    pub async fn read_indexed(
        &self,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Option<Arc<dyn ExecutionPlan>> {
        let index = self.index.as_ref()?;
        // deltalake answers a scan without columns from the log's row counts.
        if projection.is_some_and(|p| p.is_empty()) {
            return None;
        }
        let output = match projection {
            Some(indices) => Arc::new(self.table_schema.project(indices).ok()?),
            None => Arc::clone(&self.table_schema),
        };
        let files = index.select(filters, &self.table_schema, session)?;
        self.read(index.object_store_url().clone(), files, output, session, filters, limit).await
    }

    /// A `DataSourceExec` reading `files` as plain Parquet with `output` as its schema, or
    /// `None` when that schema cannot be produced exactly.
    async fn read(
        &self,
        object_store_url: ObjectStoreUrl,
        files: Vec<PartitionedFile>,
        output: SchemaRef,
        session: &dyn Session,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Option<Arc<dyn ExecutionPlan>> {
        let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
            .with_table_partition_cols(self.partition_fields.clone())
            .build();
        let full_schema = Arc::clone(table_schema.table_schema());
        let projection: Vec<usize> =
            output.fields().iter().map(|f| full_schema.index_of(f.name()).ok()).collect::<Option<_>>()?;

        // The session's Parquet settings, as a ListingTable would use them: the predicate prunes
        // row groups and pages, and filters rows only when `pushdown_filters` is set (the host
        // still applies every filter it was told is inexact).
        let parquet = TableParquetOptions { global: session.config_options().execution.parquet.clone(), ..Default::default() };
        let mut source = ParquetSource::new(table_schema).with_table_parquet_options(parquet.clone());
        if let Some(predicate) = conjunction(filters.iter().cloned()) {
            let physical = DFSchema::try_from(Arc::clone(&full_schema))
                .and_then(|schema| session.create_physical_expr(predicate, &schema));
            match physical {
                Ok(physical) => source = source.with_predicate(physical),
                Err(e) => tracing::debug!(target: "codeanatomy::delta", error = %e, "direct scan without a Parquet predicate"),
            }
        }
        let config = FileScanConfigBuilder::new(object_store_url, Arc::new(source))
            .with_file_groups(vec![FileGroup::new(files)])
            .with_projection_indices(Some(projection))
            .ok()?
            .with_limit(limit)
            .build();
        let direct = ParquetFormat::default().with_options(parquet).create_physical_plan(session, config).await.ok()?;
        if direct.schema() != output {
            tracing::debug!(target: "codeanatomy::delta", expected = ?output, direct = ?direct.schema(), "direct scan schema differs; keeping deltalake's read");
            return None;
        }
        Some(direct)
    }

    /// Partition values of the file at object-store `location` (which ends with the file's
    /// table-relative path); empty for an unpartitioned table.
    fn values_for(&self, location: &str) -> Option<Vec<ScalarValue>> {
        if self.partition_fields.is_empty() {
            return Some(Vec::new());
        }
        let decoded = percent_decode(location)?;
        table_relative(&decoded, |path| self.partition_values.get(path).cloned()).map(|(_, values)| values)
    }
}

/// A partition value as the Delta protocol serializes it, typed: `None` and `""` are NULL.
fn partition_value(raw: Option<String>, data_type: &DataType) -> Option<ScalarValue> {
    match raw.filter(|s| !s.is_empty()) {
        None => ScalarValue::try_from(data_type).ok(),
        Some(text) => {
            // Binary values are the string's bytes; everything else parses as Arrow casts
            // from text do (Delta serializes timestamps as UTC `yyyy-MM-dd HH:mm:ss[.ffffff]`).
            let value = ScalarValue::Utf8(Some(text)).cast_to(data_type).ok()?;
            (value.data_type() == *data_type).then_some(value)
        }
    }
}

pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Deltalake's data-scan plan (its exec over one Parquet scan) and the files it reads; `None`
/// for any other shape: metadata-only answers (`count(*)` from the log), empty scans and
/// unions of several object stores.
pub(super) fn deltalake_files(plan: &Arc<dyn ExecutionPlan>) -> Option<(&FileScanConfig, impl Iterator<Item = &PartitionedFile>)> {
    if plan.name() != "DeltaScanExec" {
        return None;
    }
    let [child] = plan.children()[..] else { return None };
    let config = child.downcast_ref::<DataSourceExec>()?.data_source().downcast_ref::<FileScanConfig>()?;
    config.file_source().downcast_ref::<ParquetSource>()?;
    Some((config, config.file_groups.iter().flat_map(|g| g.iter())))
}

/// The table-relative path at the end of object-store `location` that `lookup` knows, with
/// what it found for it.
pub(super) fn table_relative<'a, T>(location: &'a str, lookup: impl Fn(&str) -> Option<T>) -> Option<(&'a str, T)> {
    if let Some(found) = lookup(location) {
        return Some((location, found));
    }
    location.match_indices('/').find_map(|(i, _)| lookup(&location[i + 1..]).map(|found| (&location[i + 1..], found)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_object_store_paths() {
        assert_eq!(percent_decode("a/b%3Dc%25d/x.parquet").as_deref(), Some("a/b=c%d/x.parquet"));
        assert_eq!(percent_decode("plain/path").as_deref(), Some("plain/path"));
        assert_eq!(percent_decode("bad%zz"), None);
    }

    #[test]
    fn partition_values_parse_as_delta_serializes_them() {
        assert_eq!(partition_value(Some("42".into()), &DataType::Int64), Some(ScalarValue::Int64(Some(42))));
        assert_eq!(partition_value(Some(String::new()), &DataType::Utf8), Some(ScalarValue::Utf8(None)));
        assert_eq!(partition_value(None, &DataType::Date32), Some(ScalarValue::Date32(None)));
        assert_eq!(partition_value(Some("2021-01-02".into()), &DataType::Date32), Some(ScalarValue::Date32(Some(18629))));
        let utc = DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(
            partition_value(Some("1970-01-01 00:00:01.5".into()), &utc),
            Some(ScalarValue::TimestampMicrosecond(Some(1_500_000), Some("UTC".into())))
        );
        assert_eq!(partition_value(Some("not a number".into()), &DataType::Int32), None);
    }

    #[test]
    fn protocol_gate() {
        let flat = Schema::new(vec![datafusion::arrow::datatypes::Field::new("a", DataType::Int64, true)]);
        assert_eq!(ineligible_reason(1, None, &flat, false), None);
        assert_eq!(ineligible_reason(3, Some(vec!["timestampNtz".into()]), &flat, false), None);
        assert!(ineligible_reason(3, Some(vec!["deletionVectors".into()]), &flat, false).unwrap().contains("deletionVectors"));
        assert!(ineligible_reason(2, None, &flat, false).unwrap().contains("reader version 2"));
        assert!(ineligible_reason(1, None, &flat, true).is_some());
    }
}
