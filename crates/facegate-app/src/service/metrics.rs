//! Process metrics in the Prometheus text format: HTTP requests by route
//! and status, face pipeline latency (a histogram), face-login outcomes and
//! lockouts. Plain atomics and a mutex-guarded map; no registry crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// All counters of one process.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    pipeline_buckets: [AtomicU64; BUCKETS.len()],
    pipeline_count: AtomicU64,
    pipeline_micros: AtomicU64,
    face_logins: Mutex<BTreeMap<String, u64>>,
    lockouts: AtomicU64,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one HTTP response; `route` is the matched route pattern.
    pub fn observe_request(&self, method: &str, route: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    /// Records the duration of one face pipeline run (decode, detect,
    /// align, embed).
    pub fn observe_pipeline(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.pipeline_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.pipeline_count.fetch_add(1, Ordering::Relaxed);
        self.pipeline_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts one face-login outcome (`success`, `failure`, `locked`, …).
    pub fn observe_face_login(&self, outcome: &str) {
        let mut map = self.face_logins.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(outcome.to_string()).or_default() += 1;
    }

    pub fn observe_lockout(&self) {
        self.lockouts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn lockouts(&self) -> u64 {
        self.lockouts.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP facegate_http_requests_total HTTP responses by method, route and status.\n",
        );
        out.push_str("# TYPE facegate_http_requests_total counter\n");
        for ((m, r, s), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "facegate_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{s}\"}} {n}",
                escape(m),
                escape(r)
            );
        }
        out.push_str(
            "# HELP facegate_face_pipeline_seconds Face pipeline latency (decode to embedding).\n",
        );
        out.push_str("# TYPE facegate_face_pipeline_seconds histogram\n");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "facegate_face_pipeline_seconds_bucket{{le=\"{le}\"}} {}",
                self.pipeline_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.pipeline_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "facegate_face_pipeline_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "facegate_face_pipeline_seconds_sum {}",
            self.pipeline_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "facegate_face_pipeline_seconds_count {count}");
        out.push_str("# HELP facegate_face_logins_total Face-login attempts by outcome.\n");
        out.push_str("# TYPE facegate_face_logins_total counter\n");
        for (o, n) in self
            .face_logins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "facegate_face_logins_total{{outcome=\"{}\"}} {n}",
                escape(o)
            );
        }
        out.push_str("# HELP facegate_lockouts_total Accounts whose face login was locked.\n");
        out.push_str("# TYPE facegate_lockouts_total counter\n");
        let _ = writeln!(out, "facegate_lockouts_total {}", self.lockouts());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.observe_request("GET", "/api/me", 200);
        m.observe_request("GET", "/api/me", 200);
        m.observe_pipeline(Duration::from_millis(30));
        m.observe_lockout();
        let text = m.render();
        assert!(text.contains(
            "facegate_http_requests_total{method=\"GET\",route=\"/api/me\",status=\"200\"} 2"
        ));
        assert!(text.contains("facegate_face_pipeline_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("facegate_face_pipeline_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("facegate_face_pipeline_seconds_count 1"));
        assert!(text.contains("facegate_lockouts_total 1"));
    }
}
