//! The sandbox's own behaviour over real HTTP on 127.0.0.1: X's OAuth rules
//! (PKCE, exact callbacks, Basic auth, single-use rotating refresh tokens),
//! the API's shapes and headers, and fault injection.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use xmcp_sandbox::{Fault, FaultKind, Sandbox, SandboxClient, SandboxConfig};

const CALLBACK: &str = "http://127.0.0.1:9/upstream/callback";
const SECRET: &str = "sandbox-secret";

struct Env {
    base: String,
    http: reqwest::Client,
    sandbox: Sandbox,
    clock: Arc<AtomicI64>,
}

async fn start() -> Env {
    let clock = Arc::new(AtomicI64::new(1_800_000_000));
    let now = {
        let c = clock.clone();
        Arc::new(move || c.load(Ordering::SeqCst))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sandbox = Sandbox::new(
        SandboxConfig {
            clients: vec![
                SandboxClient {
                    client_id: "confidential".into(),
                    client_secret: Some(SECRET.into()),
                    redirect_uris: vec![CALLBACK.into()],
                },
                SandboxClient {
                    client_id: "public".into(),
                    client_secret: None,
                    redirect_uris: vec![CALLBACK.into()],
                },
            ],
            base_url: base.clone(),
            app_bearer_token: Some("app-token".into()),
            ..Default::default()
        },
        now,
    );
    let router = sandbox
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Env {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        sandbox,
        clock,
    }
}

fn pkce() -> (String, String) {
    xmcp_crypto::pkce_pair()
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Authorize as the `nth` demo user, granting `grant` (all when None).
    async fn code(&self, client: &str, scope: &str, challenge: &str, nth: usize) -> String {
        let users = self.sandbox.demo_users();
        let mut form = vec![
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", CALLBACK),
            ("state", "st"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("scope", scope),
            ("user_id", users[nth].0.as_str()),
            ("action", "allow"),
        ];
        let grants: Vec<String> = scope.split(' ').map(str::to_owned).collect();
        for g in &grants {
            form.push(("grant", g));
        }
        let r = self
            .http
            .post(self.url("/i/oauth2/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        let q = query_of(r.headers()["location"].to_str().unwrap());
        assert_eq!(q["state"], "st");
        q["code"].clone()
    }

    async fn token(&self, basic: bool, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url("/2/oauth2/token")).form(form);
        if basic {
            req = req.basic_auth("confidential", Some(SECRET));
        }
        let r = req.send().await.unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// A user's tokens through the full flow.
    async fn login(&self, nth: usize, scope: &str) -> Value {
        let (verifier, challenge) = pkce();
        let code = self.code("confidential", scope, &challenge, nth).await;
        let (status, body) = self
            .token(
                true,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
}

const ALL: &str = "tweet.read tweet.write users.read like.read like.write bookmark.read bookmark.write follows.read follows.write offline.access";

#[tokio::test]
async fn the_login_page_lists_demo_users_and_refuses_unknown_callbacks() {
    let env = start().await;
    let (_, challenge) = pkce();
    let q = format!(
        "response_type=code&client_id=confidential&redirect_uri={}&state=s&code_challenge={challenge}&code_challenge_method=S256&scope=tweet.read%20users.read",
        urlencode(CALLBACK)
    );
    let page = env
        .http
        .get(env.url(&format!("/i/oauth2/authorize?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("@demo_user") && html.contains("@second_user"));
    assert!(html.contains("value=\"tweet.read\" checked"));
    // A look-alike callback gets an error page, never a redirect.
    let bad = q.replace("callback", "callbackx");
    let r = env
        .http
        .get(env.url(&format!("/i/oauth2/authorize?{bad}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    // No PKCE: refused.
    let r = env
        .http
        .get(env.url(&format!(
            "/i/oauth2/authorize?{}",
            q.replace("code_challenge=", "x=")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn code_exchange_enforces_pkce_client_auth_and_single_use() {
    let env = start().await;
    let (verifier, challenge) = pkce();
    let code = env
        .code("confidential", "tweet.read users.read", &challenge, 0)
        .await;
    let form = |v: &'static str| {
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", v),
        ]
    };
    // Confidential client without Basic: X's "Missing valid authorization header".
    let mut no_basic = form("x");
    no_basic.push(("client_id", "confidential"));
    let (status, body) = env.token(false, &no_basic).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized_client");
    // Wrong verifier: the code is spent (single use, like X).
    let (status, body) = env
        .token(true, &form("wrong-verifier-wrong-verifier-wrong-verifier"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    let mut right = form("");
    right[3] = ("code_verifier", verifier.as_str());
    let (status, _) = env.token(true, &right).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a used code stays used");

    // A fresh code with the right verifier works; without offline.access there is no refresh token.
    let (verifier, challenge) = pkce();
    let code = env
        .code("confidential", "tweet.read users.read", &challenge, 0)
        .await;
    let (status, body) = env
        .token(
            true,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 7200);
    assert!(body.get("refresh_token").is_none());
    // Codes expire after 30 s.
    let (verifier, challenge) = pkce();
    let code = env
        .code("public", "tweet.read users.read", &challenge, 0)
        .await;
    env.clock.fetch_add(31, Ordering::SeqCst);
    let (status, _) = env
        .token(
            false,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
                ("client_id", "public"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_are_single_use() {
    let env = start().await;
    let first = env.login(0, ALL).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = env
        .token(
            true,
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    // The old one is gone.
    let (status, body) = env
        .token(
            true,
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    // Access tokens expire with the clock; the new one works.
    env.clock.fetch_add(7201, Ordering::SeqCst);
    let old = env
        .api(
            reqwest::Method::GET,
            "/2/users/me",
            first["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(old.headers()["content-type"], "application/problem+json");
    let (_, third) = env
        .token(
            true,
            &[("grant_type", "refresh_token"), ("refresh_token", r2)],
        )
        .await;
    let me = env
        .api(
            reqwest::Method::GET,
            "/2/users/me",
            third["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(env.sandbox.stats().refreshes, 2);
    assert_eq!(env.sandbox.stats().refused_refreshes, 1);
    // Revocation ends a token.
    let r = env
        .http
        .post(env.url("/2/oauth2/revoke"))
        .basic_auth("confidential", Some(SECRET))
        .form(&[("token", third["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let me = env
        .api(
            reqwest::Method::GET,
            "/2/users/me",
            third["access_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn posts_likes_bookmarks_and_follows_with_x_shapes_and_headers() {
    let env = start().await;
    let t = env.login(0, ALL).await;
    let tok = t["access_token"].as_str().unwrap();
    let me = env
        .api(
            reqwest::Method::GET,
            "/2/users/me?user.fields=created_at,public_metrics",
            tok,
            None,
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.headers()["x-rate-limit-limit"], "75");
    assert_eq!(me.headers()["x-rate-limit-remaining"], "74");
    assert!(me.headers().contains_key("x-rate-limit-reset"));
    assert!(me.headers().contains_key("x-transaction-id"));
    let me: Value = me.json().await.unwrap();
    let my_id = me["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(me["data"]["username"], "demo_user");
    assert!(
        me["data"]["created_at"]
            .as_str()
            .unwrap()
            .ends_with(".000Z")
    );

    let created = env
        .api(
            reqwest::Method::POST,
            "/2/tweets",
            tok,
            Some(json!({"text": "hello from the sandbox test"})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let post = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["edit_history_tweet_ids"], json!([post]));
    // Duplicate content is refused, as X does.
    let dup = env
        .api(
            reqwest::Method::POST,
            "/2/tweets",
            tok,
            Some(json!({"text": "hello from the sandbox test"})),
        )
        .await;
    assert_eq!(dup.status(), StatusCode::FORBIDDEN);

    let found: Value = env
        .api(
            reqwest::Method::GET,
            "/2/tweets/search/recent?query=%22sandbox%20test%22&expansions=author_id",
            tok,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["meta"]["result_count"], 1);
    assert_eq!(found["data"][0]["id"], post.as_str());
    assert_eq!(found["includes"]["users"][0]["username"], "demo_user");
    let bad = env
        .api(
            reqwest::Method::GET,
            "/2/tweets/search/recent?query=x&post.fields=nope",
            tok,
            None,
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["title"], "Invalid Request");

    let liked: Value = env
        .api(
            reqwest::Method::POST,
            &format!("/2/users/{my_id}/likes"),
            tok,
            Some(json!({"tweet_id": post})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(liked, json!({"data": {"liked": true}}));
    let marked: Value = env
        .api(
            reqwest::Method::POST,
            &format!("/2/users/{my_id}/bookmarks"),
            tok,
            Some(json!({"tweet_id": post})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(marked, json!({"data": {"bookmarked": true}}));
    let marks: Value = env
        .api(
            reqwest::Method::GET,
            &format!("/2/users/{my_id}/bookmarks"),
            tok,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(marks["data"][0]["id"], post.as_str());
    // Acting as someone else is forbidden.
    let other = &env.sandbox.demo_users()[1].0;
    let r = env
        .api(
            reqwest::Method::GET,
            &format!("/2/users/{other}/bookmarks"),
            tok,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let followed: Value = env
        .api(
            reqwest::Method::POST,
            &format!("/2/users/{my_id}/following"),
            tok,
            Some(json!({"target_user_id": other})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(followed["data"]["following"], true);
    let deleted: Value = env
        .api(
            reqwest::Method::DELETE,
            &format!("/2/tweets/{post}"),
            tok,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deleted, json!({"data": {"deleted": true}}));
    let gone: Value = env
        .api(
            reqwest::Method::GET,
            &format!("/2/tweets/{post}"),
            tok,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        gone["errors"][0]["type"],
        "https://api.twitter.com/2/problems/resource-not-found"
    );
    assert_eq!(env.sandbox.stats().api_calls["demo_user"], 9);
}

#[tokio::test]
async fn scopes_are_enforced_as_granted() {
    let env = start().await;
    let t = env.login(0, "tweet.read users.read offline.access").await;
    let tok = t["access_token"].as_str().unwrap();
    let r = env
        .api(
            reqwest::Method::POST,
            "/2/tweets",
            tok,
            Some(json!({"text": "no write scope"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("tweet.write"));
    // The app-only token reads public data but not user context.
    let r = env
        .api(
            reqwest::Method::GET,
            "/2/users/by/username/demo_user",
            "app-token",
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = env
        .api(reqwest::Method::GET, "/2/users/me", "app-token", None)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn faults_are_injected_per_endpoint_and_used_up() {
    let env = start().await;
    let t = env.login(0, ALL).await;
    let tok = t["access_token"].as_str().unwrap();
    // Set over HTTP, as a test driving a separate process would.
    let r = env
        .http
        .post(env.url("/_sandbox/faults"))
        .json(&json!({"endpoint": "GET /2/users/me", "fault": "rate_limited", "reset_after": 120, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = env
        .api(reqwest::Method::GET, "/2/users/me", tok, None)
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["x-rate-limit-remaining"], "0");
    assert_eq!(
        r.headers()["x-rate-limit-reset"],
        (1_800_000_000_i64 + 120).to_string()
    );
    let r = env
        .api(reqwest::Method::GET, "/2/users/me", tok, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "the fault was used up");

    env.sandbox
        .add_fault("GET /2/tweets/search/recent=402".parse().unwrap());
    let r = env
        .api(
            reqwest::Method::GET,
            "/2/tweets/search/recent?query=x",
            tok,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["title"], "CreditsDepleted");
    // Other endpoints are unaffected.
    let r = env
        .api(reqwest::Method::GET, "/2/users/me", tok, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    env.sandbox.add_fault(Fault {
        endpoint: "*".into(),
        kind: FaultKind::ServerError { status: 503 },
        times: Some(2),
    });
    for _ in 0..2 {
        let r = env
            .api(reqwest::Method::GET, "/2/users/me", tok, None)
            .await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    env.sandbox.clear_faults();

    // Refusing refresh tokens leaves the code grant alone.
    env.sandbox
        .add_fault("POST /2/oauth2/token=refuse-refresh*1".parse().unwrap());
    let (status, body) = env
        .token(
            true,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    env.login(1, ALL).await;
    let faults: Value = env
        .http
        .get(env.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults, json!([]));
}

#[tokio::test]
async fn users_are_isolated_and_the_document_describes_the_api() {
    let env = start().await;
    let a = env.login(0, ALL).await;
    let b = env.login(1, ALL).await;
    for (t, name) in [(&a, "demo_user"), (&b, "second_user")] {
        let me: Value = env
            .api(
                reqwest::Method::GET,
                "/2/users/me",
                t["access_token"].as_str().unwrap(),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["data"]["username"], name);
    }
    let doc: Value = env
        .http
        .get(env.url("/2/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["servers"][0]["url"], env.base.as_str());
    assert_eq!(
        doc["paths"]["/2/users/me"]["get"]["operationId"],
        "getUsersMe"
    );
    assert_eq!(
        doc["paths"]["/2/tweets"]["post"]["security"][0]["OAuth2UserToken"],
        json!(["tweet.read", "tweet.write", "users.read"])
    );
}

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
