//! What every handler shares: the application state (services and
//! templates) and the body limits the routers apply.

use std::sync::Arc;

use super::views::Views;
use crate::service::Services;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub views: Arc<Views>,
    /// Profile uploads being read at once (each may buffer up to
    /// `max_upload_files` images): further ones wait, their bodies unread.
    pub page_uploads: Arc<tokio::sync::Semaphore>,
}

/// How many profile uploads are read at once.
pub const PAGE_UPLOADS_AT_ONCE: usize = 2;

/// Multipart framing allowance on top of the image bytes.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// Body limit of every request that carries no image (forms, JSON): far
/// above any valid form, far below what could fill a disk or a log.
pub const FORM_BODY_LIMIT: usize = 64 * 1024;
