//! Application services shared by the pages and the JSON API: accounts,
//! face enrolment, face login, rate limits (kept by the store) and lockout, the audit of
//! login attempts and their retention. Nothing here knows about HTTP or
//! about SQLite.

mod accounts;
mod attempt;
mod data;
mod enrolment;
mod error;
mod face_login;
mod gallery;
mod jpeg;
mod liveness;
mod matching;
mod metrics;
pub mod oidc;
mod probe;
mod retention;
mod services;

pub use accounts::{
    create_account, create_superuser, hash_password, verify_password, PasswordLogin,
};
pub use data::{export_with, rotate_keys, ExportedFace, ExportedProbe, RotationReport, UserExport};
pub use error::{ServiceError, ServiceResult};
pub use face_login::{FaceLoginOk, FaceLoginRequest, ProbeInput};
pub use gallery::{Gallery, LoadProgress, Loaded, SketchIndex};
pub use liveness::{ChallengeAnswer, IssuedChallenge, MAX_FRAME_BYTES, MAX_FRAME_SIDE};
pub use matching::{decide, rank, Decision};
pub use metrics::{Metrics, Stage};
pub use probe::Probe;
pub use retention::RetentionSweep;
pub use services::{Client, Services};
