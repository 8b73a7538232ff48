//! The binary against PostgreSQL, as an operator runs it: every command
//! that opens the store works with `FACEGATE_DATABASE_URL` (and keeps
//! nothing in the data directory when the key is configured), and a
//! `database_url` that cannot be used stops the start with one line naming
//! the problem. The server is the tests' own PostgreSQL (see
//! `facegate_testkit::postgres`: `tools/test.sh` starts it, or the first test
//! does); each test makes its own database on it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use facegate_app::crypto::MasterKey;
use facegate_testkit::paths::photo_path;
use facegate_testkit::workspace;
use serde_json::Value;

fn photo(name: &str) -> String {
    photo_path(name).display().to_string()
}

/// `facegate` on the store `url` sealed with `key`, with `data_dir` as
/// its data directory.
fn facegate(url: &str, key: &MasterKey, data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facegate"));
    cmd.current_dir(workspace())
        .env("FACEGATE_DATABASE_URL", url)
        .env("FACEGATE_MASTER_KEY", key.to_base64())
        .env("FACEGATE_DATA_DIR", data_dir)
        .env("FACEGATE_LIVENESS", "off")
        .env_remove("FACEGATE_NEW_MASTER_KEY")
        .env("FACEGATE_SUPERUSER_USERNAME", "admin")
        .env("FACEGATE_SUPERUSER_EMAIL", "admin@example.org")
        .env("FACEGATE_SUPERUSER_PASSWORD", "correct horse battery");
    cmd
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args).output().expect("running facegate")
}

fn ok(cmd: Command, args: &[&str]) -> String {
    let out = run(cmd, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "facegate {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_works_on_postgres() {
    let url = facegate_testkit::postgres::fresh_database().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = MasterKey::generate();
    let cmd = || facegate(&url, &key, &data);

    let out = ok(cmd(), &["migrate"]);
    assert!(
        out.contains("migrations applied to the PostgreSQL database"),
        "{out}"
    );
    let out = ok(cmd(), &["createsuperuser", "--no-input"]);
    assert!(out.contains("superuser admin created"), "{out}");
    let out = ok(
        cmd(),
        &[
            "enroll",
            "--username",
            "admin",
            "--json",
            &photo("obama_1.jpg"),
        ],
    );
    let enrolled: Value = serde_json::from_str(out.trim()).unwrap();
    let template = enrolled["template_id"]
        .as_i64()
        .expect("an enrolled template");

    let export = tmp.path().join("export");
    let out_dir = export.display().to_string();
    ok(
        cmd(),
        &["export-user", "--username", "admin", "--out", &out_dir],
    );
    let user: Value =
        serde_json::from_slice(&std::fs::read(export.join("user.json")).unwrap()).unwrap();
    assert_eq!(user["faces"][0]["id"], template);
    let jpeg = std::fs::read(export.join(format!("faces/{template}.jpg"))).unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);

    // The key comes from the environment: the new one from
    // FACEGATE_NEW_MASTER_KEY, then the operator switches.
    let new = MasterKey::generate();
    let mut rotate = cmd();
    rotate.env("FACEGATE_NEW_MASTER_KEY", new.to_base64());
    let out = ok(rotate, &["rotate-key"]);
    assert!(out.contains("re-encrypted 1 face record(s)"), "{out}");
    let old = run(cmd(), &["migrate"]);
    assert!(!old.status.success());
    let stderr = String::from_utf8_lossy(&old.stderr);
    assert!(stderr.contains("wrong master key"), "{stderr}");
    let again = tmp.path().join("again");
    let out_dir = again.display().to_string();
    let with_new = facegate(&url, &new, &data);
    ok(
        with_new,
        &["export-user", "--username", "admin", "--out", &out_dir],
    );
    assert_eq!(
        std::fs::read(again.join(format!("faces/{template}.jpg"))).unwrap(),
        jpeg
    );

    // The server: ready on the same store.
    let mut serve = facegate(&url, &new, &data);
    serve
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = serve.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://"), "{line}");
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    let status = ready.status();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, reqwest::StatusCode::OK);

    // Nothing of this instance was kept on its disk.
    assert!(!data.exists(), "the data directory was used");
}

/// The server's URL with the password replaced.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (credentials, host) = rest.split_once('@').expect("a URL with credentials");
    let user = credentials.split(':').next().unwrap();
    format!("{scheme}://{user}:{password}@{host}")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_database_url_that_cannot_be_used_stops_the_start_with_one_line() {
    let admin = facegate_testkit::postgres::admin_url();
    let port = free_port();
    let cases = [
        (
            "mysql://root:s3cret-pw@db/facegate".to_string(),
            "must be a postgres:// URL",
        ),
        (
            "postgres://u:s3cret-pw@127.0.0.1:notaport/x".into(),
            "not a valid PostgreSQL URL",
        ),
        (
            format!("postgres://u:s3cret-pw@127.0.0.1:{port}/x"),
            "connection refused",
        ),
        // (The test server asks for passwords over TCP, as tools/pg.sh sets it up.)
        (
            with_password(&admin, "s3cret-pw"),
            "refused the credentials",
        ),
        (
            facegate_testkit::postgres::with_database(&admin, "no_such_database"),
            "does not exist",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key = MasterKey::generate();
    for (url, problem) in cases {
        for args in [&["migrate"][..], &["serve", "--addr", "127.0.0.1:0"][..]] {
            let mut cmd = facegate(&url, &key, &data);
            cmd.env("RUST_BACKTRACE", "1");
            let out = run(cmd, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let what = format!("facegate {args:?} with {problem}: {stderr}");
            assert_eq!(out.status.code(), Some(1), "{what}");
            let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(errors.len(), 1, "{what}");
            assert!(errors[0].contains(problem), "{what}");
            assert!(
                !stderr.contains("s3cret-pw"),
                "the password was shown: {what}"
            );
            assert!(!stderr.contains("panicked"), "{what}");
        }
    }
}
