//! Shared helpers for the integration tests: where the real libraries are, and how to build
//! them (the tests load real `.so` files through real `dlopen`; nothing is mocked).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>` of the running test binary (`target/<profile>/deps/<test>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps layout").to_path_buf()
}

/// Builds the plugin and the fixture plugins (once per test process) with the same profile
/// and target directory as the tests, so nothing is rebuilt needlessly.
pub fn build_libraries() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        // The libraries built here are unsigned: these tests load them under an explicit
        // allow-unsigned trust policy (inherited by the `dfplugin` processes they start). The
        // tests of signing itself run `dfplugin` without it (see tests/cli.rs).
        std::env::set_var("DFPLUGIN_ALLOW_UNSIGNED", "1");
        let profile_dir = profile_dir();
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // `cargo test` runs this binary with its package's CARGO_PKG_*, CARGO_MANIFEST_DIR, ...
        // Build scripts of dependencies (aws-lc-sys, ring, ...) watch some of those with
        // rerun-if-env-changed, so passing them on would rebuild half the tree. Give the inner
        // cargo the environment a shell would.
        for (key, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
            let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&key.as_str())
                || ["CARGO_BUILD_", "CARGO_NET_", "CARGO_REGISTR", "CARGO_HTTP_", "CARGO_PROFILE_", "CARGO_TERM_"]
                    .iter()
                    .any(|p| key.starts_with(p));
            if (key.starts_with("CARGO_") && !keep) || key == "OUT_DIR" {
                cmd.env_remove(&key);
            }
        }
        cmd.current_dir(&workspace)
            .args(["build", "--quiet", "--workspace", "--lib", "--bins", "--examples", "--target-dir"])
            .arg(&target_dir);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the plugin libraries");
        assert!(status.success(), "building the plugin libraries failed: {status}");
    });
}

/// A session with `plugin` installed, `batch_size` rows per batch and `target_partitions`.
pub fn installed_session(
    plugin: &std::sync::Arc<df_plugin_host::LoadedPlugin>,
    batch_size: usize,
    target_partitions: usize,
) -> datafusion::prelude::SessionContext {
    use datafusion::execution::session_state::SessionStateBuilder;
    let config = datafusion::prelude::SessionConfig::new().with_batch_size(batch_size).with_target_partitions(target_partitions);
    let mut builder = SessionStateBuilder::new().with_default_features().with_config(config);
    plugin.install(&mut builder, &df_plugin_host::InstallOptions::new()).expect("install");
    datafusion::prelude::SessionContext::new_with_state(builder.build())
}

/// The real CodeAnatomy plugin library.
pub fn plugin_path() -> PathBuf {
    build_libraries();
    let path = profile_dir().join(format!("{}codeanatomy_plugin{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    assert!(path.exists(), "plugin library missing at {}", path.display());
    path
}

/// A fixture plugin built from `tests/fixtures/examples/<name>.rs`.
pub fn fixture_path(name: &str) -> PathBuf {
    build_libraries();
    let path = profile_dir()
        .join("examples")
        .join(format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    assert!(path.exists(), "fixture library missing at {}", path.display());
    path
}

/// A fresh temporary directory under the target directory (removed by the OS's tmp policy
/// only when under /tmp; these are small).
pub fn temp_dir(label: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("dfplugin-test-{}-{label}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The CodeAnatomy plugin on both Rust hosts: linked natively and loaded with real dlopen.
pub fn hosts() -> Vec<(&'static str, std::sync::Arc<df_plugin_host::LoadedPlugin>)> {
    vec![
        ("native", df_plugin_host::LoadedPlugin::native::<codeanatomy_plugin::CodeAnatomy>().expect("native plugin")),
        ("dlopen", df_plugin_host::load(plugin_path()).expect("dlopen plugin")),
    ]
}

/// Runs each statement through the host's policy-checked entry point
/// (`df_plugin_host::sql::sql`); the rows of the last one, sorted.
pub async fn run(ctx: &datafusion::prelude::SessionContext, statements: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let mut last = Vec::new();
    for sql in statements {
        let df = df_plugin_host::sql::sql(ctx, sql).await.map_err(|e| e.to_string())?;
        last = df.collect().await.map_err(|e| e.to_string())?;
    }
    let mut rows = df_plugin_host::conform::rows_of(&last)?;
    rows.sort();
    Ok(rows)
}

/// Expected rows as owned strings.
pub fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(|s| s.to_string()).collect()).collect()
}
