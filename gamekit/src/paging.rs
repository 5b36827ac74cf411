//! Paging tokens of GameKit lists: `base64("<HMAC hex>:<expires>")`, bound to the player and
//! the page's start key, valid five minutes, as GameKit's own. GameKit keys its HMAC with the
//! player id itself, so anyone can forge a token for anyone; Laurel keys it with a secret of
//! the server's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a paging token is good for, in seconds (GameKit's: five minutes).
const LIFETIME_SECS: u64 = 300;
/// The paging version GameKit's envelope names.
pub(crate) const VERSION: &str = "1.0.0";

/// The secret that signs paging tokens.
#[derive(Clone)]
pub struct PagingKey([u8; 32]);

impl std::fmt::Debug for PagingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PagingKey(..)")
    }
}

impl PagingKey {
    /// The key derived from a server secret (the data dir's signing key), so that every
    /// gateway sharing the secret takes the others' tokens.
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(b"laurel gamekit paging");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, player: &str, start_key: &str, expires: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        for part in [player, start_key, VERSION, &expires.to_string()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// A token for `player` to ask for the page at `start_key` (its compact JSON).
    pub(crate) fn issue(&self, player: &str, start_key: &str, now: u64) -> String {
        let expires = now + LIFETIME_SECS;
        let digest = self.mac(player, start_key, expires).finalize().into_bytes();
        let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
        B64.encode(format!("{hex}:{expires}"))
    }

    /// Whether `token` was issued for `player` and `start_key` and has not expired.
    pub(crate) fn check(&self, token: &str, player: &str, start_key: &str, now: u64) -> bool {
        let Some(text) = B64
            .decode(token.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            return false;
        };
        let Some((hex, expires)) = text.split_once(':') else {
            return false;
        };
        let Ok(expires) = expires.parse::<u64>() else {
            return false;
        };
        let digest: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        match digest {
            Some(digest) if now <= expires => self
                .mac(player, start_key, expires)
                .verify_slice(&digest)
                .is_ok(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_its_player_and_page_for_five_minutes() {
        let key = PagingKey::derive(b"server secret");
        let start = r#"{"achievement_id":"B"}"#;
        let token = key.issue("ann", start, 1_000);
        assert!(key.check(&token, "ann", start, 1_000));
        assert!(key.check(&token, "ann", start, 1_300));
        assert!(!key.check(&token, "ann", start, 1_301), "expired");
        assert!(!key.check(&token, "bob", start, 1_000), "another player");
        assert!(
            !key.check(&token, "ann", r#"{"achievement_id":"C"}"#, 1_000),
            "another page"
        );
        let other = PagingKey::derive(b"another secret");
        assert!(!other.check(&token, "ann", start, 1_000), "another server");
        for junk in [
            "",
            "!!",
            "bm9jb2xvbg==",
            "QUJDOjEyMw==",
            &B64.encode("zz:99999"),
        ] {
            assert!(!key.check(junk, "ann", start, 1_000), "{junk}");
        }
    }
}
