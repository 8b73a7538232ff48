//! The probe a face login is judged on: one face's embedding, the liveness
//! scores measured on the way (as JSON for the login attempt) and the image
//! it came from (kept only when probes are, see the retention module).
//! This module makes the probe of a single frame; a challenge answer's
//! probe comes from the liveness module.

use facegate_vision::{Embedding, RgbImage, VisionError};
use serde_json::json;

use super::attempt::Stop;
use super::error::ServiceError;
use super::metrics::Stage;
use super::services::Services;

/// A face ready for matching.
#[derive(Debug, Clone)]
pub struct Probe {
    pub embedding: Embedding,
    /// The liveness scores (JSON), when any were measured.
    pub liveness: Option<String>,
    /// The image the embedding comes from.
    pub image: Option<RgbImage>,
}

/// What a refused passive cue tells the person.
pub(super) const PASSIVE_REFUSAL: ServiceError = ServiceError::FaceRejected {
    code: "spoof",
    message: "This looks like a photo or a screen, not a live person.",
};

/// What a doubting passive cue (one that asks for a second step rather than
/// refusing, `[liveness_passive] net_action = "step_up"`) tells the person:
/// the next steps that can succeed.
pub(super) const STEP_UP: ServiceError = ServiceError::FaceRejected {
    code: "step_up",
    message: "We could not be sure this was a live camera picture. Try once more, facing the \
              camera in even light, or sign in with your password.",
};

/// The error a face login answers when the engine could not use a frame:
/// no face or several are refusals of the login (401), the rest are
/// errors about the image or ours.
pub(super) fn face_login_refusal(e: VisionError) -> Stop {
    let reason = e.code();
    match e {
        VisionError::NoFace => Stop::refused(
            reason,
            ServiceError::FaceRejected {
                code: "no_face",
                message: "No face was found in the picture.",
            },
        ),
        VisionError::MultipleFaces(_) => Stop::refused(
            reason,
            ServiceError::FaceRejected {
                code: "multiple_faces",
                message: "Several faces are in view; only one person, please.",
            },
        ),
        other => Stop::refused(reason, other.into()),
    }
}

impl Services {
    /// The probe of a single frame: decoded, its one face found and
    /// embedded, each stage timed; with `liveness = "passive"` its passive
    /// cues are measured (and counted), and a failing cue refuses it.
    /// `liveness` receives the scores, refused or not.
    pub(super) async fn frame_probe(
        &self,
        bytes: Vec<u8>,
        liveness: &mut Option<String>,
    ) -> Result<Probe, Stop> {
        let passive = (self.config.liveness == crate::config::Liveness::Passive)
            .then(|| self.config.liveness_passive.clone());
        let metrics = self.metrics.clone();
        let analysed = self
            .blocking(move |engine| {
                let image = metrics.time(Stage::Decode, || engine.decode(&bytes))?;
                let analysis = metrics.time(Stage::DetectEmbed, || {
                    engine.analyze_single_image(&image, false)
                })?;
                let Some(cfg) = passive else {
                    return Ok((analysis.embedding, image, None));
                };
                let scores = metrics.time(Stage::LivenessPassive, || {
                    engine.passive_scores(&image, &analysis.face)
                })?;
                Ok((analysis.embedding, image, Some((scores, cfg))))
            })
            .await?;
        let (embedding, image, passive) = analysed.map_err(face_login_refusal)?;
        if let Some((scores, cfg)) = passive {
            let (failing, doubt) = (scores.failing(&cfg), scores.doubt(&cfg));
            let outcome = match (failing, doubt) {
                (Some(cue), _) => format!("passive_{cue}"),
                (None, Some(cue)) => format!("step_up_{cue}"),
                (None, None) => "live".into(),
            };
            self.metrics.observe_liveness(&outcome);
            let doc = json!({"mode": "passive", "passive": [scores],
                "passive_failure": failing, "passive_doubt": doubt});
            *liveness = Some(doc.to_string());
            if let Some(cue) = failing {
                return Err(Stop::refused(
                    format!("spoof_passive_{cue}"),
                    PASSIVE_REFUSAL,
                ));
            }
            if let Some(cue) = doubt {
                return Err(Stop::refused(format!("step_up_passive_{cue}"), STEP_UP));
            }
        }
        Ok(Probe {
            embedding,
            liveness: liveness.clone(),
            image: Some(image),
        })
    }
}
