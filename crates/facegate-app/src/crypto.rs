//! Encryption at rest for biometric data: face templates (embeddings),
//! their photos and kept face-login probes are sealed with AES-256-GCM by
//! the store's sealing layer (`store::sealing`), whatever the backend.
//!
//! Every sealed record is an envelope `FGC1 | key id (8) | nonce (12) |
//! ciphertext+tag`: a random 96-bit nonce per record, and associated data
//! that binds the ciphertext to its record (a template's id and owner, a
//! photo's template, a probe's login attempt), so a sealed value copied
//! onto another record does not open. The key id is the first 8 bytes of SHA-256 over a label and the
//! key; it names the key without revealing it.
//!
//! A [`Vault`] holds the primary key (used to seal) and any further keys
//! that may still open records during a key rotation. Keys come from
//! `FACEGATE_MASTER_KEY` (the `master_key` setting, 32 bytes as base64 or
//! hex) or from `<data-dir>/master.key`, created with mode 0600 at first
//! start. A pending rotation keeps its new key in `master.key.next`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The envelope's magic prefix.
pub const MAGIC: &[u8; 4] = b"FGC1";
const ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + ID_LEN + NONCE_LEN;

/// The key file in the data directory.
pub const KEY_FILE: &str = "master.key";
/// The new key of a rotation in progress.
pub const NEXT_KEY_FILE: &str = "master.key.next";
/// The environment variable giving the new key of a rotation.
pub const NEW_KEY_ENV: &str = "FACEGATE_NEW_MASTER_KEY";

/// A failure to load a key or to open a sealed record.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid master key: {0}")]
    BadKey(String),
    #[error("the record is not an encrypted envelope")]
    NotSealed,
    #[error("the record was encrypted with key id {0}, which is not loaded (wrong or missing master key)")]
    UnknownKey(String),
    #[error("decryption failed for a record sealed with key id {0}: wrong key or tampered data")]
    Tampered(String),
    #[error("key file {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// A secret setting (the master key): never shown by `Debug`.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString(s.to_string())
    }
}

/// A 32-byte AES key with its id.
#[derive(Clone)]
pub struct MasterKey {
    id: [u8; ID_LEN],
    cipher: Aes256Gcm,
    raw: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id_hex())
    }
}

impl MasterKey {
    pub fn from_bytes(raw: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"facegate key id v1\0")
            .chain_update(raw)
            .finalize();
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&digest[..ID_LEN]);
        let cipher = Aes256Gcm::new_from_slice(&raw).expect("32-byte key");
        MasterKey { id, cipher, raw }
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        Self::from_bytes(raw)
    }

    /// Parses 32 bytes written as hex (64 digits) or base64 (standard or
    /// URL-safe, padded or not). Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|e| CryptoError::BadKey(e.to_string()))?
        } else {
            let engines = [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            engines
                .iter()
                .find_map(|e| e.decode(t).ok())
                .ok_or_else(|| CryptoError::BadKey("neither hex nor base64".into()))?
        };
        let raw: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| CryptoError::BadKey(format!("{} bytes, expected 32", b.len())))?;
        Ok(Self::from_bytes(raw))
    }

    /// The key as base64 (the key file's content).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.raw)
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    /// Reads a key file.
    pub fn read_file(path: &Path) -> Result<Self, CryptoError> {
        let text = std::fs::read_to_string(path).map_err(|error| CryptoError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(&text)
    }

    /// Writes this key to a new file readable by its owner only (mode 0600),
    /// synced to disk. Fails if the file exists.
    pub fn write_new_file(&self, path: &Path) -> Result<(), CryptoError> {
        let io = |error| CryptoError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(format!("{}\n", self.to_base64()).as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)
    }
}

/// The loaded keys: one primary that seals, others that only open.
#[derive(Debug, Clone)]
pub struct Vault {
    keys: Vec<MasterKey>,
}

impl Vault {
    /// A vault sealing with `primary` and also opening with `others`.
    pub fn new(primary: MasterKey, others: impl IntoIterator<Item = MasterKey>) -> Self {
        let mut keys = vec![primary];
        for k in others {
            if !keys.iter().any(|x| x.id == k.id) {
                keys.push(k);
            }
        }
        Vault { keys }
    }

    /// The id of the key new records are sealed with.
    pub fn primary_id(&self) -> String {
        self.keys[0].id_hex()
    }

    /// Ids of every loaded key.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(MasterKey::id_hex).collect()
    }

    pub fn has_key(&self, id_hex: &str) -> bool {
        self.keys.iter().any(|k| k.id_hex() == id_hex)
    }

    /// Seals `plain` with the primary key, bound to `aad`.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("AES-GCM encryption cannot fail for in-memory data");
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens an envelope bound to `aad` with whichever loaded key sealed it.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let id = envelope_key_id(sealed).ok_or(CryptoError::NotSealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(hex::encode(id)))?;
        let nonce = &sealed[MAGIC.len() + ID_LEN..HEADER_LEN];
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: &sealed[HEADER_LEN..],
                    aad,
                },
            )
            .map_err(|_| CryptoError::Tampered(hex::encode(id)))
    }
}

/// The key id of an envelope, or None when `data` is not one.
pub fn envelope_key_id(data: &[u8]) -> Option<[u8; ID_LEN]> {
    if data.len() < HEADER_LEN + 16 || &data[..MAGIC.len()] != MAGIC {
        return None;
    }
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&data[MAGIC.len()..MAGIC.len() + ID_LEN]);
    Some(id)
}

/// Associated data of a template's embedding.
pub fn template_aad(template_id: i64, user_id: i64) -> Vec<u8> {
    format!("facegate/face_templates/{template_id}/user/{user_id}").into_bytes()
}

/// Associated data of a template's photo: the template and its owner.
pub fn photo_aad(template_id: i64, user_id: i64) -> Vec<u8> {
    format!("facegate/face_photos/{template_id}/user/{user_id}").into_bytes()
}

/// Associated data of the probe kept with a login attempt.
pub fn probe_aad(attempt_id: i64) -> Vec<u8> {
    format!("facegate/login_probes/{attempt_id}").into_bytes()
}

/// Associated data of the store's key check.
pub const KEY_CHECK_AAD: &[u8] = b"facegate/key_check";

/// Associated data of a photo file of the former media directory (only
/// read once, when those files move into the database).
pub fn legacy_file_aad(rel_path: &str) -> Vec<u8> {
    format!("facegate/media/{rel_path}").into_bytes()
}

/// Loads the keys for `data_dir`: the primary from `configured` (the
/// `master_key` setting) or `master.key`; `master.key.next` and
/// `FACEGATE_NEW_MASTER_KEY` join as opening keys when present. None when
/// there is no primary key yet.
pub fn load_keys(data_dir: &Path, configured: Option<&str>) -> Result<Option<Vault>, CryptoError> {
    let file = data_dir.join(KEY_FILE);
    let primary = match configured.filter(|s| !s.trim().is_empty()) {
        Some(text) => Some(MasterKey::parse(text)?),
        None if file.exists() => Some(MasterKey::read_file(&file)?),
        None => None,
    };
    let Some(primary) = primary else {
        return Ok(None);
    };
    let mut others = Vec::new();
    let next = data_dir.join(NEXT_KEY_FILE);
    if next.exists() {
        others.push(MasterKey::read_file(&next)?);
    }
    if let Ok(text) = std::env::var(NEW_KEY_ENV) {
        if !text.trim().is_empty() {
            others.push(MasterKey::parse(&text)?);
        }
    }
    Ok(Some(Vault::new(primary, others)))
}

/// Creates `master.key` (mode 0600) with a new random key.
pub fn create_key_file(data_dir: &Path) -> Result<MasterKey, CryptoError> {
    let key = MasterKey::generate();
    key.write_new_file(&data_dir.join(KEY_FILE))?;
    tracing::info!(key_id = %key.id_hex(), "created a new master key file");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_binding() {
        let v = Vault::new(MasterKey::generate(), []);
        let s = v.seal(b"secret", b"record 1");
        assert_eq!(&s[..4], MAGIC);
        assert!(!s.windows(6).any(|w| w == b"secret"));
        assert_eq!(v.open(&s, b"record 1").unwrap(), b"secret");
        assert!(matches!(
            v.open(&s, b"record 2"),
            Err(CryptoError::Tampered(_))
        ));
        // A fresh nonce each time.
        assert_ne!(s, v.seal(b"secret", b"record 1"));
        let other = Vault::new(MasterKey::generate(), []);
        assert!(matches!(
            other.open(&s, b"record 1"),
            Err(CryptoError::UnknownKey(_))
        ));
        assert!(matches!(v.open(b"plain", b""), Err(CryptoError::NotSealed)));
    }

    #[test]
    fn parses_hex_and_base64() {
        let k = MasterKey::generate();
        let hex_form = hex::encode(k.raw);
        assert_eq!(MasterKey::parse(&hex_form).unwrap().id, k.id);
        assert_eq!(MasterKey::parse(&k.to_base64()).unwrap().id, k.id);
        assert!(MasterKey::parse("too short").is_err());
        assert!(MasterKey::parse(&hex::encode([1u8; 16])).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(load_keys(dir.path(), None).unwrap().is_none());
        let k = create_key_file(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let v = load_keys(dir.path(), None).unwrap().unwrap();
        assert_eq!(v.primary_id(), k.id_hex());
        assert!(create_key_file(dir.path()).is_err(), "never overwritten");
    }
}
