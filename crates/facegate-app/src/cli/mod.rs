//! Command-line entry points for the `facegate` binary, one file per group
//! of commands: `serve` and `migrate` (`serve.rs`), `createsuperuser` and
//! `enroll` (`users.rs`), `rotate-key` and `export-user` (`data.rs`),
//! `oidc-client` and `rotate-signing-key` (`oidc.rs`); the
//! options and helpers they share are in `common.rs`. The binary parses
//! these argument structs and calls the functions; ONNX Runtime is
//! initialised by it. Every command opens the store the configuration
//! names ([`crate::store::open`]: SQLite in the data directory, or
//! PostgreSQL with `database_url`), which runs the migrations; a command
//! that keeps anything in the data directory checks it first
//! ([`check_data_dir`]).

mod common;
mod data;
mod oidc;
mod serve;
mod users;

pub use common::{check_data_dir, CommonArgs};
pub use data::{export_user, rotate_key, ExportUserArgs, RotateKeyArgs};
pub use oidc::{oidc_client, rotate_signing, OidcClientArgs, RotateSigningKeyArgs};
pub use serve::{migrate, serve, MigrateArgs, ServeArgs};
pub use users::{create_superuser, enrol, CreateSuperuserArgs, EnrolArgs};
