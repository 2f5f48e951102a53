//! Operations: Prometheus metrics, per-address and per-client rate limits
//! on the authorization endpoints (shared by every instance), body size
//! limits everywhere.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:5555/callback";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_grants_and_tool_calls() {
    let app = builder(Backend::Sqlite)
        .settings(|s| s.limits.metrics_token = Some("metrics-secret".to_owned().into()))
        .spawn()
        .await;
    let client_id = app.register_public().await;
    let tokens = Authorize::new(&app, &client_id, REDIRECT)
        .tokens(&app)
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let me = app.call_tool(access, "whoami", json!({})).await;
    assert_eq!(me["isError"], false);
    let x = app.call_tool(access, "getUsersMe", json!({})).await;
    assert_eq!(x["isError"], false, "{x}");
    let (status, _, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "nope"),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Any token is a method name: none becomes a label.
    let odd = reqwest::Method::from_bytes(b"XYZZY").unwrap();
    let r = app
        .http
        .request(odd, app.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);

    // The token guards the endpoint.
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Stateful sessions, on two instances sharing a database: one opened on
    // one, used on the other, a request naming no session of ours, and the
    // session ended.
    let one = builder(Backend::Sqlite)
        .settings(|s| s.server.mcp_stateful = Some(true))
        .spawn()
        .await;
    let two = builder(Backend::Sqlite)
        .settings(|s| s.server.mcp_stateful = Some(true))
        .sharing(&one)
        .spawn()
        .await;
    let token = crate::sessions::demo_access_token(&one).await;
    let session = crate::sessions::open_session(&one, &token).await;
    let (status, _) = crate::sessions::whoami_in_session(&two, &token, &session).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = crate::sessions::whoami_in_session(&one, &token, "not-a-session").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r = crate::sessions::in_session(&two, reqwest::Method::DELETE, &token, &session).await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("metrics-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    // The recorder is shared by every app of this test binary: presence,
    // not exact counts.
    for line in [
        "xmcp_mcp_sessions_total{event=\"opened\"}",
        "xmcp_mcp_sessions_total{event=\"ended\"}",
        "xmcp_mcp_sessions_total{event=\"refused\"}",
        "xmcp_http_requests_total{method=\"POST\",route=\"/token\",status=\"200\"}",
        "xmcp_http_requests_total{method=\"POST\",route=\"/register\",status=\"201\"}",
        "xmcp_http_request_duration_seconds_bucket{method=\"POST\",route=\"/mcp\"",
        "xmcp_oauth_tokens_issued_total{grant_type=\"authorization_code\"}",
        "xmcp_oauth_token_errors_total{grant_type=\"refresh_token\",error=\"invalid_grant\"}",
        "xmcp_tool_call_duration_seconds_bucket{tool=\"whoami\",outcome=\"ok\"",
        "xmcp_tool_call_duration_seconds_bucket{tool=\"getUsersMe\",outcome=\"ok\"",
        "xmcp_x_rate_limit_remaining{endpoint=\"GET /2/users/me\"}",
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
    // Routes are patterns: no token, code or id ever becomes a label.
    assert!(!text.contains(access));
    assert!(!text.contains(&client_id));
    assert!(!text.contains("XYZZY"));
    assert!(
        text.contains("method=\"other\",route=\"/health\",status=\"405\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_endpoints_are_rate_limited_per_address() {
    let app = builder(Backend::Sqlite)
        .settings(|s| s.limits.rate_limit_per_ip = Some(5))
        .spawn()
        .await;
    let client_id = app.register_public().await;
    let tokens = Authorize::new(&app, &client_id, REDIRECT)
        .tokens(&app)
        .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    // The flow used one /token request; four more pass, the next is refused.
    let bad = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "nope"),
        ("client_id", client_id.as_str()),
    ];
    for _ in 0..4 {
        let (status, _, _) = app.token(&bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let r = app.post_form("/token", &bad).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("retry")
    );
    // Other groups and the MCP endpoint are not affected.
    let me = app.call_tool(&access, "whoami", json!({})).await;
    assert_eq!(me["isError"], false);
    let r = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_everywhere() {
    let app = spawn(Backend::Sqlite).await;
    let big = "x".repeat(5 * 1024 * 1024);
    // /mcp and a route that takes no body: beyond any MCP message. The
    // server answers 413 as soon as it knows (Content-Length) and may close
    // the connection while the client is still uploading.
    for path in ["/mcp", "/nowhere", "/register"] {
        let sent = app
            .http
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await;
        match sent {
            Ok(r) => assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}"),
            Err(e) => assert!(e.is_request(), "{path}: {e}"),
        }
        // Refused, not crashed.
        let health = app.http.get(app.url("/health")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
    // An OAuth form endpoint: its own 16 KiB limit, with an OAuth error.
    let r = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&code={}",
            "a".repeat(20_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

/// The token endpoint is limited per client, counting only requests that
/// proved to come from it (its secret, or a good code or refresh token):
/// anyone can send a client's `client_id`, and must not be able to spend
/// its limit and lock it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_is_limited_per_client_counting_only_proven_requests() {
    let app = builder(Backend::Sqlite)
        .settings(|s| {
            s.limits.rate_limit_per_ip = Some(0);
            s.limits.rate_limit_per_client = Some(3);
        })
        .spawn()
        .await;
    let (status, registered) = app
        .register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let secret = registered["client_secret"].as_str().unwrap().to_owned();
    let refresh = |who: Option<(&str, &str)>| {
        let mut req = app
            .http
            .post(app.url("/token"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "nope")]);
        if let Some((id, secret)) = who {
            req = req.basic_auth(id, Some(secret));
        }
        req.send()
    };
    // Strangers sending the client's id, with a wrong secret or none: as
    // many as they like, and none of it counts.
    for _ in 0..10 {
        let r = refresh(Some((&id, "wrong"))).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "nope"),
                ("client_id", id.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The client itself: three authenticated requests, then it is limited.
    for _ in 0..3 {
        let r = refresh(Some((&id, &secret))).await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "invalid_grant, but authenticated"
        );
    }
    let r = refresh(Some((&id, &secret))).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));

    // A public client proves itself with a good code (the first of its
    // three), then good refresh tokens.
    let public = app.register_public().await;
    let tokens = Authorize::new(&app, &public, REDIRECT)
        .tokens_as(&app, "demo_user")
        .await;
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let (status, body, _) = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &public),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        rt = body["refresh_token"].as_str().unwrap().to_owned();
    }
    let (status, _, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &public),
        ])
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

xmcp_test_support::both_backends!(rate_limits_are_one_limit_for_every_instance);

/// Two instances on one database enforce one limit between them: what a
/// client spends on one is gone on the other, and comes back with time on
/// both.
async fn rate_limits_are_one_limit_for_every_instance(backend: Backend) {
    let limits = |s: &mut xmcp_server::config::Settings| {
        s.limits.rate_limit_per_ip = Some(4);
        s.limits.rate_limit_per_client = Some(0);
    };
    let a = builder(backend).settings(limits).spawn().await;
    let b = builder(backend).settings(limits).sharing(&a).spawn().await;
    let client_id = a.register_public().await;
    let bad = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "nope"),
        ("client_id", client_id.as_str()),
    ];
    // Four, alternating: each instance alone has seen only two.
    for app in [&a, &b, &a, &b] {
        let (status, body, _) = app.token(&bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    // The fifth is refused on either, with the time until the next one
    // (4 per minute: one every 15 s).
    for app in [&a, &b] {
        let r = app.post_form("/token", &bad).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "15");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    // Another endpoint group is counted apart.
    let (status, _) = b
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // One interval later, one more request passes, then the limit is back.
    a.clock.advance(15);
    let (status, _, _) = b.token(&bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let r = a.post_form("/token", &bad).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}
