//! Opening a PostgreSQL store: parsing `database_url`, one first
//! connection that says precisely what is wrong (a malformed URL, a
//! server that cannot be reached or does not answer, refused credentials,
//! a missing database, a server too old for the migrations), the
//! migrations on that connection, then the pool. Every failure is one line
//! naming the server (never the password) and the problem, and nothing is
//! retried behind the operator's back.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::store::error::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The oldest PostgreSQL the migrations are written for
/// (`server_version_num`; CI runs 15).
pub const MIN_SERVER_VERSION: i32 = 130000;

/// How long the first connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a pooled connection before the store
/// answers "unavailable".
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

fn config(message: String) -> StoreError {
    StoreError::Config(message)
}

/// Parses `url`; the error names the problem, never the URL (it may hold
/// a password).
pub fn parse(url: &str) -> StoreResult<PgConnectOptions> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
    if !matches!(scheme, "postgres" | "postgresql") {
        return Err(config(format!(
            "database_url must be a postgres:// URL (or unset for the embedded SQLite); \
             it starts with {:?}",
            url.chars()
                .take(scheme.len().clamp(1, 12))
                .collect::<String>()
        )));
    }
    PgConnectOptions::from_str(url)
        // The server's notices ("relation … already exists, skipping")
        // are not the operator's business.
        .map(|o| {
            o.application_name("facegate")
                .options([("client_min_messages", "warning")])
        })
        .map_err(|e| config(format!("database_url is not a valid PostgreSQL URL: {e}")))
}

/// "the PostgreSQL database D at H:P": where, without credentials.
fn target(opts: &PgConnectOptions) -> String {
    let db = opts.get_database().unwrap_or(opts.get_username());
    match opts.get_socket() {
        Some(dir) => format!("the PostgreSQL database {db} (socket in {})", dir.display()),
        None => format!(
            "the PostgreSQL database {db} at {}:{}",
            opts.get_host(),
            opts.get_port()
        ),
    }
}

/// What a failed first connection means, in one line.
fn connect_error(opts: &PgConnectOptions, where_: &str, e: sqlx::Error) -> StoreError {
    let message = match &e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "cannot connect to {where_}: connection refused (is PostgreSQL running and \
             listening there?)"
        ),
        sqlx::Error::Io(io) => format!("cannot connect to {where_}: {io}"),
        sqlx::Error::Tls(tls) => format!("cannot connect to {where_}: TLS failed: {tls}"),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => format!(
                "{where_} refused the credentials of user {:?}: {}",
                opts.get_username(),
                db.message()
            ),
            Some("3D000") => format!(
                "{where_} does not exist ({}); create it first (e.g. createdb)",
                db.message()
            ),
            Some("42501") => format!("{where_} refused access: {}", db.message()),
            _ => format!("cannot open {where_}: {}", db.message()),
        },
        other => format!("cannot open {where_}: {other}"),
    };
    config(message)
}

/// Refuses a server older than [`MIN_SERVER_VERSION`].
pub fn check_version(where_: &str, version_num: i32, version: &str) -> StoreResult<()> {
    if version_num >= MIN_SERVER_VERSION {
        return Ok(());
    }
    Err(config(format!(
        "{where_} runs PostgreSQL {version}, older than {}, the oldest version facegate's \
         migrations are written for; upgrade the server",
        MIN_SERVER_VERSION / 10000
    )))
}

/// An opened, migrated database.
pub struct Opened {
    pub pool: PgPool,
    /// The schema the tables are in.
    pub schema: String,
    /// Where it is, without credentials.
    pub target: String,
}

/// Connects to `url`, checks the server and migrates; see the module
/// documentation.
pub async fn open(url: &str) -> StoreResult<Opened> {
    let opts = parse(url)?;
    let where_ = target(&opts);
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(connect_error(&opts, &where_, e)),
        Err(_) => {
            return Err(config(format!(
                "cannot connect to {where_}: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )))
        }
    };
    let schema = check(&mut conn, &where_).await?;
    let _ = conn.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(opts);
    // Several instances may start at once: sqlx holds a PostgreSQL
    // advisory lock (per database) while it checks and applies migrations.
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| config(format!("cannot migrate {where_}: {e}")))?;
    Ok(Opened {
        pool,
        schema,
        target: where_,
    })
}

/// Checks the version and returns the schema the tables will be in.
async fn check(conn: &mut PgConnection, where_: &str) -> StoreResult<String> {
    let failed = |what: &str, e: &dyn std::fmt::Display| config(format!("{what} {where_}: {e}"));
    let (num, version): (String, String) = sqlx::query_as(
        "SELECT current_setting('server_version_num'), current_setting('server_version')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| failed("cannot query", &e))?;
    check_version(where_, num.parse().unwrap_or(0), &version)?;
    let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| failed("cannot query", &e))?;
    schema.ok_or_else(|| config(format!("{where_} has no schema on its search path")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_echoing_secrets() {
        let e = parse("mysql://root:hunter2@db/facegate")
            .unwrap_err()
            .to_string();
        assert!(e.contains("postgres://") && !e.contains("hunter2"), "{e}");
        let e = parse("postgres://u:hunter2@db:notaport/x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a valid PostgreSQL URL") && !e.contains("hunter2"),
            "{e}"
        );
        let opts = parse("postgresql://u:hunter2@db.example:6543/gate").unwrap();
        let t = target(&opts);
        assert_eq!(t, "the PostgreSQL database gate at db.example:6543");
    }

    #[test]
    fn an_old_server_is_refused() {
        assert!(check_version("x", 150004, "15.4").is_ok());
        assert!(check_version("x", 130000, "13.0").is_ok());
        let e = check_version("the PostgreSQL database f at h:1", 120017, "12.17")
            .unwrap_err()
            .to_string();
        assert!(e.contains("PostgreSQL 12.17, older than 13"), "{e}");
    }
}
