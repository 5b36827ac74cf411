//! Public keys from a JSON Web Key Set: a file read at start, or a URL fetched, cached and
//! fetched again (rate-limited) when a token names a key the cache does not hold.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The asymmetric algorithms Laurel accepts from a key set.
pub(crate) const ACCEPTED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Why a key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The URL could not be fetched.
    #[error("fetching {url}: {detail}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// The document is not a key set.
    #[error("not a JSON Web Key Set: {0}")]
    Parse(String),
    /// The set holds no key Laurel can use.
    #[error("the key set holds no RS256, ES256 or EdDSA key")]
    Empty,
}

/// One usable key and the one algorithm it verifies.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// Keys by `kid`, and the keys that have none.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, Key>,
    anonymous: Vec<Key>,
}

impl KeySet {
    /// Parses a JWKS document, keeping the keys of accepted algorithms and skipping the rest.
    pub(crate) fn parse(document: &[u8]) -> Result<Self, JwksError> {
        let set: JwkSet =
            serde_json::from_slice(document).map_err(|e| JwksError::Parse(e.to_string()))?;
        let mut keys = KeySet::default();
        for jwk in &set.keys {
            let Some(algorithm) = algorithm_of(jwk) else {
                tracing::warn!(kid = ?jwk.common.key_id, "skipping a key of an algorithm laurel does not accept");
                continue;
            };
            let key = match DecodingKey::from_jwk(jwk) {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(kid = ?jwk.common.key_id, error = %e, "skipping an unreadable key");
                    continue;
                }
            };
            let key = Key { algorithm, key };
            match &jwk.common.key_id {
                Some(kid) => {
                    keys.by_kid.insert(kid.clone(), key);
                }
                None => keys.anonymous.push(key),
            }
        }
        if keys.by_kid.is_empty() && keys.anonymous.is_empty() {
            return Err(JwksError::Empty);
        }
        Ok(keys)
    }

    /// The keys a token with this `kid` and algorithm may be checked with.
    pub(crate) fn candidates(&self, kid: Option<&str>, algorithm: Algorithm) -> Vec<Key> {
        match kid {
            Some(kid) => self
                .by_kid
                .get(kid)
                .filter(|k| k.algorithm == algorithm)
                .cloned()
                .into_iter()
                .collect(),
            None => self
                .anonymous
                .iter()
                .filter(|k| k.algorithm == algorithm)
                .cloned()
                .collect(),
        }
    }
}

/// The algorithm a JWK is for: its `alg` when given, else what its key type implies.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(implied),
        Some(KeyAlgorithm::RS256) if implied == Algorithm::RS256 => Some(implied),
        Some(KeyAlgorithm::ES256) if implied == Algorithm::ES256 => Some(implied),
        Some(KeyAlgorithm::EdDSA) if implied == Algorithm::EdDSA => Some(implied),
        Some(_) => None,
    }
}

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A file, read once at start.
    File(PathBuf),
    /// A URL, fetched at start and again when needed.
    Url(String),
}

/// How often a URL key set may be fetched again.
#[derive(Debug, Clone, Copy)]
pub struct RefetchPolicy {
    /// Shortest time between two fetches (unknown-`kid` fetches wait for it).
    pub min_interval: Duration,
    /// Age past which cached keys are fetched again on the next request.
    pub max_age: Duration,
}

impl Default for RefetchPolicy {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
        }
    }
}

/// A cached key set.
pub(crate) struct Jwks {
    source: JwksSource,
    policy: RefetchPolicy,
    client: reqwest::Client,
    keys: RwLock<Arc<KeySet>>,
    /// When a fetch was last tried; held across a fetch so concurrent misses wait for it
    /// instead of fetching too.
    last_fetch: tokio::sync::Mutex<Instant>,
    fetched_at: RwLock<Instant>,
}

impl Jwks {
    /// Loads the keys from `source`; a key set that cannot be loaded at start is an error.
    pub(crate) async fn load(source: JwksSource, policy: RefetchPolicy) -> Result<Self, JwksError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| JwksError::Fetch {
                url: String::new(),
                detail: e.to_string(),
            })?;
        let keys = read(&source, &client).await?;
        let now = Instant::now();
        Ok(Self {
            source,
            policy,
            client,
            keys: RwLock::new(Arc::new(keys)),
            last_fetch: tokio::sync::Mutex::new(now),
            fetched_at: RwLock::new(now),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().expect("key set lock").clone()
    }

    /// The keys for a token's `kid` and algorithm, fetching the set again when they are
    /// unknown (or the cache is old) and the rate limit allows.
    pub(crate) async fn candidates(&self, kid: Option<&str>, algorithm: Algorithm) -> Vec<Key> {
        let cached = self.current().candidates(kid, algorithm);
        let stale =
            self.fetched_at.read().expect("fetch time lock").elapsed() > self.policy.max_age;
        if (!cached.is_empty() && !stale) || matches!(self.source, JwksSource::File(_)) {
            return cached;
        }
        let asked = Instant::now();
        let mut last = self.last_fetch.lock().await;
        // A fetch that started while this request waited already answered it.
        if *last < asked && last.elapsed() >= self.policy.min_interval {
            *last = Instant::now();
            match read(&self.source, &self.client).await {
                Ok(keys) => {
                    *self.keys.write().expect("key set lock") = Arc::new(keys);
                    *self.fetched_at.write().expect("fetch time lock") = Instant::now();
                    tracing::info!(
                        reason = if stale { "age" } else { "unknown kid" },
                        "fetched the key set again"
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fetching the key set failed; keeping the cached keys")
                }
            }
        }
        drop(last);
        self.current().candidates(kid, algorithm)
    }
}

async fn read(source: &JwksSource, client: &reqwest::Client) -> Result<KeySet, JwksError> {
    let document = match source {
        JwksSource::File(path) => std::fs::read(path).map_err(|source| JwksError::Read {
            path: path.clone(),
            source,
        })?,
        JwksSource::Url(url) => {
            let fail = |e: reqwest::Error| JwksError::Fetch {
                url: url.clone(),
                detail: e.to_string(),
            };
            client
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(fail)?
                .bytes()
                .await
                .map_err(fail)?
                .to_vec()
        }
    };
    KeySet::parse(&document)
}
