//! Records the git revision the binary was built from, for run manifests
//! and benchmark tables: the commit, with `-modified` appended when the
//! files compiled into the binary (src/, the default scenario and country
//! data under scenarios/, Cargo.toml, Cargo.lock, build.rs) differ from
//! it, so that a number measured with uncommitted changes is not credited
//! to the commit.
use std::process::Command;

/// What the binary is built from (relative to the crate root).
const SOURCES: [&str; 6] = [
    "src",
    "scenarios/tightening.toml",
    "scenarios/data/countries.csv",
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
];

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-changed=.git/index");
    for path in SOURCES {
        println!("cargo:rerun-if-changed={path}");
    }
    // For the test that checks the mark (tests/cli.rs).
    println!(
        "cargo:rustc-env=TECHDIFF_BUILD_SOURCES={}",
        SOURCES.join(":")
    );
    let Some(rev) = git(&["rev-parse", "--short=12", "HEAD"]).filter(|r| !r.is_empty()) else {
        return;
    };
    let mut status = vec!["status", "--porcelain", "--untracked-files=all", "--"];
    status.extend(SOURCES);
    let modified = git(&status).is_none_or(|s| !s.is_empty());
    let suffix = if modified { "-modified" } else { "" };
    println!("cargo:rustc-env=TECHDIFF_GIT_REVISION={rev}{suffix}");
}
