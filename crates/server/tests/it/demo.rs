//! The demo's simulated X, mounted under `/sandbox`: its test controls
//! (`/sandbox/_sandbox/stats`, `/sandbox/_sandbox/faults`) are for this
//! machine only, never for a page of another origin, and never show the
//! codes and tokens it issued.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const STATS: &str = "/sandbox/_sandbox/stats";
const FAULTS: &str = "/sandbox/_sandbox/faults";

async fn demo(settings: impl FnOnce(&mut xmcp_server::config::Settings)) -> TestApp {
    builder(Backend::Sqlite)
        .upstream(Upstream::Configured)
        .settings(|s| {
            s.x.demo = Some(true);
            settings(s);
        })
        .spawn()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_controls_are_not_shared_with_other_origins() {
    let app = demo(|_| {}).await;
    // A user signs in, so there are codes and tokens to leak.
    let client_id = app.register_public().await;
    let tokens = Authorize::new(&app, &client_id, "http://127.0.0.1:5555/callback")
        .tokens(&app)
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let me = app.call_tool(access, "getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");

    let r = app.http.get(app.url(STATS)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let body = r.text().await.unwrap();
    let stats: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["code_exchanges"], 1, "{body}");
    assert!(stats.get("issued").is_none(), "{body}");
    for issued in app.app.sandbox.as_ref().unwrap().stats().issued {
        assert!(!body.contains(&issued), "stats show an issued credential");
    }

    // A page elsewhere can neither read nor drive them...
    for path in [STATS, FAULTS] {
        let preflight = app
            .http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(
            preflight
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path}: {:?}",
            preflight.headers()
        );
        assert!(preflight.status().is_client_error(), "{path}");
    }
    let r = app
        .http
        .post(app.url(FAULTS))
        .header("origin", "https://evil.example")
        .json(&json!({"endpoint": "*", "fault": "server_error", "status": 503}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = app
        .http
        .get(app.url(STATS))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let faults: Value = app
        .http
        .get(app.url(FAULTS))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults, json!([]));

    // ...while the rest of the server still serves browser clients.
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}

/// Behind a trusted proxy the forwarded client decides: a proxy on this
/// machine passing on a request from elsewhere is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_demo_controls_answer_only_local_clients() {
    let app = demo(|s| s.limits.trusted_proxies = Some(vec!["127.0.0.1".into()])).await;
    for (forwarded, status) in [
        (Some("203.0.113.7"), StatusCode::FORBIDDEN),
        (Some("127.0.0.1"), StatusCode::OK),
        (None, StatusCode::OK),
    ] {
        let mut r = app.http.get(app.url(STATS));
        if let Some(ip) = forwarded {
            r = r.header("x-forwarded-for", ip);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), status, "{forwarded:?}");
    }
}
