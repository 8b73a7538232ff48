//! The OpenID Connect pages of facegate's own site: a person's connected
//! applications (consents they can withdraw) and the staff list of
//! registered clients.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use tower_sessions::Session;

use crate::web::extract::{CheckedForm, CsrfToken, PageUser, StaffUser};
use crate::web::render::{fmt_time, render, server_error_page};
use crate::web::session as sess;
use crate::web::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/profile/applications", get(applications))
        .route("/profile/applications/revoke", post(disconnect))
        .route("/admin/oidc-clients", get(clients))
        .route("/admin/oidc-clients/remove", post(remove))
}

#[derive(Deserialize)]
struct ClientForm {
    #[serde(default)]
    csrf_token: String,
    client_id: String,
}

impl CsrfToken for ClientForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

async fn applications(
    State(st): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> Response {
    let consents = match st.services.consents(&user).await {
        Ok(c) => c,
        Err(e) => return server_error_page(&st, &e),
    };
    let rows: Vec<_> = consents
        .iter()
        .map(|c| context! { client_id => c.client_id, client_name => c.client_name, scope => c.scope, granted_at => fmt_time(c.granted_at) })
        .collect();
    let extra =
        context! { title => "Connected applications", active => "applications", consents => rows };
    render(&st, &session, Some(&user), "oidc_applications.html", extra).await
}

async fn disconnect(
    State(st): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
    CheckedForm(f): CheckedForm<ClientForm>,
) -> Response {
    match st.services.withdraw_consent(&user, &f.client_id).await {
        Ok(()) => sess::flash(&session, "success", "The application is disconnected.").await,
        Err(e) => sess::flash(&session, "danger", e.to_string()).await,
    }
    Redirect::to("/profile/applications").into_response()
}

async fn clients(
    State(st): State<AppState>,
    session: Session,
    StaffUser(user): StaffUser,
) -> Response {
    let clients = match st.services.store.oidc_clients().await {
        Ok(c) => c,
        Err(e) => return server_error_page(&st, &e.into()),
    };
    let rows: Vec<_> = clients
        .iter()
        .map(|c| {
            context! { client_id => c.client_id, name => c.name, public => c.is_public(),
            first_party => c.first_party, redirect_uris => c.redirect_uris, min_acr => c.min_acr,
            created_at => fmt_time(c.created_at) }
        })
        .collect();
    let extra =
        context! { title => "OpenID Connect clients", active => "clients", clients => rows };
    render(&st, &session, Some(&user), "admin_oidc_clients.html", extra).await
}

async fn remove(
    State(st): State<AppState>,
    session: Session,
    StaffUser(user): StaffUser,
    CheckedForm(f): CheckedForm<ClientForm>,
) -> Response {
    match st.services.remove_client_by(&user, &f.client_id).await {
        Ok(()) => sess::flash(&session, "success", "The client is removed.").await,
        Err(e) => sess::flash(&session, "danger", e.to_string()).await,
    }
    Redirect::to("/admin/oidc-clients").into_response()
}
