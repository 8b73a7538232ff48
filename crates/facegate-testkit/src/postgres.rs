//! A real PostgreSQL for the tests. `tools/test.sh` starts a throwaway
//! server and exports its URL as `FACEGATE_TEST_DATABASE_URL`; without it
//! (a plain `cargo test`), the first test that needs one starts its own
//! with `tools/pg.sh`, stopped when the test process exits. A machine
//! without PostgreSQL fails these tests with a message naming the package
//! to install — they are never skipped.
//!
//! Each test gets its own database ([`fresh_database`]), so tests run in
//! parallel.

use crate::paths::workspace;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use sqlx::Connection;

/// The variable naming the server's administrative URL.
pub const URL_ENV: &str = "FACEGATE_TEST_DATABASE_URL";

/// The administrative URL of the test server (starting one if needed).
pub fn admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var(URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => start_own(),
    })
    .clone()
}

/// Starts a server for this test process with `tools/pg.sh`.
fn start_own() -> String {
    let script = workspace().join("tools/pg.sh");
    let dir = tempfile::Builder::new()
        .prefix("facegate-pg-")
        .tempdir()
        .expect("a temporary directory")
        .keep();
    let out = Command::new(&script)
        .arg("start")
        .arg(&dir)
        .output()
        .expect("running tools/pg.sh");
    assert!(
        out.status.success(),
        "no PostgreSQL for the tests ({URL_ENV} is unset and tools/pg.sh could not start one): {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let watch = Command::new(&script)
        .arg("watch")
        .arg(&dir)
        .arg(std::process::id().to_string())
        .status()
        .expect("running tools/pg.sh watch");
    assert!(watch.success(), "tools/pg.sh watch failed");
    String::from_utf8(out.stdout)
        .expect("a URL")
        .trim()
        .to_string()
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..authority_end])
}

/// A new, empty database on the test server; returns its URL.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    // Unique across processes (pid, time) and within one (a counter).
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "facegate_test_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    let _ = conn.close().await;
    with_database(&admin, &name)
}

#[test]
fn database_names_are_replaced() {
    assert_eq!(
        with_database("postgres://u:p@h:1/postgres", "x"),
        "postgres://u:p@h:1/x"
    );
    assert_eq!(
        with_database("postgres://u@h:1?sslmode=disable", "x"),
        "postgres://u@h:1/x?sslmode=disable"
    );
}
