//! Options of a Delta table, from JSON (named provider) or from DDL `OPTIONS`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use df_plugin_api::{ErrorCode, PluginError};
use serde::Deserialize;

/// Which snapshot of a table to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TableVersion {
    /// The newest version at each scan.
    #[default]
    Latest,
    /// A fixed version.
    Version(u64),
    /// The newest version committed at or before this instant.
    Timestamp(DateTime<Utc>),
}

impl std::fmt::Display for TableVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableVersion::Latest => f.write_str("latest"),
            TableVersion::Version(v) => write!(f, "{v}"),
            TableVersion::Timestamp(ts) => write!(f, "{}", ts.to_rfc3339()),
        }
    }
}

/// Validated options of one Delta table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeltaTableOptions {
    pub table_uri: String,
    pub storage_options: HashMap<String, String>,
    pub version: TableVersion,
    /// Read only these data files (paths relative to the table root).
    pub files: Option<Vec<String>>,
    /// Adds a column with each row's source file path.
    pub file_column: Option<String>,
    /// Table properties (`delta.*`) for a table the DDL creates.
    pub table_properties: BTreeMap<String, String>,
    /// The provider names its source (table, version, files) in its schema metadata, so that
    /// scans of different sources under one name never compare equal. Set for table functions
    /// and time travel, whose scans DataFusion names after the function or the table alone.
    pub identify_source: bool,
    /// Lists of prefixes of local paths and object-store URIs; the table must lie under a
    /// prefix of every list (no list: anywhere). From `codeanatomy.policy.allowed_locations`
    /// and the JSON key `allowed_locations`.
    pub allowed_locations: Vec<Vec<String>>,
    /// Data files may be absolute URIs outside the table root
    /// (`codeanatomy.delta.allow_external_files`, JSON `allow_external_files`).
    pub allow_external_files: bool,
}

/// Table properties a `CREATE EXTERNAL TABLE ... STORED AS DELTA` may set, as Delta spells them
/// (DataFusion lower-cases option keys, so they are matched without case).
pub const TABLE_PROPERTIES: &[&str] = &[
    "delta.appendOnly",
    "delta.checkpointInterval",
    "delta.checkpoint.writeStatsAsJson",
    "delta.checkpoint.writeStatsAsStruct",
    "delta.columnMapping.mode",
    "delta.dataSkippingNumIndexedCols",
    "delta.dataSkippingStatsColumns",
    "delta.deletedFileRetentionDuration",
    "delta.enableChangeDataFeed",
    "delta.enableDeletionVectors",
    "delta.logRetentionDuration",
    "delta.enableExpiredLogCleanup",
    "delta.targetFileSize",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonOptions {
    table_uri: Option<String>,
    #[serde(default)]
    storage_options: BTreeMap<String, String>,
    version: Option<i64>,
    timestamp: Option<String>,
    files: Option<Vec<String>>,
    file_column: Option<String>,
    #[serde(default)]
    allowed_locations: Vec<String>,
    #[serde(default)]
    allow_external_files: bool,
}

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::new(ErrorCode::InvalidOptions, message)
}

/// Keys accepted in JSON options, for error messages.
pub const JSON_KEYS: &str =
    "table_uri, storage_options, version, timestamp, files, file_column, allowed_locations, allow_external_files";

impl DeltaTableOptions {
    /// The source identity (see [`Self::identify_source`]): a digest of the table, the version
    /// and the pinned files, so no path or option shows in a schema.
    pub fn source_identity(&self) -> Option<String> {
        use blake2::Digest;
        if !self.identify_source {
            return None;
        }
        let mut hasher = blake2::Blake2b512::new();
        for part in [self.table_uri.as_str(), &self.version.to_string(), &format!("{:?}", self.files), &format!("{:?}", self.file_column)] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        Some(format!("delta:{}", digest.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>()))
    }

    /// Applies the session's location settings: `codeanatomy.policy.allowed_locations` is
    /// added to the lists the table must satisfy (a session can only narrow where tables may
    /// be), `codeanatomy.delta.allow_external_files` allows what it says.
    pub fn with_session_settings(mut self, config: &crate::config::CodeAnatomyConfig) -> Self {
        if !config.allowed_locations.is_empty() && !self.allowed_locations.contains(&config.allowed_locations) {
            self.allowed_locations.push(config.allowed_locations.clone());
        }
        self.allow_external_files |= config.delta_allow_external_files;
        self
    }

    /// Options for the table at `table_uri`, latest version.
    pub fn new(table_uri: impl Into<String>) -> Self {
        Self { table_uri: table_uri.into(), ..Default::default() }
    }

    /// Parses the JSON options of a named provider, e.g.
    /// `{"table_uri": "/data/t", "version": 3, "storage_options": {"AWS_REGION": "eu-west-1"}}`.
    ///
    /// ```
    /// use codeanatomy_plugin::delta::{DeltaTableOptions, TableVersion};
    /// let o = DeltaTableOptions::from_json(r#"{"table_uri": "/data/t", "version": 3}"#).unwrap();
    /// assert_eq!(o.version, TableVersion::Version(3));
    /// let err = DeltaTableOptions::from_json(r#"{"table_uri": "/data/t", "versoin": 3}"#).unwrap_err();
    /// assert!(err.to_string().contains("versoin"));
    /// ```
    pub fn from_json(json: &str) -> Result<Self, PluginError> {
        // Never echo the JSON itself: storage options carry credentials.
        let raw: JsonOptions = serde_json::from_str(json).map_err(|e| {
            invalid(format!("delta table options: {}; accepted keys: {JSON_KEYS}", without_values(&e.to_string())))
        })?;
        let table_uri = raw
            .table_uri
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| invalid("delta table options: 'table_uri' is required (the table's path or URL)"))?;
        let version = match (raw.version, raw.timestamp) {
            (Some(_), Some(_)) => {
                return Err(invalid(format!(
                    "delta table '{table_uri}': give 'version' or 'timestamp', not both"
                )))
            }
            (Some(v), None) => TableVersion::Version(parse_version(&table_uri, &v.to_string())?),
            (None, Some(ts)) => TableVersion::Timestamp(parse_timestamp(&table_uri, &ts)?),
            (None, None) => TableVersion::Latest,
        };
        Ok(Self {
            table_uri,
            storage_options: raw.storage_options.into_iter().collect(),
            version,
            files: raw.files,
            file_column: raw.file_column,
            table_properties: BTreeMap::new(),
            identify_source: false,
            allowed_locations: if raw.allowed_locations.is_empty() { Vec::new() } else { vec![raw.allowed_locations] },
            allow_external_files: raw.allow_external_files,
        })
    }

    /// Options from `CREATE EXTERNAL TABLE ... OPTIONS (...)`. DataFusion prefixes keys without
    /// a dot with `format.`; storage options are written `'storage.<key>' '<value>'`.
    pub fn from_ddl(location: &str, options: &HashMap<String, String>) -> Result<Self, PluginError> {
        let mut out = Self::new(location);
        let (mut version, mut timestamp) = (None, None);
        let mut keys: Vec<_> = options.keys().collect();
        keys.sort();
        for key in keys {
            let value = &options[key];
            let bare = key.strip_prefix("format.").unwrap_or(key);
            match bare {
                "version" => version = Some(parse_version(location, value)?),
                "timestamp" => timestamp = Some(parse_timestamp(location, value)?),
                "files" => {
                    out.files = Some(value.split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect())
                }
                "file_column" => out.file_column = Some(value.clone()),
                _ if bare.to_ascii_lowercase().starts_with("delta.") => {
                    let property = TABLE_PROPERTIES.iter().find(|p| p.eq_ignore_ascii_case(bare)).ok_or_else(|| {
                        invalid(format!(
                            "delta table '{location}': unknown table property '{bare}'; accepted: {}",
                            TABLE_PROPERTIES.join(", ")
                        ))
                    })?;
                    out.table_properties.insert(property.to_string(), value.clone());
                }
                _ => match key.strip_prefix("storage.") {
                    Some(storage_key) if !storage_key.is_empty() => {
                        out.storage_options.insert(storage_key.to_string(), value.clone());
                    }
                    _ => {
                        return Err(invalid(format!(
                            "delta table '{location}': unknown option '{bare}'; accepted: version, timestamp, files, \
                             file_column, 'storage.<key>' for object-store settings and 'delta.<property>' for a \
                             table the statement creates"
                        )))
                    }
                },
            }
        }
        out.version = match (version, timestamp) {
            (Some(_), Some(_)) => {
                return Err(invalid(format!("delta table '{location}': give 'version' or 'timestamp', not both")))
            }
            (Some(v), None) => TableVersion::Version(v),
            (None, Some(ts)) => TableVersion::Timestamp(ts),
            (None, None) => TableVersion::Latest,
        };
        Ok(out)
    }
}

/// A serde message without the values it quotes (`invalid type: string "<secret>"`): option
/// values may be credentials. Key names (`unknown field `versoin``) stay.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        match rest[start + 1..].find('"') {
            Some(end) => {
                out.push_str("\"***\"");
                rest = &rest[start + 1 + end + 1..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A table version: a non-negative integer.
pub fn parse_version(table: &str, text: &str) -> Result<u64, PluginError> {
    text.trim().parse::<u64>().map_err(|_| {
        invalid(format!("delta table '{table}': version '{text}' is not a table version; expected an integer >= 0"))
    })
}

/// An instant: RFC 3339 (`2024-05-01T12:00:00Z`), `YYYY-MM-DD HH:MM:SS[.f]` or `YYYY-MM-DD`
/// (both read as UTC).
pub fn parse_timestamp(table: &str, text: &str) -> Result<DateTime<Utc>, PluginError> {
    let t = text.trim();
    if let Ok(ts) = DateTime::parse_from_rfc3339(t) {
        return Ok(ts.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(naive.and_utc());
        }
    }
    if let Some(midnight) = NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)) {
        return Ok(midnight.and_utc());
    }
    Err(invalid(format!(
        "delta table '{table}': timestamp '{text}' is not a timestamp; expected RFC 3339 \
         (2024-05-01T12:00:00Z), 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD' (UTC)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rejects_both_version_and_timestamp() {
        let err = DeltaTableOptions::from_json(r#"{"table_uri": "/t", "version": 1, "timestamp": "2024-01-01"}"#).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidOptions);
        assert!(err.message().contains("not both") && err.message().contains("/t"), "{err}");
    }

    #[test]
    fn json_requires_uri_and_names_unknown_keys() {
        assert!(DeltaTableOptions::from_json("{}").unwrap_err().message().contains("table_uri"));
        let err = DeltaTableOptions::from_json(r#"{"table_uri": "/t", "verison": 1}"#).unwrap_err();
        assert!(err.message().contains("verison") && err.message().contains(JSON_KEYS), "{err}");
        let err = DeltaTableOptions::from_json(r#"{"table_uri": "/t", "version": -1}"#).unwrap_err();
        assert!(err.message().contains("'-1'"), "{err}");
        let err = DeltaTableOptions::from_json(r#"{"table_uri": "/t", "version": "hunter2-SECRET"}"#).unwrap_err();
        assert!(!err.message().contains("hunter2-SECRET") && err.message().contains("invalid type"), "{err}");
    }

    #[test]
    fn ddl_options() {
        let opts: HashMap<String, String> = [
            ("format.timestamp", "2024-01-02"),
            ("storage.AWS_REGION", "eu-west-1"),
            ("format.files", "a.parquet, b.parquet"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let o = DeltaTableOptions::from_ddl("/t", &opts).unwrap();
        assert_eq!(o.version, TableVersion::Timestamp(parse_timestamp("", "2024-01-02T00:00:00Z").unwrap()));
        assert_eq!(o.storage_options["AWS_REGION"], "eu-west-1");
        assert_eq!(o.files.as_deref(), Some(&["a.parquet".to_string(), "b.parquet".to_string()][..]));
        let bad: HashMap<String, String> = [("format.verison".to_string(), "1".to_string())].into();
        assert!(DeltaTableOptions::from_ddl("/t", &bad).unwrap_err().message().contains("unknown option 'verison'"));
    }

    #[test]
    fn timestamps() {
        let a = parse_timestamp("t", "2024-05-01T12:00:00+02:00").unwrap();
        let b = parse_timestamp("t", "2024-05-01 10:00:00").unwrap();
        assert_eq!(a, b);
        assert!(parse_timestamp("t", "yesterday").unwrap_err().message().contains("'yesterday'"));
    }
}
