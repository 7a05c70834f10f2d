//! The `dfplugin` binary end to end: `sql` and `conform` on the real plugin.

mod common;

use std::process::Command;

use common::{plugin_path, temp_dir};

fn dfplugin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dfplugin"))
}

#[test]
fn sql_runs_statements_and_lists_the_plugin() {
    let out = dfplugin()
        .arg("sql")
        .arg(plugin_path())
        .args(["-e", "SELECT stable_hash64('a', 'b') AS h; SELECT plugin, abi FROM dfplugin_loaded(); SELECT count(*) AS n FROM dfplugin_objects()"])
        .output()
        .expect("run dfplugin");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Python: hashlib.blake2b(b"a\x1fb", digest_size=8) read little-endian signed.
    assert!(stdout.contains("1212841174890269944"), "{stdout}");
    assert!(stdout.contains(&format!("| codeanatomy | {} |", df_plugin_api::AbiVersion::CURRENT)), "{stdout}");
    assert!(stdout.contains("| 41 |"), "{stdout}");
}

#[test]
fn sql_reads_stdin_and_reports_query_errors_with_exit_1() {
    use std::io::Write;
    let mut child = dfplugin()
        .arg("sql")
        .arg(plugin_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(b"SELECT col_to_byte('a\xf0\x9f\x98\x80b', 2, 'UTF16')").expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[E0005 invalid_argument]") && stderr.contains("col_to_byte"), "{stderr}");
}

#[test]
fn conform_passes_the_default_suite_and_writes_reports() {
    let dir = temp_dir("conform-ok");
    let (json, md) = (dir.join("report.json"), dir.join("report.md"));
    let out = dfplugin()
        .arg("conform")
        .arg(plugin_path())
        .arg("--report")
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .output()
        .expect("run dfplugin");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("json report")).expect("json");
    let results = report[0]["results"].as_array().expect("results");
    assert!(results.len() > 30 && results.iter().all(|r| r["outcome"] == "pass"));
    assert!(std::fs::read_to_string(&md).expect("md").contains("| scalar_udf | pass"));
}

#[test]
fn conform_fails_with_exit_1_naming_the_wrong_case() {
    let dir = temp_dir("conform-bad");
    let suite = dir.join("bad.toml");
    std::fs::write(
        &suite,
        r#"name = "deliberately wrong"
[[case]]
name = "right answer"
capability = "scalar_udf"
objects = ["stable_hash64"]
sql = "SELECT stable_hash64('a', 'b')"
expect_rows = [["1212841174890269944"]]

[[case]]
name = "wrong answer on purpose"
capability = "scalar_udf"
objects = ["stable_hash64"]
sql = "SELECT stable_hash64('a', 'b')"
expect_rows = [["42"]]
"#,
    )
    .expect("write suite");
    let out = dfplugin().arg("conform").arg(plugin_path()).arg("--suite").arg(&suite).output().expect("run dfplugin");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FAILED [rust-dlopen] deliberately wrong :: wrong answer on purpose"), "{stderr}");
    assert!(!stderr.contains(":: right answer"), "{stderr}");
}

#[test]
fn conform_rejects_a_malformed_suite_clearly() {
    let dir = temp_dir("conform-malformed");
    let suite = dir.join("malformed.toml");
    std::fs::write(&suite, "name = \"x\"\n[[case]]\nname = \"no expectation\"\ncapability = \"scalar_udf\"\nsql = \"SELECT 1\"\n").unwrap();
    let out = dfplugin().arg("conform").arg(plugin_path()).arg("--suite").arg(&suite).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs expect_rows or expect_error"));
}
