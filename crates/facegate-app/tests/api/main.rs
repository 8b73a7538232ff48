//! API tests: each test spawns the real server on loopback with a fresh
//! SQLite data directory and talks to it with reqwest; the face-login,
//! lockout and retention tests run on PostgreSQL too (a fresh database on
//! the test server, facegate_testkit::postgres). The face engine is loaded once
//! for the whole test binary.

mod abuse;
mod audit_ops;
mod dos;
mod enrolment;
mod flow;
mod fuzz_regressions;
mod gallery;
mod harness;
mod helpers;
mod hostile;
mod liveness;
mod modes;
mod oidc;
mod oidc_admin;
mod oidc_login_pages;
mod oidc_rp;
mod oidc_security;
mod openapi;
mod pages;
mod protection;
mod retention;
mod security;
mod sessions;
mod tampering;
