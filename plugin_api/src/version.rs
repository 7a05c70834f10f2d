//! Versions the ABI is defined by, and the rules for comparing them.

use abi_stable::StableAbi;
use serde::{Deserialize, Serialize};

/// Version of the plugin ABI (the root module and manifest).
///
/// - **major**: bumped for any change other than appending a root-module field. A host refuses
///   a plugin of another major.
/// - **minor**: bumped each time a field is appended to the root module. A host accepts a
///   plugin of its own or an older minor (the missing fields read as absent) and refuses a
///   newer one, whose manifest may declare objects this host cannot carry.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AbiVersion {
    pub major: u16,
    pub minor: u16,
}

impl AbiVersion {
    /// The version this crate defines. History:
    /// - 1.0: manifest, log sink, config options, scalar/aggregate/window UDFs, table
    ///   functions, physical optimizer rules, live object count.
    /// - 1.1: `register_config` + `invoke_scalar_udf`, the lean scalar invocation path
    ///   ([`crate::scalar_udf`]).
    /// - 1.2: table provider factories, `create_table_provider`, `call_table_function`.
    /// - 1.3: analyzer rules, relation planners, DML forwarding (`table_dml`).
    /// - 1.4: `scan_table`: scans with the session options as a `register_config` handle,
    ///   optionally answered with a plan the host runs itself ([`crate::scan`]);
    ///   `prepare_scalar_udf` + `invoke_prepared_scalar_udf`: a scalar call's fields, literal
    ///   arguments and options cross once per call shape, then only its arrays per batch;
    ///   `create_groups_accumulator`: groups accumulators whose group indices cross borrowed.
    /// - 1.5: `rule_active` (rules a host may skip under the session's settings) and
    ///   `table_filters_pushdown` (pushdown answers a host may keep) ([`crate::rule_activity`],
    ///   [`crate::filter_pushdown`]).
    /// - 1.6: `call_table_function_with_config`: table functions see the session's settings
    ///   (the location policy) when they open their table ([`crate::table_function`]).
    pub const CURRENT: AbiVersion = AbiVersion { major: 1, minor: 6 };
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// DataFusion version this crate (and every plugin built with it) is compiled against.
pub const DATAFUSION_VERSION: &str = datafusion::DATAFUSION_VERSION;
/// arrow version this crate is compiled against.
pub const ARROW_VERSION: &str = arrow::ARROW_VERSION;
/// datafusion-ffi version; the crate exposes only its major at run time
/// (`datafusion_ffi::version()`), so the full string is pinned here and checked by a test.
pub const DATAFUSION_FFI_VERSION: &str = "55.2.0";

/// The major component of a `major.minor.patch` version string.
pub fn major_of(version: &str) -> Option<u64> {
    version.split('.').next()?.trim().parse().ok()
}

/// The datafusion-ffi version actually linked, as the live manifest reports it: the pinned
/// string when its major agrees with the linked crate, else just the linked major.
pub fn linked_datafusion_ffi_version() -> String {
    let linked = datafusion_ffi::version();
    if major_of(DATAFUSION_FFI_VERSION) == Some(linked) {
        DATAFUSION_FFI_VERSION.to_string()
    } else {
        linked.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_ffi_version_matches_linked_crate() {
        assert_eq!(major_of(DATAFUSION_FFI_VERSION), Some(datafusion_ffi::version()));
        assert_eq!(major_of(DATAFUSION_VERSION), Some(datafusion_ffi::version()));
    }

    #[test]
    fn major_parsing() {
        assert_eq!(major_of("55.2.0"), Some(55));
        assert_eq!(major_of("x"), None);
    }
}
