//! Declarative conformance suites: SQL cases with expected rows or an expected error code, run
//! against one or more hosts, reported as a capability x host matrix.
//!
//! Suite format (TOML):
//! ```toml
//! name = "codeanatomy-default"
//!
//! [[case]]
//! name = "stable_hash64 of one part"
//! capability = "scalar_udf"          # capability the case exercises (matrix row)
//! objects = ["stable_hash64"]        # exported objects it covers
//! setup = ["SET codeanatomy.span.line_base = 1"]   # optional statements run first
//! sql = "SELECT stable_hash64('a') AS h"
//! expect_rows = [["-6286487934442781009"]]          # cells as displayed; NULL for nulls
//! ordered = false                    # default: rows compared as a sorted multiset
//!
//! [[case]]
//! name = "col_to_byte rejects a column inside a surrogate pair"
//! capability = "scalar_udf"
//! sql = "SELECT col_to_byte('😀', 1, 'UTF16')"
//! expect_error = "invalid_argument"  # plugin error code name, or "error" for any error
//! expect_error_contains = "surrogate"
//! ```
//! Each case runs in a fresh session with the plugin installed.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use df_plugin_api::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::install::InstallOptions;
use crate::load::LoadedPlugin;

/// The default suite shipped with the CodeAnatomy plugin.
pub const DEFAULT_SUITE: &str = include_str!("../../manifests/codeanatomy.default.toml");
/// File name of the default suite (for reports).
pub const DEFAULT_SUITE_NAME: &str = "manifests/codeanatomy.default.toml";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(rename = "case", default)]
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub capability: String,
    #[serde(default)]
    pub objects: Vec<String>,
    #[serde(default)]
    pub setup: Vec<String>,
    /// Tables opened with the plugin's table providers after `setup`, before `sql`.
    #[serde(default)]
    pub register: Vec<RegisterTable>,
    pub sql: String,
    #[serde(default)]
    pub expect_rows: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub ordered: bool,
    #[serde(default)]
    pub expect_error: Option<String>,
    #[serde(default)]
    pub expect_error_contains: Option<String>,
}

/// A table a case opens with one of the plugin's table providers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterTable {
    /// Name to register the table under.
    pub name: String,
    /// Provider kind, e.g. `delta`.
    pub kind: String,
    /// The provider's options as a JSON object.
    pub options: String,
}

impl Suite {
    /// Parses and validates a suite: every case expects either rows or an error, and error
    /// codes are known names.
    pub fn parse(text: &str, origin: &str) -> Result<Suite, String> {
        let suite: Suite = toml::from_str(text).map_err(|e| format!("suite '{origin}' is not valid: {e}"))?;
        for case in &suite.cases {
            match (&case.expect_rows, &case.expect_error) {
                (Some(_), Some(_)) => {
                    return Err(format!("suite '{origin}', case '{}': give expect_rows or expect_error, not both", case.name))
                }
                (None, None) => {
                    return Err(format!("suite '{origin}', case '{}': needs expect_rows or expect_error", case.name))
                }
                _ => {}
            }
            if let Some(code) = &case.expect_error {
                if code != "error" && ErrorCode::from_name(code).is_none() {
                    let known: Vec<_> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
                    return Err(format!(
                        "suite '{origin}', case '{}': unknown error code '{code}'; expected \"error\" or one of {}",
                        case.name,
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(suite)
    }

    /// Objects of `plugin` no case covers.
    pub fn uncovered_objects(&self, plugin: &LoadedPlugin) -> Vec<String> {
        let covered: std::collections::BTreeSet<&str> =
            self.cases.iter().flat_map(|c| c.objects.iter().map(String::as_str)).collect();
        plugin
            .manifest()
            .objects
            .values()
            .flatten()
            .filter(|name| !covered.contains(name.as_str()))
            .cloned()
            .collect()
    }
}

/// A host a suite runs on: builds sessions with the plugin installed.
pub trait ConformHost {
    /// Column label in the matrix, e.g. `rust-dlopen`.
    fn label(&self) -> String;
    /// A fresh session with the plugin installed.
    fn session(&self) -> Result<SessionContext, String>;
    /// Opens a table with the plugin's provider `kind` and registers it as `name`.
    fn register_table(&self, ctx: &SessionContext, table: &RegisterTable) -> Result<(), String>;
}

/// A Rust host: the plugin (dlopen'ed or native) installed into a default session.
pub struct RustHost {
    pub label: String,
    pub plugin: Arc<LoadedPlugin>,
    pub options: InstallOptions,
}

impl ConformHost for RustHost {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn session(&self) -> Result<SessionContext, String> {
        let mut builder = SessionStateBuilder::new().with_default_features();
        self.plugin.install(&mut builder, &self.options).map_err(|e| e.to_string())?;
        Ok(SessionContext::new_with_state(builder.build()))
    }

    fn register_table(&self, ctx: &SessionContext, table: &RegisterTable) -> Result<(), String> {
        let provider = self.plugin.table_provider(&table.kind, &table.options).map_err(|e| e.to_string())?;
        ctx.register_table(table.name.as_str(), provider).map(|_| ()).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The host has no way to install the capability the case needs (declared, not skipped).
    NotInstallable,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub case: String,
    pub capability: String,
    pub host: String,
    pub outcome: Outcome,
    /// Why it failed (empty on pass).
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub suite: String,
    pub plugin: String,
    pub hosts: Vec<String>,
    pub results: Vec<CaseResult>,
    pub uncovered_objects: Vec<String>,
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.results.iter().filter(|r| r.outcome == Outcome::Fail)
    }

    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }

    /// Capability x host matrix: `passed/total` per cell.
    pub fn matrix(&self) -> BTreeMap<String, BTreeMap<String, (usize, usize)>> {
        let mut m: BTreeMap<String, BTreeMap<String, (usize, usize)>> = BTreeMap::new();
        for r in &self.results {
            let cell = m.entry(r.capability.clone()).or_default().entry(r.host.clone()).or_default();
            cell.1 += 1;
            if r.outcome == Outcome::Pass {
                cell.0 += 1;
            }
        }
        m
    }

    /// The matrix and failures as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# Conformance: {} on plugin {}\n\n", self.suite, self.plugin);
        out.push_str(&format!("| capability | {} |\n", self.hosts.join(" | ")));
        out.push_str(&format!("|---|{}\n", "---|".repeat(self.hosts.len())));
        for (capability, row) in self.matrix() {
            let cells: Vec<String> = self
                .hosts
                .iter()
                .map(|h| {
                    let not_installable = self
                        .results
                        .iter()
                        .filter(|r| &r.host == h && r.capability == capability && r.outcome == Outcome::NotInstallable)
                        .count();
                    match row.get(h) {
                        Some((p, t)) if p + not_installable == *t && not_installable == *t => {
                            format!("not installable ({t})")
                        }
                        Some((p, t)) if p + not_installable == *t && not_installable > 0 => {
                            format!("pass {p}/{t}, {not_installable} not installable")
                        }
                        Some((p, t)) if p == t => format!("pass {p}/{t}"),
                        Some((p, t)) => format!("FAIL {p}/{t}"),
                        None => "-".to_string(),
                    }
                })
                .collect();
            out.push_str(&format!("| {capability} | {} |\n", cells.join(" | ")));
        }
        let failures: Vec<_> = self.failures().collect();
        let not_installable: Vec<_> = self.results.iter().filter(|r| r.outcome == Outcome::NotInstallable).collect();
        out.push_str(&format!(
            "\n{} passed, {} failed\n",
            self.results.len() - failures.len() - not_installable.len(),
            failures.len()
        ));
        for n in &not_installable {
            out.push_str(&format!("\n- not installable on {}: {} ({})\n", n.host, n.case, n.detail));
        }
        for f in failures {
            out.push_str(&format!("\n- FAIL [{}] {}: {}\n", f.host, f.case, f.detail));
        }
        if !self.uncovered_objects.is_empty() {
            out.push_str(&format!("\nObjects no case covers: {}\n", self.uncovered_objects.join(", ")));
        }
        out
    }
}

/// Formats batches as rows of display strings (`NULL` for nulls).
pub fn rows_of(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect());
        }
    }
    Ok(rows)
}

/// Runs one statement list and returns the rows of the last one.
pub async fn run_sql(ctx: &SessionContext, setup: &[String], sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    for statement in setup {
        crate::sql::sql(ctx, statement).await?.collect().await?;
    }
    crate::sql::sql(ctx, sql).await?.collect().await
}

/// Placeholder in a case's SQL and expectations for its own scratch directory.
pub const TMP_PLACEHOLDER: &str = "${TMP}";

/// A fresh scratch directory for one case, removed when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "dfplugin-conform-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Case {
    fn uses_scratch(&self) -> bool {
        self.sql.contains(TMP_PLACEHOLDER)
            || self.setup.iter().any(|s| s.contains(TMP_PLACEHOLDER))
            || self.register.iter().any(|r| r.options.contains(TMP_PLACEHOLDER))
    }

    /// The case with `${TMP}` replaced by `dir` everywhere.
    fn with_scratch(&self, dir: &str) -> Case {
        let put = |s: &String| s.replace(TMP_PLACEHOLDER, dir);
        Case {
            setup: self.setup.iter().map(put).collect(),
            sql: put(&self.sql),
            register: self.register.iter().map(|r| RegisterTable { options: put(&r.options), ..r.clone() }).collect(),
            expect_rows: self.expect_rows.as_ref().map(|rows| rows.iter().map(|r| r.iter().map(put).collect()).collect()),
            expect_error_contains: self.expect_error_contains.as_ref().map(put),
            ..self.clone()
        }
    }
}

async fn run_case(host: &dyn ConformHost, case: &Case) -> (Outcome, String) {
    let scratch = if case.uses_scratch() {
        match ScratchDir::new() {
            Ok(dir) => Some(dir),
            Err(e) => return (Outcome::Fail, format!("could not create a scratch directory: {e}")),
        }
    } else {
        None
    };
    let resolved;
    let case = match &scratch {
        Some(dir) => {
            resolved = case.with_scratch(&dir.0.display().to_string());
            &resolved
        }
        None => case,
    };
    let ctx = match host.session() {
        Ok(ctx) => ctx,
        Err(e) => return (Outcome::Fail, format!("could not create a session: {e}")),
    };
    let result = async {
        for statement in &case.setup {
            crate::sql::sql(&ctx, statement).await?.collect().await?;
        }
        Ok::<_, datafusion::error::DataFusionError>(())
    }
    .await;
    // A registration error is the case's result (cases may expect it).
    let result = result.and_then(|()| {
        case.register
            .iter()
            .try_for_each(|t| host.register_table(&ctx, t))
            .map_err(|e| datafusion::error::DataFusionError::Execution(format!("registering a table: {e}")))
    });
    let result = match result {
        Ok(()) => run_sql(&ctx, &[], &case.sql).await,
        Err(e) => Err(e),
    };
    match (&case.expect_rows, &case.expect_error, result) {
        (Some(expected), _, Ok(batches)) => match rows_of(&batches) {
            Err(e) => (Outcome::Fail, format!("could not format result: {e}")),
            Ok(mut actual) => {
                let mut expected = expected.clone();
                if !case.ordered {
                    actual.sort();
                    expected.sort();
                }
                if actual == expected {
                    (Outcome::Pass, String::new())
                } else {
                    (Outcome::Fail, format!("expected rows {expected:?}, got {actual:?}"))
                }
            }
        },
        (Some(_), _, Err(e)) => (Outcome::Fail, format!("expected rows, got error: {e}")),
        (None, Some(code), Ok(batches)) => {
            let rows = rows_of(&batches).unwrap_or_default();
            (Outcome::Fail, format!("expected error '{code}', got rows {rows:?}"))
        }
        (None, Some(code), Err(e)) => {
            let text = e.to_string();
            if code != "error" {
                let found = ErrorCode::find_in(&text);
                if found.map(|c| c.name()) != Some(code.as_str()) {
                    let found = found.map(|c| c.name()).unwrap_or("no code");
                    return (Outcome::Fail, format!("expected error code '{code}', got {found}: {text}"));
                }
            }
            match &case.expect_error_contains {
                Some(needle) if !text.contains(needle.as_str()) => {
                    (Outcome::Fail, format!("error does not contain '{needle}': {text}"))
                }
                _ => (Outcome::Pass, String::new()),
            }
        }
        (None, None, _) => (Outcome::Fail, "case expects nothing".to_string()),
    }
}

/// Runs every case of `suite` on every host.
pub async fn run_suite(suite: &Suite, plugin: &LoadedPlugin, hosts: &[&dyn ConformHost]) -> Report {
    let span = tracing::info_span!("conform", suite = %suite.name, plugin = %plugin.name());
    let _enter = span.enter();
    let mut results = Vec::new();
    for host in hosts {
        for case in &suite.cases {
            let (outcome, detail) = run_case(*host, case).await;
            tracing::debug!(case = %case.name, host = %host.label(), ?outcome, "case finished");
            results.push(CaseResult {
                case: case.name.clone(),
                capability: case.capability.clone(),
                host: host.label(),
                outcome,
                detail,
            });
        }
    }
    Report {
        suite: suite.name.clone(),
        plugin: plugin.name().to_string(),
        hosts: hosts.iter().map(|h| h.label()).collect(),
        results,
        uncovered_objects: suite.uncovered_objects(plugin),
    }
}

/// Runs `suite_path` in a datafusion-python interpreter (`python -m dfplugin.conform`, from
/// `host_harness/python`) and returns its results as the `datafusion-python` column.
pub fn run_python_host(
    python: &std::path::Path,
    library: &std::path::Path,
    suite_path: &std::path::Path,
) -> Result<Vec<CaseResult>, String> {
    #[derive(Deserialize)]
    struct PyResult {
        case: String,
        capability: String,
        outcome: String,
        #[serde(default)]
        detail: String,
    }
    #[derive(Deserialize)]
    struct PyReport {
        host: String,
        results: Vec<PyResult>,
    }
    let out_dir = std::env::temp_dir().join(format!("dfplugin-conform-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let json = out_dir.join("python-report.json");
    let output = std::process::Command::new(python)
        .args(["-m", "dfplugin.conform", "--library"])
        .arg(library)
        .arg("--suite")
        .arg(suite_path)
        .arg("--json")
        .arg(&json)
        .output()
        .map_err(|e| format!("cannot run {} -m dfplugin.conform: {e}", python.display()))?;
    // Exit 1 means failed cases (reported below); anything else without a report is an error.
    let text = std::fs::read_to_string(&json);
    let _ = std::fs::remove_dir_all(&out_dir);
    let text = text.map_err(|_| {
        format!(
            "{} -m dfplugin.conform produced no report (exit {:?}): {}",
            python.display(),
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    let report: PyReport = serde_json::from_str(&text).map_err(|e| format!("python report is not valid: {e}"))?;
    report
        .results
        .into_iter()
        .map(|r| {
            let outcome = match r.outcome.as_str() {
                "pass" => Outcome::Pass,
                "fail" => Outcome::Fail,
                "not_installable" => Outcome::NotInstallable,
                other => return Err(format!("python report has unknown outcome '{other}' for case '{}'", r.case)),
            };
            Ok(CaseResult { case: r.case, capability: r.capability, host: report.host.clone(), outcome, detail: r.detail })
        })
        .collect()
}
