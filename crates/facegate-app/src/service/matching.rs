//! 1:N matching: the exhaustive ranking of a gallery's users and the
//! decision rule (best user at or above the threshold wins, unless the
//! runner-up is within the margin). The gallery itself, and its index for
//! large sizes, live in the gallery module.

use std::collections::HashMap;

use facegate_vision::cosine_similarity;

use crate::domain::MatchTemplate;

/// Each user's best similarity to `probe`, best first.
pub fn rank(templates: &[MatchTemplate], probe: &[f32]) -> Vec<(i64, f32)> {
    let mut best: HashMap<i64, f32> = HashMap::new();
    for t in templates {
        let s = cosine_similarity(&t.embedding, probe);
        best.entry(t.user_id)
            .and_modify(|b| *b = b.max(s))
            .or_insert(s);
    }
    let mut ranked: Vec<(i64, f32)> = best.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

/// The outcome of 1:N identification.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// One user clearly matched.
    Match { user_id: i64, score: f32 },
    /// The best two users are closer than the margin: refuse.
    Ambiguous {
        user_id: i64,
        score: f32,
        runner_up: f32,
    },
    /// Nobody reached the threshold; `closest` is the best user when it
    /// came within `band` below the threshold (that account is charged a
    /// failed attempt).
    NoMatch {
        closest: Option<(i64, f32)>,
        best: Option<f32>,
    },
}

/// Applies the threshold, margin and lockout band to a ranking.
pub fn decide(ranked: &[(i64, f32)], threshold: f32, margin: f32, band: f32) -> Decision {
    let Some(&(user_id, score)) = ranked.first() else {
        return Decision::NoMatch {
            closest: None,
            best: None,
        };
    };
    if score >= threshold {
        if let Some(&(_, runner_up)) = ranked.get(1) {
            if score - runner_up < margin {
                return Decision::Ambiguous {
                    user_id,
                    score,
                    runner_up,
                };
            }
        }
        return Decision::Match { user_id, score };
    }
    let closest = (score >= threshold - band).then_some((user_id, score));
    Decision::NoMatch {
        closest,
        best: Some(score),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user_id: i64, v: &[f32]) -> MatchTemplate {
        MatchTemplate {
            user_id,
            embedding: v.to_vec(),
        }
    }

    #[test]
    fn ranks_best_template_per_user() {
        let ts = [t(1, &[1.0, 0.0]), t(1, &[0.0, 1.0]), t(2, &[0.6, 0.8])];
        let r = rank(&ts, &[0.0, 1.0]);
        assert_eq!(r[0].0, 1);
        assert!((r[0].1 - 1.0).abs() < 1e-6);
        assert_eq!(r[1].0, 2);
        assert!((r[1].1 - 0.8).abs() < 1e-6);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn decisions() {
        assert_eq!(
            decide(&[], 0.5, 0.05, 0.1),
            Decision::NoMatch {
                closest: None,
                best: None
            }
        );
        assert_eq!(
            decide(&[(1, 0.9), (2, 0.3)], 0.5, 0.05, 0.1),
            Decision::Match {
                user_id: 1,
                score: 0.9
            }
        );
        assert!(matches!(
            decide(&[(1, 0.9), (2, 0.88)], 0.5, 0.05, 0.1),
            Decision::Ambiguous { user_id: 1, .. }
        ));
        assert_eq!(
            decide(&[(1, 0.45), (2, 0.3)], 0.5, 0.05, 0.1),
            Decision::NoMatch {
                closest: Some((1, 0.45)),
                best: Some(0.45)
            }
        );
        assert_eq!(
            decide(&[(1, 0.2)], 0.5, 0.05, 0.1),
            Decision::NoMatch {
                closest: None,
                best: Some(0.2)
            }
        );
    }
}
