//! The sealed blobs a backend stores without knowing what they hold
//! (templates, photos, probes, signing keys): as written, as read back,
//! and the re-sealing callback of a key rotation.

use super::error::StoreResult;

/// A blob sealed by the layer above, to be written as is with its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedBlob {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

/// A blob as read back. Nothing about it is trusted: the key id may be
/// missing and the bytes may be anything (a tampered database); the
/// sealing layer decides.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub key_id: Option<String>,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for SealedBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedBlob({}, {} bytes)", self.key_id, self.bytes.len())
    }
}

impl std::fmt::Debug for StoredBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StoredBlob({:?}, {} bytes)",
            self.key_id,
            self.bytes.len()
        )
    }
}

/// Re-seals a stored record: `Ok(None)` leaves it as it is.
pub type Reseal<'a, T, S> = &'a (dyn Fn(&T) -> StoreResult<Option<S>> + Send + Sync);
