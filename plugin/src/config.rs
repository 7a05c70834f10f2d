//! The `codeanatomy` configuration namespace: declared once, embedded in the manifest,
//! exported to hosts as `FFI_ExtensionOptions`, read back (validated) at execution time.

use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use df_plugin_api::config::{ConfigKeyDecl, ConfigNamespaceDecl, ConfigType};

/// Every key of the namespace. Append new keys; the manifest lists them for hosts.
pub const NAMESPACE: ConfigNamespaceDecl = ConfigNamespaceDecl {
    prefix: "codeanatomy",
    keys: &[
        ConfigKeyDecl {
            key: "span.line_base",
            ty: ConfigType::Int { min: 0, max: 1 },
            default: "0",
            doc: "Line numbering base recorded by span_make when not given (0 or 1).",
        },
        ConfigKeyDecl {
            key: "span.col_unit",
            ty: ConfigType::Enum(&["BYTE", "UTF16", "UTF32"]),
            default: "BYTE",
            doc: "Column unit recorded by span_make when not given.",
        },
        ConfigKeyDecl {
            key: "span.end_exclusive",
            ty: ConfigType::Bool,
            default: "true",
            doc: "Whether span ends are exclusive, recorded by span_make when not given.",
        },
        ConfigKeyDecl {
            key: "normalize.form",
            ty: ConfigType::Enum(&["NFC", "NFD", "NFKC", "NFKD"]),
            default: "NFKC",
            doc: "Unicode normalization form used by utf8_normalize when not given.",
        },
        ConfigKeyDecl {
            key: "scan_guard.max_files",
            ty: ConfigType::Int { min: 0, max: i64::MAX },
            default: "0",
            doc: "Physical scan guard: maximum files a plugin Delta scan may read after pruning (0 = no limit).",
        },
        ConfigKeyDecl {
            key: "scan_guard.require_partition_filter",
            ty: ConfigType::Bool,
            default: "false",
            doc: "Physical scan guard: reject scans of partitioned Delta tables without a partition predicate.",
        },
        ConfigKeyDecl {
            key: "policy.allow_ddl",
            ty: ConfigType::Bool,
            default: "true",
            doc: "SQL policy: allow CREATE/DROP of tables, views, schemas and functions.",
        },
        ConfigKeyDecl {
            key: "policy.allow_dml",
            ty: ConfigType::Bool,
            default: "true",
            doc: "SQL policy: allow INSERT, DELETE, UPDATE and TRUNCATE.",
        },
        ConfigKeyDecl {
            key: "policy.allow_copy",
            ty: ConfigType::Bool,
            default: "true",
            doc: "SQL policy: allow COPY ... TO.",
        },
        ConfigKeyDecl {
            key: "policy.allow_statements",
            ty: ConfigType::Bool,
            default: "true",
            doc: "SQL policy: allow SET, RESET, PREPARE, EXECUTE and transaction statements.",
        },
        ConfigKeyDecl {
            key: "policy.deterministic",
            ty: ConfigType::Bool,
            default: "false",
            doc: "SQL policy: reject functions whose declared volatility is volatile (random(), uuid(), ...).",
        },
        ConfigKeyDecl {
            key: "policy.allowed_locations",
            ty: ConfigType::String,
            default: "",
            doc: "Location policy: comma-separated prefixes (local paths or object-store URIs) every Delta table opened \
                  must lie under, checked after resolving '..' and symbolic links (empty = any location).",
        },
        ConfigKeyDecl {
            key: "delta.allow_external_files",
            ty: ConfigType::Bool,
            default: "false",
            doc: "Read Delta data files whose log entry is an absolute URI outside the table root (relative paths that \
                  leave the root are always refused).",
        },
        ConfigKeyDecl {
            key: "dml.allow_full_table_delete",
            ty: ConfigType::Bool,
            default: "false",
            doc: "Allow DELETE without WHERE on Delta tables of this plugin.",
        },
    ],
};

/// Column unit for code positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColUnit {
    /// UTF-8 bytes.
    Byte,
    /// UTF-16 code units (LSP's default).
    Utf16,
    /// Unicode scalar values.
    Utf32,
}

impl ColUnit {
    pub fn parse(s: &str) -> Option<ColUnit> {
        match s.to_ascii_uppercase().as_str() {
            "BYTE" => Some(ColUnit::Byte),
            "UTF16" => Some(ColUnit::Utf16),
            "UTF32" => Some(ColUnit::Utf32),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ColUnit::Byte => "BYTE",
            ColUnit::Utf16 => "UTF16",
            ColUnit::Utf32 => "UTF32",
        }
    }
}

/// Unicode normalization form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NormalForm {
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
}

impl NormalForm {
    pub fn parse(s: &str) -> Option<NormalForm> {
        match s.to_ascii_uppercase().as_str() {
            "NFC" => Some(NormalForm::Nfc),
            "NFD" => Some(NormalForm::Nfd),
            "NFKC" => Some(NormalForm::Nfkc),
            "NFKD" => Some(NormalForm::Nfkd),
            _ => None,
        }
    }
}

/// Typed view of the namespace for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeAnatomyConfig {
    pub span_line_base: i32,
    pub span_col_unit: ColUnit,
    pub span_end_exclusive: bool,
    pub normalize_form: NormalForm,
    pub scan_guard_max_files: u64,
    pub scan_guard_require_partition_filter: bool,
    pub policy: PolicySettings,
    pub dml_allow_full_table_delete: bool,
    /// `policy.allowed_locations`, split (empty: any location).
    pub allowed_locations: Vec<String>,
    pub delta_allow_external_files: bool,
}

/// `codeanatomy.policy.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySettings {
    pub allow_ddl: bool,
    pub allow_dml: bool,
    pub allow_copy: bool,
    pub allow_statements: bool,
    pub deterministic: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self { allow_ddl: true, allow_dml: true, allow_copy: true, allow_statements: true, deterministic: false }
    }
}

impl CodeAnatomyConfig {
    /// Reads and validates the namespace from a session's options (native or via FFI).
    /// Unknown `codeanatomy.*` keys and bad values are errors naming the key.
    pub fn from_config_options(options: &ConfigOptions) -> Result<Self> {
        let resolved = NAMESPACE.resolve(options)?;
        // Values were validated against the declared types, so the parses below only fail
        // if a declaration and this mapping disagree: report that as an internal error.
        let internal = |key: &str| {
            df_plugin_api::error::df_error(
                df_plugin_api::error::ErrorCode::Internal,
                format!("codeanatomy.{key}: declared type and typed config disagree"),
            )
        };
        Ok(Self {
            span_line_base: resolved.get_int("span.line_base")? as i32,
            span_col_unit: ColUnit::parse(resolved.get("span.col_unit")?)
                .ok_or_else(|| internal("span.col_unit"))?,
            span_end_exclusive: resolved.get_bool("span.end_exclusive")?,
            normalize_form: NormalForm::parse(resolved.get("normalize.form")?)
                .ok_or_else(|| internal("normalize.form"))?,
            scan_guard_max_files: resolved.get_int("scan_guard.max_files")? as u64,
            scan_guard_require_partition_filter: resolved
                .get_bool("scan_guard.require_partition_filter")?,
            policy: PolicySettings {
                allow_ddl: resolved.get_bool("policy.allow_ddl")?,
                allow_dml: resolved.get_bool("policy.allow_dml")?,
                allow_copy: resolved.get_bool("policy.allow_copy")?,
                allow_statements: resolved.get_bool("policy.allow_statements")?,
                deterministic: resolved.get_bool("policy.deterministic")?,
            },
            dml_allow_full_table_delete: resolved.get_bool("dml.allow_full_table_delete")?,
            allowed_locations: resolved
                .get("policy.allowed_locations")?
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            delta_allow_external_files: resolved.get_bool("delta.allow_external_files")?,
        })
    }
}

impl Default for CodeAnatomyConfig {
    fn default() -> Self {
        Self::from_config_options(&ConfigOptions::default())
            .unwrap_or(Self {
                span_line_base: 0,
                span_col_unit: ColUnit::Byte,
                span_end_exclusive: true,
                normalize_form: NormalForm::Nfkc,
                scan_guard_max_files: 0,
                scan_guard_require_partition_filter: false,
                policy: PolicySettings::default(),
                dml_allow_full_table_delete: false,
                allowed_locations: Vec::new(),
                delta_allow_external_files: false,
            })
    }
}
