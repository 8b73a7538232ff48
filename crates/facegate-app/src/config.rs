//! Settings: what each one is, its default and the checks a loaded set
//! must pass. They are read from defaults, then an optional TOML file,
//! then `FACEGATE_*` environment variables (`FACEGATE_FACE_LOGIN=verify`;
//! nested engine keys use a double underscore:
//! `FACEGATE_ENGINE__THRESHOLD=0.5`; `config_load.rs`), then the command
//! line. Every key is documented in docs/CONFIGURATION.md.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use facegate_vision::EngineConfig;
use serde::{Deserialize, Serialize};

pub use crate::config_oidc::OidcConfig;

/// How a face logs a user in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FaceLoginMode {
    /// Face only, 1:N over all active users.
    #[default]
    Identify,
    /// Username plus face, 1:1.
    Verify,
    /// Password first, then the face.
    SecondFactor,
}

impl FaceLoginMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            FaceLoginMode::Identify => "identify",
            FaceLoginMode::Verify => "verify",
            FaceLoginMode::SecondFactor => "second_factor",
        }
    }
}

/// Presentation-attack detection (docs/LIVENESS.md): `passive` checks
/// single frames, `active` requires a server-issued head-movement
/// challenge, `both` does both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    Off,
    Passive,
    Active,
    #[default]
    Both,
}

impl Liveness {
    /// True when a face login needs a challenge answer.
    pub fn active(&self) -> bool {
        matches!(self, Liveness::Active | Liveness::Both)
    }

    /// True when the passive cues run.
    pub fn passive(&self) -> bool {
        matches!(self, Liveness::Passive | Liveness::Both)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Liveness::Off => "off",
            Liveness::Passive => "passive",
            Liveness::Active => "active",
            Liveness::Both => "both",
        }
    }
}

/// All settings of the web application.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The database: unset (or empty) keeps the embedded SQLite file in
    /// `data_dir`; `postgres://user:password@host:port/database` uses
    /// PostgreSQL. May hold a password: never shown by `Debug`.
    pub database_url: Option<crate::crypto::SecretString>,
    /// Directory holding `node_modules/startbootstrap-sb-admin-2`; `web`
    /// searched in the working directory and its ancestors when unset.
    pub web_dir: Option<PathBuf>,
    pub secure_cookies: bool,
    pub trusted_proxy: Option<IpAddr>,
    /// Bearer token that opens `/metrics` to any client; unset: `/metrics`
    /// answers only direct loopback clients. Never shown by `Debug`.
    pub metrics_token: Option<crate::crypto::SecretString>,
    pub session_idle_minutes: i64,
    /// How recent a login (or password confirmation) must be for the
    /// sensitive changes: adding a face, deleting all face data, changing
    /// the e-mail address.
    pub reauth_seconds: i64,
    pub face_login: FaceLoginMode,
    pub match_margin: f32,
    pub lockout_score_band: f32,
    pub capture_interval_ms: u64,
    pub rate_limit_per_address: u32,
    pub rate_limit_per_account: u32,
    pub lockout_threshold: u32,
    pub lockout_seconds: i64,
    pub max_upload_files: usize,
    pub liveness: Liveness,
    /// Lifetime of a liveness challenge, in milliseconds.
    pub challenge_ttl_ms: u64,
    /// Thresholds of the active checks (`[liveness_challenge]`).
    pub liveness_challenge: facegate_vision::ChallengeConfig,
    /// Thresholds of the passive cues (`[liveness_passive]`).
    pub liveness_passive: facegate_vision::PassiveConfig,
    /// AES-256 master key for biometric data at rest (base64 or hex);
    /// unset: `<data-dir>/master.key`, created at first start.
    pub master_key: Option<crate::crypto::SecretString>,
    /// Whole-request deadline (body included); 408 after it.
    pub request_timeout_seconds: u64,
    /// Time a client has to send its request headers (slow clients are cut).
    pub header_timeout_seconds: u64,
    /// Login attempts older than this many days are deleted by the
    /// retention sweep; 0 keeps them forever.
    pub login_attempt_retention_days: u32,
    /// Days the probe image a face login was matched on is kept (sealed,
    /// linked to its attempt); 0 stores none.
    pub probe_retention_days: u32,
    /// How the 1:N gallery is searched (`[gallery]`).
    pub gallery: GalleryConfig,
    pub engine: EngineConfig,
    /// The address people and clients reach this server at, e.g.
    /// `https://login.example.org`: the OpenID Connect issuer. Unset:
    /// `http://` + `addr`.
    pub public_url: Option<String>,
    /// The OpenID Connect provider (`[oidc]`).
    pub oidc: OidcConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            web_dir: None,
            secure_cookies: false,
            trusted_proxy: None,
            metrics_token: None,
            session_idle_minutes: 720,
            reauth_seconds: 300,
            face_login: FaceLoginMode::Identify,
            match_margin: 0.05,
            lockout_score_band: 0.15,
            capture_interval_ms: 2000,
            rate_limit_per_address: 30,
            rate_limit_per_account: 10,
            lockout_threshold: 5,
            lockout_seconds: 900,
            max_upload_files: 10,
            liveness: Liveness::Both,
            challenge_ttl_ms: 15_000,
            liveness_challenge: facegate_vision::ChallengeConfig::default(),
            liveness_passive: facegate_vision::PassiveConfig::default(),
            master_key: None,
            request_timeout_seconds: 30,
            header_timeout_seconds: 10,
            login_attempt_retention_days: 90,
            probe_retention_days: 0,
            gallery: GalleryConfig::default(),
            engine: EngineConfig::default(),
            public_url: None,
            oidc: OidcConfig::default(),
        }
    }
}

/// The 1:N search (`[gallery]`, docs/CONFIGURATION.md): exhaustive below
/// `index_min_templates` templates; above, 16-byte sketches
/// (product-quantisation codes) pick the `candidates` templates scored
/// exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GalleryConfig {
    /// Templates from which the sketches are used (0: always).
    pub index_min_templates: usize,
    /// Templates with the best sketch scores per probe, scored exactly.
    pub candidates: usize,
}

impl Default for GalleryConfig {
    fn default() -> Self {
        GalleryConfig {
            index_min_templates: 20_000,
            candidates: 512,
        }
    }
}

impl Config {
    /// Refuses a set of settings that cannot work together.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.lockout_threshold >= 1,
            "lockout_threshold must be at least 1"
        );
        anyhow::ensure!(
            self.capture_interval_ms >= 100,
            "capture_interval_ms must be at least 100"
        );
        anyhow::ensure!(
            self.match_margin >= 0.0,
            "match_margin must not be negative"
        );
        anyhow::ensure!(
            self.gallery.candidates >= 2,
            "gallery.candidates must be at least 2"
        );
        anyhow::ensure!(
            self.max_upload_files >= 1,
            "max_upload_files must be at least 1"
        );
        self.liveness_challenge
            .check()
            .map_err(anyhow::Error::msg)?;
        self.oidc.validate()?;
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).context("public_url is not a URL")?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https") && parsed.query().is_none(),
                "public_url must be an http(s) URL without a query"
            );
        }
        Ok(())
    }

    /// The PostgreSQL URL when one is set (`None`: embedded SQLite).
    pub fn database_url(&self) -> Option<&str> {
        self.database_url
            .as_ref()
            .map(|u| u.0.trim())
            .filter(|u| !u.is_empty())
    }

    /// The OpenID Connect issuer: `public_url` without a trailing slash,
    /// else `http://` + `addr`.
    pub fn issuer(&self) -> String {
        match &self.public_url {
            Some(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_string(),
            _ => format!("http://{}", self.addr),
        }
    }

    /// Whether anything is kept in `data_dir`: the SQLite database, or the
    /// master key file when the key is not configured.
    pub fn uses_data_dir(&self) -> bool {
        let key_configured = self
            .master_key
            .as_ref()
            .is_some_and(|k| !k.0.trim().is_empty());
        self.database_url().is_none() || !key_configured
    }

    /// The SB Admin 2 web directory: configured, or `web` in the working
    /// directory or one of its ancestors.
    pub fn resolve_web_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.web_dir {
            return Some(dir.clone());
        }
        find_upwards(Path::new("web"))
    }

    /// Resolves a relative `engine.models_dir` against the working
    /// directory's ancestors, so `facegate serve` works from a subdirectory.
    pub fn resolve_models_dir(&mut self) {
        if self.engine.models_dir.is_relative() && !self.engine.models_dir.exists() {
            if let Some(found) = find_upwards(&self.engine.models_dir) {
                self.engine.models_dir = found;
            }
        }
    }
}

fn find_upwards(rel: &Path) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors().map(|d| d.join(rel)).find(|p| p.is_dir())
}
