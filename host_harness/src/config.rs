//! Plugin configuration namespaces in a Rust host session, validated at `SET` time.
//!
//! datafusion-ffi's own bag (`FFI_ExtensionOptions`) accepts any key under any namespace, so a
//! typo in `SET codeanatomy.scan_gaurd.max_files = 3` would be silently kept. The host registers
//! [`PluginConfigOptions`] in its place: it sits under the same reserved `datafusion_ffi`
//! namespace (DataFusion routes every key of an unknown namespace there, and datafusion-ffi
//! copies it across the boundary exactly like its own bag), knows every installed plugin's
//! declared keys from their manifests, and rejects an unknown key or a bad value when it is
//! `SET`, naming the key and the allowed values. Its entries carry each key's documentation, so
//! `SHOW ALL` and `information_schema.df_settings` list them.

use std::any::Any;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::{DataFusionError, Result};
use df_plugin_api::config::{describe_type, normalize_value};
use df_plugin_api::manifest::{ConfigKeyManifest, ConfigManifest};
use df_plugin_api::{ErrorCode, PluginError};

/// `ConfigEntry::description` is `&'static str`: keep one copy of each documentation string.
fn intern(text: &str) -> &'static str {
    static STRINGS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = STRINGS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = set.get(text) {
        return existing;
    }
    let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

#[derive(Debug)]
struct KeySpec {
    decl: ConfigKeyManifest,
    doc: &'static str,
}

impl KeySpec {
    fn normalize(&self, value: &str) -> Option<String> {
        let words = self.decl.allowed.as_deref().unwrap_or(&[]);
        normalize_value(&self.decl.ty, words, self.decl.min, self.decl.max, value)
    }

    fn describe(&self) -> String {
        describe_type(&self.decl.ty, self.decl.allowed.as_deref().unwrap_or(&[]), self.decl.min, self.decl.max)
    }
}

#[derive(Debug)]
struct NamespaceSpec {
    prefix: String,
    plugin: String,
    keys: BTreeMap<String, KeySpec>,
}

/// The configuration namespaces of the plugins installed in a session, with their values.
#[derive(Debug, Clone, Default)]
pub struct PluginConfigOptions {
    namespaces: Vec<Arc<NamespaceSpec>>,
    /// Full key (`prefix.key`) -> normalized value; unset keys read as their defaults.
    values: BTreeMap<String, String>,
}

fn config_error(message: String) -> DataFusionError {
    PluginError::new(ErrorCode::InvalidConfig, message).into()
}

impl PluginConfigOptions {
    /// Adds `plugin`'s namespace with install-time `values` (already validated by the plugin).
    pub fn add_namespace(&mut self, plugin: &str, manifest: &ConfigManifest, values: impl IntoIterator<Item = (String, String)>) {
        let keys = manifest
            .keys
            .iter()
            .map(|k| (k.key.clone(), KeySpec { decl: k.clone(), doc: intern(&k.doc) }))
            .collect();
        self.namespaces.retain(|ns| ns.prefix != manifest.namespace);
        self.namespaces.push(Arc::new(NamespaceSpec { prefix: manifest.namespace.clone(), plugin: plugin.to_string(), keys }));
        for (key, value) in values {
            self.values.insert(key, value);
        }
    }

    /// The declared default of a plugin key (`prefix.key`), or `None` when no installed plugin
    /// declares it.
    pub fn default_of(&self, key: &str) -> Option<String> {
        let (prefix, inner) = key.split_once('.')?;
        let ns = self.namespaces.iter().find(|ns| ns.prefix == prefix)?;
        ns.keys.get(inner).map(|spec| spec.decl.default.clone())
    }

    /// Whether a plugin's namespace `prefix` is registered.
    pub fn has_namespace(&self, prefix: &str) -> bool {
        self.namespaces.iter().any(|ns| ns.prefix == prefix)
    }

    fn validate(&self, key: &str, value: &str) -> Result<String> {
        let Some((prefix, inner)) = key.split_once('.') else {
            return Err(config_error(format!("configuration key '{key}' has no namespace; expected <namespace>.<key>")));
        };
        let Some(ns) = self.namespaces.iter().find(|ns| ns.prefix == prefix) else {
            let known: Vec<&str> = self.namespaces.iter().map(|ns| ns.prefix.as_str()).collect();
            return Err(config_error(format!(
                "unknown configuration namespace '{prefix}' (in key '{key}'); namespaces of installed plugins: {}",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        };
        let Some(spec) = ns.keys.get(inner) else {
            let known: Vec<String> = ns.keys.keys().map(|k| format!("{prefix}.{k}")).collect();
            return Err(config_error(format!(
                "unknown configuration key '{key}' of plugin '{}'; known keys: {}",
                ns.plugin,
                known.join(", ")
            )));
        };
        spec.normalize(value).ok_or_else(|| {
            let shown = if df_plugin_api::redact::is_secret_key(key) { df_plugin_api::redact::REDACTED } else { value };
            config_error(format!("invalid value '{shown}' for configuration key '{key}': expected {}", spec.describe()))
        })
    }
}

impl ConfigExtension for PluginConfigOptions {
    const PREFIX: &'static str = datafusion::common::config::DATAFUSION_FFI_CONFIG_NAMESPACE;
}

impl ExtensionOptions for PluginConfigOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        // A copy made by datafusion-ffi may prefix keys with its namespace.
        let mut key = key;
        while let Some(rest) = key.strip_prefix("datafusion_ffi.") {
            key = rest;
        }
        let normalized = self.validate(key, value)?;
        tracing::debug!(target: "df_plugin_host", %key, value = %normalized, "plugin configuration set");
        self.values.insert(key.to_string(), normalized);
        Ok(())
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        let mut out = Vec::new();
        for ns in &self.namespaces {
            for (inner, spec) in &ns.keys {
                let key = format!("{}.{inner}", ns.prefix);
                let value = self.values.get(&key).cloned().unwrap_or_else(|| spec.decl.default.clone());
                out.push(ConfigEntry { key, value: Some(value), description: spec.doc });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::config::ConfigOptions;

    fn manifest() -> ConfigManifest {
        ConfigManifest {
            namespace: "demo".into(),
            keys: vec![
                ConfigKeyManifest { key: "flag".into(), ty: "bool".into(), default: "false".into(), doc: "a flag".into(), allowed: None, min: None, max: None },
                ConfigKeyManifest {
                    key: "unit".into(),
                    ty: "enum".into(),
                    default: "BYTE".into(),
                    doc: "unit".into(),
                    allowed: Some(vec!["BYTE".into(), "UTF16".into()]),
                    min: None,
                    max: None,
                },
            ],
        }
    }

    #[test]
    fn set_validates_keys_and_values_and_entries_carry_docs() {
        let mut bag = PluginConfigOptions::default();
        bag.add_namespace("demo_plugin", &manifest(), []);
        let mut options = ConfigOptions::new();
        options.extensions.insert(bag);
        options.set("demo.unit", "utf16").unwrap();
        let err = options.set("demo.unti", "x").unwrap_err().to_string();
        assert!(err.contains("'demo.unti'") && err.contains("demo.unit") && err.contains("invalid_config"), "{err}");
        let err = options.set("demo.flag", "maybe").unwrap_err().to_string();
        assert!(err.contains("'maybe'") && err.contains("true or false"), "{err}");
        let err = options.set("other.x", "1").unwrap_err().to_string();
        assert!(err.contains("'other'") && err.contains("demo"), "{err}");
        let entries = options.entries();
        let unit = entries.iter().find(|e| e.key == "demo.unit").unwrap();
        assert_eq!((unit.value.as_deref(), unit.description), (Some("UTF16"), "unit"));
        // The plugin reads the same values whichever bag holds them.
        let seen = df_plugin_api::config::namespace_entries(&options, "demo");
        assert!(seen.contains(&("unit".to_string(), "UTF16".to_string())), "{seen:?}");
    }
}
