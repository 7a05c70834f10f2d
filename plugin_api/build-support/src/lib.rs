//! Call [`emit`] from a plugin's (or host's) `build.rs`. It sets the variables
//! `df_plugin_api::build_info!()` reads: `DFP_GIT_COMMIT`, `DFP_PROFILE`, `DFP_RUSTC_VERSION`,
//! `DFP_TARGET`.
//!
//! The commit is `git rev-parse HEAD` of the crate's repository (with `-dirty` when tracked
//! files differ, as seen when the build script last ran), or `unknown` outside git.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(cmd).args(args).current_dir(dir).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// Prints the `cargo:` lines. Never fails the build: unknown parts read `unknown`.
pub fn emit() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let commit = match run("git", &["rev-parse", "HEAD"], &dir) {
        Some(sha) => {
            let dirty = run("git", &["status", "--porcelain", "--untracked-files=no"], &dir).is_some();
            if dirty { format!("{sha}-dirty") } else { sha }
        }
        None => "unknown".to_string(),
    };
    if let Some(git_dir) = run("git", &["rev-parse", "--absolute-git-dir"], &dir) {
        let git_dir = PathBuf::from(git_dir);
        // Only existing files: cargo treats a missing rerun-if-changed path as always stale,
        // which would rebuild the crate on every build (a fresh clone keeps refs packed).
        let mut watched = vec![git_dir.join("HEAD"), git_dir.join("packed-refs")];
        if let Some(head_ref) = run("git", &["symbolic-ref", "-q", "HEAD"], &dir) {
            watched.push(git_dir.join(head_ref));
        }
        for path in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&rustc, &["--version"], &dir).unwrap_or_else(|| "rustc unknown".into());
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=DFP_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=DFP_PROFILE={profile}");
    println!("cargo:rustc-env=DFP_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=DFP_TARGET={target}");
}
