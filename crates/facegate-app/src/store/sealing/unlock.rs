//! Unlocking a store: loading the keys and proving they are the right
//! ones before anything is written. The key check (a constant sealed with
//! the primary key, written when a store is first unlocked) must open; a
//! store from before the key check existed must have every sealed record
//! on a loaded key. With no key configured or on disk, `master.key` is
//! created — but only for a store with nothing sealed yet, so a lost key is
//! an error, never a new key that silently orphans the data.

use std::path::PathBuf;

use super::layer::{open_with, seal_with};
use crate::crypto::{self, Vault, KEY_CHECK_AAD};
use crate::store::backend::Backend;
use crate::store::error::{StoreError, StoreResult};

/// What the key check seals.
const KEY_CHECK: &[u8] = b"facegate key check v1";

/// Where the encryption keys come from.
#[derive(Debug, Clone)]
pub enum Keys {
    /// The `master_key` setting, else `<data_dir>/master.key` (created at
    /// first start); see [`crate::crypto::load_keys`].
    Configured {
        data_dir: PathBuf,
        master_key: Option<String>,
    },
    /// Exactly these keys (key rotation).
    Vault(Vault),
}

fn key_error(e: crypto::CryptoError) -> StoreError {
    StoreError::Config(e.to_string())
}

/// Loads the keys and checks them against `backend`; see the module
/// documentation.
pub async fn unlock(backend: &dyn Backend, keys: Keys) -> StoreResult<Vault> {
    let in_use = backend.key_ids_in_use().await?;
    let vault = match keys {
        Keys::Vault(v) => v,
        Keys::Configured {
            data_dir,
            master_key,
        } => match crypto::load_keys(&data_dir, master_key.as_deref()).map_err(key_error)? {
            Some(v) => v,
            None if in_use.is_empty() => {
                crate::store::data_dir::prepare_data_dir(&data_dir)?;
                Vault::new(crypto::create_key_file(&data_dir).map_err(key_error)?, [])
            }
            None => {
                return Err(StoreError::Config(format!(
                    "no master key: {} holds face data sealed with key id(s) {} \
                     but neither FACEGATE_MASTER_KEY nor {} is present; restore the key",
                    backend.describe(),
                    in_use.join(", "),
                    data_dir.join(crypto::KEY_FILE).display()
                )))
            }
        },
    };
    let check = match backend.key_check().await? {
        Some(check) => check,
        None => {
            require_loaded(&vault, &in_use)?;
            let ours = seal_with(&vault, KEY_CHECK, KEY_CHECK_AAD);
            backend.init_key_check(&ours).await?
        }
    };
    if open_with(&vault, &check, KEY_CHECK_AAD).is_err() {
        return Err(StoreError::Config(format!(
            "wrong master key: {} was first opened with key id {} but the loaded key id(s) are \
             {}; check FACEGATE_MASTER_KEY / master.key (every instance needs the same key, and \
             a rotation in progress also needs master.key.next)",
            backend.describe(),
            check.key_id.as_deref().unwrap_or("(none)"),
            vault.key_ids().join(", ")
        )));
    }
    let unknown: Vec<&String> = in_use.iter().filter(|id| !vault.has_key(id)).collect();
    if !unknown.is_empty() {
        tracing::warn!(
            key_ids = ?unknown,
            "some stored face data is sealed with keys that are not loaded; it will be refused"
        );
    }
    Ok(vault)
}

/// Every key id in use must be loaded (a store without a key check yet).
fn require_loaded(vault: &Vault, in_use: &[String]) -> StoreResult<()> {
    let missing: Vec<&String> = in_use.iter().filter(|id| !vault.has_key(id)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(StoreError::Config(format!(
        "wrong master key: face data is sealed with key id(s) {:?} but the loaded key id(s) are {:?}; \
         check FACEGATE_MASTER_KEY / master.key (a rotation in progress also needs master.key.next)",
        missing,
        vault.key_ids()
    )))
}
