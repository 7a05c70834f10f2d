//! `dfplugin_loaded()` and `dfplugin_objects()`: what plugins a session has, queryable in SQL.

use std::any::Any;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunction, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::session_state::SessionStateBuilder;

pub const LOADED_FUNCTION: &str = "dfplugin_loaded";
pub const OBJECTS_FUNCTION: &str = "dfplugin_objects";

/// One installed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledObject {
    pub kind: String,
    pub name: String,
}

/// One plugin installed into a session, and what was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPlugin {
    pub plugin: String,
    pub version: String,
    pub path: String,
    pub build_id: String,
    pub abi: String,
    pub capabilities: Vec<String>,
    pub native: bool,
    pub objects: Vec<InstalledObject>,
}

/// The session's record of installed plugins, shared by its two introspection functions.
#[derive(Debug, Default)]
pub struct SessionPlugins {
    installed: Mutex<Vec<InstalledPlugin>>,
}

#[derive(Debug)]
struct IntrospectionTable {
    plugins: Arc<SessionPlugins>,
    objects: bool,
}

impl SessionPlugins {
    /// Appends `entry` to the record of the session being built, creating the record (and
    /// registering the introspection functions) on first use.
    pub fn record(builder: &mut SessionStateBuilder, entry: InstalledPlugin) {
        let functions = builder.table_functions().get_or_insert_with(Default::default);
        let existing = functions.get(LOADED_FUNCTION).and_then(|f| {
            let any: Arc<dyn Any + Send + Sync> = Arc::clone(f.function()) as Arc<dyn Any + Send + Sync>;
            any.downcast::<IntrospectionTable>().ok().map(|t| Arc::clone(&t.plugins))
        });
        let plugins = existing.unwrap_or_else(|| {
            let plugins = Arc::new(SessionPlugins::default());
            for (name, objects) in [(LOADED_FUNCTION, false), (OBJECTS_FUNCTION, true)] {
                let table = Arc::new(IntrospectionTable { plugins: Arc::clone(&plugins), objects });
                functions.insert(name.to_string(), Arc::new(TableFunction::new(name.to_string(), table)));
            }
            plugins
        });
        plugins.installed.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
    }

    /// Every object the install record of the session being built lists.
    pub fn installed_objects(builder: &mut SessionStateBuilder) -> Vec<InstalledObject> {
        let Some(function) = builder.table_functions().as_ref().and_then(|fs| fs.get(LOADED_FUNCTION).cloned()) else {
            return Vec::new();
        };
        let any: Arc<dyn Any + Send + Sync> = Arc::clone(function.function()) as Arc<dyn Any + Send + Sync>;
        match any.downcast::<IntrospectionTable>() {
            Ok(table) => table.plugins.snapshot().into_iter().flat_map(|p| p.objects).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn snapshot(&self) -> Vec<InstalledPlugin> {
        self.installed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn utf8(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

impl IntrospectionTable {
    fn batch(&self) -> Result<RecordBatch> {
        let installed = self.plugins.snapshot();
        if self.objects {
            let schema = Arc::new(Schema::new(vec![
                Field::new("kind", DataType::Utf8, false),
                Field::new("name", DataType::Utf8, false),
                Field::new("plugin", DataType::Utf8, false),
            ]));
            let rows: Vec<(String, String, String)> = installed
                .iter()
                .flat_map(|p| p.objects.iter().map(move |o| (o.kind.clone(), o.name.clone(), p.plugin.clone())))
                .collect();
            let kinds = rows.iter().map(|r| r.0.clone()).collect();
            let names = rows.iter().map(|r| r.1.clone()).collect();
            let plugins = rows.iter().map(|r| r.2.clone()).collect();
            Ok(RecordBatch::try_new(schema, vec![utf8(kinds), utf8(names), utf8(plugins)])?)
        } else {
            let schema = Arc::new(Schema::new(vec![
                Field::new("plugin", DataType::Utf8, false),
                Field::new("version", DataType::Utf8, false),
                Field::new("path", DataType::Utf8, false),
                Field::new("build_id", DataType::Utf8, false),
                Field::new("abi", DataType::Utf8, false),
                Field::new("capabilities", DataType::Utf8, false),
                Field::new("native", DataType::Boolean, false),
            ]));
            let column = |f: &dyn Fn(&InstalledPlugin) -> String| utf8(installed.iter().map(f).collect());
            Ok(RecordBatch::try_new(
                schema,
                vec![
                    column(&|p| p.plugin.clone()),
                    column(&|p| p.version.clone()),
                    column(&|p| p.path.clone()),
                    column(&|p| p.build_id.clone()),
                    column(&|p| p.abi.clone()),
                    column(&|p| p.capabilities.join(",")),
                    Arc::new(BooleanArray::from(installed.iter().map(|p| p.native).collect::<Vec<_>>())),
                ],
            )?)
        }
    }
}

impl TableFunctionImpl for IntrospectionTable {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            let name = if self.objects { OBJECTS_FUNCTION } else { LOADED_FUNCTION };
            return Err(DataFusionError::Plan(format!("{name}() takes no arguments, found {}", args.exprs().len())));
        }
        let batch = self.batch()?;
        Ok(Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?))
    }
}
