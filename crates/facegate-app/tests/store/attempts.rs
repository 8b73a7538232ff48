//! Login attempts with their kept probes, and retention.

use facegate_app::domain::{LoginMethod, NewLoginAttempt, Outcome};
use time::{Duration, OffsetDateTime};

use crate::subject::{new_user, Subject};
use crate::templates::photo;

fn attempt(user: Option<i64>, probe: Option<u8>) -> NewLoginAttempt {
    let mut a = NewLoginAttempt::rate_limited(
        Some("someone".into()),
        "198.51.100.4".into(),
        LoginMethod::FaceIdentify,
    );
    a.user_id = user;
    a.outcome = Outcome::Failure;
    a.reason = "no_match".into();
    a.best_score = Some(0.31);
    a.liveness = Some("{\"passive\":0.9}".into());
    a.probe = probe.map(photo);
    a
}

pub async fn attempts_keep_their_probes_sealed(s: Subject) {
    let st = &s.store;
    let ann = st.create_user(&new_user("ann")).await.unwrap();
    st.record_attempt(&attempt(Some(ann.id), Some(1)))
        .await
        .unwrap();
    st.record_attempt(&attempt(None, None)).await.unwrap();
    st.record_attempt(&attempt(Some(ann.id), Some(2)))
        .await
        .unwrap();
    let recent = st.recent_attempts(10).await.unwrap();
    assert_eq!(recent.len(), 3);
    assert!(recent.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let probes: Vec<bool> = recent.iter().map(|a| a.has_probe()).collect();
    assert_eq!(probes, [true, false, true]);
    let newest = &recent[0];
    assert_eq!(newest.claimed_username.as_deref(), Some("someone"));
    assert_eq!(
        (newest.method.as_str(), newest.outcome.as_str()),
        ("face_identify", "failure")
    );
    assert_eq!(
        (newest.reason.as_str(), newest.best_score),
        ("no_match", Some(0.31))
    );
    assert_eq!(newest.client_addr, "198.51.100.4");
    assert!((OffsetDateTime::now_utc() - newest.at).abs() < Duration::minutes(1));
    assert_eq!(st.probe_image(newest.id).await.unwrap(), Some(photo(2)));
    assert_eq!(st.probe_image(recent[2].id).await.unwrap(), Some(photo(1)));
    assert!(st.probe_image(recent[1].id).await.unwrap().is_none());
    assert_eq!(st.recent_attempts(2).await.unwrap().len(), 2);
    let anns = st.attempts_for_user(ann.id).await.unwrap();
    assert_eq!(anns.len(), 2);
    assert!(anns[0].id < anns[1].id, "oldest first");
    assert_eq!(st.attempt(newest.id).await.unwrap().unwrap().id, newest.id);
    assert!(st.attempt(9999).await.unwrap().is_none());

    assert_eq!(st.delete_probes_for_user(ann.id).await.unwrap(), 2);
    assert!(st.probe_image(newest.id).await.unwrap().is_none());
    assert!(!st.attempt(newest.id).await.unwrap().unwrap().has_probe());
    assert_eq!(
        st.attempts_for_user(ann.id).await.unwrap().len(),
        2,
        "attempts stay"
    );
}

pub async fn retention_deletes_old_attempts_and_probes(s: Subject) {
    let st = &s.store;
    for probe in [Some(1), None, Some(2), Some(3)] {
        st.record_attempt(&attempt(None, probe)).await.unwrap();
    }
    let ids: Vec<i64> = st
        .recent_attempts(10)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .rev()
        .collect();
    // The first two are 100 days old (underneath the store: the store
    // itself only ever writes the present).
    let age = match s.kind {
        crate::subject::Kind::Sqlite => "at = at - 100 * 86400",
        crate::subject::Kind::Postgres => "at = at - interval '100 days'",
    };
    let sql = format!(
        "UPDATE login_attempts SET {age} WHERE id IN ({}, {})",
        ids[0], ids[1]
    );
    assert_eq!(s.raw_execute(&sql).await.unwrap(), 2);
    let now = OffsetDateTime::now_utc();
    // Probes older than 30 days go, their attempts stay.
    assert_eq!(
        st.clear_probes_before(now - Duration::days(30))
            .await
            .unwrap(),
        1
    );
    assert!(!st.attempt(ids[0]).await.unwrap().unwrap().has_probe());
    assert!(st.attempt(ids[2]).await.unwrap().unwrap().has_probe());
    // Attempts older than 90 days go with any probe.
    st.record_attempt(&attempt(None, Some(4))).await.unwrap();
    let sql =
        format!("UPDATE login_attempts SET {age} WHERE id = (SELECT MAX(id) FROM login_attempts)");
    s.raw_execute(&sql).await.unwrap();
    let (attempts, probes) = st
        .delete_attempts_before(now - Duration::days(90))
        .await
        .unwrap();
    assert_eq!((attempts, probes), (3, 1));
    let left: Vec<i64> = st
        .recent_attempts(10)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .rev()
        .collect();
    assert_eq!(left, ids[2..]);
    assert_eq!(
        st.delete_attempts_before(now - Duration::days(90))
            .await
            .unwrap(),
        (0, 0)
    );
}
