//! The JSON API under `/api`. State-changing requests need the
//! `X-CSRF-Token` header; errors are `{"error": CODE, "message": TEXT}`.

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use tower_sessions::Session;

use crate::config::Config;
use crate::service::{FaceLoginRequest, ProbeInput, ServiceError};
use crate::web::client::ClientAddr;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::ApiMultipart;
use crate::web::openapi;
use crate::web::session::{self as sess};
use crate::web::state::{AppState, MULTIPART_OVERHEAD};
use crate::web::upload::read_upload;

/// Every API endpoint of a server configured with `config`: method, path,
/// handler. The liveness challenge is routed only when the policy uses it
/// (`liveness` is `active` or `both`). The router and the OpenAPI sync test
/// both read this list.
pub fn endpoints(config: &Config) -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    let one_image = DefaultBodyLimit::max(config.engine.decode.max_bytes + MULTIPART_OVERHEAD);
    let mut list = vec![
        (Method::GET, "/api/csrf", get(csrf)),
        (Method::GET, "/api/openapi.json", get(openapi_doc)),
        (Method::POST, "/api/register", post(register)),
        (Method::POST, "/api/login", post(login)),
        (Method::POST, "/api/logout", post(logout)),
        (Method::GET, "/api/me", get(me)),
        (Method::DELETE, "/api/me", delete(delete_me)),
        (Method::GET, "/api/me/export", get(export_me)),
        (Method::POST, "/api/me/reauth", post(reauth)),
        (Method::GET, "/api/me/faces", get(list_faces)),
        (
            Method::POST,
            "/api/me/faces",
            post(add_face).layer(one_image),
        ),
        (Method::DELETE, "/api/me/faces/{id}", delete(delete_face)),
        (
            Method::POST,
            "/api/face-login",
            post(face_login).layer(one_image),
        ),
    ];
    if config.liveness.active() {
        let max_frames = config.liveness_challenge.max_frames;
        list.push((
            Method::POST,
            "/api/face-login/challenge",
            super::liveness::issue_route(),
        ));
        list.push((
            Method::POST,
            "/api/face-login/challenge/{id}/frames",
            super::liveness::frames_route(max_frames),
        ));
    }
    list
}

pub fn router(config: &Config) -> Router<AppState> {
    let mut r = Router::new();
    for (_, path, handler) in endpoints(config) {
        r = r.route(path, handler);
    }
    r.layer(axum::middleware::from_fn(csrf_guard))
}

/// Refuses state-changing requests without the session's CSRF token.
async fn csrf_guard(session: Session, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let provided = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        match sess::csrf_ok(&session, provided).await {
            Ok(true) => {}
            Ok(false) => return ApiError::csrf().into_response(),
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    next.run(req).await
}

async fn csrf(session: Session) -> ApiResult<Json<Value>> {
    let token = sess::csrf_token(&session).await?;
    Ok(Json(json!({ "csrf_token": token })))
}

async fn openapi_doc(State(st): State<AppState>) -> Json<Value> {
    Json(openapi::document(&st.services.config))
}

#[derive(Deserialize)]
struct RegisterBody {
    username: String,
    email: String,
    password: String,
}

async fn register(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    Json(body): Json<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = st
        .services
        .register(&body.username, &body.email, &body.password, &client)
        .await?;
    sess::log_in(&session, &user, sess::Method::Password).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": user.id, "username": user.username})),
    ))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    Json(body): Json<LoginBody>,
) -> ApiResult<Json<Value>> {
    let ok = st
        .services
        .login_password(&body.username, &body.password, &client)
        .await?;
    let password = sess::Method::Password;
    let mut notice = None;
    if ok.face_required {
        sess::set_pending(&session, ok.user.id).await?;
    } else {
        sess::log_in(&session, &ok.user, password).await?;
        notice = sess::notice_face_added(&st.services, &session, &ok.user, password).await;
    }
    Ok(Json(json!({
        "id": ok.user.id,
        "username": ok.user.username,
        "face_required": ok.face_required,
        "notice": notice,
    })))
}

async fn logout(session: Session) -> ApiResult<StatusCode> {
    sess::log_out(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ReauthBody {
    password: String,
}

/// Confirms the logged-in user's password: the session counts as freshly
/// authenticated for `reauth_seconds` (adding a face, changing the
/// e-mail). Counted and limited as a password login.
async fn reauth(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    Json(body): Json<ReauthBody>,
) -> ApiResult<StatusCode> {
    let user = sess::require_user(&st.services, &session).await?;
    st.services
        .confirm_password(&user, &body.password, &client)
        .await?;
    sess::reauthenticated(&session, user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(st): State<AppState>, session: Session) -> ApiResult<Json<Value>> {
    let user = sess::require_user(&st.services, &session).await?;
    let faces = st.services.faces(user.id).await?.len();
    Ok(Json(json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "faces": faces,
        "is_staff": user.is_staff,
    })))
}

/// All of the user's data, photos as base64 JPEG.
async fn export_me(State(st): State<AppState>, session: Session) -> ApiResult<Response> {
    use base64::Engine as _;
    let user = sess::require_user(&st.services, &session).await?;
    let export = st.services.export_user(&user).await?;
    let mut doc = serde_json::to_value(&export)
        .map_err(|e| ServiceError::Internal(format!("export: {e}")))?;
    if let Some(faces) = doc["faces"].as_array_mut() {
        for (v, f) in faces.iter_mut().zip(&export.faces) {
            v["image_jpeg_base64"] =
                Value::String(base64::engine::general_purpose::STANDARD.encode(&f.jpeg));
        }
    }
    let name = format!("attachment; filename=\"facegate-{}.json\"", export.username);
    Ok(([(axum::http::header::CONTENT_DISPOSITION, name)], Json(doc)).into_response())
}

#[derive(Deserialize)]
struct DeleteMeBody {
    password: String,
}

/// Erases the account and all its biometric data; the password confirms.
async fn delete_me(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    Json(body): Json<DeleteMeBody>,
) -> ApiResult<StatusCode> {
    let user = sess::require_user(&st.services, &session).await?;
    if !st.services.check_password(&user, &body.password).await? {
        return Err(ServiceError::InvalidCredentials.into());
    }
    st.services
        .delete_account(&user, &user, Some(&client))
        .await?;
    sess::log_out(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn created(t: &time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

async fn list_faces(State(st): State<AppState>, session: Session) -> ApiResult<Json<Value>> {
    let user = sess::require_user(&st.services, &session).await?;
    let faces: Vec<Value> = st
        .services
        .faces(user.id)
        .await?
        .iter()
        .map(|t| json!({"id": t.id, "quality": t.quality, "created": created(&t.created_at)}))
        .collect();
    Ok(Json(json!({ "faces": faces })))
}

async fn add_face(
    State(st): State<AppState>,
    session: Session,
    ApiMultipart(mp): ApiMultipart,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = sess::require_user(&st.services, &session).await?;
    // A stolen session must not add a face (a backdoor that outlives a
    // password change): checked before the body is read.
    sess::require_fresh(&st.services, &session, user.id).await?;
    let max = st.services.config.engine.decode.max_bytes;
    let mut up = read_upload(mp, max, 1).await?;
    let image = up
        .images
        .pop()
        .ok_or_else(|| ApiError::bad_request("Send the photo in the multipart field `image`."))?;
    let t = st.services.enrol(&user, image).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": t.id, "quality": t.quality})),
    ))
}

async fn delete_face(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let user = sess::require_user(&st.services, &session).await?;
    let t = st.services.face_for(&user, id).await?;
    if t.user_id != user.id {
        return Err(ServiceError::NotFound.into());
    }
    st.services.delete_face(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn face_login(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    ApiMultipart(mp): ApiMultipart,
) -> ApiResult<Json<Value>> {
    let max = st.services.config.engine.decode.max_bytes;
    let mut up = read_upload(mp, max, 1).await?;
    let username = up.field("username").map(str::to_string);
    let image = up
        .images
        .pop()
        .ok_or_else(|| ApiError::bad_request("Send the photo in the multipart field `image`."))?;
    let req = FaceLoginRequest {
        username,
        pending_user: sess::pending(&session).await,
        input: ProbeInput::Frame(image),
    };
    let ok = st.services.face_login(req, &client).await?;
    let face = sess::Method::Face { liveness: false };
    sess::log_in(&session, &ok.user, face).await?;
    let notice = sess::notice_face_added(&st.services, &session, &ok.user, face).await;
    Ok(Json(
        json!({"id": ok.user.id, "username": ok.user.username, "score": ok.score, "notice": notice}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Liveness;
    use crate::web::openapi::{document, operations};

    #[test]
    fn document_matches_the_router_endpoints() {
        for liveness in [
            Liveness::Off,
            Liveness::Passive,
            Liveness::Active,
            Liveness::Both,
        ] {
            let config = Config {
                liveness,
                ..Config::default()
            };
            let mut routed: Vec<(String, String)> = endpoints(&config)
                .into_iter()
                .map(|(m, p, _)| (m.to_string(), p.to_string()))
                .collect();
            routed.sort();
            assert_eq!(operations(&document(&config)), routed);
            let challenge = routed.iter().any(|(_, p)| p.contains("challenge"));
            assert_eq!(challenge, liveness.active(), "{liveness:?}");
        }
    }
}
