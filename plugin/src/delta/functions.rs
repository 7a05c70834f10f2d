//! Table functions over Delta tables: `delta_scan`, `delta_changes`, `delta_snapshot`,
//! `delta_files`. Arguments are literals; versions are integers, timestamps are strings
//! (see [`parse_timestamp`]) or timestamp literals.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{MemTable, Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use deltalake::delta_datafusion::DeltaCdfTableProvider;
use deltalake::DeltaTable;
use df_plugin_api::ErrorCode;

use super::exec::ScanSummary;
use super::options::{parse_timestamp, DeltaTableOptions, TableVersion};
use super::provider::{scan_in_plugin_env, DeltaProvider, ScanTarget};
use super::runtime::block_on_plugin_runtime;
use super::table::{delta_error, map_delta_error, open_table};
use crate::config::CodeAnatomyConfig;

/// Names of the table functions, as registered.
pub const DELTA_SCAN: &str = "delta_scan";
pub const DELTA_CHANGES: &str = "delta_changes";
pub const DELTA_SNAPSHOT: &str = "delta_snapshot";
pub const DELTA_FILES: &str = "delta_files";

/// A version or an instant given as a function argument.
#[derive(Debug, Clone, PartialEq)]
enum Point {
    Version(u64),
    Timestamp(DateTime<Utc>),
}

fn literal<'a>(function: &str, args: &'a [Expr], index: usize, what: &str) -> Result<&'a ScalarValue> {
    match args.get(index) {
        Some(Expr::Literal(value, _)) => Ok(value),
        Some(other) => Err(delta_error(
            ErrorCode::InvalidArgument,
            format!("{function}: argument {} ({what}) must be a literal; found {other}", index + 1),
        )),
        None => Err(delta_error(ErrorCode::InvalidArgument, format!("{function}: argument {} ({what}) is missing", index + 1))),
    }
}

fn arity(function: &str, args: &[Expr], min: usize, max: usize, usage: &str) -> Result<()> {
    if args.len() < min || args.len() > max {
        return Err(delta_error(
            ErrorCode::InvalidArgument,
            format!("{function} takes {usage}; got {} argument(s)", args.len()),
        ));
    }
    Ok(())
}

fn uri_arg(function: &str, args: &[Expr]) -> Result<String> {
    match literal(function, args, 0, "table uri")? {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) if !s.is_empty() => {
            Ok(s.clone())
        }
        other => Err(delta_error(
            ErrorCode::InvalidArgument,
            format!("{function}: argument 1 must be the table's path or URL as a string; found {other:?}"),
        )),
    }
}

fn point_arg(function: &str, args: &[Expr], index: usize, uri: &str) -> Result<Option<Point>> {
    if index >= args.len() {
        return Ok(None);
    }
    let value = literal(function, args, index, "version or timestamp")?;
    let nanos = |n: Option<i64>, per_sec: i64| n.map(|n| DateTime::<Utc>::from_timestamp(n.div_euclid(per_sec), (n.rem_euclid(per_sec) * (1_000_000_000 / per_sec)) as u32));
    let point = match value {
        ScalarValue::Int8(Some(v)) => Some(*v as i64),
        ScalarValue::Int16(Some(v)) => Some(*v as i64),
        ScalarValue::Int32(Some(v)) => Some(*v as i64),
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::UInt8(Some(v)) => Some(*v as i64),
        ScalarValue::UInt16(Some(v)) => Some(*v as i64),
        ScalarValue::UInt32(Some(v)) => Some(*v as i64),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        _ => None,
    }
    .map(|v| {
        u64::try_from(v).map(Point::Version).map_err(|_| {
            delta_error(ErrorCode::InvalidArgument, format!("{function}: version {v} of '{uri}' is negative; versions start at 0"))
        })
    });
    if let Some(point) = point {
        return point.map(Some);
    }
    let ts = match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
            Some(parse_timestamp(uri, s).map_err(datafusion::error::DataFusionError::from)?)
        }
        ScalarValue::TimestampSecond(n, _) => nanos(*n, 1).flatten(),
        ScalarValue::TimestampMillisecond(n, _) => nanos(*n, 1_000).flatten(),
        ScalarValue::TimestampMicrosecond(n, _) => nanos(*n, 1_000_000).flatten(),
        ScalarValue::TimestampNanosecond(n, _) => nanos(*n, 1_000_000_000).flatten(),
        _ => None,
    };
    match ts {
        Some(ts) => Ok(Some(Point::Timestamp(ts))),
        None => Err(delta_error(
            ErrorCode::InvalidArgument,
            format!("{function}: argument {} must be a version (integer) or a timestamp (string or TIMESTAMP); found {value:?}", index + 1),
        )),
    }
}

fn options_at(session: &dyn Session, uri: String, point: Option<Point>) -> Result<DeltaTableOptions> {
    let settings = CodeAnatomyConfig::from_config_options(session.config_options())?;
    let mut options = DeltaTableOptions::new(uri).with_session_settings(&settings);
    // Every call of a table function is scanned under the function's name: the source must
    // show in the schema, or two calls with other arguments compare equal (see schema_identity).
    options.identify_source = true;
    options.version = match point {
        None => TableVersion::Latest,
        Some(Point::Version(v)) => TableVersion::Version(v),
        Some(Point::Timestamp(ts)) => TableVersion::Timestamp(ts),
    };
    Ok(options)
}

/// `delta_scan(uri [, version_or_timestamp])`: the table's rows, like `SELECT * FROM` a
/// registered Delta table.
#[derive(Debug, Default)]
pub struct DeltaScanFunction;

impl TableFunctionImpl for DeltaScanFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let session = args.session();
        let args = args.exprs();
        arity(DELTA_SCAN, args, 1, 2, "(uri [, version_or_timestamp])")?;
        let uri = uri_arg(DELTA_SCAN, args)?;
        let point = point_arg(DELTA_SCAN, args, 1, &uri)?;
        Ok(Arc::new(DeltaProvider::open(options_at(session, uri, point)?)?))
    }
}

/// Runs another deltalake provider's scans in the plugin's environment (as [`DeltaProvider`]
/// does for its own).
#[derive(Debug)]
struct PluginEnvProvider {
    inner: Arc<dyn TableProvider>,
    table: DeltaTable,
    uri: String,
    /// `inner`'s schema with the call's source identity.
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for PluginEnvProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
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
        let target = ScanTarget {
            table: self.table.clone(),
            provider: Arc::clone(&self.inner),
            summary: ScanSummary {
                table: self.uri.clone(),
                version: self.table.version().unwrap_or(0) as u64,
                files_scanned: 0,
                files_total: 0,
                partition_columns: Vec::new(),
                partition_filter: false,
                direct_read: false,
                file_index: false,
            },
            spread_files: false,
            direct: None,
            schema_metadata: df_plugin_api::schema_identity::source_metadata(&self.schema),
        };
        scan_in_plugin_env(host, target, projection, filters, limit).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }
}

/// `delta_changes(uri, start [, end])`: the change data feed between two versions or instants
/// (inclusive), with `_change_type`, `_commit_version` and `_commit_timestamp`.
#[derive(Debug, Default)]
pub struct DeltaChangesFunction;

impl TableFunctionImpl for DeltaChangesFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let session = args.session();
        let args = args.exprs();
        arity(DELTA_CHANGES, args, 2, 3, "(uri, start [, end]) with versions or timestamps")?;
        let uri = uri_arg(DELTA_CHANGES, args)?;
        let start = point_arg(DELTA_CHANGES, args, 1, &uri)?;
        let end = point_arg(DELTA_CHANGES, args, 2, &uri)?;
        let identity = call_identity(DELTA_CHANGES, &uri, &[&start, &end]);
        let latest = options_at(session, uri.clone(), None)?;
        let span = tracing::info_span!(target: "codeanatomy::delta", "delta_changes", table = %uri);
        let _enter = span.enter();
        block_on_plugin_runtime(async move {
            let table = open_table(&latest).await?;
            let latest = table.version().unwrap_or_default() as u64;
            for point in [&start, &end] {
                if let Some(Point::Version(v)) = point {
                    if *v > latest {
                        return Err(delta_error(
                            ErrorCode::NotFound,
                            format!("delta table '{uri}' has no version {v}: the latest version is {latest}"),
                        ));
                    }
                }
            }
            if let (Some(Point::Version(s)), Some(Point::Version(e))) = (&start, &end) {
                if s > e {
                    return Err(delta_error(
                        ErrorCode::InvalidArgument,
                        format!("{DELTA_CHANGES}('{uri}', {s}, {e}): the start version is after the end version"),
                    ));
                }
            }
            let mut builder = table.clone().scan_cdf();
            builder = match start {
                Some(Point::Version(v)) => builder.with_starting_version(v as _),
                Some(Point::Timestamp(ts)) => builder.with_starting_timestamp(ts),
                None => builder,
            };
            builder = match end {
                Some(Point::Version(v)) => builder.with_ending_version(v as _),
                Some(Point::Timestamp(ts)) => builder.with_ending_timestamp(ts),
                None => builder,
            };
            let inner = DeltaCdfTableProvider::try_new(builder).map_err(|e| map_delta_error(&uri, e))?;
            let schema = df_plugin_api::schema_identity::with_source(&inner.schema(), &identity);
            Ok(Arc::new(PluginEnvProvider { inner: Arc::new(inner), table, uri, schema }) as Arc<dyn TableProvider>)
        })
    }
}

fn string_list(values: impl IntoIterator<Item = String>) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new());
    for v in values {
        builder.values().append_value(v);
    }
    builder.append(true);
    Arc::new(builder.finish())
}

fn feature_list<T: std::fmt::Display>(features: Option<&[T]>) -> ArrayRef {
    string_list(features.unwrap_or_default().iter().map(|f| f.to_string()))
}

/// The source identity of a table-function call (see `df_plugin_api::schema_identity`): a
/// digest, so that no path shows in the schema.
fn call_identity(function: &str, uri: &str, points: &[&Option<Point>]) -> String {
    let mut options = DeltaTableOptions::new(format!("{function}({uri}, {points:?})"));
    options.identify_source = true;
    options.source_identity().unwrap_or_default()
}

/// A table of `batch`'s rows whose schema names the call that made it.
fn call_table(batch: RecordBatch, identity: &str) -> Result<Arc<dyn TableProvider>> {
    let schema = df_plugin_api::schema_identity::with_source(&batch.schema(), identity);
    let batch = batch.with_schema(Arc::clone(&schema))?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn one_row_table(fields: Vec<Field>, columns: Vec<ArrayRef>, identity: &str) -> Result<Arc<dyn TableProvider>> {
    call_table(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?, identity)
}

/// `delta_snapshot(uri [, version])`: one row describing a snapshot: version, commit
/// timestamp, protocol versions and features, properties (JSON), partition columns, schema
/// (Delta JSON).
#[derive(Debug, Default)]
pub struct DeltaSnapshotFunction;

impl TableFunctionImpl for DeltaSnapshotFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let session = args.session();
        let args = args.exprs();
        arity(DELTA_SNAPSHOT, args, 1, 2, "(uri [, version_or_timestamp])")?;
        let uri = uri_arg(DELTA_SNAPSHOT, args)?;
        let point = point_arg(DELTA_SNAPSHOT, args, 1, &uri)?;
        let identity = call_identity(DELTA_SNAPSHOT, &uri, &[&point]);
        let options = options_at(session, uri.clone(), point)?;
        let table = block_on_plugin_runtime(async move { open_table(&options).await })?;
        let state = table.snapshot().map_err(|e| map_delta_error(&uri, e))?;
        let (protocol, metadata) = (state.protocol(), state.metadata());
        let mut properties: Vec<_> = metadata.configuration().iter().collect();
        properties.sort();
        let properties = serde_json::to_string(&properties.into_iter().collect::<std::collections::BTreeMap<_, _>>())
            .map_err(|e| delta_error(ErrorCode::Internal, e.to_string()))?;
        let list = |name: &str| Field::new(name, DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false);
        let version = state.version() as i64;
        one_row_table(
            vec![
                Field::new("version", DataType::Int64, false),
                Field::new("timestamp", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), true),
                Field::new("min_reader_version", DataType::Int32, false),
                Field::new("min_writer_version", DataType::Int32, false),
                list("reader_features"),
                list("writer_features"),
                Field::new("properties", DataType::Utf8, false),
                list("partition_columns"),
                Field::new("schema", DataType::Utf8, false),
            ],
            vec![
                Arc::new(Int64Array::from(vec![version])),
                Arc::new(TimestampMillisecondArray::from(vec![state.version_timestamp(state.version())]).with_timezone("UTC")),
                Arc::new(Int32Array::from(vec![protocol.min_reader_version()])),
                Arc::new(Int32Array::from(vec![protocol.min_writer_version()])),
                feature_list(protocol.reader_features()),
                feature_list(protocol.writer_features()),
                Arc::new(StringArray::from(vec![properties])),
                string_list(metadata.partition_columns().iter().cloned()),
                Arc::new(StringArray::from(vec![metadata.schema_string().clone()])),
            ],
            &identity,
        )
    }
}

/// `delta_files(uri [, version])`: one row per active data file: path, size, modification
/// time, row count and column statistics, partition values, `has_deletion_vector`.
#[derive(Debug, Default)]
pub struct DeltaFilesFunction;

impl TableFunctionImpl for DeltaFilesFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let session = args.session();
        let args = args.exprs();
        arity(DELTA_FILES, args, 1, 2, "(uri [, version_or_timestamp])")?;
        let uri = uri_arg(DELTA_FILES, args)?;
        let point = point_arg(DELTA_FILES, args, 1, &uri)?;
        let identity = call_identity(DELTA_FILES, &uri, &[&point]);
        let options = options_at(session, uri.clone(), point)?;
        let table = block_on_plugin_runtime(async move { open_table(&options).await })?;
        let state = table.snapshot().map_err(|e| map_delta_error(&uri, e))?;
        let actions = state.add_actions_table(true).map_err(|e| map_delta_error(&uri, e))?;
        let dv = actions
            .schema()
            .fields()
            .iter()
            .position(|f| f.name().starts_with("deletion_vector."));
        let has_dv: BooleanArray = match dv {
            Some(i) => (0..actions.num_rows()).map(|r| Some(actions.column(i).is_valid(r))).collect(),
            None => (0..actions.num_rows()).map(|_| Some(false)).collect(),
        };
        let mut fields: Vec<Field> = actions.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut columns: Vec<ArrayRef> = actions.columns().to_vec();
        fields.push(Field::new("has_deletion_vector", DataType::Boolean, false));
        columns.push(Arc::new(has_dv));
        call_table(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?, &identity)
    }
}
