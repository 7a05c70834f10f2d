//! Why a plugin was refused or could not be installed. Every message names the file, what the
//! plugin was built for, what this host is, and what to do.

use std::path::PathBuf;

use df_plugin_api::{AbiVersion, PluginError};

/// Command that rebuilds the plugin of this repository; used in advice texts.
const REBUILD: &str = "cargo build --release -p <plugin crate> (for CodeAnatomy: cargo build --release -p codeanatomy_plugin)";

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("plugin file '{path}' does not exist. Build it with `{REBUILD}` or pass the path of an existing .so")]
    NotFound { path: PathBuf },

    #[error("plugin file '{path}' cannot be read: {reason}. Check the path and its permissions")]
    Unreadable { path: PathBuf, reason: String },

    #[error("'{path}' is not a readable shared library ({reason}); it may be truncated, damaged or not a library at all. Rebuild it with `{REBUILD}`")]
    NotALibrary { path: PathBuf, reason: String },

    #[error("'{path}' has no embedded DataFusion plugin manifest (section .dfplugin_manifest); it was not built with df_plugin_api's export_plugin! macro, or the section was stripped. Rebuild it with `{REBUILD}`")]
    NoEmbeddedManifest { path: PathBuf },

    #[error("'{path}' has a damaged embedded manifest: {reason}. Rebuild it with `{REBUILD}`")]
    MalformedManifest { path: PathBuf, reason: String },

    #[error("plugin '{path}' was built for plugin ABI {plugin}, but this host speaks ABI {host}; majors must be equal. Rebuild the plugin against df_plugin_api {}.x with `{REBUILD}`, or use a host built for ABI {}.x", host.major, plugin.major)]
    AbiMajorMismatch { path: PathBuf, plugin: AbiVersion, host: AbiVersion },

    #[error("plugin '{path}' was built for plugin ABI {plugin}, newer than this host's ABI {host}; it may carry objects this host cannot install. Upgrade the host (rebuild dfplugin from df_plugin_api >= {plugin}) or rebuild the plugin against ABI {host}")]
    AbiMinorTooNew { path: PathBuf, plugin: AbiVersion, host: AbiVersion },

    #[error("plugin '{path}' was built for DataFusion {plugin}, but this host runs DataFusion {host}; FFI struct layouts differ between majors (loading it would crash). Rebuild the plugin with datafusion = \"={host}\"")]
    DataFusionMismatch { path: PathBuf, plugin: String, host: String },

    #[error("plugin '{path}' was built for datafusion-ffi {plugin}, but this host uses datafusion-ffi {host}; the FFI structs differ between majors (loading it would crash). Rebuild the plugin with datafusion-ffi = \"={host}\"")]
    FfiMismatch { path: PathBuf, plugin: String, host: String },

    #[error("plugin '{path}' was built for arrow {plugin}, but this host uses arrow {host}; majors must be equal. Rebuild the plugin with arrow = \"{}\"", host.split('.').next().unwrap_or(host))]
    ArrowMismatch { path: PathBuf, plugin: String, host: String },

    #[error("plugin '{path}' was built for target {plugin}, but this host is {host}. Rebuild the plugin on (or for) {host}: cargo build --release --target {host}")]
    TargetMismatch { path: PathBuf, plugin: String, host: String },

    #[error("plugin '{path}' declares capability '{capability}', which this host does not know (it knows: {known}). Upgrade the host, or rebuild the plugin against this host's df_plugin_api")]
    UnknownCapability { path: PathBuf, capability: String, known: String },

    #[error("plugin '{path}' declares capability '{capability}', but its ABI {abi} has no way to carry it; the manifest is inconsistent. Rebuild the plugin with `{REBUILD}`")]
    CapabilityNotCarried { path: PathBuf, capability: String, abi: AbiVersion },

    #[error("the dynamic loader refused '{path}': {reason}. The file passed the manifest checks, so it is likely damaged or built for another platform; rebuild it with `{REBUILD}`")]
    Open { path: PathBuf, reason: String },

    #[error("'{path}' has an embedded manifest but exports no plugin root module ({reason}); it was not built with df_plugin_api's export_plugin! macro. Rebuild it with `{REBUILD}`")]
    MissingRootModule { path: PathBuf, reason: String },

    #[error("the root module of '{path}' does not have the layout this host expects for ABI {host}: {reason}. Rebuild the plugin against this host's df_plugin_api")]
    Layout { path: PathBuf, host: AbiVersion, reason: String },

    #[error("plugin '{path}': the manifest embedded in the file and the one the loaded library reports disagree ({}). The library was built inconsistently (declared objects differ from exported ones?); fix the plugin's MANIFEST and rebuild with `{REBUILD}`", differences.join("; "))]
    LiveManifestMismatch { path: PathBuf, differences: Vec<String> },

    #[error("plugin '{path}' failed in {entry}: {error}")]
    Plugin { path: PathBuf, entry: &'static str, error: PluginError },

    #[error("cannot install plugin '{plugin}': {kind} '{name}' is already registered in this session ({owner}). Pass a collision policy (--on-collision replace|skip, or InstallOptions::on_collision) or remove the other registration")]
    NameCollision { plugin: String, kind: &'static str, name: String, owner: String },

    #[error("plugin '{plugin}' (ABI {abi}) cannot carry capability '{capability}' into this host: that needs ABI {needed} root-module fields. Rebuild the plugin against a df_plugin_api with ABI {needed} or newer")]
    CapabilityUnavailable { plugin: String, capability: String, needed: String, abi: AbiVersion },

    #[error("invalid install options for plugin '{plugin}': {error}")]
    InvalidOptions { plugin: String, error: PluginError },

    #[error("plugin '{path}' is not signed, and this host loads only signed plugins. Sign it (`dfplugin keygen --out KEY`, then `dfplugin sign {path} --key KEY`) and trust its key (--trust KEY.pub, or DFPLUGIN_TRUST_FILE=KEY.pub), or allow unsigned plugins explicitly (--allow-unsigned, or DFPLUGIN_ALLOW_UNSIGNED=1)")]
    Unsigned { path: PathBuf },

    #[error("plugin '{path}' carries a signature that does not verify: {reason}. It was modified after signing or damaged; it is never loaded, whatever the trust policy. Rebuild it and sign it again")]
    SignatureInvalid { path: PathBuf, reason: String },

    #[error("plugin '{path}' is signed by key {key}, which this host does not trust. Add that key's public key file to the trust files (--trust FILE, or DFPLUGIN_TRUST_FILE), or sign the plugin with a trusted key")]
    UntrustedKey { path: PathBuf, key: String },

    #[error("the plugin trust policy can only be tightened once a plugin has been loaded; refused to loosen it ({loosened}). Set the trust policy before loading the first plugin")]
    TrustPolicyLoosened { loosened: String },

    #[error("invalid plugin trust policy: {reason}")]
    TrustPolicyInvalid { reason: String },

    #[error("trust file '{path}'{}: {reason}. A trust file lists one key per line as 'ed25519:<64 hex digits>' (`dfplugin keygen` writes one); '#' starts a comment", if *line > 0 { format!(", line {line}") } else { String::new() })]
    TrustFile { path: PathBuf, line: usize, reason: String },
}

impl HostError {
    /// Stable machine-readable name of the error kind (used by the CLI and conformance suites).
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::NotFound { .. } => "not_found",
            HostError::Unreadable { .. } => "unreadable",
            HostError::NotALibrary { .. } => "not_a_library",
            HostError::NoEmbeddedManifest { .. } => "no_embedded_manifest",
            HostError::MalformedManifest { .. } => "malformed_manifest",
            HostError::AbiMajorMismatch { .. } => "abi_major_mismatch",
            HostError::AbiMinorTooNew { .. } => "abi_minor_too_new",
            HostError::DataFusionMismatch { .. } => "datafusion_mismatch",
            HostError::FfiMismatch { .. } => "datafusion_ffi_mismatch",
            HostError::ArrowMismatch { .. } => "arrow_mismatch",
            HostError::TargetMismatch { .. } => "target_mismatch",
            HostError::UnknownCapability { .. } => "unknown_capability",
            HostError::CapabilityNotCarried { .. } => "capability_not_carried",
            HostError::Open { .. } => "open_failed",
            HostError::MissingRootModule { .. } => "missing_root_module",
            HostError::Layout { .. } => "layout_mismatch",
            HostError::LiveManifestMismatch { .. } => "live_manifest_mismatch",
            HostError::Plugin { error, .. } if error.code() == df_plugin_api::ErrorCode::Panic => "plugin_panic",
            HostError::Plugin { .. } => "plugin_error",
            HostError::NameCollision { .. } => "name_collision",
            HostError::CapabilityUnavailable { .. } => "capability_unavailable",
            HostError::InvalidOptions { .. } => "invalid_options",
            HostError::Unsigned { .. } => "unsigned",
            HostError::SignatureInvalid { .. } => "signature_invalid",
            HostError::UntrustedKey { .. } => "untrusted_key",
            HostError::TrustPolicyLoosened { .. } => "trust_policy_loosened",
            HostError::TrustFile { .. } => "trust_file_invalid",
            HostError::TrustPolicyInvalid { .. } => "trust_policy_invalid",
        }
    }
}
