//! `dfplugin`: inspect, load, query and conformance-test DataFusion plugin libraries.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use df_plugin_host::conform::{self, RustHost, Suite};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use df_plugin_host::{load, read_embedded_manifest, CollisionPolicy, HostError, InstallOptions};

/// Exit code when a plugin is refused or fails to install.
const EXIT_REFUSED: u8 = 2;
/// Exit code when a query or a conformance case fails.
const EXIT_FAILED: u8 = 1;

#[derive(Parser)]
#[command(name = "dfplugin", version, about = "Inspect, load, query and conformance-test DataFusion plugin libraries")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Text,
}

#[derive(clap::Args)]
struct InstallArgs {
    /// Plugin options as a JSON object of configuration keys, e.g. '{"span.line_base": 1}'.
    #[arg(long, default_value = "")]
    options: String,
    /// What to do when a plugin object's name is already registered: error, replace, skip.
    #[arg(long, default_value = "error")]
    on_collision: CollisionPolicy,
}

impl InstallArgs {
    fn install_options(&self) -> InstallOptions {
        InstallOptions::new().on_collision(self.on_collision).with_options_json(self.options.clone())
    }
}

/// Which plugin libraries this run may load (see `df_plugin_host::trust`).
#[derive(clap::Args)]
struct TrustArgs {
    /// A trust file: public keys ('ed25519:<hex>', one per line) whose signed plugins load.
    /// Repeatable; added to the files in DFPLUGIN_TRUST_FILE.
    #[arg(long = "trust")]
    trust: Vec<PathBuf>,
    /// Also load unsigned plugins (and plugins signed by an untrusted key). A plugin whose
    /// signature does not verify never loads. Same as DFPLUGIN_ALLOW_UNSIGNED=1.
    #[arg(long)]
    allow_unsigned: bool,
}

impl TrustArgs {
    /// Sets the process's trust policy before any plugin loads, and passes it on to child
    /// hosts (the datafusion-python conformance host) through the environment.
    fn apply(&self) -> Result<(), HostError> {
        let mut policy = df_plugin_host::TrustPolicy::from_env()?;
        for file in &self.trust {
            policy = policy.trust_file(file)?;
        }
        policy.allow_unsigned |= self.allow_unsigned;
        if !self.trust.is_empty() {
            let mut files: Vec<PathBuf> =
                std::env::var_os(df_plugin_host::trust::TRUST_FILE_ENV).map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
            files.extend(self.trust.iter().map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
            if let Ok(joined) = std::env::join_paths(files) {
                // Single-threaded here: set before the runtime and any child start.
                std::env::set_var(df_plugin_host::trust::TRUST_FILE_ENV, joined);
            }
        }
        if self.allow_unsigned {
            std::env::set_var(df_plugin_host::trust::ALLOW_UNSIGNED_ENV, "1");
        }
        df_plugin_host::set_trust_policy(policy)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a signing key: writes KEY (secret, mode 0600) and KEY.pub (a trust-file line).
    Keygen {
        /// Path of the secret key file to create (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a plugin library with a secret key: the signature is appended to the file.
    Sign {
        library: PathBuf,
        /// Secret key file written by `dfplugin keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Write the signed library here instead of replacing LIBRARY.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a plugin library's signature (and, with --trust, that its key is trusted).
    Verify {
        library: PathBuf,
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
    },
    /// Print the manifest embedded in a plugin library, without loading it.
    Inspect {
        library: PathBuf,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Load a plugin, install it into a session, run SQL and print the results.
    Sql {
        library: PathBuf,
        /// SQL to run (several statements separated by ';'). Without -e or -f, read stdin.
        #[arg(short = 'e', long = "execute", conflicts_with = "file")]
        execute: Option<String>,
        /// File with SQL statements.
        #[arg(short = 'f', long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        install: InstallArgs,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Run conformance suites against a plugin and print a capability x host matrix.
    Conform {
        library: PathBuf,
        /// Suite files (TOML); default: the suite embedded in dfplugin (manifests/codeanatomy.default.toml).
        #[arg(long = "suite")]
        suites: Vec<PathBuf>,
        /// Write the JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write a Markdown report here.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Also run every suite in datafusion-python: a Python interpreter with `datafusion`
        /// and `dfplugin` (host_harness/python) installed, e.g. the one scripts/python-env.sh prints.
        #[arg(long, env = "DFPLUGIN_PYTHON")]
        python: Option<PathBuf>,
        #[command(flatten)]
        install: InstallArgs,
        #[command(flatten)]
        trust: TrustArgs,
    },
}

fn refused(err: &HostError) -> ExitCode {
    eprintln!("error[{}]: {err}", err.kind());
    ExitCode::from(EXIT_REFUSED)
}

fn failed(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_FAILED)
}

fn keygen(out: &Path) -> ExitCode {
    let key = match df_plugin_host::trust::SecretKey::generate() {
        Ok(k) => k,
        Err(e) => return failed(format!("cannot read random bytes: {e}")),
    };
    match key.write(out) {
        Ok(public) => {
            println!("secret key  {} (keep it secret)", out.display());
            println!("public key  {} (key {}): pass it to hosts with --trust or DFPLUGIN_TRUST_FILE", public.display(), key.public().id());
            ExitCode::SUCCESS
        }
        Err(e) => failed(format!("cannot write key '{}': {e} (an existing key is never overwritten)", out.display())),
    }
}

fn sign(library: &Path, key: &Path, out: Option<&Path>) -> ExitCode {
    let key = match df_plugin_host::trust::SecretKey::read(key) {
        Ok(k) => k,
        Err(e) => return failed(e),
    };
    let out = out.unwrap_or(library);
    match df_plugin_host::trust::sign_library(library, &key, out) {
        Ok(public) => {
            println!("signed {} with key {}", out.display(), public.id());
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

fn verify(library: &Path, trust: &[PathBuf]) -> ExitCode {
    use df_plugin_host::trust::{read_trust_file, signature_state, SignatureState};
    let mut trusted = Vec::new();
    for file in trust {
        match read_trust_file(file) {
            Ok(keys) => trusted.extend(keys),
            Err(e) => return refused(&e),
        }
    }
    match signature_state(library) {
        Err(e) => refused(&e),
        Ok(SignatureState::Valid { key }) if trust.is_empty() || trusted.contains(&key) => {
            let trust_note = if trust.is_empty() { "" } else { ", trusted" };
            println!("{}: signature valid, key {}{trust_note}", library.display(), key.id());
            ExitCode::SUCCESS
        }
        Ok(SignatureState::Valid { key }) => {
            refused(&HostError::UntrustedKey { path: library.to_path_buf(), key: key.id() })
        }
        Ok(SignatureState::Unsigned) => refused(&HostError::Unsigned { path: library.to_path_buf() }),
        Ok(SignatureState::Invalid { reason }) => {
            refused(&HostError::SignatureInvalid { path: library.to_path_buf(), reason })
        }
    }
}

fn inspect(library: &Path, format: Format) -> ExitCode {
    let manifest = match read_embedded_manifest(library) {
        Ok(m) => m,
        Err(e) => return refused(&e),
    };
    match format {
        Format::Json => println!("{}", manifest.to_json_pretty()),
        Format::Text => {
            println!("plugin       {} {}", manifest.plugin.name, manifest.plugin.version);
            println!("file         {}", library.display());
            println!("build        {}", manifest.build.id);
            println!("abi          {}", manifest.abi);
            println!("target       {}", manifest.target);
            println!("datafusion   {} (datafusion-ffi {}, arrow {})", manifest.datafusion, manifest.datafusion_ffi, manifest.arrow);
            println!("capabilities {}", manifest.capabilities.join(", "));
            if let Some(config) = &manifest.config {
                println!("config       namespace '{}'", config.namespace);
                for key in &config.keys {
                    println!("  {}.{} ({}, default {}): {}", config.namespace, key.key, key.ty, key.default, key.doc);
                }
            }
            for (kind, names) in &manifest.objects {
                println!("{kind:<22} {}", names.join(", "));
            }
        }
    }
    ExitCode::SUCCESS
}

async fn sql(library: &Path, text: String, install: &InstallArgs) -> ExitCode {
    let plugin = match load(library) {
        Ok(p) => p,
        Err(e) => return refused(&e),
    };
    let mut builder = SessionStateBuilder::new().with_default_features();
    if let Err(e) = plugin.install(&mut builder, &install.install_options()) {
        return refused(&e);
    }
    let ctx = SessionContext::new_with_state(builder.build());
    // Split first, parse each statement when it runs: a `SET datafusion.sql_parser.dialect`
    // changes how the statements after it parse.
    let statements = match df_plugin_host::sql::split_statements(&text) {
        Ok(s) => s,
        Err(e) => return failed(format!("could not parse SQL: {e}")),
    };
    for statement in statements {
        let result = async { df_plugin_host::sql::sql(&ctx, &statement).await?.collect().await }.await;
        match result {
            Ok(batches) => {
                if batches.iter().any(|b| b.num_columns() > 0) {
                    match pretty_format_batches(&batches) {
                        Ok(table) => println!("{table}"),
                        Err(e) => return failed(format!("could not format result: {e}")),
                    }
                }
            }
            Err(e) => return failed(e),
        }
    }
    ExitCode::SUCCESS
}

struct ConformArgs<'a> {
    library: &'a Path,
    suite_paths: &'a [PathBuf],
    report_path: Option<&'a Path>,
    markdown_path: Option<&'a Path>,
    python: Option<&'a Path>,
    install: &'a InstallArgs,
}

async fn conform_cmd(args: ConformArgs<'_>) -> ExitCode {
    let ConformArgs { library, suite_paths, report_path, markdown_path, python, install } = args;
    // (suite, a file holding it for out-of-process hosts)
    let mut suites: Vec<(Suite, PathBuf)> = Vec::new();
    // The embedded suite needs a file only for the Python host; removed when conform ends.
    let mut default_suite_file = None;
    if suite_paths.is_empty() {
        let suite = match Suite::parse(conform::DEFAULT_SUITE, conform::DEFAULT_SUITE_NAME) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let file = std::env::temp_dir().join(format!("dfplugin-default-suite-{}.toml", std::process::id()));
        if python.is_some() {
            if let Err(e) = std::fs::write(&file, conform::DEFAULT_SUITE) {
                return failed(format!("cannot write '{}': {e}", file.display()));
            }
            default_suite_file = Some(file.clone());
        }
        suites.push((suite, file));
    }
    for path in suite_paths {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return failed(format!("cannot read suite '{}': {e}", path.display())),
        };
        match Suite::parse(&text, &path.display().to_string()) {
            Ok(s) => suites.push((s, path.clone())),
            Err(e) => return failed(e),
        }
    }
    let code = run_conform(library, &suites, report_path, markdown_path, python, install).await;
    if let Some(file) = default_suite_file {
        let _ = std::fs::remove_file(file);
    }
    code
}

async fn run_conform(
    library: &Path,
    suites: &[(Suite, PathBuf)],
    report_path: Option<&Path>,
    markdown_path: Option<&Path>,
    python: Option<&Path>,
    install: &InstallArgs,
) -> ExitCode {
    let plugin = match load(library) {
        Ok(p) => p,
        Err(e) => return refused(&e),
    };
    let host = RustHost { label: "rust-dlopen".into(), plugin: plugin.clone(), options: install.install_options() };
    let mut reports = Vec::new();
    for (suite, file) in suites {
        let mut report = conform::run_suite(suite, &plugin, &[&host]).await;
        if let Some(python) = python {
            match conform::run_python_host(python, library, file) {
                Ok(results) => {
                    report.hosts.push("datafusion-python".to_string());
                    report.results.extend(results);
                }
                Err(e) => return failed(e),
            }
        }
        println!("{}", report.to_markdown());
        reports.push(report);
    }
    if let Some(path) = report_path {
        let json = serde_json::to_string_pretty(&reports).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        if let Err(e) = std::fs::write(path, json) {
            return failed(format!("cannot write report '{}': {e}", path.display()));
        }
    }
    if let Some(path) = markdown_path {
        let md: String = reports.iter().map(|r| r.to_markdown()).collect::<Vec<_>>().join("\n");
        if let Err(e) = std::fs::write(path, md) {
            return failed(format!("cannot write report '{}': {e}", path.display()));
        }
    }
    let failures: usize = reports.iter().map(|r| r.failures().count()).sum();
    if failures > 0 {
        for r in &reports {
            for f in r.failures() {
                eprintln!("FAILED [{}] {} :: {}", f.host, r.suite, f.case);
            }
        }
        return ExitCode::from(EXIT_FAILED);
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    // DFPLUGIN_LOG takes `level` or `target=level,...` (e.g. `df_plugin_host=debug,df_plugin::remote=info`).
    let filter = std::env::var("DFPLUGIN_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();

    let cli = Cli::parse();
    // The trust policy is set (and exported to child hosts) before any thread or plugin starts.
    if let Command::Sql { trust, .. } | Command::Conform { trust, .. } = &cli.command {
        if let Err(e) = trust.apply() {
            return refused(&e);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return failed(format!("cannot start tokio: {e}")),
    };
    match cli.command {
        Command::Keygen { out } => keygen(&out),
        Command::Sign { library, key, out } => sign(&library, &key, out.as_deref()),
        Command::Verify { library, trust } => verify(&library, &trust),
        Command::Inspect { library, format } => inspect(&library, format),
        Command::Sql { library, execute, file, install, trust: _ } => {
            let text = match (execute, file) {
                (Some(sql), _) => sql,
                (None, Some(path)) => match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => return failed(format!("cannot read '{}': {e}", path.display())),
                },
                (None, None) => {
                    let mut buf = String::new();
                    if let Err(e) = std::io::stdin().read_to_string(&mut buf) {
                        return failed(format!("cannot read stdin: {e}"));
                    }
                    buf
                }
            };
            runtime.block_on(sql(&library, text, &install))
        }
        Command::Conform { library, suites, report, markdown, python, install, trust: _ } => {
            runtime.block_on(conform_cmd(ConformArgs {
            library: &library,
            suite_paths: &suites,
            report_path: report.as_deref(),
            markdown_path: markdown.as_deref(),
            python: python.as_deref(),
            install: &install,
        }))
        }
    }
}
