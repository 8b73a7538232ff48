//! Photos and probes as the store keeps them: JPEG re-encoded from the
//! decoded pixels, never the uploaded bytes (so nothing but the picture —
//! no metadata, no crafted payload — is ever stored). The store seals them.

use std::io::Cursor;

use facegate_vision::RgbImage;

use crate::domain::Jpeg;

/// The quality photos are stored at.
const QUALITY: u8 = 90;

/// Encodes `img` as a JPEG.
pub fn encode(img: &RgbImage) -> Result<Jpeg, image::ImageError> {
    let mut buf = Cursor::new(Vec::new());
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, QUALITY);
    img.write_with_encoder(encoder)?;
    Ok(Jpeg(buf.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_jpeg() {
        let img = RgbImage::from_pixel(32, 24, image::Rgb([200, 10, 10]));
        let jpeg = encode(&img).unwrap();
        assert_eq!(&jpeg.0[..2], &[0xFF, 0xD8]);
        let back = image::load_from_memory(&jpeg.0).unwrap();
        assert_eq!((back.width(), back.height()), (32, 24));
    }
}
