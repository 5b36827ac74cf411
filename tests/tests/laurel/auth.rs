//! Token checks of a real `laurel serve` against keys made here: RS256, ES256 and EdDSA from
//! a JWKS file or URL, Cognito access tokens, and every way a token must be refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use laurel_tests::{Laurel, wait_until};
use p256::pkcs8::EncodePrivateKey as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A private key, its algorithm and `kid`, and its public half as a JWK.
struct Signer {
    kid: &'static str,
    algorithm: Algorithm,
    key: EncodingKey,
    public: Jwk,
}

impl Signer {
    fn new(kid: &'static str, algorithm: Algorithm, key: EncodingKey) -> Self {
        let public = Jwk::from_encoding_key(&key, algorithm).expect("public JWK");
        Self::with_public(kid, algorithm, key, public)
    }

    fn with_public(
        kid: &'static str,
        algorithm: Algorithm,
        key: EncodingKey,
        mut public: Jwk,
    ) -> Self {
        public.common.key_id = Some(kid.to_string());
        Self {
            kid,
            algorithm,
            key,
            public,
        }
    }

    fn rsa(kid: &'static str) -> (Self, String) {
        let private =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation");
        let pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("public PEM");
        let der = private.to_pkcs1_der().expect("PKCS#1 DER");
        let key = EncodingKey::from_rsa_der(der.as_bytes());
        (Self::new(kid, Algorithm::RS256, key), pem)
    }

    fn ec(kid: &'static str) -> Self {
        let private = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
        let der = private.to_pkcs8_der().expect("PKCS#8 DER");
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_bytes()),
        )
    }

    fn ed(kid: &'static str) -> Self {
        let private = ed25519_dalek::SigningKey::generate(&mut rsa::rand_core::OsRng);
        let der = private.to_pkcs8_der().expect("PKCS#8 DER");
        // jsonwebtoken derives Ed25519 JWKs only from v1 PKCS#8; this one is v2.
        let public = serde_json::from_value(json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
            "x": B64.encode(private.verifying_key().as_bytes())}))
        .expect("Ed25519 JWK");
        let key = EncodingKey::from_ed_der(der.as_bytes());
        Self::with_public(kid, Algorithm::EdDSA, key, public)
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.key).expect("signing")
    }
}

/// The keys of the identity provider these tests play, made once per test binary.
struct Provider {
    rsa: Signer,
    rsa_public_pem: String,
    ec: Signer,
    ed: Signer,
    /// Not published at first: the key the provider rotates to.
    next: Signer,
    /// Never published: an attacker's key reusing the RSA key's `kid`.
    forger: Signer,
}

fn provider() -> &'static Provider {
    static PROVIDER: OnceLock<Provider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let (rsa, rsa_public_pem) = Signer::rsa("rsa-1");
        let (forger, _) = Signer::rsa("rsa-1");
        Provider {
            rsa,
            rsa_public_pem,
            ec: Signer::ec("ec-1"),
            ed: Signer::ed("ed-1"),
            next: Signer::ec("ec-2"),
            forger,
        }
    })
}

fn jwks(signers: &[&Signer]) -> Value {
    serde_json::to_value(JwkSet {
        keys: signers.iter().map(|s| s.public.clone()).collect(),
    })
    .expect("JWKS JSON")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "my-game";

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + 600, "iss": ISSUER, "aud": AUDIENCE})
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().expect("object").remove(key);
    claims
}

/// An unsigned token: `{"alg":"none"}`.
fn unsigned(claims: &Value) -> String {
    let header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = B64.encode(serde_json::to_vec(claims).expect("json"));
    format!("{header}.{payload}.")
}

/// A valid token whose payload was changed after signing.
fn tampered(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = B64.encode(serde_json::to_vec(claims).expect("json"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}

fn status(laurel: &Laurel, path: &str, token: &str) -> u16 {
    laurel.call("GET", path, Some(token), None).status
}

fn start_with_file(dir: &TempDir, extra: &[&str]) -> Laurel {
    let p = provider();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&p.rsa, &p.ec, &p.ed]).to_string()).expect("write JWKS");
    let mut args = vec![
        "--jwks-file".to_string(),
        file.display().to_string(),
        "--jwt-issuer".into(),
        ISSUER.into(),
        "--jwt-audience".into(),
        AUDIENCE.into(),
        "--partitions".into(),
        "2".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Laurel::start(&dir.path().join("data"), &args)
}

#[test]
fn rs256_es256_and_eddsa_tokens_from_a_jwks_file_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let laurel = start_with_file(&dir, &[]);
    let p = provider();
    for signer in [&p.rsa, &p.ec, &p.ed] {
        let token = signer.sign(&claims("ann"));
        assert_eq!(
            status(&laurel, "/v1/players/me/stats", &token),
            200,
            "{:?}",
            signer.algorithm
        );
    }
    // With a key set configured, no dev key is made: HS256 is off.
    assert!(!dir.path().join("data/dev-signing-key").exists());
}

#[test]
fn every_invalid_token_gets_401() {
    let dir = tempfile::tempdir().unwrap();
    // An HS256 secret is configured too, so HS256 tokens are checked rather than refused
    // outright: the RSA public key must still not work as an HMAC secret.
    let laurel = start_with_file(&dir, &["--jwt-secret", "dev-secret"]);
    let p = provider();
    let good = claims("ann");
    let valid = p.rsa.sign(&good);
    let hs256 = |secret: &[u8], claims: &Value, kid: Option<&str>| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
    };
    let mut other_kid = Header::new(Algorithm::RS256);
    other_kid.kid = Some("ec-1".into());
    let cases = [
        (
            "bad signature (another key, same kid)",
            p.forger.sign(&good),
        ),
        ("alg none", unsigned(&good)),
        (
            "HS256 signed with the RSA public key",
            hs256(p.rsa_public_pem.as_bytes(), &good, Some("rsa-1")),
        ),
        (
            "RS256 naming the kid of an ES256 key",
            jsonwebtoken::encode(&other_kid, &good, &p.rsa.key).unwrap(),
        ),
        (
            "expired",
            p.rsa.sign(&with(good.clone(), "exp", json!(now() - 3600))),
        ),
        (
            "exp as a string",
            p.rsa
                .sign(&with(good.clone(), "exp", json!((now() + 600).to_string()))),
        ),
        ("no exp", p.rsa.sign(&without(good.clone(), "exp"))),
        (
            "not valid before tomorrow",
            p.rsa
                .sign(&with(good.clone(), "nbf", json!(now() + 86_400))),
        ),
        (
            "nbf past the leeway",
            p.ec.sign(&with(good.clone(), "nbf", json!(now() + 120))),
        ),
        (
            "nbf as a string",
            p.rsa
                .sign(&with(good.clone(), "nbf", json!((now() - 60).to_string()))),
        ),
        ("no sub", p.ec.sign(&without(good.clone(), "sub"))),
        (
            "wrong issuer",
            p.ed.sign(&with(good.clone(), "iss", json!("https://evil.test"))),
        ),
        (
            "wrong audience",
            p.ed.sign(&with(good.clone(), "aud", json!("another-game"))),
        ),
        ("no audience", p.ed.sign(&without(good.clone(), "aud"))),
        ("no issuer", p.ed.sign(&without(good.clone(), "iss"))),
        ("unknown key", p.next.sign(&good)),
        (
            "tampered payload",
            tampered(&valid, &with(good.clone(), "sub", json!("bob"))),
        ),
        (
            "an ID token",
            p.rsa.sign(&with(good.clone(), "token_use", json!("id"))),
        ),
        (
            "HS256 with the wrong secret",
            hs256(b"not-the-secret", &good, None),
        ),
        ("not a JWT", "not.a.jwt".to_string()),
    ];
    for (what, token) in &cases {
        let r = laurel.call("GET", "/v1/players/me/stats", Some(token), None);
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
    }
    // The refusal says why, for the developer holding the token (not just "InvalidToken").
    for (what, says) in [
        ("expired", "expired"),
        ("not valid before tomorrow", "`nbf`"),
        ("wrong audience", "`aud`"),
        ("wrong issuer", "`iss`"),
        ("not a JWT", "not a JSON Web Token"),
        ("bad signature (another key, same kid)", "signature"),
    ] {
        let token = &cases.iter().find(|(w, _)| *w == what).unwrap().1;
        let r = laurel.call("GET", "/v1/players/me/stats", Some(token), None);
        let detail = r.json["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{what}: {detail}");
    }
    assert_eq!(status(&laurel, "/v1/players/me/stats", &valid), 200);
    let skewed = p.rsa.sign(&with(good.clone(), "nbf", json!(now() + 10)));
    assert_eq!(
        status(&laurel, "/v1/players/me/stats", &skewed),
        200,
        "an nbf inside the clock-skew leeway is accepted"
    );
    let started = p.ed.sign(&with(good.clone(), "nbf", json!(now() - 60)));
    assert_eq!(status(&laurel, "/v1/players/me/stats", &started), 200);
    assert_eq!(
        status(
            &laurel,
            "/v1/players/me/stats",
            &hs256(b"dev-secret", &good, None)
        ),
        200,
        "the configured HS256 secret still works"
    );
}

#[test]
fn scopes_come_from_scope_scp_or_cognito_groups() {
    let dir = tempfile::tempdir().unwrap();
    let laurel = start_with_file(&dir, &[]);
    let p = provider();
    let admin_list = "/v1/admin/achievements";
    let player = p.rsa.sign(&claims("ann"));
    assert_eq!(status(&laurel, admin_list, &player), 403);
    assert_eq!(
        status(&laurel, "/v1/players/bob/achievements", &player),
        403,
        "a player token on another player's data"
    );
    let granted = [
        with(claims("ops"), "scope", json!("openid laurel:admin")),
        with(claims("ops"), "scp", json!(["laurel:admin"])),
        with(claims("ops"), "cognito:groups", json!(["laurel:admin"])),
    ];
    for claims in &granted {
        assert_eq!(
            status(&laurel, admin_list, &p.ec.sign(claims)),
            200,
            "{claims}"
        );
    }
    let server = p.ed.sign(&with(
        claims("game-server"),
        "scp",
        json!(["laurel:server"]),
    ));
    assert_eq!(
        status(&laurel, "/v1/players/bob/achievements", &server),
        200
    );
    assert_eq!(status(&laurel, admin_list, &server), 403);
}

/// A JWKS endpoint whose key set can change, counting its fetches.
struct JwksServer {
    url: String,
    document: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl JwksServer {
    fn start(document: Value) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let document = Arc::new(Mutex::new(document));
        let fetches = Arc::new(AtomicUsize::new(0));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let (doc, count) = (document.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                count.fetch_add(1, Ordering::SeqCst);
                let body = doc.lock().unwrap().clone();
                async move { axum::Json(body) }
            }),
        );
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            document,
            fetches,
            _runtime: runtime,
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn cognito_claims(sub: &str, client: &str, token_use: &str) -> Value {
    // Cognito access tokens: no `aud`, a `client_id`, `token_use: access`, groups as scopes.
    json!({"sub": sub, "exp": now() + 600, "iss": ISSUER, "client_id": client,
           "token_use": token_use, "cognito:groups": ["laurel:admin"], "username": sub})
}

fn start_with_url(dir: &TempDir, server: &JwksServer, min_refetch_secs: u64) -> Laurel {
    Laurel::start(
        &dir.path().join("data"),
        &[
            "--jwks-url".to_string(),
            server.url.clone(),
            "--jwks-min-refetch-secs".into(),
            min_refetch_secs.to_string(),
            "--jwt-issuer".into(),
            ISSUER.into(),
            "--jwt-client-id".into(),
            "app-client".into(),
            "--partitions".into(),
            "2".into(),
        ],
    )
}

#[test]
fn cognito_access_tokens_are_checked_by_client_id_and_token_use() {
    let p = provider();
    let server = JwksServer::start(jwks(&[&p.rsa]));
    let dir = tempfile::tempdir().unwrap();
    let laurel = start_with_url(&dir, &server, 3600);
    let list = "/v1/admin/achievements";
    let access = p.rsa.sign(&cognito_claims("ops", "app-client", "access"));
    assert_eq!(status(&laurel, list, &access), 200);
    let refused = [
        (
            "another client",
            cognito_claims("ops", "other-client", "access"),
        ),
        ("an ID token", cognito_claims("ops", "app-client", "id")),
        (
            "no token_use",
            without(cognito_claims("ops", "app-client", "access"), "token_use"),
        ),
        (
            "no client_id",
            without(cognito_claims("ops", "app-client", "access"), "client_id"),
        ),
    ];
    for (what, claims) in &refused {
        assert_eq!(status(&laurel, list, &p.rsa.sign(claims)), 401, "{what}");
    }
}

#[test]
fn unknown_kid_refetches_the_key_set_at_most_once_per_interval() {
    let p = provider();
    let server = JwksServer::start(jwks(&[&p.rsa]));
    let dir = tempfile::tempdir().unwrap();
    let laurel = start_with_url(&dir, &server, 3600);
    let at_start = server.fetches();
    assert_eq!(at_start, 1, "the key set is fetched once at start");
    // Tokens naming unknown keys: the first may fetch again only after the interval, so a
    // flood of them reaches the identity provider not at all within it.
    for i in 0..20 {
        let token = p
            .next
            .sign(&cognito_claims(&format!("p{i}"), "app-client", "access"));
        assert_eq!(status(&laurel, "/v1/players/me/stats", &token), 401);
    }
    assert_eq!(server.fetches(), at_start);
}

#[test]
fn a_rotated_key_is_fetched_when_a_token_names_it() {
    let p = provider();
    let server = JwksServer::start(jwks(&[&p.rsa]));
    let dir = tempfile::tempdir().unwrap();
    let laurel = start_with_url(&dir, &server, 1);
    let token = p.next.sign(&cognito_claims("ann", "app-client", "access"));
    assert_eq!(status(&laurel, "/v1/players/me/stats", &token), 401);
    *server.document.lock().unwrap() = jwks(&[&p.rsa, &p.next]);
    wait_until(
        "the rotated key to be fetched",
        Duration::from_secs(20),
        || (status(&laurel, "/v1/players/me/stats", &token) == 200).then_some(()),
    );
    let fetches = server.fetches();
    assert!(
        (2..=25).contains(&fetches),
        "refetches are rate-limited: {fetches} fetches"
    );
    // The keys fetched before still work.
    assert_eq!(
        status(
            &laurel,
            "/v1/players/me/stats",
            &p.rsa.sign(&cognito_claims("ann", "app-client", "access"))
        ),
        200
    );
}
