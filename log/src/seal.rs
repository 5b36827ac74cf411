//! Sealing data at rest (`--data-key-file`): envelope encryption with XChaCha20-Poly1305.
//!
//! The operator's *data key* (32 bytes) never seals data itself: it wraps a random *data
//! encryption key* kept in the data dir's `keyring`, and that key seals everything Laurel
//! writes there (log frames, engine state, views). Rotating the data key rewraps the keyring,
//! one small file, at the next start; nothing else is rewritten. The keyring names the data
//! key that wraps it by its id (a fingerprint), so a wrong key is told from a damaged file
//! and refused before anything is opened: a wrong or missing key never starts empty.
//!
//! A sealed value is `[sealer id: u32][nonce: 24][ciphertext + tag: 16]`: random nonces
//! (192 bits, never reused in practice), and associated data binding it to where it is (a
//! frame's position, a record's key), so sealed values cannot be moved around unnoticed.
//! Keys of derived stores hold player ids, so they are *blinded*: the first byte (the record
//! kind, which scans go by) stays, the rest becomes 16 bytes of HMAC-SHA-256, and the
//! plain key travels inside the sealed value.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Bytes of a data key and of a data encryption key.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const ID_LEN: usize = 4;
/// Bytes a sealed value adds to its plain text.
pub const OVERHEAD: usize = ID_LEN + NONCE_LEN + TAG_LEN;
/// Bytes of a blinded key's blinded part.
const BLIND_LEN: usize = 16;
const KEYRING: &str = "keyring";
const KEYRING_FORMAT: &str = "laurel-keyring-1";

/// Sealing or unsealing failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The data key file cannot be used.
    #[error("data key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The data dir is sealed and no data key was given.
    #[error(
        "{dir} is encrypted (its keyring is wrapped by data key {wrapped_by}) and no data key was given; \
         start with the data key (--data-key-file)"
    )]
    NoKey {
        /// The data dir.
        dir: PathBuf,
        /// Id of the data key that wraps its keyring.
        wrapped_by: String,
    },
    /// None of the data keys given wraps the keyring.
    #[error(
        "data key {given} does not open {dir}: its keyring is wrapped by data key {wrapped_by} \
         (to rotate, give that key as the old one: --data-old-key-file)"
    )]
    WrongKey {
        /// The data dir.
        dir: PathBuf,
        /// Id of the key given.
        given: String,
        /// Id of the data key that wraps the keyring.
        wrapped_by: String,
    },
    /// The keyring is unreadable.
    #[error("keyring {path}: {reason}")]
    Keyring {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A sealed value was sealed by another data encryption key (another data dir's).
    #[error("a value sealed by data encryption key {found}, not this data dir's {expected}")]
    OtherSealer {
        /// The sealer id in the value.
        found: String,
        /// This data dir's.
        expected: String,
    },
    /// A sealed value failed authentication: altered, truncated or moved.
    #[error("a sealed value failed authentication (altered, truncated or moved)")]
    Tampered,
    /// Reading or writing the keyring failed.
    #[error("keyring: {0}")]
    Io(#[from] io::Error),
}

impl From<SealError> for io::Error {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// The operator's data key: wraps the data dir's keyring.
pub struct DataKey {
    key: Key,
    id: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// The key in `path`: 32 raw bytes, or 32 bytes in base64 or hex (surrounding
    /// whitespace ignored).
    pub fn from_file(path: &Path) -> Result<Self, SealError> {
        let bad = |reason: String| SealError::KeyFile {
            path: path.to_path_buf(),
            reason,
        };
        let raw = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let key = if raw.len() == KEY_LEN {
            raw
        } else {
            let text = std::str::from_utf8(&raw).map(str::trim).map_err(|_| {
                bad(format!(
                    "{} bytes: neither 32 raw bytes nor text",
                    raw.len()
                ))
            })?;
            from_hex(text)
                .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
                .or_else(|| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(text)
                        .ok()
                })
                .ok_or_else(|| bad("not 32 raw bytes, base64 or hex".into()))?
        };
        let key: [u8; KEY_LEN] = key.try_into().map_err(|k: Vec<u8>| {
            bad(format!(
                "{} bytes of key; a data key is {KEY_LEN} (e.g. `openssl rand -base64 32`)",
                k.len()
            ))
        })?;
        Ok(Self::from_bytes(key))
    }

    /// A data key from its bytes.
    pub fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"laurel data key id\0")
            .chain_update(key)
            .finalize();
        Self {
            key: key.into(),
            id: to_hex(&digest[..8]),
        }
    }

    /// The key's id: a fingerprint that names it in messages and in the keyring.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.key)
    }
}

/// Seals and opens the values of one data dir with its data encryption key.
pub struct Sealer {
    id: [u8; ID_LEN],
    values: XChaCha20Poly1305,
    blind: Hmac<Sha256>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl Sealer {
    fn new(id: [u8; ID_LEN], dek: &[u8; KEY_LEN]) -> Self {
        let derive = |label: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(dek).expect("any key length");
            mac.update(label);
            mac.finalize().into_bytes()
        };
        let values = derive(b"laurel values");
        let blind = derive(b"laurel keys");
        Self {
            id,
            values: XChaCha20Poly1305::new(&values),
            blind: <Hmac<Sha256> as Mac>::new_from_slice(&blind).expect("any key length"),
        }
    }

    /// The data encryption key's id (hex): what derived state records it was sealed with.
    pub fn id(&self) -> String {
        to_hex(&self.id)
    }

    /// `plain` sealed, bound to `aad`.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = XNonce::default();
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .values
            .encrypt(&nonce, Payload { msg: plain, aad })
            .expect("XChaCha20-Poly1305 seals any length a process holds");
        let mut out = Vec::with_capacity(OVERHEAD + plain.len());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// What [`Sealer::seal`] sealed, if `sealed` is whole, unaltered and bound to `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < OVERHEAD {
            return Err(SealError::Tampered);
        }
        let (id, rest) = sealed.split_at(ID_LEN);
        if id != self.id {
            return Err(SealError::OtherSealer {
                found: to_hex(id),
                expected: self.id(),
            });
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        self.values
            .decrypt(&nonce_of(nonce), Payload { msg: body, aad })
            .map_err(|_| SealError::Tampered)
    }

    /// `key` blinded: its first byte, then 16 bytes of a keyed hash of the rest. Equal keys
    /// blind equally, so lookups work; a scan by first byte finds what it did before.
    pub fn blind(&self, key: &[u8]) -> Vec<u8> {
        let Some((&kind, rest)) = key.split_first() else {
            return Vec::new();
        };
        let mut mac = self.blind.clone();
        mac.update(rest);
        let hash = mac.finalize().into_bytes();
        let mut out = Vec::with_capacity(1 + BLIND_LEN);
        out.push(kind);
        out.extend_from_slice(&hash[..BLIND_LEN]);
        out
    }

    /// A record `key` → `value` as stored: its blinded key, and the plain key and value
    /// sealed together, bound to the blinded key.
    pub fn seal_record(&self, key: &[u8], value: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let blinded = self.blind(key);
        let mut plain = Vec::with_capacity(4 + key.len() + value.len());
        plain.extend_from_slice(&(key.len() as u32).to_be_bytes());
        plain.extend_from_slice(key);
        plain.extend_from_slice(value);
        let sealed = self.seal(&plain, &blinded);
        (blinded, sealed)
    }

    /// The plain key and value of a record stored under `blinded`.
    pub fn open_record(
        &self,
        blinded: &[u8],
        sealed: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), SealError> {
        let mut plain = self.open(sealed, blinded)?;
        let len = plain
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or(SealError::Tampered)? as usize;
        if plain.len() < 4 + len {
            return Err(SealError::Tampered);
        }
        let value = plain.split_off(4 + len);
        plain.drain(..4);
        Ok((plain, value))
    }
}

/// Opens the keyring of the data dir `dir` with `key` (or, when the keyring is wrapped by
/// one of them, with one of `old`, rewrapping it with `key`: rotation). Without a key, a
/// data dir with no keyring stays in clear (`None`) and one with a keyring is refused.
/// With a key and no keyring, a new data encryption key is made and wrapped.
pub fn unlock(
    dir: &Path,
    key: Option<&DataKey>,
    old: &[DataKey],
) -> Result<Option<Sealer>, SealError> {
    let path = dir.join(KEYRING);
    let stored = Keyring::read(&path)?;
    let (key, stored) = match (key, stored) {
        (None, None) => return Ok(None),
        (None, Some(stored)) => {
            return Err(SealError::NoKey {
                dir: dir.to_path_buf(),
                wrapped_by: stored.wrapped_by,
            });
        }
        (Some(key), None) => {
            let mut dek = [0u8; KEY_LEN];
            rand::rng().fill_bytes(&mut dek);
            let mut id = [0u8; ID_LEN];
            rand::rng().fill_bytes(&mut id);
            std::fs::create_dir_all(dir)?;
            Keyring::wrap(key, id, &dek).write(&path)?;
            tracing::info!(data_key = key.id(), sealer = %to_hex(&id), "data dir encrypted: made its keyring");
            return Ok(Some(Sealer::new(id, &dek)));
        }
        (Some(key), Some(stored)) => (key, stored),
    };
    if stored.wrapped_by == key.id {
        let dek = stored.unwrap(key, &path)?;
        return Ok(Some(Sealer::new(stored.id, &dek)));
    }
    let Some(previous) = old.iter().find(|k| k.id == stored.wrapped_by) else {
        return Err(SealError::WrongKey {
            dir: dir.to_path_buf(),
            given: key.id.clone(),
            wrapped_by: stored.wrapped_by,
        });
    };
    let dek = stored.unwrap(previous, &path)?;
    Keyring::wrap(key, stored.id, &dek).write(&path)?;
    tracing::warn!(
        from = previous.id(),
        to = key.id(),
        "data key rotated: the keyring is wrapped by the new key; the old one no longer opens this data dir"
    );
    Ok(Some(Sealer::new(stored.id, &dek)))
}

/// The data dir's keyring file: its data encryption key, wrapped by a data key.
struct Keyring {
    wrapped_by: String,
    id: [u8; ID_LEN],
    /// Nonce, then the wrapped key and its tag.
    wrapped: Vec<u8>,
}

impl Keyring {
    fn aad(id: &[u8; ID_LEN]) -> Vec<u8> {
        [b"laurel keyring ".as_slice(), id].concat()
    }

    fn wrap(key: &DataKey, id: [u8; ID_LEN], dek: &[u8; KEY_LEN]) -> Self {
        let mut nonce = XNonce::default();
        rand::rng().fill_bytes(&mut nonce);
        let sealed = key
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: dek,
                    aad: &Self::aad(&id),
                },
            )
            .expect("a key seals");
        Self {
            wrapped_by: key.id.clone(),
            id,
            wrapped: [&nonce[..], &sealed].concat(),
        }
    }

    fn unwrap(&self, key: &DataKey, path: &Path) -> Result<[u8; KEY_LEN], SealError> {
        let corrupt = || SealError::Keyring {
            path: path.to_path_buf(),
            reason: format!(
                "it names data key {} but that key does not open it: the file is damaged",
                key.id
            ),
        };
        if self.wrapped.len() != NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(corrupt());
        }
        let (nonce, body) = self.wrapped.split_at(NONCE_LEN);
        let dek = key
            .cipher()
            .decrypt(
                &nonce_of(nonce),
                Payload {
                    msg: body,
                    aad: &Self::aad(&self.id),
                },
            )
            .map_err(|_| corrupt())?;
        dek.try_into().map_err(|_| corrupt())
    }

    fn read(path: &Path) -> Result<Option<Self>, SealError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bad = |reason: &str| SealError::Keyring {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| bad(&format!("no {name}")))
        };
        if field("format")? != KEYRING_FORMAT {
            return Err(bad("a format this version does not read"));
        }
        Ok(Some(Self {
            wrapped_by: field("data-key")?.to_string(),
            id: from_hex(field("id")?)
                .and_then(|id| id.try_into().ok())
                .ok_or_else(|| bad("unreadable id"))?,
            wrapped: from_hex(field("wrapped")?).ok_or_else(|| bad("unreadable wrapped key"))?,
        }))
    }

    /// Replaces the file whole (owner-only) and makes it durable.
    fn write(&self, path: &Path) -> io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let text = format!(
            "format={KEYRING_FORMAT}\ndata-key={}\nid={}\nwrapped={}\n",
            self.wrapped_by,
            to_hex(&self.id),
            to_hex(&self.wrapped)
        );
        let tmp = path.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
    }
}

/// A nonce from its bytes (callers split exactly [`NONCE_LEN`] off).
fn nonce_of(bytes: &[u8]) -> XNonce {
    let bytes: [u8; NONCE_LEN] = bytes.try_into().expect("a nonce's length");
    bytes.into()
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> DataKey {
        DataKey::from_bytes([byte; KEY_LEN])
    }

    #[test]
    fn a_sealed_value_opens_only_unaltered_and_in_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = unlock(dir.path(), Some(&key(1)), &[]).unwrap().unwrap();
        let sealed = sealer.seal(b"player-42 score 7", b"here");
        assert!(!sealed.windows(9).any(|w| w == b"player-42"));
        assert_eq!(sealer.open(&sealed, b"here").unwrap(), b"player-42 score 7");
        assert!(matches!(
            sealer.open(&sealed, b"there"),
            Err(SealError::Tampered)
        ));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            sealer.open(&altered, b"here"),
            Err(SealError::Tampered)
        ));
        assert!(matches!(
            sealer.open(&sealed[..OVERHEAD - 1], b"here"),
            Err(SealError::Tampered)
        ));
        let other = unlock(tempfile::tempdir().unwrap().path(), Some(&key(1)), &[])
            .unwrap()
            .unwrap();
        assert!(matches!(
            other.open(&sealed, b"here"),
            Err(SealError::OtherSealer { .. })
        ));
    }

    #[test]
    fn records_are_found_by_their_blinded_key_and_keep_their_plain_key() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = unlock(dir.path(), Some(&key(1)), &[]).unwrap().unwrap();
        let (blinded, sealed) = sealer.seal_record(b"Splayer-42", b"value");
        assert_eq!(blinded[0], b'S');
        assert_eq!(blinded.len(), 1 + BLIND_LEN);
        assert_eq!(sealer.blind(b"Splayer-42"), blinded);
        assert_ne!(sealer.blind(b"Splayer-43"), blinded);
        let (k, v) = sealer.open_record(&blinded, &sealed).unwrap();
        assert_eq!(
            (k.as_slice(), v.as_slice()),
            (b"Splayer-42".as_slice(), b"value".as_slice())
        );
        // A record moved under another key does not open.
        assert!(
            sealer
                .open_record(&sealer.blind(b"Splayer-43"), &sealed)
                .is_err()
        );
    }

    #[test]
    fn a_keyring_opens_with_its_key_is_refused_otherwise_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        assert!(unlock(dir.path(), None, &[]).unwrap().is_none());
        let first = unlock(dir.path(), Some(&key(1)), &[]).unwrap().unwrap();
        let sealed = first.seal(b"kept", b"");
        let again = unlock(dir.path(), Some(&key(1)), &[]).unwrap().unwrap();
        assert_eq!(again.open(&sealed, b"").unwrap(), b"kept");
        assert!(matches!(
            unlock(dir.path(), None, &[]),
            Err(SealError::NoKey { .. })
        ));
        match unlock(dir.path(), Some(&key(2)), &[]) {
            Err(SealError::WrongKey {
                given, wrapped_by, ..
            }) => {
                assert_eq!(
                    (given.as_str(), wrapped_by.as_str()),
                    (key(2).id(), key(1).id())
                );
            }
            other => panic!("a wrong key was not refused: {other:?}"),
        }
        // Rotation: the new key with the old one given as old.
        let rotated = unlock(dir.path(), Some(&key(2)), &[key(1)])
            .unwrap()
            .unwrap();
        assert_eq!(rotated.open(&sealed, b"").unwrap(), b"kept");
        assert_eq!(
            unlock(dir.path(), Some(&key(2)), &[])
                .unwrap()
                .unwrap()
                .open(&sealed, b"")
                .unwrap(),
            b"kept"
        );
        assert!(matches!(
            unlock(dir.path(), Some(&key(1)), &[]),
            Err(SealError::WrongKey { .. })
        ));
    }

    #[test]
    fn a_damaged_keyring_is_told_from_a_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        unlock(dir.path(), Some(&key(1)), &[]).unwrap();
        let path = dir.path().join(KEYRING);
        let text = std::fs::read_to_string(&path).unwrap();
        let wrapped = text.lines().find(|l| l.starts_with("wrapped=")).unwrap();
        let flipped = format!(
            "{}{}",
            &wrapped[..wrapped.len() - 1],
            if wrapped.ends_with('0') { '1' } else { '0' }
        );
        std::fs::write(&path, text.replace(wrapped, &flipped)).unwrap();
        assert!(matches!(
            unlock(dir.path(), Some(&key(1)), &[]),
            Err(SealError::Keyring { .. })
        ));
    }

    #[test]
    fn key_files_are_raw_base64_or_hex_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let raw = [7u8; KEY_LEN];
        let id = DataKey::from_bytes(raw).id().to_string();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        for path in [
            write("raw", &raw),
            write("b64", format!("{b64}\n").as_bytes()),
            write("hex", to_hex(&raw).as_bytes()),
        ] {
            assert_eq!(DataKey::from_file(&path).unwrap().id(), id);
        }
        for path in [
            write("short", &[7u8; 16]),
            write("text", b"correct horse battery staple"),
        ] {
            assert!(matches!(
                DataKey::from_file(&path),
                Err(SealError::KeyFile { .. })
            ));
        }
    }
}
