//! Accounts, lockout, the audit trail, sessions and migrations.

use std::sync::Arc;

use facegate_app::domain::{AuditFilter, AuditKind, Email, NewAuditEvent};
use facegate_app::store::{FaceFailure, StoreError};
use time::{Duration, OffsetDateTime};
use tower_sessions::session::{Id, Record};
use tower_sessions::{ExpiredDeletion, SessionStore};

use crate::subject::{new_user, Kind, Subject};

pub async fn users_are_created_found_and_changed(s: Subject) {
    let st = &s.store;
    assert_eq!(st.count_users().await.unwrap(), 0);
    let ann = st.create_user(&new_user("Ann")).await.unwrap();
    assert!(ann.is_active && !ann.is_staff && !ann.is_superuser);
    assert_eq!((ann.username.as_str(), ann.face_failures), ("Ann", 0));
    assert!(ann.face_locked_until.is_none());
    let bob = st.create_user(&new_user("bob")).await.unwrap();
    assert!(bob.id > ann.id);
    assert_eq!(
        st.user_by_id(ann.id).await.unwrap().unwrap().email,
        "Ann@example.org"
    );
    // Usernames are found ignoring case and surrounding spaces.
    let found = st.user_by_username("  aNN ").await.unwrap().unwrap();
    assert_eq!(found.id, ann.id);
    assert!(st.user_by_username("nobody").await.unwrap().is_none());
    assert!(st.user_by_id(9999).await.unwrap().is_none());
    // E-mail addresses too are found ignoring case (one per account).
    let by_mail = st.user_by_email(" ann@EXAMPLE.org").await.unwrap().unwrap();
    assert_eq!(by_mail.id, ann.id);
    assert!(st
        .user_by_email("nobody@example.org")
        .await
        .unwrap()
        .is_none());

    st.set_active(ann.id, false).await.unwrap();
    st.set_password_hash(ann.id, "new-hash").await.unwrap();
    st.set_email(ann.id, &Email::parse("ann@example.net").unwrap())
        .await
        .unwrap();
    let changed = st.user_by_id(ann.id).await.unwrap().unwrap();
    assert!(!changed.is_active);
    assert_eq!(changed.password_hash, "new-hash");
    assert_eq!(changed.email, "ann@example.net");
    assert!(changed.updated_at >= ann.updated_at);

    let list = st.list_users().await.unwrap();
    let names: Vec<&str> = list.iter().map(|u| u.user.username.as_str()).collect();
    assert_eq!(names, ["Ann", "bob"]);
    assert!(list.iter().all(|u| u.faces == 0));
    assert_eq!(st.count_users().await.unwrap(), 2);
    st.ping().await.unwrap();
    let describe = st.describe();
    let expect = match s.kind {
        Kind::Sqlite => "SQLite",
        Kind::Postgres => "PostgreSQL",
    };
    assert!(describe.contains(expect), "{describe}");
    assert!(!describe.contains("password"), "{describe}");
}

pub async fn usernames_are_unique_ignoring_case(s: Subject) {
    s.store.create_user(&new_user("carol")).await.unwrap();
    for name in ["carol", "CAROL", "Carol"] {
        let e = s.store.create_user(&new_user(name)).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict), "{name}: {e}");
    }
    assert_eq!(s.store.count_users().await.unwrap(), 1);
}

pub async fn a_batch_of_users_is_all_or_nothing(s: Subject) {
    let batch: Vec<_> = (0..50).map(|i| new_user(&format!("user{i:03}"))).collect();
    let ids = s.store.create_users(&batch).await.unwrap();
    assert_eq!(ids.len(), 50);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in order: {ids:?}");
    for (id, u) in ids.iter().zip(&batch) {
        let got = s.store.user_by_id(*id).await.unwrap().unwrap();
        assert_eq!(got.username, u.username.as_str());
    }
    // One taken name refuses the whole batch.
    let clash = vec![new_user("fresh1"), new_user("USER007"), new_user("fresh2")];
    let e = s.store.create_users(&clash).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict), "{e}");
    assert!(s.store.user_by_username("fresh1").await.unwrap().is_none());
    assert_eq!(s.store.count_users().await.unwrap(), 50);
}

pub async fn face_failures_lock_exactly_at_the_threshold(s: Subject) {
    let st = s.store.clone();
    let dan = st.create_user(&new_user("dan")).await.unwrap();
    let now = OffsetDateTime::now_utc;
    let until = now() + Duration::minutes(15);
    for _ in 0..2 {
        let counted = st.record_face_failure(dan.id, 3, until, now()).await;
        assert_eq!(counted.unwrap(), FaceFailure::Counted);
    }
    assert_eq!(
        st.user_by_id(dan.id).await.unwrap().unwrap().face_failures,
        2
    );
    let third = st.record_face_failure(dan.id, 3, until, now()).await;
    assert_eq!(third.unwrap(), FaceFailure::Locked, "the third locks");
    let locked = st.user_by_id(dan.id).await.unwrap().unwrap();
    assert!(locked.face_locked(now()));
    assert_eq!(locked.face_failures, 0, "the count restarts");
    let fourth = st.record_face_failure(dan.id, 3, until, now()).await;
    assert_eq!(fourth.unwrap(), FaceFailure::AlreadyLocked, "not counted");
    assert!(!st.reset_face_failures(dan.id, now()).await.unwrap());
    assert!(st
        .user_by_id(dan.id)
        .await
        .unwrap()
        .unwrap()
        .face_locked(now()));
    // Once the lock has ended, a success resets.
    assert!(st.reset_face_failures(dan.id, until).await.unwrap());
    let reset = st.user_by_id(dan.id).await.unwrap().unwrap();
    assert!(!reset.face_locked(now()));

    // 20 failures at once on two instances, threshold 5: exactly 5 are
    // counted, the fifth locks, the other 15 find the account locked.
    let peer = s.peer().await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let st = if i % 2 == 0 {
                Arc::clone(&st)
            } else {
                peer.clone()
            };
            tokio::spawn(async move { st.record_face_failure(dan.id, 5, until, now()).await })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap().unwrap());
    }
    let count = |f: FaceFailure| seen.iter().filter(|s| **s == f).count();
    assert_eq!(count(FaceFailure::Counted), 4);
    assert_eq!(count(FaceFailure::Locked), 1);
    assert_eq!(count(FaceFailure::AlreadyLocked), 15);
}

pub async fn the_audit_trail_filters_and_refuses_changes(s: Subject) {
    let st = &s.store;
    let eve = st.create_user(&new_user("eve")).await.unwrap();
    let before = OffsetDateTime::now_utc() - Duration::seconds(2);
    st.append_audit(&NewAuditEvent::new(AuditKind::Registration, "success").by(eve.id, "eve"))
        .await
        .unwrap();
    let mut failed = NewAuditEvent::new(AuditKind::PasswordLogin, "failure").detail("reason=x");
    failed.username = Some("Eve".into());
    failed.client_addr = Some("192.0.2.7".into());
    failed.score = Some(0.25);
    st.append_audit(&failed).await.unwrap();
    let mut other = NewAuditEvent::new(AuditKind::AdminAction, "success");
    other.subject_user_id = Some(eve.id);
    st.append_audit(&other).await.unwrap();

    let all = st.audit_events(&AuditFilter::default()).await.unwrap();
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["admin_action", "password_login", "registration"],
        "newest first"
    );
    let login = &all[1];
    assert_eq!(login.client_addr.as_deref(), Some("192.0.2.7"));
    assert_eq!(login.score, Some(0.25));
    assert_eq!(login.detail, "reason=x");
    let filter = |f: AuditFilter| async move { st.audit_events(&f).await.unwrap().len() };
    let by_kind = AuditFilter {
        kind: Some("password_login".into()),
        ..Default::default()
    };
    assert_eq!(filter(by_kind).await, 1);
    let by_outcome = AuditFilter {
        outcome: Some("success".into()),
        ..Default::default()
    };
    assert_eq!(filter(by_outcome).await, 2);
    let by_name = AuditFilter {
        user: Some("EVE".into()),
        ..Default::default()
    };
    assert_eq!(
        filter(by_name).await,
        3,
        "the name given, or the account as actor or subject, ignoring case"
    );
    let by_id = AuditFilter {
        user: Some(eve.id.to_string()),
        ..Default::default()
    };
    assert_eq!(filter(by_id).await, 2, "actor or subject");
    let window = AuditFilter {
        since: Some(before),
        until: Some(OffsetDateTime::now_utc() + Duration::seconds(2)),
        limit: 2,
        ..Default::default()
    };
    assert_eq!(filter(window).await, 2);
    let future = AuditFilter {
        since: Some(OffsetDateTime::now_utc() + Duration::hours(1)),
        ..Default::default()
    };
    assert_eq!(filter(future).await, 0);

    // Append-only underneath the store, too.
    let update = s
        .raw_execute("UPDATE audit_events SET outcome = 'success'")
        .await;
    assert!(update.is_err(), "an update was allowed");
    assert!(s.raw_execute("DELETE FROM audit_events").await.is_err());
    assert_eq!(
        st.audit_events(&AuditFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );
}

pub async fn sessions_are_kept_and_expire(s: Subject) {
    let sessions = s.store.session_store();
    let mut live = Record {
        id: Id::default(),
        data: [("user_id".to_string(), serde_json::json!(7))].into(),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    };
    sessions.create(&mut live).await.unwrap();
    let loaded = sessions.load(&live.id).await.unwrap().unwrap();
    assert_eq!(loaded.data["user_id"], 7);
    live.data.insert("csrf".into(), serde_json::json!("t"));
    sessions.save(&live).await.unwrap();
    assert_eq!(
        sessions.load(&live.id).await.unwrap().unwrap().data.len(),
        2
    );

    // Another handle on the same store (another instance) sees it.
    let other = s.reopen().await.unwrap().session_store();
    assert!(other.load(&live.id).await.unwrap().is_some());

    // Only a hash of the id is kept: the database holds no usable cookie.
    let kept = s.raw_texts("SELECT id FROM tower_sessions").await;
    assert_eq!(kept.len(), 1);
    assert_ne!(kept[0], live.id.to_string());
    let planted = Id(kept[0].parse::<Id>().unwrap().0);
    assert!(sessions.load(&planted).await.unwrap().is_none());

    let mut old = Record {
        id: Id::default(),
        data: Default::default(),
        expiry_date: OffsetDateTime::now_utc() - Duration::hours(1),
    };
    sessions.create(&mut old).await.unwrap();
    s.store.delete_expired_sessions().await.unwrap();
    sessions.delete_expired().await.unwrap();
    assert!(sessions.load(&old.id).await.unwrap().is_none());
    assert!(sessions.load(&live.id).await.unwrap().is_some());
    sessions.delete(&live.id).await.unwrap();
    assert!(other.load(&live.id).await.unwrap().is_none());
}

pub async fn migrations_run_once_when_instances_start_together(s: Subject) {
    let applied = "SELECT COUNT(*) FROM _sqlx_migrations";
    let before = s.raw_count(applied).await;
    assert!(before >= 1);
    // Four more instances at once on the same database, plus a fresh one.
    let fresh = Subject::new(s.kind).await;
    let opens: Vec<_> = (0..4)
        .map(|i| {
            let config = if i % 2 == 0 { &s.config } else { &fresh.config }.clone();
            async move { facegate_app::store::open(&config).await.map(|_| ()) }
        })
        .collect();
    for r in futures_join(opens).await {
        r.expect("an instance failed to start");
    }
    assert_eq!(s.raw_count(applied).await, before, "nothing migrated twice");
    let failed = "SELECT COUNT(*) FROM _sqlx_migrations WHERE NOT success";
    assert_eq!(s.raw_count(failed).await, 0);
    assert_eq!(fresh.raw_count(applied).await, before);
}

/// Runs futures concurrently on this runtime, collecting their outputs.
async fn futures_join<F: std::future::Future + Send + 'static>(fs: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
