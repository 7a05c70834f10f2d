//! Declared, validated configuration namespaces.
//!
//! A plugin declares its namespace as a `const` [`ConfigNamespaceDecl`]: every key with its
//! type, default and documentation. The same declaration
//! - is embedded in the manifest (so hosts and `dfplugin inspect` can list the keys),
//! - validates install options (JSON) with errors that name the key and the allowed values,
//! - builds the `FFI_ExtensionOptions` bag the host registers (`SET prefix.key = value`),
//! - reads and validates the values at execution time ([`ConfigNamespaceDecl::resolve`]).
//!
//! datafusion-ffi routes every unknown namespace into one `datafusion_ffi` bag and does not
//! validate at `SET` time, so [`ConfigNamespaceDecl::resolve`] is where a typo or a bad value
//! becomes an error: at the first statement that reads the namespace.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::config::ConfigOptions;
use datafusion_ffi::config::extension_options::FFI_ExtensionOptions;

use crate::error::{ErrorCode, PluginError};

/// The namespace datafusion-ffi files every foreign option under when it copies a session's
/// options across the boundary (`datafusion_ffi.<our key>`).
const FFI_NAMESPACE_PREFIX: &str = "datafusion_ffi.";

/// The type of a configuration value; decides how values are checked and normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` or `false` (case-insensitive).
    Bool,
    /// A signed integer within `min..=max`.
    Int { min: i64, max: i64 },
    /// One of the listed words (case-insensitive; normalized to the listed spelling).
    Enum(&'static [&'static str]),
    /// Any UTF-8 text.
    String,
}

impl ConfigType {
    /// Short human description used in docs and error messages.
    pub fn describe(&self) -> String {
        match self {
            ConfigType::Bool => "boolean (true or false)".to_string(),
            ConfigType::Int { min, max } => format!("integer in {min}..={max}"),
            ConfigType::Enum(words) => format!("one of {}", words.join(", ")),
            ConfigType::String => "string".to_string(),
        }
    }

    /// Name of the type as written in the manifest.
    pub const fn name(&self) -> &'static str {
        match self {
            ConfigType::Bool => "bool",
            ConfigType::Int { .. } => "int",
            ConfigType::Enum(_) => "enum",
            ConfigType::String => "string",
        }
    }

    /// Checks `value` and returns its normalized spelling.
    pub fn normalize(&self, value: &str) -> Option<String> {
        match self {
            ConfigType::Bool => normalize_value::<&str>("bool", &[], None, None, value),
            ConfigType::Int { min, max } => normalize_value::<&str>("int", &[], Some(*min), Some(*max), value),
            ConfigType::Enum(words) => normalize_value("enum", words, None, None, value),
            ConfigType::String => normalize_value::<&str>("string", &[], None, None, value),
        }
    }
}

/// Checks `value` against a type as the manifest writes it (`bool`, `int` with `min`/`max`,
/// `enum` with its words, `string`) and returns its normalized spelling. Shared by plugins
/// (declared types) and hosts (which validate `SET` from the manifest alone).
pub fn normalize_value<S: AsRef<str>>(ty: &str, words: &[S], min: Option<i64>, max: Option<i64>, value: &str) -> Option<String> {
    let trimmed = value.trim();
    match ty {
        "bool" => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Some("true".to_string()),
            "false" => Some("false".to_string()),
            _ => None,
        },
        "int" => trimmed
            .parse::<i64>()
            .ok()
            .filter(|v| min.is_none_or(|m| *v >= m) && max.is_none_or(|m| *v <= m))
            .map(|v| v.to_string()),
        "enum" => words.iter().find(|w| w.as_ref().eq_ignore_ascii_case(trimmed)).map(|w| w.as_ref().to_string()),
        _ => Some(value.to_string()),
    }
}

/// Short human description of a type as the manifest writes it.
pub fn describe_type<S: AsRef<str>>(ty: &str, words: &[S], min: Option<i64>, max: Option<i64>) -> String {
    match ty {
        "bool" => "boolean (true or false)".to_string(),
        "int" => format!("integer in {}..={}", min.unwrap_or(i64::MIN), max.unwrap_or(i64::MAX)),
        "enum" => format!("one of {}", words.iter().map(|w| w.as_ref()).collect::<Vec<_>>().join(", ")),
        _ => "string".to_string(),
    }
}

/// One key of a namespace.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKeyDecl {
    /// Key below the namespace prefix, e.g. `span.line_base`.
    pub key: &'static str,
    pub ty: ConfigType,
    /// Default value, in the normalized spelling of `ty`.
    pub default: &'static str,
    pub doc: &'static str,
}

/// A plugin's configuration namespace: `prefix.key` for every declared key.
#[derive(Debug, Clone, Copy)]
pub struct ConfigNamespaceDecl {
    pub prefix: &'static str,
    pub keys: &'static [ConfigKeyDecl],
}

/// Values of a namespace after validation, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedConfig {
    prefix: &'static str,
    values: BTreeMap<&'static str, String>,
}

impl ResolvedConfig {
    /// The normalized value of `key` (always present for declared keys).
    pub fn get(&self, key: &str) -> Result<&str, PluginError> {
        self.values.get(key).map(String::as_str).ok_or_else(|| {
            PluginError::new(
                ErrorCode::InvalidConfig,
                format!("configuration key '{}.{key}' is not declared", self.prefix),
            )
        })
    }

    pub fn get_bool(&self, key: &str) -> Result<bool, PluginError> {
        Ok(self.get(key)? == "true")
    }

    pub fn get_int(&self, key: &str) -> Result<i64, PluginError> {
        let raw = self.get(key)?;
        raw.parse::<i64>().map_err(|_| {
            PluginError::new(
                ErrorCode::InvalidConfig,
                format!("configuration key '{}.{key}' holds '{raw}', expected an integer", self.prefix),
            )
        })
    }

    /// All values as `(full key, value)` pairs, sorted by key.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.values.iter().map(|(k, v)| (format!("{}.{k}", self.prefix), v.clone())).collect()
    }
}

impl ConfigNamespaceDecl {
    /// The declaration of `key` (below the prefix).
    pub fn key(&self, key: &str) -> Option<&'static ConfigKeyDecl> {
        self.keys.iter().find(|k| k.key == key)
    }

    fn known_keys(&self) -> String {
        self.keys.iter().map(|k| format!("{}.{}", self.prefix, k.key)).collect::<Vec<_>>().join(", ")
    }

    /// Validates one value for `key` (below the prefix) and returns its normalized spelling.
    pub fn validate(&self, key: &str, value: &str) -> Result<String, PluginError> {
        let Some(decl) = self.key(key) else {
            return Err(PluginError::new(
                ErrorCode::InvalidConfig,
                format!(
                    "unknown configuration key '{}.{key}'; known keys: {}",
                    self.prefix,
                    self.known_keys()
                ),
            ));
        };
        decl.ty.normalize(value).ok_or_else(|| {
            PluginError::new(
                ErrorCode::InvalidConfig,
                format!(
                    "invalid value '{}' for configuration key '{}.{key}': expected {}",
                    if crate::redact::is_secret_key(key) { crate::redact::REDACTED } else { value },
                    self.prefix,
                    decl.ty.describe()
                ),
            )
        })
    }

    /// Defaults for every key, by key below the prefix.
    pub fn defaults(&self) -> BTreeMap<&'static str, String> {
        self.keys.iter().map(|k| (k.key, k.default.to_string())).collect()
    }

    /// Parses install options: a JSON object whose keys are namespace keys, written either
    /// below the prefix (`"span.line_base"`) or in full (`"codeanatomy.span.line_base"`), and
    /// whose values are JSON scalars. Unknown keys and bad values are errors naming the key.
    /// An empty string or `null` means "no options".
    pub fn parse_options_json(&self, json: &str) -> Result<BTreeMap<&'static str, String>, PluginError> {
        let mut values = self.defaults();
        let trimmed = json.trim();
        if trimmed.is_empty() || trimmed == "null" {
            return Ok(values);
        }
        let parsed: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
            PluginError::new(ErrorCode::InvalidOptions, format!("options are not valid JSON: {e}; expected an object such as {{\"{}.<key>\": <value>}}", self.prefix))
        })?;
        let serde_json::Value::Object(map) = parsed else {
            return Err(PluginError::new(
                ErrorCode::InvalidOptions,
                format!("options must be a JSON object, found {}", json_kind(&parsed)),
            ));
        };
        for (raw_key, raw_value) in map {
            let key = raw_key
                .strip_prefix(self.prefix)
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(raw_key.as_str());
            let text = match &raw_value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                other => {
                    return Err(PluginError::new(
                        ErrorCode::InvalidOptions,
                        format!(
                            "option '{}.{key}' must be a string, number or boolean, found {}",
                            self.prefix,
                            json_kind(other)
                        ),
                    ))
                }
            };
            let normalized = self.validate(key, &text).map_err(|e| e.with_code(ErrorCode::InvalidOptions))?;
            // `validate` succeeded, so the key is declared.
            if let Some(decl) = self.key(key) {
                values.insert(decl.key, normalized);
            }
        }
        Ok(values)
    }

    /// Builds the extension-options bag the host registers with
    /// `SessionConfig::with_option_extension`, holding every key (defaults or `values`).
    pub fn to_ffi_options(&self, values: &BTreeMap<&'static str, String>) -> FFI_ExtensionOptions {
        let mut options = FFI_ExtensionOptions::default();
        for decl in self.keys {
            let value = values.get(decl.key).cloned().unwrap_or_else(|| decl.default.to_string());
            // `set` on the plain FFI bag only fails for keys without a namespace; ours have one.
            let _ = datafusion::config::ExtensionOptions::set(
                &mut options,
                &format!("{}.{}", self.prefix, decl.key),
                &value,
            );
        }
        options
    }

    /// Reads this namespace from a session's options, validating every key under the prefix.
    ///
    /// Works for options that never crossed the boundary (native registration) and for
    /// options that datafusion-ffi copied into its `datafusion_ffi` bag. Keys of other
    /// namespaces are ignored; an unknown key or bad value under our prefix is an error,
    /// which is how a `SET` typo surfaces (datafusion-ffi cannot reject it at `SET` time).
    pub fn resolve(&self, options: &ConfigOptions) -> Result<ResolvedConfig, PluginError> {
        let mut values = self.defaults();
        for (inner, value) in namespace_entries(options, self.prefix) {
            let normalized = self.validate(&inner, &value)?;
            if let Some(decl) = self.key(&inner) {
                values.insert(decl.key, normalized);
            }
        }
        Ok(ResolvedConfig { prefix: self.prefix, values })
    }
}

/// The `(key below prefix, value)` pairs of namespace `prefix` in a session's options, from
/// whichever extension holds them: datafusion-ffi's bag (`FFI_ExtensionOptions`, keys possibly
/// prefixed `datafusion_ffi.` after a copy across the boundary) or a host's validating bag
/// registered under the same `datafusion_ffi` namespace.
pub fn namespace_entries(options: &ConfigOptions, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (_, extension) in options.extensions.iter() {
        for entry in extension.entries() {
            let Some(value) = entry.value else { continue };
            let mut key = entry.key.as_str();
            while let Some(rest) = key.strip_prefix(FFI_NAMESPACE_PREFIX) {
                key = rest;
            }
            if let Some(inner) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) {
                out.push((inner.to_string(), value));
            }
        }
    }
    out
}

/// A value derived from session options, kept for the last options object it was made for.
///
/// Hosts hold one `Arc<ConfigOptions>` per session configuration for as long as it does not
/// change, so comparing the `Arc` (not the ~200 values) finds the value again; holding the
/// `Arc` keeps its address from being reused by other options.
#[derive(Debug)]
pub struct LastForOptions<T>(Mutex<Option<(Arc<ConfigOptions>, Arc<T>)>>);

impl<T> Default for LastForOptions<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LastForOptions<T> {
    pub const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// The value for `options`, made by `make` if they are not the last options seen.
    pub fn get_or_try_make<E>(&self, options: &Arc<ConfigOptions>, make: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, value)) = last.as_ref() {
            if Arc::ptr_eq(seen, options) {
                return Ok(Arc::clone(value));
            }
        }
        let value = Arc::new(make()?);
        *last = Some((Arc::clone(options), Arc::clone(&value)));
        Ok(value)
    }

    /// [`Self::get_or_try_make`] for values that are always made.
    pub fn get_or_make(&self, options: &Arc<ConfigOptions>, make: impl FnOnce() -> T) -> Arc<T> {
        match self.get_or_try_make(options, || Ok::<T, std::convert::Infallible>(make())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

/// The session's values of namespace `prefix` as a JSON object (`{"<prefix>.<key>": "value"}`),
/// the form in which hosts send them to ABI 1.3 entry points.
pub fn settings_json(options: &ConfigOptions, prefix: &str) -> String {
    let map: serde_json::Map<String, serde_json::Value> = namespace_entries(options, prefix)
        .into_iter()
        .map(|(k, v)| (format!("{prefix}.{k}"), serde_json::Value::String(v)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: ConfigNamespaceDecl = ConfigNamespaceDecl {
        prefix: "demo",
        keys: &[
            ConfigKeyDecl { key: "flag", ty: ConfigType::Bool, default: "false", doc: "a flag" },
            ConfigKeyDecl { key: "n", ty: ConfigType::Int { min: 0, max: 1 }, default: "0", doc: "n" },
            ConfigKeyDecl { key: "unit", ty: ConfigType::Enum(&["BYTE", "UTF16"]), default: "BYTE", doc: "u" },
        ],
    };

    #[test]
    fn options_json_rejects_unknown_key_naming_it() {
        let err = NS.parse_options_json(r#"{"flg": true}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidOptions);
        assert!(err.message().contains("'demo.flg'"), "{}", err.message());
        assert!(err.message().contains("demo.flag"), "{}", err.message());
    }

    #[test]
    fn options_json_rejects_bad_value_naming_allowed_values() {
        let err = NS.parse_options_json(r#"{"demo.unit": "utf32"}"#).unwrap_err();
        assert!(err.message().contains("demo.unit") && err.message().contains("BYTE, UTF16"), "{}", err.message());
        let err = NS.parse_options_json(r#"{"n": 2}"#).unwrap_err();
        assert!(err.message().contains("0..=1"), "{}", err.message());
    }

    #[test]
    fn options_json_normalizes_and_keeps_defaults() {
        let v = NS.parse_options_json(r#"{"unit": "utf16", "flag": true}"#).unwrap();
        assert_eq!(v["unit"], "UTF16");
        assert_eq!(v["flag"], "true");
        assert_eq!(v["n"], "0");
    }

    #[test]
    fn resolve_reads_set_values_through_ffi_bag_and_rejects_typos() {
        let mut options = ConfigOptions::new();
        options.extensions.insert(NS.to_ffi_options(&NS.defaults()));
        options.set("demo.unit", "utf16").unwrap();
        let resolved = NS.resolve(&options).unwrap();
        assert_eq!(resolved.get("unit").unwrap(), "UTF16");

        // The FFI copy prefixes keys with `datafusion_ffi.`; resolution must see through it.
        let copied: ConfigOptions =
            datafusion_ffi::config::FFI_ConfigOptions::from(&options).try_into().unwrap();
        assert_eq!(NS.resolve(&copied).unwrap().get("unit").unwrap(), "UTF16");

        options.set("demo.unti", "x").unwrap();
        let err = NS.resolve(&options).unwrap_err();
        assert!(err.message().contains("demo.unti"), "{}", err.message());
    }
}
