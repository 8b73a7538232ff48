//! 1:N matching: the exhaustive ranking of a gallery's users and the
//! decision rule (best user at or above the threshold wins, unless the
//! runner-up is within the margin). The gallery itself, and its index for
//! large sizes, live in the gallery module.

use facegate_vision::CosineProbe;

use crate::domain::MatchTemplate;

/// Users a ranking keeps: the decision reads the best two, enrolment the
/// best one besides the person enrolling; the rest is a margin.
pub const RANKED_USERS: usize = 8;

/// The [`RANKED_USERS`] users whose best template is nearest to `probe`,
/// each with that template's similarity, best first (ties: the lower id).
/// One pass that keeps only those: a user whose best template is among
/// them is nearer than the last kept one when it comes, so it is taken.
pub fn rank(templates: &[MatchTemplate], probe: &[f32]) -> Vec<(i64, f32)> {
    let probe = CosineProbe::new(probe);
    let mut top: Vec<(i64, f32)> = Vec::with_capacity(RANKED_USERS + 1);
    for t in templates {
        let entry = (t.user_id, probe.similarity(&t.embedding));
        if top.len() == RANKED_USERS && nearer_first(&entry, &top[RANKED_USERS - 1]).is_ge() {
            continue;
        }
        match top.iter_mut().find(|e| e.0 == entry.0) {
            Some(kept) => kept.1 = kept.1.max(entry.1),
            None => top.push(entry),
        }
        top.sort_by(nearer_first);
        top.truncate(RANKED_USERS);
    }
    top
}

/// The order of a ranking: higher similarity first, then the lower id.
pub(crate) fn nearer_first(a: &(i64, f32), b: &(i64, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
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

    /// Against every user's best template, found the long way: the same
    /// first users in the same order, with several templates per user,
    /// users scattered through the gallery and equal scores (the lower id
    /// first).
    #[test]
    fn keeps_the_nearest_users_in_order() {
        use std::collections::HashMap;
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5
        };
        for round in 0..50 {
            let ts: Vec<MatchTemplate> = (0..200)
                .map(|i| {
                    let user = ((next() + 0.5) * 40.0) as i64;
                    // Every 10th template copies an earlier one: equal scores.
                    if i % 10 == 9 {
                        return t(user, &[1.0, 0.5, -0.25]);
                    }
                    t(user, &[next(), next(), next()])
                })
                .collect();
            let probe = [next(), next(), next()];
            let mut best: HashMap<i64, f32> = HashMap::new();
            for x in &ts {
                let s = facegate_vision::cosine_similarity(&x.embedding, &probe);
                let b = best.entry(x.user_id).or_insert(s);
                *b = b.max(s);
            }
            let mut want: Vec<(i64, f32)> = best.into_iter().collect();
            want.sort_by(nearer_first);
            want.truncate(RANKED_USERS);
            assert_eq!(rank(&ts, &probe), want, "round {round}");
        }
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
