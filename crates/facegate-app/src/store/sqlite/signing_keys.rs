//! The ID-token signing keys' table in SQLite (the shared SQL of
//! [`crate::store::signing_sql`]).

use super::SqliteBackend;

crate::store::signing_sql::signing_key_backend!(
    SqliteBackend,
    sqlx::sqlite::SqliteRow,
    crate::store::oidc_sql::sqlite_sql
);
