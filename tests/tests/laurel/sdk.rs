//! The client SDKs (docs/sdks.md): each SDK's own suite against a real `laurel serve` (it
//! starts its own, with the binary under test), and the cross-origin answers a browser game
//! needs.

use std::path::PathBuf;
use std::process::Command;

use laurel_tests::{Laurel, laurel_bin};

fn sdk_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sdk")
        .join(name)
}

/// Runs an SDK's suite (`program args` in `sdk/<name>`, with the laurel under test) and
/// expects it to succeed and to print `passed_line`.
fn run_suite(name: &str, program: &str, args: &[&str], passed_line: &str) {
    let out = Command::new(program)
        .args(args)
        .current_dir(sdk_dir(name))
        .env("LAUREL_BIN", laurel_bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(passed_line), "{stdout}");
}

/// `npm test` in sdk/js: exactly once through cut connections, a killed game, 429 and 503;
/// live unlocks within the bar, across a cut stream and a token refresh; a browser page on
/// another origin. Needs `npm ci --prefix sdk/js` (.ci/run does).
#[test]
fn the_typescript_sdk_passes_its_tests_against_a_real_server() {
    assert!(
        sdk_dir("js").join("node_modules/typescript").is_dir(),
        "the SDK's build tools are missing: run `npm ci --prefix sdk/js` (.ci/run does)"
    );
    run_suite("js", "npm", &["test"], "# fail 0");
}

/// `sdk/csharp/build-and-test.sh`: the C# SDK compiled with Debian's Mono and its NUnit tests
/// run against a real server (exactly once through a cut connection, a killed game and 429;
/// live unlocks resumed after a cut and across a token refresh; the README's quick start).
/// Needs mono-mcs, mono-runtime, libmono-system-net-http4.0-cil and libnunit-cil-dev
/// (.ci/run installs them).
#[test]
fn the_csharp_sdk_passes_its_tests_against_a_real_server() {
    assert!(
        std::path::Path::new("/usr/lib/cli/nunit.framework-2.6.3/nunit.framework.dll").exists()
            && Command::new("mcs").arg("--version").output().is_ok(),
        "Mono and NUnit are missing: apt-get install mono-mcs mono-runtime libmono-system-net-http4.0-cil libnunit-cil-dev (.ci/run does)"
    );
    run_suite("csharp", "sh", &["build-and-test.sh"], ", failed 0");
}

/// With `--cors-origins`, a page of that origin may call the API (a preflight is answered
/// with the headers the SDK sends, `Retry-After` is readable); another origin, or a server
/// without the flag, gets no cross-origin answer; a malformed origin stops the start.
#[test]
fn cross_origin_requests_are_answered_for_the_configured_origins_only() {
    let dir = tempfile::tempdir().unwrap();
    let game = "https://game.example.com";
    let laurel = Laurel::start(
        &dir.path().join("data"),
        &[
            "--cors-origins".into(),
            format!("{game},http://localhost:3000"),
        ],
    );
    let preflight = |origin: &str| {
        laurel
            .try_request_with(
                "OPTIONS",
                "/v1/events",
                None,
                None,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization,content-type,last-event-id",
                    ),
                ],
            )
            .unwrap()
    };
    let allowed = preflight(game);
    assert!(allowed.status < 300, "{}", allowed.status);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(game));
    let headers = allowed
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_lowercase();
    for h in ["authorization", "content-type", "last-event-id"] {
        assert!(headers.contains(h), "{h} in {headers}");
    }
    assert_eq!(
        preflight("https://evil.example.com").header("access-control-allow-origin"),
        None
    );
    let token = laurel.token(&["--player", "ann"]);
    let read = laurel
        .try_request_with(
            "GET",
            "/v1/players/me/stats",
            Some(&token),
            None,
            &[("origin", game)],
        )
        .unwrap();
    assert_eq!(read.status, 200);
    assert_eq!(read.header("access-control-allow-origin"), Some(game));
    assert!(
        read.header("access-control-expose-headers")
            .unwrap_or_default()
            .to_lowercase()
            .contains("retry-after")
    );

    let plain = Laurel::start(&dir.path().join("plain"), &[]);
    let read = plain
        .try_request_with("GET", "/healthz", None, None, &[("origin", game)])
        .unwrap();
    assert_eq!(read.header("access-control-allow-origin"), None);

    let out = Command::new(laurel_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cors-origins",
            "game.example.com",
            "--data-dir",
        ])
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cors-origins") && err.contains("`game.example.com` is not an origin"),
        "{err}"
    );
}
