//! Audit trail records: append-only security events (registration,
//! logins with scores, lockouts, enrolment, deletion, export, admin
//! actions) and the filter staff use to read them.

use serde::Serialize;
use time::OffsetDateTime;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    Registration,
    PasswordLogin,
    FaceLogin,
    Lockout,
    Enrolment,
    FaceDeleted,
    FacesDeleted,
    AccountDeleted,
    DataExported,
    AdminAction,
    PasswordChanged,
    KeyRotated,
    /// The retention sweep deleted old login attempts or probe images.
    RetentionPurge,
    /// A stored biometric record was not sealed, or did not open with its
    /// key and binding: it was refused (never matched, never shown).
    Tampering,
    /// An OpenID Connect client was registered or removed.
    OidcClient,
    /// An authorisation code or token was issued, refreshed, refused as
    /// replayed, or revoked.
    OidcToken,
    /// A person consented to a client, or withdrew their consent.
    OidcConsent,
}

impl AuditKind {
    pub const ALL: [AuditKind; 17] = [
        AuditKind::Registration,
        AuditKind::PasswordLogin,
        AuditKind::FaceLogin,
        AuditKind::Lockout,
        AuditKind::Enrolment,
        AuditKind::FaceDeleted,
        AuditKind::FacesDeleted,
        AuditKind::AccountDeleted,
        AuditKind::DataExported,
        AuditKind::AdminAction,
        AuditKind::PasswordChanged,
        AuditKind::KeyRotated,
        AuditKind::RetentionPurge,
        AuditKind::Tampering,
        AuditKind::OidcClient,
        AuditKind::OidcToken,
        AuditKind::OidcConsent,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            AuditKind::Registration => "registration",
            AuditKind::PasswordLogin => "password_login",
            AuditKind::FaceLogin => "face_login",
            AuditKind::Lockout => "lockout",
            AuditKind::Enrolment => "enrolment",
            AuditKind::FaceDeleted => "face_deleted",
            AuditKind::FacesDeleted => "faces_deleted",
            AuditKind::AccountDeleted => "account_deleted",
            AuditKind::DataExported => "data_exported",
            AuditKind::AdminAction => "admin_action",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::KeyRotated => "key_rotated",
            AuditKind::RetentionPurge => "retention_purge",
            AuditKind::Tampering => "tampering",
            AuditKind::OidcClient => "oidc_client",
            AuditKind::OidcToken => "oidc_token",
            AuditKind::OidcConsent => "oidc_consent",
        }
    }
}

/// Longest text kept in one short field of an audit record (username,
/// address, outcome, reason), in characters.
pub const MAX_AUDIT_FIELD: usize = 128;
/// Longest free-text detail of an audit record, in characters.
pub const MAX_AUDIT_DETAIL: usize = 1024;
/// What replaces the end of a text cut by [`clip`].
pub const CLIPPED: &str = "…[truncated]";

/// `text` itself when it has at most `max` characters, else its first
/// characters and the [`CLIPPED`] marker (at most `max` characters in all):
/// what a request sends cannot make a record grow past the bound.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(CLIPPED.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(CLIPPED);
    out
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub kind: AuditKind,
    /// `success`, `failure`, `locked`, `rate_limited`, …
    pub outcome: String,
    /// Who acted (the user themself, or a staff member).
    pub actor_user_id: Option<i64>,
    /// The account the event is about.
    pub subject_user_id: Option<i64>,
    /// The username given or concerned.
    pub username: Option<String>,
    pub client_addr: Option<String>,
    /// A face match score.
    pub score: Option<f32>,
    /// Free text: reason, action, counts.
    pub detail: String,
}

impl NewAuditEvent {
    pub fn new(kind: AuditKind, outcome: &str) -> Self {
        NewAuditEvent {
            kind,
            outcome: outcome.to_string(),
            actor_user_id: None,
            subject_user_id: None,
            username: None,
            client_addr: None,
            score: None,
            detail: String::new(),
        }
    }

    /// Sets actor and subject to the same user.
    pub fn by(mut self, user_id: i64, username: &str) -> Self {
        self.actor_user_id = Some(user_id);
        self.subject_user_id = Some(user_id);
        self.username = Some(username.to_string());
        self
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = d.into();
        self
    }

    /// The event with every text field within its bound ([`clip`]).
    pub fn bounded(mut self) -> Self {
        self.outcome = clip(&self.outcome, MAX_AUDIT_FIELD);
        self.username = self.username.map(|u| clip(&u, MAX_AUDIT_FIELD));
        self.client_addr = self.client_addr.map(|a| clip(&a, MAX_AUDIT_FIELD));
        self.detail = clip(&self.detail, MAX_AUDIT_DETAIL);
        self
    }
}

/// A stored event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: String,
    pub outcome: String,
    pub actor_user_id: Option<i64>,
    pub subject_user_id: Option<i64>,
    pub username: Option<String>,
    pub client_addr: Option<String>,
    pub score: Option<f32>,
    pub detail: String,
}

/// Which events to read; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub kind: Option<String>,
    pub outcome: Option<String>,
    /// Matches the username given, the actor's or the subject's username
    /// (case-insensitive) or, when numeric, a user id.
    pub user: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    pub limit: i64,
}
