#![doc = include_str!("../README.md")]

mod api;
mod billing;
mod faults;
mod media;
mod oauth;
mod openapi;
mod world;

pub use faults::{Fault, FaultKind, FaultParseError};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

/// The sandbox's clock: Unix seconds. Tests share their manual clock with it.
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

/// An OAuth client registered with the simulated X (X's "app").
#[derive(Clone)]
pub struct SandboxClient {
    pub client_id: String,
    /// Confidential clients authenticate with HTTP Basic, as X requires.
    pub client_secret: Option<String>,
    /// Callback URLs, matched exactly.
    pub redirect_uris: Vec<String>,
}

impl std::fmt::Debug for SandboxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxClient")
            .field("client_id", &self.client_id)
            .field("confidential", &self.client_secret.is_some())
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub clients: Vec<SandboxClient>,
    /// Lifetime of access tokens in seconds (X: 7200).
    pub access_token_ttl: i64,
    /// The sandbox's own origin (and path prefix, if mounted under one), for
    /// the `servers` entry of its OpenAPI document.
    pub base_url: String,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
    /// An app-only bearer token accepted by operations that X lets apps call.
    pub app_bearer_token: Option<String>,
    /// The app's pay-per-use credits, in micro-dollars; `None`: calls are
    /// not billed.
    pub credits: Option<i64>,
    /// X's per-endpoint rate limits; off, a benchmark measures what lies
    /// in front of the sandbox, not its windows.
    pub rate_limits: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            access_token_ttl: 7200,
            base_url: "http://127.0.0.1:8001".into(),
            faults: Vec::new(),
            app_bearer_token: None,
            credits: None,
            rate_limits: true,
        }
    }
}

/// Counters tests read to see what reached "X".
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub authorization_codes_issued: u64,
    pub code_exchanges: u64,
    pub refreshes: u64,
    pub refused_refreshes: u64,
    pub revocations: u64,
    /// Successful API calls per username (app-only calls under `app`).
    pub api_calls: BTreeMap<String, u64>,
    /// Every code and token issued, so tests can check none of them leaks
    /// (into logs, responses...). Simulated credentials, but they work on
    /// this sandbox: [`Sandbox::stats`] only, never served over HTTP.
    #[serde(skip)]
    pub issued: Vec<String>,
}

/// Where the sandbox's test controls are ([`Sandbox::router`]).
pub const CONTROLS_PATH: &str = "/_sandbox";

/// The address of the client a request comes from, when the server
/// embedding the sandbox knows better than the TCP peer (behind a trusted
/// proxy, the forwarded client). Put it in the request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The simulated X. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    now: Now,
    world: Mutex<world::World>,
    faults: Mutex<faults::Faults>,
    stats: Mutex<Stats>,
    billing: Mutex<billing::Billing>,
    /// X's rate limits, on or off: [`SandboxConfig::rate_limits`] at first.
    rate_limits: std::sync::atomic::AtomicBool,
}

/// Lock a mutex even if a panicking thread poisoned it: the sandbox's state
/// stays usable (each critical section leaves it consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sandbox {
    pub fn new(config: SandboxConfig, now: Now) -> Self {
        let start = now();
        let faults = faults::Faults::new(config.faults.clone());
        let credits = config.credits;
        let rate_limits = std::sync::atomic::AtomicBool::new(config.rate_limits);
        Self {
            inner: Arc::new(Inner {
                rate_limits,
                config,
                now,
                world: Mutex::new(world::World::seeded(start)),
                faults: Mutex::new(faults),
                stats: Mutex::new(Stats::default()),
                billing: Mutex::new(billing::Billing::new(credits)),
            }),
        }
    }

    /// Every route: OAuth, API, OpenAPI document and the `/_sandbox` controls.
    ///
    /// The controls (faults and counters) answer only requests from this
    /// machine: a loopback client ([`ClientAddr`], else the TCP peer, so
    /// serve with `into_make_service_with_connect_info::<SocketAddr>()`),
    /// naming the sandbox by an IP address, `localhost` or its own host (no
    /// DNS rebinding), and not sent by a browser from another origin.
    pub fn router(&self) -> Router {
        let controls = Router::new()
            .route(
                "/_sandbox/faults",
                get(list_faults).post(add_fault).delete(clear_faults),
            )
            .route("/_sandbox/stats", get(stats))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                controls_guard,
            ));
        Router::new()
            .merge(oauth::routes())
            .merge(api::routes())
            .route("/2/openapi.json", get(openapi_document))
            .merge(controls)
            .with_state(self.clone())
    }

    /// The OpenAPI document for what the sandbox implements.
    pub fn openapi(&self) -> serde_json::Value {
        openapi::document(&self.inner.config.base_url)
    }

    pub fn stats(&self) -> Stats {
        lock(&self.inner.stats).clone()
    }

    pub fn add_fault(&self, fault: Fault) {
        lock(&self.inner.faults).add(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// End every access token of `username` early, as X does when it
    /// invalidates a session; refresh tokens stay valid. Returns how many.
    pub fn expire_access_tokens_of(&self, username: &str) -> usize {
        let mut world = self.world();
        let Some(id) = world.user_by_name(username).map(|u| u.id.clone()) else {
            return 0;
        };
        let before = world.access.len();
        world.access.retain(|_, t| t.user_id != id);
        before - world.access.len()
    }

    /// The app's credits left, in micro-dollars (`None`: not billed).
    pub fn credits(&self) -> Option<i64> {
        lock(&self.inner.billing).balance()
    }

    /// Give the app `credits` micro-dollars (`None`: stop billing).
    pub fn set_credits(&self, credits: Option<i64>) {
        lock(&self.inner.billing).set_balance(credits);
    }

    /// Turn X's rate limits on or off (a benchmark measures what lies in
    /// front of the simulated X, not its windows).
    pub fn set_rate_limits(&self, on: bool) {
        self.inner
            .rate_limits
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    fn rate_limited(&self) -> bool {
        self.inner
            .rate_limits
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `(id, username)` of the demo accounts, in the order the login page lists them.
    pub fn demo_users(&self) -> Vec<(String, String)> {
        lock(&self.inner.world)
            .users
            .iter()
            .map(|u| (u.id.clone(), u.username.clone()))
            .collect()
    }

    fn now(&self) -> i64 {
        (self.inner.now)()
    }

    fn world(&self) -> MutexGuard<'_, world::World> {
        lock(&self.inner.world)
    }

    fn take_fault(&self, endpoint: &str, wanted: impl Fn(&FaultKind) -> bool) -> Option<FaultKind> {
        lock(&self.inner.faults).take(endpoint, wanted)
    }

    fn billing(&self) -> MutexGuard<'_, billing::Billing> {
        lock(&self.inner.billing)
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.inner.stats));
    }
}

async fn openapi_document(State(sb): State<Sandbox>) -> axum::Json<serde_json::Value> {
    axum::Json(sb.openapi())
}

async fn list_faults(State(sb): State<Sandbox>) -> axum::Json<Vec<Fault>> {
    axum::Json(lock(&sb.inner.faults).list())
}

async fn add_fault(
    State(sb): State<Sandbox>,
    axum::Json(fault): axum::Json<Fault>,
) -> axum::http::StatusCode {
    sb.add_fault(fault);
    axum::http::StatusCode::NO_CONTENT
}

async fn clear_faults(State(sb): State<Sandbox>) -> axum::http::StatusCode {
    sb.clear_faults();
    axum::http::StatusCode::NO_CONTENT
}

async fn stats(State(sb): State<Sandbox>) -> axum::Json<Stats> {
    axum::Json(sb.stats())
}

/// Who may use the controls: see [`Sandbox::router`].
async fn controls_guard(State(sb): State<Sandbox>, req: Request, next: Next) -> Response {
    if let Err(why) = controls_allowed(&sb.inner.config.base_url, &req) {
        let body = serde_json::json!({"error": "forbidden", "error_description": why});
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn controls_allowed(base_url: &str, req: &Request) -> Result<(), &'static str> {
    let client = req
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
    if !client.is_some_and(|ip| ip.to_canonical().is_loopback()) {
        return Err("the sandbox's controls answer only clients on this machine");
    }
    let base = url::Url::parse(base_url).ok();
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let host = header(header::HOST)
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .map(|h| match h.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => h,
        });
    let host_ok = host.is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok()
            || base
                .as_ref()
                .and_then(|b| b.host_str())
                .is_some_and(|b| b.eq_ignore_ascii_case(h))
    });
    if !host_ok {
        return Err("the sandbox's controls answer only requests for its own host");
    }
    let own_origin = base.map(|b| b.origin().ascii_serialization());
    if header(header::ORIGIN).is_some_and(|o| Some(o) != own_origin.as_deref()) {
        return Err("the sandbox's controls do not answer pages of other origins");
    }
    if header(HeaderName::from_static("sec-fetch-site"))
        .is_some_and(|s| !matches!(s, "same-origin" | "none"))
    {
        return Err("the sandbox's controls do not answer pages of other origins");
    }
    Ok(())
}
