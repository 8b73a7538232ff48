//! Public and dashboard pages: register, password login, face login,
//! logout and the dashboard. Forms carry the CSRF token as `csrf_token`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;
use tower_sessions::Session;

use crate::config::FaceLoginMode;
use crate::service::ServiceError;
use crate::web::client::ClientAddr;
use crate::web::error::{classify, user_message};
use crate::web::extract::{CheckedForm, CsrfForm, CsrfToken, PageUser};
use crate::web::render::{render, render_status, server_error_page};
use crate::web::session::{self as sess};
use crate::web::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/register", get(register_page).post(register_submit))
        .route("/login", get(login_page).post(login_submit))
        .route("/face-login", get(face_login_page))
        .route("/logout", post(logout))
}

async fn dashboard(
    State(st): State<AppState>,
    session: Session,
    PageUser(user): PageUser,
) -> Response {
    // A login an OpenID Connect client started goes back to it.
    if let Some(page) = crate::web::routes::oidc::resume(&st, &session).await {
        return page;
    }
    let faces = st
        .services
        .faces(user.id)
        .await
        .map(|f| f.len())
        .unwrap_or(0);
    render(
        &st,
        &session,
        Some(&user),
        "dashboard.html",
        context! { title => "Dashboard", active => "dashboard", faces => faces },
    )
    .await
}

#[derive(Deserialize)]
struct RegisterForm {
    #[serde(default)]
    csrf_token: String,
    username: String,
    email: String,
    password: String,
    password2: String,
}

impl CsrfToken for RegisterForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

async fn register_page(State(st): State<AppState>, session: Session) -> Response {
    render(
        &st,
        &session,
        None,
        "register.html",
        context! { title => "Register" },
    )
    .await
}

async fn register_submit(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    CheckedForm(f): CheckedForm<RegisterForm>,
) -> Response {
    let again = |error: String| {
        context! { title => "Register", error => error, username => f.username.clone(), email => f.email.clone() }
    };
    if f.password != f.password2 {
        let extra = again("The two passwords differ.".into());
        let status = StatusCode::BAD_REQUEST;
        return render_status(&st, &session, None, status, "register.html", extra).await;
    }
    match st
        .services
        .register(&f.username, &f.email, &f.password, &client)
        .await
    {
        Ok(user) => {
            let written = sess::log_in(&session, &user, sess::Method::Password).await;
            if written.is_ok() {
                let text = format!(
                    "Welcome, {}! Your account was created. Add a photo of your face on the profile page to log in with your face.",
                    user.username
                );
                sess::flash(&session, "success", text).await;
            }
            redirect_after(&st, written, "/")
        }
        Err(e) => {
            // A full disk is the server's fault (5xx: the session is not
            // written either), not the form's; a rate limit is a 429.
            let status = if e.is_storage() || matches!(e, ServiceError::RateLimited) {
                classify(&e).0
            } else {
                StatusCode::BAD_REQUEST
            };
            let extra = again(user_message(&e));
            render_status(&st, &session, None, status, "register.html", extra).await
        }
    }
}

/// The redirect to `to` once the session change was saved, else the error page.
fn redirect_after(st: &AppState, written: Result<(), ServiceError>, to: &str) -> Response {
    match written {
        Ok(()) => Redirect::to(to).into_response(),
        Err(e) => server_error_page(st, &e),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    username: String,
    password: String,
}

impl CsrfToken for LoginForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

async fn login_page(State(st): State<AppState>, session: Session) -> Response {
    // An application that knows who is coming names them (`login_hint`).
    let username = crate::web::routes::oidc::login_hint(&session).await;
    let extra = context! { title => "Log in", username => username };
    render(&st, &session, None, "login.html", extra).await
}

async fn login_submit(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    CheckedForm(f): CheckedForm<LoginForm>,
) -> Response {
    match st
        .services
        .login_password(&f.username, &f.password, &client)
        .await
    {
        Ok(ok) if ok.face_required => {
            let written = sess::set_pending(&session, ok.user.id).await;
            redirect_after(&st, written, "/face-login")
        }
        Ok(ok) => {
            let password = sess::Method::Password;
            let written = sess::log_in(&session, &ok.user, password).await;
            if written.is_ok() {
                sess::notice_face_added(&st.services, &session, &ok.user, password).await;
            }
            redirect_after(&st, written, "/")
        }
        Err(e) => {
            let status = match e {
                ServiceError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let extra =
                context! { title => "Log in", error => user_message(&e), username => f.username };
            render_status(&st, &session, None, status, "login.html", extra).await
        }
    }
}

async fn face_login_page(State(st): State<AppState>, session: Session) -> Response {
    let mode = st.services.config.face_login;
    if mode == FaceLoginMode::SecondFactor && sess::pending(&session).await.is_none() {
        sess::flash(
            &session,
            "info",
            "Log in with your password first; then your face is checked.",
        )
        .await;
        return Redirect::to("/login").into_response();
    }
    let extra = context! {
        title => "Face login",
        username => crate::web::routes::oidc::login_hint(&session).await,
        interval => st.services.config.capture_interval_ms,
        liveness => st.services.config.liveness.as_str(),
    };
    render(&st, &session, None, "face_login.html", extra).await
}

async fn logout(
    State(st): State<AppState>,
    session: Session,
    CheckedForm(_): CheckedForm<CsrfForm>,
) -> Response {
    let written = sess::log_out(&session).await;
    if written.is_ok() {
        sess::flash(&session, "success", "You are logged out. See you soon!").await;
    }
    redirect_after(&st, written, "/login")
}
