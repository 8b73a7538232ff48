//! The ID-token signing keys' table in PostgreSQL (the shared SQL of
//! [`crate::store::signing_sql`]).

use super::PostgresBackend;

crate::store::signing_sql::signing_key_backend!(
    PostgresBackend,
    sqlx::postgres::PgRow,
    crate::store::oidc_sql::postgres_sql
);
