//! `facegate oidc-client add|list|remove` and `facegate
//! rotate-signing-key` as an operator runs them, on a fresh SQLite data
//! directory: the secret is printed once (never for public clients) and
//! never listed, bad input is one line and a failure status.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn facegate(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(args)
        .env("FACEGATE_DATA_DIR", data)
        .env_remove("FACEGATE_DATABASE_URL")
        .env_remove("FACEGATE_MASTER_KEY")
        .output()
        .expect("running facegate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(data: &Path, args: &[&str]) -> Value {
    let (ok, out, err) = facegate(data, args);
    assert!(ok, "facegate {args:?}: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn clients_are_added_listed_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let grafana = json(
        &data,
        &[
            "oidc-client",
            "add",
            "--name",
            "Grafana",
            "--redirect-uri",
            "https://grafana.example.org/login/generic_oauth",
            "--json",
        ],
    );
    let id = grafana["client_id"].as_str().unwrap().to_string();
    let secret = grafana["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 40, "{grafana}");
    let spa = json(
        &data,
        &[
            "oidc-client",
            "add",
            "--name",
            "SPA",
            "--public",
            "--first-party",
            "--redirect-uri",
            "http://127.0.0.1:3000/cb",
            "--redirect-uri",
            "http://127.0.0.1:3000/cb2",
            "--json",
        ],
    );
    assert!(spa.get("client_secret").is_none(), "{spa}");

    let list = json(&data, &["oidc-client", "list", "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    // Listed oldest first; two added in the same second in either order.
    let spa_listed = list
        .iter()
        .find(|c| c["client_id"] == spa["client_id"])
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(spa_listed["redirect_uris"].as_array().unwrap().len(), 2);
    let text = serde_json::to_string(list).unwrap();
    assert!(
        !text.contains(&secret) && !text.contains("argon2"),
        "{text}"
    );

    let (ok, out, err) = facegate(&data, &["rotate-signing-key"]);
    assert!(ok, "{err}");
    assert!(out.contains("new signing key"), "{out}");

    let (ok, out, err) = facegate(&data, &["oidc-client", "remove", &id]);
    assert!(ok, "{err}");
    assert!(out.contains(&id), "{out}");
    assert_eq!(
        json(&data, &["oidc-client", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (ok, _, err) = facegate(&data, &["oidc-client", "remove", &id]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (ok, _, err) = facegate(
        &data,
        &[
            "oidc-client",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            "not a url",
        ],
    );
    assert!(!ok);
    assert!(err.contains("not an absolute URI"), "{err}");
}
