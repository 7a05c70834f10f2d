//! `codeanatomy_functions()`: a table describing every function of the pack.
//!
//! Generated from the functions themselves (their names, signatures' volatility and
//! `documentation()`), so it cannot drift from what is registered. By the pack's convention a
//! documentation syntax line reads `name(args) -> ReturnType`; it is split into the
//! `signatures` and `return_type` columns.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemTable, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::Result;
use datafusion::logical_expr::{Documentation, Volatility};
use df_plugin_api::error::{df_error, ErrorCode};

use crate::{udaf, udf, udwf};

/// Name of the table function, as registered by the plugin.
pub const FUNCTION_NAME: &str = "codeanatomy_functions";

/// One described function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionEntry {
    pub name: String,
    pub kind: &'static str,
    pub signatures: String,
    pub return_type: String,
    pub volatility: &'static str,
    pub description: String,
    pub example: String,
}

fn volatility_name(v: Volatility) -> &'static str {
    match v {
        Volatility::Immutable => "immutable",
        Volatility::Stable => "stable",
        Volatility::Volatile => "volatile",
    }
}

fn entry(name: &str, kind: &'static str, volatility: Volatility, doc: Option<&Documentation>) -> FunctionEntry {
    let syntax = doc.map(|d| d.syntax_example.as_str()).unwrap_or(name);
    let (signatures, return_type) = match syntax.rsplit_once(" -> ") {
        Some((args, ret)) => (args.trim().to_string(), ret.trim().to_string()),
        None => (syntax.trim().to_string(), String::new()),
    };
    FunctionEntry {
        name: name.to_string(),
        kind,
        signatures,
        return_type,
        volatility: volatility_name(volatility),
        description: doc.map(|d| d.description.clone()).unwrap_or_default(),
        example: doc.and_then(|d| d.sql_example.clone()).unwrap_or_default(),
    }
}

/// Every function of the pack, scalar then aggregate then window, each sorted by name.
pub fn function_entries() -> Vec<FunctionEntry> {
    let mut scalars: Vec<_> = udf::scalar_udfs()
        .iter()
        .map(|f| entry(f.name(), "scalar", f.signature().volatility, f.documentation()))
        .collect();
    let mut aggregates: Vec<_> = udaf::aggregate_udfs()
        .iter()
        .map(|f| entry(f.name(), "aggregate", f.signature().volatility, f.documentation()))
        .collect();
    let mut windows: Vec<_> = udwf::window_udfs()
        .iter()
        .map(|f| entry(f.name(), "window", f.signature().volatility, f.documentation()))
        .collect();
    for list in [&mut scalars, &mut aggregates, &mut windows] {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    scalars.into_iter().chain(aggregates).chain(windows).collect()
}

pub fn registry_schema() -> SchemaRef {
    let column = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        column("name"),
        column("kind"),
        column("signatures"),
        column("return_type"),
        column("volatility"),
        column("description"),
        column("example"),
    ]))
}

/// The registry as one batch.
pub fn registry_batch() -> Result<RecordBatch> {
    let entries = function_entries();
    let column = |get: fn(&FunctionEntry) -> &str| -> ArrayRef {
        Arc::new(entries.iter().map(|e| Some(get(e))).collect::<StringArray>())
    };
    let columns = vec![
        column(|e| &e.name),
        column(|e| e.kind),
        column(|e| &e.signatures),
        column(|e| &e.return_type),
        column(|e| e.volatility),
        column(|e| &e.description),
        column(|e| &e.example),
    ];
    Ok(RecordBatch::try_new(registry_schema(), columns)?)
}

/// Table function `codeanatomy_functions()` (no arguments).
#[derive(Debug, Default)]
pub struct FunctionRegistryTable;

impl TableFunctionImpl for FunctionRegistryTable {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return Err(df_error(
                ErrorCode::Plan,
                format!("{FUNCTION_NAME} expects no arguments; got {}", args.exprs().len()),
            ));
        }
        let batch = registry_batch()?;
        Ok(Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?))
    }
}

/// The table function to register as [`FUNCTION_NAME`].
pub fn function_registry_table() -> Arc<dyn TableFunctionImpl> {
    Arc::new(FunctionRegistryTable)
}
