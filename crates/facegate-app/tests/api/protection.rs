//! Biometric data protection: encryption at rest, key rotation, wrong
//! keys, self-service export and complete erasure.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use facegate_app::cli::{CommonArgs, ExportUserArgs, RotateKeyArgs};
use facegate_app::crypto::{self, MasterKey, Vault};
use facegate_app::store::{open_sqlite_with, Keys};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{contains, files_under, raw_db, raw_pool, DirApp};
use crate::helpers::{error_of, face, PASSWORD};

fn common(dir: &Path) -> CommonArgs {
    CommonArgs {
        data_dir: Some(dir.to_path_buf()),
        config: None,
    }
}

/// Runs a blocking CLI command on its own thread (it starts its own runtime).
async fn cli<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> T {
    tokio::task::spawn_blocking(move || std::thread::spawn(f).join().unwrap())
        .await
        .unwrap()
        .unwrap()
}

fn embedding_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Checks nothing on disk holds the plaintext: no embedding bytes in the
/// database, no JPEG in the media files (each an FGC1 envelope).
fn assert_sealed(dir: &Path, embeddings: &[Vec<f32>]) {
    let db = raw_db(dir);
    for e in embeddings {
        let b = embedding_bytes(e);
        // Any 16-byte run of the embedding would betray it.
        for chunk in b.chunks(16).take(8) {
            assert!(
                !contains(&db, chunk),
                "plaintext embedding bytes in the database"
            );
        }
    }
    let media = files_under(&dir.join("media"));
    assert!(!media.is_empty());
    for f in media {
        let bytes = std::fs::read(&f).unwrap();
        assert_eq!(&bytes[..4], crypto::MAGIC, "{} is not sealed", f.display());
        // A plaintext JPEG would show its start marker near the front and
        // its JFIF header. (Not FF D8 FF anywhere: three given bytes turn
        // up by chance in about 0.3 % of 50 KB ciphertexts.)
        assert!(
            !contains(&bytes[..bytes.len().min(64)], &[0xFF, 0xD8, 0xFF]),
            "JPEG start in {}",
            f.display()
        );
        assert!(
            !contains(&bytes, b"JFIF") && !contains(&bytes, b"Exif"),
            "JPEG header in {}",
            f.display()
        );
    }
}

async fn key_ids_in_db(dir: &Path) -> Vec<String> {
    let pool = raw_pool(dir).await;
    let ids = sqlx::query_scalar("SELECT DISTINCT key_id FROM face_templates")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    ids
}

#[tokio::test]
async fn templates_and_photos_are_encrypted_and_keys_rotate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let app = DirApp::spawn(&dir, |_| {}).await.unwrap();
    // The key file was created, private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let a = app.agent().await;
    assert_eq!(a.register("barack").await.status(), StatusCode::CREATED);
    for p in ["obama_1.jpg", "obama_3.jpg"] {
        assert_eq!(a.upload_face(&face(p)).await.status(), StatusCode::CREATED);
    }
    let user = app
        .state
        .services
        .store
        .user_by_username("barack")
        .await
        .unwrap()
        .unwrap();
    let templates = app
        .state
        .services
        .store
        .templates_for_user(user.id)
        .await
        .unwrap();
    let embeddings: Vec<Vec<f32>> = templates.iter().map(|t| t.embedding.clone()).collect();
    assert!(embeddings.iter().all(|e| e.len() >= 128));
    assert_sealed(&dir, &embeddings);
    let first_key = key_ids_in_db(&dir).await;
    assert_eq!(first_key.len(), 1);

    // Face login works on encrypted data.
    let b = app.agent().await;
    let r = b.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // Interrupt a rotation after one record: the new key sits in
    // master.key.next and one template (and its photo) is on it.
    let old = MasterKey::read_file(&dir.join("master.key")).unwrap();
    let new = MasterKey::generate();
    new.write_new_file(&dir.join("master.key.next")).unwrap();
    {
        let vault = Vault::new(new.clone(), [old.clone()]);
        let store = open_sqlite_with(&dir, Keys::Vault(vault.clone()))
            .await
            .unwrap();
        let media =
            facegate_app::service::Media::new(dir.join("media"), std::sync::Arc::new(vault));
        media.reseal(&templates[0].image_path).unwrap();
        assert!(store.reseal_template(templates[0].id).await.unwrap());
    }
    let mut ids = key_ids_in_db(&dir).await;
    ids.sort();
    assert_eq!(ids.len(), 2, "half rotated");

    // A server started meanwhile still opens both (it loads master.key.next).
    let mid = DirApp::spawn(&dir, |_| {}).await.unwrap();
    assert_eq!(
        mid.agent()
            .await
            .face_login(&face("obama_2.jpg"), None)
            .await
            .status(),
        StatusCode::OK
    );

    // `facegate rotate-key` resumes: only the remaining record is re-sealed.
    let d = dir.clone();
    cli(move || facegate_app::cli::rotate_key(RotateKeyArgs { common: common(&d) })).await;
    assert!(!dir.join("master.key.next").exists());
    assert_eq!(
        MasterKey::read_file(&dir.join("master.key"))
            .unwrap()
            .id_hex(),
        new.id_hex()
    );
    assert_eq!(key_ids_in_db(&dir).await, vec![new.id_hex()]);
    for f in files_under(&dir.join("media")) {
        let bytes = std::fs::read(&f).unwrap();
        assert_eq!(hex_id(&bytes), new.id_hex(), "photo re-sealed");
    }
    assert_sealed(&dir, &embeddings);
    let events = app
        .state
        .services
        .store
        .audit_events(&Default::default())
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "key_rotated" && e.detail.contains("resealed=1")));

    // After rotation a fresh server logs the face in.
    let after = DirApp::spawn(&dir, |_| {}).await.unwrap();
    let c = after.agent().await;
    let r = c.face_login(&face("obama_2.jpg"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["username"], "barack");

    // The old key (as FACEGATE_MASTER_KEY) is refused with a clear error.
    let err = DirApp::spawn(&dir, |c| {
        c.master_key = Some(old.to_base64().as_str().into())
    })
    .await
    .err()
    .expect("a wrong key must not start");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("wrong master key") && msg.contains(&new.id_hex()),
        "{msg}"
    );

    // A lost key file is an error too, and no new key is silently made.
    std::fs::rename(dir.join("master.key"), dir.join("saved.key")).unwrap();
    let err = DirApp::spawn(&dir, |_| {})
        .await
        .err()
        .expect("no key, no start");
    assert!(format!("{err:#}").contains("no master key"), "{err:#}");
    assert!(!dir.join("master.key").exists());
    // The right key given as hex works.
    let hex_key = hex_of_key_file(&dir.join("saved.key"));
    let ok = DirApp::spawn(&dir, |c| c.master_key = Some(hex_key.as_str().into())).await;
    assert!(ok.is_ok());
}

fn hex_id(envelope: &[u8]) -> String {
    envelope[4..12].iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_of_key_file(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap();
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_user_exports_and_erases_all_biometric_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let app = DirApp::spawn(&dir, |_| {}).await.unwrap();
    let keep = app.agent().await;
    assert_eq!(keep.register("kate").await.status(), StatusCode::CREATED);
    assert_eq!(
        keep.upload_face(&face("kate_siegel_1.jpg")).await.status(),
        StatusCode::CREATED
    );

    let mut a = app.agent().await;
    let r = a.register("zz-erasable").await;
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    for p in ["obama_1.jpg", "obama_3.jpg"] {
        assert_eq!(a.upload_face(&face(p)).await.status(), StatusCode::CREATED);
    }
    a.logout().await;
    a.login("zz-erasable", "wrong password").await;
    assert_eq!(
        a.login("zz-erasable", PASSWORD).await.status(),
        StatusCode::OK
    );
    a.refresh_csrf().await;
    let stored = app
        .state
        .services
        .store
        .templates_for_user(id)
        .await
        .unwrap();

    // API export: decrypted embeddings and photos.
    let r = a.get("/api/me/export").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["username"], "zz-erasable");
    let faces = doc["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 2);
    for (f, t) in faces.iter().zip(&stored) {
        let emb: Vec<f32> = serde_json::from_value(f["embedding"].clone()).unwrap();
        assert_eq!(emb, t.embedding);
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(f["image_jpeg_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF]);
        image::load_from_memory(&jpeg).unwrap();
    }
    assert!(doc["login_attempts"].as_array().unwrap().len() >= 2);

    // CLI export: a directory with user.json and the photos.
    let out = tmp.path().join("export");
    let (d, o) = (dir.clone(), out.clone());
    cli(move || {
        facegate_app::cli::export_user(ExportUserArgs {
            username: "zz-erasable".into(),
            out: o,
            common: common(&d),
        })
    })
    .await;
    let user_json: Value =
        serde_json::from_slice(&std::fs::read(out.join("user.json")).unwrap()).unwrap();
    assert_eq!(user_json["faces"].as_array().unwrap().len(), 2);
    for f in user_json["faces"].as_array().unwrap() {
        let jpeg = std::fs::read(out.join(f["image_file"].as_str().unwrap())).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    }

    // What an erasure must remove.
    let pool = raw_pool(&dir).await;
    let sealed: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT embedding FROM face_templates WHERE user_id = ?")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(sealed.len(), 2);
    let user_dir: PathBuf = dir.join(format!("media/users/{id}"));
    assert_eq!(files_under(&user_dir).len(), 2);

    // Deletion needs CSRF and the password.
    let r = a
        .client
        .delete(a.url("/api/me"))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let del = |pw: &'static str| {
        a.client
            .delete(a.url("/api/me"))
            .header("X-CSRF-Token", &a.csrf)
            .json(&json!({ "password": pw }))
            .send()
    };
    assert_eq!(
        error_of(del("not my password").await.unwrap()).await,
        (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
    );
    assert_eq!(
        del(PASSWORD).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(a.get("/api/me").await.status(), StatusCode::UNAUTHORIZED);

    // Nothing remains: rows, files, directory, bytes in the database file.
    for (table, col) in [
        ("users", "id"),
        ("face_templates", "user_id"),
        ("login_attempts", "user_id"),
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {col} = ?"))
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username = 'zz-erasable'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    pool.close().await;
    assert!(!user_dir.exists(), "photo directory removed");
    let db = raw_db(&dir);
    for s in &sealed {
        assert!(
            !contains(&db, &s[20..52]),
            "a deleted template's bytes remain in the file"
        );
    }
    assert!(
        !contains(&db, b"zz-erasable@example.com"),
        "e-mail left in the file"
    );
    // The other user is untouched and can still log in with their face.
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
    assert_eq!(files_under(&dir.join("media")).len(), 1);
    let events = app
        .state
        .services
        .store
        .audit_events(&Default::default())
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "account_deleted" && e.subject_user_id == Some(id)));
    assert!(events
        .iter()
        .any(|e| e.kind == "data_exported" && e.subject_user_id == Some(id)));
}
