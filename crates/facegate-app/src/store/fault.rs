//! Storage faults: which file-system and SQLite failures mean "the disk is
//! full" and which mean "the storage refuses writes", so that the services
//! can answer with a typed error (and keep nothing half-written) instead of
//! a generic internal one.

use std::io;

use super::StoreError;

/// SQLite primary result codes (the low byte of an extended code) that
/// describe the storage rather than the query.
const SQLITE_READONLY: i32 = 8;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;

/// Whether a file-system error means there is no room left: the disk or a
/// quota is full, or the process's file size limit is reached.
pub fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

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
    }
}
