//! The AWS GameKit drop-in through a real `laurel serve`: GameKit's own Lambda test cases
//! (aws-gamekit-unreal `functionsTests/test_achievements/`), translated, with Cognito-like
//! ID tokens (RS256, from a JWKS file) sent raw in `authorization` as GameKit's client
//! sends them, and the definitions imported from a GameKit admin list with
//! `laurel gamekit import`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use laurel_tests::{Laurel, Reply, laurel_bin};
use serde_json::{Value, json};
use tempfile::TempDir;

const BASE: &str = "/gamekit/achievements";
const ADMIN_SECRET: &str = "gamekit-test-admin-secret";
/// The AWS key pair GameKit's editor plugin signs admin calls with, in these tests.
const AWS_KEY: (&str, &str) = ("AKIDLAURELTEST", "laurel-test-aws-secret");

/// A Cognito user pool stand-in: an RSA key whose public half Laurel reads as a JWKS file.
struct Pool {
    key: EncodingKey,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Pool {
    fn new(dir: &std::path::Path) -> (Self, std::path::PathBuf) {
        // A fixed test key (generating one takes seconds in a debug build, in each test's
        // process); it signs nothing outside these tests.
        let key = EncodingKey::from_rsa_pem(include_bytes!("gamekit-pool-key.pem"))
            .expect("the test key parses");
        let mut public = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("public JWK");
        public.common.key_id = Some("pool-key".into());
        let path = dir.join("jwks.json");
        let set = JwkSet { keys: vec![public] };
        std::fs::write(&path, serde_json::to_vec(&set).unwrap()).unwrap();
        (Self { key }, path)
    }

    /// An ID token as Cognito issues it for a GameKit player.
    fn id_token(&self, player: Option<&str>) -> String {
        let mut claims = json!({"sub": "cognito-sub-1", "token_use": "id",
            "aud": "gamekit-client", "exp": now() + 600, "iat": now()});
        if let Some(player) = player {
            claims["custom:gk_user_id"] = json!(player);
        }
        self.sign(claims)
    }

    fn sign(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("pool-key".into());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

struct GameKit {
    _dir: TempDir,
    laurel: Laurel,
    pool: Pool,
}

/// GameKit's definitions as its admin API lists them: the Lambda tests' fixtures.
fn gamekit_admin_list() -> Value {
    let achievement = |id: &str, order: i32, max: u32, secret: bool, hidden: bool| {
        json!({"achievement_id": id, "title": format!("Title {id}"),
            "locked_description": "Locked", "unlocked_description": "Unlocked",
            "locked_icon_url": format!("icons/{id}_locked.png"), "unlocked_icon_url": "",
            "points": 10, "is_stateful": max > 1, "max_value": max, "is_secret": secret,
            "is_hidden": hidden, "order_number": order,
            "created_at": "2022-01-01T00:00:00+00:00", "updated_at": "2022-01-01T00:00:00+00:00"})
    };
    json!({"meta": {"code": 200, "message": "OK"}, "data": {"achievements": [
        achievement("EAT_BANANAS", 1, 3, false, false),
        achievement("FIRST_STEP", 2, 1, false, false),
        achievement("SECRET_ROOM", 3, 1, true, false),
        achievement("NOT_YET", 4, 1, false, true),
    ]}})
}

fn start() -> GameKit {
    start_with(&[])
}

/// [`start`] with more `laurel serve` flags.
fn start_with(flags: &[&str]) -> GameKit {
    let dir = TempDir::new().unwrap();
    let (pool, jwks) = Pool::new(dir.path());
    let keys = dir.path().join("aws-keys");
    std::fs::write(
        &keys,
        format!("# GameKit editor\n{} {}\n", AWS_KEY.0, AWS_KEY.1),
    )
    .unwrap();
    let mut args = vec![
        "--jwks-file".into(),
        jwks.display().to_string(),
        "--jwt-secret".into(),
        ADMIN_SECRET.into(),
        "--gamekit-admin-keys".into(),
        keys.display().to_string(),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let laurel = Laurel::start(&dir.path().join("data"), &args);
    GameKit {
        _dir: dir,
        laurel,
        pool,
    }
}

impl GameKit {
    fn admin_token(&self) -> String {
        // `aud` is checked only where `--jwt-audience` is set.
        let claims = json!({"sub": "admin", "exp": now() + 600, "scope": "laurel:admin",
            "aud": "laurel-aud"});
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(ADMIN_SECRET.as_bytes()),
        )
        .unwrap()
    }

    /// `laurel gamekit import` of the admin list, then `laurel defs apply` of the result.
    fn import(&self) {
        let list = self._dir.path().join("gamekit.json");
        std::fs::write(&list, gamekit_admin_list().to_string()).unwrap();
        let out = std::process::Command::new(laurel_bin())
            .args(["gamekit", "import"])
            .arg(&list)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let defs = self._dir.path().join("defs.json");
        std::fs::write(&defs, &out.stdout).unwrap();
        let apply = std::process::Command::new(laurel_bin())
            .args(["defs", "apply", "--url"])
            .arg(self.laurel.url())
            .args(["--token", &self.admin_token()])
            .arg(&defs)
            .output()
            .unwrap();
        assert!(
            apply.status.success(),
            "{}",
            String::from_utf8_lossy(&apply.stderr)
        );
    }

    /// A GameKit call: the ID token raw in `authorization`, as GameKit's client sends it.
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = token.map(|t| ("authorization", t)).into_iter().collect();
        let body = body.map(|b| ("application/json", b.as_bytes().to_vec()));
        self.laurel
            .client()
            .try_request_with(method, path, None, body, &headers)
            .expect("laurel answers")
    }

    fn player(&self, player: &str) -> String {
        self.pool.id_token(Some(player))
    }

    /// A GameKit admin call, signed with AWS SigV4 (`execute-api`) by `key`, as the editor
    /// plugin signs them.
    fn admin(&self, method: &str, path_and_query: &str, body: &str, key: (&str, &str)) -> Reply {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let host = self.laurel.url().trim_start_matches("http://").to_string();
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap();
        let authorization = laurel_gamekit::sigv4_authorization(
            method,
            path,
            query,
            &[
                ("host", &host),
                ("x-amz-date", &date),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
            key.0,
            key.1,
            "us-west-2",
        );
        let headers = [
            ("x-amz-date", date.as_str()),
            ("authorization", authorization.as_str()),
        ];
        let body = (!body.is_empty()).then(|| ("application/json", body.as_bytes().to_vec()));
        self.laurel
            .client()
            .try_request_with(method, path_and_query, None, body, &headers)
            .expect("laurel answers")
    }
}

/// Percent-encodes all but unreserved characters, as a query value.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `meta.message` as GameKit's Lambdas write it: Python's `http.client.responses[code]`.
fn python_reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        other => panic!("no reason listed for {other}"),
    }
}

/// GameKit's envelope with `code`, its message as the Lambdas word it, and (on a refusal)
/// `data: null` and nothing else, byte for byte.
fn assert_envelope(r: &Reply, code: u16) {
    assert_eq!(r.status, code, "{r:?}");
    assert_eq!(
        r.json["meta"],
        json!({"code": code, "message": python_reason(code)}),
        "{r:?}"
    );
    assert!(r.json.get("data").is_some(), "{r:?}");
    if code >= 400 {
        // As Python's json.dumps writes it: keys in order, `, ` and `: ` between.
        let body = format!(
            r#"{{"meta": {{"code": {code}, "message": "{}"}}, "data": null}}"#,
            python_reason(code)
        );
        assert_eq!(String::from_utf8_lossy(&r.body), body, "byte for byte");
    }
}

fn ids(r: &Reply) -> Vec<String> {
    r.json["data"]["achievements"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:?}"))
        .iter()
        .map(|a| a["achievement_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn get_achievements_as_gamekit_lists_them() {
    let g = start();
    let ann = g.player("ann");

    // test_lambda_returns_a_401_error_code_when_player_id_is_empty: the Lambda's envelope.
    let r = g.call("GET", BASE, Some(&g.pool.id_token(None)), None);
    assert_envelope(&r, 401);
    // No token, a malformed, expired or access token: API Gateway's authorizer answers.
    let expired = g.pool.sign(json!({"sub": "s", "custom:gk_user_id": "ann",
        "token_use": "id", "exp": now() - 3600}));
    let access = g.pool.sign(json!({"sub": "s", "custom:gk_user_id": "ann",
        "token_use": "access", "exp": now() + 600}));
    for token in [
        None,
        Some("not-a-jwt".to_string()),
        Some(expired),
        Some(access),
    ] {
        let r = g.call("GET", BASE, token.as_deref(), None);
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.json, json!({"message": "Unauthorized"}));
    }
    // test_lambda_returns_a_200_success_code_achievement_scan_is_empty
    let r = g.call("GET", BASE, Some(&ann), None);
    assert_envelope(&r, 200);
    assert_eq!(r.json["data"]["achievements"], json!([]));
    assert!(r.json.get("paging").is_none(), "{r:?}");

    g.import();
    // test_lambda_returns_a_200_success_code_using_defaults_when_query_string_is_empty:
    // hidden ones are not listed; secret ones are.
    let r = g.call("GET", BASE, Some(&ann), None);
    assert_envelope(&r, 200);
    assert_eq!(ids(&r), ["EAT_BANANAS", "FIRST_STEP", "SECRET_ROOM"]);
    let first = &r.json["data"]["achievements"][0];
    for (field, want) in [
        ("title", json!("Title EAT_BANANAS")),
        ("locked_icon_url", json!("icons/EAT_BANANAS_locked.png")),
        ("unlocked_icon_url", json!("")),
        ("max_value", json!(3)),
        ("points", json!(10)),
        ("order_number", json!(1)),
        ("is_stateful", json!(true)),
        ("is_secret", json!(false)),
        ("is_hidden", json!(false)),
        // test_lambda_returns_a_200_success_code_with_unearned_achievements_using_defaults
        ("current_value", json!(0)),
        ("earned", json!(false)),
        ("earned_at", Value::Null),
    ] {
        assert_eq!(first[field], want, "{field}: {first}");
    }

    // test_lambda_returns_a_200_success_code_when_there_are_more_pages: a page of one, then
    // the next with the previous answer's start key and paging token.
    let r = g.call(
        "GET",
        &format!("{BASE}?limit=1&wait_for_all_pages=0"),
        Some(&ann),
        None,
    );
    assert_envelope(&r, 200);
    assert_eq!(ids(&r), ["EAT_BANANAS"]);
    let paging = r.json["paging"].clone();
    assert_eq!(paging["version"], "1.0.0", "{r:?}");
    let start_key = paging["next_start_key"].to_string();
    let token = paging["paging_token"].as_str().unwrap().to_string();
    let page = |player: &str, token: &str| {
        g.call(
            "GET",
            &format!(
                "{BASE}?limit=1&start_key={}&paging_token={}",
                url_encode(&start_key),
                url_encode(token)
            ),
            Some(player),
            None,
        )
    };
    let r = page(&ann, &token);
    assert_envelope(&r, 200);
    assert_eq!(ids(&r), ["FIRST_STEP"]);
    // A token is the player's own and its page's: another player's, a forged or a
    // malformed one is GameKit's 403 (GameKit itself crashes on a malformed one).
    let bob = g.player("bob");
    let forged = base64::engine::general_purpose::STANDARD.encode(format!("ABCD:{}", now() + 60));
    for (who, token) in [
        (&bob, token.as_str()),
        (&ann, forged.as_str()),
        (&ann, "%%%"),
    ] {
        let r = page(who, token);
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            r#"{"meta": {"code": 403, "message": "Invalid paging token"}, "data": null}"#,
            "as GetAchievements words it"
        );
    }
    // wait_for_all_pages=1 takes every page at once.
    let r = g.call(
        "GET",
        &format!("{BASE}?limit=1&wait_for_all_pages=1"),
        Some(&ann),
        None,
    );
    assert_eq!(ids(&r), ["EAT_BANANAS", "FIRST_STEP", "SECRET_ROOM"]);
    assert!(r.json.get("paging").is_none(), "{r:?}");
    // Where GameKit answers 500 (int() and strtobool() raising), a clean 400.
    for query in [
        "limit=ten",
        "wait_for_all_pages=maybe",
        "start_key=%7Bnot-json",
    ] {
        let r = g.call("GET", &format!("{BASE}?{query}"), Some(&ann), None);
        assert_envelope(&r, 400);
    }
    // test_lambda_returns_a_200_success_code_when_query_string_passed: a limit out of
    // range is GameKit's 100.
    let r = g.call(
        "GET",
        &format!("{BASE}?limit=0&use_consistent_read=1"),
        Some(&ann),
        None,
    );
    assert_eq!(ids(&r).len(), 3);
}

#[test]
fn get_achievement_and_unlock_as_gamekit_do() {
    let g = start();
    g.import();
    let ann = g.player("ann");
    let one = |id: &str, token: &str| g.call("GET", &format!("{BASE}/{id}"), Some(token), None);
    let unlock = |id: &str, body: Option<&str>| {
        g.call("POST", &format!("{BASE}/{id}/unlock"), Some(&ann), body)
    };

    // GetAchievement: 401 without a player; 404 for hidden, for unknown, and for secret
    // until earned; 200 with the player's progress.
    assert_envelope(&one("FIRST_STEP", &g.pool.id_token(None)), 401);
    for id in ["NOT_YET", "NO_SUCH", "SECRET_ROOM"] {
        assert_envelope(&one(id, &ann), 404);
    }
    let r = one("EAT_BANANAS", &ann);
    assert_envelope(&r, 200);
    assert_eq!(r.json["data"]["earned"], false);

    // UpdateAchievements: 400 for an empty body, a missing, zero, negative or non-integer
    // increment_by; 404 for hidden and unknown achievements.
    for body in [
        None,
        Some("{}"),
        Some(r#"{"increment_by": 0}"#),
        Some(r#"{"increment_by": -1}"#),
        Some(r#"{"increment_by": 1.5}"#),
        Some(r#"{"increment_by": "1"}"#),
    ] {
        assert_envelope(&unlock("EAT_BANANAS", body), 400);
    }
    assert_envelope(&unlock("NOT_YET", Some(r#"{"increment_by": 1}"#)), 404);
    assert_envelope(&unlock("NO_SUCH", Some(r#"{"increment_by": 1}"#)), 404);

    // test_lambda_returns_a_200_success_code_when_incrementing: progress, then the unlock
    // (newly_earned exactly once), then progress clamped to max_value.
    let r = unlock("EAT_BANANAS", Some(r#"{"increment_by": 2}"#));
    assert_envelope(&r, 200);
    assert_eq!(r.json["data"]["current_value"], 2, "{r:?}");
    assert_eq!(r.json["data"]["earned"], false);
    // UpdateAchievements sets `newly_earned` on the newly earned path alone.
    assert_eq!(r.json["data"].get("newly_earned"), None, "absent: {r:?}");
    let r = unlock("EAT_BANANAS", Some(r#"{"increment_by": 2}"#));
    assert_eq!(r.json["data"]["current_value"], 3, "clamped: {r:?}");
    assert_eq!(r.json["data"]["earned"], true);
    assert_eq!(r.json["data"]["newly_earned"], true);
    assert!(r.json["data"]["earned_at"].is_string(), "{r:?}");
    let mut keys: Vec<&String> = r.json["data"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "achievement_id",
            "current_value",
            "earned",
            "earned_at",
            "is_hidden",
            "is_secret",
            "is_stateful",
            "locked_description",
            "locked_icon_url",
            "max_value",
            "newly_earned",
            "order_number",
            "points",
            "title",
            "unlocked_description",
            "unlocked_icon_url"
        ],
        "GameKit's fields, no more: {r:?}"
    );
    let r = unlock("EAT_BANANAS", Some(r#"{"increment_by": 1}"#));
    assert_eq!(r.json["data"]["current_value"], 3);
    assert_eq!(r.json["data"].get("newly_earned"), None, "only once: {r:?}");

    // test_lambda_returns_a_200_code_for_secret_earned_achievement
    let r = unlock("SECRET_ROOM", Some(r#"{"increment_by": 1}"#));
    assert_eq!(r.json["data"]["newly_earned"], true, "{r:?}");
    assert_envelope(&one("SECRET_ROOM", &ann), 200);
    assert_envelope(&one("SECRET_ROOM", &g.player("bob")), 404);

    // The unlock went through Laurel's log and engine: its own API sees it too.
    let admin = g.admin_token();
    let r = g
        .laurel
        .call("GET", "/v1/players/ann/achievements", Some(&admin), None);
    let earned: Vec<&str> = r.json["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["earned"] == true)
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(earned, ["EAT_BANANAS", "SECRET_ROOM"], "{r:?}");
}

#[test]
fn admin_calls_as_gamekit_makes_them() {
    let g = start();
    let admin = format!("{BASE}/admin");
    let list = gamekit_admin_list()["data"]["achievements"].clone();
    let body = json!({"achievements": list}).to_string();

    // API Gateway's AWS_IAM: unsigned, wrongly signed or unknown keys get 403.
    let r = g.call("POST", &admin, None, Some(&body));
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.json["message"].is_string(), "{r:?}");
    for key in [(AWS_KEY.0, "wrong-secret"), ("AKIDUNKNOWN", AWS_KEY.1)] {
        let r = g.admin("POST", &admin, &body, key);
        assert_eq!(r.status, 403, "{key:?}: {r:?}");
    }

    // AdminAddAchievements: 400 for an empty body, a missing or empty list; 200 with the
    // achievements as stored.
    for bad in [
        "",
        "{}",
        r#"{"achievements": []}"#,
        r#"{"achievements": "A"}"#,
    ] {
        assert_envelope(&g.admin("POST", &admin, bad, AWS_KEY), 400);
    }
    let r = g.admin("POST", &admin, &body, AWS_KEY);
    assert_envelope(&r, 200);
    assert_eq!(
        r.json["data"]["achievements"].as_array().unwrap().len(),
        4,
        "{r:?}"
    );
    let first = r.json["data"]["achievements"][0].clone();
    assert_eq!(first["max_value"], 3);
    // Each item as DynamoDB's ALL_NEW has it: the fields given, and the times GameKit
    // stamps (Python's isoformat), the fixture's own times ignored.
    let python_time = |v: &Value| {
        let t = v.as_str().unwrap_or_default();
        t.len() >= 25
            && t.ends_with("+00:00")
            && t.as_bytes()[10] == b'T'
            && time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .is_ok()
    };
    assert!(python_time(&first["created_at"]), "{first}");
    assert_eq!(first["created_at"], first["updated_at"], "{first}");
    assert_ne!(first["created_at"], "2022-01-01T00:00:00+00:00");
    // An update keeps created_at and moves updated_at.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let r = g.admin("POST", &admin, &body, AWS_KEY);
    let again = &r.json["data"]["achievements"][0];
    assert_eq!(again["created_at"], first["created_at"], "{again}");
    assert!(python_time(&again["updated_at"]), "{again}");
    assert_ne!(again["updated_at"], first["updated_at"], "{again}");
    // AdminAddAchievements sanitizes the id, title, descriptions and icon URLs.
    let tagged = json!({"achievements": [{"achievement_id": "TAGGED", "title": "Hi <script>x</script><b>y</b>",
        "locked_description": "Eat <img src=x onerror=alert(1)>bananas",
        "unlocked_description": "<a href='https://x'>Done</a>", "locked_icon_url": "", "unlocked_icon_url": "",
        "points": 1, "is_stateful": false, "max_value": 1, "is_secret": false, "is_hidden": true, "order_number": 9}]});
    let r = g.admin("POST", &admin, &tagged.to_string(), AWS_KEY);
    assert_envelope(&r, 200);
    let stored = &r.json["data"]["achievements"][0];
    assert_eq!(stored["title"], "Hi x<b>y</b>", "{stored}");
    assert_eq!(stored["locked_description"], "Eat bananas", "{stored}");
    assert_eq!(stored["unlocked_description"], "Done", "{stored}");
    let r = g.admin("GET", &admin, "", AWS_KEY);
    let listed = r.json["data"]["achievements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["achievement_id"] == "TAGGED")
        .cloned()
        .unwrap();
    assert_eq!(
        &listed, stored,
        "the admin list reads back what was answered"
    );
    g.admin(
        "DELETE",
        &format!(
            "{admin}?payload={}",
            url_encode(&json!({"achievement_ids": ["TAGGED"]}).to_string()).replace('%', "%25")
        ),
        "",
        AWS_KEY,
    );
    // Players see them at once (hidden ones not).
    let r = g.call("GET", BASE, Some(&g.player("ann")), None);
    assert_eq!(ids(&r), ["EAT_BANANAS", "FIRST_STEP", "SECRET_ROOM"]);

    // AdminGetAchievements: every achievement, hidden included; pages by next_start_key.
    let r = g.admin("GET", &admin, "", AWS_KEY);
    assert_envelope(&r, 200);
    assert_eq!(
        ids(&r),
        ["EAT_BANANAS", "FIRST_STEP", "SECRET_ROOM", "NOT_YET"]
    );
    let r = g.admin(
        "GET",
        &format!("{admin}?limit=3&wait_for_all_pages=0"),
        "",
        AWS_KEY,
    );
    assert_eq!(ids(&r).len(), 3);
    let next = r.json["paging"]["next_start_key"].to_string();
    let enc = url_encode(&next);
    let r = g.admin(
        "GET",
        &format!("{admin}?limit=3&start_key={enc}"),
        "",
        AWS_KEY,
    );
    assert_eq!(ids(&r), ["NOT_YET"], "{r:?}");

    // AdminDeleteAchievements: 400 without payload or ids; the ids URL-encoded twice in
    // `payload`, as GameKit's client sends them; 204; ids not defined are skipped.
    let twice = |ids: Value| -> String {
        let once = url_encode(&json!({"achievement_ids": ids}).to_string());
        once.replace('%', "%25")
    };
    for query in [String::new(), format!("?payload={}", twice(json!([])))] {
        assert_envelope(
            &g.admin("DELETE", &format!("{admin}{query}"), "", AWS_KEY),
            400,
        );
    }
    let r = g.admin(
        "DELETE",
        &format!(
            "{admin}?payload={}",
            twice(json!(["FIRST_STEP", "NEVER_DEFINED"]))
        ),
        "",
        AWS_KEY,
    );
    assert_eq!(r.status, 204, "{r:?}");
    let r = g.admin("GET", &admin, "", AWS_KEY);
    assert_eq!(ids(&r), ["EAT_BANANAS", "SECRET_ROOM", "NOT_YET"]);
    let r = g.call(
        "GET",
        &format!("{BASE}/FIRST_STEP"),
        Some(&g.player("ann")),
        None,
    );
    assert_envelope(&r, 404);
}

/// `--jwt-audience` applies to GameKit's ID tokens as to every token: one naming another
/// audience, or none, is refused as API Gateway refuses it.
#[test]
fn gamekit_tokens_must_name_the_configured_audience() {
    let g = start_with(&["--jwt-audience", "laurel-aud"]);
    g.import();
    let token = |aud: Option<&str>| {
        let mut claims = json!({"sub": "s", "token_use": "id", "custom:gk_user_id": "ann",
            "exp": now() + 600});
        if let Some(aud) = aud {
            claims["aud"] = json!(aud);
        }
        g.pool.sign(claims)
    };
    for refused in [token(Some("other")), token(None)] {
        for (method, path, body) in [
            ("GET", BASE.to_string(), None),
            ("GET", format!("{BASE}/EAT_BANANAS"), None),
            (
                "POST",
                format!("{BASE}/EAT_BANANAS/unlock"),
                Some(r#"{"increment_by": 1}"#),
            ),
        ] {
            let r = g.call(method, &path, Some(&refused), body);
            assert_eq!(r.status, 401, "{method} {path}: {r:?}");
            assert_eq!(r.json, json!({"message": "Unauthorized"}));
        }
    }
    let r = g.call("GET", BASE, Some(&token(Some("laurel-aud"))), None);
    assert_envelope(&r, 200);
    let r = g.call(
        "POST",
        &format!("{BASE}/EAT_BANANAS/unlock"),
        Some(&token(Some("laurel-aud"))),
        Some(r#"{"increment_by": 1}"#),
    );
    assert_envelope(&r, 200);
}
