//! The engine tests' fixtures: the shared engine and the labelled photos
//! of `facegate_testkit`, under the names these tests use.

#![allow(unused_imports)]

pub use facegate_testkit::paths::{faces_dir, labels, photo, workspace as repo_root, Label};
pub use facegate_testkit::ENGINE;
