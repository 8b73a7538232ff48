//! The SQLite backend's in-process state ([`Local`]) and its rate limits: sliding windows in the memory of
//! the one process that owns the database (its start lock), so counting a
//! hit writes nothing to disk. A limit of 0 turns a limit off.
//!
//! Refusals are reported in aggregate: the first refusal of a key in a
//! window says so ([`RateHit::Refused`] with `report`), carrying how many
//! refusals it stands for; the others of that window are only counted. So a
//! client hammering a limit causes at most one audit record per window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::shared::RateHit;

/// The in-process state of an SQLite backend: its rate limits, and when
/// each periodic job last ran.
#[derive(Default, Debug)]
pub struct Local {
    pub limits: LocalLimits,
    pub periodic: Mutex<HashMap<String, Instant>>,
}

/// One key's recent hits and its refusals not yet reported.
#[derive(Default)]
struct Window {
    hits: VecDeque<Instant>,
    unreported: u64,
    last_report: Option<Instant>,
}

/// Every key's window.
#[derive(Default)]
pub struct LocalLimits {
    keys: Mutex<HashMap<String, Window>>,
}

impl std::fmt::Debug for LocalLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalLimits")
    }
}

impl LocalLimits {
    /// Records a hit for `key` unless `limit` were recorded within
    /// `window` (a refused hit does not count towards the limit).
    pub fn hit(&self, key: &str, limit: u32, window: Duration) -> RateHit {
        self.hit_at(key, limit, window, Instant::now())
    }

    /// Whether `limit` hits of `key` were recorded within `window`
    /// (never with a limit of 0); records nothing.
    pub fn full(&self, key: &str, limit: u32, window: Duration) -> bool {
        if limit == 0 {
            return false;
        }
        let now = Instant::now();
        let map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let recent = map.get(key).map_or(0, |w| {
            w.hits
                .iter()
                .filter(|t| now.duration_since(**t) < window)
                .count()
        });
        recent >= limit as usize
    }

    /// Forgets the keys not hit within the last `age`.
    pub fn forget_older_than(&self, age: Duration) {
        let now = Instant::now();
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, w| {
            let recent = |t: &Instant| now.duration_since(*t) < age;
            w.hits.back().is_some_and(recent) || w.last_report.as_ref().is_some_and(recent)
        });
    }

    fn hit_at(&self, key: &str, limit: u32, window: Duration, now: Instant) -> RateHit {
        if limit == 0 {
            return RateHit::Allowed;
        }
        let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, w| {
                w.hits
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let w = map.entry(key.to_string()).or_default();
        while w
            .hits
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            w.hits.pop_front();
        }
        if w.hits.len() < limit as usize {
            w.hits.push_back(now);
            return RateHit::Allowed;
        }
        w.unreported += 1;
        let due = w
            .last_report
            .is_none_or(|t| now.duration_since(t) >= window);
        if !due {
            return RateHit::Refused { report: None };
        }
        w.last_report = Some(now);
        let n = std::mem::take(&mut w.unreported);
        RateHit::Refused { report: Some(n) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn limits_within_the_window() {
        let l = LocalLimits::default();
        let t = Instant::now();
        assert!(l.hit_at("a", 3, MINUTE, t).allowed());
        assert!(l.hit_at("a", 3, MINUTE, t).allowed());
        assert!(l.hit_at("a", 3, MINUTE, t).allowed());
        assert!(!l.hit_at("a", 3, MINUTE, t).allowed());
        assert!(l.hit_at("b", 3, MINUTE, t).allowed());
        assert!(l
            .hit_at("a", 3, MINUTE, t + Duration::from_secs(61))
            .allowed());
    }

    #[test]
    fn one_report_per_window_counts_the_refusals() {
        let l = LocalLimits::default();
        let t = Instant::now();
        assert!(l.hit_at("a", 1, MINUTE, t).allowed());
        assert_eq!(
            l.hit_at("a", 1, MINUTE, t),
            RateHit::Refused { report: Some(1) }
        );
        for i in 1..=50 {
            let at = t + Duration::from_millis(i * 100);
            assert_eq!(
                l.hit_at("a", 1, MINUTE, at),
                RateHit::Refused { report: None }
            );
        }
        // A minute after the last report, the next refusal reports the
        // unreported ones and itself.
        let later = t + MINUTE;
        assert!(l.hit_at("a", 1, MINUTE, later).allowed());
        let r = l.hit_at("a", 1, MINUTE, later + Duration::from_millis(1));
        assert_eq!(r, RateHit::Refused { report: Some(51) });
    }

    #[test]
    fn full_tells_without_counting() {
        let l = LocalLimits::default();
        assert!(!l.full("a", 2, MINUTE));
        assert!(l.hit("a", 2, MINUTE).allowed());
        assert!(!l.full("a", 2, MINUTE));
        assert!(!l.full("a", 2, MINUTE), "a look counted as a hit");
        assert!(l.hit("a", 2, MINUTE).allowed());
        assert!(l.full("a", 2, MINUTE));
        assert!(!l.full("b", 2, MINUTE));
        assert!(!l.full("a", 2, Duration::ZERO), "outside the window");
    }

    #[test]
    fn zero_is_off() {
        let l = LocalLimits::default();
        assert!(!l.full("a", 0, MINUTE));
        assert!((0..1000).all(|_| l.hit("a", 0, MINUTE).allowed()));
    }
}
