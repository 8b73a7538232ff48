//! The indexed 1:N gallery: the sketch index finds the same best match as
//! exhaustive search for real faces hidden among many synthetic
//! templates, and a server searching through it follows enrolment,
//! deletion and deactivation one user at a time.

use facegate_app::service::{decide, rank, SketchIndex};
use facegate_app::{domain::MatchTemplate, GalleryConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;

use crate::helpers::{error_of, face, TestApp, ENGINE};
use facegate_testkit::paths::labels;

/// Embeddings of the shared single-face photos, with their identity.
fn real_embeddings() -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for label in labels() {
        if label.identity.is_empty() || label.faces != 1 {
            continue;
        }
        if let Ok(single) = ENGINE.analyze_single(&face(&label.file), false) {
            out.push((label.identity, single.analysis.embedding.vector));
        }
    }
    out
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    facegate_vision::l2_normalise(&mut v);
    v
}

fn gaussian(dim: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..dim)
        .map(|_| (0..6).map(|_| rng.gen::<f32>() - 0.5).sum())
        .collect()
}

/// `v` moved away at random so its similarity to `v` is about `cos`.
fn near(v: &[f32], cos: f32, rng: &mut StdRng) -> Vec<f32> {
    let noise = unit(gaussian(v.len(), rng));
    let s = (1.0 / (cos * cos) - 1.0).sqrt();
    unit(v.iter().zip(&noise).map(|(a, n)| a + s * n).collect())
}

#[test]
fn the_index_finds_the_same_best_match_as_exact_search() {
    let real = real_embeddings();
    assert!(real.len() >= 15, "only {} photos embedded", real.len());
    let dim = real[0].1.len();
    let mut rng = StdRng::seed_from_u64(12);
    let mut gallery = Vec::new();
    // Each identity's first photo is enrolled as a user; its other photos
    // are genuine probes.
    let mut enrolled: Vec<String> = Vec::new();
    for (who, v) in &real {
        if !enrolled.contains(who) {
            enrolled.push(who.clone());
            let user_id = enrolled.len() as i64;
            gallery.push(MatchTemplate {
                user_id,
                embedding: v.clone(),
            });
            // Look-alikes: synthetic users more or less close to them.
            for i in 0..40 {
                let cos = 0.25 + 0.012 * i as f32;
                gallery.push(MatchTemplate {
                    user_id: 1_000_000 + gallery.len() as i64,
                    embedding: near(v, cos, &mut rng),
                });
            }
        }
    }
    for _ in 0..60_000 {
        gallery.push(MatchTemplate {
            user_id: 1_000_000 + gallery.len() as i64,
            embedding: unit(gaussian(dim, &mut rng)),
        });
    }
    let candidates = GalleryConfig::default().candidates;
    let index = SketchIndex::build(&gallery, dim, candidates, &|_| {});
    assert_eq!(index.len(), gallery.len());
    let bytes = index.memory_bytes() as f64 / gallery.len() as f64;
    assert!(bytes <= 1024.0, "{bytes:.0} bytes per template");
    let threshold = ENGINE.threshold();
    let mut genuine = 0;
    for (who, probe) in &real {
        let exact = rank(&gallery, probe);
        let ann = index.rank(probe);
        assert_eq!(ann[0], exact[0], "best match of a {who} photo");
        assert_eq!(
            decide(&ann, threshold, 0.05, 0.15),
            decide(&exact, threshold, 0.05, 0.15),
            "decision for a {who} photo"
        );
        if ann[0].0 <= enrolled.len() as i64 && enrolled[ann[0].0 as usize - 1] == *who {
            genuine += 1;
        }
    }
    assert!(
        genuine >= real.len() / 2,
        "only {genuine} photos found their own user"
    );
}

#[tokio::test]
async fn identify_through_the_index_follows_every_change() {
    let app = TestApp::spawn_with(|c| c.gallery.index_min_templates = 1).await;
    let services = &app.state.services;
    let barack = app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let joe = app.user_with_faces("joe", &["biden_1.jpg"]).await;
    let a = app.agent().await;
    // The first search loads the gallery: two templates, indexed.
    let r = a.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(a.me().await.as_deref(), Some("barack"));
    assert_eq!(services.gallery_state(), Some((2, true)));

    // Enrolled after the load: found without a reload.
    app.user_with_faces("kit", &["kit_harington_1.jpg"]).await;
    assert_eq!(services.gallery_state(), Some((3, true)));
    let a = app.agent().await;
    let r = a.face_login(&face("kit_harington_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(a.me().await.as_deref(), Some("kit"));

    // Faces deleted: no longer recognised.
    services.delete_all_faces(barack).await.unwrap();
    let a = app.agent().await;
    let (status, code) = error_of(a.face_login(&face("obama_2.jpg"), None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unknown")
    );
    assert_eq!(a.me().await, None);

    // Deactivated: refused; reactivated: recognised again.
    services.set_active(joe, false).await.unwrap();
    let (_, code) = error_of(a.face_login(&face("biden_2.jpg"), None).await).await;
    assert_eq!(code, "unknown");
    services.set_active(joe, true).await.unwrap();
    let r = a.face_login(&face("biden_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(a.me().await.as_deref(), Some("joe"));
    assert_eq!(services.gallery_state(), Some((2, true)));
}
