//! The plugin manifest: what a library is, what it was built against, and what it exports.
//!
//! A plugin declares its manifest as a `const` [`ManifestDecl`]. The export macro encodes that
//! declaration at compile time into a byte array placed in a dedicated link section
//! ([`EMBEDDED_SECTION`]), so a host can read it from the file **without loading the library**.
//! The loaded library also returns a *live* manifest built at run time from the objects it
//! really exports; the host checks both agree.
//!
//! On-disk layout of the section: [`EMBEDDED_MAGIC`] (8 bytes), format version (u32 LE),
//! JSON length (u32 LE), then the JSON text of a [`Manifest`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigNamespaceDecl, ConfigType};
use crate::version::{AbiVersion, ARROW_VERSION, DATAFUSION_FFI_VERSION, DATAFUSION_VERSION};

/// ELF/PE section holding the embedded manifest.
pub const EMBEDDED_SECTION: &str = ".dfplugin_manifest";
/// Mach-O `segment,section` holding the embedded manifest.
pub const EMBEDDED_SECTION_MACHO: &str = "__DATA,__dfplugin";
/// First bytes of the embedded manifest.
pub const EMBEDDED_MAGIC: [u8; 8] = *b"DFPLUGIN";
/// Version of the embedded layout (header + JSON).
pub const EMBEDDED_FORMAT: u32 = 1;
const HEADER_LEN: usize = 16;

/// A kind of object a plugin can carry. The order of [`Capability::ALL`] is the bit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    ScalarUdf,
    AggregateUdf,
    WindowUdf,
    TableFunction,
    TableProviderFactory,
    TableProvider,
    PhysicalOptimizerRule,
    AnalyzerRule,
    RelationPlanner,
    ConfigNamespace,
    Dml,
}

impl Capability {
    pub const ALL: [Capability; 11] = [
        Capability::ScalarUdf,
        Capability::AggregateUdf,
        Capability::WindowUdf,
        Capability::TableFunction,
        Capability::TableProviderFactory,
        Capability::TableProvider,
        Capability::PhysicalOptimizerRule,
        Capability::AnalyzerRule,
        Capability::RelationPlanner,
        Capability::ConfigNamespace,
        Capability::Dml,
    ];

    pub const fn bit(self) -> u64 {
        1u64 << (self as u32)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Capability::ScalarUdf => "scalar_udf",
            Capability::AggregateUdf => "aggregate_udf",
            Capability::WindowUdf => "window_udf",
            Capability::TableFunction => "table_function",
            Capability::TableProviderFactory => "table_provider_factory",
            Capability::TableProvider => "table_provider",
            Capability::PhysicalOptimizerRule => "physical_optimizer_rule",
            Capability::AnalyzerRule => "analyzer_rule",
            Capability::RelationPlanner => "relation_planner",
            Capability::ConfigNamespace => "config_namespace",
            Capability::Dml => "dml",
        }
    }

    pub fn from_name(name: &str) -> Option<Capability> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Whether the capability is carried by named objects (as opposed to a namespace or a
    /// behaviour such as DML).
    pub const fn is_object_kind(self) -> bool {
        !matches!(self, Capability::ConfigNamespace | Capability::Dml)
    }

    /// The first ABI minor (of major 1) whose root module can carry this capability.
    /// `None`: declared in the capability set, not yet carried by any ABI version.
    pub const fn carried_since_minor(self) -> Option<u16> {
        match self {
            Capability::ScalarUdf
            | Capability::AggregateUdf
            | Capability::WindowUdf
            | Capability::TableFunction
            | Capability::PhysicalOptimizerRule
            | Capability::ConfigNamespace => Some(0),
            Capability::TableProviderFactory | Capability::TableProvider => Some(2),
            Capability::AnalyzerRule | Capability::RelationPlanner | Capability::Dml => Some(3),
        }
    }
}

/// A set of [`Capability`] values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    pub const EMPTY: Capabilities = Capabilities(0);
    /// Every bit this version of the ABI crate knows.
    pub const KNOWN_BITS: u64 = (1u64 << Capability::ALL.len()) - 1;

    pub const fn with(self, c: Capability) -> Self {
        Capabilities(self.0 | c.bit())
    }

    pub const fn contains(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// Bits this crate does not know (a newer peer's capabilities).
    pub const fn unknown_bits(self) -> u64 {
        self.0 & !Self::KNOWN_BITS
    }
}

/// An exported object, named in the manifest. Only object-bearing capabilities are kinds.
#[derive(Debug, Clone, Copy)]
pub struct ObjectDecl {
    pub kind: Capability,
    pub name: &'static str,
}

impl ObjectDecl {
    pub const fn new(kind: Capability, name: &'static str) -> Self {
        Self { kind, name }
    }
}

/// Identifies the build that produced a library (not the package version): commit, profile,
/// compiler and target. Fill it with [`build_info!`](crate::build_info) in the plugin crate.
#[derive(Debug, Clone, Copy)]
pub struct BuildInfo {
    pub git_commit: &'static str,
    pub profile: &'static str,
    pub rustc: &'static str,
    pub target: &'static str,
}

/// A manifest as declared by a plugin, usable in `const` context.
///
/// ```
/// use df_plugin_api::manifest::{BuildInfo, Capability, ManifestDecl, ObjectDecl};
/// const BUILD: BuildInfo = BuildInfo {
///     git_commit: "0123abc", profile: "release", rustc: "rustc 1.95.0", target: "x86_64-unknown-linux-gnu",
/// };
/// const MANIFEST: ManifestDecl = ManifestDecl::new("demo", "0.1.0", BUILD)
///     .with_objects(&[ObjectDecl::new(Capability::ScalarUdf, "demo_fn")]);
/// assert!(MANIFEST.capabilities.contains(Capability::ScalarUdf));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ManifestDecl {
    pub abi: AbiVersion,
    pub name: &'static str,
    pub version: &'static str,
    pub build: BuildInfo,
    pub datafusion: &'static str,
    pub datafusion_ffi: &'static str,
    pub arrow: &'static str,
    pub capabilities: Capabilities,
    pub config: Option<&'static ConfigNamespaceDecl>,
    pub objects: &'static [ObjectDecl],
}

impl ManifestDecl {
    /// A manifest for this ABI and these DataFusion/arrow versions, with nothing exported yet.
    pub const fn new(name: &'static str, version: &'static str, build: BuildInfo) -> Self {
        Self {
            abi: AbiVersion::CURRENT,
            name,
            version,
            build,
            datafusion: DATAFUSION_VERSION,
            datafusion_ffi: DATAFUSION_FFI_VERSION,
            arrow: ARROW_VERSION,
            capabilities: Capabilities::EMPTY,
            config: None,
            objects: &[],
        }
    }

    /// Declares the exported objects; their kinds join the capability set.
    pub const fn with_objects(mut self, objects: &'static [ObjectDecl]) -> Self {
        self.objects = objects;
        let mut i = 0;
        while i < objects.len() {
            self.capabilities = self.capabilities.with(objects[i].kind);
            i += 1;
        }
        self
    }

    /// Declares the configuration namespace.
    pub const fn with_config(mut self, config: &'static ConfigNamespaceDecl) -> Self {
        self.config = Some(config);
        self.capabilities = self.capabilities.with(Capability::ConfigNamespace);
        self
    }

    /// Adds a capability that has no named objects (e.g. DML on providers).
    pub const fn with_capability(mut self, c: Capability) -> Self {
        self.capabilities = self.capabilities.with(c);
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Owned manifest (what hosts parse and compare)

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginIdent {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildManifest {
    /// `<commit>/<profile>/<rustc version>`: identifies this exact build.
    pub id: String,
    pub git_commit: String,
    pub profile: String,
    pub rustc: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigKeyManifest {
    pub key: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub default: String,
    pub doc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigManifest {
    pub namespace: String,
    pub keys: Vec<ConfigKeyManifest>,
}

/// The manifest as JSON-serializable data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub abi: AbiVersion,
    pub plugin: PluginIdent,
    pub build: BuildManifest,
    pub target: String,
    pub datafusion: String,
    pub datafusion_ffi: String,
    pub arrow: String,
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub config: Option<ConfigManifest>,
    /// Exported object names by capability name, sorted.
    pub objects: BTreeMap<String, Vec<String>>,
}

/// `<commit>/<profile>/<rustc>`.
pub fn build_id(build: &BuildInfo) -> String {
    format!("{}/{}/{}", build.git_commit, build.profile, build.rustc)
}

impl Manifest {
    /// The owned form of a declaration.
    pub fn from_decl(decl: &ManifestDecl) -> Self {
        let mut objects: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for o in decl.objects {
            objects.entry(o.kind.name().to_string()).or_default().push(o.name.to_string());
        }
        for names in objects.values_mut() {
            names.sort();
        }
        Manifest {
            abi: decl.abi,
            plugin: PluginIdent { name: decl.name.into(), version: decl.version.into() },
            build: BuildManifest {
                id: build_id(&decl.build),
                git_commit: decl.build.git_commit.into(),
                profile: decl.build.profile.into(),
                rustc: decl.build.rustc.into(),
            },
            target: decl.build.target.into(),
            datafusion: decl.datafusion.into(),
            datafusion_ffi: decl.datafusion_ffi.into(),
            arrow: decl.arrow.into(),
            capabilities: decl.capabilities.iter().map(|c| c.name().to_string()).collect(),
            config: decl.config.map(config_manifest),
            objects,
        }
    }

    /// Parses the capability names; an unknown name is returned as the error.
    pub fn capability_set(&self) -> Result<Capabilities, String> {
        let mut set = Capabilities::EMPTY;
        for name in &self.capabilities {
            set = set.with(Capability::from_name(name).ok_or_else(|| name.clone())?);
        }
        Ok(set)
    }

    /// Names exported for `kind` (empty when none).
    pub fn objects_of(&self, kind: Capability) -> &[String] {
        self.objects.get(kind.name()).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Field-by-field differences, for error messages (`field: left != right`).
    pub fn differences(&self, other: &Manifest) -> Vec<String> {
        let (Ok(a), Ok(b)) = (serde_json::to_value(self), serde_json::to_value(other)) else {
            return vec!["manifests could not be compared".to_string()];
        };
        let mut out = Vec::new();
        diff_values("", &a, &b, &mut out);
        out
    }
}

fn diff_values(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(ma), serde_json::Value::Object(mb)) => {
            let keys: std::collections::BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                let null = serde_json::Value::Null;
                diff_values(&p, ma.get(k).unwrap_or(&null), mb.get(k).unwrap_or(&null), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

fn config_manifest(ns: &ConfigNamespaceDecl) -> ConfigManifest {
    ConfigManifest {
        namespace: ns.prefix.to_string(),
        keys: ns
            .keys
            .iter()
            .map(|k| {
                let (allowed, min, max) = match k.ty {
                    ConfigType::Enum(words) => (Some(words.iter().map(|w| w.to_string()).collect()), None, None),
                    ConfigType::Int { min, max } => (None, Some(min), Some(max)),
                    _ => (None, None, None),
                };
                ConfigKeyManifest {
                    key: k.key.to_string(),
                    ty: k.ty.name().to_string(),
                    default: k.default.to_string(),
                    doc: k.doc.to_string(),
                    allowed,
                    min,
                    max,
                }
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Compile-time encoding (const fn JSON writer)

/// A JSON writer usable in `const` context. With `N == 0` it only counts bytes.
#[doc(hidden)]
pub struct ConstWriter<const N: usize> {
    pub buf: [u8; N],
    pub len: usize,
}

impl<const N: usize> ConstWriter<N> {
    const fn new() -> Self {
        Self { buf: [0; N], len: 0 }
    }

    const fn byte(&mut self, b: u8) {
        if self.len < N {
            self.buf[self.len] = b;
        }
        self.len += 1;
    }

    const fn raw(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            self.byte(bytes[i]);
            i += 1;
        }
    }

    const fn string(&mut self, s: &str) {
        self.byte(b'"');
        self.string_body(s);
        self.byte(b'"');
    }

    /// JSON-escaped text without the quotes.
    const fn string_body(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'"' || b == b'\\' {
                self.byte(b'\\');
                self.byte(b);
            } else if b < 0x20 {
                self.raw("\\u00");
                self.byte(HEX[(b >> 4) as usize]);
                self.byte(HEX[(b & 0xf) as usize]);
            } else {
                self.byte(b);
            }
            i += 1;
        }
    }

    const fn int(&mut self, v: i64) {
        if v < 0 {
            self.byte(b'-');
        }
        let mut u = v.unsigned_abs();
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (u % 10) as u8;
            n += 1;
            u /= 10;
            if u == 0 {
                break;
            }
        }
        while n > 0 {
            n -= 1;
            self.byte(digits[n]);
        }
    }

    const fn key(&mut self, k: &str) {
        self.string(k);
        self.byte(b':');
    }

    const fn build_id(&mut self, b: &BuildInfo) {
        // Must match `build_id()`: "<commit>/<profile>/<rustc>".
        self.byte(b'"');
        self.string_body(b.git_commit);
        self.byte(b'/');
        self.string_body(b.profile);
        self.byte(b'/');
        self.string_body(b.rustc);
        self.byte(b'"');
    }

    const fn manifest(&mut self, m: &ManifestDecl) {
        self.byte(b'{');
        self.key("abi");
        self.raw("{\"major\":");
        self.int(m.abi.major as i64);
        self.raw(",\"minor\":");
        self.int(m.abi.minor as i64);
        self.raw("},");
        self.key("plugin");
        self.byte(b'{');
        self.key("name");
        self.string(m.name);
        self.byte(b',');
        self.key("version");
        self.string(m.version);
        self.raw("},");
        self.key("build");
        self.byte(b'{');
        self.key("id");
        self.build_id(&m.build);
        self.byte(b',');
        self.key("git_commit");
        self.string(m.build.git_commit);
        self.byte(b',');
        self.key("profile");
        self.string(m.build.profile);
        self.byte(b',');
        self.key("rustc");
        self.string(m.build.rustc);
        self.raw("},");
        self.key("target");
        self.string(m.build.target);
        self.byte(b',');
        self.key("datafusion");
        self.string(m.datafusion);
        self.byte(b',');
        self.key("datafusion_ffi");
        self.string(m.datafusion_ffi);
        self.byte(b',');
        self.key("arrow");
        self.string(m.arrow);
        self.byte(b',');
        self.key("capabilities");
        self.byte(b'[');
        let mut first = true;
        let mut i = 0;
        while i < Capability::ALL.len() {
            let c = Capability::ALL[i];
            if m.capabilities.contains(c) {
                if !first {
                    self.byte(b',');
                }
                self.string(c.name());
                first = false;
            }
            i += 1;
        }
        // Bits this crate cannot name are written as "bit<N>" so a host refuses them.
        let mut bit = Capability::ALL.len();
        while bit < 64 {
            if m.capabilities.0 & (1u64 << bit) != 0 {
                if !first {
                    self.byte(b',');
                }
                self.raw("\"bit");
                self.int(bit as i64);
                self.byte(b'"');
                first = false;
            }
            bit += 1;
        }
        self.raw("],");
        self.key("config");
        match m.config {
            None => self.raw("null"),
            Some(ns) => self.config(ns),
        }
        self.byte(b',');
        self.key("objects");
        self.objects(m.objects);
        self.byte(b'}');
    }

    const fn config(&mut self, ns: &ConfigNamespaceDecl) {
        self.byte(b'{');
        self.key("namespace");
        self.string(ns.prefix);
        self.byte(b',');
        self.key("keys");
        self.byte(b'[');
        let mut i = 0;
        while i < ns.keys.len() {
            let k = &ns.keys[i];
            if i > 0 {
                self.byte(b',');
            }
            self.byte(b'{');
            self.key("key");
            self.string(k.key);
            self.byte(b',');
            self.key("type");
            self.string(k.ty.name());
            self.byte(b',');
            self.key("default");
            self.string(k.default);
            self.byte(b',');
            self.key("doc");
            self.string(k.doc);
            match k.ty {
                ConfigType::Enum(words) => {
                    self.byte(b',');
                    self.key("allowed");
                    self.byte(b'[');
                    let mut w = 0;
                    while w < words.len() {
                        if w > 0 {
                            self.byte(b',');
                        }
                        self.string(words[w]);
                        w += 1;
                    }
                    self.byte(b']');
                }
                ConfigType::Int { min, max } => {
                    self.byte(b',');
                    self.key("min");
                    self.int(min);
                    self.byte(b',');
                    self.key("max");
                    self.int(max);
                }
                _ => {}
            }
            self.byte(b'}');
            i += 1;
        }
        self.raw("]}");
    }

    /// Objects grouped by kind (kinds in capability order, names sorted as `Manifest` does).
    const fn objects(&mut self, objects: &[ObjectDecl]) {
        self.byte(b'{');
        let mut first_kind = true;
        // Kinds in alphabetical order of their names, matching the BTreeMap of `Manifest`.
        let order = sorted_kind_order();
        let mut k = 0;
        while k < order.len() {
            let kind = order[k];
            if has_kind(objects, kind) {
                if !first_kind {
                    self.byte(b',');
                }
                first_kind = false;
                self.key(kind.name());
                self.byte(b'[');
                // Selection by ascending name without allocation.
                let mut last: Option<&str> = None;
                let mut first_name = true;
                loop {
                    let next = next_name(objects, kind, last);
                    match next {
                        None => break,
                        Some(name) => {
                            if !first_name {
                                self.byte(b',');
                            }
                            first_name = false;
                            self.string(name);
                            last = Some(name);
                        }
                    }
                }
                self.byte(b']');
            }
            k += 1;
        }
        self.byte(b'}');
    }
}

const fn has_kind(objects: &[ObjectDecl], kind: Capability) -> bool {
    let mut i = 0;
    while i < objects.len() {
        if objects[i].kind as u32 == kind as u32 {
            return true;
        }
        i += 1;
    }
    false
}

const fn str_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// The smallest name of `kind` greater than `after` (duplicates collapse; hosts refuse them).
const fn next_name<'a>(objects: &'a [ObjectDecl], kind: Capability, after: Option<&str>) -> Option<&'a str> {
    let mut best: Option<&str> = None;
    let mut i = 0;
    while i < objects.len() {
        let o = &objects[i];
        if o.kind as u32 == kind as u32 {
            let greater = match after {
                None => true,
                Some(a) => str_less(a, o.name),
            };
            if greater {
                best = match best {
                    None => Some(o.name),
                    Some(b) => {
                        if str_less(o.name, b) {
                            Some(o.name)
                        } else {
                            Some(b)
                        }
                    }
                };
            }
        }
        i += 1;
    }
    best
}

const fn sorted_kind_order() -> [Capability; 11] {
    let mut order = Capability::ALL;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() {
            if str_less(order[j].name(), order[i].name()) {
                let t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            j += 1;
        }
        i += 1;
    }
    order
}

/// Length in bytes of the embedded form of `m` (header + JSON).
pub const fn embedded_len(m: &ManifestDecl) -> usize {
    let mut w = ConstWriter::<0>::new();
    w.manifest(m);
    HEADER_LEN + w.len
}

/// The embedded form of `m`; `N` must be [`embedded_len`]`(m)` (checked at compile time).
pub const fn embed<const N: usize>(m: &ManifestDecl) -> [u8; N] {
    let mut w = ConstWriter::<N>::new();
    let mut i = 0;
    while i < 8 {
        w.byte(EMBEDDED_MAGIC[i]);
        i += 1;
    }
    let json_len = N - HEADER_LEN;
    let fmt = EMBEDDED_FORMAT.to_le_bytes();
    let len = (json_len as u32).to_le_bytes();
    let mut j = 0;
    while j < 4 {
        w.byte(fmt[j]);
        j += 1;
    }
    j = 0;
    while j < 4 {
        w.byte(len[j]);
        j += 1;
    }
    w.manifest(m);
    assert!(w.len == N, "embedded manifest length mismatch");
    w.buf
}

/// Why embedded bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddedError {
    BadMagic,
    UnsupportedFormat(u32),
    Truncated { expected: usize, found: usize },
    Json(String),
}

impl std::fmt::Display for EmbeddedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmbeddedError::BadMagic => write!(f, "section does not start with the DFPLUGIN magic"),
            EmbeddedError::UnsupportedFormat(v) => {
                write!(f, "embedded manifest format {v} is not supported (this host reads format {EMBEDDED_FORMAT})")
            }
            EmbeddedError::Truncated { expected, found } => {
                write!(f, "embedded manifest is truncated: header announces {expected} bytes, section holds {found}")
            }
            EmbeddedError::Json(e) => write!(f, "embedded manifest is not valid manifest JSON: {e}"),
        }
    }
}

/// Decodes the bytes of the manifest section (trailing padding is ignored).
pub fn decode_embedded(bytes: &[u8]) -> Result<Manifest, EmbeddedError> {
    if bytes.len() < HEADER_LEN || bytes[..8] != EMBEDDED_MAGIC {
        return Err(EmbeddedError::BadMagic);
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let format = word(8);
    if format != EMBEDDED_FORMAT {
        return Err(EmbeddedError::UnsupportedFormat(format));
    }
    let len = word(12) as usize;
    let json = bytes.get(HEADER_LEN..HEADER_LEN + len).ok_or(EmbeddedError::Truncated {
        expected: len,
        found: bytes.len().saturating_sub(HEADER_LEN),
    })?;
    serde_json::from_slice(json).map_err(|e| EmbeddedError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigKeyDecl;

    const NS: ConfigNamespaceDecl = ConfigNamespaceDecl {
        prefix: "demo",
        keys: &[
            ConfigKeyDecl { key: "a", ty: ConfigType::Enum(&["X", "Y"]), default: "X", doc: "quote \" and \\ and \n" },
            ConfigKeyDecl { key: "b", ty: ConfigType::Int { min: -5, max: i64::MAX }, default: "0", doc: "ünïcödé" },
            ConfigKeyDecl { key: "c", ty: ConfigType::Bool, default: "true", doc: "" },
        ],
    };
    const BUILD: BuildInfo = BuildInfo { git_commit: "abc\"def", profile: "release", rustc: "rustc 1.95.0 (x)", target: "x86_64-unknown-linux-gnu" };
    const DECL: ManifestDecl = ManifestDecl::new("demo", "1.2.3", BUILD)
        .with_config(&NS)
        .with_objects(&[
            ObjectDecl::new(Capability::ScalarUdf, "zeta"),
            ObjectDecl::new(Capability::ScalarUdf, "alpha"),
            ObjectDecl::new(Capability::WindowUdf, "w"),
            ObjectDecl::new(Capability::AggregateUdf, "agg"),
        ]);
    const LEN: usize = embedded_len(&DECL);
    static EMBEDDED: [u8; LEN] = embed::<LEN>(&DECL);

    #[test]
    fn const_encoding_equals_serde_form() {
        let decoded = decode_embedded(&EMBEDDED).expect("decodes");
        assert_eq!(decoded, Manifest::from_decl(&DECL));
        assert_eq!(decoded.objects_of(Capability::ScalarUdf), ["alpha", "zeta"]);
        assert_eq!(decoded.build.id, "abc\"def/release/rustc 1.95.0 (x)");
        assert_eq!(decoded.capability_set().unwrap(), DECL.capabilities);
    }

    #[test]
    fn decoding_tolerates_padding_and_rejects_damage() {
        let mut padded = EMBEDDED.to_vec();
        padded.extend([0u8; 32]);
        assert!(decode_embedded(&padded).is_ok());
        assert_eq!(decode_embedded(&EMBEDDED[..20]).unwrap_err(), EmbeddedError::Truncated { expected: LEN - 16, found: 4 });
        let mut bad = EMBEDDED.to_vec();
        bad[0] = b'X';
        assert_eq!(decode_embedded(&bad).unwrap_err(), EmbeddedError::BadMagic);
        let mut fmt = EMBEDDED.to_vec();
        fmt[8] = 9;
        assert_eq!(decode_embedded(&fmt).unwrap_err(), EmbeddedError::UnsupportedFormat(9));
    }

    #[test]
    fn unknown_capability_bits_are_written_and_refused() {
        const ODD: ManifestDecl = ManifestDecl { capabilities: Capabilities(1 << 40), ..DECL };
        const ODD_LEN: usize = embedded_len(&ODD);
        static ODD_BYTES: [u8; ODD_LEN] = embed::<ODD_LEN>(&ODD);
        let m = decode_embedded(&ODD_BYTES).unwrap();
        assert_eq!(m.capability_set().unwrap_err(), "bit40");
    }

    #[test]
    fn differences_name_fields() {
        let a = Manifest::from_decl(&DECL);
        let mut b = a.clone();
        b.objects.get_mut("scalar_udf").unwrap().push("ghost".into());
        let d = a.differences(&b);
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("objects.scalar_udf"), "{d:?}");
    }
}
