//! Users, upstream tokens and their refresh lease, sessions, local state.

use super::*;

pub(super) async fn upstream_tokens_upsert(db: &TestDatabase) {
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

pub(super) async fn upstream_row(store: &Arc<dyn Store>, name: &str) -> UpstreamTokens {
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

pub(super) async fn upstream_refresh_lease_is_exclusive_and_commits_with_the_tokens(
    db: &TestDatabase,
) {
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

pub(super) async fn concurrent_upstream_leases_have_one_winner(db: &TestDatabase) {
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

pub(super) async fn users_upsert_by_subject(db: &TestDatabase) {
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

pub(super) async fn mcp_sessions_expire_slide_and_go_with_their_user(db: &TestDatabase) {
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

pub(super) async fn a_users_sessions_are_bounded_oldest_first(db: &TestDatabase) {
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

pub(super) async fn local_state_round_trip(db: &TestDatabase) {
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
