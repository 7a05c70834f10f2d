//! `CREATE EXTERNAL TABLE t [(columns)] STORED AS DELTA LOCATION '<uri>' [OPTIONS (...)]`.
//!
//! Without columns it opens an existing table. With columns it creates the table when the
//! location holds none (partitioned by `PARTITIONED BY`), and otherwise opens it.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::error::Result;
use datafusion::logical_expr::CreateExternalTable;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::StructField;
use df_plugin_api::ErrorCode;

use super::options::{DeltaTableOptions, TableVersion};
use super::provider::DeltaProvider;
use super::runtime::on_plugin_runtime;
use super::table::{delta_error, map_delta_error, uninitialized_table, Access};

/// The `DELTA` table provider factory.
#[derive(Debug, Default)]
pub struct DeltaTableFactory;

/// Creates an empty table with `columns` at `options.table_uri` unless one exists there.
async fn create_if_missing(
    options: &DeltaTableOptions,
    columns: Vec<StructField>,
    partition_columns: Vec<String>,
) -> Result<()> {
    let uri = &options.table_uri;
    let mut table = uninitialized_table(options, Access::Create)?;
    if table.verify_deltatable_existence().await.map_err(|e| map_delta_error(uri, e))? {
        return Ok(());
    }
    if options.version != TableVersion::Latest {
        return Err(delta_error(
            ErrorCode::NotFound,
            format!("delta table '{uri}' does not exist, so it has no version {}", options.version),
        ));
    }
    let mut create = table.create().with_columns(columns).with_configuration(
        options.table_properties.iter().map(|(k, v)| (k.clone(), Some(v.clone()))),
    );
    if !partition_columns.is_empty() {
        create = create.with_partition_columns(partition_columns);
    }
    table = create.await.map_err(|e| map_delta_error(uri, e))?;
    tracing::info!(target: "codeanatomy::delta", table = %uri, version = ?table.version(), "delta table created");
    Ok(())
}

#[async_trait]
impl TableProviderFactory for DeltaTableFactory {
    async fn create(&self, state: &dyn Session, cmd: &CreateExternalTable) -> Result<Arc<dyn TableProvider>> {
        let location = cmd.locations.first().cloned().unwrap_or_default();
        if location.is_empty() || cmd.locations.len() > 1 {
            return Err(delta_error(
                ErrorCode::InvalidArgument,
                format!("STORED AS DELTA needs exactly one LOCATION (the table root); found {:?}", cmd.locations),
            ));
        }
        let settings = crate::config::CodeAnatomyConfig::from_config_options(state.config_options())?;
        let options = DeltaTableOptions::from_ddl(&location, &cmd.options)
            .map_err(datafusion::error::DataFusionError::from)?
            .with_session_settings(&settings);
        let columns = cmd
            .schema
            .fields()
            .iter()
            .map(|f| {
                f.as_ref().try_into_kernel().map_err(|e| {
                    delta_error(ErrorCode::InvalidArgument, format!("column '{}' has no Delta type: {e}", f.name()))
                })
            })
            .collect::<Result<Vec<StructField>>>()?;
        let partition_columns = cmd.table_partition_cols.clone();
        let span = tracing::info_span!(target: "codeanatomy::delta", "delta_factory", table = %location);
        let _enter = span.enter();
        let provider = on_plugin_runtime(async move {
            if !columns.is_empty() {
                create_if_missing(&options, columns, partition_columns).await?;
            }
            DeltaProvider::open_async(options).await
        })
        .await?;
        Ok(Arc::new(provider))
    }
}
