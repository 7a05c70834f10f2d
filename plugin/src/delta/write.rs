//! `INSERT INTO` / `INSERT OVERWRITE` on a Delta table: one commit per statement.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use deltalake::protocol::SaveMode;
use df_plugin_api::ErrorCode;
use futures::{StreamExt, TryStreamExt};

use super::options::DeltaTableOptions;
use super::runtime::on_plugin_runtime;
use super::table::{delta_error, map_write_error, open_table};

/// Writes its input to a Delta table as one commit and returns the row count.
#[derive(Debug)]
pub struct DeltaWriteExec {
    input: Arc<dyn ExecutionPlan>,
    mode: SaveMode,
    options: DeltaTableOptions,
    properties: Arc<PlanProperties>,
}

/// The schema of a DML plan's result: one `count` row.
pub(super) fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("count", DataType::UInt64, false)]))
}

impl DeltaWriteExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, insert_op: InsertOp, options: DeltaTableOptions) -> Result<Self> {
        let mode = match insert_op {
            InsertOp::Append => SaveMode::Append,
            InsertOp::Overwrite => SaveMode::Overwrite,
            InsertOp::Replace => {
                return Err(delta_error(
                    ErrorCode::Unsupported,
                    format!("delta table '{}': REPLACE INTO is not supported; use INSERT INTO or INSERT OVERWRITE", options.table_uri),
                ))
            }
        };
        Ok(Self { input, mode, options, properties: count_properties() })
    }
}

/// Properties of a plan that returns one `count` row from one partition.
pub(super) fn count_properties() -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(count_schema()),
        Partitioning::UnknownPartitioning(1),
        EmissionType::Final,
        Boundedness::Bounded,
    ))
}

/// A one-row `count` batch.
pub(super) fn count_batch(rows: u64) -> Result<RecordBatch> {
    RecordBatch::try_new(count_schema(), vec![Arc::new(UInt64Array::from(vec![rows]))]).map_err(Into::into)
}

impl DisplayAs for DeltaWriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeltaWriteExec: table={}, mode={:?}", df_plugin_api::redact::redact_urls(&self.options.table_uri), self.mode)
    }
}

impl ExecutionPlan for DeltaWriteExec {
    fn name(&self) -> &str {
        "DeltaWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(format!("DeltaWriteExec takes one input; got {}", children.len())));
        }
        let input = children.remove(0);
        Ok(Arc::new(Self { input, mode: self.mode, options: self.options.clone(), properties: Arc::clone(&self.properties) }))
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("DeltaWriteExec has one partition; asked for {partition}")));
        }
        let partitions = self.input.properties().partitioning.partition_count();
        let inputs = (0..partitions).map(|p| self.input.execute(p, Arc::clone(&ctx))).collect::<Result<Vec<_>>>()?;
        let (options, mode) = (self.options.clone(), self.mode);
        let write = async move {
            let mut batches: Vec<RecordBatch> = Vec::new();
            for stream in inputs {
                batches.extend(stream.try_collect::<Vec<_>>().await?);
            }
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            if rows == 0 && mode == SaveMode::Append {
                // Appending nothing is a successful no-op: no commit, no new version.
                tracing::info!(target: "codeanatomy::delta", table = %options.table_uri, "INSERT of 0 rows: nothing to commit");
                return count_batch(0);
            }
            on_plugin_runtime(async move {
                let uri = options.table_uri.clone();
                let table = open_table(&DeltaTableOptions { version: Default::default(), files: None, ..options }).await?;
                // deltalake plans the write with its own session (it needs its own extension
                // planner), on the plugin runtime.
                let table = table
                    .clone()
                    .write(batches)
                    .with_save_mode(mode)
                    .await
                    .map_err(|e| map_write_error(&table, &uri, e))?;
                tracing::info!(target: "codeanatomy::delta", table = %uri, version = ?table.version(), rows, "delta commit written");
                Ok(())
            })
            .await?;
            count_batch(rows as u64)
        };
        let object = format!("INSERT into delta table '{}'", self.options.table_uri);
        Ok(df_plugin_api::safety::PanicSafeStream::wrap(
            object,
            Box::pin(RecordBatchStreamAdapter::new(count_schema(), futures::stream::once(write).boxed())),
        ))
    }
}
