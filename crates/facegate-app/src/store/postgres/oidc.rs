//! The OpenID Connect tables in PostgreSQL (the shared SQL of
//! [`crate::store::oidc_sql`]).

use super::PostgresBackend;

crate::store::oidc_sql::oidc_backend!(
    PostgresBackend,
    sqlx::postgres::PgRow,
    crate::store::oidc_sql::postgres_sql
);
