//! Two real `facegate serve` processes on one real PostgreSQL, a request
//! landing on either (issue 12, point 3): a session made on one works on
//! the other, a challenge is answered once wherever it lands, the lockout
//! and the rate limits hold across both, a change on one takes effect for
//! face login on the other within a second, and instances starting at
//! once migrate fine. Faults: SIGKILL of one instance, PostgreSQL stopped
//! and started again.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{assert_storage_error, photo, Agent, Visit};
use crate::instances::{took, Cluster, OnInstance, OwnPostgres};
use facegate_testkit::postgres::fresh_database;

const SECOND: Duration = Duration::from_secs(1);

/// Face login on `agent`'s instance as `user` with `image` succeeds.
async fn logs_in(agent: &Agent, user: &str, image: &[u8]) -> bool {
    agent.verify(user, image).await.0 == StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_face_changes_are_shared_within_a_second() {
    let mut cluster = Cluster::new(&fresh_database().await);
    // Polling charges failures: no lockout in the way here.
    let env = [("FACEGATE_LOCKOUT_THRESHOLD", "1000")];
    let (a, b) = (cluster.start(&env), cluster.start(&env));
    let mut on_a = Agent::new(&a.base).await;
    let (status, me) = on_a.register_json("obama").await;
    assert_eq!(status, StatusCode::CREATED, "{me}");
    // The session made on A works on B.
    let on_b = on_a.on(&b.base);
    let (status, v) = on_b.get_json("/api/me").await;
    assert_eq!(
        (status, v["username"].as_str()),
        (StatusCode::OK, Some("obama"))
    );

    // B has looked (and cached) before the enrolment on A.
    let anyone_on_b = Agent::new(&b.base).await;
    let probe = photo("obama_2.jpg");
    assert!(!logs_in(&anyone_on_b, "obama", &probe).await);
    let (status, face) = on_a.enrol(&photo("obama_1.jpg")).await;
    assert_eq!(status, StatusCode::CREATED, "{face}");
    let enrolled = Instant::now();
    let t = took(enrolled, 5 * SECOND, || {
        logs_in(&anyone_on_b, "obama", &probe)
    })
    .await;
    assert!(
        t.is_some_and(|t| t <= SECOND),
        "enrolment seen on B after {t:?}"
    );

    // Deleted on A: refused on B within a second.
    let id = face["id"].as_i64().unwrap();
    let (status, _) = on_a
        .send(Method::DELETE, &format!("/api/me/faces/{id}"), Value::Null)
        .await;
    assert!(status.is_success(), "{status}");
    let deleted = Instant::now();
    let t = took(deleted, 5 * SECOND, || async {
        !logs_in(&anyone_on_b, "obama", &probe).await
    })
    .await;
    assert!(
        t.is_some_and(|t| t <= SECOND),
        "deletion seen on B after {t:?}"
    );

    // Deactivated by staff on A: refused on B within a second.
    on_a.enrol(&photo("obama_1.jpg")).await;
    let t = took(Instant::now(), 5 * SECOND, || {
        logs_in(&anyone_on_b, "obama", &probe)
    })
    .await;
    assert!(t.is_some(), "the new face never worked on B");
    cluster.create_admin();
    let mut admin = Agent::new(&a.base).await;
    admin.log_in("admin").await;
    let user = me["id"].as_i64().unwrap();
    let r = admin
        .client
        .post(format!("{}/admin/users/{user}/deactivate", a.base))
        .form(&[("csrf_token", admin.csrf.as_str())])
        .send()
        .await
        .unwrap();
    // The admin page answers the form with a redirect back to the list.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let deactivated = Instant::now();
    let t = took(deactivated, 5 * SECOND, || async {
        !logs_in(&anyone_on_b, "obama", &probe).await
    })
    .await;
    assert!(
        t.is_some_and(|t| t <= SECOND),
        "deactivation seen on B after {t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_from_one_instance_is_answered_once_on_either() {
    let mut cluster = Cluster::new(&fresh_database().await);
    let env = [("FACEGATE_LIVENESS", "active")];
    let (a, b) = (cluster.start(&env), cluster.start(&env));
    let on_a = Agent::new(&a.base).await;
    let (status, ch) = on_a
        .send(Method::POST, "/api/face-login/challenge", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{ch}");
    let id = ch["challenge_id"].as_str().unwrap().to_string();
    // Four answers at once, two on each instance: one is judged.
    let answers: Vec<_> = (0..4)
        .map(|i| {
            let agent = on_a.on(if i % 2 == 0 { &b.base } else { &a.base });
            let id = id.clone();
            tokio::spawn(async move { answer(&agent, &id).await })
        })
        .collect();
    let mut used = 0;
    for t in answers {
        used += usize::from(refused_as_used(t.await.unwrap()));
    }
    assert_eq!(used, 3, "exactly one answer is judged");
    assert!(refused_as_used(answer(&on_a.on(&b.base), &id).await));
}

/// Whether an answer was refused because its challenge was already taken:
/// 401 saying so, or the connection closed before the frames were sent
/// (the server refuses an unknown challenge without reading the body). Any
/// other outcome (the judged answer) must be a 401 too.
fn refused_as_used(outcome: Option<(StatusCode, Value)>) -> bool {
    let Some((status, body)) = outcome else {
        return true;
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    message.contains("unknown, used or expired")
}

/// One answer of one frame to challenge `id`: status and body, or `None`
/// when the server closed the connection before the body was sent.
async fn answer(agent: &Agent, id: &str) -> Option<(StatusCode, Value)> {
    let frames = [photo("obama_240p.jpg")];
    let r = agent
        .answer_challenge(id, &frames, &[0.0], Some("nobody"))
        .await
        .ok()?;
    let status = r.status();
    Some((status, r.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_and_rate_limits_hold_across_instances() {
    let mut cluster = Cluster::new(&fresh_database().await);
    let env = [("FACEGATE_LOCKOUT_THRESHOLD", "5")];
    let (a, b) = (cluster.start(&env), cluster.start(&env));
    let mut owner = Agent::new(&a.base).await;
    owner.register_json("obama").await;
    assert_eq!(
        owner.enrol(&photo("obama_1.jpg")).await.0,
        StatusCode::CREATED
    );
    // 20 wrong faces at once, spread over both instances.
    let (guess_a, guess_b) = (Agent::new(&a.base).await, Agent::new(&b.base).await);
    let wrong = photo("biden_1.jpg");
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let agent = if i % 2 == 0 {
                guess_a.on(&a.base)
            } else {
                guess_b.on(&b.base)
            };
            let wrong = wrong.clone();
            tokio::spawn(async move { agent.verify("obama", &wrong).await })
        })
        .collect();
    let (mut judged, mut locked) = (0, 0);
    for g in guesses {
        let (status, body) = g.await.unwrap();
        match (status, body["error"].as_str()) {
            (StatusCode::UNAUTHORIZED, Some("unknown")) => judged += 1,
            (StatusCode::TOO_MANY_REQUESTS, Some("locked")) => locked += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(
        (judged, locked),
        (5, 15),
        "at most lockout_threshold judged"
    );
    let right = photo("obama_2.jpg");
    assert_eq!(guess_b.verify("obama", &right).await.1["error"], "locked");

    // Per-address limit of 6 over two instances.
    drop((a, b));
    let env = [("FACEGATE_RATE_LIMIT_PER_ADDRESS", "6")];
    let (a, b) = (cluster.start(&env), cluster.start(&env));
    let (on_a, on_b) = (Agent::new(&a.base).await, Agent::new(&b.base).await);
    let tries: Vec<_> = (0..12)
        .map(|i| {
            let agent = if i % 2 == 0 {
                on_a.on(&a.base)
            } else {
                on_b.on(&b.base)
            };
            tokio::spawn(async move { agent.try_password(&format!("u{i}"), "wrong").await.0 })
        })
        .collect();
    let mut limited = 0;
    for t in tries {
        limited += usize::from(t.await.unwrap() == StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(limited, 6, "6 of 12 attempts over the limit of 6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let mut cluster = Cluster::new(&fresh_database().await);
    let servers = cluster.start_together(3, &[]);
    for s in &servers {
        let (status, _) = Agent::new(&s.base).await.get_json("/readyz").await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_one_instance_loses_nothing_acknowledged() {
    let mut cluster = Cluster::new(&fresh_database().await);
    let (a, b) = (cluster.start(&[]), cluster.start(&[]));
    let mut on_a = Agent::new(&a.base).await;
    on_a.register_json("obama").await;
    let on_b = on_a.on(&b.base);
    let enrolling = {
        let agent = on_a.on(&a.base);
        tokio::spawn(async move {
            let mut acked = Vec::new();
            while let Ok((status, v)) = agent.try_enrol(&photo("obama_1.jpg")).await {
                if status == StatusCode::CREATED {
                    acked.push(v["id"].as_i64().unwrap());
                }
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill();
    let acked = enrolling.await.unwrap();
    assert!(!acked.is_empty(), "no enrolment finished before the kill");
    let kept = on_b.faces_with_photos().await;
    assert!(
        acked.iter().all(|id| kept.contains(id)),
        "{acked:?} vs {kept:?}"
    );
    assert_eq!(
        on_b.verify("obama", &photo("obama_2.jpg")).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_means_503_then_both_recover() {
    let pg = OwnPostgres::start();
    let mut cluster = Cluster::new(&pg.url);
    let env = [("FACEGATE_LOCKOUT_THRESHOLD", "1000")];
    let (a, b) = (cluster.start(&env), cluster.start(&env));
    let mut on_a = Agent::new(&a.base).await;
    on_a.register_json("obama").await;
    let (_, face) = on_a.enrol(&photo("obama_1.jpg")).await;
    let on_b = on_a.on(&b.base);
    let probe = photo("obama_2.jpg");
    assert!(logs_in(&on_b, "obama", &probe).await);

    pg.pause();
    for agent in [&on_a, &on_b] {
        let (status, _) = agent.get_json("/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let (status, body) = agent.verify("obama", &probe).await;
        assert_storage_error(status, &body, &["storage_unavailable"]);
    }
    pg.resume();
    for agent in [&on_a, &on_b] {
        let ready = took(Instant::now(), 30 * SECOND, || async {
            agent.get_json("/readyz").await.0 == StatusCode::OK
        })
        .await;
        assert!(ready.is_some(), "{} not ready again", agent.base);
        assert!(logs_in(agent, "obama", &probe).await);
    }
    // The change feed is back too (it listens again within seconds).
    tokio::time::sleep(3 * SECOND).await;
    let id = face["id"].as_i64().unwrap();
    on_a.send(Method::DELETE, &format!("/api/me/faces/{id}"), Value::Null)
        .await;
    let t = took(Instant::now(), 5 * SECOND, || async {
        !logs_in(&on_b, "obama", &probe).await
    })
    .await;
    assert!(
        t.is_some_and(|t| t <= SECOND),
        "deletion seen on B after {t:?}"
    );
    drop((a, b));
}
