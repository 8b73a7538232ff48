//! Retention: old login attempts are purged by the sweep (audited, the
//! audit trail itself kept), and face-login probes are kept only when
//! `probe_retention_days` > 0 — sealed, visible to staff only, purged
//! after their retention, with the user's erasure, exported and re-sealed
//! by a key rotation. The sweep takes the time as a parameter, so nothing
//! here sleeps.

use facegate_app::crypto::{self, MasterKey, Vault};
use facegate_app::service::rotate_keys;
use facegate_app::store::{self, Keys};
use reqwest::StatusCode;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::harness::raw_pool;
use crate::helpers::{face, Backend, TestApp, PASSWORD};

const JPEG_MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// Ids of all login attempts, oldest first.
async fn attempt_ids(app: &TestApp) -> Vec<i64> {
    let attempts = app
        .state
        .services
        .store
        .recent_attempts(1000)
        .await
        .unwrap();
    attempts.iter().rev().map(|a| a.id).collect()
}

/// Ids of the attempts that keep a probe, oldest first.
async fn attempts_with_probes(app: &TestApp) -> Vec<i64> {
    let attempts = app
        .state
        .services
        .store
        .recent_attempts(1000)
        .await
        .unwrap();
    attempts
        .iter()
        .rev()
        .filter(|a| a.has_probe())
        .map(|a| a.id)
        .collect()
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
    old_login_attempts_are_purged_and_the_purge_is_audited_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn old_login_attempts_are_purged_and_the_purge_is_audited_on_postgres() {
    old_login_attempts_are_purged_and_the_purge_is_audited_on(Backend::Postgres).await;
}

async fn old_login_attempts_are_purged_and_the_purge_is_audited_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    let services = app.state.services.clone();
    let a = app.agent().await;
    a.register("ada").await;
    for pw in ["wrong one", "wrong two", PASSWORD, "wrong three"] {
        a.login("ada", pw).await;
    }
    // Two attempts are 100 days old (planted underneath the store, which
    // only writes the present), two are recent.
    let ids = attempt_ids(&app).await;
    assert_eq!(ids.len(), 4);
    let which = format!("WHERE id IN ({}, {})", ids[0], ids[1]);
    let aged = app
        .raw_execute(
            &format!("UPDATE login_attempts SET at = at - 100 * 86400 {which}"),
            &format!("UPDATE login_attempts SET at = at - interval '100 days' {which}"),
        )
        .await;
    assert_eq!(aged, 2);
    let audit_before = audit_count(&app).await;

    let now = OffsetDateTime::now_utc();
    let swept = services.sweep_retention(now).await.unwrap();
    assert_eq!((swept.login_attempts, swept.probes), (2, 0));
    let left = attempt_ids(&app).await;
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
    assert_eq!(attempt_ids(&app).await.len(), 1);
    assert!(attempts_with_probes(&app).await.is_empty());
    let probes = "SELECT COUNT(*) FROM login_probes";
    assert_eq!(raw_count(&app, probes).await, 0);
}

/// A count in the SQLite database, underneath the store.
async fn raw_count(app: &TestApp, sql: &str) -> i64 {
    let pool = raw_pool(&app.state.services.config.data_dir).await;
    let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn kept_probes_are_sealed_staff_only_and_expire() {
    kept_probes_are_sealed_staff_only_and_expire_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn kept_probes_are_sealed_staff_only_and_expire_on_postgres() {
    kept_probes_are_sealed_staff_only_and_expire_on(Backend::Postgres).await;
}

async fn kept_probes_are_sealed_staff_only_and_expire_on(backend: Backend) {
    let app = TestApp::spawn_on(backend, |c| c.probe_retention_days = 7).await;
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

    // One probe, kept with its attempt (sealed: the store conformance
    // suite looks at the bytes at rest).
    let ids = attempts_with_probes(&app).await;
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
    assert!(attempts_with_probes(&app).await.is_empty());
    assert!(services.store.probe_image(ids[0]).await.unwrap().is_none());
    assert!(services.store.attempt(ids[0]).await.unwrap().is_some());
    assert_eq!(admin.get(&probe_url).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn kept_probes_follow_erasure_export_and_key_rotation() {
    let app = TestApp::spawn_with(|c| c.probe_retention_days = 7).await;
    let services = app.state.services.clone();
    let dir = app.state.services.config.data_dir.clone();
    let id = app.user_with_faces("barack", &["obama_1.jpg"]).await;
    let login = || async {
        let a = app.agent().await;
        let r = a.face_login(&face("obama_2.jpg"), None).await;
        assert_eq!(r.status(), StatusCode::OK);
        a
    };

    // Erasing one's face data takes the probes along.
    login().await;
    assert_eq!(attempts_with_probes(&app).await.len(), 1);
    services.delete_all_faces(id).await.unwrap();
    assert!(attempts_with_probes(&app).await.is_empty());

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
    assert!(attempts_with_probes(&app).await.is_empty());

    // Key rotation re-seals kept probes with the new key.
    app.user_with_faces("barack2", &["obama_1.jpg"]).await;
    login().await;
    let attempt = attempts_with_probes(&app).await[0];
    let old = MasterKey::read_file(&dir.join(crypto::KEY_FILE)).unwrap();
    let new = MasterKey::generate();
    let vault = Vault::new(new.clone(), [old]);
    let config = &app.state.services.config;
    let rotating = store::open_with_keys(config, Keys::Vault(vault))
        .await
        .unwrap();
    assert_eq!(rotating.probes_not_on_primary().await.unwrap(), [attempt]);
    let report = rotate_keys(&rotating).await.unwrap();
    assert_eq!((report.resealed, report.probes), (1, 1));
    assert!(rotating.probes_not_on_primary().await.unwrap().is_empty());
    // The new key alone opens it.
    let after = store::open_with_keys(config, Keys::Vault(Vault::new(new, [])))
        .await
        .unwrap();
    let jpeg = after.probe_image(attempt).await.unwrap().unwrap();
    assert_eq!(&jpeg.0[..3], &JPEG_MAGIC);
}
