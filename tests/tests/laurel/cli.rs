//! The `laurel` command line, run as a real process.

use std::process::Command;

use laurel_tests::{Laurel, laurel_bin};
use serde_json::{Value, json};

#[test]
fn help_lists_every_role_and_tool() {
    let out = Command::new(laurel_bin()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for command in [
        "serve",
        "gateway",
        "engine",
        "projector",
        "token",
        "defs",
        "replay",
        "rebuild",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "`{command}` missing from:\n{help}"
        );
    }
}

#[test]
fn an_unknown_command_fails_with_usage() {
    let out = Command::new(laurel_bin())
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

/// Runs `laurel defs ARGS` against `laurel`; returns (success, stdout, stderr).
fn defs(laurel: &Laurel, data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(laurel_bin())
        .arg("defs")
        .args(args)
        .arg("--url")
        .arg(laurel.url())
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn definitions_as_code_diff_dry_run_apply_export_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let laurel = Laurel::start(&data, &[]);
    let admin = laurel.token(&["--admin"]);
    let game = json!({
        "stats": {"bananas": {"aggregation": "sum", "kind": "int", "client_writable": true}},
        "achievements": {
            "BANANA_KING": {"title": "Banana king", "points": 50, "requires": ["FIRST_BANANA"],
                            "conditions": [{"stat": "bananas", "at_least": 1000}]},
            "FIRST_BANANA": {"title": "First banana", "points": 10,
                             "conditions": [{"stat": "bananas", "at_least": 1}]}
        }
    });
    let file = dir.path().join("achievements.json");
    std::fs::write(&file, game.to_string()).unwrap();
    let file = file.to_str().unwrap();
    let listed = |what: &str| -> Value {
        laurel
            .call("GET", &format!("/v1/admin/{what}"), Some(&admin), None)
            .json[what]
            .clone()
    };

    let (ok, out, err) = defs(&laurel, &data, &["apply", file, "--dry-run"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "+ stat bananas\n+ achievement FIRST_BANANA\n+ achievement BANANA_KING\n3 changes"
        ),
        "{out}"
    );
    assert!(out.contains("dry run"), "{out}");
    assert_eq!(listed("stats"), json!([]), "a dry run changes nothing");

    let (ok, out, err) = defs(&laurel, &data, &["apply", file]);
    assert!(ok, "{out}{err}");
    assert_eq!(listed("achievements").as_array().unwrap().len(), 2);
    let (ok, out, _) = defs(&laurel, &data, &["apply", file]);
    assert!(
        ok && out.starts_with("nothing to change: the definitions in force match"),
        "applying again changes nothing, and says so: {out}"
    );

    let (ok, exported, err) = defs(&laurel, &data, &["export"]);
    assert!(ok, "{err}");
    let exported: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(exported["stats"]["bananas"]["aggregation"], "sum");
    assert_eq!(exported["achievements"]["BANANA_KING"]["points"], 50);
    assert_eq!(
        exported["achievements"]["BANANA_KING"]["requires"],
        json!(["FIRST_BANANA"])
    );

    // Change a field and drop an achievement: the diff names both; only --prune archives.
    let mut next = game.clone();
    next["achievements"]["FIRST_BANANA"]["points"] = json!(20);
    next["achievements"]
        .as_object_mut()
        .unwrap()
        .remove("BANANA_KING");
    std::fs::write(dir.path().join("next.json"), next.to_string()).unwrap();
    let next_file = dir.path().join("next.json");
    let next_file = next_file.to_str().unwrap();
    let (ok, out, err) = defs(&laurel, &data, &["apply", next_file, "--prune"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("~ achievement FIRST_BANANA\n    points: 10 -> 20"),
        "{out}"
    );
    assert!(out.contains("- achievement BANANA_KING (archive)"), "{out}");
    let achievements = listed("achievements");
    let by_id = |id: &str| {
        achievements
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            by_id("FIRST_BANANA")["points"].clone(),
            by_id("FIRST_BANANA")["version"].clone()
        ),
        (json!(20), json!(2))
    );
    assert_eq!(by_id("BANANA_KING")["archived"], true);

    // A file the server refuses fails with the server's reasons, and a bad file says why.
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"stats": {"x": {"aggregation": "sum", "kind": "int", "oops": 1}}}"#,
    )
    .unwrap();
    let bad = dir.path().join("bad.json");
    let (ok, _, err) = defs(&laurel, &data, &["apply", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("oops"), "{err}");
}

/// The number of entries on DEFS.
fn defs_entries(nats: &laurel_tests::NatsServer) -> u64 {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let mut stream = js.get_stream("LAUREL_DEFS").await.unwrap();
        stream.info().await.unwrap().state.messages
    })
}

/// A definitions file is checked whole by the server, on a dry run too: a condition on an
/// undefined stat and a requirement naming an unknown achievement are both named, and
/// nothing changes. A valid file of five changes goes on DEFS as one entry.
#[test]
fn a_definitions_file_is_checked_whole_and_applied_all_or_nothing() {
    let nats = laurel_tests::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let laurel = Laurel::start(&data, &["--nats".into(), nats.url()]);
    let admin = laurel.token(&["--admin"]);
    let mut game = json!({
        "stats": {
            "kills": {"aggregation": "sum", "kind": "int"},
            "deaths": {"aggregation": "sum", "kind": "int"}
        },
        "achievements": {
            "A_FIRST": {"title": "First", "conditions": [{"stat": "kills", "at_least": 1}]},
            "B_GHOST": {"title": "Ghost", "conditions": [{"stat": "ghost", "at_least": 1}]},
            "C_NEXT": {"title": "Next", "requires": ["NOPE"], "conditions": [{"stat": "deaths", "at_least": 1}]}
        }
    });
    let file = dir.path().join("game.json");
    std::fs::write(&file, game.to_string()).unwrap();
    let file = file.to_str().unwrap();
    let before = defs_entries(&nats);
    for dry_run in [true, false] {
        let r = laurel.call(
            "PUT",
            "/v1/admin/definitions",
            Some(&admin),
            Some(json!({"definitions": game, "dry_run": dry_run})),
        );
        assert_eq!(r.status, 422, "{:?}", r.json);
        let fields: Vec<&str> = r.json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert!(
            fields
                .iter()
                .any(|f| f.starts_with("achievements.B_GHOST.conditions"))
                && fields
                    .iter()
                    .any(|f| f.starts_with("achievements.C_NEXT.requires")),
            "{fields:?}"
        );
        let args: &[&str] = if dry_run {
            &["apply", file, "--dry-run"]
        } else {
            &["apply", file]
        };
        let (ok, out, err) = defs(&laurel, &data, args);
        assert!(!ok, "{out}");
        assert!(err.contains("B_GHOST") && err.contains("NOPE"), "{err}");
        assert_eq!(defs_entries(&nats), before, "nothing applied");
    }
    // Fixed, the five changes go in as one entry, with every requirement in place.
    game["achievements"]["B_GHOST"]["conditions"][0]["stat"] = json!("deaths");
    game["achievements"]["C_NEXT"]["requires"] = json!(["A_FIRST"]);
    std::fs::write(file, game.to_string()).unwrap();
    let (ok, out, err) = defs(&laurel, &data, &["apply", file]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("applied 5 changes in one step"), "{out}");
    assert_eq!(defs_entries(&nats), before + 1);
    let achievements = laurel.call("GET", "/v1/admin/achievements", Some(&admin), None);
    assert_eq!(
        achievements.json["achievements"].as_array().unwrap().len(),
        3
    );
    // Pruning an achievement the file still requires is refused, whole.
    let r = laurel.call(
        "PUT",
        "/v1/admin/definitions",
        Some(&admin),
        Some(json!({
            "definitions": {"stats": game["stats"], "achievements": {"C_NEXT": game["achievements"]["C_NEXT"]}},
            "prune": true
        })),
    );
    assert_eq!(r.status, 422, "{:?}", r.json);
    assert_eq!(
        r.json["errors"][0]["field"],
        "achievements.C_NEXT.requires[0]"
    );
    assert_eq!(defs_entries(&nats), before + 1);
}

#[test]
fn the_dev_signing_key_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = data.join("dev-signing-key");
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let token = |data: &std::path::Path| {
        let out = Command::new(laurel_bin())
            .args(["token", "--player", "ann", "--data-dir"])
            .arg(data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let laurel = Laurel::start(&data, &[]);
    assert_eq!(mode(&key), 0o600, "made owner-only");
    drop(laurel);
    // A key an earlier version left readable by others is made owner-only when read.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    token(&data);
    assert_eq!(mode(&key), 0o600, "mended on read");
}

/// `--config FILE`: a flag wins over its environment variable, which wins over the file.
#[test]
fn a_config_file_gives_way_to_the_environment_and_to_flags() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("dev-signing-key"), "ab".repeat(32)).unwrap();
    let config = dir.path().join("laurel.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = {:?}\nplayer = \"from-file\"\nlisten = \"0.0.0.0:1\"\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let subject = |env: Option<&str>, flag: Option<&str>| {
        let mut command = Command::new(laurel_bin());
        command.args(["token", "--config"]).arg(&config);
        command.env_remove("LAUREL_TOKEN_PLAYER");
        command.env_remove("LAUREL_DATA_DIR");
        if let Some(env) = env {
            command.env("LAUREL_TOKEN_PLAYER", env);
        }
        if let Some(flag) = flag {
            command.args(["--player", flag]);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap();
        let payload = token.trim().split('.').nth(1).unwrap().to_string();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["sub"].as_str().unwrap().to_string()
    };
    assert_eq!(subject(None, None), "from-file");
    assert_eq!(subject(Some("from-env"), None), "from-env");
    assert_eq!(subject(Some("from-env"), Some("from-flag")), "from-flag");

    std::fs::write(&config, "lisen = \"0.0.0.0:1\"\n").unwrap();
    let out = Command::new(laurel_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown setting `lisen`"), "{err}");
}

/// For people: an error is said once, and nothing written to a file or pipe has colour
/// codes; `serve` says one line when it is ready (after the dev key's notice, on first
/// start), not one per partition.
#[test]
fn the_cli_speaks_once_and_plainly() {
    use std::io::{BufRead as _, BufReader};
    let out = Command::new(laurel_bin())
        .args(["defs", "apply", "/nonexistent/achievements.json"])
        .env_remove("LAUREL_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "said once: {err:?}");
    assert!(
        err.starts_with("laurel: reading /nonexistent/achievements.json"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = Command::new(laurel_bin())
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env_remove("LAUREL_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(serve.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let ready = line.contains("laurel ready on http://");
        lines.push(line);
        if ready {
            break;
        }
    }
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        lines.last().is_some_and(|l| l.contains("laurel ready")),
        "{lines:#?}"
    );
    assert!(
        lines.len() <= 2
            && lines[..lines.len() - 1]
                .iter()
                .all(|l| l.contains("development signing key")),
        "one line when ready, after the dev key's notice: {lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "no colour codes in a pipe: {lines:#?}"
    );
}

/// A port in use stops `laurel serve` with the address and the flag that set it, not a
/// bare OS error.
#[test]
fn a_listen_address_in_use_is_named_with_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let first = Laurel::start(&dir.path().join("one"), &[]);
    let address = first.url().trim_start_matches("http://").to_string();
    let two = dir.path().join("two");
    let stderr = laurel_tests::refusal_of(&[
        "serve".as_ref(),
        "--listen".as_ref(),
        address.as_ref(),
        "--data-dir".as_ref(),
        two.as_ref(),
    ]);
    assert!(
        stderr.contains(&format!(
            "cannot listen on {address} (--listen, LAUREL_LISTEN)"
        )),
        "{stderr}"
    );
}

/// An engine's `--metrics-listen` address in use stops `laurel engine` before it starts,
/// naming the address and the flag.
#[test]
fn an_engine_metrics_address_in_use_is_named_with_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let stderr = laurel_tests::refusal_of(&[
        "engine".as_ref(),
        "--nats".as_ref(),
        "nats://127.0.0.1:1".as_ref(),
        "--metrics-listen".as_ref(),
        address.as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_ref(),
    ]);
    assert!(
        stderr.contains(&format!(
            "cannot listen on {address} (--metrics-listen, LAUREL_METRICS_LISTEN)"
        )),
        "{stderr}"
    );
}

/// Every path or address `laurel serve` reads at start, when it cannot be used, stops the
/// start with one line naming it and the flag that set it (and nothing starts first).
#[test]
fn a_start_error_names_the_path_or_address_and_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let missing = dir.path().join("missing");
    let m = |name: &str| missing.join(name).display().to_string();
    let f = file.display().to_string();
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec!["--data-dir".into(), f.clone()],
            vec![f.clone(), "--data-dir".into(), "it is a file".into()],
        ),
        (
            vec![
                "--tls-cert".into(),
                m("cert.pem"),
                "--tls-key".into(),
                m("key.pem"),
            ],
            vec![m("cert.pem"), "--tls-cert".into()],
        ),
        (
            vec!["--jwks-file".into(), m("jwks.json")],
            vec![m("jwks.json"), "--jwks-file".into()],
        ),
        (
            vec!["--data-key-file".into(), m("data.key")],
            vec![m("data.key"), "--data-key-file".into()],
        ),
        (
            vec!["--gamekit-admin-keys".into(), m("keys")],
            vec![m("keys"), "--gamekit-admin-keys".into()],
        ),
        (
            vec!["--icons-store".into(), format!("dir:{f}")],
            vec![f.clone(), "--icons-store".into()],
        ),
        (
            vec!["--dev-key-file".into(), format!("{f}/key")],
            vec![format!("{f}/key"), "--dev-key-file".into()],
        ),
        (
            // Nothing listens on port 1; the password never shows.
            vec!["--nats".into(), "nats://laurel:s3cret@127.0.0.1:1".into()],
            vec![
                "nats://***@127.0.0.1:1".into(),
                "--nats".into(),
                "Connection refused".into(),
            ],
        ),
    ];
    for (i, (args, named)) in cases.iter().enumerate() {
        let mut serve = Command::new(laurel_bin());
        serve.arg("serve").arg("--listen").arg("127.0.0.1:0");
        if !args.contains(&"--data-dir".to_string()) {
            serve
                .arg("--data-dir")
                .arg(dir.path().join(format!("data-{i}")));
        }
        let out = serve.args(args).env_remove("LAUREL_LOG").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started: {err}");
        let said: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("created a development signing key"))
            .collect();
        assert_eq!(said.len(), 1, "{args:?}: one line, not {said:#?}");
        for name in named {
            assert!(
                said[0].contains(name.as_str()),
                "{args:?}: `{name}` in {said:?}"
            );
        }
        assert!(!said[0].contains("s3cret"), "{said:?}");
    }
}

/// `laurel token` with no dev key says where it looked and how to point elsewhere; with
/// `--dev-key-file` it signs with the key `serve` uses from that file.
#[test]
fn a_missing_dev_key_says_where_it_was_looked_for_and_a_key_file_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(laurel_bin())
        .args(["token", "--admin"])
        .current_dir(dir.path())
        .env_remove("LAUREL_DATA_DIR")
        .env_remove("LAUREL_DEV_KEY_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let looked = dir.path().join("laurel-data/dev-signing-key");
    for said in [
        looked.display().to_string().as_str(),
        "--data-dir",
        "LAUREL_DATA_DIR",
        "--config",
        "--dev-key-file",
        "laurel serve",
    ] {
        assert!(err.contains(said), "`{said}` in {err}");
    }

    let key = dir.path().join("shared-key");
    let laurel = Laurel::start(
        &dir.path().join("data"),
        &["--dev-key-file".into(), key.display().to_string()],
    );
    let out = Command::new(laurel_bin())
        .args(["token", "--admin", "--dev-key-file"])
        .arg(&key)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let r = laurel.call("GET", "/v1/admin/session", Some(token.trim()), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert!(
        !dir.path().join("data/dev-signing-key").exists(),
        "the named file, not the data dir's"
    );
}

/// A definitions file with a field of the wrong type is refused naming the field's path.
#[test]
fn a_definitions_file_of_the_wrong_shape_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("achievements.json");
    std::fs::write(
        &file,
        r#"{"stats": {"kills": {"aggregation": "sum", "kind": "int"}},
            "achievements": {"FIRST": {"title": "First", "points": "ten",
              "conditions": [{"stat": "kills", "at_least": 1}]}}}"#,
    )
    .unwrap();
    for command in [&["defs", "apply"][..], &["replay", "--defs"][..]] {
        let out = Command::new(laurel_bin())
            .args(command)
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "is not a definitions file: achievements.FIRST.points: invalid type: string \"ten\""
            ),
            "{command:?}: {err}"
        );
    }
}

/// `-h` is the essentials, `--help` everything, both grouped by purpose.
#[test]
fn short_help_is_the_essentials_and_long_help_everything_grouped() {
    let help = |flag: &str| {
        let out = Command::new(laurel_bin())
            .args(["serve", flag])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let (short, long) = (help("-h"), help("--help"));
    for heading in [
        "Listening:",
        "The log:",
        "Tokens:",
        "Limits:",
        "AWS GameKit drop-in:",
        "Icons:",
        "HTTPS:",
    ] {
        assert!(short.contains(heading), "-h: {heading}");
        assert!(long.contains(heading), "--help: {heading}");
    }
    assert!(long.contains("State and shutdown:"));
    for essential in [
        "--listen",
        "--data-dir",
        "--nats",
        "--jwks-url",
        "--dev-key-file",
        "--tls-cert",
    ] {
        assert!(short.contains(essential), "-h names {essential}");
    }
    for detail in [
        "--max-body-bytes",
        "--jwks-min-refetch-secs",
        "--icon-size",
        "--cached-players",
    ] {
        assert!(!short.contains(detail), "-h leaves {detail} to --help");
        assert!(long.contains(detail), "--help names {detail}");
    }
    assert!(
        short.lines().count() * 2 < long.lines().count(),
        "-h is short: {} lines against {}",
        short.lines().count(),
        long.lines().count()
    );
}
