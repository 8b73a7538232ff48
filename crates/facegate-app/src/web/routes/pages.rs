//! Public and dashboard pages: register, password login, face login,
//! logout and the dashboard. Forms carry the CSRF token as `csrf_token`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{context, Value};
use serde::Deserialize;
use tower_sessions::Session;

use crate::config::FaceLoginMode;
use crate::domain::User;
use crate::service::ServiceError;
use crate::web::client::ClientAddr;
use crate::web::error::{classify, user_message};
use crate::web::session::{self as sess};
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/register", get(register_page).post(register_submit))
        .route("/login", get(login_page).post(login_submit))
        .route("/face-login", get(face_login_page))
        .route("/logout", post(logout))
}

/// The user as templates see it.
pub fn user_value(u: &User) -> Value {
    context! { id => u.id, username => u.username, email => u.email, is_staff => u.is_staff }
}

/// Renders `name` with the common context (user, CSRF token, flash) plus `extra`.
pub async fn render(
    st: &AppState,
    session: &Session,
    user: Option<&User>,
    name: &str,
    extra: Value,
) -> Response {
    render_status(st, session, user, StatusCode::OK, name, extra).await
}

pub async fn render_status(
    st: &AppState,
    session: &Session,
    user: Option<&User>,
    status: StatusCode,
    name: &str,
    extra: Value,
) -> Response {
    let csrf = match sess::csrf_token(session).await {
        Ok(t) => t,
        Err(e) => return error_page(st, StatusCode::INTERNAL_SERVER_ERROR, &user_message(&e)),
    };
    let flash = sess::take_flash(session).await;
    let ctx = context! {
        user => user.map(user_value),
        csrf => csrf,
        flash => flash,
        mode => st.services.config.face_login.as_str(),
        ..extra
    };
    st.views.render_status(status, name, ctx)
}

/// A minimal error page (no session needed).
pub fn error_page(st: &AppState, status: StatusCode, message: &str) -> Response {
    st.views.render_status(
        status,
        "error.html",
        context! { title => status.canonical_reason().unwrap_or("Error"), message => message },
    )
}

/// Checks a form's CSRF token; the error page when wrong.
pub async fn check_form_csrf(
    st: &AppState,
    session: &Session,
    token: &str,
) -> Result<(), Response> {
    if sess::csrf_ok(session, Some(token)).await {
        Ok(())
    } else {
        Err(error_page(
            st,
            StatusCode::FORBIDDEN,
            "The form expired or was not sent from this site. Go back, reload and try again.",
        ))
    }
}

/// The logged-in user of a submitted form whose CSRF token is right; the
/// login redirect or the error page otherwise.
pub async fn form_user(st: &AppState, session: &Session, token: &str) -> Result<User, Response> {
    let user = page_user(st, session).await?;
    check_form_csrf(st, session, token).await?;
    Ok(user)
}

/// The logged-in user, or a redirect to the login page.
pub async fn page_user(st: &AppState, session: &Session) -> Result<User, Response> {
    match sess::current_user(&st.services, session).await {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(error_page(
            st,
            StatusCode::INTERNAL_SERVER_ERROR,
            &user_message(&e),
        )),
    }
}

async fn dashboard(State(st): State<AppState>, session: Session) -> Response {
    let user = match page_user(&st, &session).await {
        Ok(u) => u,
        Err(r) => return r,
    };
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
    Form(f): Form<RegisterForm>,
) -> Response {
    if let Err(r) = check_form_csrf(&st, &session, &f.csrf_token).await {
        return r;
    }
    let again = |error: String| {
        let extra = context! { title => "Register", error => error, username => f.username.clone(), email => f.email.clone() };
        (extra, StatusCode::BAD_REQUEST)
    };
    if f.password != f.password2 {
        let (extra, status) = again("The two passwords differ.".into());
        return render_status(&st, &session, None, status, "register.html", extra).await;
    }
    match st
        .services
        .register(&f.username, &f.email, &f.password, &client)
        .await
    {
        Ok(user) => match sess::log_in(&session, user.id).await {
            Ok(()) => Redirect::to("/").into_response(),
            Err(e) => error_page(&st, StatusCode::INTERNAL_SERVER_ERROR, &user_message(&e)),
        },
        Err(e) => {
            let (extra, status) = again(user_message(&e));
            // A full disk is the server's fault (5xx: the session is not
            // written either), not the form's; a rate limit is a 429.
            let status = if e.is_storage() || matches!(e, ServiceError::RateLimited) {
                classify(&e).0
            } else {
                status
            };
            render_status(&st, &session, None, status, "register.html", extra).await
        }
    }
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    username: String,
    password: String,
}

async fn login_page(State(st): State<AppState>, session: Session) -> Response {
    render(
        &st,
        &session,
        None,
        "login.html",
        context! { title => "Log in" },
    )
    .await
}

async fn login_submit(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    Form(f): Form<LoginForm>,
) -> Response {
    if let Err(r) = check_form_csrf(&st, &session, &f.csrf_token).await {
        return r;
    }
    match st
        .services
        .login_password(&f.username, &f.password, &client)
        .await
    {
        Ok(ok) if ok.face_required => match sess::set_pending(&session, ok.user.id).await {
            Ok(()) => Redirect::to("/face-login").into_response(),
            Err(e) => error_page(&st, StatusCode::INTERNAL_SERVER_ERROR, &user_message(&e)),
        },
        Ok(ok) => match sess::log_in(&session, ok.user.id).await {
            Ok(()) => Redirect::to("/").into_response(),
            Err(e) => error_page(&st, StatusCode::INTERNAL_SERVER_ERROR, &user_message(&e)),
        },
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
        interval => st.services.config.capture_interval_ms,
        liveness => st.services.config.liveness.as_str(),
    };
    render(&st, &session, None, "face_login.html", extra).await
}

/// A form that carries only the CSRF token (logout, delete buttons, admin actions).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf_token: String,
}

async fn logout(State(st): State<AppState>, session: Session, Form(f): Form<CsrfForm>) -> Response {
    if let Err(r) = check_form_csrf(&st, &session, &f.csrf_token).await {
        return r;
    }
    match sess::log_out(&session).await {
        Ok(()) => Redirect::to("/login").into_response(),
        Err(e) => error_page(&st, StatusCode::INTERNAL_SERVER_ERROR, &user_message(&e)),
    }
}
