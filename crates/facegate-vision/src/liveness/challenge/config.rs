//! The thresholds of the active checks ([`super::judge`]), each with the
//! default that docs/LIVENESS.md gives and explains.

use serde::{Deserialize, Serialize};

/// Thresholds of the active checks. Every field has a documented default
/// (docs/LIVENESS.md) and may be set in the `[liveness_challenge]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChallengeConfig {
    /// Fewest frames accepted.
    pub min_frames: usize,
    /// Most frames accepted (the rest is refused before decoding).
    pub max_frames: usize,
    /// Smallest face looked for in a frame, in pixels (faster detection;
    /// the page asks the user to come close).
    pub min_face_px: f32,
    /// |yaw| in degrees that counts as a turn to the left or right.
    pub turn_yaw_deg: f32,
    /// Pitch change in degrees, above the start, that counts as `up`.
    pub up_pitch_deg: f32,
    /// Largest |yaw| and pitch change from the start that count as `center`.
    pub center_deg: f32,
    /// Frames in a row that must show a step's pose to complete it.
    pub hold_frames: usize,
    /// Shortest plausible time between two completed steps.
    pub min_step_ms: f64,
    /// Shortest and longest plausible gaps between two frames.
    pub min_frame_gap_ms: f64,
    pub max_frame_gap_ms: f64,
    /// Frames without a face tolerated (motion blur in a fast turn).
    pub max_faceless_frames: usize,
    /// Lowest cosine similarity of any embedded frame to the mean face of
    /// the other embedded frames at which the frames are surely one person.
    pub min_identity_similarity: f32,
    /// Below `min_identity_similarity` but at least this, the answer is
    /// unsure rather than refused: a live head turned far or blurred by a
    /// fast turn scores this low too (0.41-0.52 on the shared video), so
    /// the person is asked for a second challenge, where unsure refuses;
    /// below it the frames are not all the same person.
    pub doubt_identity_similarity: f32,
    /// Frames embedded for the identity check (0 embeds every frame):
    /// always every frame that completes a step (the frames a live head
    /// must produce), the first and last frames with a face and the most
    /// frontal one, then frames drawn at random by the server, unknown to
    /// the client, up to this many, and more where two frames in a row
    /// would be left out. Another face shown for a single frame that
    /// completes no step may go unseen (docs/LIVENESS.md).
    pub identity_frames: usize,
    /// Mean absolute difference of two thumbnails (grey levels) below which
    /// the frames are near-duplicates. A frame sent again differs by 0; a
    /// real webcam's consecutive frames of a person sitting still, even
    /// smoothed by a video codec, by 0.1 or more at 5 frames a second
    /// (0.6, the old default, refused such a person: docs/LIVENESS.md).
    pub duplicate_mad: f32,
    /// Longest run of consecutive near-duplicate pairs accepted.
    pub max_duplicate_run: usize,
    /// Pose change (degrees) that makes a pair of frames informative for
    /// the 3-D check.
    pub min_pose_change_deg: f32,
    /// Median planar residual (relative to the face's landmark spread) of
    /// the informative pairs below which the motion is that of a flat picture.
    pub min_planar_residual: f32,
    /// Median planar residual at or above which an answer under
    /// `min_planar_residual` is unsure rather than refused as flat: a real
    /// webcam user's small turns score 0.038-0.050 there (docs/LIVENESS.md,
    /// "A real webcam user"), so the person is asked for a second
    /// challenge, where unsure refuses; below it the motion is a picture's.
    pub doubt_planar_residual: f32,
    /// Share of the face's surroundings changed between two consecutive
    /// frames (the view moving as a whole is allowed for) at or above which
    /// the answer is unsure: photos swapped in front of the camera bring
    /// their own backgrounds (0.42-1 for the pose album), a live person at
    /// a webcam sits in one room (0.00-0.04 on a real recording). The
    /// person is asked for a second challenge and to keep the camera
    /// still; unsure again is refused (docs/LIVENESS.md, "Surroundings").
    pub doubt_surround_change: f32,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        ChallengeConfig {
            min_frames: 6,
            max_frames: 45,
            min_face_px: 80.0,
            turn_yaw_deg: 10.0,
            up_pitch_deg: 10.0,
            center_deg: 8.0,
            hold_frames: 1,
            min_step_ms: 150.0,
            min_frame_gap_ms: 20.0,
            max_frame_gap_ms: 2500.0,
            max_faceless_frames: 2,
            min_identity_similarity: 0.55,
            doubt_identity_similarity: 0.35,
            identity_frames: 7,
            duplicate_mad: 0.1,
            max_duplicate_run: 3,
            min_pose_change_deg: 8.0,
            min_planar_residual: 0.05,
            doubt_planar_residual: 0.035,
            doubt_surround_change: 0.3,
        }
    }
}

impl ChallengeConfig {
    /// Refuses thresholds that cannot work: a doubt band must lie under
    /// its sure threshold, and the share of changed surroundings be in
    /// (0, 1] (NaN or out of range would switch the check off unseen).
    pub fn check(&self) -> Result<(), String> {
        let bands = [
            (
                "doubt_identity_similarity",
                self.doubt_identity_similarity,
                "min_identity_similarity",
                self.min_identity_similarity,
            ),
            (
                "doubt_planar_residual",
                self.doubt_planar_residual,
                "min_planar_residual",
                self.min_planar_residual,
            ),
        ];
        for (doubt_name, doubt, sure_name, sure) in bands {
            if !(doubt.is_finite() && sure.is_finite() && doubt <= sure) {
                return Err(format!(
                    "liveness_challenge.{doubt_name} must be a number no greater than \
                     liveness_challenge.{sure_name}"
                ));
            }
        }
        let share = self.doubt_surround_change;
        if !(share > 0.0 && share <= 1.0) {
            return Err(
                "liveness_challenge.doubt_surround_change must be a share above 0 and at most 1"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_impossible_doubts_are_named() {
        assert_eq!(ChallengeConfig::default().check(), Ok(()));
        for bad in [
            ChallengeConfig {
                doubt_surround_change: f32::NAN,
                ..ChallengeConfig::default()
            },
            ChallengeConfig {
                doubt_surround_change: 1.5,
                ..ChallengeConfig::default()
            },
        ] {
            let e = bad.check().unwrap_err();
            assert!(e.contains("doubt_surround_change"), "{e}");
        }
        let above = ChallengeConfig {
            doubt_planar_residual: 0.2,
            ..ChallengeConfig::default()
        };
        assert!(above.check().unwrap_err().contains("doubt_planar_residual"));
        let nan = ChallengeConfig {
            doubt_identity_similarity: f32::NAN,
            ..ChallengeConfig::default()
        };
        assert!(nan
            .check()
            .unwrap_err()
            .contains("doubt_identity_similarity"));
    }
}
