//! Faults of the real `facegate` process: a disk that fills up during
//! enrolments and registrations (a file size limit, and a small tmpfs when
//! one can be mounted), a data directory that cannot be written at start,
//! and two key rotations at once. Linux only (setrlimit, prlimit, mount).

#![cfg(target_os = "linux")]

mod common;
mod data_dir;
mod disk_full;
mod rotate_key;
