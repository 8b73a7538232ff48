//! Storage faults: which file-system, SQLite and PostgreSQL failures mean
//! "the disk is full" and which mean "the storage refuses writes or cannot
//! be reached", so that the services can answer with a typed error (and
//! keep nothing half-written) instead of a generic internal one.

use std::io;

pub use super::data_dir::is_full;
use super::error::StoreError;

/// SQLite primary result codes (the low byte of an extended code) that
/// describe the storage rather than the query.
const SQLITE_READONLY: i32 = 8;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;

/// Whether a file-system error means the storage refuses writes.
fn is_refused(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied
    )
}

/// A file-system error met while writing `what`.
pub fn from_io(what: &str, e: &io::Error) -> StoreError {
    let detail = format!("{what}: {e}");
    if is_full(e) {
        StoreError::Full(detail)
    } else if is_refused(e) {
        StoreError::Unavailable(detail)
    } else {
        StoreError::Backend(detail)
    }
}

/// The storage fault an SQLite extended result code stands for, if any.
/// `SQLITE_FULL` is a full disk (SQLite reports it when a write runs out of
/// space); an I/O error, a read-only database or a file that cannot be
/// opened is storage that refuses the write. SQLite does not say which
/// system error caused an I/O error, so a file size limit (`EFBIG`) shows
/// up as unavailable, not full.
pub fn from_sqlite(code: i32, message: &str) -> Option<StoreError> {
    let detail = format!("database: {message} (code {code})");
    match code & 0xff {
        SQLITE_FULL => Some(StoreError::Full(detail)),
        SQLITE_IOERR | SQLITE_READONLY | SQLITE_CANTOPEN => Some(StoreError::Unavailable(detail)),
        _ => None,
    }
}

/// The storage fault a PostgreSQL SQLSTATE stands for, if any: class 53
/// (insufficient resources) with `53100` a full disk, class 08 (connection
/// exception), `57P01`–`57P03` (the server shuts down or does not accept
/// connections yet) and `25006` (a read-only transaction, e.g. on a
/// standby) are storage that cannot take the write now.
pub fn from_postgres(code: &str, message: &str) -> Option<StoreError> {
    let detail = format!("database: {message} (SQLSTATE {code})");
    match code {
        "53100" => Some(StoreError::Full(detail)),
        c if c.starts_with("53") || c.starts_with("08") => Some(StoreError::Unavailable(detail)),
        "57P01" | "57P02" | "57P03" | "25006" => Some(StoreError::Unavailable(detail)),
        _ => None,
    }
}

/// A database error as a [`StoreError`]: unique violations are conflicts,
/// a full or refusing storage keeps its kind, a lost or refused connection
/// is unavailable storage.
pub fn from_sqlx(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => return StoreError::Conflict,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            let fault = if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse::<i32>()
                    .ok()
                    .and_then(|n| from_sqlite(n, db.message()))
            } else {
                from_postgres(&code, db.message())
            };
            if let Some(fault) = fault {
                return fault;
            }
        }
        sqlx::Error::Io(io) => return from_io("database", io),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            return StoreError::Unavailable(format!("database: {e}"))
        }
        sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            return StoreError::Unavailable(format!("database: {e}"))
        }
        _ => {}
    }
    StoreError::Backend(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_io_and_sqlite_faults() {
        let full = io::Error::from(io::ErrorKind::StorageFull);
        assert!(matches!(from_io("photo", &full), StoreError::Full(_)));
        let big = io::Error::from(io::ErrorKind::FileTooLarge);
        assert!(matches!(from_io("photo", &big), StoreError::Full(_)));
        let ro = io::Error::from(io::ErrorKind::ReadOnlyFilesystem);
        assert!(matches!(from_io("photo", &ro), StoreError::Unavailable(_)));
        let other = io::Error::other("boom");
        assert!(matches!(from_io("photo", &other), StoreError::Backend(_)));
        // SQLITE_FULL, SQLITE_IOERR_WRITE (778), SQLITE_READONLY_DBMOVED (1032).
        assert!(matches!(from_sqlite(13, "full"), Some(StoreError::Full(_))));
        assert!(matches!(
            from_sqlite(778, "io"),
            Some(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            from_sqlite(1032, "ro"),
            Some(StoreError::Unavailable(_))
        ));
        // A constraint (2067 = SQLITE_CONSTRAINT_UNIQUE) is not a fault.
        assert!(from_sqlite(2067, "unique").is_none());
        // PostgreSQL: disk full, connection lost, shutting down; not a
        // syntax error (42601) or a check violation (23514).
        assert!(matches!(
            from_postgres("53100", "full"),
            Some(StoreError::Full(_))
        ));
        for code in ["08006", "57P01", "53300", "25006"] {
            assert!(matches!(
                from_postgres(code, "x"),
                Some(StoreError::Unavailable(_))
            ));
        }
        assert!(from_postgres("42601", "syntax").is_none());
        assert!(from_postgres("23514", "check").is_none());
    }
}
