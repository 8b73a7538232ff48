//! Face photos on disk under `<data-dir>/media/users/<user-id>/<random>.jpg`,
//! always re-encoded from decoded pixels, never the uploaded bytes.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use facegate_vision::RgbImage;
use rand::RngCore;

/// The media directory.
#[derive(Debug, Clone)]
pub struct Media {
    root: PathBuf,
}

impl Media {
    pub fn new(root: PathBuf) -> Self {
        Media { root }
    }

    /// Encodes `img` as JPEG and writes it for `user_id`; returns the path
    /// relative to the media root.
    pub fn save(&self, user_id: i64, img: &RgbImage) -> std::io::Result<String> {
        let mut buf = Cursor::new(Vec::new());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90);
        img.write_with_encoder(encoder)
            .map_err(std::io::Error::other)?;
        let mut name = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut name);
        let rel = format!("users/{user_id}/{}.jpg", hex::encode(name));
        let path = self.root.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, buf.into_inner())?;
        Ok(rel)
    }

    /// Reads a stored photo.
    pub fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.checked(rel)?)
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
        let media = Media::new(dir.path().to_path_buf());
        let img = RgbImage::from_pixel(32, 24, image::Rgb([200, 10, 10]));
        let rel = media.save(7, &img).unwrap();
        assert!(rel.starts_with("users/7/") && rel.ends_with(".jpg"));
        let bytes = media.read(&rel).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
        assert!(media.read("../etc/passwd").is_err());
        media.remove(&rel);
        assert!(media.read(&rel).is_err());
    }
}
