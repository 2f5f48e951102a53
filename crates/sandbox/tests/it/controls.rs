//! The test controls (`/_sandbox/stats`, `/_sandbox/faults`): they answer
//! only this machine and never show issued credentials.

use super::*;

#[tokio::test]
async fn the_counters_never_show_issued_codes_or_tokens() {
    let env = start().await;
    let t = env.login(0, ALL).await;
    let r = env
        .http
        .get(env.url("/_sandbox/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = r.text().await.unwrap();
    let stats: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["code_exchanges"], 1, "{body}");
    assert!(stats.get("issued").is_none(), "{body}");
    for secret in [&t["access_token"], &t["refresh_token"]] {
        assert!(!body.contains(secret.as_str().unwrap()), "{body}");
    }
    // Tests in this process still see them.
    assert!(env.sandbox.stats().issued.len() >= 3);
}

/// The controls answer this machine only: not a page of another origin
/// (even one on this machine), not a DNS-rebound host name.
#[tokio::test]
async fn the_controls_refuse_other_origins_and_host_names() {
    let env = start().await;
    let fault = json!({"endpoint": "GET /2/users/me", "fault": "server_error", "status": 503});
    let port = env.base.rsplit(':').next().unwrap().to_owned();
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "http://127.0.0.1:1"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("host", &*format!("rebound.example:{port}")),
    ] {
        for r in [
            env.http.get(env.url("/_sandbox/stats")).header(name, value),
            env.http
                .post(env.url("/_sandbox/faults"))
                .header(name, value)
                .json(&fault),
            env.http
                .delete(env.url("/_sandbox/faults"))
                .header(name, value),
        ] {
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}: {value}");
            assert!(r.headers().get("access-control-allow-origin").is_none());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "forbidden");
        }
    }
    assert!(env.sandbox.stats().api_calls.is_empty());
    let faults: Value = env
        .http
        .get(env.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults, json!([]), "no refused request added a fault");
    // Its own pages, typed URLs, and `localhost` are fine.
    for (name, value) in [
        ("origin", env.base.as_str()),
        ("sec-fetch-site", "same-origin"),
        ("sec-fetch-site", "none"),
        ("host", &*format!("localhost:{port}")),
    ] {
        let r = env
            .http
            .get(env.url("/_sandbox/stats"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{name}: {value}");
    }
}

/// Only clients on this machine: the TCP peer, or the client the embedding
/// server names (behind its trusted proxy); without either, nobody.
#[tokio::test]
async fn the_controls_answer_only_loopback_clients() {
    use tower::ServiceExt;
    let sandbox = Sandbox::new(SandboxConfig::default(), Arc::new(|| 1_800_000_000));
    let request = |client: Option<&str>, peer: Option<&str>| {
        let mut r = axum::http::Request::get("/_sandbox/stats")
            .header("host", "127.0.0.1:8001")
            .body(axum::body::Body::empty())
            .unwrap();
        if let Some(ip) = client {
            r.extensions_mut()
                .insert(xmcp_sandbox::ClientAddr(ip.parse().unwrap()));
        }
        if let Some(addr) = peer {
            r.extensions_mut().insert(axum::extract::ConnectInfo(
                addr.parse::<std::net::SocketAddr>().unwrap(),
            ));
        }
        r
    };
    for (client, peer, status) in [
        (None, Some("127.0.0.1:5000"), StatusCode::OK),
        (None, Some("[::1]:5000"), StatusCode::OK),
        (None, Some("[::ffff:127.0.0.1]:5000"), StatusCode::OK),
        (None, Some("192.168.1.20:5000"), StatusCode::FORBIDDEN),
        (None, None, StatusCode::FORBIDDEN),
        // Behind a proxy on this machine, the forwarded client decides.
        (
            Some("203.0.113.9"),
            Some("127.0.0.1:5000"),
            StatusCode::FORBIDDEN,
        ),
        (Some("127.0.0.1"), Some("10.0.0.2:5000"), StatusCode::OK),
    ] {
        let r = sandbox
            .router()
            .oneshot(request(client, peer))
            .await
            .unwrap();
        assert_eq!(r.status(), status, "client {client:?}, peer {peer:?}");
    }
    // The simulated X itself answers anyone.
    let r = sandbox
        .router()
        .oneshot(
            axum::http::Request::get("/2/openapi.json")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
