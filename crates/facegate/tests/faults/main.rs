//! Faults of the real `facegate` process: a disk that fills up during
//! enrolments and registrations (a file size limit, and a small tmpfs when
//! one can be mounted), a data directory that cannot be written at start,
//! two key rotations at once, SIGKILL in the middle of enrolments and
//! SIGTERM during a request. Linux only (setrlimit, prlimit, mount).

#![cfg(target_os = "linux")]

mod common;
mod crash;
mod data_dir;
mod disk_full;
mod dos;
mod rotate_key;
