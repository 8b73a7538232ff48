//! Face photos on disk under `<data-dir>/media/users/<user-id>/<random>.jpg`
//! and kept face-login probes under `<data-dir>/media/probes/<random>.jpg`,
//! always re-encoded from decoded pixels, never the uploaded bytes, and
//! sealed with AES-256-GCM (the path is the associated data). Files are
//! written to a temporary name, synced, then renamed: a crash leaves either
//! the whole file or none, and a failed write (e.g. a full disk) removes
//! the temporary file.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use facegate_vision::RgbImage;
use rand::RngCore;

use crate::crypto::{self, image_aad, Vault};

/// Where kept face-login probes live, relative to the media root.
pub const PROBES_DIR: &str = "probes";

/// The media directory.
#[derive(Debug, Clone)]
pub struct Media {
    root: PathBuf,
    vault: Arc<Vault>,
}

fn crypto_err(e: crypto::CryptoError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// Writes `bytes` to `path` atomically and durably.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut f = std::fs::File::create(&tmp)?;
    let written = f.write_all(bytes).and_then(|_| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Media {
    pub fn new(root: PathBuf, vault: Arc<Vault>) -> Self {
        Media { root, vault }
    }

    /// The media root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Encodes `img` as JPEG and writes it for `user_id`; returns the path
    /// relative to the media root.
    pub fn save(&self, user_id: i64, img: &RgbImage) -> std::io::Result<String> {
        self.save_in(&format!("users/{user_id}"), img)
    }

    /// Encodes a face-login probe as JPEG and writes it under `probes/`;
    /// returns the path relative to the media root.
    pub fn save_probe(&self, img: &RgbImage) -> std::io::Result<String> {
        self.save_in(PROBES_DIR, img)
    }

    /// Encodes, seals and writes `img` as `<dir>/<random>.jpg`.
    fn save_in(&self, dir: &str, img: &RgbImage) -> std::io::Result<String> {
        let mut buf = Cursor::new(Vec::new());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90);
        img.write_with_encoder(encoder)
            .map_err(std::io::Error::other)?;
        let mut name = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut name);
        let rel = format!("{dir}/{}.jpg", hex::encode(name));
        let sealed = self.vault.seal(&buf.into_inner(), &image_aad(&rel));
        write_atomic(&self.root.join(&rel), &sealed)?;
        Ok(rel)
    }

    /// Reads and decrypts a stored photo (a legacy plaintext file as is).
    pub fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
        let data = std::fs::read(self.checked(rel)?)?;
        if crypto::envelope_key_id(&data).is_none() {
            return Ok(data);
        }
        self.vault.open(&data, &image_aad(rel)).map_err(crypto_err)
    }

    /// Re-seals a stored photo with the primary key; false when it already
    /// was. The file is replaced atomically.
    pub fn reseal(&self, rel: &str) -> std::io::Result<bool> {
        let path = self.checked(rel)?;
        let data = std::fs::read(&path)?;
        if let Some(id) = crypto::envelope_key_id(&data) {
            if hex::encode(id) == self.vault.primary_id() {
                return Ok(false);
            }
        }
        let plain = self.read(rel)?;
        write_atomic(&path, &self.vault.seal(&plain, &image_aad(rel)))?;
        Ok(true)
    }

    /// Removes stored photos (missing files are fine).
    pub fn remove_all(&self, rels: &[String]) {
        for rel in rels {
            self.remove(rel);
        }
    }

    /// Removes a stored photo (missing files are fine).
    pub fn remove(&self, rel: &str) {
        if let Ok(path) = self.checked(rel) {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a face photo");
                }
            }
        }
    }

    /// Removes a user's photo directory.
    pub fn remove_user(&self, user_id: i64) {
        let dir = self.root.join(format!("users/{user_id}"));
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(path = %dir.display(), error = %e, "could not remove a user's photos");
            }
        }
    }

    fn checked(&self, rel: &str) -> std::io::Result<PathBuf> {
        let p = Path::new(rel);
        let safe = p
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "unsafe media path",
            ));
        }
        Ok(self.root.join(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let old = crypto::MasterKey::generate();
        let media = Media::new(
            dir.path().to_path_buf(),
            Arc::new(Vault::new(old.clone(), [])),
        );
        let img = RgbImage::from_pixel(32, 24, image::Rgb([200, 10, 10]));
        let rel = media.save(7, &img).unwrap();
        assert!(rel.starts_with("users/7/") && rel.ends_with(".jpg"));
        let raw = std::fs::read(dir.path().join(&rel)).unwrap();
        assert_eq!(&raw[..4], crypto::MAGIC, "sealed on disk");
        let bytes = media.read(&rel).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
        // Rotation: a vault with a new primary re-seals, once.
        let rotated = Media::new(
            dir.path().to_path_buf(),
            Arc::new(Vault::new(crypto::MasterKey::generate(), [old])),
        );
        assert!(rotated.reseal(&rel).unwrap());
        assert!(!rotated.reseal(&rel).unwrap());
        assert_eq!(rotated.read(&rel).unwrap(), bytes);
        assert!(
            media.read(&rel).is_err(),
            "the old key alone no longer opens it"
        );
        assert!(media.read("../etc/passwd").is_err());
        let probe = media.save_probe(&img).unwrap();
        assert!(probe.starts_with("probes/") && probe.ends_with(".jpg"));
        assert_eq!(&media.read(&probe).unwrap()[..2], &[0xFF, 0xD8]);
        media.remove_all(std::slice::from_ref(&probe));
        assert!(!dir.path().join(&probe).exists());
        rotated.remove(&rel);
        assert!(rotated.read(&rel).is_err());
    }
}
