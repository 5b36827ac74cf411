//! AWS Signature Version 4 checks of GameKit's admin calls (service `execute-api`), as API
//! Gateway's `AWS_IAM` authorization makes them, against key pairs the operator configures.
//!
//! The request is canonicalized as AWS does for every service but S3 (the path
//! percent-encoded once more, the query sorted and re-encoded, the signed headers trimmed),
//! the signature recomputed with the configured secret, and compared in constant time.

use std::collections::HashMap;

use axum::http::{HeaderMap, Method};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use laurel_gateway::hex;

/// How far a request's `x-amz-date` may be from now, in seconds (AWS's own limit).
const SKEW_SECS: i64 = 15 * 60;
/// The service GameKit's admin API is signed for.
const SERVICE: &str = "execute-api";

/// Access key ids and their secrets.
#[derive(Clone, Default)]
pub struct SigV4Keys(HashMap<String, String>);

impl std::fmt::Debug for SigV4Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl SigV4Keys {
    /// Keys from a file of lines `ACCESS_KEY_ID SECRET_ACCESS_KEY` (`#` comments).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(id), Some(secret), None) => {
                    keys.insert(id.to_string(), secret.to_string());
                }
                _ => {
                    return Err(format!(
                        "line {}: expected `ACCESS_KEY_ID SECRET_ACCESS_KEY`",
                        n + 1
                    ));
                }
            }
        }
        Ok(Self(keys))
    }

    /// Whether no key is configured (every admin call is then refused).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A request as it arrived.
pub(crate) struct Signed<'a> {
    pub(crate) method: &'a Method,
    /// The path as sent (still percent-encoded).
    pub(crate) path: &'a str,
    /// The query as sent, without `?`.
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

/// Percent-encodes all but RFC 3986's unreserved characters (and `/` when `slash`).
fn encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a malformed one stays as it is).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                encode(&percent_decode(k), false),
                encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut scope = credential?.split('/');
    let auth = Authorization {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    (scope.next()? == "aws4_request").then_some(auth)
}

/// Seconds since the epoch of an `x-amz-date` (`20261202T120000Z`).
fn amz_seconds(date: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(date, &format).ok()?;
    Some(t.assume_utc().unix_timestamp())
}

/// The credential scope of a signature.
struct Scope<'a> {
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

/// The HMAC whose output is the request's signature: over the string to sign of the
/// canonical request with `signed` headers (lowercase names, their values).
fn signing_mac(
    secret: &str,
    scope: &Scope<'_>,
    amz_date: &str,
    request: &Signed<'_>,
    signed: &[(&str, String)],
) -> Hmac<Sha256> {
    let canonical_headers: String = signed.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let names: Vec<&str> = signed.iter().map(|(n, _)| *n).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        encode(request.path, true),
        canonical_query(request.query),
        canonical_headers,
        names.join(";"),
        hex(&Sha256::digest(request.body)),
    );
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        scope.date, scope.region, scope.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = [scope.date, scope.region, scope.service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
            hmac(&key, part)
        });
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(to_sign.as_bytes());
    mac
}

/// Signs a request for `execute-api` as an AWS SDK does (for tools and tests that call the
/// admin routes): the `Authorization` header's value for `headers` (all of them signed;
/// they must hold `host` and `x-amz-date`, `YYYYMMDDTHHMMSSZ`).
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
    access_key: &str,
    secret: &str,
    region: &str,
) -> String {
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    signed.sort();
    let amz_date = signed
        .iter()
        .find(|(n, _)| n == "x-amz-date")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let date = amz_date.get(..8).unwrap_or_default().to_string();
    let method: Method = method.parse().expect("a valid method");
    let map = HeaderMap::new();
    let request = Signed {
        method: &method,
        path,
        query,
        headers: &map,
        body,
    };
    let scope = Scope {
        date: &date,
        region,
        service: SERVICE,
    };
    let refs: Vec<(&str, String)> = signed
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let mac = signing_mac(secret, &scope, &amz_date, &request, &refs);
    let names: Vec<&str> = refs.iter().map(|(n, _)| *n).collect();
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{date}/{region}/{SERVICE}/aws4_request, SignedHeaders={}, Signature={}",
        names.join(";"),
        hex(&mac.finalize().into_bytes())
    )
}

/// Checks a request's signature: the access key that signed it, or why it is refused.
pub(crate) fn verify(keys: &SigV4Keys, request: &Signed<'_>, now: i64) -> Result<String, String> {
    let header = |name: &str| {
        let values: Vec<&str> = request
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| {
            values
                .iter()
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    let raw = header("authorization").ok_or("Missing Authentication Token")?;
    let auth = parse_authorization(&raw).ok_or("the Authorization header is not AWS SigV4")?;
    if auth.service != SERVICE {
        return Err(format!("signed for `{}`, not `{SERVICE}`", auth.service));
    }
    let secret = keys
        .0
        .get(auth.access_key)
        .ok_or("the access key is not one this server knows")?;
    let amz_date = header("x-amz-date").ok_or("no x-amz-date")?;
    let at = amz_seconds(&amz_date).ok_or("x-amz-date is not a date")?;
    if (now - at).abs() > SKEW_SECS || !amz_date.starts_with(auth.date) {
        return Err("the signature has expired (x-amz-date too far from now)".into());
    }
    for needed in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&needed) {
            return Err(format!("`{needed}` is not signed"));
        }
    }
    let mut signed_values = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = header(name).ok_or_else(|| format!("signed header `{name}` is missing"))?;
        signed_values.push((*name, value));
    }
    let scope = Scope {
        date: auth.date,
        region: auth.region,
        service: auth.service,
    };
    let mac = signing_mac(secret, &scope, &amz_date, request, &signed_values);
    let given: Option<Vec<u8>> = (0..auth.signature.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(auth.signature.get(i..i + 2)?, 16).ok())
        .collect();
    match given {
        Some(given) if mac.verify_slice(&given).is_ok() => Ok(auth.access_key.to_string()),
        _ => Err(
            "The request signature we calculated does not match the signature you provided".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests signed by botocore (AWS's Python SDK), an independent signer: its
    /// `SigV4Auth(Credentials("AKIDLAUREL", "laurel-test-secret-key"), "execute-api",
    /// "us-west-2")`, at 2026-12-02T04:56:55Z.
    /// A signed request: method, path, query, headers (with `authorization`), body.
    type Case = (
        Method,
        &'static str,
        Option<&'static str>,
        Vec<(&'static str, &'static str)>,
        &'static [u8],
    );

    fn botocore_cases() -> Vec<Case> {
        vec![
            (
                Method::GET,
                "/gamekit/achievements/admin",
                Some(
                    "limit=2&start_key=%7B%22achievement_id%22%3A%20%22A%22%7D&wait_for_all_pages=0",
                ),
                vec![(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDLAUREL/20261202/us-west-2/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=e446221bce4c886aac46e216db5deb8d6ed81ccba86b85bd640c60620db13592",
                )],
                b"",
            ),
            (
                Method::POST,
                "/gamekit/achievements/admin",
                None,
                vec![
                    ("content-type", "application/json"),
                    (
                        "authorization",
                        "AWS4-HMAC-SHA256 Credential=AKIDLAUREL/20261202/us-west-2/execute-api/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=90d0e183df31d463478375b24fbd8dfade362688a94058d1c93b04f1df02c3d1",
                    ),
                ],
                br#"{"achievements": [{"achievement_id": "A"}]}"#,
            ),
            (
                Method::DELETE,
                "/gamekit/achievements/admin",
                Some("payload=%257B%2522achievement_ids%2522%253A%2520%255B%2522A%2522%255D%257D"),
                vec![(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDLAUREL/20261202/us-west-2/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=e76718a801950699227e7f4e3f6d012c0eb1dcf00aa0476ab76a4134e4e0d138",
                )],
                b"",
            ),
        ]
    }

    fn headers(extra: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("host", "laurel.test:8080".parse().unwrap());
        map.insert("x-amz-date", "20261202T045655Z".parse().unwrap());
        for (k, v) in extra {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    const NOW: i64 = 1_796_187_415; // 2026-12-02T04:56:55Z

    #[test]
    fn requests_botocore_signed_verify_and_any_change_breaks_them() {
        let keys = SigV4Keys::parse("# admin\nAKIDLAUREL laurel-test-secret-key\n").unwrap();
        assert_eq!(amz_seconds("20261202T045655Z"), Some(NOW));
        for (method, path, query, extra, body) in botocore_cases() {
            let headers = headers(&extra);
            let request = Signed {
                method: &method,
                path,
                query,
                headers: &headers,
                body,
            };
            assert_eq!(
                verify(&keys, &request, NOW),
                Ok("AKIDLAUREL".into()),
                "{method} {path}"
            );
            // Another body, path, query, host, key or time: refused.
            let other_body = Signed {
                body: b"{}",
                ..request
            };
            let other_path = Signed {
                path: "/gamekit/achievements/admin2",
                ..request
            };
            let other_query = Signed {
                query: Some("limit=3"),
                ..request
            };
            for changed in [other_body, other_path, other_query] {
                if changed.body != body || changed.path != path || changed.query != query {
                    assert!(verify(&keys, &changed, NOW).is_err(), "{method} {path}");
                }
            }
            let mut other_host = headers.clone();
            other_host.insert("host", "evil.test".parse().unwrap());
            let request_host = Signed {
                headers: &other_host,
                ..request
            };
            assert!(verify(&keys, &request_host, NOW).is_err());
            let wrong = SigV4Keys::parse("AKIDLAUREL another-secret").unwrap();
            assert!(verify(&wrong, &request, NOW).is_err());
            assert!(verify(&keys, &request, NOW + 16 * 60).is_err(), "expired");
            assert!(verify(&SigV4Keys::default(), &request, NOW).is_err());
        }
    }

    #[test]
    fn the_signer_signs_as_botocore_does() {
        let (method, path, query, extra, body) = botocore_cases().remove(1);
        let header = authorization(
            method.as_str(),
            path,
            query,
            &[
                ("content-type", "application/json"),
                ("host", "laurel.test:8080"),
                ("x-amz-date", "20261202T045655Z"),
            ],
            body,
            "AKIDLAUREL",
            "laurel-test-secret-key",
            "us-west-2",
        );
        assert_eq!(header, extra[1].1);
    }

    #[test]
    fn unsigned_or_malformed_requests_are_refused() {
        let keys = SigV4Keys::parse("AKIDLAUREL laurel-test-secret-key").unwrap();
        for auth in [
            None,
            Some("Bearer abc"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDLAUREL/20261202/us-west-2/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
            ),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDLAUREL/20261202/us-west-2/execute-api/aws4_request, SignedHeaders=host, Signature=00",
            ),
            Some("AWS4-HMAC-SHA256 garbage"),
        ] {
            let extra: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
            let headers = headers(&extra);
            let request = Signed {
                method: &Method::GET,
                path: "/gamekit/achievements/admin",
                query: None,
                headers: &headers,
                body: b"",
            };
            assert!(verify(&keys, &request, NOW).is_err(), "{auth:?}");
        }
        assert!(SigV4Keys::parse("only-an-id").is_err());
    }
}
