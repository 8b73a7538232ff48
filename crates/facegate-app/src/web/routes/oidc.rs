//! The OpenID Connect pages a person's browser goes through: the
//! authorisation endpoint (which sends them to the existing login pages,
//! or through the face step when a client needs it, and comes back), the
//! consent page, and RP-initiated logout. A request waiting for a login
//! is kept in the session ([`Pending`]); the dashboard sends a person who
//! just logged in back to it ([`resume`]), and the login pages fill in its
//! `login_hint` ([`login_hint`]).

use axum::extract::{RawForm, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use time::OffsetDateTime;
use tower_sessions::Session;

use crate::config::FaceLoginMode;
use crate::domain::User;
use crate::service::oidc::{paths, AuthzError, AuthzRequest, Next, Pending};
use crate::web::extract::{CheckedForm, CsrfToken};
use crate::web::render::{error_page, render, server_error_page};
use crate::web::security::CSP;
use crate::web::session as sess;
use crate::web::state::AppState;

const PENDING: &str = "oidc_pending";
/// How long a login may take before the request it interrupted is dropped.
const PENDING_SECONDS: i64 = 600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::AUTHORIZE, get(authorize).post(authorize))
        .route(paths::CONSENT, post(consent))
        .route(paths::LOGOUT, get(logout))
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Where a person who just logged in goes on: the authorisation request
/// their login interrupted, if it is recent. A page that refreshes to it,
/// not a redirect: after the login form's POST, a browser would check a
/// redirect on to the client against the login page's `form-action`.
pub async fn resume(st: &AppState, session: &Session) -> Option<Response> {
    let pending: Pending = session.get(PENDING).await.ok().flatten()?;
    if now() - pending.started >= PENDING_SECONDS {
        return None;
    }
    let to = format!("{}?{}", paths::AUTHORIZE, pending.query);
    let ctx = context! { to => to, client_name => "the application" };
    Some(st.views.render("oidc_continue.html", ctx))
}

/// The `login_hint` of the authorisation request a login interrupted
/// (recent, as for [`resume`]): the login pages fill in the username with
/// it. Cut to the longest username.
pub async fn login_hint(session: &Session) -> Option<String> {
    let pending: Pending = session.get(PENDING).await.ok().flatten()?;
    if now() - pending.started >= PENDING_SECONDS {
        return None;
    }
    url::form_urlencoded::parse(pending.query.as_bytes())
        .find(|(k, _)| k == "login_hint")
        .map(|(_, v)| v.trim().chars().take(32).collect::<String>())
        .filter(|v| !v.is_empty())
}

fn error_response(st: &AppState, e: AuthzError) -> Response {
    match (&e, e.location()) {
        (_, Some(to)) => Redirect::to(&to).into_response(),
        (AuthzError::Page(m), _) => error_page(st, StatusCode::BAD_REQUEST, m),
        (_, None) => error_page(st, StatusCode::INTERNAL_SERVER_ERROR, "The server failed."),
    }
}

/// The logged-in user and how they authenticated.
async fn who(
    st: &AppState,
    session: &Session,
) -> Result<Option<(User, crate::domain::oidc::Authn)>, Response> {
    match sess::current_user(&st.services, session).await {
        Ok(Some(u)) => {
            let authn = sess::authn(session, u.id).await;
            Ok(Some((u, authn)))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(server_error_page(st, &e)),
    }
}

/// The authorisation endpoint, by GET (the query) or POST (the form), as
/// OpenID Connect Core §3.1.2.1 asks.
async fn authorize(
    State(st): State<AppState>,
    session: Session,
    RawForm(form): RawForm,
) -> Response {
    let query = String::from_utf8_lossy(&form).into_owned();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let req = match st.services.parse_authorize(&pairs).await {
        Ok(r) => r,
        Err(e) => return error_response(&st, e),
    };
    let pending: Option<Pending> = session.get(PENDING).await.ok().flatten();
    let started = pending
        .filter(|p| p.query == query && now() - p.started < PENDING_SECONDS)
        .map_or_else(now, |p| p.started);
    let who = match who(&st, &session).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let next = st
        .services
        .decide_authorize(&req, who.as_ref().map(|(u, a)| (u, a)), started)
        .await;
    let keep = Pending { query, started };
    match next {
        Ok(Next::Redirect(to)) => {
            let _ = session.remove::<Pending>(PENDING).await;
            Redirect::to(&to).into_response()
        }
        Ok(Next::Login { face }) => {
            if let Err(e) = session.insert(PENDING, &keep).await {
                return server_error_page(&st, &sess_error(e));
            }
            login(&st, &session, &req, who.map(|(u, _)| u), face).await
        }
        Ok(Next::Consent) => {
            if let Err(e) = session.insert(PENDING, &keep).await {
                return server_error_page(&st, &sess_error(e));
            }
            let Some((user, _)) = who else {
                return error_page(&st, StatusCode::BAD_REQUEST, "Log in first.");
            };
            consent_page(&st, &session, &user, &req).await
        }
        Err(e) => {
            let _ = session.remove::<Pending>(PENDING).await;
            error_response(&st, e)
        }
    }
}

fn sess_error(e: tower_sessions::session::Error) -> crate::service::ServiceError {
    crate::service::ServiceError::Internal(format!("session: {e}"))
}

/// Sends the person to log in, or through the face step (step-up).
async fn login(
    st: &AppState,
    session: &Session,
    req: &AuthzRequest,
    user: Option<User>,
    face: bool,
) -> Response {
    let second_factor = st.services.config.face_login == FaceLoginMode::SecondFactor;
    let to = match (face, user) {
        (true, Some(u)) if second_factor => {
            if let Err(e) = sess::set_pending(session, u.id).await {
                return server_error_page(st, &e);
            }
            "/face-login"
        }
        (true, _) if !second_factor => "/face-login",
        _ => "/login",
    };
    let text = if face {
        format!(
            "{} asks you to confirm who you are with your face.",
            req.client_name
        )
    } else {
        format!("Log in to continue to {}.", req.client_name)
    };
    sess::flash(session, "info", text).await;
    Redirect::to(to).into_response()
}

/// The consent page; its form may send the browser on to the client.
async fn consent_page(
    st: &AppState,
    session: &Session,
    user: &User,
    req: &AuthzRequest,
) -> Response {
    let mut wants = Vec::new();
    if req.scopes.iter().any(|s| s == "profile") {
        wants.push("username");
    }
    if req.scopes.iter().any(|s| s == "email") {
        wants.push("email address");
    }
    let extra = context! {
        title => format!("Sign in to {}", req.client_name),
        client_name => req.client_name.clone(),
        wants => wants.join(" and "),
    };
    let mut res = render(st, session, Some(user), "oidc_consent.html", extra).await;
    // The answer redirects to the client: let the form go there.
    let origin = url::Url::parse(&req.redirect_uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let csp = CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

#[derive(Deserialize)]
struct ConsentForm {
    #[serde(default)]
    csrf_token: String,
    decision: String,
}

impl CsrfToken for ConsentForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

async fn consent(
    State(st): State<AppState>,
    session: Session,
    CheckedForm(f): CheckedForm<ConsentForm>,
) -> Response {
    let pending: Option<Pending> = session.get(PENDING).await.ok().flatten();
    let Some(pending) = pending else {
        return error_page(
            &st,
            StatusCode::BAD_REQUEST,
            "There is no sign-in request to answer.",
        );
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(pending.query.as_bytes())
        .into_owned()
        .collect();
    let req = match st.services.parse_authorize(&pairs).await {
        Ok(r) => r,
        Err(e) => return error_response(&st, e),
    };
    let user = match sess::current_user(&st.services, &session).await {
        Ok(Some(u)) => u,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return server_error_page(&st, &e),
    };
    if f.decision != "allow" {
        let _ = session.remove::<Pending>(PENDING).await;
        let e = st
            .services
            .authorize_error(&req, "access_denied", "the person declined");
        return error_response(&st, e);
    }
    if let Err(e) = st.services.give_consent(&user, &req).await {
        return error_response(&st, e);
    }
    Redirect::to(&format!("{}?{}", paths::AUTHORIZE, pending.query)).into_response()
}

#[derive(Deserialize)]
struct LogoutQuery {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// RP-initiated logout: with an `id_token_hint` this provider signed for
/// the person of this session (or for nobody logged in), the session
/// ends and the browser goes to the client's registered
/// `post_logout_redirect_uri`; otherwise the person is asked.
async fn logout(
    State(st): State<AppState>,
    session: Session,
    axum::extract::Query(q): axum::extract::Query<LogoutQuery>,
) -> Response {
    let hint = match &q.id_token_hint {
        Some(h) => st.services.logout_hint(h).await.unwrap_or(None),
        None => None,
    };
    let current = sess::current_user(&st.services, &session)
        .await
        .ok()
        .flatten();
    let Some((client_id, _)) =
        hint.filter(|(_, sub)| current.as_ref().is_none_or(|u| u.id == *sub))
    else {
        let extra = context! {
            title => "Log out",
            message => "An application asked to log you out of facegate.",
        };
        return render(&st, &session, current.as_ref(), "oidc_logout.html", extra).await;
    };
    if let Err(e) = sess::log_out(&session).await {
        return server_error_page(&st, &e);
    }
    let client = st
        .services
        .store
        .oidc_client(&client_id)
        .await
        .ok()
        .flatten();
    let target = q
        .post_logout_redirect_uri
        .filter(|u| client.is_some_and(|c| c.post_logout_redirect_uris.contains(u)));
    match target.and_then(|u| url::Url::parse(&u).ok()) {
        Some(mut url) => {
            if let Some(s) = &q.state {
                url.query_pairs_mut().append_pair("state", s);
            }
            Redirect::to(url.as_str()).into_response()
        }
        None => {
            let extra =
                context! { title => "Logged out", message => "You are logged out of facegate." };
            render(&st, &session, None, "oidc_logout.html", extra).await
        }
    }
}
