//! Loading real plugin libraries through real `dlopen`: the checks, their order, the negative
//! fixtures, and the CLI's behaviour on each.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{fixture_path, plugin_path, temp_dir};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use df_plugin_host::{load, read_embedded_manifest, HostError};

fn dfplugin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dfplugin"))
}

#[test]
fn inspect_reports_every_manifest_field() {
    let manifest = read_embedded_manifest(&plugin_path()).expect("manifest");
    assert_eq!(manifest.plugin.name, "codeanatomy");
    assert_eq!(manifest.abi, df_plugin_api::AbiVersion::CURRENT);
    assert_eq!(manifest.datafusion, datafusion::DATAFUSION_VERSION);
    assert_eq!(manifest.target, df_plugin_host::load::HOST_TARGET);
    assert!(manifest.build.rustc.starts_with("rustc "), "{}", manifest.build.rustc);
    assert_ne!(manifest.build.git_commit, "");
    assert!(manifest.config.as_ref().is_some_and(|c| c.namespace == "codeanatomy" && !c.keys.is_empty()));
    for kind in ["scalar_udf", "aggregate_udf", "window_udf", "table_function", "physical_optimizer_rule"] {
        assert!(manifest.capabilities.iter().any(|c| c == kind), "capability {kind} missing");
        assert!(!manifest.objects.get(kind).map(Vec::is_empty).unwrap_or(true), "objects of {kind} missing");
    }

    let out = dfplugin().arg("inspect").arg(plugin_path()).output().expect("run dfplugin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    for field in ["abi", "plugin", "build", "target", "datafusion", "datafusion_ffi", "arrow", "capabilities", "config", "objects"] {
        assert!(json.get(field).is_some(), "inspect JSON lacks '{field}': {json}");
    }
    assert!(json["build"]["id"].as_str().is_some_and(|id| id.contains("/release/") || id.contains("/debug/")));
}

/// A copy whose ELF header names another machine: the dynamic loader refuses it, yet inspect
/// still reads its manifest, which proves inspect never loads the library.
#[test]
fn inspect_does_not_load_the_library() {
    let dir = temp_dir("foreign-machine");
    let copy = dir.join("libforeign_machine.so");
    let mut bytes = std::fs::read(plugin_path()).expect("read plugin");
    // e_machine (offset 18, little-endian u16): x86-64 is 62, AArch64 183; pick the other one.
    let other: u16 = if bytes[18] == 62 { 183 } else { 62 };
    bytes[18..20].copy_from_slice(&other.to_le_bytes());
    std::fs::write(&copy, &bytes).expect("write copy");

    let manifest = read_embedded_manifest(&copy).expect("manifest readable without loading");
    assert_eq!(manifest.plugin.name, "codeanatomy");
    let err = load(&copy).expect_err("the dynamic loader must refuse a foreign-machine ELF");
    assert!(matches!(err, HostError::Open { .. }), "{err}");

    let out = dfplugin().arg("inspect").arg(&copy).output().expect("run dfplugin");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dfplugin().args(["sql", "-e", "SELECT 1"]).arg(&copy).output().expect("run dfplugin");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[open_failed]"));
}

#[test]
fn loading_twice_returns_the_same_plugin() {
    let a = load(plugin_path()).expect("load");
    let b = load(plugin_path()).expect("load again");
    assert!(Arc::ptr_eq(&a, &b));
}

/// Every defect gets its own error variant through the API and its own `error[kind]` line
/// and exit code 2 (not a signal) through the CLI.
#[test]
fn negative_fixtures_are_refused_distinctly() {
    let dir = temp_dir("negative");
    let text_so = dir.join("libtext.so");
    std::fs::write(&text_so, "this is a text file, not a library\n").expect("write");
    let truncated = dir.join("libtruncated.so");
    let bytes = std::fs::read(plugin_path()).expect("read plugin");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).expect("write");
    let missing = dir.join("libmissing.so");

    let cases: Vec<(std::path::PathBuf, &str, &str)> = vec![
        (fixture_path("fixture_abi_major"), "abi_major_mismatch", "ABI 2.0"),
        (fixture_path("fixture_abi_minor"), "abi_minor_too_new", "1.99"),
        (fixture_path("fixture_datafusion_major"), "datafusion_mismatch", "DataFusion 54.0.0"),
        (fixture_path("fixture_ffi_major"), "datafusion_ffi_mismatch", "datafusion-ffi 54.1.0"),
        (fixture_path("fixture_no_root"), "missing_root_module", "root module"),
        (fixture_path("fixture_manifest_mismatch"), "live_manifest_mismatch", "ghost_fn"),
        (fixture_path("fixture_panic"), "plugin_panic", "build exploded on purpose"),
        (text_so.clone(), "not_a_library", "libtext.so"),
        (truncated.clone(), "not_a_library", "libtruncated.so"),
        (missing.clone(), "not_found", "libmissing.so"),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for (path, kind, needle) in &cases {
        let err = load(path).expect_err(&format!("{} must be refused", path.display()));
        assert_eq!(err.kind(), *kind, "{}: {err}", path.display());
        let message = err.to_string();
        assert!(message.contains(needle), "message for {kind} lacks '{needle}': {message}");
        assert!(
            message.contains(&path.display().to_string()) || matches!(err, HostError::Plugin { .. }),
            "message for {kind} must name the file: {message}"
        );
        kinds.insert(err.kind());

        let out = dfplugin().arg("sql").arg(path).args(["-e", "SELECT 1"]).output().expect("run dfplugin");
        assert_eq!(out.status.code(), Some(2), "{kind}: exit status {:?}", out.status);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("error[{kind}]")), "{kind}: stderr was {stderr}");
    }
    // The two damaged-file cases share a kind; every fixture has its own.
    assert_eq!(kinds.len(), cases.len() - 1);
}

#[test]
fn version_mismatch_messages_name_both_sides_and_the_fix() {
    let err = load(fixture_path("fixture_datafusion_major")).unwrap_err().to_string();
    assert!(err.contains("54.0.0") && err.contains(datafusion::DATAFUSION_VERSION), "{err}");
    assert!(err.contains("Rebuild the plugin with datafusion"), "{err}");
    let err = load(fixture_path("fixture_abi_major")).unwrap_err().to_string();
    assert!(err.contains("2.0") && err.contains(&format!("ABI {}", df_plugin_api::AbiVersion::CURRENT)) && err.contains("cargo build"), "{err}");
}

#[tokio::test]
async fn two_plugins_load_and_install_side_by_side() {
    let codeanatomy = load(plugin_path()).expect("load codeanatomy");
    let good = load(fixture_path("fixture_good")).expect("load second plugin");
    assert!(!Arc::ptr_eq(&codeanatomy, &good));
    assert_eq!(good.name(), "fixture_good");

    let mut builder = SessionStateBuilder::new().with_default_features();
    codeanatomy.install(&mut builder, &Default::default()).expect("install codeanatomy");
    good.install(&mut builder, &Default::default()).expect("install second plugin");
    let ctx = SessionContext::new_with_state(builder.build());
    let batches = ctx
        .sql("SELECT fixture_echo(CAST(41 AS BIGINT)) + 1 AS v, stable_hash64('a') IS NOT NULL AS h")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    let rows = df_plugin_host::conform::rows_of(&batches).unwrap();
    assert_eq!(rows, vec![vec!["42".to_string(), "true".to_string()]]);

    // A panic inside plugin code is an error with the panic code; the host carries on.
    let err = ctx.sql("SELECT fixture_boom(CAST(1 AS BIGINT))").await.expect("plan").collect().await.expect_err("panics");
    assert!(err.to_string().contains("[E0002 panic]") && err.to_string().contains("exploded on purpose"), "{err}");

    let loaded = ctx.sql("SELECT plugin FROM dfplugin_loaded() ORDER BY plugin").await.unwrap().collect().await.unwrap();
    assert_eq!(
        df_plugin_host::conform::rows_of(&loaded).unwrap(),
        vec![vec!["codeanatomy".to_string()], vec!["fixture_good".to_string()]]
    );
}

/// Evolution: a plugin built with the frozen ABI 1.2 root module (no 1.3 fields) loads into
/// this 1.3 host and works; asking it for a 1.3 capability is refused, naming both minors.
#[tokio::test]
async fn previous_minor_plugin_loads_works_and_refuses_newer_capabilities() {
    let old = load(fixture_path("fixture_abi_1_2")).expect("an ABI 1.2 plugin loads in a 1.3 host");
    assert_eq!(old.manifest().abi, df_plugin_api::AbiVersion { major: 1, minor: 2 });
    let module = old.module();
    assert!(module.analyze_plan().is_none() && module.table_dml().is_none(), "1.3 fields must read as absent");
    assert!(module.call_table_function().is_some(), "1.2 fields stay present");

    let mut builder = SessionStateBuilder::new().with_default_features();
    old.install(&mut builder, &Default::default()).expect("install the 1.2 plugin");
    let ctx = SessionContext::new_with_state(builder.build());
    let batches = ctx.sql("SELECT fixture_echo(CAST(7 AS BIGINT)) AS v").await.unwrap().collect().await.unwrap();
    assert_eq!(df_plugin_host::conform::rows_of(&batches).unwrap(), vec![vec!["7".to_string()]]);

    for capability in [df_plugin_api::Capability::AnalyzerRule, df_plugin_api::Capability::RelationPlanner, df_plugin_api::Capability::Dml] {
        let err = old.require(capability).expect_err("a 1.2 plugin cannot carry 1.3 capabilities");
        assert_eq!(err.kind(), "capability_unavailable");
        let message = err.to_string();
        assert!(message.contains("ABI 1.2") && message.contains("ABI 1.3") && message.contains(capability.name()), "{message}");
    }
    let current = load(plugin_path()).expect("load codeanatomy");
    current.require(df_plugin_api::Capability::AnalyzerRule).expect("the current plugin carries analyzer rules");
}

/// Evolution: a plugin built with the frozen ABI 1.4 root module loads into this 1.5 host; the
/// 1.5 calls (rule activity, pushdown answers) read as absent and the 1.4 ones stay present.
#[tokio::test]
async fn abi_1_4_plugin_loads_without_the_1_5_calls() {
    let old = load(fixture_path("fixture_abi_1_4")).expect("an ABI 1.4 plugin loads in a 1.5 host");
    assert_eq!(old.manifest().abi, df_plugin_api::AbiVersion { major: 1, minor: 4 });
    let module = old.module();
    assert!(module.rule_active().is_none() && module.table_filters_pushdown().is_none(), "1.5 fields must read as absent");
    assert!(module.scan_table().is_some() && module.create_groups_accumulator().is_some(), "1.4 fields stay present");

    let mut builder = SessionStateBuilder::new().with_default_features();
    old.install(&mut builder, &Default::default()).expect("install the 1.4 plugin");
    let ctx = SessionContext::new_with_state(builder.build());
    let batches = ctx.sql("SELECT fixture_echo(CAST(7 AS BIGINT)) AS v").await.unwrap().collect().await.unwrap();
    assert_eq!(df_plugin_host::conform::rows_of(&batches).unwrap(), vec![vec!["7".to_string()]]);
}
