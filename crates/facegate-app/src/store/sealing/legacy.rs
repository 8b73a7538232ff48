//! The one-time import of what older versions left unsealed or outside
//! the database of an SQLite store: plaintext template embeddings are
//! sealed, and the photo and probe files under `<data-dir>/media` are
//! opened (or taken as plaintext JPEGs from before encryption), sealed
//! into the database and removed. It runs once per database, at the first
//! start of this version, recorded in `store_meta`; from then on any
//! unsealed record is refused as tampering, and no start-up step or key
//! rotation will ever seal it.

use std::path::{Component, Path, PathBuf};

use super::layer::seal_with;
use crate::crypto::{self, legacy_file_aad, photo_aad, probe_aad, template_aad, Vault};
use crate::domain::{AuditKind, NewAuditEvent};
use crate::store::backend::{SealedBlob, StoredBlob};
use crate::store::error::StoreResult;
use crate::store::records::Audit;
use crate::store::sqlite::SqliteBackend;

/// The directory older versions kept photos and probes in.
pub const MEDIA_DIR: &str = "media";

/// Runs the import unless it already ran; see the module documentation.
pub async fn seal_legacy(
    backend: &SqliteBackend,
    vault: &Vault,
    data_dir: &Path,
) -> StoreResult<()> {
    let media = data_dir.join(MEDIA_DIR);
    if backend.legacy_sealed().await? {
        // Left by an import interrupted after it was recorded.
        remove_media(&media);
        return Ok(());
    }
    let mut sealed = (0, 0, 0);
    let mut refused: Vec<(String, Option<i64>)> = Vec::new();
    for t in backend.legacy_templates().await? {
        let aad = template_aad(t.id, t.user_id);
        let embedding = match t.embedding.key_id {
            None => plaintext_embedding(vault, &t.embedding, &aad)
                .map(|plain| seal_with(vault, &plain, &aad)),
            Some(_) => None,
        };
        if t.embedding.key_id.is_none() && embedding.is_none() {
            refused.push((format!("face_templates/{}", t.id), Some(t.user_id)));
        }
        let photo = match t.image_path.is_empty() {
            true => None,
            false => read_file(vault, media.clone(), t.image_path.clone())
                .await
                .map(|jpeg| seal_with(vault, &jpeg, &photo_aad(t.id, t.user_id))),
        };
        if !t.image_path.is_empty() && photo.is_none() {
            refused.push((format!("media/{}", t.image_path), Some(t.user_id)));
        }
        sealed.0 += usize::from(embedding.is_some());
        sealed.1 += usize::from(photo.is_some());
        backend
            .replace_legacy_template(t.id, embedding, photo)
            .await?;
    }
    for p in backend.legacy_probes().await? {
        let probe: Option<SealedBlob> = read_file(vault, media.clone(), p.probe_path.clone())
            .await
            .map(|jpeg| seal_with(vault, &jpeg, &probe_aad(p.attempt_id)));
        if probe.is_none() {
            refused.push((format!("media/{}", p.probe_path), None));
        }
        sealed.2 += usize::from(probe.is_some());
        backend.replace_legacy_probe(p.attempt_id, probe).await?;
    }
    for (record, user_id) in refused {
        refuse(backend, record, user_id).await;
    }
    backend.mark_legacy_sealed().await?;
    if sealed != (0, 0, 0) {
        tracing::info!(
            templates = sealed.0,
            photos = sealed.1,
            probes = sealed.2,
            "sealed the plaintext templates and moved the photo files of an older version \
             into the database"
        );
    }
    remove_media(&media);
    Ok(())
}

/// A legacy embedding in the clear: as stored, or opened if it is sealed.
fn plaintext_embedding(vault: &Vault, blob: &StoredBlob, aad: &[u8]) -> Option<Vec<u8>> {
    let plain = match crypto::envelope_key_id(&blob.bytes) {
        Some(_) => vault.open(&blob.bytes, aad).ok()?,
        None => blob.bytes.clone(),
    };
    (!plain.is_empty() && plain.len() % 4 == 0).then_some(plain)
}

/// A photo or probe file as a JPEG: opened when sealed (bound to its
/// path), taken as is when it is a plaintext JPEG from before encryption.
/// None when it is missing, unsafe or does not open.
async fn read_file(vault: &Vault, media: PathBuf, rel: String) -> Option<Vec<u8>> {
    let safe = Path::new(&rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !safe {
        return None;
    }
    let data = tokio::fs::read(media.join(&rel)).await.ok()?;
    match crypto::envelope_key_id(&data) {
        Some(_) => vault.open(&data, &legacy_file_aad(&rel)).ok(),
        None => data.starts_with(&[0xFF, 0xD8]).then_some(data),
    }
}

/// Logs and audits a file that could not be imported.
async fn refuse(backend: &SqliteBackend, record: String, user_id: Option<i64>) {
    tracing::error!(%record, "a record of an older version is missing or does not open; not imported");
    let mut event = NewAuditEvent::new(AuditKind::Tampering, "refused")
        .detail(format!("record={record} reason=missing or does not open"));
    event.subject_user_id = user_id;
    if let Err(e) = backend.append_audit(&event).await {
        tracing::error!(error = %e, "could not audit a refused file");
    }
}

fn remove_media(media: &Path) {
    if media.exists() {
        if let Err(e) = std::fs::remove_dir_all(media) {
            tracing::warn!(path = %media.display(), error = %e, "could not remove the former media directory");
        }
    }
}
