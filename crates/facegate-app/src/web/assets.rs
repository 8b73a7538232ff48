//! Static files: the app's own JS/CSS and icon embedded in the binary at
//! `/static/app/…` (the icon also at `/favicon.ico`), and SB Admin 2 (with Bootstrap, jQuery and Font Awesome)
//! from the web directory's `node_modules` at `/static/sb-admin-2/…`, and
//! its Nunito font (the npm package `@fontsource/nunito`) at
//! `/static/fonts/nunito/…`: no third-party font host.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::services::ServeDir;

use super::state::AppState;
use crate::config::Config;

/// The embedded files: (name, content type, body).
const APP_FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/common.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
    (
        "face-login.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/face-login.js"),
    ),
    (
        "liveness.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/liveness.js"),
    ),
    (
        "profile.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/profile.js"),
    ),
];

/// `/favicon.ico`, asked for by browsers that have not read the pages'
/// icon link: the same SVG.
async fn favicon() -> Response {
    app_file(Path("favicon.svg".to_string())).await
}

async fn app_file(Path(name): Path<String>) -> Response {
    match APP_FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, body)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub fn router(config: &Config) -> Router<AppState> {
    let mut r = Router::new()
        .route("/static/app/{name}", get(app_file))
        .route("/favicon.ico", get(favicon));
    match config.resolve_web_dir() {
        Some(web) => {
            let sb = web.join("node_modules/startbootstrap-sb-admin-2");
            if !sb.is_dir() {
                tracing::warn!(path = %sb.display(), "SB Admin 2 not installed; run `npm install --prefix web`");
            }
            for sub in ["css", "js", "vendor"] {
                r = r.nest_service(
                    &format!("/static/sb-admin-2/{sub}"),
                    ServeDir::new(sb.join(sub)),
                );
            }
            let nunito = web.join("node_modules/@fontsource/nunito");
            if !nunito.is_dir() {
                tracing::warn!(path = %nunito.display(), "the Nunito font is not installed; run `npm install --prefix web`");
            }
            r = r.nest_service("/static/fonts/nunito", ServeDir::new(nunito));
        }
        None => tracing::warn!("web directory not found; pages will be unstyled"),
    }
    r
}
