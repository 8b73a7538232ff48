//! Retention: old login attempts are purged by the sweep (audited, the
//! audit trail itself kept), and face-login probes are kept only when
//! `probe_retention_days` > 0 — sealed, visible to staff only, purged
//! after their retention, with the user's erasure, exported and re-sealed
//! by a key rotation. The sweep takes the time as a parameter, so nothing
//! here sleeps.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use facegate_app::crypto::{self, MasterKey, Vault};
use facegate_app::service::{rotate_keys, Media};
use facegate_app::store::{open_sqlite_with, Keys};
use reqwest::StatusCode;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::harness::{files_under, raw_pool};
use crate::helpers::{face, TestApp, PASSWORD};

const JPEG_MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];

fn data_dir(app: &TestApp) -> PathBuf {
    app.state.services.config.data_dir.clone()
}

fn probe_files(dir: &Path) -> Vec<PathBuf> {
    files_under(&dir.join("media/probes"))
}

/// Ids of the attempts that hold a probe.
async fn attempts_with_probes(dir: &Path) -> Vec<i64> {
    let pool = raw_pool(dir).await;
    let ids = sqlx::query_scalar(
        "SELECT id FROM login_attempts WHERE probe_path IS NOT NULL AND probe_key_id IS NOT NULL ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    ids
}

async fn audit_count(app: &TestApp) -> usize {
    app.state
        .services
        .store
        .audit_events(&Default::default())
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn old_login_attempts_are_purged_and_the_purge_is_audited() {
    let app = TestApp::spawn().await;
    let services = app.state.services.clone();
    let a = app.agent().await;
    a.register("ada").await;
    for pw in ["wrong one", "wrong two", PASSWORD, "wrong three"] {
        a.login("ada", pw).await;
    }
    // Two attempts are 100 days old, two are recent.
    let dir = data_dir(&app);
    let pool = raw_pool(&dir).await;
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM login_attempts ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids.len(), 4);
    sqlx::query("UPDATE login_attempts SET at = at - 100 * 86400 WHERE id IN (?, ?)")
        .bind(ids[0])
        .bind(ids[1])
        .execute(&pool)
        .await
        .unwrap();
    let audit_before = audit_count(&app).await;

    let now = OffsetDateTime::now_utc();
    let swept = services.sweep_retention(now).await.unwrap();
    assert_eq!((swept.login_attempts, swept.probes), (2, 0));
    let left: Vec<i64> = sqlx::query_scalar("SELECT id FROM login_attempts ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, ids[2..].to_vec(), "recent attempts are kept");
    let events = services
        .store
        .audit_events(&Default::default())
        .await
        .unwrap();
    assert_eq!(
        events.len(),
        audit_before + 1,
        "the audit trail is not purged"
    );
    let purge = &events[0];
    assert_eq!(
        (purge.kind.as_str(), purge.outcome.as_str()),
        ("retention_purge", "success")
    );
    assert!(
        purge.detail.contains("login_attempts=2 probes=0"),
        "{}",
        purge.detail
    );

    // Nothing more to purge now: no event. At 91 days on, the rest goes.
    let swept = services.sweep_retention(now).await.unwrap();
    assert_eq!(swept.login_attempts, 0);
    assert_eq!(audit_count(&app).await, audit_before + 1);
    let later = now + Duration::days(91);
    assert_eq!(
        services
            .sweep_retention(later)
            .await
            .unwrap()
            .login_attempts,
        2
    );
    pool.close().await;

    // 0 keeps attempts forever.
    let forever = TestApp::spawn_with(|c| c.login_attempt_retention_days = 0).await;
    forever.agent().await.login("nobody", "x").await;
    let swept = forever
        .state
        .services
        .sweep_retention(now + Duration::days(3650))
        .await
        .unwrap();
    assert_eq!(swept.login_attempts, 0);
    let kept = forever.state.services.recent_attempts(10).await.unwrap();
    assert_eq!(kept.len(), 1);
}

#[tokio::test]
async fn probes_are_not_kept_by_default() {
    let app = TestApp::spawn().await;
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let a = app.agent().await;
    let r = a.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let dir = data_dir(&app);
    let media = dir.join("media");
    let files = files_under(&media);
    assert_eq!(files.len(), 1, "only the enrolment photo: {files:?}");
    assert!(files[0].starts_with(media.join("users")));
    assert!(attempts_with_probes(&dir).await.is_empty());
}

#[tokio::test]
async fn kept_probes_are_sealed_staff_only_and_expire() {
    let app = TestApp::spawn_with(|c| c.probe_retention_days = 7).await;
    let services = app.state.services.clone();
    facegate_app::service::create_superuser(
        services.store.clone(),
        "root",
        "root@example.com",
        PASSWORD,
    )
    .await
    .unwrap();
    app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let a = app.agent().await;
    let r = a.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);

    // One sealed file, referenced by the attempt with its key id.
    let dir = data_dir(&app);
    let files = probe_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read(&files[0]).unwrap();
    assert_ne!(&raw[..3], &JPEG_MAGIC, "no plaintext JPEG on disk");
    assert_eq!(&raw[..4], crypto::MAGIC);
    let ids = attempts_with_probes(&dir).await;
    assert_eq!(ids.len(), 1);
    let probe_url = format!("/admin/attempts/{}/probe", ids[0]);

    // Staff see it from the attempts page, decrypted.
    let admin = app.agent().await;
    assert_eq!(admin.login("root", PASSWORD).await.status(), StatusCode::OK);
    let page = admin.get("/admin/attempts").await.text().await.unwrap();
    assert!(
        page.contains(&probe_url),
        "the attempts page links the probe"
    );
    let r = admin.get(&probe_url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let jpeg = r.bytes().await.unwrap();
    assert_eq!(&jpeg[..3], &JPEG_MAGIC);
    image::load_from_memory(&jpeg).unwrap();
    let events = services
        .store
        .audit_events(&Default::default())
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "admin_action" && e.detail.contains("action=view_probe")));

    // The user themself (not staff) and visitors do not.
    assert_eq!(a.get(&probe_url).await.status(), StatusCode::FORBIDDEN);
    let visitor = app.agent().await;
    assert_eq!(
        visitor.get(&probe_url).await.status(),
        StatusCode::NOT_FOUND
    );

    // A week and a day later the probe is gone, file and reference; the
    // attempt itself stays (90 days).
    let later = OffsetDateTime::now_utc() + Duration::days(8);
    let swept = services.sweep_retention(later).await.unwrap();
    assert_eq!((swept.login_attempts, swept.probes), (0, 1));
    assert!(probe_files(&dir).is_empty());
    assert!(attempts_with_probes(&dir).await.is_empty());
    assert!(services.store.attempt(ids[0]).await.unwrap().is_some());
    assert_eq!(admin.get(&probe_url).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn kept_probes_follow_erasure_export_and_key_rotation() {
    let app = TestApp::spawn_with(|c| c.probe_retention_days = 7).await;
    let services = app.state.services.clone();
    let dir = data_dir(&app);
    let id = app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let login = || async {
        let a = app.agent().await;
        let r = a.face_login(&face("obama_2.jpg"), None).await;
        assert_eq!(r.status(), StatusCode::OK);
        a
    };

    // Erasing one's face data takes the probes along.
    login().await;
    assert_eq!(probe_files(&dir).len(), 1);
    services.delete_all_faces(id).await.unwrap();
    assert!(probe_files(&dir).is_empty());
    assert!(attempts_with_probes(&dir).await.is_empty());

    // Export: the probe, decrypted, beside the attempts.
    let a = app.agent().await;
    a.login("barack", PASSWORD).await;
    assert_eq!(
        a.upload_face(&face("obama_1.jpg")).await.status(),
        StatusCode::CREATED
    );
    login().await;
    let user = services.store.user_by_id(id).await.unwrap().unwrap();
    let export = services.export_user(&user).await.unwrap();
    assert_eq!(export.probes.len(), 1);
    let probe = &export.probes[0];
    assert_eq!(probe.image_file, format!("probes/{}.jpg", probe.attempt_id));
    assert_eq!(&probe.jpeg[..3], &JPEG_MAGIC);
    assert!(export
        .login_attempts
        .iter()
        .any(|l| l.id == probe.attempt_id));

    // Deleting the account removes the probe too.
    let r = a
        .client
        .delete(a.url("/api/me"))
        .header("X-CSRF-Token", &a.csrf)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(probe_files(&dir).is_empty());
    assert!(attempts_with_probes(&dir).await.is_empty());

    // Key rotation re-seals kept probes with the new key.
    app.user_with_faces("barack2", &["obama_1.jpg"]).await;
    login().await;
    let attempt = attempts_with_probes(&dir).await[0];
    let old = MasterKey::read_file(&dir.join(crypto::KEY_FILE)).unwrap();
    let new = MasterKey::generate();
    let vault = Vault::new(new.clone(), [old]);
    let store = open_sqlite_with(&dir, Keys::Vault(vault.clone()))
        .await
        .unwrap();
    let media = Media::new(dir.join("media"), Arc::new(vault));
    let report = rotate_keys(&store, &media).await.unwrap();
    assert_eq!((report.resealed, report.probes), (1, 1));
    let files = probe_files(&dir);
    assert_eq!(files.len(), 1);
    let rel = format!("probes/{}", files[0].file_name().unwrap().to_string_lossy());
    assert_eq!(&media.read(&rel).unwrap()[..3], &JPEG_MAGIC);
    let pool = raw_pool(&dir).await;
    let key: String = sqlx::query_scalar("SELECT probe_key_id FROM login_attempts WHERE id = ?")
        .bind(attempt)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(key, new.id_hex());
    pool.close().await;
}
