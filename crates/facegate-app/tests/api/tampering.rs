//! Issue 16, finding 4: with write access to the database (a restored
//! backup, a compromised database host), an attacker replaces the
//! victim's sealed template with their own embedding in the clear (as
//! exported through `GET /api/me/export`), or a photo with a plaintext
//! one. The server must refuse the unsealed records — no face login as the
//! victim, no photo shown — audit them as tampering, and never seal them
//! (not at a restart, not in a key rotation). Also: what older versions
//! left unsealed (plaintext templates, photo and probe files) is sealed
//! into the database once, at the first start, and only then.

use std::path::Path;

use facegate_app::cli::{CommonArgs, RotateKeyArgs};
use facegate_app::crypto::{self, MasterKey, Vault};
use facegate_app::domain::AuditFilter;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{raw_pool, DirApp};
use crate::helpers::{error_of, face, Agent, Backend, TestApp};

/// An agent registered as `name` with `photo` enrolled; returns its
/// user id.
async fn enrolled(a: &Agent, name: &str, photo: &str) -> i64 {
    let r = a.register(name).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = a.upload_face(&face(photo)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    id
}

/// The attacker's own embedding, from their data export, as stored bytes.
async fn exported_embedding(a: &Agent) -> Vec<u8> {
    let doc: Value = a.get("/api/me/export").await.json().await.unwrap();
    let v: Vec<f32> = serde_json::from_value(doc["faces"][0]["embedding"].clone()).unwrap();
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

async fn tampering_events(app: &DirApp) -> Vec<String> {
    let filter = AuditFilter {
        kind: Some("tampering".into()),
        ..Default::default()
    };
    let events = app
        .state
        .services
        .store
        .audit_events(&filter)
        .await
        .unwrap();
    events.into_iter().map(|e| e.detail).collect()
}

#[tokio::test]
async fn a_planted_plaintext_template_does_not_log_the_attacker_in_as_the_victim() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let app = DirApp::spawn(&dir, |_| {}).await.unwrap();
    let victim = app.agent().await;
    let victim_id = enrolled(&victim, "alice", "obama_1.jpg").await;
    assert_eq!(
        victim.upload_face(&face("obama_3.jpg")).await.status(),
        StatusCode::CREATED
    );
    let mallory = app.agent().await;
    enrolled(&mallory, "mallory", "kit_harington_1.jpg").await;
    let planted = exported_embedding(&mallory).await;
    // Mallory's own account is gone: only the victim's could match her.
    let r = mallory
        .client
        .delete(mallory.url("/api/me"))
        .header("X-CSRF-Token", &mallory.csrf)
        .json(&serde_json::json!({"password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Underneath the server: the victim's first template becomes Mallory's
    // embedding "stored before encryption", and the second's photo a
    // plaintext JPEG.
    let templates = app
        .state
        .services
        .store
        .templates_for_user(victim_id)
        .await
        .unwrap();
    let (first, second) = (templates[0].id, templates[1].id);
    let pool = raw_pool(&dir).await;
    sqlx::query("UPDATE face_templates SET embedding = ?, key_id = NULL WHERE id = ?")
        .bind(&planted)
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE face_photos SET sealed = ? WHERE template_id = ?")
        .bind(face("kit_harington_1.jpg"))
        .bind(second)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // A restarted server (and the rotation after it) refuses both.
    for round in ["restart", "rotation"] {
        if round == "rotation" {
            let d = dir.clone();
            let args = RotateKeyArgs {
                common: CommonArgs {
                    data_dir: Some(d),
                    config: None,
                },
            };
            let t = std::thread::spawn(move || facegate_app::cli::rotate_key(args));
            tokio::task::spawn_blocking(move || t.join().unwrap())
                .await
                .unwrap()
                .unwrap();
        }
        let app = DirApp::spawn(&dir, |_| {}).await.unwrap();
        let attacker = app.agent().await;
        let r = attacker
            .face_login(&face("kit_harington_2.jpg"), None)
            .await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::UNAUTHORIZED, "unknown".into()),
            "{round}: the attacker logged in as the victim"
        );
        assert_eq!(attacker.me().await, None);
        // The victim still logs in with the template that was not touched.
        let owner = app.agent().await;
        let r = owner.face_login(&face("obama_2.jpg"), None).await;
        assert_eq!(r.status(), StatusCode::OK, "{round}");
        let r = owner.get(&format!("/media/faces/{second}")).await;
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "{round}: plaintext photo shown"
        );
        let faces: Value = owner.get("/api/me/faces").await.json().await.unwrap();
        let ids: Vec<i64> = faces["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [second], "{round}: the planted template is listed");
        let events = tampering_events(&app).await;
        for record in [
            format!("face_templates/{first} "),
            format!("face_photos/{second} "),
        ] {
            assert!(
                events
                    .iter()
                    .any(|d| d.contains(&format!("record={record}"))),
                "{round}: {record} not audited: {events:?}"
            );
        }
    }
    // Never sealed: the planted row is still exactly what was planted.
    let pool = raw_pool(&dir).await;
    let (bytes, key): (Vec<u8>, Option<String>) =
        sqlx::query_as("SELECT embedding, key_id FROM face_templates WHERE id = ?")
            .bind(first)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!((bytes, key), (planted, None));
}

#[tokio::test]
async fn a_planted_template_is_refused_on_postgres_too() {
    let app = TestApp::spawn_on(Backend::Postgres, |_| {}).await;
    let victim = app.agent().await;
    let victim_id = enrolled(&victim, "alice", "obama_1.jpg").await;
    let mallory = app.agent().await;
    enrolled(&mallory, "mallory", "kit_harington_1.jpg").await;
    let planted = exported_embedding(&mallory).await;
    let store = &app.state.services.store;
    let mallory_id = store.user_by_username("mallory").await.unwrap().unwrap().id;
    store.delete_user(mallory_id).await.unwrap();
    // PostgreSQL's schema has no room for a missing key id: the attacker
    // keeps the real one on a plaintext embedding.
    let sql = format!(
        "UPDATE face_templates SET embedding = '\\x{}'::bytea WHERE user_id = {victim_id}",
        hex::encode(&planted)
    );
    assert_eq!(app.raw_execute("", &sql).await, 1);
    app.state.services.invalidate_templates();
    let attacker = app.agent().await;
    let r = attacker
        .face_login(&face("kit_harington_2.jpg"), None)
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "unknown".into())
    );
    let filter = AuditFilter {
        kind: Some("tampering".into()),
        ..Default::default()
    };
    assert!(!store.audit_events(&filter).await.unwrap().is_empty());
}

/// The migrations of the version before photos moved into the database.
fn old_schema(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.as_str() < "20260101000000" {
            std::fs::copy(e.path(), dir.join(&name)).unwrap();
        }
    }
}

#[tokio::test]
async fn what_older_versions_left_unsealed_is_sealed_once_at_the_first_start() {
    // An embedding of a real face, from a current server.
    let (embedding, probe_jpeg) = {
        let tmp = tempfile::tempdir().unwrap();
        let app = DirApp::spawn(tmp.path(), |_| {}).await.unwrap();
        let a = app.agent().await;
        enrolled(&a, "barack", "obama_1.jpg").await;
        (exported_embedding(&a).await, face("obama_4.jpg"))
    };
    // A data directory as an older version left it: a template stored
    // before encryption with a plaintext photo file, one sealed with its
    // photo file sealed (bound to its path), and a kept probe file.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let migrations = tmp.path().join("old-migrations");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&migrations).unwrap();
    old_schema(&migrations);
    let key = MasterKey::generate();
    key.write_new_file(&dir.join(crypto::KEY_FILE)).unwrap();
    let vault = Vault::new(key.clone(), []);
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.join("facegate.sqlite3").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (id, username, email, password_hash, created_at, updated_at) \
         VALUES (1, 'barack', 'b@example.org', 'x', 0, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let sealed = vault.seal(&embedding, &crypto::template_aad(2, 1));
    for (id, emb, key_id, path) in [
        (1, embedding.clone(), None, "users/1/plain.jpg"),
        (2, sealed, Some(key.id_hex()), "users/1/sealed.jpg"),
    ] {
        sqlx::query(
            "INSERT INTO face_templates (id, user_id, model_id, embedding, quality, image_path, \
             created_at, key_id) VALUES (?, 1, ?, ?, 0.9, ?, 0, ?)",
        )
        .bind(id)
        .bind(crate::helpers::ENGINE.model_id())
        .bind(emb)
        .bind(path)
        .bind(key_id)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO login_attempts (id, at, user_id, client_addr, method, outcome, reason, \
         probe_path, probe_key_id) VALUES (7, 0, 1, '127.0.0.1', 'face_identify', 'success', \
         'ok', 'probes/p.jpg', ?)",
    )
    .bind(key.id_hex())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let media = dir.join("media");
    std::fs::create_dir_all(media.join("users/1")).unwrap();
    std::fs::create_dir_all(media.join("probes")).unwrap();
    let photo = face("obama_1.jpg");
    std::fs::write(media.join("users/1/plain.jpg"), &photo).unwrap();
    let sealed_photo = vault.seal(&photo, &crypto::legacy_file_aad("users/1/sealed.jpg"));
    std::fs::write(media.join("users/1/sealed.jpg"), sealed_photo).unwrap();
    let sealed_probe = vault.seal(&probe_jpeg, &crypto::legacy_file_aad("probes/p.jpg"));
    std::fs::write(media.join("probes/p.jpg"), sealed_probe).unwrap();

    // The first start seals it all into the database.
    let app = DirApp::spawn(&dir, |c| c.probe_retention_days = 7)
        .await
        .unwrap();
    assert!(!media.exists(), "the media directory is gone");
    let store = &app.state.services.store;
    let templates = store.templates_for_user(1).await.unwrap();
    assert_eq!(templates.len(), 2);
    for t in &templates {
        assert_eq!(store.face_photo(t.id).await.unwrap().unwrap().0, photo);
    }
    assert_eq!(store.probe_image(7).await.unwrap().unwrap().0, probe_jpeg);
    assert!(store.templates_not_on_primary().await.unwrap().is_empty());
    let pool = raw_pool(&dir).await;
    let unsealed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM face_templates WHERE key_id IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(unsealed, 0);
    let owner = app.agent().await;
    assert_eq!(
        owner.face_login(&face("obama_2.jpg"), None).await.status(),
        StatusCode::OK
    );

    // Once only: plaintext planted afterwards, and a photo file with it,
    // stay refused at the next start.
    sqlx::query(
        "UPDATE face_templates SET embedding = ?, key_id = NULL, image_path = ? WHERE id = 1",
    )
    .bind(&embedding)
    .bind("users/1/planted.jpg")
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    std::fs::create_dir_all(media.join("users/1")).unwrap();
    std::fs::write(
        media.join("users/1/planted.jpg"),
        face("kit_harington_1.jpg"),
    )
    .unwrap();
    let again = DirApp::spawn(&dir, |_| {}).await.unwrap();
    let ids: Vec<i64> = again
        .state
        .services
        .store
        .templates_for_user(1)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, [2], "the planted plaintext was taken");
    let photo_now = again.state.services.store.face_photo(1).await.unwrap();
    assert_eq!(photo_now.unwrap().0, photo, "the planted file was read");
    assert!(!media.exists());
}
