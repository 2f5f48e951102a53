//! The sandbox's own behaviour over real HTTP on 127.0.0.1: X's OAuth rules
//! (PKCE, exact callbacks, Basic auth, single-use rotating refresh tokens),
//! the API's shapes and headers, fault injection and the test controls. One
//! test binary: the harness here, the cases by family beside it.
#![allow(clippy::unwrap_used)]

mod api;
mod controls;
mod faults;
mod oauth;

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

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
