//! Face templates and their photos: what goes in comes out, only sealed
//! bytes are at rest, deletion takes the photos along.

use facegate_app::domain::{AuditFilter, AuditKind, NewAuditEvent};
use facegate_app::domain::{Jpeg, LoginMethod, NewLoginAttempt, NewTemplate};

use crate::subject::{new_user, Subject};

/// A unit-length embedding that differs per `seed`.
pub fn embedding(seed: u32) -> Vec<f32> {
    let mut v: Vec<f32> = (0..128)
        .map(|i| ((i as f32 + 1.0) * (seed as f32 + 0.5)).sin())
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Bytes that stand for a photo (the store does not decode them).
pub fn photo(seed: u8) -> Jpeg {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..4000u32).map(|i| (i as u8).wrapping_mul(seed)));
    Jpeg(bytes)
}

pub fn template(user_id: i64, seed: u32, model: &str) -> NewTemplate {
    NewTemplate {
        user_id,
        model_id: model.into(),
        embedding: embedding(seed),
        quality: 0.75,
        photo: Some(photo(seed as u8)),
    }
}

pub async fn templates_round_trip_with_their_photos(s: Subject) {
    let st = &s.store;
    let ann = st.create_user(&new_user("ann")).await.unwrap();
    let first = st.add_template(&template(ann.id, 1, "m1")).await.unwrap();
    assert_eq!(first.embedding, embedding(1));
    let second = st.add_template(&template(ann.id, 2, "m1")).await.unwrap();
    let got = st.template(second.id).await.unwrap().unwrap();
    assert_eq!(
        (got.id, got.user_id, got.model_id.as_str()),
        (second.id, ann.id, "m1")
    );
    assert_eq!(got.embedding, embedding(2), "bit for bit");
    assert!((got.quality - 0.75).abs() < 1e-6);
    assert_eq!(got.created_at, second.created_at);
    assert_eq!(st.face_photo(second.id).await.unwrap(), Some(photo(2)));
    let mine = st.templates_for_user(ann.id).await.unwrap();
    let ids: Vec<i64> = mine.iter().map(|t| t.id).collect();
    assert_eq!(ids, [first.id, second.id], "oldest first");
    assert!(st.template(9999).await.unwrap().is_none());
    assert!(st.face_photo(9999).await.unwrap().is_none());

    // A template without a photo, and a batch.
    let mut bare = template(ann.id, 3, "m1");
    bare.photo = None;
    let bare = st.add_template(&bare).await.unwrap();
    assert!(st.face_photo(bare.id).await.unwrap().is_none());
    let batch: Vec<_> = (10..30).map(|i| template(ann.id, i, "m2")).collect();
    let ids = st.add_templates(&batch).await.unwrap();
    assert_eq!(ids.len(), 20);
    for (id, seed) in ids.iter().zip(10..30) {
        assert_eq!(
            st.template(*id).await.unwrap().unwrap().embedding,
            embedding(seed)
        );
        assert_eq!(st.face_photo(*id).await.unwrap(), Some(photo(seed as u8)));
    }
    let summary = st.list_users().await.unwrap();
    assert_eq!(summary[0].faces, 23);
}

pub async fn matching_sees_active_users_of_the_model(s: Subject) {
    let st = &s.store;
    let ann = st.create_user(&new_user("ann")).await.unwrap();
    let bob = st.create_user(&new_user("bob")).await.unwrap();
    st.add_template(&template(ann.id, 1, "m1")).await.unwrap();
    st.add_template(&template(ann.id, 2, "m2")).await.unwrap();
    st.add_template(&template(bob.id, 3, "m1")).await.unwrap();
    let mut users: Vec<i64> = st
        .active_templates("m1")
        .await
        .unwrap()
        .iter()
        .map(|t| t.user_id)
        .collect();
    users.sort();
    assert_eq!(users, [ann.id, bob.id]);
    st.set_active(bob.id, false).await.unwrap();
    let m1 = st.active_templates("m1").await.unwrap();
    assert_eq!(m1.len(), 1);
    assert_eq!((m1[0].user_id, &m1[0].embedding), (ann.id, &embedding(1)));
    assert!(st.active_templates("m3").await.unwrap().is_empty());
}

/// The gallery is read in pages (10 000 rows each): every template of a
/// larger gallery is read once, across the pages' edges, and a deactivated
/// user's are left out wherever they fall.
pub async fn matching_reads_a_large_gallery_whole(s: Subject) {
    let st = &s.store;
    let ann = st.create_user(&new_user("ann")).await.unwrap();
    let bob = st.create_user(&new_user("bob")).await.unwrap();
    let batch: Vec<_> = (0..20_050u32)
        .map(|i| {
            let mut t = template(if i % 2 == 0 { ann.id } else { bob.id }, i, "m1");
            t.photo = None;
            t
        })
        .collect();
    st.add_templates(&batch).await.unwrap();
    let all = st.active_templates("m1").await.unwrap();
    assert_eq!(all.len(), 20_050);
    let mut seeds: Vec<u32> = (0..20_050).collect();
    let found: std::collections::HashSet<Vec<u32>> = all
        .iter()
        .map(|t| t.embedding.iter().map(|x| x.to_bits()).collect())
        .collect();
    seeds.retain(|&i| {
        !found.contains(&embedding(i).iter().map(|x| x.to_bits()).collect::<Vec<_>>())
    });
    assert!(
        seeds.is_empty(),
        "templates not read: {:?}",
        &seeds[..seeds.len().min(5)]
    );
    st.set_active(bob.id, false).await.unwrap();
    let anns = st.active_templates("m1").await.unwrap();
    assert_eq!(anns.len(), 10_025);
    assert!(anns.iter().all(|t| t.user_id == ann.id));
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub async fn biometric_data_is_sealed_at_rest(s: Subject) {
    let st = &s.store;
    let ann = st.create_user(&new_user("ann")).await.unwrap();
    let t = st.add_template(&template(ann.id, 7, "m1")).await.unwrap();
    let mut attempt =
        NewLoginAttempt::rate_limited(None, "192.0.2.1".into(), LoginMethod::FaceIdentify);
    attempt.user_id = Some(ann.id);
    attempt.probe = Some(photo(9));
    st.record_attempt(&attempt).await.unwrap();
    let plain_embedding: Vec<u8> = embedding(7).iter().flat_map(|x| x.to_le_bytes()).collect();
    let key = s.key.id_hex();
    for (what, sql, plain) in [
        (
            "embedding",
            "SELECT embedding FROM face_templates",
            plain_embedding.clone(),
        ),
        ("photo", "SELECT sealed FROM face_photos", photo(7).0),
        ("probe", "SELECT sealed FROM login_probes", photo(9).0),
    ] {
        let stored = s.raw_blobs(sql).await;
        assert_eq!(stored.len(), 1, "{what}");
        assert_eq!(&stored[0][..4], b"FGC1", "{what} is an envelope");
        assert_eq!(
            hex::encode(&stored[0][4..12]),
            key,
            "{what} sealed with the key"
        );
        assert!(!contains(&stored[0], &plain[16..48]), "{what} in the clear");
    }
    for sql in [
        "SELECT key_id FROM face_templates",
        "SELECT key_id FROM face_photos",
        "SELECT key_id FROM login_probes",
    ] {
        assert_eq!(s.raw_texts(sql).await, std::slice::from_ref(&key), "{sql}");
    }
    // What the services read back is the plaintext.
    assert_eq!(
        st.template(t.id).await.unwrap().unwrap().embedding,
        embedding(7)
    );
    let a = st.recent_attempts(1).await.unwrap().remove(0);
    assert!(a.has_probe());
    assert_eq!(st.probe_image(a.id).await.unwrap(), Some(photo(9)));
}

pub async fn deleting_templates_deletes_their_photos(s: Subject) {
    let st = &s.store;
    let ann = st.create_user(&new_user("ann")).await.unwrap();
    let bob = st.create_user(&new_user("bob")).await.unwrap();
    let a1 = st.add_template(&template(ann.id, 1, "m1")).await.unwrap();
    st.add_template(&template(ann.id, 2, "m1")).await.unwrap();
    st.add_template(&template(ann.id, 3, "m1")).await.unwrap();
    let b1 = st.add_template(&template(bob.id, 4, "m1")).await.unwrap();
    st.delete_template(a1.id).await.unwrap();
    assert!(st.template(a1.id).await.unwrap().is_none());
    assert!(st.face_photo(a1.id).await.unwrap().is_none());
    assert_eq!(s.raw_count("SELECT COUNT(*) FROM face_photos").await, 3);
    assert_eq!(st.delete_templates_for_user(ann.id).await.unwrap(), 2);
    assert!(st.templates_for_user(ann.id).await.unwrap().is_empty());
    assert_eq!(s.raw_count("SELECT COUNT(*) FROM face_photos").await, 1);
    assert_eq!(st.face_photo(b1.id).await.unwrap(), Some(photo(4)));
    assert_eq!(st.delete_templates_for_user(ann.id).await.unwrap(), 0);
}

pub async fn deleting_a_user_leaves_nothing_of_them(s: Subject) {
    let st = &s.store;
    let ann = st.create_user(&new_user("ann")).await.unwrap();
    let keep = st.create_user(&new_user("keep")).await.unwrap();
    for i in 0..3 {
        st.add_template(&template(ann.id, i, "m1")).await.unwrap();
    }
    st.add_template(&template(keep.id, 9, "m1")).await.unwrap();
    for user in [ann.id, keep.id] {
        let mut a =
            NewLoginAttempt::rate_limited(None, "192.0.2.1".into(), LoginMethod::FaceVerify);
        a.user_id = Some(user);
        a.probe = Some(photo(user as u8));
        st.record_attempt(&a).await.unwrap();
    }
    st.append_audit(&NewAuditEvent::new(AuditKind::Registration, "success").by(ann.id, "ann"))
        .await
        .unwrap();
    assert_eq!(st.delete_user(ann.id).await.unwrap(), 3);
    assert!(st.user_by_id(ann.id).await.unwrap().is_none());
    assert!(st.user_by_username("ann").await.unwrap().is_none());
    assert!(st.templates_for_user(ann.id).await.unwrap().is_empty());
    assert!(st.attempts_for_user(ann.id).await.unwrap().is_empty());
    for (table, n) in [
        ("face_templates", 1),
        ("face_photos", 1),
        ("login_attempts", 1),
        ("login_probes", 1),
        ("users", 1),
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        assert_eq!(s.raw_count(&sql).await, n, "{table}");
    }
    // The audit trail outlives the account; the other user is untouched.
    assert_eq!(
        st.audit_events(&AuditFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(st.templates_for_user(keep.id).await.unwrap().len(), 1);
    assert_eq!(st.attempts_for_user(keep.id).await.unwrap().len(), 1);
}
