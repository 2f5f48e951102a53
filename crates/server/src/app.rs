//! The composition root: configuration in, a running server out.

use crate::compose::{ledger, registry_config, x_source, x_upstream};
use crate::config::{Config, Identity, SANDBOX_PATH};
use crate::mcp::XmcpHandler;
use crate::mcp::registry::Registry;
use crate::mcp::sessions::McpSessions;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use xmcp_auth::external::ExternalVerifier;
use xmcp_auth::identity::{IdentityProvider, LocalIdentityProvider, LocalUser};
use xmcp_auth::jwt::JwtKeys;
use xmcp_auth::oidc::OidcIdentityProvider;
use xmcp_auth::{AuthServer, Clock, SystemClock};
use xmcp_crypto::envelope::Keyring;
use xmcp_sandbox::{Sandbox, SandboxClient, SandboxConfig};
use xmcp_store::Store;
use xmcp_x::{XApi, XOAuthConfig};

/// Application state shared by every request.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub auth: Arc<AuthServer>,
    pub keyring: Arc<Keyring>,
    pub clock: Arc<dyn Clock>,
    /// X's API for signed-in users (absent with local accounts).
    pub x: Option<Arc<XApi>>,
    /// The simulated X this process serves in demo mode.
    pub sandbox: Option<Sandbox>,
    /// The X operations offered as tools.
    pub catalog: Arc<xmcp_openapi::Catalog>,
    /// Every tool and resource, and who may call what.
    pub registry: Arc<Registry>,
    /// Per-address limits on the authorization endpoints.
    pub rate_limits: Arc<crate::ops::RateLimits>,
}

/// The X upstream of a demo server: the sandbox it mounts under
/// [`SANDBOX_PATH`], with a client secret that lives as long as the process.
///
/// The browser reaches the sandbox's sign-in page at the public URL, but
/// this process calls its token and API endpoints at the address it listens
/// on: behind a proxy, or in a container, the public URL is often not
/// reachable from the server itself.
fn demo_upstream(
    config: &Config,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<(Sandbox, XOAuthConfig)> {
    let base = format!("{}{SANDBOX_PATH}", config.auth.issuer);
    let own = match config.host {
        std::net::IpAddr::V4(h) if h.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(h) if h.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        h => h,
    };
    let back_channel = format!(
        "http://{}{SANDBOX_PATH}",
        std::net::SocketAddr::new(own, config.port)
    );
    let secret = xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<24>());
    let now = {
        let clock = clock.clone();
        Arc::new(move || clock.now())
    };
    let sandbox = Sandbox::new(
        SandboxConfig {
            clients: vec![SandboxClient {
                client_id: "xmcp-demo".into(),
                client_secret: Some(secret.clone()),
                redirect_uris: vec![config.auth.upstream_callback_url()],
            }],
            base_url: base.clone(),
            ..Default::default()
        },
        now,
    );
    let url = |base: &str, path: &str| {
        url::Url::parse(&format!("{base}{path}"))
            .map_err(|e| anyhow::anyhow!("the demo's simulated X URL {base}{path} is invalid: {e}"))
    };
    let oauth = XOAuthConfig {
        client_id: "xmcp-demo".into(),
        client_secret: Some(secret.into()),
        authorize_url: url(&base, "/i/oauth2/authorize")?,
        token_url: url(&back_channel, "/2/oauth2/token")?,
        revoke_url: url(&back_channel, "/2/oauth2/revoke")?,
        api_url: url(&back_channel, "")?,
        required_scopes: crate::config::DEFAULT_X_SCOPES.map(String::from).to_vec(),
    };
    Ok((sandbox, oauth))
}

/// The demo's simulated X as mounted under [`SANDBOX_PATH`]: told who each
/// client is (behind trusted proxies, the forwarded client), since its test
/// controls answer only this machine.
fn sandbox_routes(sandbox: &Sandbox, config: &Config) -> Router {
    sandbox.router().layer(axum::middleware::from_fn_with_state(
        crate::ops::TrustedProxies(config.trusted_proxies.clone()),
        crate::ops::name_client,
    ))
}

impl App {
    /// Open the store (running migrations), load keys, build the AS.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<App>> {
        let (store, keyring) = crate::compose::open_store_and_keys(
            &config,
            &config.database_url,
            config.database_max_connections,
        )
        .await?;
        let from_x = |oauth: XOAuthConfig, margin: i64| {
            let x = x_upstream(&config, &store, &keyring, &clock, oauth, margin);
            let idp: Arc<dyn IdentityProvider> = x.identity;
            (idp, Some(x.api))
        };
        // The one place the upstream is chosen.
        let (idp, x, sandbox) = match &config.identity {
            Identity::X(x) => {
                let (idp, api) = from_x(x.oauth.clone(), x.refresh_margin);
                (idp, api, None)
            }
            Identity::DemoSandbox { refresh_margin } => {
                let (sandbox, oauth) = demo_upstream(&config, &clock)?;
                let (idp, api) = from_x(oauth, *refresh_margin);
                (idp, api, Some(sandbox))
            }
            Identity::Oidc(oidc) => {
                let idp: Arc<dyn IdentityProvider> = Arc::new(OidcIdentityProvider::new(
                    oidc.as_ref().clone(),
                    xmcp_x::oauth::http_client(),
                ));
                (idp, None, None)
            }
            Identity::External(_) => {
                // Nobody signs in here: the external issuer's tokens are verified.
                let idp: Arc<dyn IdentityProvider> =
                    Arc::new(LocalIdentityProvider::new(Vec::new()));
                (idp, None, None)
            }
            Identity::Local => {
                let users = config
                    .users
                    .iter()
                    .map(|u| LocalUser {
                        username: u.username.clone(),
                        display_name: u.display_name.clone(),
                        password_hash: Some(u.password_hash.clone()),
                    })
                    .collect();
                let idp: Arc<dyn IdentityProvider> = Arc::new(LocalIdentityProvider::new(users));
                (idp, None, None)
            }
        };
        // Cookies are signed with a key derived from the data key, so every
        // instance sharing the encryption key verifies every other's cookies.
        let cookie_key = keyring.derive("xmcp consent cookies");
        let mut auth = AuthServer::new(
            config.auth.clone(),
            store.clone(),
            clock.clone(),
            idp,
            keyring.clone(),
            &cookie_key,
        );
        if config.auth.jwt_access_tokens {
            // Retired keys stay published as long as tokens they signed live.
            let keys = JwtKeys::load(
                store.clone(),
                keyring.clone(),
                config.auth.access_token_ttl,
                clock.now(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot load the JWT signing keys: {e}"))?;
            auth = auth.with_jwt_keys(Arc::new(keys));
        }
        if let Identity::External(external) = &config.identity {
            auth = auth.with_external(Arc::new(ExternalVerifier::new(
                external.as_ref().clone(),
                xmcp_x::oauth::http_client(),
            )));
        }
        let catalog = Arc::new(if x.is_some() {
            crate::tools::load(&config, sandbox.as_ref().map(Sandbox::openapi)).await?
        } else {
            xmcp_openapi::Catalog::empty()
        });
        let registry = Arc::new(crate::mcp::build_registry(
            x.clone().map(|api| x_source(&config, api, catalog.clone())),
            None,
            registry_config(&config, config.auth.scopes.clone()),
            ledger(&config, &store, &keyring, &clock),
        ));
        let auth = Arc::new(
            auth.with_sub_resources(Arc::new(crate::mcp::SelectionResources(registry.clone()))),
        );
        let rate_limits = Arc::new(crate::ops::RateLimits::new(
            config.rate_limit_per_ip,
            config.rate_limit_per_client,
            u32::try_from(config.auth.registration_limit_per_hour).unwrap_or(u32::MAX),
            crate::ops::TrustedProxies(config.trusted_proxies.clone()),
            store.clone(),
            clock.clone(),
        ));
        // Install the metrics recorder before the first request.
        let _ = crate::ops::prometheus();
        Ok(Arc::new(App {
            rate_limits,
            config,
            store,
            auth,
            keyring,
            clock,
            x,
            sandbox,
            catalog,
            registry,
        }))
    }
}

/// Largest MCP message accepted on `/mcp`.
const MAX_MCP_BODY: usize = 4 * 1024 * 1024;

/// Headers a browser-based MCP client needs to read.
const EXPOSED: [&str; 3] = ["www-authenticate", "mcp-session-id", "mcp-protocol-version"];

fn cors() -> CorsLayer {
    // Discovery, token and MCP endpoints are called with bearer tokens or
    // client credentials, never with cookies, so any origin may call them;
    // `/mcp` additionally validates `Origin` itself (MCP transport rules).
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers(EXPOSED.map(HeaderName::from_static))
        .max_age(Duration::from_secs(3600))
}

/// Whether `path` is one of the demo's test controls, which no page of
/// another origin may read or drive: they are answered without CORS.
fn is_demo_control(path: &str) -> bool {
    path.strip_prefix(SANDBOX_PATH)
        .is_some_and(|rest| rest.starts_with(xmcp_sandbox::CONTROLS_PATH))
}

/// [`cors()`] around `inner`, except for the demo's test controls
/// ([`is_demo_control`]): those go straight to `inner`, so a preflight for
/// them gets no CORS answer and their responses no `Access-Control-*`
/// header.
#[derive(Clone)]
struct CorsBesideControls<S> {
    cors: tower_http::cors::Cors<S>,
    plain: S,
}

#[derive(Clone, Copy)]
struct CorsBesideControlsLayer;

impl<S: Clone> tower::Layer<S> for CorsBesideControlsLayer {
    type Service = CorsBesideControls<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsBesideControls {
            cors: tower::Layer::layer(&cors(), inner.clone()),
            plain: inner,
        }
    }
}

impl<S, B, R> tower::Service<Request<B>> for CorsBesideControls<S>
where
    S: tower::Service<Request<B>, Response = axum::http::Response<R>>,
    R: Default,
{
    type Response = axum::http::Response<R>;
    type Error = S::Error;
    type Future = tower::util::future::EitherResponseFuture<
        tower_http::cors::ResponseFuture<S::Future>,
        S::Future,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::ready!(self.cors.poll_ready(cx))?;
        self.plain.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        type Either<'a, S> = tower::util::Either<&'a mut tower_http::cors::Cors<S>, &'a mut S>;
        if is_demo_control(req.uri().path()) {
            Either::Right(&mut self.plain).call(req)
        } else {
            Either::Left(&mut self.cors).call(req)
        }
    }
}

/// `/mcp` exactly as the MCP SDK serves it: rmcp's streamable HTTP
/// transport over [`XmcpHandler`], stateless, answering in JSON, with
/// nothing in front (no bearer or scope guard, no sessions: see
/// [`build_router`] and [`crate::mcp::sessions`]). Also returns the handler,
/// whose tools name the scopes they need.
pub fn mcp_service(app: &App, shutdown: &CancellationToken) -> (Router, XmcpHandler) {
    let config = rmcp_config(app, shutdown)
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let handler = xmcp_handler(app);
    (
        rmcp_router(&handler, NeverSessionManager::default(), config),
        handler,
    )
}

/// `/mcp` in rmcp's own session mode: a worker task and channels in this
/// process for every session. xmcp does not serve this (its sessions live
/// in the store; see [`crate::mcp::sessions`]); the benchmark measures it as the
/// SDK's stateful reference.
pub fn rmcp_stateful_service(app: &App, shutdown: &CancellationToken) -> Router {
    let config = rmcp_config(app, shutdown).with_legacy_session_mode(true);
    rmcp_router(&xmcp_handler(app), LocalSessionManager::default(), config)
}

fn rmcp_config(app: &App, shutdown: &CancellationToken) -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        .with_allowed_hosts(app.config.allowed_hosts.clone())
        .with_allowed_origins(app.config.allowed_origins.clone())
        .with_cancellation_token(shutdown.child_token())
        .with_max_request_body_bytes(MAX_MCP_BODY)
}

/// The MCP handler behind `/mcp`, over this app's tool registry.
pub fn xmcp_handler(app: &App) -> XmcpHandler {
    XmcpHandler::http(app.registry.clone(), base_resource(app))
}

/// The MCP endpoint as a protected resource.
pub fn base_resource(app: &App) -> crate::mcp::BaseResource {
    crate::mcp::BaseResource::new(&app.config.auth.resource, &app.config.auth.issuer)
}

fn rmcp_router<M: SessionManager>(
    handler: &XmcpHandler,
    sessions: M,
    config: StreamableHttpServerConfig,
) -> Router {
    let factory = {
        let handler = handler.clone();
        move || Ok(handler.clone())
    };
    let svc = SharedMcp(Arc::new(StreamableHttpService::new(
        factory,
        Arc::new(sessions),
        config,
    )));
    // `/mcp` and the selections under it (`/mcp/x/posts/readonly`...).
    Router::new()
        .route_service("/mcp", svc.clone())
        .route_service("/mcp/{*selection}", svc)
}

/// rmcp's transport behind an `Arc`. Cloning a `StreamableHttpService`
/// copies its whole configuration (the allowed host and origin lists), and
/// every layer above `/mcp` clones its inner service on every request: with
/// the `Arc`, those clones are free.
struct SharedMcp<M>(Arc<StreamableHttpService<XmcpHandler, M>>);

impl<M> Clone for SharedMcp<M> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<M> tower::Service<Request<axum::body::Body>> for SharedMcp<M>
where
    M: SessionManager,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<axum::body::Body>) -> Self::Future {
        let svc = self.0.clone();
        Box::pin(async move { Ok(svc.handle(req).await.into_response()) })
    }
}

/// The routes of the whole HTTP surface, each counted in the metrics under
/// its route pattern. [`http_service`] puts the layers every request goes
/// through around them.
pub fn build_router(app: Arc<App>, shutdown: CancellationToken) -> Router {
    // Stateful sessions live in the store, bound to their users.
    let sessions = app
        .config
        .mcp_stateful
        .then(|| Arc::new(McpSessions::new(app.store.clone(), app.clock.clone())));
    let (mcp, _) = mcp_service(&app, &shutdown);
    let guard = crate::mcp::guard::McpGuard::new(
        app.auth.clone(),
        app.registry.clone(),
        base_resource(&app),
        MAX_MCP_BODY,
        sessions,
    );
    let mcp = mcp.layer(axum::middleware::from_fn_with_state(
        guard,
        crate::mcp::guard::guard_mcp,
    ));

    let ops = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .with_state(app.clone());
    let metrics_token: Option<Arc<str>> = app
        .config
        .metrics_token
        .as_ref()
        .map(|t| Arc::from(secrecy::ExposeSecret::expose_secret(t)));
    let metrics = Router::new()
        .route("/metrics", get(crate::ops::metrics_endpoint))
        .with_state(metrics_token);
    // Rate limits guard the authorization endpoints only.
    let authorization = xmcp_auth::routes::router(app.auth.clone()).layer(
        axum::middleware::from_fn_with_state(app.rate_limits.clone(), crate::ops::limit_rate),
    );
    let mut router = Router::new()
        .merge(authorization)
        .merge(mcp)
        .merge(ops)
        .merge(metrics);
    if let Some(sandbox) = &app.sandbox {
        router = router.nest(SANDBOX_PATH, sandbox_routes(sandbox, &app.config));
    }
    router
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": "not_found"})),
            )
        })
        // Inside the router, where the matched route pattern is known.
        .layer(crate::ops::TrackRequestsLayer)
}

/// The whole HTTP surface: [`build_router`] behind the layers every request
/// goes through, outermost first: a request id (kept from the client or
/// made), echoed in the response; the `http` log span; CORS (but for the
/// demo's test controls); the body size limit.
///
/// They wrap the router once rather than each route (`Router::layer`):
/// there, each layer boxes and clones a service and boxes a future per
/// request, which cost a few percent of `tools/call` throughput.
pub fn http_service(
    app: Arc<App>,
    shutdown: CancellationToken,
) -> impl tower::Service<
    Request<axum::body::Body>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    let request_id = HeaderName::from_static("x-request-id");
    tower::ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(SetRequestIdLayer::new(
            request_id.clone(),
            crate::ops::RequestIds::new(),
        ))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                // Never the query string: it can carry codes and state.
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(CorsBesideControlsLayer)
        // CORS answers preflights with an empty body of the inner type.
        .map_response(IntoResponse::into_response)
        // No body anywhere is larger than an MCP message; endpoints with
        // smaller limits (the OAuth forms: 16 KiB) enforce their own.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_MCP_BODY))
        .service(build_router(app, shutdown))
}

async fn ready(State(app): State<Arc<App>>) -> impl IntoResponse {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let mut r = (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
    }
}

/// How long a client may take to send a request's headers. Without it,
/// a client that sends one byte a minute holds a connection forever
/// (slowloris) when the server is exposed without a proxy in front.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve on `listener` until `shutdown` is cancelled, then drain in-flight
/// requests. A background task sweeps expired rows.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let service = http_service(app.clone(), shutdown.clone());
    let sweeper = tokio::spawn(sweep_loop(app.clone(), shutdown.clone()));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: the listener
                    // stays, and accepting resumes shortly.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Without TCP_NODELAY, streamed MCP replies stall ~40 ms on Nagle
        // and delayed ACKs.
        let _ = tcp.set_nodelay(true);
        let service = service
            .clone()
            .map_request(move |req: Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            });
        let conn = http.serve_connection(
            TokioIo::new(tcp),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let conn = connections.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    sweeper.abort();
    Ok(())
}

async fn sweep_loop(app: Arc<App>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(app.config.sweep_interval));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        app.rate_limits.shrink();
        match app.auth.sweep().await {
            Ok(r) if r.total() > 0 => tracing::info!(?r, "expired rows swept"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweep failed"),
        }
    }
}

/// The real clock.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Settings;

    fn demo_config(host: &str, port: u16, public_url: &str) -> Config {
        Config::resolve(None, {
            let mut s = Settings::default();
            s.x.demo = Some(true);
            s.server.host = Some(host.parse().unwrap());
            s.server.port = Some(port);
            s.server.public_url = Some(public_url.into());
            s.server.demo_public = Some(true);
            s.keys.encryption_key = Some(crate::keys::new_data_key().unwrap().export());
            s
        })
        .unwrap()
    }

    /// Behind a proxy or in a container the public URL may not reach the
    /// server from inside: only the browser is sent there.
    #[test]
    fn the_demo_calls_its_simulated_x_where_it_listens_and_sends_browsers_to_the_public_url() {
        let clock = system_clock();
        let (_, oauth) = demo_upstream(
            &demo_config("0.0.0.0", 8000, "https://mcp.example.com"),
            &clock,
        )
        .unwrap();
        assert_eq!(
            oauth.authorize_url.as_str(),
            "https://mcp.example.com/sandbox/i/oauth2/authorize"
        );
        assert_eq!(
            oauth.token_url.as_str(),
            "http://127.0.0.1:8000/sandbox/2/oauth2/token"
        );
        assert_eq!(
            oauth.revoke_url.as_str(),
            "http://127.0.0.1:8000/sandbox/2/oauth2/revoke"
        );
        assert_eq!(oauth.api_url.as_str(), "http://127.0.0.1:8000/sandbox");

        let (_, oauth) =
            demo_upstream(&demo_config("::", 9000, "https://mcp.example.com"), &clock).unwrap();
        assert_eq!(
            oauth.token_url.as_str(),
            "http://[::1]:9000/sandbox/2/oauth2/token"
        );
        let (_, oauth) = demo_upstream(
            &demo_config("10.1.2.3", 80, "https://mcp.example.com"),
            &clock,
        )
        .unwrap();
        assert_eq!(oauth.api_url.as_str(), "http://10.1.2.3/sandbox");
    }
}
