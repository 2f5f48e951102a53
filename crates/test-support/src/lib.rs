#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]
//! The one test harness: a real server on 127.0.0.1:0 with a fresh database
//! (SQLite file, or a PostgreSQL schema when `XMCP_TEST_DATABASE_URL` is set),
//! a manual clock, and an HTTP client that plays an MCP client's OAuth part.

mod oauth;
mod oidc;
mod process;
mod sandbox;

pub use oauth::*;
pub use oidc::{Misbehaviour, OIDC_CLIENT_ID, OIDC_SUBJECT, OidcProvider};
pub use process::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
pub use sandbox::*;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use xmcp_auth::{Clock, ManualClock};
use xmcp_server::config::{ClientSettings, Settings};
use xmcp_server::{App, Config};
use xmcp_store::testing::TestDatabase;
pub use xmcp_store::testing::postgres_url;
pub use xmcp_store::testing::required;

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
pub const LOCAL_USER: &str = "local_user";
pub const LOCAL_PASSWORD: &str = "correct horse battery staple";

/// The sandbox's demo accounts, as X user ids.
pub const DEMO_USER_ID: &str = "1850000000000000001";

pub const SECOND_USER_ID: &str = "1850000000000000002";

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
        s.server.host = Some(std::net::Ipv4Addr::LOCALHOST.into());
        s.server.port = Some(port);
        s.server.public_url = Some(
            self.public_url
                .clone()
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}")),
        );
        s.store.database_url = Some(db.url.clone());
        s.store.database_max_connections = Some(5);
        let data_dir = Arc::new(tempfile::tempdir().expect("a temporary data directory"));
        if s.store.data_dir.is_none() {
            s.store.data_dir = Some(data_dir.path().to_owned());
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
                s.auth.users = vec![xmcp_server::config::UserSettings {
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
                s.x.x_client_id = Some(X_CLIENT_ID.into());
                s.x.x_client_secret = Some(X_CLIENT_SECRET.to_owned().into());
                s.x.x_authorize_url = Some(format!("{}/i/oauth2/authorize", x.base));
                s.x.x_token_url = Some(format!("{}/2/oauth2/token", x.base));
                s.x.x_revoke_url = Some(format!("{}/2/oauth2/revoke", x.base));
                s.x.x_api_url = Some(x.base.clone());
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
    s.auth.clients.push(xmcp_server::config::ClientSettings {
        client_id: STATIC_CLIENT.into(),
        client_secret: None,
        client_secret_file: None,
        client_name: Some("Static Test Client".into()),
        redirect_uris: vec![redirect_uri.into()],
        token_endpoint_auth_method: Some("none".into()),
    });
}

pub fn builder(backend: Backend) -> TestAppBuilder {
    let settings = {
        let mut s = Settings::default();
        s.keys.encryption_key = Some(TEST_KEY.to_owned().into());
        s.auth.cimd_allow_loopback = Some(true);
        s.server.sweep_interval = Some(3600);
        s.auth.clients = vec![
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
        ];
        s
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
