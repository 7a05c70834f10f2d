//! `df_plugin_host`: load DataFusion plugin libraries safely, install them into sessions, and
//! run conformance suites against them.
//!
//! ```no_run
//! use datafusion::prelude::SessionContext;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = df_plugin_host::load("target/release/libcodeanatomy_plugin.so")?;
//! let ctx = SessionContext::new();
//! plugin.install_into_context(&ctx, &df_plugin_host::InstallOptions::new())?;
//! ctx.sql("SELECT stable_hash64('a')").await?.show().await?;
//! # Ok(()) }
//! ```

pub mod conform;
pub mod config;
pub mod empty_dml;
pub mod error;
pub mod inspect;
pub mod install;
pub mod introspect;
pub mod load;
pub mod sql;
pub mod trust;

pub use error::HostError;
pub use inspect::read_embedded_manifest;
pub use install::{CollisionPolicy, InstallOptions};
pub use introspect::InstalledPlugin;
pub use load::{load, loaded_plugins, LoadedPlugin, PluginObjects};
pub use trust::{set_trust_policy, trust_policy, TrustPolicy};
