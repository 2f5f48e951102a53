//! Clients, pending authorizations and device authorizations.

use super::*;

pub(super) async fn clients_round_trip_and_conflict(db: &TestDatabase) {
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

pub(super) async fn pending_is_consumed_once_and_found_by_upstream_state(db: &TestDatabase) {
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

pub(super) fn device(interval: i64) -> DeviceAuthorization {
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

pub(super) fn device_code_row(d: &DeviceAuthorization, user_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        hash: d.device_code.clone(),
        kind: CodeKind::Device,
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

pub(super) async fn device_authorization_polls_slow_down_and_approve_once(db: &TestDatabase) {
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
    // The code it keeps is a device code, redeemed only by the device grant.
    let kept = store
        .get_code(&d.device_code, NOW + 26)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.kind, CodeKind::Device);
    assert_eq!(kept.redirect_uri, "");
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

pub(super) async fn device_authorization_denied_and_expired(db: &TestDatabase) {
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
