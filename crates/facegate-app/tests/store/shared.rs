//! What instances on one store share: challenges taken once, rate limits,
//! periodic jobs claimed once, exclusive locks, the audit trail written by
//! several, and (PostgreSQL) the change feed. "Another instance" is a second handle on PostgreSQL; an SQLite
//! database has one process, whose in-process state the checks use.

use std::time::Duration;

use facegate_app::domain::{AuditFilter, AuditKind, NewAuditEvent};
use facegate_app::store::{Change, RateHit, StoredChallenge};
use time::OffsetDateTime;

use crate::subject::{new_user, Kind, Subject};
use crate::templates::template;

fn challenge(id: &str, expires_in: time::Duration) -> StoredChallenge {
    StoredChallenge {
        id: id.into(),
        payload: format!("{{\"id\":\"{id}\"}}"),
        expires_at: (OffsetDateTime::now_utc() + expires_in)
            .replace_nanosecond(0)
            .unwrap(),
    }
}

pub async fn a_challenge_is_taken_once(s: Subject) {
    let peer = s.peer().await;
    let c = challenge("c1", time::Duration::minutes(1));
    s.store.put_challenge(&c).await.unwrap();
    // Ten takes at once from two instances: one gets it.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let st = if i % 2 == 0 {
                s.store.clone()
            } else {
                peer.clone()
            };
            tokio::spawn(async move { st.take_challenge("c1").await.unwrap() })
        })
        .collect();
    let mut taken = Vec::new();
    for t in tasks {
        taken.extend(t.await.unwrap());
    }
    assert_eq!(taken, vec![c]);
    assert!(s.store.take_challenge("c1").await.unwrap().is_none());
    assert!(s.store.take_challenge("never").await.unwrap().is_none());

    let old = challenge("old", time::Duration::minutes(-1));
    let live = challenge("live", time::Duration::minutes(1));
    s.store.put_challenge(&old).await.unwrap();
    s.store.put_challenge(&live).await.unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(s.store.delete_expired_challenges(now).await.unwrap(), 1);
    assert!(peer.take_challenge("old").await.unwrap().is_none());
    assert_eq!(peer.take_challenge("live").await.unwrap(), Some(live));
}

pub async fn rate_limits_hold_across_instances(s: Subject) {
    let peer = s.peer().await;
    let minute = Duration::from_secs(60);
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let st = if i % 2 == 0 {
                s.store.clone()
            } else {
                peer.clone()
            };
            tokio::spawn(async move { st.rate_hit("addr:192.0.2.1", 5, minute).await.unwrap() })
        })
        .collect();
    let mut hits = Vec::new();
    for t in tasks {
        hits.push(t.await.unwrap());
    }
    let allowed = hits.iter().filter(|h| h.allowed()).count();
    assert_eq!(allowed, 5, "{hits:?}");
    // One refusal per window is reported, standing for those before it.
    let reported: Vec<u64> = hits
        .iter()
        .filter_map(|h| match h {
            RateHit::Refused { report } => *report,
            RateHit::Allowed => None,
        })
        .collect();
    assert_eq!(reported, vec![1], "{hits:?}");
    assert!(!peer
        .rate_hit("addr:192.0.2.1", 5, minute)
        .await
        .unwrap()
        .allowed());
    assert!(s
        .store
        .rate_hit("addr:192.0.2.2", 5, minute)
        .await
        .unwrap()
        .allowed());
    assert!(s
        .store
        .rate_hit("addr:192.0.2.1", 0, minute)
        .await
        .unwrap()
        .allowed());

    // The window slides.
    let short = Duration::from_millis(1500);
    assert!(peer.rate_hit("user:ann", 1, short).await.unwrap().allowed());
    assert!(!s
        .store
        .rate_hit("user:ann", 1, short)
        .await
        .unwrap()
        .allowed());
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    assert!(s
        .store
        .rate_hit("user:ann", 1, short)
        .await
        .unwrap()
        .allowed());
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    s.store.delete_rate_limits_before(later).await.unwrap();
    assert!(s
        .store
        .rate_hit("user:ann", 1, short)
        .await
        .unwrap()
        .allowed());
}

pub async fn a_periodic_job_runs_once_per_period(s: Subject) {
    let peer = s.peer().await;
    let hour = Duration::from_secs(3600);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let st = if i % 2 == 0 {
                s.store.clone()
            } else {
                peer.clone()
            };
            tokio::spawn(async move { st.claim_periodic("sweep", hour).await.unwrap() })
        })
        .collect();
    let mut claims = 0;
    for t in tasks {
        claims += usize::from(t.await.unwrap());
    }
    assert_eq!(claims, 1);
    assert!(s.store.claim_periodic("other", hour).await.unwrap());
    // A short period comes round again.
    let short = Duration::from_millis(1100);
    assert!(peer.claim_periodic("often", short).await.unwrap());
    assert!(!s.store.claim_periodic("often", short).await.unwrap());
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    assert!(s.store.claim_periodic("often", short).await.unwrap());
}

pub async fn an_exclusive_lock_has_one_holder(s: Subject) {
    let other = s.reopen().await.unwrap();
    let held = s.store.try_exclusive("rotate-key").await.unwrap();
    assert!(held.is_some());
    assert!(other.try_exclusive("rotate-key").await.unwrap().is_none());
    assert!(other
        .try_exclusive("something-else")
        .await
        .unwrap()
        .is_some());
    drop(held);
    // Released at once (PostgreSQL: when the holding connection closes).
    let mut again = None;
    for _ in 0..50 {
        again = other.try_exclusive("rotate-key").await.unwrap();
        if again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "the lock was not released");
}

pub async fn changes_are_announced_to_every_instance(s: Subject) {
    let peer = s.reopen().await.unwrap();
    let Some(mut feed) = peer.changes() else {
        assert_eq!(s.kind, Kind::Sqlite, "only SQLite has no change feed");
        return;
    };
    // The feed says `Everything` once it listens.
    let first = tokio::time::timeout(Duration::from_secs(5), feed.recv()).await;
    assert_eq!(first.unwrap().unwrap(), Change::Everything);
    let ann = s.store.create_user(&new_user("ann")).await.unwrap();
    let bob = s.store.create_user(&new_user("bob")).await.unwrap();
    let mut expect = |want: Change| {
        let got = feed.try_recv();
        assert_eq!(got.ok(), Some(want));
    };
    let st = &s.store;
    let t = st.add_template(&template(ann.id, 1, "m1")).await.unwrap();
    settle().await;
    expect(Change::User(ann.id));
    st.add_templates(&[template(ann.id, 2, "m1"), template(bob.id, 3, "m1")])
        .await
        .unwrap();
    settle().await;
    expect(Change::Everything);
    st.delete_template(t.id).await.unwrap();
    st.set_active(ann.id, false).await.unwrap();
    st.set_active(ann.id, false).await.unwrap(); // no change, no news
    st.set_email(
        bob.id,
        &facegate_app::domain::Email::parse("b@example.org").unwrap(),
    )
    .await
    .unwrap();
    st.delete_user(bob.id).await.unwrap();
    settle().await;
    expect(Change::User(ann.id));
    expect(Change::User(ann.id));
    expect(Change::User(bob.id));
    // (Deleting an account deletes its templates too: one transaction,
    // one notification.)
    assert!(feed.try_recv().is_err(), "nothing else");
}

/// Long enough for a notification to arrive on loopback.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Two instances appending to the audit trail at once: every event is
/// kept once, each writer's events in the order it wrote them, and the
/// trail still refuses changes through either.
pub async fn the_audit_trail_stays_whole_and_ordered_with_two_writers(s: Subject) {
    let peer = s.peer().await;
    let writers: Vec<_> = [s.store.clone(), peer.clone()]
        .into_iter()
        .enumerate()
        .map(|(w, st)| {
            tokio::spawn(async move {
                for i in 0..25 {
                    let event = NewAuditEvent::new(AuditKind::Registration, "success")
                        .detail(format!("writer={w} seq={i:02}"));
                    st.append_audit(&event).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let filter = AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    };
    for st in [&s.store, &peer] {
        let mut events = st.audit_events(&filter).await.unwrap();
        assert_eq!(events.len(), 50);
        events.sort_by_key(|e| e.id);
        let ids: std::collections::BTreeSet<i64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 50, "ids are unique");
        for w in 0..2 {
            let mine: Vec<&str> = events
                .iter()
                .map(|e| e.detail.as_str())
                .filter(|d| d.starts_with(&format!("writer={w} ")))
                .collect();
            let expected: Vec<String> = (0..25).map(|i| format!("writer={w} seq={i:02}")).collect();
            assert_eq!(mine, expected, "writer {w}'s events in the order written");
        }
    }
    assert!(s.raw_execute("DELETE FROM audit_events").await.is_err());
    assert!(s
        .raw_execute("UPDATE audit_events SET outcome = 'failure'")
        .await
        .is_err());
}
