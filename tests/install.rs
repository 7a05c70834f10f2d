//! Installing plugins into sessions: all or nothing, collision policies, introspection,
//! options validation, and the default conformance suite on the native and dlopen hosts.

mod common;

use std::sync::Arc;

use codeanatomy_plugin::CodeAnatomy;
use common::plugin_path;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use df_plugin_host::conform::{rows_of, run_suite, RustHost, Suite, DEFAULT_SUITE, DEFAULT_SUITE_NAME};
use df_plugin_host::{load, CollisionPolicy, HostError, InstallOptions, LoadedPlugin};

fn dlopen_plugin() -> Arc<LoadedPlugin> {
    load(plugin_path()).expect("load plugin")
}

fn native_plugin() -> Arc<LoadedPlugin> {
    LoadedPlugin::native::<CodeAnatomy>().expect("native plugin")
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    let batches = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows_of(&batches).expect("format")
}

#[test]
fn collisions_are_refused_by_default_and_leave_the_builder_unchanged() {
    let plugin = dlopen_plugin();
    let mut builder = SessionStateBuilder::new().with_default_features();
    plugin.install(&mut builder, &InstallOptions::new()).expect("first install");
    let scalar_count = builder.scalar_functions().as_ref().map(Vec::len);
    let rule_count = builder.physical_optimizer_rules().as_ref().map(Vec::len);

    let err = plugin.install(&mut builder, &InstallOptions::new()).expect_err("second install collides");
    assert!(matches!(err, HostError::NameCollision { .. }), "{err}");
    assert!(err.to_string().contains("--on-collision"), "{err}");
    assert_eq!(builder.scalar_functions().as_ref().map(Vec::len), scalar_count, "builder changed by a refused install");
    assert_eq!(builder.physical_optimizer_rules().as_ref().map(Vec::len), rule_count);

    let skipped = plugin.install(&mut builder, &InstallOptions::new().on_collision(CollisionPolicy::Skip)).expect("skip");
    assert!(skipped.objects.is_empty(), "{:?}", skipped.objects);
    assert_eq!(builder.scalar_functions().as_ref().map(Vec::len), scalar_count);

    let replaced = plugin.install(&mut builder, &InstallOptions::new().on_collision(CollisionPolicy::Replace)).expect("replace");
    assert!(!replaced.objects.is_empty());
    assert_eq!(builder.scalar_functions().as_ref().map(Vec::len), scalar_count, "replace must not duplicate");
    assert_eq!(builder.physical_optimizer_rules().as_ref().map(Vec::len), rule_count);
}

#[test]
fn invalid_options_name_the_key() {
    let plugin = dlopen_plugin();
    let mut builder = SessionStateBuilder::new().with_default_features();
    let err = plugin
        .install(&mut builder, &InstallOptions::new().with_options_json(r#"{"span.line_bse": 1}"#))
        .expect_err("unknown key");
    assert!(matches!(err, HostError::InvalidOptions { .. }), "{err}");
    assert!(err.to_string().contains("codeanatomy.span.line_bse"), "{err}");
    let err = plugin
        .install(&mut builder, &InstallOptions::new().with_options_json(r#"{"normalize.form": "NFX"}"#))
        .expect_err("bad value");
    assert!(err.to_string().contains("NFC, NFD, NFKC, NFKD"), "{err}");
    assert!(builder.scalar_functions().as_ref().is_none_or(|fs| fs.iter().all(|f| f.name() != "stable_hash64")));
}

#[tokio::test]
async fn options_and_set_reach_the_plugin_namespace() {
    let plugin = dlopen_plugin();
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    plugin
        .install_into_context(&ctx, &InstallOptions::new().with_options_json(r#"{"codeanatomy.normalize.form": "nfc"}"#))
        .expect("install");
    let rows = query(&ctx, "SELECT value FROM information_schema.df_settings WHERE name = 'codeanatomy.normalize.form'").await;
    assert_eq!(rows, vec![vec!["NFC".to_string()]]);
    let shown = query(&ctx, "SHOW codeanatomy.normalize.form").await;
    assert_eq!(shown, vec![vec!["codeanatomy.normalize.form".to_string(), "NFC".to_string()]]);
    ctx.sql("SET codeanatomy.span.line_base = 1").await.expect("set").collect().await.expect("set runs");
    let shown = query(&ctx, "SHOW codeanatomy.span.line_base").await;
    assert_eq!(shown[0][1], "1");
}

#[tokio::test]
async fn introspection_lists_plugin_and_objects() {
    let plugin = dlopen_plugin();
    let ctx = SessionContext::new();
    plugin.install_into_context(&ctx, &InstallOptions::new()).expect("install");
    let loaded = query(&ctx, "SELECT plugin, version, abi, native, path FROM dfplugin_loaded()").await;
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0][0], "codeanatomy");
    assert_eq!(loaded[0][2], df_plugin_api::AbiVersion::CURRENT.to_string());
    assert_eq!(loaded[0][3], "false");
    assert!(loaded[0][4].ends_with("libcodeanatomy_plugin.so"), "{:?}", loaded[0]);

    let objects = query(&ctx, "SELECT kind, name FROM dfplugin_objects() ORDER BY kind, name").await;
    let manifest = plugin.manifest();
    let mut expected: Vec<Vec<String>> = manifest
        .objects
        .iter()
        // Table provider kinds are opened on demand (`LoadedPlugin::table_provider`), not installed.
        .filter(|(kind, _)| kind.as_str() != "table_provider")
        .flat_map(|(kind, names)| names.iter().map(move |n| vec![kind.clone(), n.clone()]))
        .collect();
    expected.push(vec!["config_namespace".into(), "codeanatomy".into()]);
    expected.sort();
    assert_eq!(objects, expected);
}

#[tokio::test]
async fn physical_rule_is_installed_through_ffi() {
    let plugin = dlopen_plugin();
    let mut builder = SessionStateBuilder::new().with_default_features();
    plugin.install(&mut builder, &InstallOptions::new()).expect("install");
    let state = builder.build();
    assert!(state.physical_optimizers().iter().any(|r| r.name() == "codeanatomy_scan_guard"));
    // The host's validating bag rejects a bad value at SET; the session keeps working.
    let ctx = SessionContext::new_with_state(state);
    let err = ctx.sql("SET codeanatomy.scan_guard.max_files = 'many'").await.expect_err("bad value");
    assert!(err.to_string().contains("codeanatomy.scan_guard.max_files"), "{err}");
    assert!(err.to_string().contains("[E0004 invalid_config]"), "{err}");
    ctx.sql("SELECT 1").await.unwrap().collect().await.expect("the rejected value was not kept");
    ctx.sql("SET codeanatomy.scan_guard.max_files = 10").await.unwrap().collect().await.expect("a good value");
    ctx.sql("SELECT 1").await.unwrap().collect().await.expect("plans with it");
}

/// The default suite passes on the native (rlib) host and on the dlopen host, case by case.
#[tokio::test]
async fn default_suite_passes_natively_and_through_dlopen() {
    let suite = Suite::parse(DEFAULT_SUITE, DEFAULT_SUITE_NAME).expect("suite parses");
    let native = RustHost { label: "rust-native".into(), plugin: native_plugin(), options: InstallOptions::new() };
    let dynamic = RustHost { label: "rust-dlopen".into(), plugin: dlopen_plugin(), options: InstallOptions::new() };
    let report = run_suite(&suite, &dynamic.plugin, &[&native, &dynamic]).await;
    assert!(report.passed(), "{}", report.to_markdown());
    assert!(report.uncovered_objects.is_empty(), "objects without a conformance case: {:?}", report.uncovered_objects);
    assert_eq!(report.results.len(), 2 * suite.cases.len());
}

#[test]
fn native_and_dlopen_manifests_agree() {
    let native = native_plugin();
    let dynamic = dlopen_plugin();
    let mut a = native.manifest().clone();
    let b = dynamic.manifest().clone();
    // The rlib in this test binary and the cdylib are separate builds of the same sources.
    a.build = b.build.clone();
    assert_eq!(a.differences(&b), Vec::<String>::new());
}
