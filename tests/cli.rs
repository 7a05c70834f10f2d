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

/// `dfplugin` without the test harness's allow-unsigned policy.
fn strict_dfplugin() -> Command {
    let mut cmd = dfplugin();
    cmd.env_remove("DFPLUGIN_ALLOW_UNSIGNED").env_remove("DFPLUGIN_TRUST_FILE");
    cmd
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn signed_plugins_load_only_when_trusted_and_unchanged() {
    let dir = temp_dir("signing");
    let lib = dir.join("libsigned.so");
    std::fs::copy(plugin_path(), &lib).expect("copy plugin");
    let query = ["-e", "SELECT stable_hash64('a', 'b') AS h"];

    // Unsigned: refused by default, loads when explicitly allowed.
    let out = strict_dfplugin().arg("sql").arg(&lib).args(query).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).starts_with("error[unsigned]") && stderr_of(&out).contains("--allow-unsigned"), "{}", stderr_of(&out));
    let out = strict_dfplugin().arg("sql").arg(&lib).arg("--allow-unsigned").args(query).output().expect("run");
    assert!(out.status.success(), "{}", stderr_of(&out));

    // Signed with a generated key: verifies, and loads when the key is trusted.
    let key = dir.join("local.key");
    assert!(strict_dfplugin().args(["keygen", "--out"]).arg(&key).status().expect("keygen").success());
    let public = dir.join("local.key.pub");
    assert!(strict_dfplugin().arg("sign").arg(&lib).arg("--key").arg(&key).status().expect("sign").success());
    let out = strict_dfplugin().arg("verify").arg(&lib).arg("--trust").arg(&public).output().expect("verify");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("signature valid"), "{}", stderr_of(&out));
    let out = strict_dfplugin().arg("sql").arg(&lib).arg("--trust").arg(&public).args(query).output().expect("run");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1212841174890269944"), "{}", stderr_of(&out));
    let out = strict_dfplugin().env("DFPLUGIN_TRUST_FILE", &public).arg("sql").arg(&lib).args(query).output().expect("run");
    assert!(out.status.success(), "trust file from the environment: {}", stderr_of(&out));

    // A key nobody trusts: refused (naming the key), loads only under allow-unsigned.
    let other = dir.join("other.key");
    assert!(strict_dfplugin().args(["keygen", "--out"]).arg(&other).status().expect("keygen").success());
    let out = strict_dfplugin().arg("sql").arg(&lib).arg("--trust").arg(dir.join("other.key.pub")).args(query).output().expect("run");
    assert!(stderr_of(&out).starts_with("error[untrusted_key]"), "{}", stderr_of(&out));

    // One byte changed after signing: refused always, even with allow-unsigned.
    let mut bytes = std::fs::read(&lib).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let tampered = dir.join("libtampered.so");
    std::fs::write(&tampered, &bytes).expect("write");
    for extra in [vec!["--trust".to_string(), public.display().to_string()], vec!["--allow-unsigned".to_string()]] {
        let out = strict_dfplugin().arg("sql").arg(&tampered).args(&extra).args(query).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        assert!(stderr_of(&out).starts_with("error[signature_invalid]"), "{extra:?}: {}", stderr_of(&out));
    }
    // Bytes appended after the signature: no longer a signed file, so a host that requires
    // signatures refuses it (only an explicit allow-unsigned policy admits unsigned files).
    let mut grown = std::fs::read(&lib).expect("read");
    grown.extend_from_slice(b"appended");
    let grown_path = dir.join("libgrown.so");
    std::fs::write(&grown_path, &grown).expect("write");
    let out = strict_dfplugin().arg("sql").arg(&grown_path).arg("--trust").arg(&public).args(query).output().expect("run");
    assert!(stderr_of(&out).starts_with("error[unsigned]"), "appended bytes must not load: {}", stderr_of(&out));
}

#[test]
fn fifos_and_symlink_loops_are_refused_at_once() {
    let dir = temp_dir("special-files");
    let fifo = dir.join("plugin.so");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let looped = dir.join("loop.so");
    std::os::unix::fs::symlink(&looped, &looped).expect("symlink loop");
    for (path, expect) in [(&fifo, "FIFO"), (&looped, "symbolic links")] {
        for command in ["inspect", "sql"] {
            let mut cmd = dfplugin();
            cmd.arg(command).arg(path);
            if command == "sql" {
                cmd.args(["-e", "SELECT 1"]);
            }
            // Output is collected on a thread so that a hang fails the test instead of blocking it.
            let (tx, rx) = std::sync::mpsc::channel();
            let mut child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
            let (mut out, mut err) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
            std::thread::spawn(move || {
                use std::io::Read;
                let (mut o, mut e) = (String::new(), String::new());
                let _ = out.read_to_string(&mut o);
                let _ = err.read_to_string(&mut e);
                let _ = tx.send(e);
            });
            let stderr = match rx.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(e) => e,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("dfplugin {command} on {} hung", path.display());
                }
            };
            let status = child.wait().expect("wait");
            assert_eq!(status.code(), Some(2), "{command} {}: {stderr}", path.display());
            assert!(stderr.starts_with("error[unreadable]") && stderr.contains(expect), "{command}: {stderr}");
        }
    }
}
