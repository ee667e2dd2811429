//! Records the git commit wharf is built from (shown in `--version`'s log line and the
//! start-up log line); "unknown" outside a git checkout, e.g. from a crate tarball.

fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty());
    println!(
        "cargo:rustc-env=WHARF_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        println!("cargo:rerun-if-changed={watched}");
    }
}
