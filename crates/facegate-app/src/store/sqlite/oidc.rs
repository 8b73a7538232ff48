//! The OpenID Connect tables in SQLite (the shared SQL of
//! [`crate::store::oidc_sql`]).

use super::SqliteBackend;

crate::store::oidc_sql::oidc_backend!(
    SqliteBackend,
    sqlx::sqlite::SqliteRow,
    crate::store::oidc_sql::sqlite_sql
);
