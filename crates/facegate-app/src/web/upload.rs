//! Reading multipart uploads: image files and small text fields, with the
//! per-file and per-request limits, and the API error for a body that
//! breaks off or overflows while it is read.

use axum::extract::multipart::{Multipart, MultipartError};
use axum::http::StatusCode;

use super::error::ApiError;

/// The fields of an image upload.
#[derive(Debug, Default)]
pub struct Upload {
    pub images: Vec<Vec<u8>>,
    pub text: Vec<(String, String)>,
}

impl Upload {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.text
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The API error for a multipart body that fails while it is read.
pub fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "The upload is too large.",
        )
    } else {
        ApiError::bad_request(format!("Malformed upload: {}", e.body_text()))
    }
}

/// Reads a multipart body: files from `image` fields (each at most
/// `max_bytes`, at most `max_files`), small text fields otherwise. The body
/// size limit has already been enforced by the router.
pub async fn read_upload(
    mut mp: Multipart,
    max_bytes: usize,
    max_files: usize,
) -> Result<Upload, ApiError> {
    let mut up = Upload::default();
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "image" {
            let bytes = field.bytes().await.map_err(multipart_error)?;
            if bytes.is_empty() {
                continue; // an empty file input
            }
            if bytes.len() > max_bytes {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "Each image may be at most {} MB.",
                        max_bytes / (1024 * 1024)
                    ),
                ));
            }
            if up.images.len() >= max_files {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("At most {max_files} images at once."),
                ));
            }
            up.images.push(bytes.to_vec());
        } else {
            let text = field.text().await.map_err(multipart_error)?;
            if text.len() > 4096 {
                return Err(ApiError::bad_request("A form field is too long."));
            }
            up.text.push((name, text));
        }
    }
    Ok(up)
}
