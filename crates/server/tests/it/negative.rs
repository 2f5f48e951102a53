//! Bad input and attacks: each case asserts the exact status and error code,
//! and that nothing was issued or redirected that should not be.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use xmcp_auth::Clock;

xmcp_test_support::both_backends!(
    pkce_missing_plain_and_wrong,
    code_replay_revokes_tokens_but_bad_replay_does_not,
    refresh_reuse_after_grace_revokes_the_family,
    restart_between_authorize_consent_and_token,
);

fn error_of(params: &std::collections::HashMap<String, String>) -> Option<&str> {
    params.get("error").map(String::as_str)
}

async fn pkce_missing_plain_and_wrong(backend: Backend) {
    let app = spawn(backend).await;
    let client_id = app.register_public().await;
    let base = Authorize::new(&app, &client_id, "http://127.0.0.1:1234/callback");

    // No challenge, or plain: refused. The client registered itself, and
    // the user has seen no consent page: an error page, not a redirect
    // (see `authorize_errors_redirect_with_standard_codes` for a client the
    // operator registered).
    for q in [
        base.query()
            .replace(&format!("&code_challenge={}", base.challenge), ""),
        base.query()
            .replace("code_challenge_method=S256", "code_challenge_method=plain"),
    ] {
        let r = Authorize::get_raw(&app, &q).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.headers().get("location").is_none());
        assert!(r.text().await.unwrap().contains("invalid_request"));
    }

    // Wrong and missing verifier.
    let code = base.code(&app).await;
    let mut form = base.token_form(&code);
    let wrong = xmcp_crypto::b64url(&[7u8; 32]);
    form.retain(|(k, _)| *k != "code_verifier");
    let (s, b, _) = app.token(&form).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    form.push(("code_verifier", &wrong));
    let (s, b, h) = app.token(&form).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(h["cache-control"], "no-store");
    // The code still works with the right verifier: failed attempts consumed nothing.
    let (s, _, _) = app.token(&base.token_form(&code)).await;
    assert_eq!(s, StatusCode::OK);
}

async fn code_replay_revokes_tokens_but_bad_replay_does_not(backend: Backend) {
    let app = spawn(backend).await;
    let client_id = app.register_public().await;

    // A replay with a wrong verifier must not let an attacker revoke tokens.
    let a = Authorize::new(&app, &client_id, "http://127.0.0.1:1/callback");
    let code = a.code(&app).await;
    let (_, first, _) = app.token(&a.token_form(&code)).await;
    let wrong = xmcp_crypto::b64url(&[9u8; 32]);
    let mut bad = a.token_form(&code);
    bad.retain(|(k, _)| *k != "code_verifier");
    bad.push(("code_verifier", &wrong));
    let (s, b, _) = app.token(&bad).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(
        app.mcp(Some(access), "tools/list", json!({}))
            .await
            .status(),
        StatusCode::OK
    );

    // A valid replay revokes everything issued from the code.
    let (s, b, _) = app.token(&a.token_form(&code)).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        app.mcp(Some(access), "tools/list", json!({}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (s, b, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

async fn refresh_reuse_after_grace_revokes_the_family(backend: Backend) {
    let app = spawn(backend).await;
    let client_id = app.register_public().await;
    let a = Authorize::new(&app, &client_id, "http://127.0.0.1:1/callback");
    let t = a.tokens(&app).await;
    let r1 = t["refresh_token"].as_str().unwrap();
    let refresh = |rt: String| {
        let app = &app;
        let client_id = client_id.clone();
        async move {
            app.token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client_id),
            ])
            .await
        }
    };
    let (s, t2, _) = refresh(r1.to_owned()).await;
    assert_eq!(s, StatusCode::OK);
    // A parallel refresh with R1 inside the grace window gets the same pair.
    let (s, t2b, _) = refresh(r1.to_owned()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t2["access_token"], t2b["access_token"]);
    assert_eq!(t2["refresh_token"], t2b["refresh_token"]);
    // After the window, R1 is reuse: the family is revoked.
    app.clock.advance(app.app.config.auth.refresh_grace + 1);
    let (s, b, _) = refresh(r1.to_owned()).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (s, b, _) = refresh(t2["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let r = app
        .mcp(t2["access_token"].as_str(), "tools/list", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn restart_between_authorize_consent_and_token(backend: Backend) {
    // Pending authorizations (with our upstream state and PKCE verifier),
    // codes and sealed X tokens live in the store: a new instance on the same
    // database finishes flows the old one started, at every step.
    let app = spawn(backend).await;
    let client_id = app.register_public().await;
    let a = Authorize::new(&app, &client_id, "http://127.0.0.1:1/callback");
    let page = a.consent_page(&app).await;
    let stopped = app.stop().await;

    let app = builder(backend).restart_of(stopped).spawn().await;
    let consented = submit_consent(&app, &page, &[("action", "approve")]).await;
    assert_eq!(consented.status(), StatusCode::SEE_OTHER);
    // The user is at X while the server restarts; X's callback lands on the
    // new instance.
    let stopped = app.stop().await;

    let app = builder(backend).restart_of(stopped).spawn().await;
    let back = finish_upstream(&app, &page.cookie, consented, "demo_user", None).await;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let stopped = app.stop().await;

    let app = builder(backend).restart_of(stopped).spawn().await;
    let (s, t, _) = app.token(&a.token_form(&code)).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let token = t["access_token"].as_str().unwrap();
    let me = app.call_tool(token, "whoami", json!({})).await;
    assert_eq!(me["structuredContent"]["subject"], "x:1850000000000000001");
    let me = app.call_tool(token, "getUsersMe", json!({})).await;
    assert_eq!(
        me["structuredContent"]["data"]["username"], "demo_user",
        "{me}"
    );
}

// The remaining cases do not depend on the backend: SQLite only.

#[tokio::test]
async fn redirect_uri_mismatch_and_unknown_client_never_redirect() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    for bad in [
        "https://127.0.0.1.evil.example/callback",
        "http://127.0.0.1:5/callback/",
        "http://127.0.0.1:5/callback?x=1",
        "http://localhost:5/callback",
        "http://127.0.0.1:5/Callback",
    ] {
        let a = Authorize::new(&app, &client_id, bad);
        let r = Authorize::get_raw(&app, &a.query()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.headers().get("location").is_none(), "{bad}");
    }
    let a = Authorize::new(&app, "no-such-client", "http://127.0.0.1:5/callback");
    let r = Authorize::get_raw(&app, &a.query()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    let r = Authorize::get_raw(&app, "response_type=code").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Repeated client_id: refused without redirecting.
    let a = Authorize::new(&app, &client_id, "http://127.0.0.1:5/callback");
    let r = Authorize::get_raw(&app, &format!("{}&client_id=other", a.query())).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
}

/// Errors before consent go back to the redirect URI of a client the
/// operator registered, with the standard codes, `state` and `iss`; a
/// client anyone could have registered is shown an error page instead, so
/// that this server is nobody's open redirector (RFC 9700 §4.11.2).
#[tokio::test]
async fn authorize_errors_redirect_with_standard_codes() {
    const CALLBACK: &str = "http://127.0.0.1:5/callback";
    let app = builder(Backend::Sqlite)
        .settings(|s| with_static_client(s, CALLBACK))
        .spawn()
        .await;
    let registered = app.register_public().await;
    let dynamic = Authorize::new(&app, &registered, CALLBACK);
    let mut a = Authorize::new(&app, STATIC_CLIENT, CALLBACK);
    let cases = [
        (
            a.query()
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            a.query()
                .replace("scope=tweet.read+users.read", "scope=admin"),
            "invalid_scope",
        ),
        (
            format!(
                "{}&resource=https%3A%2F%2Fevil.example%2Fmcp",
                a.query()
                    .replace(&format!("&resource={}", urlencode(&app.url("/mcp"))), "")
            ),
            "invalid_target",
        ),
        (
            format!("{}&resource=https%3A%2F%2Fevil.example%2Fmcp", a.query()),
            "invalid_target",
        ),
    ];
    for (q, expected) in cases {
        let r = Authorize::get_raw(&app, &q).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{expected}");
        let p = redirect_params(&r);
        assert_eq!(error_of(&p), Some(expected));
        assert_eq!(p["iss"], app.base);
        assert_eq!(p["state"], a.state);
        // The same request for a dynamically registered client.
        let q = q.replace(
            &format!("client_id={STATIC_CLIENT}"),
            &format!("client_id={registered}"),
        );
        let r = Authorize::get_raw(&app, &q).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{expected}");
        assert!(r.headers().get("location").is_none(), "{expected}");
        let page = r.text().await.unwrap();
        assert!(page.contains(expected), "{page}");
    }
    // The dynamic client's own flow still redirects after consent.
    let page = dynamic.consent_page(&app).await;
    let r = submit_consent(&app, &page, &[("action", "deny")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(error_of(&redirect_params(&r)), Some("access_denied"));
    // The user denies.
    let page = a.consent_page(&app).await;
    let r = submit_consent(&app, &page, &[("action", "deny")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let p = redirect_params(&r);
    assert_eq!(error_of(&p), Some("access_denied"));
    assert_eq!(p["state"], a.state);
    assert_eq!(p["iss"], app.base);

    // Token request naming another resource than the authorization did.
    a.resource = Some(app.url("/mcp"));
    let code = a.code(&app).await;
    let mut form = a.token_form(&code);
    form.retain(|(k, _)| *k != "resource");
    form.push(("resource", "https://evil.example/mcp"));
    let (s, b, _) = app.token(&form).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn consent_requires_csrf_token_and_browser_cookie() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    let a = Authorize::new(&app, &client_id, "http://127.0.0.1:5/callback");
    let page = a.consent_page(&app).await;
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(page.cookie.starts_with("xmcp-consent-"));

    let post = |form: Vec<(&'static str, String)>, cookie: Option<String>| {
        let app = &app;
        async move {
            let mut req = app.http.post(app.url("/consent")).form(&form);
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            req.send().await.unwrap()
        }
    };
    let approve = |csrf: Option<&str>| {
        let mut f = vec![
            ("request_id", page.request_id.clone()),
            ("action", "approve".to_owned()),
        ];
        if let Some(c) = csrf {
            f.push(("csrf_token", c.to_owned()));
        }
        f
    };
    let r = post(approve(None), Some(page.cookie.clone())).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    let r = post(approve(Some("xmcp_csrf_forged")), Some(page.cookie.clone())).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("location").is_none());
    let r = post(approve(Some(&page.csrf_token)), None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let forged_cookie = format!("{}=tampered.value", page.cookie.split('=').next().unwrap());
    let r = post(approve(Some(&page.csrf_token)), Some(forged_cookie)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nothing was consumed: the genuine submission still succeeds.
    let first = post(approve(Some(&page.csrf_token)), Some(page.cookie.clone())).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    // Submitting again (the back button) starts the sign-in at X afresh:
    // the first trip's state no longer completes anything.
    let second = post(approve(Some(&page.csrf_token)), Some(page.cookie.clone())).await;
    assert_eq!(second.status(), StatusCode::SEE_OTHER);
    let stale_state = redirect_params(&first)["state"].clone();
    let r = app
        .http
        .get(app.url(&format!(
            "/upstream/callback?state={stale_state}&code=anything"
        )))
        .header("cookie", &page.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    let back = finish_upstream(&app, &page.cookie, second, "demo_user", None).await;
    assert!(back.query_pairs().any(|(k, _)| k == "code"), "{back}");
    // And once the flow completed, the form is spent.
    let r = post(approve(Some(&page.csrf_token)), Some(page.cookie.clone())).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn registration_rejects_bad_metadata_with_rfc7591_errors() {
    let app = spawn(Backend::Sqlite).await;
    let (s, b) = app
        .register(json!({"redirect_uris": ["javascript:alert(1)"]}))
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_redirect_uri"))
    );
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("javascript")
    );
    let (s, b) = app
        .register(json!({"redirect_uris": ["http://evil.example.com/cb"]}))
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_redirect_uri"))
    );

    let raw = |body: Vec<u8>, ct: &'static str| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(app.url("/register"))
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, b) = raw(b"{not json".to_vec(), "application/json").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_metadata"))
    );
    let (s, b) = raw(
        b"redirect_uris=x".to_vec(),
        "application/x-www-form-urlencoded",
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_client_metadata"))
    );
    let big = format!(
        "{{\"redirect_uris\":[\"http://127.0.0.1/cb\"],\"client_name\":\"{}\"}}",
        "a".repeat(40_000)
    );
    let (s, b) = raw(big.into_bytes(), "application/json").await;
    assert_eq!(
        (s, b["error"].as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("invalid_client_metadata")
        )
    );
    // Nothing was stored by the failures.
    assert_eq!(app.app.store.count_clients_since(0).await.unwrap(), 0);

    // Confidential registration gets a secret that expires never.
    let (s, b) = app.register(json!({"redirect_uris": ["https://c.example/cb"], "token_endpoint_auth_method": "client_secret_basic", "unknown_field": 1})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(b["client_secret"].as_str().unwrap().starts_with("xmcp_cs_"));
    assert_eq!(b["client_secret_expires_at"], 0);
    assert_eq!(
        b["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(b.get("unknown_field").is_none());

    // Disabled registration: 403 with a JSON error.
    let app = builder(Backend::Sqlite)
        .settings(|s| s.auth.registration_enabled = Some(false))
        .spawn()
        .await;
    let (s, b) = app
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb"]}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(b["error"].is_string());
    let meta: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta.get("registration_endpoint").is_none());
}

#[tokio::test]
async fn token_endpoint_rejects_malformed_requests() {
    let app = spawn(Backend::Sqlite).await;
    let r = app.http.get(app.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = app
        .http
        .post(app.url("/token"))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let big = "a".repeat(100_000);
    let (s, b, _) = app
        .token(&[("grant_type", "authorization_code"), ("code", &big)])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("invalid_request"))
    );
    let (s, b, _) = app
        .token(&[
            ("grant_type", "password"),
            ("username", "a"),
            ("password", "b"),
        ])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let (s, b, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (s, b, _) = app.token(&[("code", "x")]).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    // Bad Basic credentials: 401 with a Basic challenge.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(CONFIDENTIAL_ID, Some("wrong"))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // Unknown public client.
    let (s, b, _) = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", "nobody"),
        ])
        .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // A code issued to one client, redeemed by another.
    let a_id = app.register_public().await;
    let b_id = app.register_public().await;
    let a = Authorize::new(&app, &a_id, "http://127.0.0.1:9/callback");
    let code = a.code(&app).await;
    let mut form = a.token_form(&code);
    form.retain(|(k, _)| *k != "client_id");
    form.push(("client_id", &b_id));
    let (s, b, _) = app.token(&form).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // A redirect_uri differing from the authorization request's.
    let mut form = a.token_form(&code);
    form.retain(|(k, _)| *k != "redirect_uri");
    form.push(("redirect_uri", "http://127.0.0.1:9/other"));
    let (s, b, _) = app.token(&form).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Expired code.
    app.clock.advance(app.app.config.auth.code_ttl + 1);
    let (s, b, _) = app.token(&a.token_form(&code)).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn resource_guard_rejects_expired_foreign_and_misplaced_tokens() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    let t = Authorize::new(&app, &client_id, "http://127.0.0.1:9/callback")
        .tokens(&app)
        .await;
    let access = t["access_token"].as_str().unwrap().to_owned();

    // Lower-case scheme is fine (RFC 6750 scheme names are case-insensitive).
    let r = app
        .http
        .post(app.url("/mcp"))
        .header("authorization", format!("bearer {access}"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A token in the query string is ignored.
    let r = app
        .http
        .post(app.url(&format!("/mcp?access_token={access}")))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Garbage token.
    let r = app.mcp(Some("garbage"), "tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""));
    assert!(challenge.contains(&format!(
        "resource_metadata=\"{}\"",
        app.url("/.well-known/oauth-protected-resource/mcp")
    )));
    // A bad Origin is refused by the MCP transport.
    let r = app
        .http
        .post(app.url("/mcp"))
        .bearer_auth(&access)
        .header("origin", "https://evil.example")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A token minted by this AS for another resource is refused with 401.
    let store = &app.app.store;
    let now = app.clock.now();
    let user = store
        .upsert_user(
            &xmcp_store::UserIdentity {
                subject: "x:1850000000000000001".into(),
                username: None,
                display_name: None,
            },
            now,
        )
        .await
        .unwrap();
    let code =
        xmcp_crypto::token::NewToken::generate(xmcp_crypto::token::TokenKind::AuthorizationCode);
    store
        .insert_code(&xmcp_store::AuthorizationCode {
            hash: code.hash().clone(),
            kind: xmcp_store::CodeKind::Redirect,
            client_id: client_id.clone(),
            redirect_uri: "x".into(),
            redirect_uri_explicit: false,
            code_challenge: "c".into(),
            resource: "https://other.example/mcp".into(),
            scope: "tweet.read".into(),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + 60,
            used_at: None,
        })
        .await
        .unwrap();
    let foreign =
        xmcp_crypto::token::NewToken::generate(xmcp_crypto::token::TokenKind::AccessToken);
    let grant = xmcp_store::Grant {
        id: "grt_foreign".into(),
        user_id: user.id,
        client_id,
        scope: "tweet.read".into(),
        resource: "https://other.example/mcp".into(),
        created_at: now,
        revoked_at: None,
    };
    let pair = xmcp_store::TokenPair {
        access: foreign.hash().clone(),
        access_expires_at: now + 600,
        refresh: None,
        refresh_expires_at: now,
    };
    store
        .issue_from_code(code.hash(), now, &grant, &pair)
        .await
        .unwrap();
    let r = app
        .mcp(Some(foreign.plaintext()), "tools/list", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("another resource")
    );

    // Expired.
    app.clock.advance(app.app.config.auth.access_token_ttl + 1);
    let r = app.mcp(Some(&access), "tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn health_ready_and_unknown_paths() {
    let app = spawn(Backend::Sqlite).await;
    assert_eq!(
        app.http
            .get(app.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.http
            .get(app.url("/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let r = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The root protected-resource document is self-consistent: its resource
    // is the origin, which is also an accepted audience.
    let root: Value = app
        .http
        .get(app.url("/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["resource"], app.base);
    // Browser clients can read the challenge header.
    let r = app
        .http
        .post(app.url("/mcp"))
        .header("origin", "http://localhost:6274")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("www-authenticate")
    );
}

#[tokio::test]
async fn a_tool_needing_an_ungranted_scope_gets_403_insufficient_scope() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    let mut a = Authorize::new(&app, &client_id, "http://127.0.0.1:9/callback");
    a.scope = "tweet.read".into();
    let code = a.code(&app).await;
    let (_, t, _) = app.token(&a.token_form(&code)).await;
    assert_eq!(t["scope"], "tweet.read");
    let access = t["access_token"].as_str().unwrap();

    let r = app
        .mcp(
            Some(access),
            "tools/call",
            json!({"name": "whoami", "arguments": {}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"users.read\""), "{challenge}");
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
    // Tools needing nothing more still work with the same token.
    let echo = app
        .call_tool(access, "echo", json!({"message": "ok"}))
        .await;
    assert_eq!(echo["content"][0]["text"], "ok");
}
