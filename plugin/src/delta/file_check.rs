//! Data files whose column types contradict the table's schema are refused, not cast.
//!
//! A direct read is DataFusion's Parquet scan, which casts whatever a file holds to the table's
//! types: doubles into a `long` column come back truncated, binary into `string` comes back as
//! invalid UTF-8, `list<string>` comes back as the text `"[z]"`. deltalake refuses such files;
//! so does this check, before a file is first read: each file's Parquet footer is compared with
//! the table's schema once per snapshot (the footer lands in DataFusion's metadata cache, which
//! the scan then reuses), and a mismatch is a `corrupt_data` error naming the table, the file
//! and the column. A footer that cannot be read at all is the same kind of error, naming the
//! file, instead of a panic inside the scan.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::config::TableParquetOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use df_plugin_api::ErrorCode;
use futures::{FutureExt, StreamExt};

use super::table::delta_error;

/// Footers read at once.
const CONCURRENT_FOOTERS: usize = 8;

/// Files of one snapshot already found to fit the table's schema.
#[derive(Debug, Default)]
pub struct CheckedFiles {
    locations: Mutex<HashSet<String>>,
}

/// Whether values stored as `file` read exactly as `table` (the same type, or a widening the
/// Delta protocol allows: integers to wider integers or doubles, float to double, date to
/// timestamp, decimals to wider decimals, and the string/binary layouts among themselves).
pub fn fits(file: &DataType, table: &DataType) -> bool {
    use DataType::*;
    let int_width = |t: &DataType| match t {
        Int8 => Some(8),
        Int16 => Some(16),
        Int32 => Some(32),
        Int64 => Some(64),
        _ => None,
    };
    let uint_width = |t: &DataType| match t {
        UInt8 => Some(8),
        UInt16 => Some(16),
        UInt32 => Some(32),
        UInt64 => Some(64),
        _ => None,
    };
    let is_string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let is_binary = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView | FixedSizeBinary(_));
    if file == table {
        return true;
    }
    match (file, table) {
        (Null, _) => true,
        (Dictionary(_, value), _) => fits(value, table),
        (_, Dictionary(_, value)) => fits(file, value),
        (f, t) if is_string(f) && is_string(t) => true,
        (f, t) if is_binary(f) && matches!(t, Binary | LargeBinary | BinaryView) => true,
        (f, t) if int_width(f).is_some() && int_width(t).is_some() => int_width(f) <= int_width(t),
        (f, t) if uint_width(f).is_some() && int_width(t).is_some() => uint_width(f) < int_width(t),
        (Int8 | Int16 | Int32 | UInt8 | UInt16, Float64) => true,
        (Float16 | Float32, Float32 | Float64) => true,
        (Date32 | Date64, Date32 | Date64 | Timestamp(_, None)) => true,
        (Timestamp(_, _), Timestamp(_, _)) => true,
        (Time32(_) | Time64(_), Time32(_) | Time64(_)) => true,
        (Decimal32(p1, s1) | Decimal64(p1, s1) | Decimal128(p1, s1) | Decimal256(p1, s1),
         Decimal32(p2, s2) | Decimal64(p2, s2) | Decimal128(p2, s2) | Decimal256(p2, s2)) => {
            s2 >= s1 && (*p2 as i16 - *s2 as i16) >= (*p1 as i16 - *s1 as i16)
        }
        (f, Decimal128(p, s) | Decimal256(p, s)) if int_width(f).is_some() => {
            let digits = match int_width(f) {
                Some(8) => 3,
                Some(16) => 5,
                Some(32) => 10,
                _ => 19,
            };
            (*p as i16 - *s as i16) >= digits
        }
        (List(f) | LargeList(f) | ListView(f) | LargeListView(f) | FixedSizeList(f, _),
         List(t) | LargeList(t) | ListView(t) | LargeListView(t)) => fits(f.data_type(), t.data_type()),
        (Struct(f), Struct(t)) => f.iter().all(|ff| t.iter().find(|tf| tf.name() == ff.name()).is_none_or(|tf| fits(ff.data_type(), tf.data_type()))),
        (Map(f, _), Map(t, _)) => fits(f.data_type(), t.data_type()),
        _ => false,
    }
}

/// The first column of `file` whose type does not fit `table`'s column of the same name:
/// (column, file type, table type). Columns the file lacks read as NULL and are fine.
pub fn first_mismatch(file: &Schema, table: &Schema) -> Option<(String, DataType, DataType)> {
    file.fields().iter().find_map(|field| {
        let expected = table.field_with_name(field.name()).ok()?;
        (!fits(field.data_type(), expected.data_type()))
            .then(|| (field.name().clone(), field.data_type().clone(), expected.data_type().clone()))
    })
}

/// The Arrow schema of `file`'s footer, or why it cannot be read. arrow's footer parsing can
/// panic on a damaged file (a metadata length past the file's end): that is caught here and
/// reported as the damage it is.
async fn footer_schema(
    format: &ParquetFormat,
    session: &dyn Session,
    store: &Arc<dyn object_store::ObjectStore>,
    file: &PartitionedFile,
) -> (String, std::result::Result<SchemaRef, String>) {
    let location = file.object_meta.location.to_string();
    let schema = match std::panic::AssertUnwindSafe(format.infer_schema(session, store, std::slice::from_ref(&file.object_meta)))
        .catch_unwind()
        .await
    {
        Ok(Ok(schema)) => Ok(schema),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => Err(df_plugin_api::guard::panic_message(payload.as_ref())),
    };
    (location, schema)
}

impl CheckedFiles {
    /// Compares the footer of every file in `files` not checked before with `file_schema`
    /// (the table's columns stored in data files); a footer that cannot be read is a
    /// `corrupt_data` error naming the file.
    pub async fn check(
        &self,
        table: &str,
        session: &dyn Session,
        object_store_url: &ObjectStoreUrl,
        files: &[PartitionedFile],
        file_schema: &SchemaRef,
        parquet: &TableParquetOptions,
    ) -> Result<()> {
        let unchecked: Vec<&PartitionedFile> = {
            let done = self.locations.lock().unwrap_or_else(|p| p.into_inner());
            files.iter().filter(|f| !done.contains(f.object_meta.location.as_ref())).collect()
        };
        if unchecked.is_empty() {
            return Ok(());
        }
        let store = session.runtime_env().object_store(object_store_url)?;
        let format = ParquetFormat::default().with_options(parquet.clone());
        let mut pending = Vec::with_capacity(unchecked.len());
        for file in unchecked {
            pending.push(footer_schema(&format, session, &store, file));
        }
        let results: Vec<(String, std::result::Result<SchemaRef, String>)> =
            futures::stream::iter(pending).buffer_unordered(CONCURRENT_FOOTERS).collect().await;
        let mut done = self.locations.lock().unwrap_or_else(|p| p.into_inner());
        // Messages name the file as a user would: `/path/...` locally, the full URL elsewhere.
        let shown = |location: &str| match object_store_url.as_str().trim_end_matches('/') {
            "file:" | "file://" => format!("/{location}"),
            store => format!("{store}/{location}"),
        };
        for (location, schema) in results {
            let schema = schema.map_err(|reason| {
                tracing::error!(target: "codeanatomy::delta", table, file = %location, %reason, "data file footer unreadable");
                delta_error(
                    ErrorCode::CorruptData,
                    format!(
                        "delta table '{table}': data file '{}' is not a readable Parquet file (its footer cannot be \
                         read: {reason}); nothing was read. Restore the file or remove it from the table",
                        shown(&location)
                    ),
                )
            })?;
            if let Some((column, found, expected)) = first_mismatch(&schema, file_schema) {
                tracing::error!(target: "codeanatomy::delta", table, file = %location, column, %found, %expected, "data file contradicts the table's schema");
                return Err(delta_error(
                    ErrorCode::CorruptData,
                    format!(
                        "delta table '{table}': data file '{}' stores column '{column}' as {found}, but the table's \
                         schema says {expected}; reading it would change its values, so nothing was read. Rewrite the file \
                         with the table's types (or remove it from the table)",
                        shown(&location)
                    ),
                ));
            }
            done.insert(location);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, TimeUnit};

    #[test]
    fn widening_fits_and_value_changing_casts_do_not() {
        let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
        for (file, table) in [
            (DataType::Int32, DataType::Int64),
            (DataType::Utf8View, DataType::Utf8),
            (DataType::BinaryView, DataType::Binary),
            (DataType::Float32, DataType::Float64),
            (DataType::Timestamp(TimeUnit::Nanosecond, None), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
            (DataType::Date32, DataType::Timestamp(TimeUnit::Microsecond, None)),
            (DataType::Decimal128(5, 2), DataType::Decimal128(10, 2)),
            (list(DataType::Utf8View), list(DataType::Utf8)),
        ] {
            assert!(fits(&file, &table), "{file} should fit {table}");
        }
        for (file, table) in [
            (DataType::Float64, DataType::Int64),
            (DataType::Binary, DataType::Utf8),
            (list(DataType::Utf8), DataType::Utf8),
            (DataType::Int64, DataType::Int32),
            (DataType::UInt64, DataType::Int64),
            (DataType::Utf8, DataType::Int64),
            (DataType::Decimal128(10, 2), DataType::Decimal128(10, 4)),
        ] {
            assert!(!fits(&file, &table), "{file} must not fit {table}");
        }
    }

    #[test]
    fn the_first_mismatching_column_is_named() {
        let table = Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("v", DataType::Int64, true)]);
        let file = Schema::new(vec![Field::new("id", DataType::Int32, true), Field::new("v", DataType::Float64, true)]);
        assert_eq!(first_mismatch(&file, &table), Some(("v".into(), DataType::Float64, DataType::Int64)));
        let missing = Schema::new(vec![Field::new("id", DataType::Int64, true)]);
        assert_eq!(first_mismatch(&missing, &table), None);
    }
}
