//! In-memory sliding-window rate limiting (per client address and per
//! claimed account). A limit of 0 turns a limiter off.
//!
//! Refusals are reported in aggregate: the first refusal of a key in a
//! window says so ([`Hit::Refused`] with `report`), carrying how many
//! refusals it stands for; the others of that window are only counted. So a
//! client hammering a limit causes at most one audit record per window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a limiter said of one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hit {
    Allowed,
    /// Over the limit. `report` is `Some(n)` for the one refusal per window
    /// that should be recorded: it stands for `n` refusals (itself and the
    /// unrecorded ones before it).
    Refused {
        report: Option<u64>,
    },
}

impl Hit {
    pub fn allowed(self) -> bool {
        self == Hit::Allowed
    }
}

/// One key's recent hits and its refusals not yet reported.
#[derive(Default)]
struct Window {
    hits: VecDeque<Instant>,
    unreported: u64,
    last_report: Option<Instant>,
}

/// Allows at most `limit` hits per key within `window`.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    keys: Mutex<HashMap<String, Window>>,
}

impl RateLimiter {
    pub fn per_minute(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Records a hit for `key`; refused over the limit (a refused hit does
    /// not count towards the limit).
    pub fn hit(&self, key: &str) -> Hit {
        self.hit_at(key, Instant::now())
    }

    fn hit_at(&self, key: &str, now: Instant) -> Hit {
        if self.limit == 0 {
            return Hit::Allowed;
        }
        let window = self.window;
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
        if w.hits.len() < self.limit as usize {
            w.hits.push_back(now);
            return Hit::Allowed;
        }
        w.unreported += 1;
        let due = w
            .last_report
            .is_none_or(|t| now.duration_since(t) >= window);
        if !due {
            return Hit::Refused { report: None };
        }
        w.last_report = Some(now);
        let n = std::mem::take(&mut w.unreported);
        Hit::Refused { report: Some(n) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_within_the_window() {
        let l = RateLimiter::new(3, Duration::from_secs(60));
        let t = Instant::now();
        assert!(l.hit_at("a", t).allowed());
        assert!(l.hit_at("a", t).allowed());
        assert!(l.hit_at("a", t).allowed());
        assert!(!l.hit_at("a", t).allowed());
        assert!(l.hit_at("b", t).allowed());
        assert!(l.hit_at("a", t + Duration::from_secs(61)).allowed());
    }

    #[test]
    fn one_report_per_window_counts_the_refusals() {
        let l = RateLimiter::new(1, Duration::from_secs(60));
        let t = Instant::now();
        assert!(l.hit_at("a", t).allowed());
        assert_eq!(l.hit_at("a", t), Hit::Refused { report: Some(1) });
        for i in 1..=50 {
            let at = t + Duration::from_millis(i * 100);
            assert_eq!(l.hit_at("a", at), Hit::Refused { report: None });
        }
        // A minute after the last report, the next refusal reports the
        // unreported ones and itself.
        let later = t + Duration::from_secs(60);
        assert!(l.hit_at("a", later).allowed());
        let r = l.hit_at("a", later + Duration::from_millis(1));
        assert_eq!(r, Hit::Refused { report: Some(51) });
    }

    #[test]
    fn zero_is_off() {
        let l = RateLimiter::per_minute(0);
        assert!((0..1000).all(|_| l.hit("a").allowed()));
    }
}
