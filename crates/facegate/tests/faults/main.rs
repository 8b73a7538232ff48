//! Faults of the real `facegate` process: a disk that fills up during
//! enrolments and registrations (a file size limit, and a small tmpfs when
//! one can be mounted), a data directory that cannot be written at start,
//! two key rotations at once, SIGKILL in the middle of enrolments and
//! SIGTERM during a request; and two instances on one PostgreSQL, with
//! one killed or the database stopped. Linux only (setrlimit, prlimit, mount).

#![cfg(target_os = "linux")]

mod cluster;
mod common;
mod crash;
mod data_dir;
mod disk_full;
mod dos;
mod instances;
mod rotate_key;
