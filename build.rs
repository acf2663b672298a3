//! Records the git revision the binary was built from, for run manifests.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    if let Ok(out) = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        && out.status.success()
    {
        let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !rev.is_empty() {
            println!("cargo:rustc-env=TECHDIFF_GIT_REVISION={rev}");
        }
    }
}
