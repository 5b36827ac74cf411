//! Names the commit the binary is built from, for `laurel --version`.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let version = env!("CARGO_PKG_VERSION");
    let long = match &commit {
        Some(commit) => format!("{version} (commit {commit})"),
        None => format!("{version} (commit unknown: built outside a git checkout)"),
    };
    println!("cargo:rustc-env=LAUREL_LONG_VERSION={long}");
    // Run again when HEAD moves: a commit, a checkout. Only files that exist are named (one
    // that does not would make every build run this again).
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(branch);
        }
        // Relative to the package when the repository holds it: checkouts sharing a target
        // dir then each watch their own refs.
        let package = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        let root = Path::new(&package).parent().unwrap_or(Path::new("/"));
        let shown = match Path::new(&git_dir).strip_prefix(root) {
            Ok(inside) => format!("../{}", inside.display()),
            Err(_) => git_dir.clone(),
        };
        for file in watched
            .iter()
            .filter(|f| Path::new(&git_dir).join(f).exists())
        {
            println!("cargo:rerun-if-changed={shown}/{file}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
