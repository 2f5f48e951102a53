//! Sweeping, administration, rate limits and re-sealing.

use super::*;

pub(super) async fn sweep_deletes_only_expired_rows(db: &TestDatabase) {
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

pub(super) async fn admin_lists_and_deletes(db: &TestDatabase) {
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

pub(super) async fn rate_limits_allow_a_burst_then_one_per_interval(db: &TestDatabase) {
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

pub(super) async fn peeking_at_a_rate_counts_nothing(db: &TestDatabase) {
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

pub(super) async fn concurrent_rate_takes_admit_exactly_the_burst(db: &TestDatabase) {
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

pub(super) async fn sealed_values_are_listed_and_replaced_only_where_unchanged(db: &TestDatabase) {
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
