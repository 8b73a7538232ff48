//! [`ServiceError`]: the failures a caller of the services can act on,
//! each mapping to one HTTP status and code, and how storage and engine
//! failures become them.

use facegate_vision::VisionError;

use crate::domain::ValidationError;
use crate::store::StoreError;

/// A failure a caller can act on; each maps to one HTTP status and code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    Conflict(String),
    #[error("Invalid username or password.")]
    InvalidCredentials,
    #[error("You need to log in.")]
    NotAuthenticated,
    #[error("You are not allowed to do that.")]
    Forbidden,
    /// A sensitive change needs a recent login or password confirmation.
    #[error(
        "For your security, confirm your password first: this change needs a recent \
         login (POST /api/me/reauth with your password)."
    )]
    ReauthRequired,
    #[error("Not found.")]
    NotFound,
    /// Enrolment refused the image (no face, several, low quality, …).
    #[error("{0}")]
    Vision(VisionError),
    /// Face login did not let the user in; the code is `no_face`,
    /// `multiple_faces` or `unknown`.
    #[error("{message}")]
    FaceRejected {
        code: &'static str,
        message: &'static str,
    },
    /// Enrolment refused a face that would weaken the account: not the
    /// person already enrolled (`face_mismatch`), or a face that already
    /// logs in to another account (`face_taken`, said without naming it).
    #[error("{message}")]
    EnrolmentRefused {
        code: &'static str,
        message: &'static str,
    },
    #[error("Too many failed attempts. Try again later or log in with your password.")]
    Locked,
    #[error("Too many attempts. Please wait a minute and try again.")]
    RateLimited,
    /// No room left on the server's disk; nothing was saved. The detail is
    /// for the log.
    #[error("The server's storage is full, so nothing was saved. Please try again later.")]
    StorageFull(String),
    /// The server's storage refused the write; nothing was saved.
    #[error(
        "The server cannot save data right now, so nothing was saved. Please try again later."
    )]
    StorageUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ServiceError::Conflict("That already exists.".into()),
            StoreError::Full(m) => ServiceError::StorageFull(m),
            StoreError::Unavailable(m) => ServiceError::StorageUnavailable(m),
            StoreError::DataDir(e) => ServiceError::StorageUnavailable(e.to_string()),
            StoreError::Config(m) | StoreError::Backend(m) => ServiceError::Internal(m),
        }
    }
}

/// The engine's failures: a model failure is ours (internal), anything
/// else is about the image the caller sent.
impl From<VisionError> for ServiceError {
    fn from(e: VisionError) -> Self {
        match e {
            VisionError::Model(m) => ServiceError::Internal(m),
            other => ServiceError::Vision(other),
        }
    }
}

impl ServiceError {
    /// Whether the storage (full or refusing writes) caused this failure.
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            ServiceError::StorageFull(_) | ServiceError::StorageUnavailable(_)
        )
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
