//! The local, single-person mode: `xmcp login` signs one person in to X with
//! a browser and a loopback callback, `xmcp stdio` then acts for them, and
//! `xmcp logout` / `xmcp status` manage that sign-in.
//!
//! The signed-in person is an ordinary user row with sealed X tokens (the
//! same vault the HTTP server uses, so refresh and single-flight work the
//! same); the `local_user` entry of the store's local state names them.

use crate::compose;
use crate::config::{Config, DEFAULT_X_SCOPES, Identity};
use crate::mcp::local::LocalSession;
use crate::page::page;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use xmcp_auth::upstream::Vault;
use xmcp_auth::{Clock, Principal};
use xmcp_crypto::envelope::Keyring;
use xmcp_sandbox::{Sandbox, SandboxClient, SandboxConfig};
use xmcp_store::{Store, UserIdentity};
use xmcp_x::{XApi, XOAuth, XOAuthConfig};

/// The local-state entry naming the signed-in user.
pub const LOCAL_USER: &str = "local_user";
/// The loopback path X redirects back to: register
/// `http://127.0.0.1:<port>/callback` as a callback of your X app.
pub const CALLBACK_PATH: &str = "/callback";
/// How long a started sign-in waits for the browser.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);

/// The signed-in person, as `xmcp status` shows them (never their tokens).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalStatus {
    pub user_id: String,
    pub subject: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// Scopes X granted.
    pub scope: String,
    /// When the X access token expires (it is refreshed before then).
    pub expires_at: Option<i64>,
    pub can_refresh: bool,
    /// X refused the refresh token: `xmcp login` again.
    pub reauth_required: bool,
}

/// A finished sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedIn {
    pub user_id: String,
    pub username: String,
    pub name: String,
    pub scope: String,
    pub expires_at: Option<i64>,
}

/// A sign-in waiting for the browser.
pub struct LoginStarted {
    /// Open this in a browser.
    pub url: String,
    /// Where X sends the browser back.
    pub redirect_uri: String,
    done: oneshot::Receiver<Result<SignedIn, String>>,
    /// Stops the loopback listener when the sign-in is finished or dropped.
    _stop: tokio_util::sync::DropGuard,
}

impl LoginStarted {
    /// Wait for the browser to come back (at most `timeout`).
    pub async fn finish(self, timeout: Duration) -> Result<SignedIn, String> {
        match tokio::time::timeout(timeout, self.done).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the sign-in was abandoned".into()),
            Err(_) => Err(format!(
                "nobody finished signing in within {} seconds",
                timeout.as_secs()
            )),
        }
    }
}

/// What the `auth_start` / `auth_status` tools report.
#[derive(Debug, Clone)]
enum Attempt {
    Pending { url: String, expires_at: i64 },
    Done,
    Failed(String),
}

/// The local sign-in and the X API acting for it.
pub struct Local {
    store: Arc<dyn Store>,
    /// Keeps the signed-in person's X tokens.
    vault: Arc<Vault>,
    keyring: Arc<Keyring>,
    oauth: Arc<XOAuth>,
    clock: Arc<dyn Clock>,
    /// Loopback port for sign-ins (0: any free port).
    callback_port: u16,
    /// What a sign-in asks X for, beyond X's required scopes: the scopes
    /// the server is configured to offer (`XMCP_SCOPES`).
    scope: String,
    attempt: Mutex<Option<Attempt>>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("callback_port", &self.callback_port)
            .finish_non_exhaustive()
    }
}

/// Everything `xmcp stdio` and `xmcp login` need.
pub struct LocalParts {
    pub local: Arc<Local>,
    pub x: Arc<XApi>,
    pub catalog: Arc<xmcp_openapi::Catalog>,
    /// The tools of `xmcp stdio`: the local sign-in tools, the built-in
    /// ones and X's.
    pub registry: Arc<crate::mcp::registry::Registry>,
    pub store: Arc<dyn Store>,
    /// The demo's simulated X, served on a loopback port while this lives.
    pub sandbox: Option<(SocketAddr, CancellationToken)>,
}

impl LocalParts {
    /// The MCP handler of `xmcp stdio`: these tools, acting for the person
    /// signed in here.
    pub fn handler(&self) -> crate::mcp::XmcpHandler {
        crate::mcp::XmcpHandler::local(self.registry.clone(), Arc::new(self.local.clone()))
    }
}

impl Drop for LocalParts {
    fn drop(&mut self) {
        if let Some((_, stop)) = &self.sandbox {
            stop.cancel();
        }
    }
}

/// Open the store and keys of `config` and connect to X for one person.
/// With `config.demo`, a simulated X is served on a free loopback port and
/// the store is in memory: nothing outlives the process.
pub async fn open(
    config: &Config,
    clock: Arc<dyn Clock>,
    callback_port: u16,
    with_catalog: bool,
) -> anyhow::Result<LocalParts> {
    let mut callback_port = callback_port;
    let (oauth_config, margin, sandbox, database_url, embedded) = match &config.identity {
        Identity::X(x) => (
            x.oauth.clone(),
            x.refresh_margin,
            None,
            config.database_url.clone(),
            None,
        ),
        Identity::DemoSandbox { refresh_margin } => {
            if callback_port == 0 {
                callback_port = free_loopback_port()?;
            }
            let (addr, stop, sandbox, oauth) = demo_sandbox(&clock, callback_port).await?;
            let doc = sandbox.openapi();
            (
                oauth,
                *refresh_margin,
                Some((addr, stop)),
                "sqlite::memory:".to_owned(),
                Some(doc),
            )
        }
        _ => anyhow::bail!(
            "the local mode acts on X: set XMCP_X_CLIENT_ID (and XMCP_X_CLIENT_SECRET_FILE for a confidential X app), or add --demo to try it with a simulated X"
        ),
    };
    let (store, keyring) =
        compose::open_store_and_keys(config, &database_url, compose::COMMAND_CONNECTIONS).await?;
    let compose::XUpstream { oauth, api: x, .. } =
        compose::x_upstream(config, &store, &keyring, &clock, oauth_config, margin);
    let catalog = if with_catalog {
        crate::tools::load_with(config, embedded, Some(crate::tools::LOCAL_CACHE_MAX_AGE)).await?
    } else {
        xmcp_openapi::Catalog::empty()
    };
    let scope = config.auth.scopes.join(" ");
    // What a sign-in asks X for is what a tool can be granted.
    let issuable: Vec<String> = oauth
        .scopes_for(&scope)
        .split(' ')
        .map(str::to_owned)
        .collect();
    let ledger = compose::ledger(config, &store, &keyring, &clock);
    let local = Arc::new(Local {
        store: store.clone(),
        vault: x.vault().clone(),
        keyring,
        oauth,
        clock,
        callback_port,
        scope,
        attempt: Mutex::new(None),
    });
    let catalog = Arc::new(catalog);
    let registry = Arc::new(crate::mcp::build_registry(
        Some(compose::x_source(config, x.clone(), catalog.clone())),
        Some(Arc::new(local.clone())),
        crate::mcp::registry::RegistryConfig {
            how_to_grant: "sign in again (`xmcp login`, or the auth_start tool after `xmcp logout`) and allow them at X",
            ..compose::registry_config(config, issuable)
        },
        ledger,
    ));
    Ok(LocalParts {
        local,
        x,
        catalog,
        registry,
        store,
        sandbox,
    })
}

fn free_loopback_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A simulated X on a free loopback port whose only client is this process,
/// calling back to `callback_port`.
async fn demo_sandbox(
    clock: &Arc<dyn Clock>,
    callback_port: u16,
) -> anyhow::Result<(SocketAddr, CancellationToken, Sandbox, XOAuthConfig)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let now = {
        let clock = clock.clone();
        Arc::new(move || clock.now())
    };
    let sandbox = Sandbox::new(
        SandboxConfig {
            clients: vec![SandboxClient {
                client_id: "xmcp-local-demo".into(),
                client_secret: None,
                redirect_uris: vec![format!("http://127.0.0.1:{callback_port}{CALLBACK_PATH}")],
            }],
            base_url: base.clone(),
            ..Default::default()
        },
        now,
    );
    let stop = CancellationToken::new();
    let router = sandbox
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
    });
    let url = |path: &str| {
        url::Url::parse(&format!("{base}{path}"))
            .map_err(|e| anyhow::anyhow!("the simulated X URL {base}{path} is invalid: {e}"))
    };
    let oauth = XOAuthConfig {
        client_id: "xmcp-local-demo".into(),
        client_secret: None,
        authorize_url: url("/i/oauth2/authorize")?,
        token_url: url("/2/oauth2/token")?,
        revoke_url: url("/2/oauth2/revoke")?,
        api_url: url("")?,
        required_scopes: DEFAULT_X_SCOPES.map(String::from).to_vec(),
    };
    Ok((addr, stop, sandbox, oauth))
}

/// State of the loopback callback server.
struct Callback {
    state: SecretString,
    verifier: SecretString,
    redirect_uri: String,
    local: Arc<Local>,
    done: Mutex<Option<oneshot::Sender<Result<SignedIn, String>>>>,
}

impl Local {
    /// Start a sign-in: listen on the loopback callback and build X's
    /// authorize URL. The returned value finishes it.
    pub async fn start_login(self: &Arc<Self>) -> anyhow::Result<LoginStarted> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, self.callback_port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on 127.0.0.1:{} for X's callback ({e}); pick another port with --callback-port (XMCP_LOGIN_PORT) and register http://127.0.0.1:<port>{CALLBACK_PATH} with your X app",
                    self.callback_port
                )
            })?;
        let port = listener.local_addr()?.port();
        let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
        let state = xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<32>());
        let (verifier, challenge) = xmcp_crypto::pkce_pair();
        let url = self.oauth.authorize_url(
            &state,
            &challenge,
            &self.oauth.scopes_for(&self.scope),
            &redirect_uri,
        );
        let (tx, rx) = oneshot::channel();
        let callback = Arc::new(Callback {
            state: state.into(),
            verifier: verifier.into(),
            redirect_uri: redirect_uri.clone(),
            local: self.clone(),
            done: Mutex::new(Some(tx)),
        });
        let stop = CancellationToken::new();
        let router = axum::Router::new()
            .route(CALLBACK_PATH, axum::routing::get(callback_page))
            .with_state(callback);
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        Ok(LoginStarted {
            url,
            redirect_uri,
            done: rx,
            _stop: stop.drop_guard(),
        })
    }

    /// Exchange X's code, learn who signed in, seal their tokens and make
    /// them the local user.
    async fn complete(
        &self,
        code: &str,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<SignedIn, String> {
        let tokens = self
            .oauth
            .exchange_code(code, verifier, redirect_uri)
            .await
            .map_err(|e| format!("X did not issue tokens: {e}"))?;
        let me = self
            .oauth
            .me(&tokens.access_token)
            .await
            .map_err(|e| format!("X did not say who signed in: {e}"))?;
        let now = self.clock.now();
        let store_err = |e: xmcp_store::StoreError| format!("cannot save the sign-in: {e}");
        let user = self
            .store
            .upsert_user(
                &UserIdentity {
                    subject: format!("{}:{}", xmcp_x::identity::PROVIDER, me.id),
                    username: Some(me.username.clone()),
                    display_name: Some(me.name.clone()),
                },
                now,
            )
            .await
            .map_err(store_err)?;
        let row = xmcp_auth::upstream::vault::sealed_row(
            &self.keyring,
            &user.id,
            xmcp_x::identity::PROVIDER,
            &tokens,
            now,
        );
        let expires_at = row.expires_at;
        self.store
            .put_upstream_tokens(&row)
            .await
            .map_err(store_err)?;
        self.store
            .put_local_state(LOCAL_USER, &user.id, now)
            .await
            .map_err(store_err)?;
        tracing::info!(x_user_id = %me.id, scope = %tokens.scope, "signed in locally with X");
        Ok(SignedIn {
            user_id: user.id,
            username: me.username,
            name: me.name,
            scope: tokens.scope,
            expires_at,
        })
    }

    /// Who is signed in, if anyone.
    pub async fn status(&self) -> Result<Option<LocalStatus>, xmcp_store::StoreError> {
        let Some(user_id) = self.store.get_local_state(LOCAL_USER).await? else {
            return Ok(None);
        };
        let Some(user) = self.store.get_user(&user_id).await? else {
            return Ok(None);
        };
        let Some(tokens) = self.store.get_upstream_tokens(&user_id).await? else {
            return Ok(None);
        };
        Ok(Some(LocalStatus {
            user_id,
            subject: user.subject,
            username: user.username,
            display_name: user.display_name,
            scope: tokens.scope,
            expires_at: tokens.expires_at,
            can_refresh: tokens.refresh_sealed.is_some(),
            reauth_required: tokens.reauth_required_at.is_some(),
        }))
    }

    /// Sign out: revoke the tokens at X (best effort: a token X no longer
    /// knows is as good as revoked) and delete them. Returns who was signed
    /// out and the revocation failures, if any.
    pub async fn logout(&self) -> anyhow::Result<Option<(LocalStatus, Vec<String>)>> {
        let Some(status) = self.status().await? else {
            self.store.delete_local_state(LOCAL_USER).await?;
            return Ok(None);
        };
        let mut problems = Vec::new();
        if let Some(tokens) = self.store.get_upstream_tokens(&status.user_id).await? {
            // The refresh token first: revoking it ends the whole grant at X.
            for (field, token) in self.vault.open_all(&tokens) {
                let token = match token {
                    Ok(token) => token,
                    Err(e) => {
                        problems.push(format!("cannot open the {field} token: {e}"));
                        continue;
                    }
                };
                if let Err(e) = self.oauth.revoke(&token).await {
                    problems.push(format!("revoking the {field} token at X: {e}"));
                }
            }
        }
        self.store.delete_upstream_tokens(&status.user_id).await?;
        self.store.delete_local_state(LOCAL_USER).await?;
        Ok(Some((status, problems)))
    }

    /// The principal tools act for: the signed-in person, or why there is none.
    pub async fn principal(&self) -> Result<Principal, String> {
        let status = self
            .status()
            .await
            .map_err(|e| format!("cannot read the local sign-in: {e}"))?;
        let Some(s) = status else {
            return Err(
                "Nobody is signed in to X. Run `xmcp login` in a terminal (or call the `auth_start` tool), then try again."
                    .into(),
            );
        };
        if s.reauth_required {
            return Err(
                "X no longer accepts this sign-in. Run `xmcp login` again (or call the `auth_start` tool)."
                    .into(),
            );
        }
        Ok(Principal {
            user_id: s.user_id,
            subject: s.subject,
            username: s.username,
            client_id: "xmcp-stdio".into(),
            scopes: s
                .scope
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect(),
            grant_id: "local".into(),
            expires_at: s.expires_at.unwrap_or(0),
            resource: None,
        })
    }

    /// `auth_start`: begin a sign-in from a tool call; the browser part
    /// finishes in the background.
    pub async fn auth_start(self: &Arc<Self>) -> serde_json::Value {
        let now = self.clock.now();
        if let Ok(p) = self.principal().await {
            return serde_json::json!({
                "status": "signed_in",
                "username": p.username,
                "message": "Already signed in to X. To switch accounts, run `xmcp logout` and call auth_start again.",
            });
        }
        if let Some(Attempt::Pending { url, expires_at }) = self.current_attempt()
            && expires_at > now
        {
            return pending_json(&url, expires_at - now);
        }
        let started = match self.start_login().await {
            Ok(s) => s,
            Err(e) => {
                return serde_json::json!({"status": "failed", "message": format!("{e:#}")});
            }
        };
        let url = started.url.clone();
        let expires_at = now + LOGIN_TIMEOUT.as_secs() as i64;
        self.set_attempt(Attempt::Pending {
            url: url.clone(),
            expires_at,
        });
        let me = self.clone();
        tokio::spawn(async move {
            let outcome = match started.finish(LOGIN_TIMEOUT).await {
                Ok(_) => Attempt::Done,
                Err(e) => Attempt::Failed(e),
            };
            me.set_attempt(outcome);
        });
        pending_json(&url, LOGIN_TIMEOUT.as_secs() as i64)
    }

    /// `auth_status`: how the sign-in started by `auth_start` stands.
    pub async fn auth_status(&self) -> serde_json::Value {
        match (self.principal().await, self.current_attempt()) {
            (Ok(p), _) => serde_json::json!({
                "status": "signed_in",
                "username": p.username,
                "scopes": p.scopes,
                "message": "Signed in to X: the X tools act for this account.",
            }),
            (Err(_), Some(Attempt::Pending { url, expires_at }))
                if expires_at > self.clock.now() =>
            {
                let mut v = pending_json(&url, expires_at - self.clock.now());
                v["message"] = "Waiting for the browser: open login_url, sign in to X and allow access, then call auth_status again.".into();
                v
            }
            (Err(_), Some(Attempt::Failed(reason))) => serde_json::json!({
                "status": "failed",
                "message": format!("The sign-in failed: {reason}. Call auth_start to try again."),
            }),
            (Err(why), _) => serde_json::json!({
                "status": "signed_out",
                "message": why,
            }),
        }
    }

    fn current_attempt(&self) -> Option<Attempt> {
        self.attempt.lock().ok().and_then(|a| a.clone())
    }

    fn set_attempt(&self, attempt: Attempt) {
        if let Ok(mut a) = self.attempt.lock() {
            *a = Some(attempt);
        }
    }
}

fn pending_json(url: &str, expires_in: i64) -> serde_json::Value {
    serde_json::json!({
        "status": "pending",
        "login_url": url,
        "expires_in": expires_in,
        "message": "Open login_url in a browser on this computer, sign in to X and allow access; then call auth_status.",
    })
}

/// `GET /callback` on the loopback listener.
async fn callback_page(
    State(cb): State<Arc<Callback>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let state_ok = params.get("state").is_some_and(|s| {
        xmcp_crypto::constant_time_eq(s.as_bytes(), cb.state.expose_secret().as_bytes())
    });
    if !state_ok {
        // Not our sign-in (a stale tab, or a forged request): keep waiting.
        return page(
            StatusCode::BAD_REQUEST,
            "This is not the sign-in xmcp is waiting for",
            "Start again from the terminal or your MCP client.",
        );
    }
    let Some(sender) = cb.done.lock().ok().and_then(|mut d| d.take()) else {
        return page(
            StatusCode::CONFLICT,
            "This sign-in is already finished",
            "You can close this tab.",
        );
    };
    let result = match (params.get("error"), params.get("code")) {
        (Some(e), _) if e == "access_denied" => Err("access was denied at X".to_owned()),
        (Some(e), _) => Err(format!(
            "X answered with the error `{}`",
            e.chars().take(64).collect::<String>()
        )),
        (None, Some(code)) => {
            cb.local
                .complete(code, &cb.verifier, &cb.redirect_uri)
                .await
        }
        (None, None) => Err("X's answer had no authorization code".to_owned()),
    };
    let response = match &result {
        Ok(s) => page(
            StatusCode::OK,
            &format!("Signed in to X as @{}", s.username),
            "xmcp can now act for this account. You can close this tab.",
        ),
        Err(e) => page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &format!("{e}. Start again from the terminal or your MCP client."),
        ),
    };
    let _ = sender.send(result);
    response
}

/// `xmcp stdio` acts for whoever is signed in here.
#[async_trait::async_trait]
impl LocalSession for Arc<Local> {
    async fn principal(&self) -> Result<Principal, String> {
        Local::principal(self).await
    }

    async fn auth_start(&self) -> serde_json::Value {
        Local::auth_start(self).await
    }

    async fn auth_status(&self) -> serde_json::Value {
        Local::auth_status(self).await
    }
}
