//! Spend held against caps, the audit trail, idempotency claims.

use super::*;

pub(super) fn limit(scope: &str, cap: Option<i64>) -> SpendLimit {
    SpendLimit {
        scope: scope.into(),
        cap,
    }
}

pub(super) async fn spend_is_held_against_every_cap_and_settled(db: &TestDatabase) {
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

pub(super) async fn concurrent_holds_never_pass_a_cap(db: &TestDatabase) {
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

pub(super) fn audit(at: i64, user: &str, tool: &str, cost: i64) -> AuditEntry {
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

pub(super) async fn audit_lists_and_sums_usage_and_is_swept(db: &TestDatabase) {
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

pub(super) async fn an_idempotency_key_is_claimed_once_and_keeps_its_result(db: &TestDatabase) {
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
