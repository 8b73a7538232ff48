//! Test support for every crate of the workspace, a dev-dependency only:
//! where the test data and models are ([`paths`]), one face engine per
//! test binary ([`engine`]), a browser-like HTTP client with its cookie jar
//! and CSRF token ([`agent`]), a throwaway PostgreSQL with a fresh database
//! per test ([`postgres`]), the fuzz targets' committed inputs
//! ([`corpus`]) and generated pictures ([`images`]).

pub mod agent;
pub mod corpus;
pub mod engine;
pub mod images;
pub mod paths;
pub mod postgres;

pub use agent::{Agent, PASSWORD};
pub use engine::{engine_config, ENGINE};
pub use paths::{faces_dir, photo, workspace};
