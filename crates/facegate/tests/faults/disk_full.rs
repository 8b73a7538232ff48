//! A disk that fills up while the server runs: enrolment (API and profile
//! page) and registration answer with a typed storage error, nothing
//! already stored is lost, nothing is half-written (a template and its
//! photo are one transaction), and once there is room again the same
//! process works.
//!
//! Two ways to fill the disk:
//! - a file size limit (RLIMIT_FSIZE, set on the running server with
//!   prlimit): always available. No file of the server may grow past the
//!   limit, so writes that extend a file fail with EFBIG; writes inside a
//!   file's current length still succeed, as they would on a full disk. It
//!   is per process and per file, not a shared free-space count, and
//!   SQLite reports EFBIG as an I/O error (`storage_unavailable`), not as
//!   `SQLITE_FULL`;
//! - a small tmpfs filled with a filler file: real ENOSPC for every
//!   writer, but mounting needs privileges; without them the test says why
//!   and skips.

use std::io::Write;
use std::path::Path;

use reqwest::StatusCode;

use crate::common::{
    assert_consistent, assert_storage_error, face_failures, facegate, photo, photo_rows, run, skip,
    visitor, Mount, Server, Visit,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_size_limit_during_enrolment_and_registration() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let server = Server::start(&dir);
    let base = server.base.clone();
    let mut ann = visitor(&base).await;
    assert_eq!(ann.register_json("ann").await.0, StatusCode::CREATED);
    let face = photo("rose_leslie_1.jpg");
    let (status, body) = ann.enrol(&face).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = body["id"].as_i64().unwrap();
    let before = photo_rows(&dir).await;
    assert_eq!(before.len(), 1);

    // A new session is a database write too: open these before the limit.
    let mut bob = visitor(&base).await;
    let stranger = visitor(&base).await;
    let other_face = photo("kit_harington_1.jpg");

    // 1. No file may grow: the template and its photo cannot be written.
    // SQLite reports EFBIG as an I/O error: storage_unavailable.
    server.limit_file_size(Some(0));
    let (status, body) = ann.enrol(&face).await;
    assert_storage_error(status, &body, &["storage_full", "storage_unavailable"]);
    let (status, page) = ann.profile_upload(&face).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("nothing was saved"), "{page}");
    // The database cannot grow either (its WAL only grows in this test).
    let (status, body) = bob.register_json("bob").await;
    assert_storage_error(status, &body, &["storage_full", "storage_unavailable"]);
    // A failed face login that cannot be counted towards the lockout is
    // refused as a storage error, never answered as a counted `unknown`.
    let (status, body) = stranger.try_verify("ann", &other_face).await.unwrap();
    assert_storage_error(status, &body, &["storage_full", "storage_unavailable"]);
    assert_eq!(photo_rows(&dir).await, before, "photos changed");

    // 2. Room again: the same process works.
    server.limit_file_size(None);
    let (status, body) = ann.enrol(&face).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, page) = ann.profile_upload(&face).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Added 1 face photo"), "{page}");
    assert_eq!(bob.register_json("bob").await.0, StatusCode::CREATED);
    let (status, body) = stranger.try_verify("ann", &other_face).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "unknown");
    let ids = ann.faces_with_photos().await;
    assert!(ids.contains(&first), "the first enrolment was lost");
    assert_eq!(ids.len(), 3);
    let log = server.log();
    assert!(log.contains("storage refused a write"), "{log}");
    server.stop();
    assert_eq!(assert_consistent(&dir).await, 3);
    assert_eq!(
        face_failures(&dir, "ann").await,
        1,
        "only the counted failure"
    );
}

/// Writes zeros to `path` until the file system is full.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_tmpfs_during_enrolment_and_registration() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    let _mount = match Mount::tmpfs(&disk, "24m") {
        Ok(m) => m,
        Err(e) => {
            skip(
                "full_tmpfs_during_enrolment_and_registration",
                &format!(
                    "cannot mount a tmpfs here ({e}); \
                     file_size_limit_during_enrolment_and_registration covers the same \
                     paths with EFBIG"
                ),
            );
            return;
        }
    };
    let dir = disk.join("data");
    let server = Server::start(&dir);
    let base = server.base.clone();
    let mut ann = visitor(&base).await;
    assert_eq!(ann.register_json("ann").await.0, StatusCode::CREATED);
    let face = photo("rose_leslie_1.jpg");
    let (status, body) = ann.enrol(&face).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = body["id"].as_i64().unwrap();
    let before = photo_rows(&dir).await;

    // A new session is a database write too: open bob's before filling.
    let mut bob = visitor(&base).await;
    let filler = disk.join("filler");
    assert!(fill(&filler) > 0);
    let (status, body) = ann.enrol(&face).await;
    assert_storage_error(status, &body, &["storage_full"]);
    let (status, page) = ann.profile_upload(&face).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{page}");
    assert!(page.contains("storage is full"), "{page}");
    let (status, body) = bob.register_json("bob").await;
    assert_storage_error(status, &body, &["storage_full"]);
    assert_eq!(photo_rows(&dir).await, before, "photos changed");
    // A command started now refuses the full disk at once.
    let mut migrate = facegate();
    migrate.arg("migrate").arg("--data-dir").arg(&dir);
    let out = run(migrate);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("the disk is full"), "{stderr}");

    std::fs::remove_file(&filler).unwrap();
    let (status, body) = ann.enrol(&face).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(bob.register_json("bob").await.0, StatusCode::CREATED);
    let ids = ann.faces_with_photos().await;
    assert!(ids.contains(&first), "the first enrolment was lost");
    assert_eq!(ids.len(), 2);
    server.stop();
    assert_eq!(assert_consistent(&dir).await, 2);
}
