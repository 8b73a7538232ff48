//! Reading the settings: defaults, then an optional TOML file, then the
//! `FACEGATE_*` environment variables, whose names are the fields of
//! [`Config`] (nested keys after a double underscore).

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::config::Config;

/// The top-level keys of [`Config`], which environment variables may set:
/// the field names its derived `Deserialize` declares, so they cannot
/// drift from the struct.
fn keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut fields: &'static [&'static str] = &[];
        let _ = Config::deserialize(FieldNames(&mut fields));
        fields
    })
}

/// A deserializer that only records the field names a struct's
/// `Deserialize` asks for (serde hands them to `deserialize_struct`), then
/// stops with an error.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("field names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The environment variable prefix.
pub const ENV_PREFIX: &str = "FACEGATE_";

impl Config {
    /// Loads defaults, then `file` (if given), then the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("parsing config {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = key
                .to_ascii_lowercase()
                .split("__")
                .map(str::to_string)
                .collect();
            if !keys().contains(&path[0].as_str()) {
                continue;
            }
            set_path(&mut table, &path, env_value(&value));
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }
}

/// An environment value as TOML: numbers and booleans typed, else a string.
fn env_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    if path.len() == 1 {
        table.insert(path[0].clone(), value);
        return;
    }
    let entry = table
        .entry(path[0].clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if !entry.is_table() {
        *entry = toml::Value::Table(toml::Table::new());
    }
    if let toml::Value::Table(inner) = entry {
        set_path(inner, &path[1..], value);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{FaceLoginMode, Liveness};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:8000");
        assert_eq!(c.capture_interval_ms, 2000);
        assert_eq!(c.rate_limit_per_address, 30);
        assert_eq!(c.face_login, FaceLoginMode::Identify);
        assert_eq!(c.liveness, Liveness::Both);
        assert_eq!(c.challenge_ttl_ms, 15_000);
        assert_eq!(c.login_attempt_retention_days, 90);
        assert_eq!(c.probe_retention_days, 0);
    }

    #[test]
    fn file_then_env() {
        let dir = std::env::temp_dir().join(format!("facegate-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("facegate.toml");
        std::fs::write(
            &file,
            "face_login = \"verify\"\nmatch_margin = 0.1\n[engine]\nthreshold = 0.4\n",
        )
        .unwrap();
        let c = Config::load_from(
            Some(&file),
            env(&[
                ("FACEGATE_MATCH_MARGIN", "0.2"),
                ("FACEGATE_LIVENESS", "passive"),
                ("FACEGATE_ENGINE__INTRA_THREADS", "2"),
                ("FACEGATE_TRUSTED_PROXY", "10.0.0.1"),
                ("FACEGATE_ADDR", "0.0.0.0:9000"),
                ("FACEGATE_PROBE_RETENTION_DAYS", "7"),
                ("FACEGATE_SUPERUSER_USERNAME", "admin"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.face_login, FaceLoginMode::Verify);
        assert!((c.match_margin - 0.2).abs() < 1e-6);
        assert_eq!(c.engine.threshold, Some(0.4));
        assert_eq!(c.engine.intra_threads, 2);
        assert_eq!(c.liveness, Liveness::Passive);
        assert_eq!(c.trusted_proxy.unwrap().to_string(), "10.0.0.1");
        assert_eq!(c.addr.port(), 9000);
        assert_eq!(c.probe_retention_days, 7);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn env_keys_are_the_fields_of_config() {
        let keys = keys();
        // The settings a default serialises (unset options aside) and the
        // optional ones are all there.
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        let optional = [
            "web_dir",
            "database_url",
            "trusted_proxy",
            "metrics_token",
            "master_key",
            "public_url",
        ];
        for key in defaults.keys().map(String::as_str).chain(optional) {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        assert_eq!(keys.len(), defaults.len() + optional.len(), "{keys:?}");
        // Every key set from the environment lands in its field.
        let c = Config::load_from(
            None,
            env(&[
                ("FACEGATE_WEB_DIR", "/srv/web"),
                ("FACEGATE_PROBE_RETENTION_DAYS", "3"),
                ("FACEGATE_PUBLIC_URL", "https://login.example.org/"),
                ("FACEGATE_OIDC__ACCESS_TOKEN_SECONDS", "120"),
            ]),
        )
        .unwrap();
        assert_eq!(c.web_dir, Some(PathBuf::from("/srv/web")));
        assert_eq!(c.probe_retention_days, 3);
        assert_eq!(c.issuer(), "https://login.example.org");
        assert_eq!(c.oidc.access_token_seconds, 120);
        assert_eq!(Config::default().issuer(), "http://127.0.0.1:8000");
        let bad = Config::load_from(None, env(&[("FACEGATE_OIDC__CODE_SECONDS", "600")]));
        assert!(bad.is_err(), "codes live at most 60 s");
    }

    #[test]
    fn the_database_url_comes_from_the_environment_and_is_never_shown() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.database_url(), None, "SQLite by default");
        assert!(c.uses_data_dir());
        let url = "postgres://facegate:hunter2@db.example:5432/facegate";
        let c = Config::load_from(None, env(&[("FACEGATE_DATABASE_URL", url)])).unwrap();
        assert_eq!(c.database_url(), Some(url));
        assert!(
            !format!("{c:?}").contains("hunter2"),
            "Debug shows the password"
        );
        assert!(c.uses_data_dir(), "the key file is still there");
        let keyed = env(&[
            ("FACEGATE_DATABASE_URL", url),
            ("FACEGATE_MASTER_KEY", &"ab".repeat(32)),
        ]);
        let c = Config::load_from(None, keyed).unwrap();
        assert!(!c.uses_data_dir(), "nothing on the instance's disk");
        let blank = Config::load_from(None, env(&[("FACEGATE_DATABASE_URL", " ")])).unwrap();
        assert_eq!(blank.database_url(), None);
    }

    #[test]
    fn an_impossible_liveness_doubt_is_refused_by_name() {
        let key = "FACEGATE_LIVENESS_CHALLENGE__DOUBT_SURROUND_CHANGE";
        let e = Config::load_from(None, env(&[(key, "nan")])).unwrap_err();
        assert!(format!("{e:#}").contains("doubt_surround_change"), "{e:#}");
        assert!(Config::load_from(None, env(&[(key, "0.5")])).is_ok());
    }

    #[test]
    fn unknown_keys_in_file_are_refused() {
        let dir = std::env::temp_dir().join(format!("facegate-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("facegate.toml");
        std::fs::write(&file, "face_logn = \"verify\"\n").unwrap();
        assert!(Config::load_from(Some(&file), env(&[])).is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
