//! The behaviour every store backend must have. Each test runs against SQLite,
//! and against PostgreSQL when `XMCP_TEST_DATABASE_URL` is set (CI sets it).

use std::sync::Arc;
use xmcp_crypto::token::{NewToken, TokenHash, TokenKind};
use xmcp_store::testing::TestDatabase;
use xmcp_store::*;

const NOW: i64 = 1_800_000_000;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = xmcp_store::testing::TestDatabase::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if xmcp_store::testing::required(
                        "XMCP_TEST_DATABASE_URL",
                        concat!("PostgreSQL conformance: ", stringify!($name)),
                    ).is_none() {
                        return;
                    }
                    let Some(db) = xmcp_store::testing::TestDatabase::postgres().await else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

conformance!(
    clients_round_trip_and_conflict,
    code_is_redeemed_once_and_replay_names_grant,
    concurrent_code_redemption_has_one_winner,
    refresh_rotation_grace_and_reuse,
    concurrent_refresh_rotation_has_one_winner,
    pending_is_consumed_once_and_found_by_upstream_state,
    revocation_hides_tokens,
    sweep_deletes_only_expired_rows,
    upstream_tokens_upsert,
    upstream_refresh_lease_is_exclusive_and_commits_with_the_tokens,
    concurrent_upstream_leases_have_one_winner,
    users_upsert_by_subject,
    signing_keys_list_newest_first_and_retire,
    device_authorization_polls_slow_down_and_approve_once,
    device_authorization_denied_and_expired,
    local_state_round_trip,
    mcp_sessions_expire_slide_and_go_with_their_user,
    a_users_sessions_are_bounded_oldest_first,
    rate_limits_allow_a_burst_then_one_per_interval,
    concurrent_rate_takes_admit_exactly_the_burst,
    peeking_at_a_rate_counts_nothing,
    admin_lists_and_deletes,
    spend_is_held_against_every_cap_and_settled,
    concurrent_holds_never_pass_a_cap,
    audit_lists_and_sums_usage_and_is_swept,
    an_idempotency_key_is_claimed_once_and_keeps_its_result,
    sealed_values_are_listed_and_replaced_only_where_unchanged,
);

fn hash() -> TokenHash {
    NewToken::generate(TokenKind::AccessToken).hash().clone()
}

async fn user(store: &Arc<dyn Store>, name: &str) -> User {
    store
        .upsert_user(
            &UserIdentity {
                subject: format!("local:{name}"),
                username: Some(name.into()),
                display_name: None,
            },
            NOW,
        )
        .await
        .unwrap()
}

async fn code(store: &Arc<dyn Store>, user_id: &str, client_id: &str) -> TokenHash {
    let h = hash();
    store
        .insert_code(&AuthorizationCode {
            hash: h.clone(),
            client_id: client_id.into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            redirect_uri_explicit: true,
            code_challenge: "c".into(),
            resource: "https://mcp.example/mcp".into(),
            scope: "mcp".into(),
            user_id: user_id.into(),
            created_at: NOW,
            expires_at: NOW + 60,
            used_at: None,
        })
        .await
        .unwrap();
    h
}

fn grant(user_id: &str, client_id: &str) -> Grant {
    Grant {
        id: format!("gr_{}", &hash().as_str()[..16]),
        user_id: user_id.into(),
        client_id: client_id.into(),
        scope: "mcp".into(),
        resource: "https://mcp.example/mcp".into(),
        created_at: NOW,
        revoked_at: None,
    }
}

fn pair(access_ttl: i64) -> TokenPair {
    TokenPair {
        access: hash(),
        access_expires_at: NOW + access_ttl,
        refresh: Some(hash()),
        refresh_expires_at: NOW + 86_400,
    }
}

/// A user, a code, and the grant issued from it.
async fn issued(store: &Arc<dyn Store>) -> (Grant, TokenPair) {
    let u = user(store, "alice").await;
    let c = code(store, &u.id, "client-1").await;
    let g = grant(&u.id, "client-1");
    let p = pair(3600);
    assert_eq!(
        store.issue_from_code(&c, NOW, &g, &p).await.unwrap(),
        CodeRedemption::Issued
    );
    (g, p)
}

async fn clients_round_trip_and_conflict(db: &TestDatabase) {
    let store = db.open().await;
    let rec = ClientRecord {
        client_id: "dyn_1".into(),
        secret_hash: Some(hash()),
        metadata: serde_json::json!({"redirect_uris": ["http://127.0.0.1/cb"]}),
        created_at: NOW,
        expires_at: Some(NOW + 100),
    };
    store.insert_client(&rec).await.unwrap();
    assert_eq!(store.get_client("dyn_1").await.unwrap(), Some(rec.clone()));
    assert!(matches!(
        store.insert_client(&rec).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.get_client("nope").await.unwrap(), None);
    assert_eq!(store.count_clients_since(NOW).await.unwrap(), 1);
    assert_eq!(store.count_clients_since(NOW + 1).await.unwrap(), 0);
}

async fn code_is_redeemed_once_and_replay_names_grant(db: &TestDatabase) {
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

async fn concurrent_code_redemption_has_one_winner(db: &TestDatabase) {
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

async fn refresh_rotation_grace_and_reuse(db: &TestDatabase) {
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

async fn concurrent_refresh_rotation_has_one_winner(db: &TestDatabase) {
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

async fn pending_is_consumed_once_and_found_by_upstream_state(db: &TestDatabase) {
    let store = db.open().await;
    let id = hash();
    let p = PendingAuthorization {
        id: id.clone(),
        client_id: "c".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        redirect_uri_explicit: false,
        scope: "mcp".into(),
        state: Some("xyz".into()),
        code_challenge: "ch".into(),
        resource: "https://mcp.example/mcp".into(),
        csrf: hash(),
        created_at: NOW,
        expires_at: NOW + 600,
        upstream_state: None,
        upstream_verifier_sealed: None,
        device_code: Some(hash()),
    };
    store.insert_pending(&p).await.unwrap();
    assert_eq!(store.get_pending(&id, NOW).await.unwrap(), Some(p.clone()));
    assert_eq!(store.get_pending(&id, NOW + 600).await.unwrap(), None);

    let up = hash();
    assert!(
        store
            .set_pending_upstream(&id, &up, "sealed-verifier", NOW)
            .await
            .unwrap()
    );
    let found = store
        .find_pending_by_upstream_state(&up)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.upstream_verifier_sealed.as_deref(),
        Some("sealed-verifier")
    );
    // Found by state even once expired (so the client can be told), but an
    // expired one can no longer be consumed.
    assert!(
        store
            .find_pending_by_upstream_state(&up)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.take_pending(&id, NOW + 600).await.unwrap().is_none());

    assert!(store.take_pending(&id, NOW).await.unwrap().is_some());
    assert!(store.take_pending(&id, NOW).await.unwrap().is_none());
    assert!(store.get_pending(&id, NOW).await.unwrap().is_none());
    assert!(
        store
            .find_pending_by_upstream_state(&up)
            .await
            .unwrap()
            .is_none()
    );
}

async fn revocation_hides_tokens(db: &TestDatabase) {
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

async fn sweep_deletes_only_expired_rows(db: &TestDatabase) {
    let store = db.open().await;
    let (_g, p) = issued(&store).await;
    store
        .insert_client(&ClientRecord {
            client_id: "unused".into(),
            secret_hash: None,
            metadata: serde_json::json!({}),
            created_at: NOW,
            expires_at: Some(NOW + 10),
        })
        .await
        .unwrap();
    let nothing = store.sweep(NOW).await.unwrap();
    assert_eq!(nothing.access_tokens, 0);
    assert_eq!(nothing.clients, 0);
    assert!(
        store
            .find_access_token(&p.access, NOW)
            .await
            .unwrap()
            .is_some()
    );

    let report = store.sweep(NOW + 86_401).await.unwrap();
    assert_eq!(report.access_tokens, 1);
    assert_eq!(report.refresh_tokens, 1);
    assert_eq!(report.codes, 1);
    assert_eq!(report.grants, 1);
    assert_eq!(report.clients, 1);
    assert!(store.get_client("unused").await.unwrap().is_none());
}

async fn upstream_tokens_upsert(db: &TestDatabase) {
    let store = db.open().await;
    let u = user(&store, "alice").await;
    let mut t = UpstreamTokens {
        user_id: u.id.clone(),
        provider: "x".into(),
        access_sealed: "v1.k1.aaa".into(),
        refresh_sealed: Some("v1.k1.bbb".into()),
        expires_at: Some(NOW + 7200),
        scope: "tweet.read".into(),
        updated_at: NOW,
        reauth_required_at: None,
    };
    store.put_upstream_tokens(&t).await.unwrap();
    t.access_sealed = "v1.k1.ccc".into();
    store.put_upstream_tokens(&t).await.unwrap();
    assert_eq!(
        store.get_upstream_tokens(&u.id).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(store.list_upstream_tokens().await.unwrap(), vec![t]);
}

async fn upstream_row(store: &Arc<dyn Store>, name: &str) -> UpstreamTokens {
    let u = user(store, name).await;
    let t = UpstreamTokens {
        user_id: u.id.clone(),
        provider: "x".into(),
        access_sealed: "v1.k1.old-access".into(),
        refresh_sealed: Some("v1.k1.old-refresh".into()),
        expires_at: Some(NOW + 60),
        scope: "tweet.read".into(),
        updated_at: NOW,
        reauth_required_at: None,
    };
    store.put_upstream_tokens(&t).await.unwrap();
    t
}

async fn upstream_refresh_lease_is_exclusive_and_commits_with_the_tokens(db: &TestDatabase) {
    let store = db.open().await;
    let t = upstream_row(&store, "alice").await;
    let id = t.user_id.as_str();
    let old = t.access_sealed.as_str();
    let lease = |sealed: &str, holder: &str, now: i64| {
        let (store, sealed, holder) = (store.clone(), sealed.to_owned(), holder.to_owned());
        let id = id.to_owned();
        async move {
            store
                .try_lease_upstream_refresh(&id, &sealed, &holder, now, now + 30)
                .await
                .unwrap()
        }
    };
    assert!(lease(old, "a", NOW).await);
    assert!(!lease(old, "b", NOW + 1).await);
    // Only the holder can finish; a stranger writes nothing.
    let refreshed = UpstreamTokens {
        access_sealed: "v1.k1.new-access".into(),
        refresh_sealed: Some("v1.k1.new-refresh".into()),
        expires_at: Some(NOW + 7200),
        updated_at: NOW + 2,
        ..t.clone()
    };
    assert!(
        !store
            .finish_upstream_refresh(&refreshed, "b")
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_upstream_tokens(id).await.unwrap(),
        Some(t.clone())
    );
    assert!(
        store
            .finish_upstream_refresh(&refreshed, "a")
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_upstream_tokens(id).await.unwrap(),
        Some(refreshed.clone())
    );
    // Finishing released the lease, but only a caller that saw the new token
    // may take it: one still holding the old token must use the new one.
    let new = refreshed.access_sealed.as_str();
    assert!(!lease(old, "b", NOW + 3).await);
    assert!(lease(new, "b", NOW + 3).await);
    // A lease whose holder died expires.
    assert!(!lease(new, "c", NOW + 32).await);
    assert!(lease(new, "c", NOW + 33).await);
    // The late holder can no longer write.
    assert!(!store.finish_upstream_refresh(&t, "b").await.unwrap());
    // Releasing with a refusal marks the row; a new sign-in clears it.
    store
        .release_upstream_lease(id, "c", Some(NOW + 40))
        .await
        .unwrap();
    let marked = store.get_upstream_tokens(id).await.unwrap().unwrap();
    assert_eq!(marked.reauth_required_at, Some(NOW + 40));
    assert!(lease(new, "d", NOW + 41).await);
    store.release_upstream_lease(id, "d", None).await.unwrap();
    assert_eq!(
        store
            .get_upstream_tokens(id)
            .await
            .unwrap()
            .unwrap()
            .reauth_required_at,
        Some(NOW + 40),
        "a plain release keeps the mark"
    );
    store.put_upstream_tokens(&refreshed).await.unwrap();
    assert_eq!(
        store
            .get_upstream_tokens(id)
            .await
            .unwrap()
            .unwrap()
            .reauth_required_at,
        None
    );
    // No row, no lease.
    assert!(
        !store
            .try_lease_upstream_refresh("nobody", new, "a", NOW, NOW + 30)
            .await
            .unwrap()
    );
}

async fn concurrent_upstream_leases_have_one_winner(db: &TestDatabase) {
    let store = db.open().await;
    let t = upstream_row(&store, "bob").await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (store, id, sealed) = (store.clone(), t.user_id.clone(), t.access_sealed.clone());
            tokio::spawn(async move {
                store
                    .try_lease_upstream_refresh(&id, &sealed, &format!("h{i}"), NOW, NOW + 30)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn users_upsert_by_subject(db: &TestDatabase) {
    let store = db.open().await;
    let a = user(&store, "alice").await;
    let again = store
        .upsert_user(
            &UserIdentity {
                subject: "local:alice".into(),
                username: Some("alice2".into()),
                display_name: Some("Alice".into()),
            },
            NOW + 5,
        )
        .await
        .unwrap();
    assert_eq!(again.id, a.id);
    assert_eq!(again.username.as_deref(), Some("alice2"));
    assert_eq!(again.updated_at, NOW + 5);
    assert_eq!(store.get_user(&a.id).await.unwrap(), Some(again));
    let b = user(&store, "bob").await;
    assert_ne!(a.id, b.id);
}

async fn signing_keys_list_newest_first_and_retire(db: &TestDatabase) {
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

fn device(interval: i64) -> DeviceAuthorization {
    DeviceAuthorization {
        device_code: hash(),
        user_code: hash(),
        client_id: "tv".into(),
        scope: "mcp".into(),
        resource: "https://mcp.example/mcp".into(),
        created_at: NOW,
        expires_at: NOW + 600,
        interval,
        last_polled_at: None,
        status: DeviceStatus::Pending,
        user_id: None,
    }
}

fn device_code_row(d: &DeviceAuthorization, user_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        hash: d.device_code.clone(),
        client_id: d.client_id.clone(),
        redirect_uri: String::new(),
        redirect_uri_explicit: false,
        code_challenge: String::new(),
        resource: d.resource.clone(),
        scope: d.scope.clone(),
        user_id: user_id.into(),
        created_at: NOW,
        expires_at: d.expires_at,
        used_at: None,
    }
}

async fn device_authorization_polls_slow_down_and_approve_once(db: &TestDatabase) {
    let store = db.open().await;
    let u = user(&store, "dana").await;
    let d = device(5);
    store.insert_device(&d).await.unwrap();
    // The same user code cannot be handed out twice.
    let mut clash = device(5);
    clash.user_code = d.user_code.clone();
    assert!(matches!(
        store.insert_device(&clash).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .find_device_by_user_code(&d.user_code, NOW)
            .await
            .unwrap()
            .map(|f| f.device_code),
        Some(d.device_code.clone())
    );
    assert_eq!(
        store
            .find_device_by_user_code(&d.user_code, NOW + 600)
            .await
            .unwrap(),
        None
    );

    // First poll is recorded; one 2 s later is too soon and raises the interval.
    match store.poll_device(&d.device_code, NOW).await.unwrap() {
        DevicePoll::Polled(p) => assert_eq!(p.status, DeviceStatus::Pending),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.poll_device(&d.device_code, NOW + 2).await.unwrap(),
        DevicePoll::SlowDown { interval: 10 }
    );
    // The new interval counts from the refused poll.
    assert_eq!(
        store.poll_device(&d.device_code, NOW + 9).await.unwrap(),
        DevicePoll::SlowDown { interval: 15 }
    );
    assert!(matches!(
        store.poll_device(&d.device_code, NOW + 24).await.unwrap(),
        DevicePoll::Polled(_)
    ));
    assert_eq!(
        store.poll_device(&hash(), NOW).await.unwrap(),
        DevicePoll::NotFound
    );

    // Approved once, with its code; a second approval or a denial is refused.
    let code = device_code_row(&d, &u.id);
    assert!(
        store
            .approve_device(&d.device_code, &u.id, &code, NOW + 25)
            .await
            .unwrap()
    );
    assert!(
        !store
            .approve_device(&d.device_code, &u.id, &code, NOW + 26)
            .await
            .unwrap()
    );
    assert!(!store.deny_device(&d.device_code, NOW + 26).await.unwrap());
    assert_eq!(
        store
            .find_device_by_user_code(&d.user_code, NOW + 26)
            .await
            .unwrap(),
        None
    );
    // A decided authorization answers at once, however soon the poll.
    match store.poll_device(&d.device_code, NOW + 26).await.unwrap() {
        DevicePoll::Polled(p) => {
            assert_eq!(p.status, DeviceStatus::Approved);
            assert_eq!(p.user_id.as_deref(), Some(u.id.as_str()));
        }
        other => panic!("{other:?}"),
    }
    let stored = store
        .get_code(&d.device_code, NOW + 26)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.user_id, u.id);
    let g = grant(&u.id, "tv");
    assert_eq!(
        store
            .issue_from_code(&d.device_code, NOW + 27, &g, &pair(60))
            .await
            .unwrap(),
        CodeRedemption::Issued
    );
}

async fn device_authorization_denied_and_expired(db: &TestDatabase) {
    let store = db.open().await;
    let u = user(&store, "erin").await;
    let d = device(5);
    store.insert_device(&d).await.unwrap();
    assert!(store.deny_device(&d.device_code, NOW + 1).await.unwrap());
    let code = device_code_row(&d, &u.id);
    assert!(
        !store
            .approve_device(&d.device_code, &u.id, &code, NOW + 2)
            .await
            .unwrap()
    );
    match store.poll_device(&d.device_code, NOW + 2).await.unwrap() {
        DevicePoll::Polled(p) => assert_eq!(p.status, DeviceStatus::Denied),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.get_code(&d.device_code, NOW + 2).await.unwrap(), None);

    // An expired one cannot be approved, and the sweep removes it.
    let late = device(5);
    store.insert_device(&late).await.unwrap();
    let code = device_code_row(&late, &u.id);
    assert!(
        !store
            .approve_device(&late.device_code, &u.id, &code, NOW + 600)
            .await
            .unwrap()
    );
    let report = store.sweep(NOW + 600).await.unwrap();
    assert_eq!(report.devices, 2);
    assert_eq!(
        store
            .poll_device(&late.device_code, NOW + 601)
            .await
            .unwrap(),
        DevicePoll::NotFound
    );
}

async fn mcp_sessions_expire_slide_and_go_with_their_user(db: &TestDatabase) {
    let store = db.open().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let session = |user_id: &str| McpSession {
        id: hash(),
        user_id: user_id.into(),
        init_params: r#"{"protocolVersion":"2025-06-18"}"#.into(),
        created_at: NOW,
        expires_at: NOW + 100,
    };
    let a = session(&alice.id);
    let b = session(&bob.id);
    store.insert_mcp_session(&a, 10).await.unwrap();
    store.insert_mcp_session(&b, 10).await.unwrap();
    assert!(matches!(
        store.insert_mcp_session(&a, 10).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.get_mcp_session(&a.id, NOW).await.unwrap(),
        Some(a.clone())
    );
    // Operators list them, all or one user's.
    assert_eq!(store.list_mcp_sessions(None, NOW).await.unwrap().len(), 2);
    assert_eq!(
        store.list_mcp_sessions(Some(&alice.id), NOW).await.unwrap(),
        vec![a.clone()]
    );
    // Expired: gone for readers, and cannot be revived.
    assert_eq!(store.get_mcp_session(&a.id, NOW + 100).await.unwrap(), None);
    assert!(
        !store
            .extend_mcp_session(&a.id, NOW + 100, NOW + 500)
            .await
            .unwrap()
    );
    // Extended while live: lives on, and the sweep keeps it.
    assert!(
        store
            .extend_mcp_session(&b.id, NOW + 50, NOW + 500)
            .await
            .unwrap()
    );
    let report = store.sweep(NOW + 200).await.unwrap();
    assert_eq!(report.mcp_sessions, 1);
    assert_eq!(
        store
            .get_mcp_session(&b.id, NOW + 200)
            .await
            .unwrap()
            .map(|s| s.expires_at),
        Some(NOW + 500)
    );
    // Listed newest first, expired ones left out.
    let c = McpSession {
        created_at: NOW + 201,
        expires_at: NOW + 300,
        ..session(&alice.id)
    };
    store.insert_mcp_session(&c, 10).await.unwrap();
    assert_eq!(
        store.list_mcp_sessions(None, NOW + 202).await.unwrap(),
        vec![
            c.clone(),
            McpSession {
                expires_at: NOW + 500,
                ..b.clone()
            }
        ]
    );
    assert_eq!(
        store
            .list_mcp_sessions(None, NOW + 300)
            .await
            .unwrap()
            .len(),
        1
    );
    // A session goes with its user.
    assert!(store.delete_user(&alice.id).await.unwrap());
    assert_eq!(store.get_mcp_session(&c.id, NOW).await.unwrap(), None);
    assert!(store.delete_mcp_session(&b.id).await.unwrap());
    assert!(!store.delete_mcp_session(&b.id).await.unwrap());
    assert_eq!(store.get_mcp_session(&b.id, NOW).await.unwrap(), None);
    // Users of an external authorization server have no row.
    let external = session("external:ext-user-1");
    store.insert_mcp_session(&external, 10).await.unwrap();
    assert_eq!(
        store.get_mcp_session(&external.id, NOW).await.unwrap(),
        Some(external)
    );
}

async fn a_users_sessions_are_bounded_oldest_first(db: &TestDatabase) {
    let store = db.open().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let session = |user_id: &str, created_at: i64| McpSession {
        id: hash(),
        user_id: user_id.into(),
        init_params: "{}".into(),
        created_at,
        expires_at: NOW + 100,
    };
    let bobs = session(&bob.id, NOW);
    store.insert_mcp_session(&bobs, 3).await.unwrap();
    let alices: Vec<McpSession> = (0..5).map(|i| session(&alice.id, NOW + i)).collect();
    for s in &alices {
        store.insert_mcp_session(s, 3).await.unwrap();
    }
    // Alice's three newest are left; Bob's is not hers to count.
    assert_eq!(
        store.list_mcp_sessions(Some(&alice.id), NOW).await.unwrap(),
        vec![alices[4].clone(), alices[3].clone(), alices[2].clone()]
    );
    assert_eq!(
        store.list_mcp_sessions(Some(&bob.id), NOW).await.unwrap(),
        vec![bobs]
    );
    // A refused insert ends nothing.
    assert!(matches!(
        store.insert_mcp_session(&alices[4], 1).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .list_mcp_sessions(Some(&alice.id), NOW)
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn local_state_round_trip(db: &TestDatabase) {
    let store = db.open().await;
    assert_eq!(store.get_local_state("local_user").await.unwrap(), None);
    store
        .put_local_state("local_user", "usr_1", NOW)
        .await
        .unwrap();
    store
        .put_local_state("local_user", "usr_2", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_local_state("local_user")
            .await
            .unwrap()
            .as_deref(),
        Some("usr_2")
    );
    assert!(store.delete_local_state("local_user").await.unwrap());
    assert!(!store.delete_local_state("local_user").await.unwrap());
    assert_eq!(store.get_local_state("local_user").await.unwrap(), None);
}

async fn admin_lists_and_deletes(db: &TestDatabase) {
    let store = db.open().await;
    let (g, p) = issued(&store).await;
    let bob = user(&store, "bob").await;
    store
        .put_upstream_tokens(&upstream_row(&store, "bob").await)
        .await
        .unwrap();
    store
        .insert_client(&ClientRecord {
            client_id: "client-1".into(),
            secret_hash: None,
            metadata: serde_json::json!({"client_name": "One"}),
            created_at: NOW,
            expires_at: None,
        })
        .await
        .unwrap();

    let users = store.list_users().await.unwrap();
    assert_eq!(users.len(), 2);
    let alice = users.iter().find(|u| u.user.id == g.user_id).unwrap();
    assert_eq!(alice.grants, 1);
    assert_eq!(alice.upstream_provider, None);
    let b = users.iter().find(|u| u.user.id == bob.id).unwrap();
    assert_eq!(b.grants, 0);
    assert_eq!(b.upstream_provider.as_deref(), Some("x"));

    assert_eq!(store.list_grants(None).await.unwrap(), vec![g.clone()]);
    assert_eq!(store.list_grants(Some(&bob.id)).await.unwrap(), vec![]);
    assert_eq!(store.list_clients().await.unwrap().len(), 1);

    // Deleting the client revokes its grants, so its tokens stop working.
    assert_eq!(
        store.delete_client("client-1", NOW).await.unwrap(),
        (true, 1)
    );
    assert_eq!(store.find_access_token(&p.access, NOW).await.unwrap(), None);
    assert_eq!(store.list_grants(None).await.unwrap(), vec![]);
    assert_eq!(
        store.delete_client("client-1", NOW).await.unwrap(),
        (false, 0)
    );

    // Deleting a user takes their upstream credentials with them.
    assert!(store.delete_user(&bob.id).await.unwrap());
    assert_eq!(store.get_upstream_tokens(&bob.id).await.unwrap(), None);
    assert!(!store.delete_user(&bob.id).await.unwrap());
    // Alice never had any; signing out twice is harmless.
    assert!(!store.delete_upstream_tokens(&g.user_id).await.unwrap());
}

async fn rate_limits_allow_a_burst_then_one_per_interval(db: &TestDatabase) {
    let store = db.open().await;
    let t0 = NOW * 1_000_000;
    const SECOND: i64 = 1_000_000;
    // 3 at once, then one per 10 s.
    for _ in 0..3 {
        assert_eq!(
            store.take_rate("a", t0, 10 * SECOND, 3).await.unwrap(),
            None
        );
    }
    assert_eq!(
        store.take_rate("a", t0, 10 * SECOND, 3).await.unwrap(),
        Some(10 * SECOND)
    );
    // A refused request is not counted: the wait only shrinks with time.
    assert_eq!(
        store
            .take_rate("a", t0 + 4 * SECOND, 10 * SECOND, 3)
            .await
            .unwrap(),
        Some(6 * SECOND)
    );
    // Another bucket is untouched.
    assert_eq!(
        store.take_rate("b", t0, 10 * SECOND, 3).await.unwrap(),
        None
    );
    // One interval later, exactly one more.
    let t1 = t0 + 10 * SECOND;
    assert_eq!(
        store.take_rate("a", t1, 10 * SECOND, 3).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_rate("a", t1, 10 * SECOND, 3).await.unwrap(),
        Some(10 * SECOND)
    );
    // A full bucket's row is swept, and the bucket starts afresh.
    let report = store.sweep(NOW + 40).await.unwrap();
    assert_eq!(report.rate_limits, 2);
    let later = (NOW + 40) * 1_000_000;
    for _ in 0..3 {
        assert_eq!(
            store.take_rate("a", later, 10 * SECOND, 3).await.unwrap(),
            None
        );
    }
    assert!(
        store
            .take_rate("a", later, 10 * SECOND, 3)
            .await
            .unwrap()
            .is_some()
    );
    // Rate counters are not records: `counts` leaves them out.
    assert!(
        store
            .counts()
            .await
            .unwrap()
            .iter()
            .all(|(t, _)| *t != "rate_limits")
    );
}

async fn peeking_at_a_rate_counts_nothing(db: &TestDatabase) {
    let store = db.open().await;
    let now = NOW * 1_000_000;
    let minute = 60_000_000;
    for _ in 0..5 {
        assert_eq!(
            store.peek_rate("b", now, minute / 2, 2).await.unwrap(),
            None
        );
    }
    assert_eq!(
        store.take_rate("b", now, minute / 2, 2).await.unwrap(),
        None
    );
    assert_eq!(
        store.peek_rate("b", now, minute / 2, 2).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_rate("b", now, minute / 2, 2).await.unwrap(),
        None
    );
    // Spent: the peek says how long until one is allowed, as a take would.
    let peek = store.peek_rate("b", now, minute / 2, 2).await.unwrap();
    assert_eq!(
        peek,
        store.take_rate("b", now, minute / 2, 2).await.unwrap()
    );
    assert!(peek.is_some_and(|w| w > 0 && w <= minute / 2));
    assert_eq!(
        store
            .peek_rate("b", now + minute / 2, minute / 2, 2)
            .await
            .unwrap(),
        None
    );
}

async fn concurrent_rate_takes_admit_exactly_the_burst(db: &TestDatabase) {
    // Two pools on one database: two instances.
    let a = db.open().await;
    let b = db.open().await;
    let now = NOW * 1_000_000;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { store.take_rate("hot", now, 60_000_000, 5).await })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_none() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
}

fn limit(scope: &str, cap: Option<i64>) -> SpendLimit {
    SpendLimit {
        scope: scope.into(),
        cap,
    }
}

async fn spend_is_held_against_every_cap_and_settled(db: &TestDatabase) {
    let store = db.open().await;
    let day = NOW / 86_400;
    let until = NOW + 86_400;
    let limits = [limit("user:u", Some(1_000)), limit("deployment", None)];
    assert_eq!(
        store.hold_spend(day, &limits, 600, until).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_spend(day, "user:u").await.unwrap(),
        Spend {
            spent: 0,
            held: 600
        }
    );
    // 600 held + 600 would pass 1000: nothing is held anywhere.
    let refused = store.hold_spend(day, &limits, 600, until).await.unwrap();
    assert_eq!(
        refused,
        Some(SpendRefusal {
            scope: "user:u".into(),
            cap: 1_000,
            spent: 0,
            held: 600
        })
    );
    assert_eq!(store.get_spend(day, "deployment").await.unwrap().held, 600);
    // An amount over the cap alone is refused before any row exists.
    let other = [limit("client:c", Some(10))];
    assert!(
        store
            .hold_spend(day, &other, 11, until)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.get_spend(day, "client:c").await.unwrap(),
        Spend::default()
    );
    // Settled: the hold goes, what was spent stays (more than held, here).
    let scopes = ["user:u".to_owned(), "deployment".to_owned()];
    store.settle_spend(day, &scopes, 600, 700).await.unwrap();
    assert_eq!(
        store.get_spend(day, "user:u").await.unwrap(),
        Spend {
            spent: 700,
            held: 0
        }
    );
    assert!(
        store
            .hold_spend(day, &limits, 301, until)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.hold_spend(day, &limits, 300, until).await.unwrap(),
        None
    );
    // Another day starts from nothing; a zero cap allows nothing.
    assert_eq!(
        store
            .hold_spend(day + 1, &limits, 1_000, until)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .hold_spend(day, &[limit("user:z", Some(0))], 1, until)
            .await
            .unwrap()
            .is_some()
    );
    // Counters go with their day's retention.
    store.sweep(until).await.unwrap();
    assert_eq!(
        store.get_spend(day, "user:u").await.unwrap(),
        Spend::default()
    );
}

async fn concurrent_holds_never_pass_a_cap(db: &TestDatabase) {
    // Two pools on one database: two instances.
    let a = db.open().await;
    let b = db.open().await;
    let day = NOW / 86_400;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                store
                    .hold_spend(day, &[limit("user:hot", Some(500))], 100, NOW + 86_400)
                    .await
            })
        })
        .collect();
    let mut held = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_none() {
            held += 1;
        }
    }
    assert_eq!(held, 5);
    assert_eq!(a.get_spend(day, "user:hot").await.unwrap().held, 500);
}

fn audit(at: i64, user: &str, tool: &str, cost: i64) -> AuditEntry {
    AuditEntry {
        at,
        user_id: user.into(),
        client_id: "client".into(),
        tool: tool.into(),
        method: "GET".into(),
        path: "/2/users/{id}/followers".into(),
        status: 200,
        transaction_id: Some(format!("tx-{at}")),
        cost,
        expires_at: at + 30 * 86_400,
    }
}

async fn audit_lists_and_sums_usage_and_is_swept(db: &TestDatabase) {
    let store = db.open().await;
    let entries = [
        audit(NOW, "alice", "getUsersFollowers", 10_000),
        audit(NOW + 1, "alice", "getUsersFollowers", 20_000),
        audit(NOW + 2, "alice", "createPosts", 15_000),
        audit(NOW + 3, "bob", "createPosts", 15_000),
        audit(NOW + 86_400, "alice", "createPosts", 15_000),
    ];
    store.insert_audit(&entries).await.unwrap();
    store.insert_audit(&[]).await.unwrap();
    let all = store.list_audit(None, NOW, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], entries[4], "newest first");
    let alices = store.list_audit(Some("alice"), NOW + 1, 2).await.unwrap();
    assert_eq!(alices, [entries[4].clone(), entries[2].clone()]);
    let day = store.usage(None, NOW, NOW + 86_400).await.unwrap();
    assert_eq!(
        day,
        [
            UsageRow {
                user_id: "alice".into(),
                client_id: "client".into(),
                tool: "getUsersFollowers".into(),
                calls: 2,
                cost: 30_000
            },
            UsageRow {
                user_id: "alice".into(),
                client_id: "client".into(),
                tool: "createPosts".into(),
                calls: 1,
                cost: 15_000
            },
            UsageRow {
                user_id: "bob".into(),
                client_id: "client".into(),
                tool: "createPosts".into(),
                calls: 1,
                cost: 15_000
            },
        ]
    );
    assert_eq!(
        store
            .usage(Some("bob"), NOW, NOW + 86_400)
            .await
            .unwrap()
            .len(),
        1
    );
    // Retention: the first four expire before the fifth.
    let report = store.sweep(NOW + 30 * 86_400 + 3).await.unwrap();
    assert_eq!(report.usage, 4);
    assert_eq!(
        store.list_audit(None, 0, 100).await.unwrap(),
        [entries[4].clone()]
    );
}

async fn an_idempotency_key_is_claimed_once_and_keeps_its_result(db: &TestDatabase) {
    let a = db.open().await;
    let b = db.open().await;
    let key = hash();
    // Concurrent claims: one wins, the rest see it in flight.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            tokio::spawn(async move { store.claim_once(&key, "u", NOW, NOW + 300).await })
        })
        .collect();
    let mut claims = Vec::new();
    for t in tasks {
        claims.push(t.await.unwrap().unwrap());
    }
    assert_eq!(
        claims.iter().filter(|c| **c == OnceClaim::Claimed).count(),
        1
    );
    assert!(
        claims
            .iter()
            .all(|c| matches!(c, OnceClaim::Claimed | OnceClaim::InFlight))
    );
    a.finish_once(&key, "sealed-result", NOW + 60)
        .await
        .unwrap();
    assert_eq!(
        b.claim_once(&key, "u", NOW + 1, NOW + 300).await.unwrap(),
        OnceClaim::Done("sealed-result".into())
    );
    // After its window the key is free again, with no result.
    assert_eq!(
        b.claim_once(&key, "u", NOW + 60, NOW + 360).await.unwrap(),
        OnceClaim::Claimed
    );
    // A released claim frees the key at once; a finished one is kept.
    b.release_once(&key).await.unwrap();
    assert_eq!(
        a.claim_once(&key, "u", NOW + 61, NOW + 361).await.unwrap(),
        OnceClaim::Claimed
    );
    a.finish_once(&key, "second", NOW + 120).await.unwrap();
    a.release_once(&key).await.unwrap();
    assert_eq!(
        a.claim_once(&key, "u", NOW + 62, NOW + 362).await.unwrap(),
        OnceClaim::Done("second".into())
    );
    // A claim whose holder died expires with its lease.
    let other = hash();
    assert_eq!(
        a.claim_once(&other, "u", NOW, NOW + 300).await.unwrap(),
        OnceClaim::Claimed
    );
    assert_eq!(
        b.claim_once(&other, "u", NOW + 299, NOW + 600)
            .await
            .unwrap(),
        OnceClaim::InFlight
    );
    assert_eq!(
        b.claim_once(&other, "u", NOW + 300, NOW + 600)
            .await
            .unwrap(),
        OnceClaim::Claimed
    );
}

async fn sealed_values_are_listed_and_replaced_only_where_unchanged(db: &TestDatabase) {
    let store = db.open().await;
    let t = upstream_row(&store, "alice").await;
    store
        .insert_signing_key(&SigningKeyRecord {
            kid: "sk_1".into(),
            alg: "RS256".into(),
            private_sealed: "v1.k1.key".into(),
            public_jwk: "{}".into(),
            created_at: NOW,
            retired_at: None,
        })
        .await
        .unwrap();
    let pending = hash();
    store
        .insert_pending(&PendingAuthorization {
            id: pending.clone(),
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            redirect_uri_explicit: false,
            scope: "mcp".into(),
            state: None,
            code_challenge: "ch".into(),
            resource: "https://mcp.example/mcp".into(),
            csrf: hash(),
            created_at: NOW,
            expires_at: NOW + 600,
            upstream_state: None,
            upstream_verifier_sealed: None,
            device_code: None,
        })
        .await
        .unwrap();
    store
        .set_pending_upstream(&pending, &hash(), "v1.k1.verifier", NOW)
        .await
        .unwrap();
    let (_, p) = issued(&store).await;
    let old_refresh = p.refresh.clone().unwrap();
    store
        .rotate_refresh(&old_refresh, NOW, 30, &pair(3600), "v1.k1.successor")
        .await
        .unwrap();
    store
        .put_local_state("bridge:https://x.example/mcp", "v1.k1.credentials", NOW)
        .await
        .unwrap();
    let once = hash();
    store.claim_once(&once, "u", NOW, NOW + 60).await.unwrap();
    store
        .finish_once(&once, "v1.k1.result", NOW + 600)
        .await
        .unwrap();
    // A claim still in flight has no result to list.
    store.claim_once(&hash(), "u", NOW, NOW + 60).await.unwrap();

    let mut listed = store.list_sealed().await.unwrap();
    listed.sort_by(|a, b| format!("{:?}", a.column).cmp(&format!("{:?}", b.column)));
    let v = |column, key: &str, sealed: &str| SealedValue {
        column,
        key: key.into(),
        sealed: sealed.into(),
    };
    let mut expected = vec![
        v(SealedColumn::UpstreamAccess, &t.user_id, "v1.k1.old-access"),
        v(
            SealedColumn::UpstreamRefresh,
            &t.user_id,
            "v1.k1.old-refresh",
        ),
        v(SealedColumn::SigningKey, "sk_1", "v1.k1.key"),
        v(
            SealedColumn::PendingVerifier,
            pending.as_str(),
            "v1.k1.verifier",
        ),
        v(
            SealedColumn::RefreshSuccessor,
            old_refresh.as_str(),
            "v1.k1.successor",
        ),
        v(
            SealedColumn::LocalState,
            "bridge:https://x.example/mcp",
            "v1.k1.credentials",
        ),
        v(SealedColumn::OnceResult, once.as_str(), "v1.k1.result"),
    ];
    expected.sort_by(|a, b| format!("{:?}", a.column).cmp(&format!("{:?}", b.column)));
    assert_eq!(listed, expected);

    // Each is replaced where it is, and nothing else in its row changes.
    // (The provider refused this user's refresh token: that stays recorded.)
    assert!(
        store
            .try_lease_upstream_refresh(&t.user_id, &t.access_sealed, "h", NOW, NOW + 30)
            .await
            .unwrap()
    );
    store
        .release_upstream_lease(&t.user_id, "h", Some(NOW))
        .await
        .unwrap();
    let before = store
        .get_upstream_tokens(&t.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.reauth_required_at, Some(NOW));
    for value in &listed {
        let resealed = value.sealed.replace("v1.k1.", "v1.k2.");
        assert!(store.replace_sealed(value, &resealed).await.unwrap());
        // Compare-and-swap: a second attempt from the old value does nothing.
        assert!(!store.replace_sealed(value, "v1.k3.stale").await.unwrap());
    }
    let after = store.list_sealed().await.unwrap();
    assert_eq!(after.len(), listed.len());
    assert!(
        after.iter().all(|v| v.sealed.starts_with("v1.k2.")),
        "{after:?}"
    );
    let row = store
        .get_upstream_tokens(&t.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.access_sealed, "v1.k2.old-access");
    assert_eq!(row.refresh_sealed.as_deref(), Some("v1.k2.old-refresh"));
    assert_eq!(
        (row.expires_at, row.updated_at, row.reauth_required_at),
        (
            before.expires_at,
            before.updated_at,
            before.reauth_required_at
        )
    );
    assert_eq!(
        store
            .get_local_state("bridge:https://x.example/mcp")
            .await
            .unwrap()
            .as_deref(),
        Some("v1.k2.credentials")
    );
    assert_eq!(
        store.list_signing_keys().await.unwrap()[0].private_sealed,
        "v1.k2.key"
    );
    // A value that is not there is not created.
    let gone = v(SealedColumn::SigningKey, "sk_missing", "v1.k1.key");
    assert!(!store.replace_sealed(&gone, "v1.k2.key").await.unwrap());
}
