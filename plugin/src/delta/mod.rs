//! Delta Lake tables, served by deltalake inside the plugin.
//!
//! Every way in — `CREATE EXTERNAL TABLE ... STORED AS DELTA` ([`factory`]), a provider opened
//! from JSON options ([`DeltaProviderBuilder`]), and the `delta_scan` table function
//! ([`functions`]) — ends in the same [`DeltaProvider`]. The plugin owns the tokio runtime and
//! the `RuntimeEnv` its scans use ([`runtime`]): datafusion-ffi shares neither with the host.

pub mod direct_scan;
pub mod dml;
pub mod exec;
pub mod factory;
pub mod file_check;
pub mod file_index;
pub mod functions;
pub mod options;
pub mod provider;
pub mod runtime;
pub mod storage;
pub mod table;
pub mod time_travel;
pub mod write;

/// The deltalake crate this plugin is built with (tests write oracle tables with it).
pub use deltalake;

pub use factory::DeltaTableFactory;
pub use options::{DeltaTableOptions, TableVersion};
pub use provider::{DeltaProvider, DeltaProviderBuilder};

/// `STORED AS` keyword of the factory.
pub const FACTORY_NAME: &str = "DELTA";
/// Kind of the provider opened from JSON options.
pub const PROVIDER_KIND: &str = "delta";
