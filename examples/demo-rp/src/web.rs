//! The demo's pages: home (a "Sign in with facegate" button, or who is
//! signed in and how), the start of a sign-in, the callback the provider
//! sends the browser back to, and signing out of the demo.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::{context, Environment};
use serde::Deserialize;
use tower_sessions::cookie::SameSite;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

use crate::oidc::{InFlight, Rp, SignedIn};

const IN_FLIGHT: &str = "in_flight";
const SIGNED_IN: &str = "signed_in";

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    rp: Rp,
    views: Arc<Environment<'static>>,
}

pub fn router(rp: Rp) -> anyhow::Result<Router> {
    let mut env = Environment::new();
    // `.html` names: minijinja escapes every value.
    env.add_template("home.html", include_str!("../templates/home.html"))?;
    env.add_template("error.html", include_str!("../templates/error.html"))?;
    let app = App {
        rp,
        views: Arc::new(env),
    };
    // Its own cookie name: on a shared host (127.0.0.1) cookies do not
    // tell ports apart, and facegate's is `facegate_session`.
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_name("demo_rp_session")
        .with_secure(false)
        .with_same_site(SameSite::Lax);
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .layer(sessions)
        .with_state(app))
}

fn page(app: &App, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    match app.views.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering {name}");
            (StatusCode::INTERNAL_SERVER_ERROR, "page error").into_response()
        }
    }
}

fn error(app: &App, status: StatusCode, message: String) -> Response {
    tracing::warn!(%status, "{message}");
    page(app, status, "error.html", context! { message })
}

async fn home(State(app): State<App>, session: Session) -> Response {
    let user: Option<SignedIn> = session.get(SIGNED_IN).await.ok().flatten();
    page(&app, StatusCode::OK, "home.html", context! { user })
}

/// Starts a sign-in: remembers state, nonce and PKCE verifier, and sends
/// the browser to facegate.
async fn login(State(app): State<App>, session: Session) -> Response {
    let (url, flight) = match app.rp.start().await {
        Ok(s) => s,
        Err(e) => return error(&app, StatusCode::BAD_GATEWAY, e.to_string()),
    };
    if let Err(e) = session.insert(IN_FLIGHT, flight).await {
        return error(&app, StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    Redirect::to(&url).into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Where facegate sends the browser back: checks the state, exchanges the
/// code and keeps who signed in.
async fn callback(
    State(app): State<App>,
    session: Session,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let flight: Option<InFlight> = session.remove(IN_FLIGHT).await.ok().flatten();
    let Some(flight) = flight.filter(|f| q.state.as_deref() == Some(f.state.as_str())) else {
        let message = "This answer does not belong to a sign-in started here.".to_string();
        return error(&app, StatusCode::BAD_REQUEST, message);
    };
    if let Some(code) = q.error {
        let why = q.error_description.unwrap_or_default();
        let message = format!("facegate did not sign you in: {code} {why}");
        return error(&app, StatusCode::FORBIDDEN, message.trim_end().to_string());
    }
    let Some(code) = q.code else {
        return error(&app, StatusCode::BAD_REQUEST, "No code came back.".into());
    };
    let user = match app.rp.finish(flight, code).await {
        Ok(u) => u,
        Err(e) => return error(&app, StatusCode::BAD_GATEWAY, e.to_string()),
    };
    tracing::info!(sub = %user.sub, acr = ?user.acr, amr = ?user.amr, "signed in");
    // A new session id for the signed-in person (no fixation).
    if let Err(e) = session.cycle_id().await {
        return error(&app, StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    if let Err(e) = session.insert(SIGNED_IN, user).await {
        return error(&app, StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    Redirect::to("/").into_response()
}

/// Signs out of the demo only (the facegate session stays). A POST with a
/// `SameSite=Lax` cookie: another site cannot sign people out.
async fn logout(session: Session) -> Response {
    let _ = session.flush().await;
    Redirect::to("/").into_response()
}
