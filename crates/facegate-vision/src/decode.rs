//! Image decoding with limits checked before any pixel is decoded.
//!
//! Byte size and the header's dimensions are checked first, so a
//! decompression bomb costs nothing; EXIF orientation is honoured and every
//! colour type (grey, RGBA, 16-bit) comes out as 8-bit RGB.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::{InvalidImageReason, VisionError};

/// The smallest side an image may have to be worth looking at.
pub const MIN_SIDE: u32 = 12;

/// Limits applied before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecodeLimits {
    /// Largest accepted encoded size in bytes.
    pub max_bytes: usize,
    /// Largest accepted width × height, read from the header.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 10 * 1024 * 1024,
            max_pixels: 40_000_000,
        }
    }
}

fn invalid(reason: InvalidImageReason) -> VisionError {
    VisionError::InvalidImage(reason)
}

fn reader<'a>(
    bytes: &'a [u8],
    limits: &DecodeLimits,
) -> Result<ImageReader<Cursor<&'a [u8]>>, VisionError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| invalid(InvalidImageReason::Corrupt(e.to_string())))?;
    match reader.format() {
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) => {}
        _ => return Err(invalid(InvalidImageReason::UnsupportedFormat)),
    }
    let mut image_limits = image::Limits::default();
    // 8 bytes per pixel covers 16-bit RGBA; the header check below is the
    // real gate, this only stops a lying decoder from allocating more.
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(1 << 20));
    reader.limits(image_limits);
    Ok(reader)
}

fn map_image_error(e: ImageError) -> VisionError {
    match e {
        ImageError::Limits(l) => VisionError::TooLarge(l.to_string()),
        ImageError::Unsupported(_) => invalid(InvalidImageReason::UnsupportedFormat),
        other => invalid(InvalidImageReason::Corrupt(other.to_string())),
    }
}

/// Reads only the header and returns `(width, height)` after checking the
/// byte and pixel limits.
pub fn probe_dimensions(bytes: &[u8], limits: &DecodeLimits) -> Result<(u32, u32), VisionError> {
    if bytes.is_empty() {
        return Err(invalid(InvalidImageReason::Empty));
    }
    if bytes.len() > limits.max_bytes {
        return Err(VisionError::TooLarge(format!(
            "{} bytes, the limit is {}",
            bytes.len(),
            limits.max_bytes
        )));
    }
    let (width, height) = reader(bytes, limits)?
        .into_dimensions()
        .map_err(map_image_error)?;
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(VisionError::TooLarge(format!(
            "{width}x{height} pixels, the limit is {} pixels",
            limits.max_pixels
        )));
    }
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(invalid(InvalidImageReason::TooSmall { width, height }));
    }
    Ok((width, height))
}

/// Decodes JPEG, PNG or WebP bytes into an upright 8-bit RGB image.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, VisionError> {
    probe_dimensions(bytes, limits)?;
    let reader = reader(bytes, limits)?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err(invalid(InvalidImageReason::Corrupt(
            "truncated JPEG: no end-of-image marker after the scan".into(),
        )));
    }
    let mut decoder = reader.into_decoder().map_err(map_image_error)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(map_image_error)?;
    img.apply_orientation(orientation);
    Ok(match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// True when a JPEG stream has an end-of-image marker after its first scan.
/// Lenient decoders fill a truncated scan with grey; we refuse it instead,
/// because half a face is not a face. The walk skips marker segments (EXIF
/// thumbnails carry their own markers inside APP1) to find the first scan.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut pos = 2; // after SOI
    while pos + 4 <= bytes.len() {
        if bytes[pos] != 0xFF {
            return false;
        }
        let marker = bytes[pos + 1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        if marker == 0xDA {
            return bytes[pos..].windows(2).any(|w| w == [0xFF, 0xD9]);
        }
        let len = usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
        pos += 2 + len;
    }
    false
}

/// Scales an image so that its longer side is at most `max_side` pixels.
pub fn fit_within(img: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = w.max(h);
    if long <= max_side {
        return img.clone();
    }
    let scale = max_side as f32 / long as f32;
    let nw = ((w as f32 * scale).round() as u32).max(1);
    let nh = ((h as f32 * scale).round() as u32).max(1);
    image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn empty_bytes_are_refused() {
        let e = decode(&[], &DecodeLimits::default()).unwrap_err();
        assert!(matches!(
            e,
            VisionError::InvalidImage(InvalidImageReason::Empty)
        ));
    }

    #[test]
    fn text_is_not_an_image() {
        let e = decode(b"hello, I am not a picture", &DecodeLimits::default()).unwrap_err();
        assert!(matches!(
            e,
            VisionError::InvalidImage(InvalidImageReason::UnsupportedFormat)
        ));
    }

    #[test]
    fn truncated_jpeg_is_corrupt() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([x as u8 * 3, y as u8 * 3, 90])
        }));
        let jpeg = encode(&img, ImageFormat::Jpeg);
        assert!(decode(&jpeg, &DecodeLimits::default()).is_ok());
        let e = decode(&jpeg[..jpeg.len() / 2], &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(e, VisionError::InvalidImage(InvalidImageReason::Corrupt(_))),
            "{e:?}"
        );
    }

    #[test]
    fn byte_limit_is_checked_first() {
        let limits = DecodeLimits {
            max_bytes: 10,
            max_pixels: 100,
        };
        let e = decode(&[0u8; 11], &limits).unwrap_err();
        assert!(matches!(e, VisionError::TooLarge(_)));
    }

    #[test]
    fn grey_and_sixteen_bit_become_rgb() {
        let grey = DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(
            20,
            30,
            image::Luma([40000u16]),
        ));
        let rgb = decode(&encode(&grey, ImageFormat::Png), &DecodeLimits::default()).unwrap();
        assert_eq!(rgb.dimensions(), (20, 30));
        assert_eq!(rgb.get_pixel(3, 3).0, [156, 156, 156]); // 40000 / 65535 × 255, rounded
    }
}
