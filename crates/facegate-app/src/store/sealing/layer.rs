//! [`SealingStore`] and the two operations everything in this layer is
//! made of: sealing a record's plaintext bound to the record, and opening
//! a stored blob (or saying why it is refused).

use std::sync::Arc;

use crate::crypto::{self, Vault};
use crate::domain::{AuditKind, NewAuditEvent};
use crate::store::backend::{Backend, SealedBlob, StoredBlob};

/// Any backend with the keys that seal its biometric records.
pub struct SealingStore {
    pub(super) backend: Arc<dyn Backend>,
    pub(super) vault: Arc<Vault>,
}

/// A stored record that was refused, for the log and the audit trail.
pub(super) struct Refused {
    /// `table/id`, e.g. `face_templates/12`.
    pub record: String,
    pub user_id: Option<i64>,
    pub reason: Why,
}

/// Why a stored blob does not open.
#[derive(Debug, Clone)]
pub(super) struct Why {
    pub text: String,
    /// False when it is well sealed but with a key that is not loaded
    /// (another instance may be rotating keys): refused all the same, but
    /// not evidence of tampering.
    pub tampered: bool,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn tampered(text: impl Into<String>) -> Why {
    Why {
        text: text.into(),
        tampered: true,
    }
}

impl SealingStore {
    pub fn new(backend: Arc<dyn Backend>, vault: Vault) -> Self {
        SealingStore {
            backend,
            vault: Arc::new(vault),
        }
    }

    /// Seals `plain` with the primary key, bound to `aad`.
    pub(super) fn seal(&self, plain: &[u8], aad: &[u8]) -> SealedBlob {
        seal_with(&self.vault, plain, aad)
    }

    /// Logs and audits refused records.
    pub(super) async fn report(&self, refused: Vec<Refused>) {
        for r in refused {
            if !r.reason.tampered {
                tracing::warn!(
                    record = %r.record,
                    reason = %r.reason,
                    "a stored biometric record is sealed with a key that is not loaded; not used"
                );
                continue;
            }
            tracing::error!(
                record = %r.record,
                reason = %r.reason,
                "refused a stored biometric record that is not sealed as it should be (tampering?)"
            );
            let mut event = NewAuditEvent::new(AuditKind::Tampering, "refused")
                .detail(format!("record={} reason={}", r.record, r.reason));
            event.subject_user_id = r.user_id;
            if let Err(e) = self.backend.append_audit(&event).await {
                tracing::error!(error = %e, "could not audit a refused record");
            }
        }
    }
}

/// Seals `plain` with `vault`'s primary key, bound to `aad`.
pub(super) fn seal_with(vault: &Vault, plain: &[u8], aad: &[u8]) -> SealedBlob {
    SealedBlob {
        key_id: vault.primary_id(),
        bytes: vault.seal(plain, aad),
    }
}

/// Opens a stored blob bound to `aad`, or says why it is refused.
pub(super) fn open_with(vault: &Vault, blob: &StoredBlob, aad: &[u8]) -> Result<Vec<u8>, Why> {
    let Some(key_id) = blob.key_id.as_deref() else {
        return Err(tampered("unsealed (no key id)"));
    };
    let Some(envelope_key) = crypto::envelope_key_id(&blob.bytes) else {
        return Err(tampered("unsealed (not an envelope)"));
    };
    if hex::encode(envelope_key) != key_id {
        return Err(tampered(format!(
            "key id {key_id} recorded but the envelope names {}",
            hex::encode(envelope_key)
        )));
    }
    vault.open(&blob.bytes, aad).map_err(|e| Why {
        tampered: !matches!(e, crypto::CryptoError::UnknownKey(_)),
        text: e.to_string(),
    })
}

/// Whether a stored blob is recorded as sealed with `key_id`.
pub(super) fn on_key(blob: &StoredBlob, key_id: &str) -> bool {
    blob.key_id.as_deref() == Some(key_id)
}

/// Encodes an embedding as little-endian f32 bytes.
pub fn embedding_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes little-endian f32 bytes.
pub fn embedding_from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0e-7, f32::MAX];
        let b = embedding_to_bytes(&v);
        assert_eq!(b.len(), 16);
        assert_eq!(&b[..4], &0.5f32.to_le_bytes());
        assert_eq!(embedding_from_bytes(&b), v);
    }

    #[test]
    fn unsealed_or_mislabelled_blobs_are_refused() {
        let vault = Vault::new(crypto::MasterKey::generate(), []);
        let sealed = seal_with(&vault, b"face", b"record 1");
        let stored = |key_id: Option<String>, bytes: Vec<u8>| StoredBlob { key_id, bytes };
        let good = stored(Some(sealed.key_id.clone()), sealed.bytes.clone());
        assert_eq!(open_with(&vault, &good, b"record 1").unwrap(), b"face");
        // Moved onto another record.
        assert!(open_with(&vault, &good, b"record 2").is_err());
        // Plaintext, with or without a key id.
        let plain = stored(None, b"face".to_vec());
        let why = open_with(&vault, &plain, b"record 1").unwrap_err();
        assert!(why.tampered && why.text.contains("unsealed"));
        let labelled = stored(Some(sealed.key_id.clone()), b"face".to_vec());
        let why = open_with(&vault, &labelled, b"record 1").unwrap_err();
        assert!(why.tampered && why.text.contains("unsealed"));
        // A sealed blob whose key id was cleared.
        let cleared = stored(None, sealed.bytes.clone());
        assert!(open_with(&vault, &cleared, b"record 1").is_err());
        // A key id that disagrees with the envelope.
        let other = stored(Some("0011223344556677".into()), sealed.bytes.clone());
        let why = open_with(&vault, &other, b"record 1").unwrap_err();
        assert!(why.tampered && why.text.contains("envelope"));
        // Well sealed with a key that is not loaded: refused, not tampered.
        let elsewhere = Vault::new(crypto::MasterKey::generate(), []);
        let why = open_with(&elsewhere, &good, b"record 1").unwrap_err();
        assert!(!why.tampered, "{why}");
    }
}
