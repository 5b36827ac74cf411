//! Encryption at rest on the embedded log (SPEC 4b): with `--data-key-file`, no player id is
//! in clear anywhere in the data dir (log, engine state, views); a wrong or missing key is a
//! refusal to start that changes nothing; rotation with `--data-old-key-file`; a `kill -9`
//! of a sealed Laurel loses and doubles nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use laurel_tests::{Laurel, laurel_bin};
use serde_json::{Value, json};

const PLAYER: &str = "player-with-a-findable-name";

fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    use base64::Engine as _;
    let path = dir.join(name);
    let key = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    std::fs::write(&path, format!("{key}\n")).unwrap();
    path
}

fn args(keys: &[(&str, &Path)]) -> Vec<String> {
    let mut out = vec!["--partitions".to_string(), "4".to_string()];
    for (flag, path) in keys {
        out.push(flag.to_string());
        out.push(path.display().to_string());
    }
    out
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(path, bytes);
            }
        }
    }
    out
}

/// The files under `dir` that hold `needle` in clear.
fn holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(path, _)| path)
        .collect()
}

/// Defines a stat and an achievement, sends `PLAYER` 4 wins and waits for the views.
fn play(laurel: &Laurel) {
    let admin = laurel.token(&["--admin"]);
    laurel.define_sum_stat(&admin, "wins");
    let r = laurel.call(
        "PUT",
        "/v1/admin/achievements/FIRST_WIN",
        Some(&admin),
        Some(json!({"title": "First win", "points": 5, "conditions": [{"stat": "wins", "at_least": 1}]})),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    send_wins(laurel, 4);
}

fn send_wins(laurel: &Laurel, wins: i64) -> Value {
    let server = laurel.token(&["--server"]);
    let r = laurel.call(
        "POST",
        "/v1/events",
        Some(&server),
        Some(json!({"events": [{"player_id": PLAYER, "stat": "wins", "value": wins}]})),
    );
    assert_eq!(r.status, 202, "{:?}", r.json);
    let token = r.json["token"].as_str().unwrap().to_string();
    stats(laurel, Some(&token))
}

fn stats(laurel: &Laurel, wait_for: Option<&str>) -> Value {
    let mine = laurel.token(&["--player", PLAYER]);
    let path = match wait_for {
        Some(t) => format!("/v1/players/me/stats?wait_for={t}"),
        None => "/v1/players/me/stats".to_string(),
    };
    let r = laurel.call("GET", &path, Some(&mine), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json
}

fn earned(laurel: &Laurel) -> Vec<Value> {
    let mine = laurel.token(&["--player", PLAYER]);
    let r = laurel.call("GET", "/v1/players/me/achievements", Some(&mine), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["earned"] == true)
        .map(|a| a["id"].clone())
        .collect()
}

/// `laurel serve` on `data` with `extra`, which must refuse to start: its error output.
fn refused(data: &Path, extra: &[String]) -> String {
    let out = Command::new(laurel_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    assert!(!out.status.success(), "laurel started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The check below finds a player id where Laurel writes one in clear: without a key, the
/// id is in the data dir (so an empty result with a key means something).
#[test]
fn without_a_data_key_player_ids_are_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut laurel = Laurel::start(&data, &args(&[]));
    play(&laurel);
    assert!(laurel.terminate());
    let found = holding(&data, PLAYER);
    assert!(
        found.iter().any(|p| p.starts_with(data.join("log"))),
        "the log holds the id in clear: {found:?}"
    );
    assert!(
        found.iter().any(|p| p.starts_with(data.join("views"))),
        "the views hold the id in clear: {found:?}"
    );
}

#[test]
fn a_data_key_seals_the_data_dir_opens_it_alone_and_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = key_file(dir.path(), "first.key", 1);
    let second = key_file(dir.path(), "second.key", 2);

    let mut laurel = Laurel::start(&data, &args(&[("--data-key-file", &first)]));
    play(&laurel);
    assert_eq!(earned(&laurel), vec![json!("FIRST_WIN")]);
    // A kill -9 of a sealed Laurel: what it took is there once after the restart.
    let after = send_wins(&laurel, 3);
    assert_eq!(after["stats"]["wins"], 7, "{after}");
    laurel.kill9();
    laurel.restart();
    assert_eq!(stats(&laurel, None)["stats"]["wins"], 7);
    assert!(laurel.terminate());
    assert_eq!(
        holding(&data, PLAYER),
        Vec::<PathBuf>::new(),
        "files hold the player id in clear"
    );

    // Refused without the key, and with another: nothing changes.
    let before = files(&data);
    let no_key = refused(&data, &args(&[]));
    assert!(no_key.contains("--data-key-file"), "{no_key}");
    let wrong = refused(&data, &args(&[("--data-key-file", &second)]));
    assert!(wrong.contains("does not open"), "{wrong}");
    assert_eq!(files(&data), before, "a refused start changed the data dir");

    // Rotation: the new key, with the old one as old; then the new key alone.
    let rotating = args(&[
        ("--data-key-file", &second),
        ("--data-old-key-file", &first),
    ]);
    let mut laurel = Laurel::start(&data, &rotating);
    assert_eq!(stats(&laurel, None)["stats"]["wins"], 7);
    assert_eq!(earned(&laurel), vec![json!("FIRST_WIN")]);
    assert!(laurel.terminate());
    let mut laurel = Laurel::start(&data, &args(&[("--data-key-file", &second)]));
    assert_eq!(send_wins(&laurel, 1)["stats"]["wins"], 8);
    assert!(laurel.terminate());
    let old = refused(&data, &args(&[("--data-key-file", &first)]));
    assert!(old.contains("does not open"), "{old}");
    assert_eq!(holding(&data, PLAYER), Vec::<PathBuf>::new());
}

/// `laurel rebuild` of a sealed data dir needs its key, and rebuilds sealed state.
#[test]
fn a_sealed_data_dir_is_rebuilt_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = key_file(dir.path(), "data.key", 9);
    let mut laurel = Laurel::start(&data, &args(&[("--data-key-file", &key)]));
    play(&laurel);
    assert!(laurel.terminate());
    let rebuild = |extra: &[String]| {
        Command::new(laurel_bin())
            .args(["rebuild", "--data-dir"])
            .arg(&data)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = rebuild(&args(&[]));
    assert!(!out.status.success(), "rebuilt without the key");
    let out = rebuild(&args(&[("--data-key-file", &key)]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(holding(&data, PLAYER), Vec::<PathBuf>::new());
    let laurel = Laurel::start(&data, &args(&[("--data-key-file", &key)]));
    assert_eq!(stats(&laurel, None)["stats"]["wins"], 4);
    assert_eq!(earned(&laurel), vec![json!("FIRST_WIN")]);
}

/// The records of the trees `<store>/<p>` (p < 4, as `args` sets) and `<store>/meta` of the
/// store at `path`, as stored (blinded keys, sealed values).
fn raw_trees(path: &Path, store: &str) -> Vec<(String, laurel_derived::Records)> {
    let opened = crate::support::open_store(path);
    let names = (0..4)
        .map(|p| format!("{store}/{p}"))
        .chain([format!("{store}/meta")]);
    names
        .map(|name| {
            let tree = opened.tree(&name).unwrap();
            let records = (0..=u8::MAX)
                .flat_map(|kind| tree.scan_kind(kind).unwrap())
                .collect();
            (name, records)
        })
        .collect()
}

/// Rewrites the store at `path` as versions before fjall kept it: the same records, one sled
/// tree per partition.
fn as_sled(path: &Path, store: &str) {
    let trees = raw_trees(path, store);
    std::fs::remove_dir_all(path).unwrap();
    let db = sled::open(path).unwrap();
    for (name, records) in trees {
        let tree = db.open_tree(name).unwrap();
        for (key, value) in records {
            tree.insert(key, value).unwrap();
        }
    }
    db.flush().unwrap();
}

/// A data dir of a version that kept engine state and views in sled: both stores are
/// imported on start, record for record (sealed values keep their bytes: a rebuild would
/// seal them anew), and the player carries on from there with nothing counted twice.
#[test]
fn stores_kept_in_sled_by_an_earlier_version_are_imported_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = key_file(dir.path(), "data.key", 7);
    let extra = args(&[("--data-key-file", &key)]);
    let mut laurel = Laurel::start(&data, &extra);
    play(&laurel);
    assert!(laurel.terminate());
    let kept = |store: &str, kind: u8| -> Vec<laurel_derived::Records> {
        raw_trees(&data.join(store), store)
            .into_iter()
            .map(|(_, records)| records.into_iter().filter(|(k, _)| k[0] == kind).collect())
            .collect()
    };
    let (players, views) = (kept("engine", b'P'), kept("views", b'S'));
    assert_eq!(
        players.iter().map(Vec::len).sum::<usize>(),
        1,
        "the player's engine state"
    );
    assert_eq!(
        views.iter().map(Vec::len).sum::<usize>(),
        1,
        "the player's stats view"
    );
    as_sled(&data.join("engine"), "engine");
    as_sled(&data.join("views"), "views");

    let mut laurel = Laurel::start(&data, &extra);
    assert_eq!(stats(&laurel, None)["stats"]["wins"], 4);
    assert_eq!(earned(&laurel), vec![json!("FIRST_WIN")]);
    assert!(laurel.terminate());
    for store in ["engine", "views"] {
        assert!(
            data.join(format!("{store}.sled-imported/db")).is_file(),
            "{store} kept"
        );
    }
    assert_eq!(kept("engine", b'P'), players, "imported, not rebuilt");
    assert_eq!(kept("views", b'S'), views, "imported, not rebuilt");
    let laurel = Laurel::start(&data, &extra);
    assert_eq!(send_wins(&laurel, 1)["stats"]["wins"], 5);
    assert_eq!(earned(&laurel), vec![json!("FIRST_WIN")]);
    assert_eq!(holding(&data.join("engine"), PLAYER), Vec::<PathBuf>::new());
}
