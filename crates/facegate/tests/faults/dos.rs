//! Memory of the real process under a stranger's worst-case challenge
//! answers (security review, issue 16, point 1): 45 frames whose headers
//! claim 6000×6000 pixels, and 45 frames as large as an answer may carry
//! (480 px, 512 KB of noise each) that the server must decode and judge.
//! The peak resident size (`VmHWM`) is measured around each answer; the
//! figures are in docs/RELIABILITY.md.

use std::io::Cursor;
use std::time::Instant;

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::common::{visitor, Agent, Server};

/// The most one challenge answer may add to the server's peak memory.
const BUDGET_KIB: u64 = 50 * 1024;

fn grey_jpeg(side: u32) -> Vec<u8> {
    let img = image::GrayImage::from_pixel(side, side, image::Luma([128]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

/// A 480×480 JPEG of noise at the highest quality that stays within the
/// 512 KB a frame may have.
fn largest_frame() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let img = image::RgbImage::from_fn(480, 480, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [r, g, b, ..] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    (50..=100)
        .rev()
        .map(|q| {
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
                .encode_image(&img)
                .unwrap();
            out
        })
        .find(|j| j.len() <= 512 * 1024)
        .unwrap()
}

/// Starts a challenge and answers it with `frames` (180 ms apart); the
/// status, or `None` when the server closed the connection mid-upload.
async fn answer(a: &Agent, frames: &[Vec<u8>]) -> Option<u16> {
    let url = format!("{}/api/face-login/challenge", a.base);
    let r = a
        .client
        .post(url)
        .header("X-CSRF-Token", &a.csrf)
        .send()
        .await;
    let v: Value = r.unwrap().json().await.unwrap();
    let id = v["challenge_id"].as_str().unwrap().to_string();
    let mut form = Form::new();
    for f in frames {
        form = form.part("frame", Part::bytes(f.clone()).file_name("f.jpg"));
    }
    let times: Vec<f64> = (0..frames.len()).map(|i| i as f64 * 180.0).collect();
    form = form.text("timestamps", serde_json::to_string(&times).unwrap());
    let url = format!("{}/api/face-login/challenge/{id}/frames", a.base);
    let sent = a.client.post(url).header("X-CSRF-Token", &a.csrf);
    sent.multipart(form)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// The peak memory answering with `frames` adds to the server, in KiB,
/// over its resident size after one small answer (which allocates the
/// engine's buffers once).
async fn peak_growth(server: &Server, a: &Agent, frames: &[Vec<u8>]) -> (u64, Option<u16>) {
    let before = server.memory_kib("VmRSS");
    server.reset_peak_memory();
    let status = answer(a, frames).await;
    let peak = server.memory_kib("VmHWM");
    (peak.saturating_sub(before), status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worst_case_challenge_answer_stays_within_50_mb() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("FACEGATE_LIVENESS", "both")]);
    let a = visitor(&server.base).await;
    let frame = largest_frame();
    // Warm-up: an answer of the smallest accepted size.
    assert_eq!(answer(&a, &vec![frame.clone(); 6]).await, Some(401));

    let bombs = vec![grey_jpeg(6000); 45];
    let started = Instant::now();
    let (grown, status) = peak_growth(&server, &a, &bombs).await;
    let took = started.elapsed();
    eprintln!("45 frames claiming 6000x6000: +{grown} KiB peak, {status:?}, {took:?}");
    assert!(matches!(status, None | Some(413)), "{status:?}");
    assert!(grown < BUDGET_KIB, "+{grown} KiB");

    let frames = vec![frame; 45];
    let (grown, status) = peak_growth(&server, &a, &frames).await;
    let mb = frames.iter().map(Vec::len).sum::<usize>() as f64 / 1048576.0;
    eprintln!("45 frames of 480x480 noise ({mb:.1} MB): +{grown} KiB peak, {status:?}");
    assert_eq!(status, Some(401), "judged and refused (no face)");
    assert!(grown < BUDGET_KIB, "+{grown} KiB");
    server.stop();
}
