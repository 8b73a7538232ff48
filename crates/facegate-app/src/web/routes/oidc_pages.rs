//! The OpenID Connect pages of facegate's own site: a person's connected
//! applications (consents they can withdraw) and the staff page of
//! registered clients (list, register — the secret shown once — and
//! remove).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::domain::oidc::Acr;
use crate::domain::User;
use crate::service::oidc::clients::ClientSpec;
use crate::web::error::{classify, user_message};
use crate::web::extract::{CheckedForm, CsrfToken, PageUser, StaffUser};
use crate::web::render::{fmt_time, render, render_status, server_error_page};
use crate::web::session as sess;
use crate::web::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/profile/applications", get(applications))
        .route("/profile/applications/revoke", post(disconnect))
        .route("/admin/oidc-clients", get(clients).post(add))
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
    clients_page(&st, &session, &user, StatusCode::OK, context! {}).await
}

/// The staff page of clients, with `extra` (a client just registered, or
/// the add form shown again with its error).
async fn clients_page(
    st: &AppState,
    session: &Session,
    user: &User,
    status: StatusCode,
    extra: minijinja::Value,
) -> Response {
    let clients = match st.services.store.oidc_clients().await {
        Ok(c) => c,
        Err(e) => return server_error_page(st, &e.into()),
    };
    let rows: Vec<_> = clients
        .iter()
        .map(|c| {
            context! { client_id => c.client_id, name => c.name, public => c.is_public(),
            first_party => c.first_party, redirect_uris => c.redirect_uris, min_acr => c.min_acr,
            created_at => fmt_time(c.created_at) }
        })
        .collect();
    let levels: Vec<&str> = Acr::ALL.iter().map(|a| a.as_str()).collect();
    let extra = context! { title => "OpenID Connect clients", active => "clients",
    clients => rows, levels => levels, ..extra };
    render_status(
        st,
        session,
        Some(user),
        status,
        "admin_oidc_clients.html",
        extra,
    )
    .await
}

/// The add form: a name, redirect URIs one per line, the kind.
#[derive(Deserialize, Serialize)]
struct AddClientForm {
    #[serde(default, skip_serializing)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    public: Option<String>,
    #[serde(default)]
    first_party: Option<String>,
    #[serde(default)]
    min_acr: String,
}

impl CsrfToken for AddClientForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Registers a client; the page shows its secret this once.
async fn add(
    State(st): State<AppState>,
    session: Session,
    StaffUser(user): StaffUser,
    CheckedForm(f): CheckedForm<AddClientForm>,
) -> Response {
    let spec = ClientSpec {
        name: f.name.clone(),
        redirect_uris: lines(&f.redirect_uris),
        post_logout_redirect_uris: lines(&f.post_logout_redirect_uris),
        public: f.public.is_some(),
        first_party: f.first_party.is_some(),
        min_acr: Some(f.min_acr.trim().to_string()).filter(|a| !a.is_empty()),
    };
    match st.services.register_client_by(&user, spec).await {
        Ok(c) => {
            let created = context! { client_id => c.client_id, client_secret => c.client_secret,
            name => f.name.trim() };
            clients_page(&st, &session, &user, StatusCode::OK, context! { created }).await
        }
        Err(e) => {
            let status = classify(&e).0;
            let extra = context! { error => user_message(&e), form => f };
            clients_page(&st, &session, &user, status, extra).await
        }
    }
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
