//! Liveness challenge endpoints of the JSON API:
//! `POST /api/face-login/challenge` issues a challenge bound to the session
//! (kept in the store, its id in the session);
//! `POST /api/face-login/challenge/{id}/frames` takes the answer (multipart:
//! repeated `frame` JPEG parts in capture order, one `timestamps` part with a
//! JSON array of milliseconds, `username` in verify mode).

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::routing::{post, MethodRouter};
use axum::Json;
use serde_json::{json, Value};
use tower_sessions::Session;

use crate::domain::claimed_username;
use crate::service::{
    ChallengeAnswer, FaceLoginRequest, IssuedChallenge, ProbeInput, ServiceError, MAX_FRAME_BYTES,
};
use crate::web::client::ClientAddr;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::ApiMultipart;
use crate::web::session as sess;
use crate::web::state::AppState;
use crate::web::upload::multipart_error;

const CHALLENGE: &str = "liveness_challenge_id";
/// Set when the session's last answer was stepped up: its next challenge
/// is the second chance.
const SECOND_CHANCE: &str = "liveness_second_chance";

pub fn issue_route() -> MethodRouter<AppState> {
    post(issue)
}

/// The frames route, with a body limit sized for `max_frames` frames.
pub fn frames_route(max_frames: usize) -> MethodRouter<AppState> {
    post(frames).layer(DefaultBodyLimit::max(
        max_frames.saturating_mul(MAX_FRAME_BYTES) + 64 * 1024,
    ))
}

fn internal(e: tower_sessions::session::Error) -> ApiError {
    ServiceError::Internal(format!("session: {e}")).into()
}

async fn issue(State(st): State<AppState>, session: Session) -> ApiResult<Json<Value>> {
    let second = session
        .remove::<bool>(SECOND_CHANCE)
        .await
        .map_err(internal)?
        .unwrap_or(false);
    let ch = st.services.issue_challenge(second).await?;
    session.insert(CHALLENGE, &ch.id).await.map_err(internal)?;
    let cfg = &st.services.config;
    Ok(Json(json!({
        "challenge_id": ch.id,
        "steps": ch.steps,
        "expires_in_ms": cfg.challenge_ttl_ms,
        "min_frames": cfg.liveness_challenge.min_frames,
        "second_chance": ch.second,
    })))
}

/// Everything cheap is checked before anything is decoded: the challenge
/// (known, this session's, not expired) and the address's rate limit before
/// the body is read, then each frame's count, size and header dimensions as
/// it arrives; the service decodes the frames one at a time.
async fn frames(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    Path(id): Path<String>,
    ApiMultipart(mp): ApiMultipart,
) -> ApiResult<Json<Value>> {
    let ch = take_challenge(&st, &session, &id).await?;
    st.services.admit_answer(&ch, &client).await?;
    let (answer, username) = read_answer(&st, mp).await?;
    let req = FaceLoginRequest {
        username,
        pending_user: sess::pending(&session).await,
        input: ProbeInput::Challenge(ch, answer),
    };
    let ok = match st.services.face_login(req, &client).await {
        Ok(ok) => ok,
        Err(e) => {
            if matches!(
                e,
                ServiceError::FaceRejected {
                    code: "step_up",
                    ..
                }
            ) {
                session
                    .insert(SECOND_CHANCE, true)
                    .await
                    .map_err(internal)?;
            }
            return Err(e.into());
        }
    };
    let face = sess::Method::Face { liveness: true };
    sess::log_in(&session, &ok.user, face).await?;
    let notice = sess::notice_face_added(&st.services, &session, &ok.user, face).await;
    Ok(Json(
        json!({"id": ok.user.id, "username": ok.user.username, "score": ok.score, "notice": notice}),
    ))
}

/// The session's challenge if it is the one answered. Single use: the
/// challenge leaves the store in one atomic step whatever happens next, so
/// of concurrent answers (on any instance) only one is judged.
async fn take_challenge(st: &AppState, session: &Session, id: &str) -> ApiResult<IssuedChallenge> {
    let issued: Option<String> = session.get(CHALLENGE).await.map_err(internal)?;
    let taken = match issued {
        Some(issued) if issued == id => st.services.take_challenge(id).await?,
        _ => None,
    };
    if taken.is_some() {
        session
            .remove::<String>(CHALLENGE)
            .await
            .map_err(internal)?;
    }
    taken.ok_or_else(|| {
        ServiceError::FaceRejected {
            code: "expired",
            message: "This challenge is unknown, used or expired. Please start again.",
        }
        .into()
    })
}

/// Reads the answer's parts, refusing each frame past the count or size
/// limit, or whose header is refused, before the next one is read; then
/// checks one timestamp per frame. Returns the claimed username too.
async fn read_answer(
    st: &AppState,
    mut mp: Multipart,
) -> ApiResult<(ChallengeAnswer, Option<String>)> {
    let max_frames = st.services.config.liveness_challenge.max_frames;
    let mut answer = ChallengeAnswer::default();
    let mut username = None;
    let mut timestamps: Option<String> = None;
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "frame" => {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                if bytes.len() > MAX_FRAME_BYTES || answer.frames.len() >= max_frames {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!(
                            "At most {max_frames} frames of {} KB each.",
                            MAX_FRAME_BYTES / 1024
                        ),
                    ));
                }
                st.services.admit_frame(&bytes)?;
                answer.frames.push(bytes.to_vec());
            }
            "timestamps" => timestamps = Some(field.text().await.map_err(multipart_error)?),
            "username" => {
                let u = field.text().await.map_err(multipart_error)?;
                username = claimed_username(&u).map_err(ServiceError::from)?;
            }
            _ => {}
        }
    }
    answer.timestamps =
        serde_json::from_str(timestamps.as_deref().unwrap_or("null")).map_err(|_| {
            ApiError::bad_request("Send `timestamps`: a JSON array of milliseconds, one per frame.")
        })?;
    if answer.timestamps.len() != answer.frames.len() {
        return Err(ApiError::bad_request(
            "Send one timestamp per frame, in capture order.",
        ));
    }
    Ok((answer, username))
}
