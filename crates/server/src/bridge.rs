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
//!
//! The remote server is not trusted with this machine: the endpoints its
//! metadata names must be https (plain http only between loopback addresses,
//! for a server on this machine), so no `file:`, `javascript:` or custom-scheme
//! URL is ever opened in a browser, and no code, verifier or refresh token
//! travels in clear. The loopback callback acts only on a request carrying
//! the `state` of the authorization it waits for.

use async_trait::async_trait;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, GetPromptRequestParams, GetPromptResponse,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerConfig,
};
use rmcp::service::{Peer, RequestContext, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{
    AuthClient, AuthError, AuthorizationCallback, AuthorizationManager, AuthorizationMetadata,
    AuthorizationRequest, AuthorizationSession, CredentialStore, OAuthClientConfig,
    StoredCredentials, WWWAuthenticateParams,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, RoleServer, ServerHandler, ServiceExt};
use secrecy::{ExposeSecret, SecretString};
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

    /// The credentials are sealed bound to their name.
    fn aad(&self) -> String {
        xmcp_store::SealedColumn::LocalState.aad(&self.name)
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
        let opened = match self.keyring.open(&sealed, self.aad().as_bytes()) {
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
        let sealed = self.keyring.seal(&json, self.aad().as_bytes());
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

/// What the local-state names of the bridge's credentials start with.
pub const CREDENTIALS_PREFIX: &str = "bridge:";

/// The local-state name of a server's credentials (also the AAD they are
/// sealed with).
pub fn credentials_name(server: &Url) -> String {
    format!("{CREDENTIALS_PREFIX}{server}")
}

fn is_private_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `url` names this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A URL from the remote server, as an error message may show it: quoted,
/// escaped and cut short.
fn quoted(text: &str) -> String {
    let mut cut: String = text.chars().take(120).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// `endpoint` (the remote server's `what`), if the bridge may use it: https,
/// or plain http on a loopback host when `server` is on loopback too (a
/// development server on this machine). Everything else is refused: other
/// schemes (`file:`, `javascript:`, `data:`, an app's custom scheme) must
/// never reach the browser, and plain http across a network would carry
/// codes, verifiers and tokens in clear. A remote server may not point at
/// this machine's http services either (a browser sent there could be made
/// to act on them).
fn check_endpoint(server: &Url, what: &str, endpoint: &str) -> anyhow::Result<Url> {
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "refusing the {what} {} that {server} advertises: {why}. The bridge only follows https URLs (plain http only when both the MCP server and its authorization server run on this machine)",
            quoted(endpoint)
        )
    };
    let url = Url::parse(endpoint).map_err(|_| refuse("it is not a URL"))?;
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback(&url) && is_loopback(server) => Ok(url),
        "http" if is_loopback(&url) => Err(refuse(
            "a remote server may not send the browser to this machine over plain http",
        )),
        "http" => Err(refuse("plain http to another machine is not safe")),
        "https" => Err(refuse("it names no host")),
        scheme => Err(refuse(&format!(
            "the `{scheme}:` scheme is not a web address"
        ))),
    }
}

/// The endpoints of the remote authorization server the bridge will use.
fn check_metadata(server: &Url, metadata: &AuthorizationMetadata) -> anyhow::Result<()> {
    check_endpoint(
        server,
        "authorization endpoint",
        &metadata.authorization_endpoint,
    )?;
    check_endpoint(server, "token endpoint", &metadata.token_endpoint)?;
    if let Some(r) = &metadata.registration_endpoint {
        check_endpoint(server, "registration endpoint", r)?;
    }
    Ok(())
}

/// Check an authorization URL before it is shown or opened, and read the
/// `state` the callback must carry.
fn checked_authorization_url(server: &Url, url: &str) -> anyhow::Result<SecretString> {
    let parsed = check_endpoint(server, "authorization URL", url)?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| SecretString::from(v.into_owned()))
        .filter(|s| !s.expose_secret().is_empty())
        .ok_or_else(|| anyhow::anyhow!("the authorization URL carries no state; refusing it"))
}

/// Shows an authorization URL to the user (prints it, opens a browser).
pub type ShowUrl = Arc<dyn Fn(&str) + Send + Sync>;

/// A connected remote server, and what it takes to authorize again.
pub struct Remote {
    pub service: RunningService<RoleClient, ()>,
    server: Url,
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
    let name = credentials_name(server);
    let has_stored = matches!(store.get_local_state(&name).await, Ok(Some(_)));
    manager.set_credential_store(SealedCredentials {
        store,
        keyring,
        clock,
        name,
    });
    if has_stored {
        // Discover here rather than inside rmcp, to check the endpoints the
        // stored refresh token would be sent to.
        match manager.resolve_metadata().await {
            Ok(resolution) => {
                check_metadata(server, &resolution.metadata)?;
                manager.set_metadata(resolution.metadata);
            }
            Err(e) => tracing::warn!(error = %e, "OAuth discovery failed; authorizing again"),
        }
    }
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
        server: server.clone(),
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
        let state = checked_authorization_url(&self.server, &url)?;
        tracing::info!(
            scope = required,
            "the server asks for more scopes: authorizing again"
        );
        (self.show_url)(&url);
        let callback = wait_for_callback(listener, &redirect_uri, &state).await?;
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
    let challenge = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
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
    check_metadata(server, &resolution.metadata)?;
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
    let url = session.get_authorization_url();
    let state = checked_authorization_url(server, url)?;
    show_url(url);

    let callback = wait_for_callback(listener, &redirect_uri, &state).await?;
    session
        .handle_callback_url(&callback)
        .await
        .map_err(|e| anyhow::anyhow!("the authorization could not be completed: {e}"))?;
    Ok(session.auth_manager)
}

/// Serve the OAuth callback on `listener` until a request carrying `state`
/// arrives, and return its full URL, after checking it carries no error.
/// Requests without that state (a stale tab, a page or process on this
/// machine guessing the port) get an error page and change nothing.
async fn wait_for_callback(
    listener: tokio::net::TcpListener,
    redirect_uri: &str,
    state: &SecretString,
) -> anyhow::Result<String> {
    let (tx, rx) = oneshot::channel::<String>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let base = redirect_uri.to_owned();
    let state = state.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |uri: axum::http::Uri| {
            let tx = tx.clone();
            let state = state.clone();
            let full = format!("{base}?{}", uri.query().unwrap_or(""));
            async move { callback_page(full, &state, &tx) }
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
            "the authorization server refused: {}{}",
            printable(error, 64),
            params
                .get("error_description")
                .map(|d| format!(" ({})", printable(d, 200)))
                .unwrap_or_default()
        );
    }
    Ok(callback)
}

/// `GET /callback`: hand the callback URL `full` over once, if it carries
/// the expected state.
fn callback_page(
    full: String,
    state: &SecretString,
    tx: &Mutex<Option<oneshot::Sender<String>>>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let given = Url::parse(&full).ok().and_then(|u| {
        u.query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
    });
    let state_ok = given.is_some_and(|g| {
        xmcp_crypto::constant_time_eq(g.as_bytes(), state.expose_secret().as_bytes())
    });
    if !state_ok {
        return crate::page::page(
            StatusCode::BAD_REQUEST,
            "This is not the authorization xmcp bridge is waiting for",
            "Start again from your MCP client.",
        );
    }
    let Some(sender) = tx.lock().ok().and_then(|mut t| t.take()) else {
        return crate::page::page(
            StatusCode::CONFLICT,
            "This authorization is already finished",
            "You can close this tab.",
        );
    };
    let _ = sender.send(full);
    crate::page::page(
        StatusCode::OK,
        "Authorization received",
        "You can close this tab and return to your MCP client.",
    )
}

/// Text from the remote server, safe to show: no control characters, at
/// most `max` characters.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_https_or_loopback_http_endpoints_are_followed() {
        let remote = Url::parse("https://mcp.example.com/mcp").unwrap();
        let local = Url::parse("http://127.0.0.1:8000/mcp").unwrap();
        for (server, endpoint) in [
            (&remote, "https://auth.example.com/authorize"),
            (&remote, "https://127.0.0.1/authorize"),
            (&local, "http://127.0.0.1:9000/authorize"),
            (&local, "http://localhost:9000/authorize"),
            (&local, "http://[::1]:9000/authorize"),
            (&local, "https://auth.example.com/authorize"),
        ] {
            assert!(
                check_endpoint(server, "authorization endpoint", endpoint).is_ok(),
                "{server} {endpoint}"
            );
        }
        for (server, endpoint, why) in [
            (&remote, "file:///etc/passwd", "`file:` scheme"),
            (&local, "file:///etc/passwd", "`file:` scheme"),
            (&remote, "javascript:alert(1)", "`javascript:` scheme"),
            (
                &remote,
                "data:text/html,<script>1</script>",
                "`data:` scheme",
            ),
            (&local, "vscode://extension/x?y", "`vscode:` scheme"),
            (&remote, "ms-settings:privacy", "`ms-settings:` scheme"),
            (
                &remote,
                "http://auth.example.com/authorize",
                "another machine",
            ),
            (&local, "http://192.168.1.2/authorize", "another machine"),
            (&remote, "http://127.0.0.1:631/admin", "to this machine"),
            (&remote, "not a url", "not a URL"),
        ] {
            let e = check_endpoint(server, "authorization endpoint", endpoint)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(why) && e.contains("refusing the authorization endpoint"),
                "{endpoint}: {e}"
            );
        }
        // What the server sent is shown escaped and cut short.
        let long = format!("javascript:{}\n", "a".repeat(500));
        let e = check_endpoint(&remote, "authorization endpoint", &long)
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n') && e.len() < 600, "{e}");
    }

    #[test]
    fn an_authorization_url_must_carry_a_state() {
        let server = Url::parse("https://mcp.example.com/mcp").unwrap();
        let state = checked_authorization_url(
            &server,
            "https://auth.example.com/authorize?client_id=a&state=s3cr3t",
        )
        .unwrap();
        assert_eq!(state.expose_secret(), "s3cr3t");
        assert!(
            checked_authorization_url(&server, "https://auth.example.com/authorize?client_id=a")
                .is_err()
        );
        assert!(checked_authorization_url(&server, "file:///x?state=s").is_err());
    }

    #[test]
    fn the_callback_acts_only_on_its_state() {
        let (tx, mut rx) = oneshot::channel::<String>();
        let tx = Mutex::new(Some(tx));
        let state = SecretString::from("the-state".to_owned());
        let base = "http://127.0.0.1:1/callback";
        for forged in [
            format!("{base}?error=access_denied"),
            format!("{base}?code=c&state=wrong"),
            format!("{base}?code=c&state="),
            format!("{base}?code=c&state=the-stat"),
        ] {
            let r = callback_page(forged.clone(), &state, &tx);
            assert_eq!(r.status(), axum::http::StatusCode::BAD_REQUEST, "{forged}");
            assert!(rx.try_recv().is_err(), "{forged} completed the flow");
        }
        let real = format!("{base}?code=c&state=the-state");
        assert_eq!(
            callback_page(real.clone(), &state, &tx).status(),
            axum::http::StatusCode::OK
        );
        assert_eq!(rx.try_recv().unwrap(), real);
        assert_eq!(
            callback_page(real, &state, &tx).status(),
            axum::http::StatusCode::CONFLICT
        );
    }

    #[test]
    fn remote_text_is_made_printable() {
        assert_eq!(printable("bad\r\nthing\u{1b}[31m", 100), "badthing[31m");
        assert_eq!(printable(&"x".repeat(300), 200).len(), 200);
    }
}
