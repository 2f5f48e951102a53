//! RFC 8628 device authorization grant, through every state: pending,
//! slow_down, approved (sign-in at the simulated X), redeemed once, denied,
//! expired; and what it must refuse.

use crate::harness::*;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

xmcp_test_support::both_backends!(
    device_grant_pending_slow_down_approve_redeem_once_and_refresh,
    device_grant_denied_and_expired,
);

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn register_device_client(app: &TestApp) -> String {
    let (status, body) = app
        .register(json!({
            "client_name": "Living-room TV",
            "grant_types": [DEVICE_GRANT, "refresh_token"],
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["response_types"], json!([]));
    body["client_id"].as_str().unwrap().to_owned()
}

async fn start(app: &TestApp, client_id: &str) -> Value {
    let r = app
        .post_form(
            "/device_authorization",
            &[("client_id", client_id), ("scope", "tweet.read users.read")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (StatusCode, Value) {
    let (status, body, _) = app
        .token(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ])
        .await;
    (status, body)
}

async fn expect_error(app: &TestApp, client_id: &str, device_code: &str, error: &str) {
    let (status, body) = poll(app, client_id, device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().is_some());
}

/// Enter `typed` at /device; the consent page it leads to.
async fn enter_code(app: &TestApp, typed: &str) -> ConsentPage {
    let r = app
        .http
        .post(app.url("/device"))
        .form(&[("user_code", typed)])
        .send()
        .await
        .unwrap();
    ConsentPage::read(r).await
}

async fn device_grant_pending_slow_down_approve_redeem_once_and_refresh(backend: Backend) {
    let app = spawn(backend).await;
    let meta: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["device_authorization_endpoint"],
        app.url("/device_authorization")
    );
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(DEVICE_GRANT))
    );

    // A client that also uses the code grant (so it could try to pass the
    // device code off as an authorization code).
    let (status, body) = app
        .register(json!({
            "client_name": "Living-room TV",
            "redirect_uris": ["http://127.0.0.1:7777/cb"],
            "grant_types": ["authorization_code", DEVICE_GRANT, "refresh_token"],
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let client_id = body["client_id"].as_str().unwrap().to_owned();
    let d = start(&app, &client_id).await;
    let device_code = d["device_code"].as_str().unwrap().to_owned();
    let user_code = d["user_code"].as_str().unwrap().to_owned();
    assert_eq!(d["verification_uri"], app.url("/device"));
    assert_eq!(
        d["verification_uri_complete"],
        format!("{}?user_code={user_code}", app.url("/device"))
    );
    assert_eq!(d["expires_in"], 600);
    assert_eq!(d["interval"], 5);
    assert_eq!(user_code.len(), 9);

    // Pending; polling again at once is too fast, and the interval grows.
    expect_error(&app, &client_id, &device_code, "authorization_pending").await;
    let (_, body) = poll(&app, &client_id, &device_code).await;
    assert_eq!(body["error"], "slow_down");
    app.clock.advance(10);
    expect_error(&app, &client_id, &device_code, "authorization_pending").await;

    // Another client cannot use this device code.
    let other = register_device_client(&app).await;
    app.clock.advance(10);
    expect_error(&app, &other, &device_code, "invalid_grant").await;

    // The verification page is prefilled; a wrong code says why.
    let page = app
        .http
        .get(d["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.text().await.unwrap().contains(&user_code));
    let wrong = enter_code(&app, "BCDF-BCDF").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.html.contains("unknown, expired or already used"));
    let malformed = enter_code(&app, "12").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.html.contains("not a valid code"));

    // Typed in lower case without the dash: the consent page names the
    // client and warns that a device gets access.
    let consent = enter_code(&app, &user_code.to_lowercase().replace('-', "")).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
    assert!(consent.html.contains("Living-room TV"));
    assert!(consent.html.contains("whoever holds that device"));
    let approved = submit_consent(&app, &consent, &[("action", "approve")]).await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    let to = approved.headers()[LOCATION].to_str().unwrap().to_owned();
    let callback = sign_in_at_sandbox(&app.http, &to, "demo_user", None).await;
    let done = app
        .http
        .get(&callback)
        .header("cookie", &consent.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("Device connected"));
    // The code cannot be entered twice.
    let again = enter_code(&app, &user_code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    // The device code is not an authorization code.
    let (status, body, _) = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &device_code),
            ("client_id", &client_id),
            ("code_verifier", &"a".repeat(43)),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    // The next poll (right away: a decided authorization answers at once)
    // gets tokens that work on /mcp.
    let (status, tokens) = poll(&app, &client_id, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "tweet.read users.read");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let me = app.call_tool(&access, "whoami", json!({})).await;
    assert_eq!(me["structuredContent"]["username"], "demo_user", "{me}");
    assert_eq!(me["structuredContent"]["client_id"], client_id.as_str());

    // Redeemed once: a second redemption fails and revokes what was issued.
    expect_error(&app, &client_id, &device_code, "invalid_grant").await;
    let r = app.mcp(Some(&access), "tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A fresh device authorization, approved, refreshes like any grant.
    let d = start(&app, &client_id).await;
    let consent = enter_code(&app, d["user_code"].as_str().unwrap()).await;
    let approved = submit_consent(&app, &consent, &[("action", "approve")]).await;
    let to = approved.headers()[LOCATION].to_str().unwrap().to_owned();
    let callback = sign_in_at_sandbox(&app.http, &to, "second_user", None).await;
    let done = app
        .http
        .get(&callback)
        .header("cookie", &consent.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let (status, tokens) = poll(&app, &client_id, d["device_code"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (status, refreshed, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let me = app
        .call_tool(
            refreshed["access_token"].as_str().unwrap(),
            "whoami",
            json!({}),
        )
        .await;
    assert_eq!(me["structuredContent"]["username"], "second_user");
}

async fn device_grant_denied_and_expired(backend: Backend) {
    let app = spawn(backend).await;
    let client_id = register_device_client(&app).await;

    // A client registered only for the code grant may not start one.
    let code_client = app.register_public().await;
    let r = app
        .post_form("/device_authorization", &[("client_id", &code_client)])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    // Nor may anyone ask for a scope or resource this server does not have.
    for (k, v, err) in [
        ("scope", "admin", "invalid_scope"),
        (
            "resource",
            "https://elsewhere.example/mcp",
            "invalid_target",
        ),
    ] {
        let r = app
            .post_form(
                "/device_authorization",
                &[("client_id", &client_id), (k, v)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], err, "{body}");
    }
    let r = app
        .post_form("/device_authorization", &[("client_id", "nobody")])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Denied on the consent page.
    let d = start(&app, &client_id).await;
    let device_code = d["device_code"].as_str().unwrap();
    let consent = enter_code(&app, d["user_code"].as_str().unwrap()).await;
    let denied = submit_consent(&app, &consent, &[("action", "deny")]).await;
    assert_eq!(denied.status(), StatusCode::OK);
    assert!(denied.text().await.unwrap().contains("denied"));
    expect_error(&app, &client_id, device_code, "access_denied").await;

    // Denied at X.
    let d = start(&app, &client_id).await;
    let consent = enter_code(&app, d["user_code"].as_str().unwrap()).await;
    let approved = submit_consent(&app, &consent, &[("action", "approve")]).await;
    let to = approved.headers()[LOCATION].to_str().unwrap().to_owned();
    let state = url::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let back = app
        .http
        .get(app.url(&format!(
            "/upstream/callback?error=access_denied&state={state}"
        )))
        .header("cookie", &consent.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), StatusCode::OK);
    expect_error(
        &app,
        &client_id,
        d["device_code"].as_str().unwrap(),
        "access_denied",
    )
    .await;

    // Expired: polls say so, and the code can no longer be entered.
    let d = start(&app, &client_id).await;
    app.clock.advance(601);
    expect_error(
        &app,
        &client_id,
        d["device_code"].as_str().unwrap(),
        "expired_token",
    )
    .await;
    let late = enter_code(&app, d["user_code"].as_str().unwrap()).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);

    // Unknown device codes and missing parameters.
    expect_error(&app, &client_id, "xmcp_dc_unknown", "invalid_grant").await;
    let (status, body, _) = app
        .token(&[("grant_type", DEVICE_GRANT), ("client_id", &client_id)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}
