//! `facegate rotate-key` runs alone: while another rotation holds the lock
//! file (here the test holds it, as a running rotation would), a second one
//! exits with status 1 and a clear message and changes nothing; once the
//! lock is free the rotation runs.

use std::fs::OpenOptions;

use crate::common::{facegate, run};

#[test]
fn rotate_key_refuses_to_run_while_another_rotation_holds_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut migrate = facegate();
    migrate.arg("migrate").arg("--data-dir").arg(&dir);
    assert!(run(migrate).status.success());
    let key_file = dir.join("master.key");
    let key = std::fs::read(&key_file).expect("migrate created master.key");

    let lock_path = dir.join("rotate-key.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.try_lock().unwrap();
    let rotate = || {
        let mut cmd = facegate();
        cmd.arg("rotate-key").arg("--data-dir").arg(&dir);
        run(cmd)
    };
    let out = rotate();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another `facegate rotate-key` is already running"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&lock_path.display().to_string()),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&key_file).unwrap(), key, "key changed");
    assert!(
        !dir.join("master.key.next").exists(),
        "a new key was written"
    );

    drop(lock);
    let out = rotate();
    assert!(out.status.success(), "{out:?}");
    assert_ne!(std::fs::read(&key_file).unwrap(), key, "key not rotated");
}
