//! `xmcp bridge URL`: a stdio MCP server that forwards every request to a
//! remote streamable-HTTP MCP server, doing the client side of OAuth for
//! clients that cannot (rmcp's client authorization: discovery from the 401
//! challenge and path-aware protected-resource metadata, authorization
//! server metadata with the issuer checked, a pre-registered client, a
//! client ID metadata document or dynamic registration, PKCE, the `iss`
//! response parameter, refresh before expiry and after a 401).
//!
//! Tokens are kept in the local store, sealed under the data key and bound
//! to the server URL; rmcp discards them if the server's issuer changes.

use async_trait::async_trait;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, GetPromptRequestParams, GetPromptResponse,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerConfig,
};
use rmcp::service::{Peer, RequestContext, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{
    AuthClient, AuthError, AuthorizationCallback, AuthorizationManager, AuthorizationRequest,
    AuthorizationSession, CredentialStore, OAuthClientConfig, StoredCredentials,
    WWWAuthenticateParams,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, RoleServer, ServerHandler, ServiceExt};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use url::Url;
use xmcp_auth::Clock;
use xmcp_crypto::envelope::Keyring;
use xmcp_store::Store;

/// How the bridge identifies itself to the remote authorization server.
#[derive(Clone, Default)]
pub struct BridgeClient {
    /// A client registered out of band (takes priority).
    pub client_id: Option<String>,
    pub client_secret: Option<secrecy::SecretString>,
    /// An https URL of a client ID metadata document describing the bridge.
    pub client_metadata_url: Option<String>,
    /// Scopes to ask for (default: what the server's metadata suggests).
    pub scopes: Vec<String>,
}

/// Sealed OAuth credentials for one remote server in the local store.
struct SealedCredentials {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    name: String,
}

impl SealedCredentials {
    fn err(e: impl std::fmt::Display) -> AuthError {
        AuthError::CredentialStoreError(e.to_string())
    }
}

#[async_trait]
impl CredentialStore for SealedCredentials {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        let Some(sealed) = self
            .store
            .get_local_state(&self.name)
            .await
            .map_err(Self::err)?
        else {
            return Ok(None);
        };
        let opened = match self.keyring.open(&sealed, self.name.as_bytes()) {
            Ok(o) => o,
            Err(e) => {
                // Sealed under a key we no longer have: sign in again.
                tracing::warn!(error = %e, "cannot open the stored credentials; authorizing again");
                return Ok(None);
            }
        };
        serde_json::from_slice(opened.expose_secret())
            .map(Some)
            .map_err(Self::err)
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        let json = serde_json::to_vec(&credentials).map_err(Self::err)?;
        let sealed = self.keyring.seal(&json, self.name.as_bytes());
        self.store
            .put_local_state(&self.name, &sealed, self.clock.now())
            .await
            .map_err(Self::err)
    }

    async fn clear(&self) -> Result<(), AuthError> {
        self.store
            .delete_local_state(&self.name)
            .await
            .map(|_| ())
            .map_err(Self::err)
    }
}

/// The local-state name of a server's credentials.
pub fn credentials_name(server: &Url) -> String {
    format!("bridge:{server}")
}

fn is_private_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Shows an authorization URL to the user (prints it, opens a browser).
pub type ShowUrl = Arc<dyn Fn(&str) + Send + Sync>;

/// A connected remote server, and what it takes to authorize again.
pub struct Remote {
    pub service: RunningService<RoleClient, ()>,
    auth: Arc<tokio::sync::Mutex<AuthorizationManager>>,
    client: BridgeClient,
    callback_port: u16,
    show_url: ShowUrl,
}

/// Connect to `server`, authorizing in the browser first if no stored
/// credentials work. `show_url` is called with each authorization URL.
pub async fn connect(
    server: &Url,
    client: &BridgeClient,
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    callback_port: u16,
    show_url: ShowUrl,
) -> anyhow::Result<Remote> {
    let mut manager = if is_private_host(server) {
        // The user pointed the bridge at their own machine or network.
        AuthorizationManager::new_allowing_private_addresses(server.as_str()).await?
    } else {
        AuthorizationManager::new(server.as_str()).await?
    };
    manager.set_credential_store(SealedCredentials {
        store,
        keyring,
        clock,
        name: credentials_name(server),
    });
    let stored = match manager.initialize_from_store().await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "stored credentials are unusable; authorizing again");
            false
        }
    };
    if !stored {
        manager = authorize(server, manager, client, callback_port, &show_url).await?;
    }
    let http = reqwest::Client::builder()
        .user_agent(concat!("xmcp-bridge/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let auth_client = AuthClient::new(http, manager);
    let auth = auth_client.auth_manager.clone();
    let transport = StreamableHttpClientTransport::with_client(
        auth_client,
        StreamableHttpClientTransportConfig::with_uri(server.as_str()),
    );
    let service = ()
        .serve(transport)
        .await
        .map_err(|e| anyhow::anyhow!("cannot initialize the MCP session with {server}: {e}"))?;
    Ok(Remote {
        service,
        auth,
        client: client.clone(),
        callback_port,
        show_url,
    })
}

impl Remote {
    /// Step-up authorization after a 403 `insufficient_scope` challenge:
    /// authorize again in the browser for the union of the scopes held and
    /// the scopes the challenge names. Serialised: concurrent 403s share one.
    async fn step_up(&self, challenge: &str) -> anyhow::Result<()> {
        let manager = self.auth.lock().await;
        let base = Url::parse("http://localhost/").map_err(|e| anyhow::anyhow!("{e}"))?;
        let params = WWWAuthenticateParams::parse(challenge, &base);
        if !params.is_insufficient_scope() {
            anyhow::bail!("the server refused the request: {challenge}");
        }
        let Some(required) = params.scope.as_deref() else {
            anyhow::bail!("the server needs more scopes but did not say which: {challenge}");
        };
        let (listener, redirect_uri) = loopback(self.callback_port).await?;
        let (client_id, _) = manager.get_credentials().await?;
        let mut config = OAuthClientConfig::new(client_id, redirect_uri.clone());
        if let Some(secret) = &self.client.client_secret {
            config = config.with_client_secret(secret.expose_secret().to_owned());
        }
        // `manager` is shared with the transport: reconfiguring needs `&mut`.
        let mut manager = manager;
        manager.configure_client(config)?;
        let url = manager.request_scope_upgrade(required).await?;
        tracing::info!(
            scope = required,
            "the server asks for more scopes: authorizing again"
        );
        (self.show_url)(&url);
        let callback = wait_for_callback(listener, &redirect_uri).await?;
        let cb = AuthorizationCallback::from_redirect_url(&callback)?;
        manager
            .exchange_code_for_token_with_issuer(&cb.code, &cb.csrf_token, cb.issuer.as_deref())
            .await?;
        manager.reset_scope_upgrade_attempts().await;
        Ok(())
    }
}

/// The browser part: discovery, registration, PKCE, loopback callback.
async fn authorize(
    server: &Url,
    mut manager: AuthorizationManager,
    client: &BridgeClient,
    callback_port: u16,
    show_url: &ShowUrl,
) -> anyhow::Result<AuthorizationManager> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, callback_port))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on 127.0.0.1:{callback_port} for the OAuth callback: {e}"
            )
        })?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    // Reactive discovery: the 401 challenge names the resource metadata.
    let challenge = reqwest::Client::new()
        .post(server.as_str())
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "ping"}))
        .send()
        .await
        .ok()
        .filter(|r| r.status() == reqwest::StatusCode::UNAUTHORIZED)
        .and_then(|r| {
            r.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
    let resolution = manager
        .resolve_metadata_from_challenge(challenge.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("OAuth discovery for {server} failed: {e}"))?;
    manager.set_metadata(resolution.metadata);
    let mut request = AuthorizationRequest::new(redirect_uri.clone())
        .with_client_name("xmcp bridge")
        .with_application_type("native");
    if let Some(c) = &challenge {
        request = request.with_challenge(c.clone());
    }
    if !client.scopes.is_empty() {
        request = request.with_scopes(client.scopes.clone());
    } else {
        request = request.with_initial_scope_selection();
    }
    if let Some(id) = &client.client_id {
        request = request.with_preregistered_client(id.clone());
        if let Some(secret) = &client.client_secret {
            request = request.with_client_secret(secret.expose_secret().to_owned());
        }
    }
    if let Some(url) = &client.client_metadata_url {
        request = request.with_client_metadata_url(url.clone());
    }
    let session = AuthorizationSession::new(manager, request)
        .await
        .map_err(|(_, e)| anyhow::anyhow!("cannot start authorization with {server}: {e}"))?;
    show_url(session.get_authorization_url());

    let callback = wait_for_callback(listener, &redirect_uri).await?;
    session
        .handle_callback_url(&callback)
        .await
        .map_err(|e| anyhow::anyhow!("the authorization could not be completed: {e}"))?;
    Ok(session.auth_manager)
}

/// Serve one OAuth callback on `listener` and return its full URL, after
/// checking it carries no error.
async fn wait_for_callback(
    listener: tokio::net::TcpListener,
    redirect_uri: &str,
) -> anyhow::Result<String> {
    let (tx, rx) = oneshot::channel::<String>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let base = redirect_uri.to_owned();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |uri: axum::http::Uri| {
            let tx = tx.clone();
            let full = format!("{base}?{}", uri.query().unwrap_or(""));
            async move {
                if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                    let _ = tx.send(full);
                }
                axum::response::Html(
                    "<!doctype html><meta charset=utf-8><title>xmcp bridge</title><p>Authorization received. You can close this tab and return to your MCP client.</p>",
                )
            }
        }),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
    });
    let _stop = stop.drop_guard();
    let callback = tokio::time::timeout(Duration::from_secs(600), rx)
        .await
        .map_err(|_| anyhow::anyhow!("nobody finished authorizing within 10 minutes"))?
        .map_err(|_| anyhow::anyhow!("the authorization was abandoned"))?;
    let params: HashMap<String, String> =
        Url::parse(&callback)?.query_pairs().into_owned().collect();
    if let Some(error) = params.get("error") {
        anyhow::bail!(
            "the authorization server refused: {error}{}",
            params
                .get("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
    }
    Ok(callback)
}

async fn loopback(port: u16) -> anyhow::Result<(tokio::net::TcpListener, String)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot listen on 127.0.0.1:{port} for the OAuth callback: {e}")
        })?;
    let port = listener.local_addr()?.port();
    Ok((listener, format!("http://127.0.0.1:{port}/callback")))
}

/// The stdio side: every request goes to the remote server's peer.
#[derive(Clone)]
pub struct Bridge {
    remote: Peer<RoleClient>,
    connection: Arc<Remote>,
    info: ServerConfig,
}

impl Bridge {
    pub fn new(connection: Arc<Remote>) -> Self {
        let remote = &connection.service;
        let mut info = ServerConfig::default();
        if let Some(peer) = remote.peer_info() {
            info = ServerConfig::new(peer.capabilities.clone());
            if let Some(i) = &peer.server_info {
                info = info.with_server_info(i.clone());
            }
            if let Some(text) = &peer.instructions {
                info = info.with_instructions(text.clone());
            }
        }
        Self {
            remote: remote.peer().clone(),
            info,
            connection,
        }
    }

    /// Run `call`; if the server answers 403 `insufficient_scope`, step up
    /// and run it once more.
    async fn with_step_up<T, F, Fut>(&self, call: F) -> Result<T, ErrorData>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ServiceError>>,
    {
        match call().await {
            Err(e)
                if e.auth_challenge()
                    .is_some_and(|c| c.contains("insufficient_scope")) =>
            {
                let challenge = e.auth_challenge().unwrap_or_default().to_owned();
                if let Err(why) = self.connection.step_up(&challenge).await {
                    return Err(ErrorData::invalid_request(
                        format!(
                            "the remote MCP server needs more scopes, and authorizing them failed: {why:#}"
                        ),
                        None,
                    ));
                }
                call().await.map_err(forward_error)
            }
            other => other.map_err(forward_error),
        }
    }
}

/// A remote error as the local client should see it: the remote server's
/// own JSON-RPC error, or what went wrong reaching it.
fn forward_error(e: ServiceError) -> ErrorData {
    match e {
        ServiceError::McpError(e) => e,
        other => ErrorData::internal_error(format!("the remote MCP server: {other}"), None),
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.remote.list_tools(request).await.map_err(forward_error)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.with_step_up(|| self.remote.call_tool_once(request.clone()))
            .await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.remote
            .list_resources(request)
            .await
            .map_err(forward_error)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.remote
            .list_resource_templates(request)
            .await
            .map_err(forward_error)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.with_step_up(|| self.remote.read_resource_once(request.clone()))
            .await
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.remote
            .list_prompts(request)
            .await
            .map_err(forward_error)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.remote
            .get_prompt_once(request)
            .await
            .map_err(forward_error)
    }
}
