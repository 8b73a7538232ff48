//! In-memory sliding-window rate limiting (per client address and per
//! claimed account). A limit of 0 turns a limiter off.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows at most `limit` hits per key within `window`.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn per_minute(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Records a hit for `key`; false when it goes over the limit (a refused
    /// hit is not counted).
    pub fn hit(&self, key: &str) -> bool {
        self.hit_at(key, Instant::now())
    }

    fn hit_at(&self, key: &str, now: Instant) -> bool {
        if self.limit == 0 {
            return true;
        }
        let mut map = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = map.entry(key.to_string()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.limit as usize {
            return false;
        }
        q.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_within_the_window() {
        let l = RateLimiter::new(3, Duration::from_secs(60));
        let t = Instant::now();
        assert!(l.hit_at("a", t));
        assert!(l.hit_at("a", t));
        assert!(l.hit_at("a", t));
        assert!(!l.hit_at("a", t));
        assert!(l.hit_at("b", t));
        assert!(l.hit_at("a", t + Duration::from_secs(61)));
    }

    #[test]
    fn zero_is_off() {
        let l = RateLimiter::per_minute(0);
        assert!((0..1000).all(|_| l.hit("a")));
    }
}
