//! The OpenID Connect tables: clients, single-use codes, token families
//! with rotation and revocation, consents, and signing keys sealed at
//! rest, re-sealed by a master-key rotation.

use facegate_app::crypto::{MasterKey, Vault};
use facegate_app::domain::oidc::{
    AuthCode, Authn, Grant, NewOidcClient, OidcToken, Redeemed, TokenKind,
};
use facegate_app::store::{Keys, StoreError};
use time::{Duration, OffsetDateTime};

use crate::subject::{new_user, Subject};

fn client(id: &str) -> NewOidcClient {
    NewOidcClient {
        client_id: id.into(),
        name: format!("App {id}"),
        secret_hash: Some("argon2-hash".into()),
        redirect_uris: vec!["https://app.example/cb".into()],
        post_logout_redirect_uris: vec![],
        first_party: false,
        min_acr: None,
    }
}

fn grant(client_id: &str, user_id: i64) -> Grant {
    Grant {
        client_id: client_id.into(),
        user_id,
        scope: "openid profile".into(),
        authn: Authn {
            auth_time: 1_700_000_000,
            password: false,
            face: true,
            liveness: true,
        },
    }
}

fn token(hash: &str, kind: TokenKind, family: &str, grant: Grant) -> OidcToken {
    OidcToken {
        token_hash: hash.into(),
        kind,
        family: family.into(),
        grant,
        expires_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::hours(1),
        revoked: false,
    }
}

pub async fn clients_codes_and_tokens_round_trip(s: Subject) {
    let st = &s.store;
    let user = st.create_user(&new_user("ann")).await.unwrap();
    let added = st.add_oidc_client(&client("c1")).await.unwrap();
    assert_eq!(added.redirect_uris, ["https://app.example/cb"]);
    assert!(!added.is_public());
    assert!(matches!(
        st.add_oidc_client(&client("c1")).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(st.oidc_clients().await.unwrap().len(), 1);

    let code = AuthCode {
        code_hash: "h1".into(),
        grant: grant("c1", user.id),
        redirect_uri: "https://app.example/cb".into(),
        nonce: Some("n".into()),
        code_challenge: Some("c".repeat(43)),
        expires_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    };
    st.insert_auth_code(&code).await.unwrap();
    assert_eq!(
        st.redeem_auth_code("h1").await.unwrap(),
        Redeemed::Fresh(code.clone())
    );
    assert_eq!(
        st.redeem_auth_code("h1").await.unwrap(),
        Redeemed::Reused(code)
    );
    assert_eq!(
        st.redeem_auth_code("nope").await.unwrap(),
        Redeemed::Unknown
    );

    let g = grant("c1", user.id);
    st.insert_oidc_token(&token("a1", TokenKind::Access, "h1", g.clone()))
        .await
        .unwrap();
    st.insert_oidc_token(&token("r1", TokenKind::Refresh, "h1", g.clone()))
        .await
        .unwrap();
    assert!(matches!(
        st.redeem_refresh_token("a1").await.unwrap(),
        Redeemed::Unknown
    ));
    assert!(matches!(
        st.redeem_refresh_token("r1").await.unwrap(),
        Redeemed::Fresh(_)
    ));
    assert!(matches!(
        st.redeem_refresh_token("r1").await.unwrap(),
        Redeemed::Reused(_)
    ));
    assert_eq!(st.revoke_token_family("h1").await.unwrap(), 2);
    assert!(st.oidc_token("a1").await.unwrap().unwrap().revoked);
    assert_eq!(st.oidc_token("a1").await.unwrap().unwrap().grant, g);

    // Consents, and withdrawing one revokes the client's tokens.
    st.insert_oidc_token(&token("a2", TokenKind::Access, "f2", g.clone()))
        .await
        .unwrap();
    st.set_consent(user.id, "c1", "openid").await.unwrap();
    st.set_consent(user.id, "c1", "openid profile")
        .await
        .unwrap();
    let consents = st.consents_for_user(user.id).await.unwrap();
    assert_eq!(consents.len(), 1);
    assert_eq!(
        (consents[0].scope.as_str(), consents[0].client_name.as_str()),
        ("openid profile", "App c1")
    );
    assert!(st.revoke_consent(user.id, "c1").await.unwrap());
    assert!(st.consent(user.id, "c1").await.unwrap().is_none());
    assert!(st.oidc_token("a2").await.unwrap().unwrap().revoked);

    // Expired codes and tokens are swept; removing a client removes the rest.
    let later = OffsetDateTime::now_utc() + Duration::days(1);
    assert!(st.delete_expired_oidc(later).await.unwrap() >= 3);
    st.insert_oidc_token(&token("a3", TokenKind::Access, "f3", g))
        .await
        .unwrap();
    assert!(st.remove_oidc_client("c1").await.unwrap());
    assert!(!st.remove_oidc_client("c1").await.unwrap());
    assert!(st.oidc_token("a3").await.unwrap().is_none());
    // Deleting a user deletes their tokens.
    st.add_oidc_client(&client("c2")).await.unwrap();
    st.insert_oidc_token(&token("a4", TokenKind::Access, "f4", grant("c2", user.id)))
        .await
        .unwrap();
    st.delete_user(user.id).await.unwrap();
    assert!(st.oidc_token("a4").await.unwrap().is_none());
}

pub async fn signing_keys_are_sealed_and_rotate_with_the_master_key(s: Subject) {
    let st = &s.store;
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nnot-a-real-key-but-secret\n-----END RSA PRIVATE KEY-----\n";
    assert!(st.add_signing_key("k1", pem, true).await.unwrap());
    assert!(
        !st.add_signing_key("k0", pem, true).await.unwrap(),
        "only the first"
    );
    assert!(st.add_signing_key("k2", pem, false).await.unwrap());
    let keys = st.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    let current: Vec<_> = keys.iter().filter(|k| k.retired_at.is_none()).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].kid, "k2");
    assert_eq!(keys[0].private_pem.0, pem);
    // Nothing of the private key is stored in the clear.
    for blob in s.raw_blobs("SELECT sealed FROM oidc_signing_keys").await {
        let text = String::from_utf8_lossy(&blob).to_string();
        assert!(!text.contains("not-a-real-key"), "sealed at rest");
    }

    // A master-key rotation re-seals them; the new key alone opens them.
    let new = MasterKey::generate();
    let vault = Vault::new(new.clone(), [s.key.clone()]);
    let rotating = s.reopen_with(Keys::Vault(vault)).await.unwrap();
    facegate_app::service::rotate_keys(&rotating).await.unwrap();
    let only_new = s
        .reopen_with(Keys::Vault(Vault::new(new, [])))
        .await
        .unwrap();
    assert_eq!(only_new.signing_keys().await.unwrap().len(), 2);

    // Retired keys are pruned once their tokens have expired.
    let later = OffsetDateTime::now_utc() + Duration::hours(1);
    assert_eq!(only_new.prune_signing_keys(later).await.unwrap(), 1);
    assert_eq!(only_new.signing_keys().await.unwrap()[0].kid, "k2");
}
