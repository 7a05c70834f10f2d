//! Scans that differ only in their source must not compare equal.
//!
//! DataFusion 55 compares two `TableScan`s by name, projection, projected schema, filters and
//! fetch, but not by source, and table-function scans are all named after the function. So
//! `(SELECT count(*) FROM delta_scan('/a'))` and `(SELECT count(*) FROM delta_scan('/b'))` are
//! equal plans and common-subexpression elimination keeps one: a silent wrong answer in every
//! host. A provider that reads one source among several of the same shape therefore carries
//! the source's identity in its schema metadata (which survives projection, even an empty one),
//! and its physical plans carry the same metadata, as DataFusion's planner checks that an
//! aggregate's physical input schema matches the logical one, metadata included.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// The schema metadata key that names a scan's source.
pub const SOURCE_METADATA_KEY: &str = "dfplugin.source";

/// `schema` with `identity` under [`SOURCE_METADATA_KEY`].
pub fn with_source(schema: &Schema, identity: &str) -> SchemaRef {
    let mut metadata = schema.metadata().clone();
    metadata.insert(SOURCE_METADATA_KEY.to_string(), identity.to_string());
    Arc::new(Schema::new_with_metadata(schema.fields().clone(), metadata))
}

/// The source metadata of `schema` (empty when it names none).
pub fn source_metadata(schema: &Schema) -> HashMap<String, String> {
    schema.metadata().get(SOURCE_METADATA_KEY).map(|v| (SOURCE_METADATA_KEY.to_string(), v.clone())).into_iter().collect()
}

/// `schema` with the schema-level `metadata` added.
pub fn with_metadata(schema: &Schema, metadata: &HashMap<String, String>) -> SchemaRef {
    let mut all = schema.metadata().clone();
    all.extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
    Arc::new(Schema::new_with_metadata(schema.fields().clone(), all))
}

/// The properties of `plan` with its schema replaced by `schema` (same fields and types).
pub fn properties_with_schema(plan: &Arc<dyn ExecutionPlan>, schema: SchemaRef) -> Result<Arc<PlanProperties>> {
    let props = plan.properties();
    Ok(Arc::new(PlanProperties::new(
        props.eq_properties.clone().with_new_schema(schema)?,
        props.partitioning.clone(),
        props.emission_type,
        props.boundedness,
    )))
}

/// `stream` with every batch relabelled with `schema` (same columns; no data is copied).
pub fn relabel_stream(stream: SendableRecordBatchStream, schema: SchemaRef) -> SendableRecordBatchStream {
    if stream.schema() == schema {
        return stream;
    }
    let target = Arc::clone(&schema);
    let relabelled = stream.map(move |batch| {
        let batch = batch?;
        let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(Arc::clone(&target), batch.columns().to_vec(), &options)?)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, relabelled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};

    #[test]
    fn identity_survives_projection_and_distinguishes_sources() {
        let plain = Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("x", DataType::Utf8, true)]);
        let a = with_source(&plain, "delta:a");
        let b = with_source(&plain, "delta:b");
        assert_ne!(a, b);
        assert_ne!(a.project(&[]).unwrap(), b.project(&[]).unwrap(), "empty projections (count(*)) must differ too");
        assert_eq!(source_metadata(&a.project(&[1]).unwrap()).get(SOURCE_METADATA_KEY).map(String::as_str), Some("delta:a"));
        assert!(source_metadata(&plain).is_empty());
    }
}
