//! What the fuzz targets (`fuzz/`) run: each takes arbitrary bytes, must not panic, and
//! asserts what its decoder promises. They live in the library so that the corpora the
//! fuzzer found also run as ordinary tests on the stable toolchain (`fuzz_corpora` in the
//! integration tests), and the fuzz crate is one line per target.
//!
//! The first byte of an input chooses what the rest is (an encoding, a type, a kind of
//! caller), so one target covers every variant and the fuzzer learns the choice.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future as _;
use std::sync::OnceLock;

use base64::Engine as _;
use laurel_engine::Definitions;
use laurel_schemas::{
    AchievementSpec, DefinitionEvent, DefinitionsFile, Grant, Output, ReplayLine, ReplayRequest,
    Source, StatEvent, StatSpec, StatsEntry, StatsMessage, decode, encode,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::auth::{AuthConfig, Claims, Principal};
use crate::body::parse;
use laurel_app::ingest::{IngestBody, check_batch};

/// Decodes `data` as `T` from msgpack (as the log holds it) and from JSON (as the API and
/// files hold it); what decodes must encode and decode back to the same value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    if let Ok(value) = decode::<T>(data) {
        let again: T = decode(&encode(&value)).expect("an encoded message decodes");
        assert_eq!(again, value, "msgpack round trip");
        let json = serde_json::to_vec(&value).expect("a decoded message encodes as JSON");
        let again: T = serde_json::from_slice(&json).expect("its JSON decodes");
        assert_eq!(again, value, "msgpack to JSON round trip");
    }
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let again: T = decode(&encode(&value)).expect("a JSON message encodes as msgpack");
        assert_eq!(again, value, "JSON to msgpack round trip");
    }
}

/// Every wire type of the log and the API, in both encodings.
pub fn wire(data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    match choice % 10 {
        0 => round_trip::<StatEvent>(rest),
        1 => round_trip::<StatsEntry>(rest),
        2 => round_trip::<StatsMessage>(rest),
        3 => round_trip::<Grant>(rest),
        4 => round_trip::<Output>(rest),
        5 => round_trip::<DefinitionEvent>(rest),
        6 => round_trip::<ReplayRequest>(rest),
        7 => round_trip::<ReplayLine>(rest),
        8 => round_trip::<StatSpec>(rest),
        _ => round_trip::<AchievementSpec>(rest),
    }
}

/// The definitions the ingest and definitions targets check against.
fn base_definitions() -> &'static Definitions {
    static BASE: OnceLock<Definitions> = OnceLock::new();
    BASE.get_or_init(|| {
        let file: DefinitionsFile = serde_json::from_value(serde_json::json!({
            "stats": {
                "kills": {"aggregation": "sum", "kind": "int", "client_writable": true,
                          "max_delta": 100},
                "best_lap": {"aggregation": "min", "kind": "float", "client_writable": true,
                             "min_value": 0},
                "level": {"aggregation": "latest", "kind": "int", "max_value": 99},
                "gold": {"aggregation": "max", "kind": "int"}
            },
            "achievements": {
                "first_blood": {"title": "First blood",
                                "conditions": [{"stat": "kills", "at_least": 1}]},
                "veteran": {"title": "Veteran", "requires": ["first_blood"],
                            "conditions": [{"stat": "level", "at_least": 50}]}
            }
        }))
        .expect("the base definitions parse");
        Definitions::new()
            .overlay(&file, 0)
            .expect("the base definitions are valid")
            .defs
    })
}

/// The ingest body, in either encoding, from a player, a game server or an admin: parsed
/// and checked event by event as `POST /v1/events` does. An accepted event is valid, the
/// caller's to report, and survives the log's encoding.
pub fn ingest(data: &[u8]) {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let msgpack = choice & 1 == 1;
    let scopes = match (choice >> 1) % 3 {
        0 => "",
        1 => crate::auth::SERVER_SCOPE,
        _ => crate::auth::ADMIN_SCOPE,
    };
    let principal = Principal {
        subject: "player-1".into(),
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        expires_at: None,
    };
    let Ok(body) = parse::<IngestBody>(body, msgpack) else {
        return;
    };
    let Ok(events) = check_batch(
        &body,
        &principal.caller(),
        base_definitions(),
        1_000,
        laurel_app::Limits::default().max_event_age,
    ) else {
        return;
    };
    for (event, _) in events {
        if event.source == Source::Player {
            assert_eq!(
                event.player_id.as_str(),
                "player-1",
                "a player reports as itself"
            );
        }
        let checked =
            base_definitions().check_report(event.stat.as_str(), event.value, event.source);
        assert_eq!(
            checked,
            Ok(event.value),
            "an accepted value checks again unchanged"
        );
        let again: StatEvent = decode(&encode(&event)).expect("an accepted event decodes");
        assert_eq!(again, event);
    }
}

/// Sorted stat and achievement definitions, to compare two compiled sets.
fn contents(defs: &Definitions) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let stats = defs
        .stats()
        .map(|s| (s.name.to_string(), format!("{s:?}")))
        .collect();
    let achievements = defs
        .achievements()
        .map(|a| (a.id.to_string(), format!("{a:?}")))
        .collect();
    (stats, achievements)
}

/// A definitions file (as `laurel defs apply` and replay send it) and single admin
/// bodies, in either encoding, checked against the definitions in force. A file the server
/// accepts means exactly the changes it lists, and applied again changes nothing.
pub fn definitions(data: &[u8]) {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let msgpack = choice & 1 == 1;
    let base = base_definitions();
    match (choice >> 1) % 3 {
        0 => {
            let Ok(file) = parse::<DefinitionsFile>(body, msgpack) else {
                return;
            };
            let Ok(overlaid) = base.overlay(&file, 1_000) else {
                return;
            };
            let mut applied = base.clone();
            for change in &overlaid.changes {
                let again: DefinitionEvent = decode(&encode(change)).expect("a change decodes");
                assert_eq!(&again, change);
                applied.apply(change);
            }
            assert_eq!(
                contents(&applied),
                contents(&overlaid.defs),
                "the changes make the definitions the overlay says"
            );
            let twice = overlaid
                .defs
                .overlay(&file, 2_000)
                .expect("a file accepted once is accepted again");
            assert!(
                twice.changes.is_empty(),
                "a file applied again changes nothing: {:?}",
                twice.changes
            );
        }
        1 => {
            if let Ok(spec) = parse::<AchievementSpec>(body, msgpack) {
                let id = "fuzzed".try_into().expect("a valid id");
                let _ = base.check_achievement(&id, &spec);
            }
        }
        _ => {
            if let Ok(spec) = parse::<StatSpec>(body, msgpack) {
                let _ = spec.validate();
            }
        }
    }
}

/// The secret the token target signs with.
const SECRET: &[u8] = b"fuzzing-secret";

/// A bearer token: as sent (any bytes), or as a header and claims (the input split at its
/// first NUL) signed with the server's secret, so the fuzzer reaches claim checks past the
/// signature. A token the server takes names a player and has not expired.
pub fn token(data: &[u8]) {
    static AUTH: OnceLock<AuthConfig> = OnceLock::new();
    let auth = AUTH.get_or_init(|| {
        AuthConfig::hs256(
            SECRET,
            Claims {
                subject_claim: "sub".into(),
                ..Claims::default()
            },
        )
    });
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let token = if choice & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let (header, claims) = (&rest[..split], rest.get(split + 1..).unwrap_or_default());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let message = format!("{}.{}", b64.encode(header), b64.encode(claims));
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
                .expect("HMAC signs anything");
        format!("{message}.{signature}")
    };
    // HS256 checks never wait: the future is ready on its first poll.
    let verify = std::pin::pin!(auth.verify(&token));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let std::task::Poll::Ready(result) = verify.poll(&mut context) else {
        panic!("an HS256 check waited");
    };
    if let Ok(principal) = result {
        assert!(!principal.subject.is_empty(), "a principal names someone");
        let now = jsonwebtoken::get_current_timestamp();
        let expires = principal
            .expires_at
            .expect("a token the server takes has `exp`");
        assert!(
            expires + 30 >= now,
            "an expired token was taken: exp {expires}"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Runs `target` on every input of its corpus in `fuzz/corpus/`: what the fuzzer kept
    /// (inputs that reached new code) stays a regression test on the stable toolchain.
    fn run_corpus(name: &str, target: fn(&[u8])) -> usize {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(name);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&input));
            assert!(outcome.is_ok(), "{name}: {} panicked", path.display());
            count += 1;
        }
        count
    }

    #[test]
    fn every_corpus_input_runs_clean() {
        for (name, target) in [
            ("wire", super::wire as fn(&[u8])),
            ("ingest", super::ingest),
            ("definitions", super::definitions),
            ("token", super::token),
        ] {
            let count = run_corpus(name, target);
            assert!(count >= 10, "the {name} corpus holds only {count} inputs");
        }
    }
}
