//! Domain types: users, face templates, login attempts and the validated
//! newtypes ([`Username`], [`Email`], [`Password`]) that guard user input.

mod audit;
pub mod oidc;
mod validated;

pub use audit::{clip, AuditEvent, AuditFilter, AuditKind, NewAuditEvent, CLIPPED};
pub use validated::{claimed_username, Email, Password, Username, ValidationError};

use serde::Serialize;
use time::OffsetDateTime;

/// A registered account.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// Consecutive failed face attempts against this account.
    pub face_failures: u32,
    /// Face login is refused until this moment.
    pub face_locked_until: Option<OffsetDateTime>,
    /// Sessions logged in under another epoch are over (a password change,
    /// a deactivation or "log out everywhere" increments it).
    pub session_epoch: i64,
    /// When a face was last added, until the owner was told at a password
    /// login.
    pub face_added_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl User {
    /// True while the account's face login is locked.
    pub fn face_locked(&self, now: OffsetDateTime) -> bool {
        self.face_locked_until.is_some_and(|until| until > now)
    }
}

/// What is needed to create an account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
    pub is_staff: bool,
    pub is_superuser: bool,
}

/// A user with the number of enrolled face templates (admin listing).
#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    #[serde(flatten)]
    pub user: User,
    pub faces: i64,
}

/// An encoded JPEG image: an enrolment photo or a kept face-login probe.
/// Biometric data: the store keeps it sealed, and `Debug` shows only its
/// size.
#[derive(Clone, PartialEq, Eq)]
pub struct Jpeg(pub Vec<u8>);

impl std::fmt::Debug for Jpeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Jpeg({} bytes)", self.0.len())
    }
}

/// One enrolled face: the embedding and its model (the photo is read on
/// its own, see [`crate::store::Templates::face_photo`]).
#[derive(Debug, Clone, Serialize)]
pub struct Template {
    pub id: i64,
    pub user_id: i64,
    pub model_id: String,
    #[serde(skip)]
    pub embedding: Vec<f32>,
    pub quality: f32,
    pub created_at: OffsetDateTime,
}

/// What is needed to store a template.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub user_id: i64,
    pub model_id: String,
    pub embedding: Vec<f32>,
    pub quality: f32,
    /// The photo it was computed from; enrolment always keeps one, a
    /// synthetic or imported template may have none.
    pub photo: Option<Jpeg>,
}

/// A template reduced to what 1:N matching needs.
#[derive(Debug, Clone)]
pub struct MatchTemplate {
    pub user_id: i64,
    pub embedding: Vec<f32>,
}

/// How a login was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    Password,
    FaceIdentify,
    FaceVerify,
    FaceSecondFactor,
}

impl LoginMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            LoginMethod::Password => "password",
            LoginMethod::FaceIdentify => "face_identify",
            LoginMethod::FaceVerify => "face_verify",
            LoginMethod::FaceSecondFactor => "face_second_factor",
        }
    }
}

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Locked,
    RateLimited,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Locked => "locked",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

/// An audit record of one login attempt, as written.
#[derive(Debug, Clone)]
pub struct NewLoginAttempt {
    pub claimed_username: Option<String>,
    /// The account the attempt concerned (matched, claimed or closest).
    pub user_id: Option<i64>,
    pub client_addr: String,
    pub method: LoginMethod,
    pub outcome: Outcome,
    pub best_score: Option<f32>,
    pub reason: String,
    /// Scores of the liveness checks as JSON, when any ran.
    pub liveness: Option<String>,
    /// The probe image this attempt was matched on, kept (sealed, with the
    /// attempt) when `probe_retention_days` > 0.
    pub probe: Option<Jpeg>,
}

impl NewLoginAttempt {
    /// An attempt as first recorded, before any check: refused by the rate
    /// limit, until the checks that follow say otherwise.
    pub fn rate_limited(
        claimed_username: Option<String>,
        client_addr: String,
        method: LoginMethod,
    ) -> Self {
        NewLoginAttempt {
            claimed_username,
            user_id: None,
            client_addr,
            method,
            outcome: Outcome::RateLimited,
            best_score: None,
            reason: "rate_limited".into(),
            liveness: None,
            probe: None,
        }
    }

    /// The attempt with every client-supplied text within its bound
    /// ([`audit::clip`]).
    pub fn bounded(mut self) -> Self {
        let field = |s: &str| audit::clip(s, audit::MAX_AUDIT_FIELD);
        self.claimed_username = self.claimed_username.as_deref().map(field);
        self.client_addr = field(&self.client_addr);
        self.reason = field(&self.reason);
        self
    }
}

/// An audit record of one login attempt, as read back.
#[derive(Debug, Clone, Serialize)]
pub struct LoginAttempt {
    pub id: i64,
    pub at: OffsetDateTime,
    pub claimed_username: Option<String>,
    pub user_id: Option<i64>,
    pub client_addr: String,
    pub method: String,
    pub outcome: String,
    pub best_score: Option<f32>,
    pub reason: String,
    /// Scores of the liveness checks as JSON, when any ran.
    pub liveness: Option<String>,
    /// Whether a probe image is kept with this attempt (never shown: staff
    /// open it through the attempts page).
    #[serde(skip)]
    pub probe_kept: bool,
}

impl LoginAttempt {
    pub fn has_probe(&self) -> bool {
        self.probe_kept
    }
}
