//! Pictures made by the tests themselves: scenes without any face.

use std::io::Cursor;

/// A generated landscape (sky, hills, grass) without any face, as JPEG.
pub fn landscape() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let hill = 300.0 + 40.0 * ((x as f32) / 90.0).sin();
        if (y as f32) < hill - 80.0 {
            image::Rgb([110, 160, (230 - y / 4) as u8])
        } else if (y as f32) < hill {
            image::Rgb([70, 110 + (x % 7) as u8, 60])
        } else {
            image::Rgb([50, 140 + ((x * 3 + y) % 11) as u8, 40])
        }
    });
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
    buf.into_inner()
}
