//! Stateful MCP sessions (`mcp_stateful`): bound to their user on every
//! instance, bounded per user, opened only by an answered `initialize`,
//! expired when idle.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

xmcp_test_support::both_backends!(
    stateful_sessions_are_bound_to_their_user_on_every_instance,
    stateful_sessions_expire_when_idle,
);

/// A POST to `/mcp` as a pre-2026 client in stateful mode sends it.
pub(crate) async fn post_in_session(
    app: &TestApp,
    token: &str,
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(s) = session {
        req = req
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-06-18");
    }
    req.send().await.unwrap()
}

/// A GET (the session's stream) or DELETE (its end) of `/mcp` in `session`.
pub(crate) async fn in_session(
    app: &TestApp,
    method: reqwest::Method,
    token: &str,
    session: &str,
) -> reqwest::Response {
    app.http
        .request(method, app.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap()
}

/// A newly registered public client's access token for the first demo user.
pub(crate) async fn demo_access_token(app: &TestApp) -> String {
    let client_id = app.register_public().await;
    Authorize::new(app, &client_id, "http://127.0.0.1:1/callback")
        .tokens(app)
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Open a session with `token` on `app`: initialize, then initialized.
pub(crate) async fn open_session(app: &TestApp, token: &str) -> String {
    let init = post_in_session(
        app,
        token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}}),
    )
    .await;
    assert_eq!(init.status(), StatusCode::OK);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = init.text().await.unwrap();
    assert!(body.contains("serverInfo"), "{body}");
    // The session keeps who opened it, and of the `initialize` only what
    // `xmcp admin sessions` shows.
    let row = app
        .app
        .store
        .get_mcp_session(&xmcp_store::TokenHash::of(&session), app.app.clock.now())
        .await
        .unwrap()
        .expect("the session is recorded");
    assert_eq!(
        serde_json::from_str::<Value>(&row.init_params).unwrap(),
        json!({"protocolVersion": "2025-06-18", "clientInfo": {"name": "it", "version": "1"}})
    );
    let r = post_in_session(
        app,
        token,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    session
}

/// `whoami` in a session: the status, and the subject it answered (empty
/// when refused).
pub(crate) async fn whoami_in_session(
    app: &TestApp,
    token: &str,
    session: &str,
) -> (StatusCode, String) {
    let r = post_in_session(
        app,
        token,
        Some(session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}),
    )
    .await;
    let status = r.status();
    if status != StatusCode::OK {
        return (status, String::new());
    }
    // Answered in JSON, as in stateless mode.
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let reply: Value = r.json().await.unwrap();
    assert_eq!(reply["id"], 2, "{reply}");
    let subject = reply["result"]["structuredContent"]["subject"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"));
    (status, subject.to_owned())
}

async fn session_rows(app: &TestApp) -> i64 {
    app.app
        .store
        .counts()
        .await
        .unwrap()
        .into_iter()
        .find(|(t, _)| *t == "mcp_sessions")
        .unwrap()
        .1
}

/// Stateful mode: a session belongs to the user who opened it, on every
/// instance; any instance sharing the database serves it (nothing of it
/// is in any instance's memory); ending it on one instance ends it on all.
async fn stateful_sessions_are_bound_to_their_user_on_every_instance(backend: Backend) {
    let a = builder(backend)
        .settings(|s| s.server.mcp_stateful = Some(true))
        .spawn()
        .await;
    let b = builder(backend)
        .settings(|s| s.server.mcp_stateful = Some(true))
        .sharing(&a)
        .spawn()
        .await;
    let client_id = a.register_public().await;
    let tokens = |user: &'static str| {
        let a = &a;
        let client_id = client_id.clone();
        async move {
            Authorize::new(a, &client_id, "http://127.0.0.1:1/callback")
                .tokens_as(a, user)
                .await["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let alice = tokens("demo_user").await;
    let bob = tokens("second_user").await;
    let alice_subject = "x:1850000000000000001".to_owned();

    let session = open_session(&a, &alice).await;
    assert_eq!(session_rows(&a).await, 1);
    assert_eq!(
        whoami_in_session(&a, &alice, &session).await,
        (StatusCode::OK, alice_subject.clone())
    );
    // B never saw the session: it reads it in the store.
    assert_eq!(
        whoami_in_session(&b, &alice, &session).await,
        (StatusCode::OK, alice_subject.clone())
    );
    // Another user's valid token cannot use it on either instance, nor end
    // it, and is told only what an unknown session is told.
    for app in [&a, &b] {
        let (status, _) = whoami_in_session(app, &bob, &session).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Nor listen to its stream.
        let r = in_session(app, reqwest::Method::GET, &bob, &session).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = in_session(app, reqwest::Method::DELETE, &bob, &session).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.text().await.unwrap(), "Not Found: Session not found");
    }
    // Its owner is told there is no stream: xmcp sends nothing unasked.
    let r = in_session(&b, reqwest::Method::GET, &alice, &session).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST, DELETE");
    // A DELETE must name the session it ends.
    let r = a
        .http
        .delete(a.url("/mcp"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (status, _) = whoami_in_session(&a, &bob, "no-such-session").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        whoami_in_session(&a, &alice, &session).await,
        (StatusCode::OK, alice_subject.clone())
    );
    // Bob's own session is his alone.
    let bobs = open_session(&b, &bob).await;
    assert_eq!(session_rows(&a).await, 2);
    assert_eq!(
        whoami_in_session(&a, &alice, &bobs).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        whoami_in_session(&a, &bob, &bobs).await,
        (StatusCode::OK, "x:1850000000000000002".to_owned())
    );

    // The transport's Host and Origin checks (DNS rebinding) come first:
    // a DELETE from a foreign page ends nothing, and a GET opens nothing.
    for method in [reqwest::Method::DELETE, reqwest::Method::GET] {
        let r = b
            .http
            .request(method, b.url("/mcp"))
            .bearer_auth(&alice)
            .header("mcp-session-id", &session)
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        whoami_in_session(&b, &alice, &session).await,
        (StatusCode::OK, alice_subject.clone())
    );

    // Alice ends her session on B. B refuses it at once; A, which read it
    // lately, once what A read in the store is older than RECHECK_SECONDS.
    let r = in_session(&b, reqwest::Method::DELETE, &alice, &session).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(session_rows(&a).await, 1);
    assert_eq!(
        whoami_in_session(&b, &alice, &session).await.0,
        StatusCode::NOT_FOUND
    );
    a.clock.advance(xmcp_server::mcp::sessions::RECHECK_SECONDS);
    assert_eq!(
        whoami_in_session(&a, &alice, &session).await.0,
        StatusCode::NOT_FOUND
    );
}

/// A session the store cannot record is never handed out: the client is
/// told to retry (503), not given an id that every request would refuse.
#[tokio::test]
async fn a_session_that_cannot_be_recorded_is_not_handed_out() {
    let app = builder(Backend::Sqlite)
        .settings(|s| s.server.mcp_stateful = Some(true))
        .spawn()
        .await;
    let token = demo_access_token(&app).await;
    // Reads still work (the token is checked), writes to the table fail.
    app.db
        .execute_sqlite(
            "CREATE TRIGGER refuse_sessions BEFORE INSERT ON mcp_sessions \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .await;
    let r = post_in_session(
        &app,
        &token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!r.headers().contains_key("mcp-session-id"));
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert_eq!(session_rows(&app).await, 0);

    app.db.execute_sqlite("DROP TRIGGER refuse_sessions;").await;
    let session = open_session(&app, &token).await;
    assert_eq!(
        whoami_in_session(&app, &token, &session).await.0,
        StatusCode::OK
    );
}

/// A user holds at most `MAX_SESSIONS_PER_USER` sessions: one more ends
/// their oldest, which is then refused as an ended session is; their
/// other sessions, and other users', go on.
#[tokio::test]
async fn opening_one_session_too_many_ends_the_users_oldest() {
    use xmcp_server::mcp::sessions::{MAX_SESSIONS_PER_USER, RECHECK_SECONDS};
    let app = builder(Backend::Sqlite)
        .settings(|s| s.server.mcp_stateful = Some(true))
        .spawn()
        .await;
    let token = demo_access_token(&app).await;
    let oldest = open_session(&app, &token).await;
    let mut newest = String::new();
    for _ in 1..=MAX_SESSIONS_PER_USER {
        // Sessions opened in the same second are told apart arbitrarily.
        app.clock.advance(1);
        newest = open_session(&app, &token).await;
    }
    assert_eq!(session_rows(&app).await, i64::from(MAX_SESSIONS_PER_USER));
    // Once what this instance read of the oldest is stale, it is refused.
    app.clock.advance(RECHECK_SECONDS);
    assert_eq!(
        whoami_in_session(&app, &token, &oldest).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        whoami_in_session(&app, &token, &newest).await.0,
        StatusCode::OK
    );
}

/// Stateful mode: only an `initialize` that succeeds opens a session; a
/// request naming none is answered as in stateless mode (as a 2026-07-28
/// client sends every request) and opens nothing.
#[tokio::test]
async fn only_an_answered_initialize_opens_a_session() {
    let app = builder(Backend::Sqlite)
        .settings(|s| s.server.mcp_stateful = Some(true))
        .spawn()
        .await;
    let token = demo_access_token(&app).await;
    let r = post_in_session(
        &app,
        &token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}),
    )
    .await;
    // rmcp answers an `initialize` it cannot read with a JSON-RPC error.
    assert!(!r.headers().contains_key("mcp-session-id"));
    let reply: Value = r.json().await.unwrap();
    assert!(reply["error"]["code"].is_i64(), "{reply}");

    let r = post_in_session(
        &app,
        &token,
        None,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!r.headers().contains_key("mcp-session-id"));
    let reply: Value = r.json().await.unwrap();
    assert_eq!(
        reply["result"]["structuredContent"]["subject"], "x:1850000000000000001",
        "{reply}"
    );
    assert_eq!(session_rows(&app).await, 0);
}

/// An idle session expires; one in use slides on.
async fn stateful_sessions_expire_when_idle(backend: Backend) {
    use xmcp_auth::Clock;
    use xmcp_server::mcp::sessions::SESSION_IDLE_SECONDS;
    let app = builder(backend)
        .settings(|s| {
            s.server.mcp_stateful = Some(true);
            // One access token outlives every step below.
            s.auth.access_token_ttl = Some(10 * SESSION_IDLE_SECONDS);
        })
        .spawn()
        .await;
    let token = demo_access_token(&app).await;
    let session = open_session(&app, &token).await;
    // Used after 60% of its life, then again 60% later: past its first
    // expiry, and still alive because the first use moved it on.
    for _ in 0..2 {
        app.clock.advance(SESSION_IDLE_SECONDS * 6 / 10);
        assert_eq!(
            whoami_in_session(&app, &token, &session).await.0,
            StatusCode::OK
        );
    }
    app.clock.advance(SESSION_IDLE_SECONDS + 1);
    assert_eq!(
        whoami_in_session(&app, &token, &session).await.0,
        StatusCode::NOT_FOUND
    );
    // The sweep deletes it.
    let report = app.app.store.sweep(app.clock.now()).await.unwrap();
    assert_eq!(report.mcp_sessions, 1);
}
