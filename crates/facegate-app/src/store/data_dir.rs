//! The data directory check done before anything is opened: the directory
//! is created if missing and must be one this process can write to.
//! SQLite alone would open a database on a read-only disk without
//! complaint and fail only at the first write, so a probe file is created,
//! written, synced and removed. A failure names the directory, the problem
//! and what to do about it.
//!
//! The directory holds the database, the master key and the sealed media:
//! on Unix it is made private to the owner at every start (issue 16,
//! finding 5): the directory and every directory in it 0700, every file
//! 0600, and the process umask 077, so that what is created later (SQLite's
//! WAL and shared-memory files, lock files, media) is private too.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Whether a file-system error means there is no room left: the disk or a
/// quota is full, or the process's file size limit is reached.
pub fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

/// Why the data directory cannot be used.
#[derive(Debug)]
pub struct DataDirError {
    dir: PathBuf,
    /// The directory exists but is a file.
    not_a_directory: bool,
    source: io::Error,
}

impl DataDirError {
    /// What is wrong, and the first thing to try.
    fn problem_and_fix(&self) -> (&'static str, &'static str) {
        if self.not_a_directory {
            return ("it is a file, not a directory", "Move that file away");
        }
        match self.source.kind() {
            io::ErrorKind::NotADirectory => (
                "a part of its path is a file, not a directory",
                "Move that file away",
            ),
            io::ErrorKind::ReadOnlyFilesystem => (
                "it is on a read-only file system",
                "Mount that file system read-write",
            ),
            io::ErrorKind::PermissionDenied => (
                "this user may not write there",
                "Give the user running facegate write access to it (e.g. with chown)",
            ),
            _ if is_full(&self.source) => (
                "the disk is full",
                "Free some space on that disk (or raise the quota)",
            ),
            io::ErrorKind::NotFound => ("it cannot be created there", "Check the path"),
            _ => ("it cannot be written", "Check the path and its permissions"),
        }
    }
}

impl std::fmt::Display for DataDirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (problem, fix) = self.problem_and_fix();
        write!(
            f,
            "the data directory {} cannot be used: {problem}. {fix}, or choose another \
             directory with --data-dir (or FACEGATE_DATA_DIR).",
            self.dir.display()
        )?;
        if !self.not_a_directory {
            write!(f, " [system error: {}]", self.source)?;
        }
        Ok(())
    }
}

// The system error is part of the message, not a separate cause, so that
// `{:#}` prints it once.
impl std::error::Error for DataDirError {}

/// The probe file's name: per process and per call, so two commands (or
/// two stores of one process) starting at once do not remove each other's
/// probe.
fn probe_name() -> String {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(".write-probe-{}-{n}", std::process::id())
}

/// Creates `dir` if needed and proves that this process can create, write,
/// sync and remove a file in it.
pub fn prepare_data_dir(dir: &Path) -> Result<(), DataDirError> {
    let fail = |source: io::Error| DataDirError {
        dir: dir.to_path_buf(),
        not_a_directory: false,
        source,
    };
    if dir.exists() && !dir.is_dir() {
        return Err(DataDirError {
            dir: dir.to_path_buf(),
            not_a_directory: true,
            source: io::Error::from(io::ErrorKind::AlreadyExists),
        });
    }
    restrict_umask();
    std::fs::create_dir_all(dir).map_err(fail)?;
    make_private(dir).map_err(fail)?;
    let probe = dir.join(probe_name());
    let written = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(b"facegate write probe\n")?;
        f.sync_all()
    });
    // Remove it even when the write failed (an empty file may be left).
    let removed = std::fs::remove_file(&probe);
    written.map_err(fail)?;
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(fail(e)),
        _ => Ok(()),
    }
}

/// Files and directories created from now on by this process get no
/// permission for the group or others.
fn restrict_umask() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode creation mask; it
    // cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// Takes the group's and others' permissions away from `dir` and
/// everything in it (symbolic links are not followed).
#[cfg(unix)]
fn make_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir)?;
    let private = if meta.is_dir() { 0o700 } else { 0o600 };
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & private))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            match make_private(&entry?.path()) {
                // Gone since the listing (another instance's probe or
                // SQLite journal): nothing left to protect.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_passes_and_a_file_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        prepare_data_dir(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "probe left");

        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = prepare_data_dir(&file).unwrap_err().to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        assert!(e.contains(&file.display().to_string()), "{e}");

        let below = file.join("data");
        let e = prepare_data_dir(&below).unwrap_err().to_string();
        assert!(e.contains("a part of its path is a file"), "{e}");
        assert!(e.contains("--data-dir"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_shared_directory_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir_all(dir.join("media")).unwrap();
        std::fs::write(dir.join("facegate.db"), b"x").unwrap();
        std::fs::write(dir.join("media/a.bin"), b"x").unwrap();
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(&dir, open.clone()).unwrap();
        std::fs::set_permissions(dir.join("media"), open).unwrap();
        let shared = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(dir.join("facegate.db"), shared.clone()).unwrap();
        std::fs::set_permissions(dir.join("media/a.bin"), shared).unwrap();
        prepare_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("media")), 0o700);
        assert_eq!(mode(&dir.join("facegate.db")), 0o600);
        assert_eq!(mode(&dir.join("media/a.bin")), 0o600);
    }
}
