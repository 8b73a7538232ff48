//! JSON errors: every failure of the API is `{"error": CODE, "message": TEXT}`
//! with a status that matches the code (a full disk is 507 `storage_full`,
//! storage refusing writes 503 `storage_unavailable`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use facegate_vision::VisionError;
use serde_json::json;

use crate::service::ServiceError;

/// An API error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "The CSRF token is missing or wrong; reload and retry.",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
}

/// Status and code of a service error.
pub fn classify(e: &ServiceError) -> (StatusCode, &'static str) {
    match e {
        ServiceError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid"),
        ServiceError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        ServiceError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
        ServiceError::NotAuthenticated => (StatusCode::UNAUTHORIZED, "not_authenticated"),
        ServiceError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        ServiceError::ReauthRequired => (StatusCode::FORBIDDEN, "reauth_required"),
        ServiceError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        ServiceError::Vision(VisionError::TooLarge(_)) => {
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        }
        ServiceError::Vision(v) => (StatusCode::UNPROCESSABLE_ENTITY, v.code()),
        ServiceError::FaceRejected { code, .. } => (StatusCode::UNAUTHORIZED, code),
        ServiceError::EnrolmentRefused { code, .. } => (StatusCode::CONFLICT, code),
        ServiceError::Locked => (StatusCode::TOO_MANY_REQUESTS, "locked"),
        ServiceError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        ServiceError::StorageFull(_) => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
        ServiceError::StorageUnavailable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
        }
        ServiceError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// A message safe to show to the user.
pub fn user_message(e: &ServiceError) -> String {
    match e {
        ServiceError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            "Something went wrong on our side. Please try again.".into()
        }
        ServiceError::StorageFull(detail) | ServiceError::StorageUnavailable(detail) => {
            tracing::error!(%detail, "storage refused a write");
            e.to_string()
        }
        ServiceError::Vision(VisionError::NoFace) => "No face was found in the photo.".into(),
        ServiceError::Vision(VisionError::MultipleFaces(n)) => {
            format!("The photo shows {n} faces; it must show only yours.")
        }
        ServiceError::Vision(VisionError::LowQuality(issue)) => {
            format!("The photo is not good enough: {issue}.")
        }
        ServiceError::Vision(VisionError::InvalidImage(_)) => {
            "That file is not a usable JPEG, PNG or WebP image.".into()
        }
        ServiceError::Vision(VisionError::TooLarge(_)) => "The image is too large.".into(),
        other => other.to_string(),
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let (status, code) = classify(&e);
        ApiError::new(status, code, user_message(&e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
