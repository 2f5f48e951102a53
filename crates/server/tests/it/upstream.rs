//! Sign in with X and the token vault, against the simulated X: refresh
//! before expiry and after a 401, single-flight across tasks and across
//! instances, refusal versus transient failure, and X's errors as OAuth
//! redirects or tool errors.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Instant;

xmcp_test_support::both_backends!(
    x_expiry_forces_one_refresh_and_calls_go_on,
    twenty_concurrent_calls_during_expiry_make_one_refresh,
    two_instances_on_one_database_make_one_refresh,
    a_refused_refresh_requires_reauth_and_a_transient_one_does_not,
);

const REDIRECT: &str = "http://127.0.0.1:5555/callback";

/// A registered public client and a user's tokens at our server.
async fn signed_in(app: &TestApp, user: &str) -> (String, Value) {
    let client_id = app.register_public().await;
    let tokens = Authorize::new(app, &client_id, REDIRECT)
        .tokens_as(app, user)
        .await;
    (client_id, tokens)
}

fn access(t: &Value) -> String {
    t["access_token"].as_str().unwrap().to_owned()
}

/// An app whose access tokens (a day) outlive X's (two hours): our token
/// lifetimes are independent of X's.
async fn spawn_long(backend: Backend) -> TestApp {
    builder(backend)
        .settings(|s| s.auth.access_token_ttl = Some(86_400))
        .spawn()
        .await
}

/// X's access tokens live 7200 s; the vault refreshes 60 s before that.
const INTO_REFRESH_MARGIN: i64 = 7200 - 30;

async fn me(client: &Client, token: &str) -> Value {
    client.call_tool(token, "getUsersMe", json!({})).await
}

async fn x_expiry_forces_one_refresh_and_calls_go_on(backend: Backend) {
    let app = spawn_long(backend).await;
    let (_, t) = signed_in(&app, "demo_user").await;
    let token = access(&t);
    let r = me(&app, &token).await;
    assert_eq!(r["structuredContent"]["data"]["username"], "demo_user");
    assert_eq!(app.sandbox().stats().refreshes, 0);

    // Our access token outlives X's: the client never notices X's expiry.
    app.clock.advance(INTO_REFRESH_MARGIN);
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(app.sandbox().stats().refreshes, 1);
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(
        app.sandbox().stats().refreshes,
        1,
        "the new X token is reused"
    );

    // X ending the token early (401) refreshes once, and the call succeeds.
    assert!(app.sandbox().expire_access_tokens_of("demo_user") > 0);
    let r = me(&app, &token).await;
    assert_eq!(
        r["structuredContent"]["data"]["username"], "demo_user",
        "{r}"
    );
    assert_eq!(app.sandbox().stats().refreshes, 2);
}

/// Fire `n` getUsersMe calls at once, spread over `clients`; each result.
async fn burst(clients: &[Client], token: &str, n: usize) -> Vec<Value> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            let token = token.to_owned();
            tokio::spawn(async move { me(&client, &token).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn twenty_concurrent_calls_during_expiry_make_one_refresh(backend: Backend) {
    let app = spawn_long(backend).await;
    let (_, t) = signed_in(&app, "demo_user").await;
    app.clock.advance(INTO_REFRESH_MARGIN);
    // A slow refresh at X keeps the window wide open for the other calls.
    app.sandbox()
        .add_fault("POST /2/oauth2/token=slow:300*1".parse().unwrap());
    let started = Instant::now();
    let results = burst(std::slice::from_ref(&app.client), &access(&t), 20).await;
    let elapsed = started.elapsed();
    for r in &results {
        assert_eq!(
            r["structuredContent"]["data"]["username"], "demo_user",
            "{r}"
        );
    }
    let stats = app.sandbox().stats();
    assert_eq!(stats.refreshes, 1, "one refresh for 20 concurrent calls");
    assert_eq!(stats.refused_refreshes, 0);
    // Reported in the closing note; not asserted (speed is for benchmarks).
    eprintln!(
        "20 concurrent calls across one X refresh (300 ms slow): all succeeded in {elapsed:?}"
    );
}

async fn two_instances_on_one_database_make_one_refresh(backend: Backend) {
    let a = spawn_long(backend).await;
    let b = builder(backend)
        .settings(|s| s.auth.access_token_ttl = Some(86_400))
        .sharing(&a)
        .spawn()
        .await;
    let (_, t) = signed_in(&a, "demo_user").await;
    // The token from instance A works on instance B: same store.
    let r = me(&b, &access(&t)).await;
    assert_eq!(
        r["structuredContent"]["data"]["username"], "demo_user",
        "{r}"
    );

    a.clock.advance(INTO_REFRESH_MARGIN);
    a.sandbox()
        .add_fault("POST /2/oauth2/token=slow:300*1".parse().unwrap());
    let results = burst(&[a.client.clone(), b.client.clone()], &access(&t), 20).await;
    for r in &results {
        assert_eq!(
            r["structuredContent"]["data"]["username"], "demo_user",
            "{r}"
        );
    }
    let stats = a.sandbox().stats();
    assert_eq!(stats.refreshes, 1, "one refresh between two instances");
    assert_eq!(stats.refused_refreshes, 0);
}

async fn a_refused_refresh_requires_reauth_and_a_transient_one_does_not(backend: Backend) {
    let app = spawn_long(backend).await;
    let (client_id, t) = signed_in(&app, "demo_user").await;
    let token = access(&t);
    let refresh = |rt: String| {
        let (app, client_id) = (&app, client_id.clone());
        async move {
            app.token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client_id),
            ])
            .await
        }
    };

    // Transient: X's token endpoint is down. The call fails with a
    // try-again error; nothing is marked, our refresh grant still works.
    app.clock.advance(INTO_REFRESH_MARGIN);
    app.sandbox()
        .add_fault("POST /2/oauth2/token=503*1".parse().unwrap());
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], true, "{r}");
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("try again"), "{text}");
    let (status, t2, _) = refresh(t["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, StatusCode::OK, "{t2}");
    let token = access(&t2);
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], false, "X is back: {r}");
    assert_eq!(app.sandbox().stats().refreshes, 1);

    // Refused: X rejects the refresh token. The call says to authorize
    // again, and so does our refresh grant (invalid_grant), which also ends
    // the grant.
    app.clock.advance(INTO_REFRESH_MARGIN);
    app.sandbox()
        .add_fault("POST /2/oauth2/token=refuse-refresh*1".parse().unwrap());
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], true, "{r}");
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("authorize again"), "{text}");
    let (status, body, _) = refresh(t2["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("authorize again"),
        "{body}"
    );
    let r = app.mcp(Some(&token), "tools/list", json!({})).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the grant was revoked"
    );
    assert_eq!(app.sandbox().stats().refused_refreshes, 1);

    // Signing in again heals it.
    let (_, t3) = signed_in(&app, "demo_user").await;
    let r = me(&app, &access(&t3)).await;
    assert_eq!(
        r["structuredContent"]["data"]["username"], "demo_user",
        "{r}"
    );
}

#[tokio::test]
async fn x_errors_reach_the_client_as_oauth_error_redirects() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;

    // The user cancels at X.
    let a = Authorize::new(&app, &client_id, REDIRECT);
    let page = a.consent_page(&app).await;
    let r = submit_consent(&app, &page, &[("action", "approve")]).await;
    let to_x = r.headers()["location"].to_str().unwrap().to_owned();
    let denied = app
        .http
        .post(&to_x)
        .form(
            &url::Url::parse(&to_x)
                .unwrap()
                .query_pairs()
                .into_owned()
                .chain([("action".to_owned(), "deny".to_owned())])
                .collect::<Vec<_>>(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FOUND);
    let callback = denied.headers()["location"].to_str().unwrap().to_owned();
    let r = app
        .http
        .get(&callback)
        .header("cookie", &page.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let p = redirect_params(&r);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(REDIRECT)
    );
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["state"], a.state);
    assert_eq!(p["iss"], app.base);
    // The same callback again: the flow is over, an error page.
    let r = app
        .http
        .get(&callback)
        .header("cookie", &page.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // An unknown state, or a callback from another browser: error pages,
    // never redirects.
    let r = app
        .http
        .get(app.url("/upstream/callback?state=forged&code=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    let b = Authorize::new(&app, &client_id, REDIRECT);
    let page = b.consent_page(&app).await;
    let r = submit_consent(&app, &page, &[("action", "approve")]).await;
    let stolen = finish_upstream_without_cookie(&app, r).await;
    assert_eq!(stolen.status(), StatusCode::FORBIDDEN);
    assert!(stolen.headers().get("location").is_none());

    // Too slow at X: the pending authorization expired; the client is told.
    let c = Authorize::new(&app, &client_id, REDIRECT);
    let page = c.consent_page(&app).await;
    let r = submit_consent(&app, &page, &[("action", "approve")]).await;
    app.clock.advance(601);
    let back = finish_upstream(&app, &page.cookie, r, "demo_user", None).await;
    let p: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(p["error"], "access_denied");
    assert!(p["error_description"].contains("expired"), "{p:?}");
    assert_eq!(p["state"], c.state);
}

/// Sign in at the simulated X, then deliver the callback without the consent
/// cookie (as an attacker replaying it in another browser would).
async fn finish_upstream_without_cookie(
    app: &TestApp,
    consented: reqwest::Response,
) -> reqwest::Response {
    let to_x = consented.headers()["location"].to_str().unwrap().to_owned();
    let mut form: Vec<(String, String)> = url::Url::parse(&to_x)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form.extend([
        ("user_id".into(), DEMO_USER_ID.into()),
        ("grant".into(), "tweet.read".into()),
        ("grant".into(), "users.read".into()),
        ("action".into(), "allow".into()),
    ]);
    let r = app.http.post(&to_x).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    app.http.get(&callback).send().await.unwrap()
}

#[tokio::test]
async fn x_errors_become_tool_errors_with_problem_details_and_5xx_is_retried() {
    let app = spawn(Backend::Sqlite).await;
    let (_, t) = signed_in(&app, "demo_user").await;
    let token = access(&t);

    app.sandbox()
        .add_fault("GET /2/users/me=402*1".parse().unwrap());
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], true);
    assert_eq!(r["structuredContent"]["status"], 402);
    assert_eq!(r["structuredContent"]["title"], "CreditsDepleted");
    assert!(
        r["structuredContent"]["x-transaction-id"].is_string(),
        "{r}"
    );
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("HTTP 402")
    );

    // A window resetting in 15 minutes is not waited for: the tool says
    // when to retry.
    app.sandbox()
        .add_fault("GET /2/users/me=429:900*1".parse().unwrap());
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], true);
    assert_eq!(r["structuredContent"]["status"], 429);
    assert_eq!(r["structuredContent"]["rate_limit"]["remaining"], 0);
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("(in 900 s): retry then"), "{text}");
    // X said the window is used up: until it resets, X is not asked again
    // (the fault is spent, so a call reaching X would succeed).
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], true, "{r}");
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("rate limit for GET /2/users/me is used up"),
        "{text}"
    );
    app.clock.advance(901);

    // Two 503s in a row are retried away.
    app.sandbox()
        .add_fault("GET /2/users/me=503*2".parse().unwrap());
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"]["data"]["username"], "demo_user");

    // Bad arguments never reach X.
    let r = app
        .call_tool(&token, "getUsersMe", json!({"nope": 1}))
        .await;
    assert_eq!(r["isError"], true);
    assert!(
        r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("unknown argument `nope`")
    );
}

#[tokio::test]
async fn local_accounts_sign_in_without_an_upstream_and_x_tools_are_absent() {
    let app = builder(Backend::Sqlite)
        .upstream(Upstream::Local)
        .spawn()
        .await;
    let (_, t) = signed_in(&app, LOCAL_USER).await;
    let token = access(&t);
    let who = app.call_tool(&token, "whoami", json!({})).await;
    assert_eq!(
        who["structuredContent"]["subject"],
        format!("local:{LOCAL_USER}")
    );
    let list: Value = app
        .mcp(Some(&token), "tools/list", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["whoami", "echo"]);
}

/// An app whose users sign in at `idp`.
async fn oidc_app(idp: &OidcProvider) -> TestApp {
    let issuer = idp.issuer.clone();
    builder(Backend::Sqlite)
        .upstream(Upstream::Configured)
        .settings(|s| {
            s.oidc.oidc_issuer = Some(issuer);
            s.oidc.oidc_client_id = Some(OIDC_CLIENT_ID.into());
        })
        .spawn()
        .await
}

/// Consent, then the provider (which signs in at once), then the callback:
/// where the browser is sent in the end.
async fn through_oidc(app: &TestApp, a: &Authorize) -> std::collections::HashMap<String, String> {
    let page = a.consent_page(app).await;
    let r = submit_consent(app, &page, &[("action", "approve")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to_idp = r.headers()["location"].to_str().unwrap().to_owned();
    let r = app.http.get(&to_idp).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let callback = r.headers()["location"].to_str().unwrap().to_owned();
    let r = app
        .http
        .get(&callback)
        .header("cookie", &page.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(REDIRECT)
    );
    redirect_params(&r)
}

#[tokio::test]
async fn an_openid_connect_provider_signs_users_in() {
    let idp = OidcProvider::start().await;
    let app = oidc_app(&idp).await;
    let client_id = app.register_public().await;
    let a = Authorize::new(&app, &client_id, REDIRECT);
    let back = through_oidc(&app, &a).await;
    assert_eq!(back["state"], a.state);
    let (status, t, _) = app.token(&a.token_form(&back["code"])).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let who = app.call_tool(&access(&t), "whoami", json!({})).await;
    assert_eq!(
        who["structuredContent"]["subject"],
        format!("oidc:{}#{OIDC_SUBJECT}", idp.issuer)
    );
    assert_eq!(who["structuredContent"]["username"], "oidc.user");
}

#[tokio::test]
async fn id_tokens_that_fail_verification_end_in_an_error_redirect() {
    let idp = OidcProvider::start().await;
    let app = oidc_app(&idp).await;
    let client_id = app.register_public().await;
    for (mode, words) in [
        (Misbehaviour::WrongNonce, "nonce"),
        (Misbehaviour::WrongAudience, "not valid"),
        (Misbehaviour::ForeignKey, "not valid"),
    ] {
        idp.misbehave(mode);
        let a = Authorize::new(&app, &client_id, REDIRECT);
        let back = through_oidc(&app, &a).await;
        assert_eq!(back["error"], "server_error", "{mode:?}: {back:?}");
        assert!(
            back["error_description"].contains(words),
            "{mode:?}: {back:?}"
        );
        assert!(!back.contains_key("code"));
        assert_eq!(back["state"], a.state);
    }
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let idp = OidcProvider::start().await;
    idp.misbehave(Misbehaviour::WrongIssuer);
    let app = oidc_app(&idp).await;
    let client_id = app.register_public().await;
    let a = Authorize::new(&app, &client_id, REDIRECT);
    let page = a.consent_page(&app).await;
    let r = submit_consent(&app, &page, &[("action", "approve")]).await;
    // The user stays on our consent page, told to try again; nobody is sent
    // to a provider whose metadata does not check out.
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("cannot be reached"));
}

#[tokio::test]
async fn resource_server_only_verifies_an_external_issuers_jwts() {
    let idp = OidcProvider::start().await;
    let (issuer, jwks) = (idp.issuer.clone(), idp.jwks_url());
    let app = builder(Backend::Sqlite)
        .upstream(Upstream::Configured)
        .settings(|s| {
            s.external.external_issuer = Some(issuer);
            s.external.external_jwks_url = Some(jwks);
        })
        .spawn()
        .await;
    // The resource names the external issuer; no authorization endpoints here.
    let prm: Value = app
        .http
        .get(app.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["authorization_servers"], json!([idp.issuer]));
    assert_eq!(prm["resource"], app.url("/mcp"));
    for (method, path) in [
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/authorize"),
        ("POST", "/token"),
        ("POST", "/register"),
    ] {
        let r = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }

    let now = xmcp_auth::Clock::now(app.clock.as_ref());
    let claims = |over: Value| {
        let mut c = json!({
            "iss": idp.issuer, "sub": "ext-user-1", "aud": app.url("/mcp"),
            "exp": now + 300, "iat": now, "scope": "tweet.read users.read",
            "client_id": "ext-client", "jti": "t1",
        });
        for (k, v) in over.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let good = idp.sign(&claims(json!({})), false);
    let who = app.call_tool(&good, "whoami", json!({})).await;
    assert_eq!(who["structuredContent"]["subject"], "ext-user-1");
    assert_eq!(who["structuredContent"]["client_id"], "ext-client");
    assert_eq!(
        who["structuredContent"]["scopes"],
        json!(["tweet.read", "users.read"])
    );

    // An audience list naming us is fine too.
    let listed = idp.sign(&claims(json!({"aud": ["other", app.url("/mcp")]})), false);
    assert_eq!(
        app.mcp(Some(&listed), "tools/list", json!({}))
            .await
            .status(),
        StatusCode::OK
    );

    for (why, token) in [
        (
            "another audience",
            idp.sign(
                &claims(json!({"aud": "https://elsewhere.example/mcp"})),
                false,
            ),
        ),
        ("expired", idp.sign(&claims(json!({"exp": now - 1})), false)),
        (
            "another issuer",
            idp.sign(&claims(json!({"iss": "https://evil.example"})), false),
        ),
        ("an unpublished key", idp.sign(&claims(json!({})), true)),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let r = app.mcp(Some(&token), "tools/list", json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{why}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{why}: {challenge}"
        );
    }

    // Scopes still gate tools: whoami needs users.read.
    let narrow = idp.sign(&claims(json!({"scope": "tweet.read"})), false);
    let r = app
        .mcp(
            Some(&narrow),
            "tools/call",
            json!({"name": "whoami", "arguments": {}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// Stateful mode behind an external authorization server: its users have
/// no row here, and their sessions are still theirs alone.
#[tokio::test]
async fn external_users_keep_their_stateful_sessions_to_themselves() {
    use crate::sessions::{open_session, whoami_in_session};
    let idp = OidcProvider::start().await;
    let app = builder(Backend::Sqlite)
        .upstream(Upstream::Configured)
        .settings(|s| {
            s.external.external_issuer = Some(idp.issuer.clone());
            s.external.external_jwks_url = Some(idp.jwks_url());
            s.server.mcp_stateful = Some(true);
        })
        .spawn()
        .await;
    let now = xmcp_auth::Clock::now(app.clock.as_ref());
    let token = |sub: &str| {
        idp.sign(
            &json!({
                "iss": idp.issuer, "sub": sub, "aud": app.url("/mcp"),
                "exp": now + 300, "iat": now, "scope": "tweet.read users.read",
                "client_id": "ext-client", "jti": sub,
            }),
            false,
        )
    };
    let (one, two) = (token("ext-user-1"), token("ext-user-2"));
    let session = open_session(&app, &one).await;
    assert_eq!(
        whoami_in_session(&app, &one, &session).await,
        (StatusCode::OK, "ext-user-1".to_owned())
    );
    assert_eq!(
        whoami_in_session(&app, &two, &session).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn resource_server_only_introspects_at_a_remote_authorization_server() {
    // Another xmcp is the authorization server; this one only guards /mcp
    // (the same public URL, as a separate resource tier behind one origin).
    let authz = spawn(Backend::Sqlite).await;
    let rs = builder(Backend::Sqlite)
        .upstream(Upstream::Configured)
        .public_url(&authz.base)
        .settings(|s| {
            s.external.external_issuer = Some(authz.base.clone());
            s.external.external_introspection_url = Some(authz.url("/introspect"));
            s.external.external_client_id = Some(CONFIDENTIAL_ID.into());
            s.external.external_client_secret = Some(CONFIDENTIAL_SECRET.to_owned().into());
        })
        .spawn()
        .await;
    // `rs.client` talks to the resource server's own port.
    let rs_direct = rs.client.clone();
    let (client_id, t) = signed_in(&authz, "demo_user").await;
    let token = access(&t);
    let who = rs_direct.call_tool(&token, "whoami", json!({})).await;
    assert_eq!(
        who["structuredContent"]["subject"],
        format!("x:{DEMO_USER_ID}")
    );

    // Revoked at the authorization server: refused at once (no cache).
    let r = authz
        .post_form(
            "/revoke",
            &[("token", token.as_str()), ("client_id", client_id.as_str())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = rs_direct.mcp(Some(&token), "tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_tool_needing_a_scope_x_did_not_grant_says_which_one() {
    let app = spawn(Backend::Sqlite).await;
    let (_, t) = signed_in(&app, "demo_user").await;
    let token = access(&t);
    let who = app.call_tool(&token, "whoami", json!({})).await;
    let user_id = who["structuredContent"]["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // As if the user had unticked users.read at X: the grant X recorded for
    // them lacks it, while our token (the client's grant) still has it.
    let store = &app.app.store;
    let mut row = store.get_upstream_tokens(&user_id).await.unwrap().unwrap();
    row.scope = "tweet.read offline.access".into();
    store.put_upstream_tokens(&row).await.unwrap();
    let calls_before = app.sandbox().stats().api_calls.get("demo_user").copied();
    let r = me(&app, &token).await;
    assert_eq!(r["isError"], true, "{r}");
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("did not grant the scope(s) users.read that this needs"),
        "only the missing scope is named: {text}"
    );
    assert_eq!(
        app.sandbox().stats().api_calls.get("demo_user").copied(),
        calls_before,
        "X was not called"
    );
}
