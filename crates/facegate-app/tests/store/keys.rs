//! The master key: a wrong or missing key stops the start, rotation
//! re-seals record by record, and records that are not sealed as they
//! should be (planted, or moved from another record) are refused and
//! audited, before and after a restart or a rotation.

use facegate_app::crypto::{MasterKey, Vault};
use facegate_app::domain::{AuditFilter, LoginMethod, NewLoginAttempt};
use facegate_app::service::rotate_keys;
use facegate_app::store::Keys;

use crate::subject::{new_user, Kind, Subject};
use crate::templates::{embedding, photo, template};

pub async fn a_wrong_key_is_refused_before_anything_is_written(s: Subject) {
    let ann = s.store.create_user(&new_user("ann")).await.unwrap();
    s.store
        .add_template(&template(ann.id, 1, "m1"))
        .await
        .unwrap();
    let other = Vault::new(MasterKey::generate(), []);
    let e = s
        .reopen_with(Keys::Vault(other))
        .await
        .err()
        .expect("a wrong key");
    let msg = e.to_string();
    assert!(
        msg.contains("wrong master key") && msg.contains(&s.key.id_hex()),
        "{msg}"
    );
    // No key at all (none configured, no key file): refused, none made.
    let mut keyless = s.config.clone();
    keyless.master_key = None;
    let e = facegate_app::store::open(&keyless)
        .await
        .err()
        .expect("no key");
    assert!(e.to_string().contains("no master key"), "{e}");
    assert!(!keyless.data_dir.join("master.key").exists());
    // The right key still opens it.
    let again = s.reopen().await.unwrap();
    assert_eq!(again.templates_for_user(ann.id).await.unwrap().len(), 1);
}

pub async fn keys_rotate_record_by_record(s: Subject) {
    let st = &s.store;
    let ann = st.create_user(&new_user("ann")).await.unwrap();
    let ids = st
        .add_templates(
            &(0..4)
                .map(|i| template(ann.id, i, "m1"))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let mut a = NewLoginAttempt::rate_limited(None, "192.0.2.1".into(), LoginMethod::FaceIdentify);
    a.probe = Some(photo(5));
    st.record_attempt(&a).await.unwrap();
    let old = s.key.clone();
    let new = MasterKey::generate();
    let rotating = s
        .reopen_with(Keys::Vault(Vault::new(new.clone(), [old.clone()])))
        .await
        .unwrap();
    assert_eq!(rotating.templates_not_on_primary().await.unwrap(), ids);
    assert_eq!(rotating.probes_not_on_primary().await.unwrap().len(), 1);
    // Interrupted after one record: both keys in use, both open for an
    // instance that has both.
    let one = rotating.reseal_template(ids[0]).await.unwrap();
    assert_eq!(one, facegate_app::store::Resealed::Done);
    let mut keys = s
        .raw_texts("SELECT DISTINCT key_id FROM face_templates")
        .await;
    keys.sort();
    assert_eq!(keys.len(), 2);
    assert_eq!(rotating.templates_for_user(ann.id).await.unwrap().len(), 4);
    // One without the new key cannot use that record, and does not take
    // it for tampering.
    assert_eq!(st.templates_for_user(ann.id).await.unwrap().len(), 3);
    let tampering = facegate_app::domain::AuditFilter {
        kind: Some("tampering".into()),
        ..Default::default()
    };
    assert!(st.audit_events(&tampering).await.unwrap().is_empty());
    // The rest, resumed.
    let report = rotate_keys(&rotating).await.unwrap();
    assert_eq!((report.resealed, report.probes, report.refused), (3, 1, 0));
    for sql in [
        "SELECT DISTINCT key_id FROM face_templates",
        "SELECT DISTINCT key_id FROM face_photos",
        "SELECT DISTINCT key_id FROM login_probes",
        "SELECT key_id FROM key_check",
    ] {
        assert_eq!(s.raw_texts(sql).await, [new.id_hex()], "{sql}");
    }
    // The new key alone opens everything; the old one alone nothing.
    let after = s
        .reopen_with(Keys::Vault(Vault::new(new, [])))
        .await
        .unwrap();
    for (id, seed) in ids.iter().zip(0..) {
        assert_eq!(
            after.template(*id).await.unwrap().unwrap().embedding,
            embedding(seed)
        );
        assert_eq!(
            after.face_photo(*id).await.unwrap(),
            Some(photo(seed as u8))
        );
    }
    let attempt = after.recent_attempts(1).await.unwrap().remove(0);
    assert_eq!(after.probe_image(attempt.id).await.unwrap(), Some(photo(5)));
    let e = s.reopen_with(Keys::Vault(Vault::new(old, []))).await.err();
    assert!(e
        .expect("the old key")
        .to_string()
        .contains("wrong master key"));
}

pub async fn unsealed_or_moved_records_are_refused_and_audited(s: Subject) {
    let st = &s.store;
    let ann = st.create_user(&new_user("ann")).await.unwrap();
    let bob = st.create_user(&new_user("bob")).await.unwrap();
    let a1 = st.add_template(&template(ann.id, 1, "m1")).await.unwrap();
    let a2 = st.add_template(&template(ann.id, 2, "m1")).await.unwrap();
    let a3 = st.add_template(&template(ann.id, 3, "m1")).await.unwrap();
    let b1 = st.add_template(&template(bob.id, 4, "m1")).await.unwrap();
    for user in [ann.id, bob.id] {
        let mut a =
            NewLoginAttempt::rate_limited(None, "192.0.2.1".into(), LoginMethod::FaceVerify);
        a.user_id = Some(user);
        a.probe = Some(photo(user as u8));
        st.record_attempt(&a).await.unwrap();
    }
    let attempts = st.recent_attempts(2).await.unwrap();
    let plain: Vec<u8> = embedding(4).iter().flat_map(|x| x.to_le_bytes()).collect();

    // An attacker's embedding in the clear, as ann's first template: with
    // no key id (SQLite's legacy shape; PostgreSQL's schema has no room
    // for it), and with the real key id.
    let no_key = format!(
        "UPDATE face_templates SET embedding = {}, key_id = NULL WHERE id = {}",
        s.blob(&plain),
        a1.id
    );
    let planted = s.raw_execute(&no_key).await;
    match s.kind {
        Kind::Sqlite => assert_eq!(planted.unwrap(), 1),
        Kind::Postgres => assert!(planted.is_err(), "a NULL key id was stored"),
    }
    let with_key = format!(
        "UPDATE face_templates SET embedding = {} WHERE id = {}",
        s.blob(&plain),
        a1.id
    );
    assert_eq!(s.raw_execute(&with_key).await.unwrap(), 1);
    // Bob's sealed embedding moved onto ann's second template.
    let moved = format!(
        "UPDATE face_templates SET embedding = (SELECT embedding FROM face_templates WHERE id = {}) \
         WHERE id = {}",
        b1.id, a2.id
    );
    s.raw_execute(&moved).await.unwrap();
    // A plaintext photo for ann's third, and the two probes swapped.
    let photo_sql = format!(
        "UPDATE face_photos SET sealed = {} WHERE template_id = {}",
        s.blob(&photo(3).0),
        a3.id
    );
    s.raw_execute(&photo_sql).await.unwrap();
    let swap = format!(
        "UPDATE login_probes SET sealed = (SELECT sealed FROM login_probes WHERE attempt_id = {}) \
         WHERE attempt_id = {}",
        attempts[0].id, attempts[1].id
    );
    s.raw_execute(&swap).await.unwrap();

    let check = |store: facegate_app::store::DynStore| {
        let attempts = attempts.clone();
        async move {
            let matchable: Vec<i64> = store
                .active_templates("m1")
                .await
                .unwrap()
                .iter()
                .map(|t| t.user_id)
                .collect();
            // Only ann's third (its embedding is intact) and bob's remain.
            assert_eq!(
                matchable.iter().filter(|&&u| u == ann.id).count(),
                1,
                "{matchable:?}"
            );
            assert_eq!(matchable.iter().filter(|&&u| u == bob.id).count(), 1);
            assert!(store.template(a1.id).await.unwrap().is_none());
            assert!(store.template(a2.id).await.unwrap().is_none());
            let anns: Vec<i64> = store
                .templates_for_user(ann.id)
                .await
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect();
            assert_eq!(anns, [a3.id]);
            assert!(
                store.face_photo(a3.id).await.unwrap().is_none(),
                "plaintext photo shown"
            );
            assert!(store.probe_image(attempts[1].id).await.unwrap().is_none());
            assert_eq!(
                store.probe_image(attempts[0].id).await.unwrap(),
                Some(photo(bob.id as u8))
            );
        }
    };
    check(st.clone()).await;
    let tampering = AuditFilter {
        kind: Some("tampering".into()),
        ..Default::default()
    };
    let events = st.audit_events(&tampering).await.unwrap();
    for record in [
        format!("face_templates/{}", a1.id),
        format!("face_templates/{}", a2.id),
        format!("face_photos/{}", a3.id),
        format!("login_probes/{}", attempts[1].id),
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.detail.contains(&format!("record={record} "))),
            "{record} not audited: {events:?}"
        );
    }

    // A restart does not launder them, nor does a key rotation.
    check(s.reopen().await.unwrap()).await;
    let new = MasterKey::generate();
    let rotating = s
        .reopen_with(Keys::Vault(Vault::new(new.clone(), [s.key.clone()])))
        .await
        .unwrap();
    let report = rotate_keys(&rotating).await.unwrap();
    assert_eq!(report.refused, 4, "{report:?}");
    let after = s
        .reopen_with(Keys::Vault(Vault::new(new, [])))
        .await
        .unwrap();
    check(after).await;
    if s.kind == Kind::Sqlite {
        let sql = format!(
            "SELECT COUNT(*) FROM face_templates WHERE id = {} AND key_id IS NULL",
            a1.id
        );
        assert_eq!(
            s.raw_count(&sql).await,
            1,
            "the planted row stays as it was"
        );
    }
}
