//! Support for Laurel's integration tests: the `laurel` binary, a real `nats-server`, and
//! bounded waits.

mod laurel;
mod nats;
mod s3;

pub use laurel::{Client, Laurel, Reply, SseStream};
pub use nats::{NatsCluster, NatsServer};
pub use s3::S3Server;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Runs `laurel args...`, which must refuse (exit non-zero): what it wrote to stderr.
pub fn refusal_of(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(laurel_bin()).args(args).output().unwrap();
    assert!(!out.status.success(), "laurel {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The path of the `laurel` binary, built on first use (a no-op when it is up to date).
pub fn laurel_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        // Cargo sets these for this test binary, not for a build from a shell: left in, they
        // make build scripts that watch them (ring's) rebuild, and everything above them.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let per_crate = [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_BIN_",
                "CARGO_CRATE_",
            ]
            .iter()
            .any(|p| name.starts_with(p));
            if per_crate || name == "CARGO_PRIMARY_PACKAGE" || name == "CARGO_TARGET_TMPDIR" {
                build.env_remove(name.as_ref());
            }
        }
        let status = build
            .args(["build", "--quiet", "-p", "laurel", "--bin", "laurel"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the laurel binary failed");
        // This test binary lives in target/<profile>/deps/; the laurel binary one level up.
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target dir");
        dir.join(format!("laurel{}", std::env::consts::EXE_SUFFIX))
    })
    .clone()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
