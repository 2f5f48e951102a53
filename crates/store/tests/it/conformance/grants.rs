//! Codes, refresh rotation, revocation and signing keys.

use super::*;

pub(super) async fn code_is_redeemed_once_and_replay_names_grant(db: &TestDatabase) {
    let store = db.open().await;
    let u = user(&store, "alice").await;
    let c = code(&store, &u.id, "client-1").await;
    let g = grant(&u.id, "client-1");
    let p = pair(3600);
    assert_eq!(
        store.issue_from_code(&c, NOW, &g, &p).await.unwrap(),
        CodeRedemption::Issued
    );
    let info = store
        .find_access_token(&p.access, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.grant_id, g.id);
    assert_eq!(info.subject, "local:alice");
    assert_eq!(
        store.get_code(&c, NOW).await.unwrap().unwrap().used_at,
        Some(NOW)
    );
    // Replay: nothing new is written and the grant is named for revocation.
    let again = store
        .issue_from_code(&c, NOW + 1, &grant(&u.id, "client-1"), &pair(3600))
        .await;
    assert_eq!(
        again.unwrap(),
        CodeRedemption::AlreadyUsed {
            grant_id: Some(g.id.clone())
        }
    );
    // Unknown and expired codes.
    assert_eq!(
        store
            .issue_from_code(&hash(), NOW, &g, &pair(1))
            .await
            .unwrap(),
        CodeRedemption::NotFound
    );
    let c2 = code(&store, &u.id, "client-1").await;
    assert_eq!(
        store
            .issue_from_code(&c2, NOW + 61, &grant(&u.id, "client-1"), &pair(1))
            .await
            .unwrap(),
        CodeRedemption::NotFound
    );
}

pub(super) async fn concurrent_code_redemption_has_one_winner(db: &TestDatabase) {
    let store = db.open().await;
    let u = user(&store, "alice").await;
    let c = code(&store, &u.id, "client-1").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let c = c.clone();
            let g = grant(&u.id, "client-1");
            tokio::spawn(async move { store.issue_from_code(&c, NOW, &g, &pair(60)).await })
        })
        .collect();
    let mut issued = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            CodeRedemption::Issued => issued += 1,
            CodeRedemption::AlreadyUsed { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(issued, 1);
}

pub(super) async fn refresh_rotation_grace_and_reuse(db: &TestDatabase) {
    let store = db.open().await;
    let (g, p) = issued(&store).await;
    let r1 = p.refresh.clone().unwrap();
    assert!(store.find_refresh_token(&r1, NOW).await.unwrap().is_some());

    let next = pair(3600);
    let out = store
        .rotate_refresh(&r1, NOW + 10, 30, &next, "sealed-successor")
        .await
        .unwrap();
    assert!(matches!(out, RefreshRotation::Rotated { ref grant } if grant.id == g.id));
    assert!(
        store
            .find_refresh_token(&r1, NOW + 10)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_token(next.refresh.as_ref().unwrap(), NOW + 10)
            .await
            .unwrap()
            .is_some()
    );

    // Within the grace window the same successor comes back, nothing is written.
    let out = store
        .rotate_refresh(&r1, NOW + 20, 30, &pair(3600), "other")
        .await
        .unwrap();
    assert_eq!(
        out,
        RefreshRotation::Grace {
            grant: g.clone(),
            successor_sealed: "sealed-successor".into()
        }
    );
    // After the window: reuse detected, the whole family is revoked.
    let out = store
        .rotate_refresh(&r1, NOW + 100, 30, &pair(3600), "x")
        .await
        .unwrap();
    assert_eq!(
        out,
        RefreshRotation::ReuseDetected {
            grant_id: g.id.clone()
        }
    );
    assert!(
        store
            .find_access_token(&next.access, NOW + 100)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_access_token(&p.access, NOW + 100)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_refresh_token(next.refresh.as_ref().unwrap(), NOW + 100)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_grant(&g.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    // And unknown tokens are simply invalid.
    assert_eq!(
        store
            .rotate_refresh(&hash(), NOW, 30, &pair(1), "x")
            .await
            .unwrap(),
        RefreshRotation::Invalid
    );
}

pub(super) async fn concurrent_refresh_rotation_has_one_winner(db: &TestDatabase) {
    let store = db.open().await;
    let (_g, p) = issued(&store).await;
    let r1 = p.refresh.clone().unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let r1 = r1.clone();
            tokio::spawn(async move {
                store
                    .rotate_refresh(&r1, NOW + 1, 30, &pair(3600), &format!("s{i}"))
                    .await
            })
        })
        .collect();
    let mut rotated = 0;
    let mut sealed = std::collections::HashSet::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            RefreshRotation::Rotated { .. } => rotated += 1,
            RefreshRotation::Grace {
                successor_sealed, ..
            } => {
                sealed.insert(successor_sealed);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1);
    // Every loser got the winner's successor.
    assert!(sealed.len() <= 1);
}

pub(super) async fn revocation_hides_tokens(db: &TestDatabase) {
    let store = db.open().await;
    let (g, p) = issued(&store).await;
    store.delete_access_token(&p.access).await.unwrap();
    assert!(
        store
            .find_access_token(&p.access, NOW)
            .await
            .unwrap()
            .is_none()
    );
    let r = p.refresh.unwrap();
    assert!(store.find_refresh_token(&r, NOW).await.unwrap().is_some());
    store.revoke_grant(&g.id, NOW).await.unwrap();
    assert!(store.find_refresh_token(&r, NOW).await.unwrap().is_none());
    assert_eq!(
        store
            .rotate_refresh(&r, NOW, 30, &pair(1), "x")
            .await
            .unwrap(),
        RefreshRotation::Invalid
    );
}

pub(super) async fn signing_keys_list_newest_first_and_retire(db: &TestDatabase) {
    let store = db.open().await;
    let key = |kid: &str, at: i64| SigningKeyRecord {
        kid: kid.into(),
        alg: "RS256".into(),
        private_sealed: format!("v1.k1.{kid}"),
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        created_at: at,
        retired_at: None,
    };
    store.insert_signing_key(&key("old", NOW)).await.unwrap();
    store
        .insert_signing_key(&key("new", NOW + 10))
        .await
        .unwrap();
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["new", "old"]
    );
    assert_eq!(store.retire_signing_keys("new", NOW + 20).await.unwrap(), 1);
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(keys[0].retired_at, None);
    assert_eq!(keys[1].retired_at, Some(NOW + 20));
    assert!(store.insert_signing_key(&key("new", NOW)).await.is_err());
}
