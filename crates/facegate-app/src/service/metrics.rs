//! Process metrics in the Prometheus text format: HTTP requests by route
//! and status, face pipeline latency (a histogram, and one per pipeline
//! stage), face-login and liveness outcomes, and lockouts. Plain atomics
//! and mutex-guarded maps; no registry crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A stage of the face pipeline, timed per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Decoding the uploaded image(s) (all frames of a challenge answer).
    Decode,
    /// Face detection, alignment and embedding of a single image.
    DetectEmbed,
    /// A challenge answer's active checks: observing and embedding its
    /// frames and judging them.
    LivenessActive,
    /// The passive cues (print, screen) of a frame or challenge.
    LivenessPassive,
    /// Matching the probe against the enrolled templates.
    Match,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Decode,
        Stage::DetectEmbed,
        Stage::LivenessActive,
        Stage::LivenessPassive,
        Stage::Match,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::DetectEmbed => "detect_embed",
            Stage::LivenessActive => "liveness_active",
            Stage::LivenessPassive => "liveness_passive",
            Stage::Match => "match",
        }
    }
}

/// A latency histogram over [`BUCKETS`].
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Writes the series of `name`; `labels` is empty or `key="value",`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}le=\"{le}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let plain = labels.trim_end_matches(',');
        let braces = if plain.is_empty() {
            String::new()
        } else {
            format!("{{{plain}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// All counters of one process.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    pipeline: Histogram,
    stages: [Histogram; Stage::ALL.len()],
    face_logins: Mutex<BTreeMap<String, u64>>,
    liveness: Mutex<BTreeMap<String, u64>>,
    lockouts: AtomicU64,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn count(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    *map.entry(key.to_string()).or_default() += 1;
}

fn render_counter(out: &mut String, name: &str, help: &str, map: &Mutex<BTreeMap<String, u64>>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (o, n) in map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(out, "{name}{{outcome=\"{}\"}} {n}", escape(o));
    }
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
        self.pipeline.observe(d);
    }

    /// Records the time one request spent in a pipeline stage.
    pub fn observe_stage(&self, stage: Stage, d: Duration) {
        self.stages[stage as usize].observe(d);
    }

    /// Runs `f`, recording its duration under `stage` (whatever it returns).
    pub fn time<T>(&self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.observe_stage(stage, started.elapsed());
        out
    }

    /// Counts one face-login outcome (`success`, `failure`, `locked`, …).
    pub fn observe_face_login(&self, outcome: &str) {
        count(&self.face_logins, outcome);
    }

    /// Counts one liveness decision (`live`, `spoof_<check>`, `unknown`,
    /// `no_face`, `multiple_faces`, `expired`, `passive_<cue>`, `error`).
    pub fn observe_liveness(&self, outcome: &str) {
        count(&self.liveness, outcome);
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
        self.pipeline
            .render(&mut out, "facegate_face_pipeline_seconds", "");
        out.push_str(
            "# HELP facegate_face_stage_seconds Time a request spent in each face pipeline stage.\n",
        );
        out.push_str("# TYPE facegate_face_stage_seconds histogram\n");
        for stage in Stage::ALL {
            self.stages[stage as usize].render(
                &mut out,
                "facegate_face_stage_seconds",
                &format!("stage=\"{}\",", stage.as_str()),
            );
        }
        render_counter(
            &mut out,
            "facegate_face_logins_total",
            "Face-login attempts by outcome.",
            &self.face_logins,
        );
        render_counter(
            &mut out,
            "facegate_liveness_total",
            "Liveness decisions (challenge answers, passive single frames) by outcome.",
            &self.liveness,
        );
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
        m.observe_stage(Stage::Match, Duration::from_millis(2));
        m.observe_liveness("spoof_duplicates");
        m.observe_lockout();
        let text = m.render();
        assert!(text.contains(
            "facegate_http_requests_total{method=\"GET\",route=\"/api/me\",status=\"200\"} 2"
        ));
        assert!(text.contains("facegate_face_pipeline_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("facegate_face_pipeline_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("facegate_face_pipeline_seconds_count 1"));
        assert!(text.contains("facegate_face_stage_seconds_bucket{stage=\"match\",le=\"0.005\"} 1"));
        assert!(text.contains("facegate_face_stage_seconds_count{stage=\"match\"} 1"));
        assert!(text.contains("facegate_face_stage_seconds_sum{stage=\"match\"} 0.002"));
        assert!(text.contains("facegate_face_stage_seconds_count{stage=\"decode\"} 0"));
        assert!(text.contains("facegate_liveness_total{outcome=\"spoof_duplicates\"} 1"));
        assert!(text.contains("facegate_lockouts_total 1"));
    }
}
