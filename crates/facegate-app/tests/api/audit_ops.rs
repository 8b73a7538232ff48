//! The append-only audit trail (events, staff page, filters, CSV) and the
//! operations endpoints (`/healthz`, `/readyz`, `/metrics`).

use reqwest::StatusCode;

use crate::harness::{raw_pool, DirApp};
use crate::helpers::{face, PASSWORD};

#[tokio::test]
async fn security_events_are_audited_append_only_and_exportable() {
    let tmp = tempfile::tempdir().unwrap();
    let app = DirApp::spawn(tmp.path(), |c| {
        c.face_login = facegate_app::FaceLoginMode::Verify
    })
    .await
    .unwrap();
    let store = app.state.services.store.clone();
    facegate_app::service::create_superuser(store.clone(), "root", "root@example.com", PASSWORD)
        .await
        .unwrap();
    let mut a = app.agent().await;
    a.register("barack").await;
    a.upload_face(&face("obama_1.jpg")).await;
    a.logout().await;
    a.login("barack", "bad password").await;
    let r = a.face_login(&face("obama_2.jpg"), Some("barack")).await;
    assert_eq!(r.status(), StatusCode::OK);
    a.logout().await;
    a.face_login(&face("biden_2.jpg"), Some("barack")).await;

    let mut admin = app.agent().await;
    admin.login("root", PASSWORD).await;
    admin.refresh_csrf().await;
    let r = admin
        .client
        .post(admin.url("/admin/users/2/deactivate"))
        .form(&[("csrf_token", admin.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let all = store.audit_events(&Default::default()).await.unwrap();
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    for k in [
        "registration",
        "enrolment",
        "password_login",
        "face_login",
        "admin_action",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let face_ok = all
        .iter()
        .find(|e| e.kind == "face_login" && e.outcome == "success")
        .unwrap();
    assert!(
        face_ok.score.unwrap() > 0.3,
        "face logins carry their score"
    );
    let face_bad = all
        .iter()
        .find(|e| e.kind == "face_login" && e.outcome == "failure")
        .unwrap();
    assert!(face_bad.score.is_some() && face_bad.detail.contains("no_match"));
    let admin_ev = all.iter().find(|e| e.kind == "admin_action").unwrap();
    assert_eq!(
        (admin_ev.actor_user_id, admin_ev.subject_user_id),
        (Some(1), Some(2))
    );

    // The staff page filters; ordinary users are refused.
    let page = admin
        .get("/admin/audit?kind=password_login&outcome=failure")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"audit-table\""));
    assert!(page.contains("audit-password_login") && !page.contains("audit-enrolment"));
    let page = admin
        .get("/admin/audit?user=barack&kind=enrolment")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("audit-enrolment") && !page.contains("audit-password_login"));
    assert_eq!(a.get("/admin/audit").await.status(), StatusCode::SEE_OTHER);

    // CSV with the same filters.
    let r = admin.get("/admin/audit.csv?kind=face_login").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,at,kind,outcome,actor_user_id,subject_user_id,username,client_addr,score,detail"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows.iter().all(|l| l.contains(",face_login,")));
    assert_eq!(
        a.get("/admin/audit.csv").await.status(),
        StatusCode::SEE_OTHER
    );

    // Append-only: the database itself refuses changes and deletions.
    let pool = raw_pool(tmp.path()).await;
    let upd = sqlx::query("UPDATE audit_events SET outcome = 'success' WHERE outcome = 'failure'")
        .execute(&pool)
        .await;
    assert!(format!("{:?}", upd.unwrap_err()).contains("append-only"));
    let del = sqlx::query("DELETE FROM audit_events").execute(&pool).await;
    assert!(format!("{:?}", del.unwrap_err()).contains("append-only"));
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n as usize, all.len());
    pool.close().await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let app = DirApp::spawn(tmp.path(), |c| {
        c.face_login = facegate_app::FaceLoginMode::Verify;
        c.lockout_threshold = 2;
    })
    .await
    .unwrap();
    let mut a = app.agent().await;
    let r = a.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    let r = a.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["database"].as_str(), v["engine"].as_str()),
        (Some("ok"), Some("loaded"))
    );

    a.register("barack").await;
    a.upload_face(&face("obama_1.jpg")).await;
    a.logout().await;
    for _ in 0..3 {
        a.face_login(&face("biden_2.jpg"), Some("barack")).await;
    }
    a.get("/no-such-page").await;

    let r = a.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = r.text().await.unwrap();
    let value = |line_start: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("{line_start} missing in\n{m}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("facegate_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        value(
            "facegate_http_requests_total{method=\"POST\",route=\"/api/register\",status=\"201\"}"
        ),
        1.0
    );
    assert_eq!(value("facegate_http_requests_total{method=\"POST\",route=\"/api/face-login\",status=\"401\"}"), 2.0);
    assert_eq!(value("facegate_http_requests_total{method=\"POST\",route=\"/api/face-login\",status=\"429\"}"), 1.0);
    assert_eq!(
        value("facegate_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"),
        1.0
    );
    // One enrolment and two analysed face logins (the third was locked first).
    assert_eq!(value("facegate_face_pipeline_seconds_count"), 3.0);
    assert!(value("facegate_face_pipeline_seconds_sum") > 0.0);
    assert_eq!(
        value("facegate_face_pipeline_seconds_bucket{le=\"+Inf\"}"),
        3.0
    );
    assert_eq!(value("facegate_lockouts_total"), 1.0);
    assert_eq!(
        value("facegate_face_logins_total{outcome=\"failure\"}"),
        2.0
    );
    assert_eq!(value("facegate_face_logins_total{outcome=\"locked\"}"), 1.0);
    // Per-stage latency: decode and detection of the enrolment and the two
    // analysed logins, matching of the two logins, no liveness (off).
    let stage = |name: &str, s: &str| {
        value(&format!(
            "facegate_face_stage_seconds_{name}{{stage=\"{s}\"}}"
        ))
    };
    assert!(m.contains("# TYPE facegate_face_stage_seconds histogram"));
    assert_eq!(stage("count", "decode"), 3.0);
    assert_eq!(stage("count", "detect_embed"), 3.0);
    assert_eq!(stage("count", "match"), 2.0);
    assert!(stage("sum", "detect_embed") > 0.0);
    assert_eq!(stage("count", "liveness_active"), 0.0);
    assert_eq!(stage("count", "liveness_passive"), 0.0);
    assert_eq!(
        value("facegate_face_stage_seconds_bucket{stage=\"match\",le=\"+Inf\"}"),
        2.0
    );
    assert!(m.contains("# TYPE facegate_liveness_total counter"));

    // A refused liveness challenge (two frames: too few) is counted by
    // outcome, with the time of its active checks.
    let live_dir = tempfile::tempdir().unwrap();
    let live = DirApp::spawn(live_dir.path(), |c| {
        c.liveness = facegate_app::Liveness::Both
    })
    .await
    .unwrap();
    let b = live.agent().await;
    let r = b
        .post_json("/api/face-login/challenge", serde_json::json!({}))
        .await;
    let id = r.json::<serde_json::Value>().await.unwrap()["challenge_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A frame as the page sends it: at most 480 px.
    let photo = facegate_vision::decode::decode(&face("obama_1.jpg"), &Default::default()).unwrap();
    let frame =
        facegate_vision::eval::attacks::jpeg(&facegate_vision::decode::fit_within(&photo, 480));
    let form = reqwest::multipart::Form::new()
        .part("frame", reqwest::multipart::Part::bytes(frame.clone()))
        .part("frame", reqwest::multipart::Part::bytes(frame))
        .text("timestamps", "[0, 200]");
    let r = b
        .client
        .post(b.url(&format!("/api/face-login/challenge/{id}/frames")))
        .header("X-CSRF-Token", &b.csrf)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, code) = crate::helpers::error_of(r).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "spoof"));
    let m = b.get("/metrics").await.text().await.unwrap();
    let value = |line_start: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("{line_start} missing in\n{m}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("facegate_liveness_total{outcome=\"spoof_too_few_frames\"}"),
        1.0
    );
    let stage = |name: &str, s: &str| {
        value(&format!(
            "facegate_face_stage_seconds_{name}{{stage=\"{s}\"}}"
        ))
    };
    assert_eq!(stage("count", "decode"), 1.0);
    assert_eq!(stage("count", "liveness_active"), 1.0);
    assert!(stage("sum", "liveness_active") > 0.0);
    assert_eq!(stage("count", "liveness_passive"), 0.0, "not reached");
    assert_eq!(stage("count", "match"), 0.0);
    assert_eq!(
        value("facegate_face_logins_total{outcome=\"failure\"}"),
        1.0
    );
}

#[tokio::test]
async fn metrics_are_not_public_by_default() {
    // No token: a direct loopback client may read them; a request a proxy
    // on this host forwarded may not.
    let app = crate::helpers::TestApp::spawn().await;
    let a = app.agent().await;
    assert_eq!(a.get("/metrics").await.status(), StatusCode::OK);
    let r = a
        .client
        .get(a.url("/metrics"))
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r
        .text()
        .await
        .unwrap()
        .contains("facegate_http_requests_total"));

    // With a token: only a request that carries it.
    let app = crate::helpers::TestApp::spawn_with(|c| {
        c.metrics_token = Some("s3cret-token".into());
    })
    .await;
    let a = app.agent().await;
    let r = a.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let wrong = a
        .client
        .get(a.url("/metrics"))
        .bearer_auth("s3cret-tokex")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let r = a
        .client
        .get(a.url("/metrics"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("facegate_http_requests_total"));
    // The health endpoints stay open.
    assert_eq!(a.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn staff_find_people_by_name_and_act_with_confirmation() {
    let app = crate::helpers::TestApp::spawn().await;
    let store = app.state.services.store.clone();
    let root = facegate_app::service::create_superuser(store, "root", "root@example.com", PASSWORD)
        .await
        .unwrap();
    let carol = app.user_with_faces("carol", &["obama_1.jpg"]).await;
    let a = app.agent().await;
    assert_eq!(
        a.face_login(&face("obama_2.jpg"), None).await.status(),
        StatusCode::OK
    );
    let mut staff = app.agent().await;
    staff.login("root", PASSWORD).await;
    staff.refresh_csrf().await;

    // The users page: a confirmed deactivation, never on one's own row.
    let users = staff.page("/admin/users").await;
    assert!(
        users.contains("data-confirm=\"Deactivate carol?"),
        "{users}"
    );
    assert!(!users.contains(&format!("/admin/users/{}/deactivate", root.id)));
    let r = staff
        .post_form(&format!("/admin/users/{}/deactivate", root.id), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        app.state
            .services
            .store
            .user_by_id(root.id)
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
    let r = staff
        .post_form(&format!("/admin/users/{carol}/deactivate"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // The audit filter finds carol's face login and the action about her
    // by her name; both actor and subject are shown by name.
    let page = staff.page("/admin/audit?user=carol").await;
    assert!(page.contains("class=\"audit-face_login\""), "{page}");
    assert!(page.contains("class=\"audit-admin_action\""));
    assert!(page.contains(&format!("root (#{})", root.id)));
    assert!(page.contains(&format!("carol (#{carol})")));
    let events = app
        .state
        .services
        .store
        .audit_events(&Default::default())
        .await
        .unwrap();
    let face = events.iter().find(|e| e.kind == "face_login").unwrap();
    assert_eq!(face.username.as_deref(), Some("carol"), "recorded by name");
    let action = events.iter().find(|e| e.kind == "admin_action").unwrap();
    assert!(action.detail.contains("subject=carol"), "{}", action.detail);

    // Login attempts name the account.
    let attempts = staff.page("/admin/attempts").await;
    assert!(
        attempts.contains(&format!(
            "<td class=\"attempt-account\">carol (#{carol})</td>"
        )),
        "{attempts}"
    );
}
