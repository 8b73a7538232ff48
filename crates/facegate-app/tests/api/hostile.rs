//! Hostile input: a corpus of malformed and tricky images posted to every
//! image endpoint. Each gets a 4xx with an error code; the server stays up
//! and still enrols a good photo afterwards.

use std::io::Cursor;

use facegate_app::FaceLoginMode;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::DirApp;
use crate::helpers::{face, landscape};

fn encode(img: &image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

/// A JPEG whose frame header claims `w` x `h` pixels.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = landscape();
    let sof = bytes
        .windows(2)
        .position(|p| p == [0xFF, 0xC0])
        .expect("baseline JPEG");
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

fn cmyk_jpeg() -> Vec<u8> {
    let (w, h) = (320u16, 240u16);
    let mut px = Vec::with_capacity(w as usize * h as usize * 4);
    for y in 0..h {
        for x in 0..w {
            px.extend_from_slice(&[(x % 255) as u8, (y % 255) as u8, 80, 20]);
        }
    }
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.encode(&px, w, h, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    out
}

fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for i in 0..3u8 {
            let frame = image::RgbaImage::from_pixel(64, 64, image::Rgba([i * 80, 40, 200, 255]));
            enc.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    out
}

/// A RIFF/WebP container with the animation flag and an ANIM chunk but
/// nonsense frames.
fn animated_webp() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(b"WEBP");
    body.extend_from_slice(b"VP8X");
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0x02, 0, 0, 0]); // animation flag
    body.extend_from_slice(&[63, 0, 0, 63, 0, 0]); // 64 x 64
    body.extend_from_slice(b"ANIM");
    body.extend_from_slice(&6u32.to_le_bytes());
    body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    body.extend_from_slice(b"ANMF");
    body.extend_from_slice(&20u32.to_le_bytes());
    body.extend_from_slice(&[0u8; 20]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let good = face("obama_1.jpg");
    let land =
        image::DynamicImage::ImageRgb8(image::load_from_memory(&landscape()).unwrap().to_rgb8());
    let png16 = image::DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(200, 150, |x, y| {
        image::Rgb([(x * 300) as u16, (y * 400) as u16, 30000])
    }));
    let mut wrong_magic = good.clone();
    wrong_magic[..4].copy_from_slice(b"\x00\x00\x00\x00");
    let mut polyglot = landscape();
    polyglot.extend_from_slice(b"<html><script>alert(1)</script></html>PK\x03\x04");
    vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("header_only", good[..200].to_vec()),
        ("wrong_magic", wrong_magic),
        ("text_as_image", b"this is not an image at all".to_vec()),
        ("giant_dimensions", jpeg_claiming(60000, 60000)),
        ("zero_dimensions", jpeg_claiming(0, 0)),
        ("animated_gif", animated_gif()),
        ("animated_webp", animated_webp()),
        ("cmyk_jpeg", cmyk_jpeg()),
        ("png_16bit", encode(&png16, image::ImageFormat::Png)),
        (
            "tiny_png",
            encode(
                &land.resize(2, 2, image::imageops::FilterType::Nearest),
                image::ImageFormat::Png,
            ),
        ),
        ("jpeg_html_zip_polyglot", polyglot),
        (
            "gif_js_polyglot",
            b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=alert(1)//;".to_vec(),
        ),
        ("png_signature_only", b"\x89PNG\r\n\x1a\n".to_vec()),
    ]
}

const CODES: &[&str] = &[
    "invalid_image",
    "too_large",
    "no_face",
    "multiple_faces",
    "low_quality",
    "invalid",
    "unknown",
];

#[tokio::test]
async fn malformed_images_get_4xx_codes_on_every_image_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let app = DirApp::spawn(tmp.path(), |c| c.face_login = FaceLoginMode::Identify)
        .await
        .unwrap();
    let a = app.agent().await;
    a.register("barack").await;
    let anon = app.agent().await;
    let mut seen = Vec::new();
    for (name, bytes) in corpus() {
        for (who, path) in [(&a, "/api/me/faces"), (&anon, "/api/face-login")] {
            let form = Form::new().part("image", Part::bytes(bytes.clone()).file_name("x.jpg"));
            let r = who
                .client
                .post(who.url(path))
                .header("X-CSRF-Token", &who.csrf)
                .multipart(form)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{name} on {path}: {e}"));
            let status = r.status();
            let v: Value = r
                .json()
                .await
                .unwrap_or_else(|e| panic!("{name} on {path}: {e}"));
            let code = v["error"].as_str().unwrap_or_default().to_string();
            assert!(status.is_client_error(), "{name} on {path}: {status} {v}");
            assert!(
                CODES.contains(&code.as_str()),
                "{name} on {path}: code {code}"
            );
            seen.push(format!("{name} {path} {} {code}", status.as_u16()));
        }
        // The page upload answers with a redirect and a message, not a crash.
        let form = Form::new()
            .text("csrf_token", a.csrf.clone())
            .part("image", Part::bytes(bytes.clone()).file_name("x.jpg"));
        let r = a
            .client
            .post(a.url(&format!("/profile/faces?csrf_token={}", a.csrf)))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{name} on the profile page"
        );
    }
    eprintln!("{}", seen.join("\n"));
    // Specific expectations where the answer is certain.
    let has = |s: &str| seen.iter().any(|l| l.starts_with(s));
    assert!(has("truncated /api/me/faces 422 invalid_image"));
    assert!(has("wrong_magic /api/me/faces 422 invalid_image"));
    assert!(has("animated_gif /api/me/faces 422 invalid_image"));
    assert!(
        has("giant_dimensions /api/me/faces 413 too_large")
            || has("giant_dimensions /api/me/faces 422 invalid_image")
    );
    assert!(has("cmyk_jpeg /api/me/faces 422 no_face"));
    assert!(has("png_16bit /api/me/faces 422 no_face"));
    // Still up, and a good photo still enrols.
    assert_eq!(a.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(
        a.upload_face(&face("obama_1.jpg")).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.state
            .services
            .store
            .templates_for_user(1)
            .await
            .unwrap()
            .len(),
        1
    );
}
