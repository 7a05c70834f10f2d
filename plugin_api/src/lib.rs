//! `df_plugin_api`: the versioned ABI between DataFusion hosts and plugin libraries.
//!
//! A plugin implements [`Plugin`] (a `const` [`ManifestDecl`] and a `build` function) and calls
//! [`export_plugin!`]. That gives the library:
//! - an embedded manifest in the `.dfplugin_manifest` link section, readable without loading;
//! - an abi_stable root module ([`module::PluginModule`]) whose fields are only ever appended;
//! - plain C entry points (`dfplugin_*`) for hosts without abi_stable, such as Python/ctypes.
//!
//! Every entry point catches panics and returns a typed [`PluginError`].

pub mod aggregate_udf;
pub mod analyzer;
pub mod config;
pub mod dml;
pub mod error;
pub mod export;
pub mod expr_bytes;
pub mod filter_pushdown;
pub mod guard;
pub mod handover;
pub mod log;
pub mod manifest;
pub mod module;
pub mod plugin;
pub mod redact;
pub mod relation_planner;
pub mod rule_activity;
pub mod runtime;
pub mod safety;
pub mod scalar_udf;
pub mod scan;
pub mod schema_identity;
pub mod statement;
pub mod table_function;
pub mod version;

pub use error::{ErrorCode, PluginError};
pub use manifest::{BuildInfo, Capabilities, Capability, Manifest, ManifestDecl, ObjectDecl};
pub use plugin::{
    Plugin, PluginContext, PluginExports, TableFunctionExport, TableProviderBuilder,
    TableProviderExport, TableProviderFactoryExport,
};
pub use version::AbiVersion;

/// Re-exports used by the code `export_plugin!` generates.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::c_api;
    pub use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;
    pub use datafusion_ffi::physical_optimizer::FFI_PhysicalOptimizerRule;
    pub use datafusion_ffi::proto::logical_extension_codec::FFI_LogicalExtensionCodec;
    pub use datafusion_ffi::table_provider::FFI_TableProvider;
    pub use datafusion_ffi::table_provider_factory::FFI_TableProviderFactory;
    pub use datafusion_ffi::udaf::FFI_AggregateUDF;
    pub use datafusion_ffi::udf::FFI_ScalarUDF;
    pub use datafusion_ffi::udtf::FFI_TableFunction;
    pub use datafusion_ffi::udwf::FFI_WindowUDF;
}
