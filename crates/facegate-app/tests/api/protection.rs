//! Biometric data protection: encryption at rest, key rotation, wrong
//! keys, self-service export and complete erasure.

use std::path::Path;

use base64::Engine as _;
use facegate_app::cli::{CommonArgs, ExportUserArgs, RotateKeyArgs};
use facegate_app::crypto::{MasterKey, Vault};
use facegate_app::store::{self, Keys, Resealed};
use facegate_app::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{contains, raw_db, raw_pool, DirApp};
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

/// Checks nothing on disk holds the plaintext: no embedding bytes and no
/// piece of the photos in the database file (with its WAL), no other file
/// in the data directory but the key.
fn assert_sealed(dir: &Path, embeddings: &[Vec<f32>], photos: &[Vec<u8>]) {
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
    assert!(!photos.is_empty());
    for p in photos {
        // 32-byte runs from the JPEG's middle (past its common header).
        for at in [p.len() / 3, p.len() / 2, 2 * p.len() / 3] {
            assert!(
                !contains(&db, &p[at..at + 32]),
                "photo bytes in the database"
            );
        }
    }
    assert!(!dir.join("media").exists(), "photos live in the database");
}

/// The configuration a server on `dir` runs with (what a CLI command on
/// it would load).
fn config_of(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
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
    let store = &app.state.services.store;
    let mut photos = Vec::new();
    for t in &templates {
        photos.push(store.face_photo(t.id).await.unwrap().unwrap().0);
    }
    assert_sealed(&dir, &embeddings, &photos);
    assert!(store.templates_not_on_primary().await.unwrap().is_empty());

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
        let store = store::open_with_keys(&config_of(&dir), Keys::Vault(vault))
            .await
            .unwrap();
        let done = store.reseal_template(templates[0].id).await.unwrap();
        assert_eq!(done, Resealed::Done);
        assert_eq!(
            store.templates_not_on_primary().await.unwrap(),
            [templates[1].id],
            "half rotated"
        );
    }

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
    {
        // Templates and photos on the new key, which alone opens them.
        let only_new = Keys::Vault(Vault::new(new.clone(), []));
        let store = store::open_with_keys(&config_of(&dir), only_new)
            .await
            .unwrap();
        assert!(store.templates_not_on_primary().await.unwrap().is_empty());
        for (t, photo) in templates.iter().zip(&photos) {
            assert_eq!(&store.face_photo(t.id).await.unwrap().unwrap().0, photo);
        }
    }
    assert_sealed(&dir, &embeddings, &photos);
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

    // What an erasure must remove: the sealed bytes at rest.
    let pool = raw_pool(&dir).await;
    let mut sealed: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT embedding FROM face_templates WHERE user_id = ?")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(sealed.len(), 2);
    let sealed_photos: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT sealed FROM face_photos WHERE template_id IN \
         (SELECT id FROM face_templates WHERE user_id = ?)",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(sealed_photos.len(), 2);
    sealed.extend(sealed_photos);
    pool.close().await;

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

    // Nothing remains: account, templates, photos, attempts, and no bytes
    // of them in the database file.
    let st = &app.state.services.store;
    assert!(st.user_by_id(id).await.unwrap().is_none());
    assert!(st.user_by_username("zz-erasable").await.unwrap().is_none());
    assert!(st.templates_for_user(id).await.unwrap().is_empty());
    assert!(st.attempts_for_user(id).await.unwrap().is_empty());
    for t in &stored {
        assert!(st.face_photo(t.id).await.unwrap().is_none());
    }
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
    // The other user is untouched, photo included.
    let kept = st.templates_for_user(1).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert!(st.face_photo(kept[0].id).await.unwrap().is_some());
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
