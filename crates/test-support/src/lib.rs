#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
//! The one test harness: a real server on 127.0.0.1:0 with a fresh database
//! (SQLite file, or a PostgreSQL schema when `XMCP_TEST_DATABASE_URL` is set),
//! a manual clock, and an HTTP client that plays an MCP client's OAuth part.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use xmcp_auth::{Clock, ManualClock};
use xmcp_server::config::{ClientSettings, Settings};
use xmcp_server::{App, Config};
use xmcp_store::testing::TestDatabase;

mod oidc;
pub use oidc::{Misbehaviour, OIDC_CLIENT_ID, OIDC_SUBJECT, OidcProvider};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Run a test body against SQLite and, when configured, PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::required(
                        "XMCP_TEST_DATABASE_URL",
                        concat!("PostgreSQL case ", module_path!(), "::", stringify!($name)),
                    )
                    .is_none()
                    {
                        return;
                    }
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

pub struct TestAppBuilder {
    backend: Backend,
    settings: Settings,
    db: Option<TestDatabase>,
    port: u16,
    upstream: Upstream,
    sandbox: Option<Arc<SandboxServer>>,
    clock: Option<Arc<ManualClock>>,
    /// The issuer, when it is not this instance's own address.
    public_url: Option<String>,
}

/// Who signs users in for a test app.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Upstream {
    /// A simulated X of the test's own, on another port (the default).
    Sandbox,
    /// Local accounts (`LOCAL_USER` / `LOCAL_PASSWORD`), no upstream.
    Local,
    /// Whatever the test's settings configure (e.g. an OIDC provider).
    Configured,
}

/// The OAuth client the test app is at the simulated X.
pub const X_CLIENT_ID: &str = "xmcp-test";
pub const X_CLIENT_SECRET: &str = "xmcp-test-secret";
/// The app-only bearer token every test sandbox accepts.
pub const X_APP_BEARER_TOKEN: &str = "xmcp-test-app-bearer-token";
/// The local account of [`Upstream::Local`] apps.
pub use xmcp_store::testing::required;

pub const LOCAL_USER: &str = "local_user";
pub const LOCAL_PASSWORD: &str = "correct horse battery staple";
/// The sandbox's demo accounts, as X user ids.
pub const DEMO_USER_ID: &str = "1850000000000000001";
pub const SECOND_USER_ID: &str = "1850000000000000002";

/// A simulated X served on its own port: it outlives restarts of the app
/// (X does not restart when we do) and reads the app's manual clock.
pub struct SandboxServer {
    pub sandbox: xmcp_sandbox::Sandbox,
    pub base: String,
    handle: tokio::task::JoinHandle<()>,
}

impl SandboxServer {
    pub async fn start(callback: &str, clock: Arc<ManualClock>) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let sandbox = xmcp_sandbox::Sandbox::new(
            xmcp_sandbox::SandboxConfig {
                clients: vec![xmcp_sandbox::SandboxClient {
                    client_id: X_CLIENT_ID.into(),
                    client_secret: Some(X_CLIENT_SECRET.into()),
                    redirect_uris: vec![callback.to_owned()],
                }],
                base_url: base.clone(),
                app_bearer_token: Some(X_APP_BEARER_TOKEN.into()),
                ..Default::default()
            },
            Arc::new(move || clock.now()),
        );
        let router = sandbox
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Arc::new(Self {
            sandbox,
            base,
            handle,
        })
    }
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// What a restart needs from a stopped app.
pub struct Stopped {
    pub db: TestDatabase,
    pub port: u16,
    pub sandbox: Option<Arc<SandboxServer>>,
    pub clock: Arc<ManualClock>,
}

/// An HTTP client pointed at one xmcp server: what an MCP client sees.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

pub use xmcp_store::testing::postgres_url;

pub struct TestApp {
    pub client: Client,
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    pub db: TestDatabase,
    /// The simulated X behind this app ([`Upstream::Sandbox`]).
    pub x: Option<Arc<SandboxServer>>,
    /// The data directory (X's cached OpenAPI document...), removed on drop.
    pub data_dir: Arc<tempfile::TempDir>,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub const CONFIDENTIAL_ID: &str = "static-confidential";
pub const CONFIDENTIAL_SECRET: &str = "static-secret-value-0123456789";
pub const PUBLIC_STATIC_ID: &str = "static-public";

impl TestAppBuilder {
    pub fn settings(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.settings);
        self
    }

    /// Reuse a stopped app's database, address, clock and simulated X: a restart.
    pub fn restart_of(mut self, stopped: Stopped) -> Self {
        self.db = Some(stopped.db);
        self.port = stopped.port;
        self.sandbox = stopped.sandbox;
        self.clock = Some(stopped.clock);
        self
    }

    /// Share another app's database, public URL and simulated X: a second
    /// instance of the same deployment (as behind a load balancer).
    pub fn sharing(mut self, other: &TestApp) -> Self {
        self.public_url = Some(other.base.clone());
        self.db = Some(other.db.share());
        self.sandbox = other.x.clone();
        self.clock = Some(other.clock.clone());
        self
    }

    /// Serve under another origin's public URL (issuer and resource).
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.to_owned());
        self
    }

    /// Use this database (e.g. one reached through a test proxy).
    pub fn database(mut self, db: TestDatabase) -> Self {
        self.db = Some(db);
        self
    }

    pub fn upstream(mut self, upstream: Upstream) -> Self {
        self.upstream = upstream;
        self
    }

    pub async fn spawn(self) -> TestApp {
        let db = match self.db {
            Some(db) => db,
            None => match self.backend {
                Backend::Sqlite => TestDatabase::sqlite(),
                Backend::Postgres => TestDatabase::postgres()
                    .await
                    .expect("postgres test database"),
            },
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut s = self.settings;
        s.host = Some(std::net::Ipv4Addr::LOCALHOST.into());
        s.port = Some(port);
        s.public_url = Some(
            self.public_url
                .clone()
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}")),
        );
        s.database_url = Some(db.url.clone());
        s.database_max_connections = Some(5);
        let data_dir = Arc::new(tempfile::tempdir().expect("a temporary data directory"));
        if s.data_dir.is_none() {
            s.data_dir = Some(data_dir.path().to_owned());
        }
        let clock = self.clock.unwrap_or_else(|| {
            #[allow(clippy::disallowed_methods)]
            let start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            Arc::new(ManualClock::new(start))
        });
        let x = match self.upstream {
            Upstream::Configured => None,
            Upstream::Local => {
                s.users = vec![xmcp_server::config::UserSettings {
                    username: LOCAL_USER.into(),
                    password_hash: local_password_hash(),
                    display_name: Some("Local User".into()),
                }];
                None
            }
            Upstream::Sandbox => {
                let x = match self.sandbox {
                    Some(x) => x,
                    None => {
                        let callback = format!("http://127.0.0.1:{port}/upstream/callback");
                        SandboxServer::start(&callback, clock.clone()).await
                    }
                };
                s.x_client_id = Some(X_CLIENT_ID.into());
                s.x_client_secret = Some(X_CLIENT_SECRET.to_owned().into());
                s.x_authorize_url = Some(format!("{}/i/oauth2/authorize", x.base));
                s.x_token_url = Some(format!("{}/2/oauth2/token", x.base));
                s.x_revoke_url = Some(format!("{}/2/oauth2/revoke", x.base));
                s.x_api_url = Some(x.base.clone());
                Some(x)
            }
        };
        let config = Config::resolve(None, s).expect("test config");
        let app = App::build(config, clock.clone() as Arc<dyn Clock>)
            .await
            .expect("app builds");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn({
            let (app, shutdown) = (app.clone(), shutdown.clone());
            async move {
                xmcp_server::serve(app, listener, shutdown)
                    .await
                    .expect("server runs");
            }
        });
        TestApp {
            client: Client::new(format!("http://127.0.0.1:{port}")),
            app,
            clock,
            db,
            x,
            data_dir,
            shutdown,
            handle: Some(handle),
        }
    }
}

/// One shared key so that restarts read what earlier instances sealed.
pub const TEST_KEY: &str = "test:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The argon2 hash of [`LOCAL_PASSWORD`], computed once per test binary.
fn local_password_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| xmcp_crypto::password::hash(LOCAL_PASSWORD))
        .clone()
}

/// The id of the public client [`with_static_client`] configures.
pub const STATIC_CLIENT: &str = "static-test-client";

/// Settings with one operator-registered public client, whose redirect URI
/// is `redirect_uri`.
pub fn with_static_client(s: &mut Settings, redirect_uri: &str) {
    s.clients.push(xmcp_server::config::ClientSettings {
        client_id: STATIC_CLIENT.into(),
        client_secret: None,
        client_secret_file: None,
        client_name: Some("Static Test Client".into()),
        redirect_uris: vec![redirect_uri.into()],
        token_endpoint_auth_method: Some("none".into()),
    });
}

pub fn builder(backend: Backend) -> TestAppBuilder {
    let settings = Settings {
        encryption_key: Some(TEST_KEY.to_owned().into()),
        cimd_allow_loopback: Some(true),
        sweep_interval: Some(3600),
        clients: vec![
            ClientSettings {
                client_id: CONFIDENTIAL_ID.into(),
                client_secret: Some(CONFIDENTIAL_SECRET.into()),
                client_secret_file: None,
                client_name: Some("Static Confidential".into()),
                redirect_uris: vec!["https://app.example.com/callback".into()],
                token_endpoint_auth_method: None,
            },
            ClientSettings {
                client_id: PUBLIC_STATIC_ID.into(),
                client_secret: None,
                client_secret_file: None,
                client_name: Some("Static Public".into()),
                redirect_uris: vec!["http://127.0.0.1/callback".into()],
                token_endpoint_auth_method: None,
            },
        ],
        ..Default::default()
    };
    TestAppBuilder {
        backend,
        settings,
        db: None,
        port: 0,
        upstream: Upstream::Sandbox,
        sandbox: None,
        clock: None,
        public_url: None,
    }
}

pub async fn spawn(backend: Backend) -> TestApp {
    builder(backend).spawn().await
}

impl std::ops::Deref for TestApp {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl TestApp {
    /// Stop the server and wait for it; returns what a restart needs.
    pub async fn stop(mut self) -> Stopped {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        let port = self
            .base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Stopped {
            db: std::mem::replace(&mut self.db, TestDatabase::sqlite()),
            port,
            sandbox: self.x.take(),
            clock: self.clock.clone(),
        }
    }

    /// The simulated X behind this app.
    /// The names of the tools a connection that selects nothing lists.
    pub fn default_tools(&self) -> Vec<String> {
        let r = &self.app.registry;
        r.list(&r.view(&[]))
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    pub fn sandbox(&self) -> &xmcp_sandbox::Sandbox {
        &self.x.as_ref().expect("this app has a simulated X").sandbox
    }
}

impl Client {
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn register(&self, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Register a public loopback client as the Python and TypeScript SDKs do.
    pub async fn register_public(&self) -> String {
        let (status, body) = self
            .register(json!({
                "redirect_uris": ["http://127.0.0.1/callback"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "client_name": "Test Client",
                "application_type": "native"
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["client_id"].as_str().unwrap().to_owned()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value, HeaderMap) {
        let r = self.post_form("/token", form).await;
        let status = r.status();
        let headers = r.headers().clone();
        (status, r.json().await.unwrap_or(Value::Null), headers)
    }

    /// Call an MCP method with a bearer token (stateless JSON mode).
    pub async fn mcp(&self, token: Option<&str>, method: &str, params: Value) -> reqwest::Response {
        self.mcp_at("/mcp", token, &[], method, params).await
    }

    /// Call an MCP method at `path` (`/mcp` or a selection under it) with a
    /// bearer token and extra headers.
    pub async fn mcp_at(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        method: &str,
        params: Value,
    ) -> reqwest::Response {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.mcp_raw(path, token, headers, body.to_string()).await
    }

    /// POST `body`, as it is, to `path` as an MCP message.
    pub async fn mcp_raw(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: String,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(path))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// `tools/call` and the JSON-RPC result.
    pub async fn call_tool(&self, token: &str, name: &str, args: Value) -> Value {
        let init = self
            .mcp(Some(token), "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}))
            .await;
        let status = init.status();
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            init.text().await.unwrap_or_default()
        );
        let r = self
            .mcp(
                Some(token),
                "tools/call",
                json!({"name": name, "arguments": args}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        body["result"].clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// PKCE pair.
pub fn pkce() -> (String, String) {
    xmcp_crypto::pkce_pair()
}

/// What the consent page carried.
pub struct ConsentPage {
    pub status: StatusCode,
    pub html: String,
    pub request_id: String,
    pub csrf_token: String,
    pub cookie: String,
    pub headers: HeaderMap,
}

impl ConsentPage {
    /// The page a response carries: its form's hidden fields and the
    /// consent cookie it sets.
    pub async fn read(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let cookie = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
            .next()
            .unwrap_or_default();
        let html = r.text().await.unwrap();
        ConsentPage {
            status,
            request_id: hidden(&html, "request_id"),
            csrf_token: hidden(&html, "csrf_token"),
            html,
            cookie,
            headers,
        }
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

/// An authorization request under construction.
pub struct Authorize {
    pub client_id: String,
    pub redirect_uri: String,
    pub verifier: String,
    pub challenge: String,
    pub state: String,
    pub scope: String,
    pub extra: Vec<(String, String)>,
    pub resource: Option<String>,
}

impl Authorize {
    pub fn new(app: &Client, client_id: &str, redirect_uri: &str) -> Self {
        let (verifier, challenge) = pkce();
        Self {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            verifier,
            challenge,
            state: xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<8>()),
            scope: "tweet.read users.read".into(),
            extra: vec![],
            resource: Some(app.url("/mcp")),
        }
    }

    pub fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("code_challenge", &self.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &self.state)
            .append_pair("scope", &self.scope);
        if let Some(r) = &self.resource {
            q.append_pair("resource", r);
        }
        for (k, v) in &self.extra {
            q.append_pair(k, v);
        }
        q.finish()
    }

    /// GET /authorize with a custom query.
    pub async fn get_raw(app: &Client, query: &str) -> reqwest::Response {
        app.http
            .get(app.url(&format!("/authorize?{query}")))
            .send()
            .await
            .unwrap()
    }

    pub async fn consent_page(&self, app: &Client) -> ConsentPage {
        ConsentPage::read(Self::get_raw(app, &self.query()).await).await
    }

    /// Approve on the consent page and sign in as `user` (a sandbox demo
    /// username, or [`LOCAL_USER`] on a local-accounts app); returns the
    /// redirect to the client.
    pub async fn approve_as(&self, app: &Client, user: &str) -> url::Url {
        let page = self.consent_page(app).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        let mut fields = vec![("action", "approve")];
        if user == LOCAL_USER {
            fields.extend([("username", LOCAL_USER), ("password", LOCAL_PASSWORD)]);
        }
        let r = submit_consent(app, &page, &fields).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap_or_default()
        );
        finish_upstream(app, &page.cookie, r, user, None).await
    }

    /// Run authorize + consent + sign-in as the first demo user; the code.
    pub async fn code(&self, app: &Client) -> String {
        let loc = self.approve_as(app, "demo_user").await;
        let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
        assert_eq!(q.get("state"), Some(&self.state));
        assert_eq!(q.get("iss").map(String::as_str), Some(app.base.as_str()));
        q["code"].clone()
    }

    pub fn token_form<'a>(&'a self, code: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut f = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", self.verifier.as_str()),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
        ];
        if let Some(r) = &self.resource {
            f.push(("resource", r.as_str()));
        }
        f
    }

    /// The whole dance for a public client, signing in as `user`: tokens.
    pub async fn tokens_as(&self, app: &Client, user: &str) -> Value {
        let loc = self.approve_as(app, user).await;
        let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
        assert_eq!(q.get("state"), Some(&self.state), "{loc}");
        let (status, body, _) = app.token(&self.token_form(&q["code"])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The whole dance for a public client: tokens.
    pub async fn tokens(&self, app: &Client) -> Value {
        let code = self.code(app).await;
        let (status, body, headers) = app.token(&self.token_form(&code)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        body
    }
}

/// Play the browser after the consent form was submitted (`consented` is
/// its answer): if it leads to the simulated X, pick `user` on its login page
/// (granting `grant`, or every scope offered), follow the callback with the
/// consent `cookie`, and return where the browser ends up (the client's
/// redirect URI). A consent answer that already goes to the client is
/// returned as is.
pub async fn finish_upstream(
    app: &Client,
    cookie: &str,
    consented: reqwest::Response,
    user: &str,
    grant: Option<&[&str]>,
) -> url::Url {
    let to = consented.headers()[LOCATION].to_str().unwrap().to_owned();
    if !to.contains("/i/oauth2/authorize") {
        return url::Url::parse(&to).unwrap();
    }
    let callback = sign_in_at_sandbox(&app.http, &to, user, grant).await;
    let done = app
        .http
        .get(&callback)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.status(),
        StatusCode::FOUND,
        "{}",
        done.text().await.unwrap_or_default()
    );
    url::Url::parse(done.headers()[LOCATION].to_str().unwrap()).unwrap()
}

/// Play the browser on the simulated X's login page at `authorize_url`:
/// pick `user`, grant `grant` (or every scope offered), allow, and return
/// the callback URL the browser is sent to.
pub async fn sign_in_at_sandbox(
    http: &reqwest::Client,
    authorize_url: &str,
    user: &str,
    grant: Option<&[&str]>,
) -> String {
    let page = http.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let mut form = hidden_fields(&html);
    let user_id = html
        .split("name=\"user_id\" value=\"")
        .skip(1)
        .find(|chunk| chunk.contains(&format!("@{user}<")))
        .and_then(|chunk| chunk.split('"').next())
        .unwrap_or_else(|| panic!("no demo user {user} on the login page"))
        .to_owned();
    form.push(("user_id".into(), user_id));
    let offered: Vec<String> = html
        .split("name=\"grant\" value=\"")
        .skip(1)
        .filter_map(|chunk| chunk.split('"').next().map(str::to_owned))
        .collect();
    for scope in offered {
        if grant.is_none_or(|g| g.contains(&scope.as_str())) {
            form.push(("grant".into(), scope));
        }
    }
    form.push(("action".into(), "allow".into()));
    let back = http.post(authorize_url).form(&form).send().await.unwrap();
    assert_eq!(
        back.status(),
        StatusCode::FOUND,
        "{}",
        back.text().await.unwrap_or_default()
    );
    back.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// `(name, value)` of every hidden input in a page.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=hidden name=\"")
        .skip(1)
        .filter_map(|chunk| {
            let (name, rest) = chunk.split_once('"')?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), html_unescape(value)))
        })
        .collect()
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub async fn submit_consent(
    app: &Client,
    page: &ConsentPage,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![
        ("request_id", &page.request_id),
        ("csrf_token", &page.csrf_token),
    ];
    form.extend_from_slice(fields);
    app.http
        .post(app.url("/consent"))
        .header("cookie", &page.cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The `resource_metadata` URL from a 401 challenge.
pub fn resource_metadata(headers: &HeaderMap) -> String {
    let v = headers[WWW_AUTHENTICATE].to_str().unwrap();
    v.split("resource_metadata=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// Query parameters of a redirect `Location`.
pub fn redirect_params(resp: &reqwest::Response) -> std::collections::HashMap<String, String> {
    let loc = resp.headers()[LOCATION].to_str().unwrap();
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A real `xmcp` process on 127.0.0.1, for tests that need process
/// boundaries (restarts, captured logs, the CLI).
pub struct XmcpProcess {
    pub client: Client,
    pub port: u16,
    child: std::process::Child,
}

impl std::ops::Deref for XmcpProcess {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A port that was free a moment ago (the server needs it before it starts,
/// because the port is part of its issuer URL).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl XmcpProcess {
    /// Start `bin serve <args>` on `port`, with stderr going to `stderr`,
    /// and wait (at most 20 s) until `/health` answers.
    pub async fn start(
        bin: &std::path::Path,
        port: u16,
        args: &[&str],
        envs: &[(&str, &str)],
        stderr: std::fs::File,
    ) -> Self {
        Self::start_command(bin, "serve", port, args, envs, stderr, "/health").await
    }

    /// Start `bin sandbox` (the simulated X) on `port` for a server whose
    /// callback is `callback`, with client secret [`X_CLIENT_SECRET`].
    pub async fn start_sandbox(
        bin: &std::path::Path,
        port: u16,
        callback: &str,
        stderr: std::fs::File,
    ) -> Self {
        Self::start_sandbox_with(bin, port, callback, &[], stderr).await
    }

    /// [`Self::start_sandbox`] with more `xmcp sandbox` arguments.
    pub async fn start_sandbox_with(
        bin: &std::path::Path,
        port: u16,
        callback: &str,
        extra: &[&str],
        stderr: std::fs::File,
    ) -> Self {
        let mut args = vec![
            "--client-id",
            X_CLIENT_ID,
            "--client-secret",
            X_CLIENT_SECRET,
            "--redirect-uri",
            callback,
        ];
        args.extend_from_slice(extra);
        Self::start_command(bin, "sandbox", port, &args, &[], stderr, "/2/openapi.json").await
    }

    /// The environment that makes `xmcp serve` use the sandbox at `base`.
    pub fn x_env(base: &str) -> Vec<(String, String)> {
        vec![
            ("XMCP_X_CLIENT_ID".into(), X_CLIENT_ID.into()),
            ("XMCP_X_CLIENT_SECRET".into(), X_CLIENT_SECRET.into()),
            (
                "XMCP_X_AUTHORIZE_URL".into(),
                format!("{base}/i/oauth2/authorize"),
            ),
            ("XMCP_X_TOKEN_URL".into(), format!("{base}/2/oauth2/token")),
            (
                "XMCP_X_REVOKE_URL".into(),
                format!("{base}/2/oauth2/revoke"),
            ),
            ("XMCP_X_API_URL".into(), base.into()),
        ]
    }

    async fn start_command(
        bin: &std::path::Path,
        command: &str,
        port: u16,
        args: &[&str],
        envs: &[(&str, &str)],
        stderr: std::fs::File,
        ready_path: &str,
    ) -> Self {
        let mut cmd = std::process::Command::new(bin);
        cmd.arg(command)
            .arg("--port")
            .arg(port.to_string())
            .args(args);
        cmd.env_remove("XMCP_DATABASE_URL")
            .env_remove("XMCP_CONFIG")
            .env_remove("XMCP_LOG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.stdout(std::process::Stdio::null()).stderr(stderr);
        let child = cmd.spawn().expect("spawn xmcp");
        let proc = Self {
            client: Client::new(format!("http://127.0.0.1:{port}")),
            port,
            child,
        };
        for _ in 0..400 {
            if let Ok(r) = proc.http.get(proc.url(ready_path)).send().await
                && r.status().is_success()
            {
                return proc;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("xmcp {command} did not become ready on port {port}");
    }

    /// SIGTERM, then wait for the process to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait for xmcp")
    }
}

impl Drop for XmcpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MCP client speaking newline-delimited JSON-RPC to a child process's
/// stdin and stdout (`xmcp stdio`, `xmcp bridge`). Every line the child
/// writes to stdout must be a JSON-RPC message; anything else fails the test.
pub struct StdioMcp {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    next_id: u64,
}

impl StdioMcp {
    /// Spawn `bin args` with `envs` (stderr to `stderr`) and initialize.
    pub async fn start(
        bin: &std::path::Path,
        args: &[&str],
        envs: &[(String, String)],
        stderr: std::fs::File,
    ) -> (Self, Value) {
        let (mut client, _) = Self::spawn(bin, args, envs, stderr.into());
        let init = client.initialize().await;
        (client, init)
    }

    /// Spawn without initializing; with `Stdio::piped()` stderr, the pipe.
    pub fn spawn(
        bin: &std::path::Path,
        args: &[&str],
        envs: &[(String, String)],
        stderr: std::process::Stdio,
    ) -> (Self, Option<tokio::process::ChildStderr>) {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(args)
            .env_remove("XMCP_DATABASE_URL")
            .env_remove("XMCP_CONFIG")
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn xmcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let err = child.stderr.take();
        (
            Self {
                child,
                stdin,
                stdout,
                next_id: 1,
            },
            err,
        )
    }

    /// `initialize` and `notifications/initialized`; the initialize result.
    pub async fn initialize(&mut self) -> Value {
        let init = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "xmcp-tests", "version": "0"}
                }),
            )
            .await;
        self.notify("notifications/initialized", json!({})).await;
        init
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    async fn send(&mut self, message: Value) {
        use tokio::io::AsyncWriteExt;
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Send a request and return its `result` (panics on a JSON-RPC error;
    /// see [`Self::request_raw`]).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let reply = self.request_raw(method, params).await;
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    /// Send a request and return the whole reply (notifications before it
    /// are skipped), waiting at most 60 s.
    pub async fn request_raw(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let wait = async {
            loop {
                let line = self
                    .stdout
                    .next_line()
                    .await
                    .unwrap()
                    .expect("the MCP server closed stdout");
                let msg: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON-RPC ({e}): {line}"));
                assert_eq!(msg["jsonrpc"], "2.0", "{line}");
                if msg["id"] == json!(id) {
                    return msg;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("no reply to {method} within 60 s"))
    }

    pub async fn call_tool(&mut self, name: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": name, "arguments": args}))
            .await
    }

    /// Close stdin (the MCP way to end a stdio session) and wait for exit.
    pub async fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin);
        tokio::time::timeout(std::time::Duration::from_secs(20), self.child.wait())
            .await
            .expect("the server did not exit after stdin closed")
            .unwrap()
    }
}
