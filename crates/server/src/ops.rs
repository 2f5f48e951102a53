//! Running xmcp as a service: Prometheus metrics, the client's address
//! behind trusted proxies, and per-IP / per-client rate limits on the
//! authorization endpoints.
//!
//! Metric names (all prefixed `xmcp_`):
//! * `http_requests_total{method,route,status}` and
//!   `http_request_duration_seconds{method,route}`: every request, by the
//!   route pattern (never the raw path, so cardinality stays bounded);
//! * `oauth_tokens_issued_total{grant_type}` and
//!   `oauth_token_errors_total{grant_type,error}`: the token endpoint;
//! * `upstream_token_refreshes_total{provider,outcome}`: refreshes of
//!   upstream tokens (`provider` is `x`; `outcome` is `ok`, `refused` or
//!   `transient`);
//! * `x_rate_limit_remaining{endpoint}`: the last `x-rate-limit-remaining`
//!   X reported per endpoint;
//! * `tool_call_duration_seconds{tool,outcome}`: MCP tool calls;
//! * `rate_limited_total{limit,group}`: requests refused by our own rate
//!   limits (`limit` is `ip` or `client`, `group` the endpoint group);
//! * `mcp_sessions_total{event}`: stateful sessions `opened` and `ended`,
//!   and requests `refused` for naming a session that is not the caller's
//!   (see `sessions`).
//!
//! Rate limits come in two kinds: per client address and endpoint group,
//! and per OAuth client (`client_id` from the query, the form or HTTP Basic)
//! and group, so one client spread over many addresses is limited too. They
//! are counted in the store ([`RateLimitStore`]), so N instances behind a
//! balancer enforce one limit, not N. Each instance also keeps the same
//! limit in memory and checks it first: a key over its limit on one
//! instance alone is over it in total, so a flood is refused without
//! reaching the database. If the database cannot answer, the request is
//! let through on the in-memory count alone (the endpoint behind answers
//! for the outage itself).

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use xmcp_auth::Clock;
use xmcp_store::RateLimitStore;

/// How often buffered histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder (installed once; every server in
/// the process, such as those of a test binary, shares it).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            const SECONDS: [f64; 12] = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), &SECONDS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            // Histogram samples wait in a buffer until upkeep folds them into
            // their buckets; without it, a server nobody scrapes would keep
            // every request's duration forever.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("xmcp-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// `GET /metrics`: the Prometheus text format. With a metrics token
/// configured, only for `Authorization: Bearer <token>`.
pub async fn metrics_endpoint(State(token): State<Option<Arc<str>>>, req: Request) -> Response {
    if let Some(expected) = token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !xmcp_crypto::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                "metrics require the metrics token\n",
            )
                .into_response();
        }
    }
    match prometheus() {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            )],
            h.render(),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}

/// Counts and times every request by its route pattern: a layer inside the
/// router (`Router::layer`), where [`MatchedPath`] is known.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackRequestsLayer;

impl<S> tower::Layer<S> for TrackRequestsLayer {
    type Service = TrackRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrackRequests { inner }
    }
}

/// See [`TrackRequestsLayer`].
#[derive(Clone, Debug)]
pub struct TrackRequests<S> {
    inner: S,
}

impl<S> tower::Service<Request> for TrackRequests<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let start = Instant::now();
        let method = method_label(req.method());
        // An `Arc` inside: cheap to keep.
        let route = req.extensions().get::<MatchedPath>().cloned();
        let response = self.inner.call(req);
        Box::pin(async move {
            let resp = response.await?;
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            RequestMetrics::record(method, route, resp.status(), start.elapsed());
            Ok(resp)
        })
    }
}

/// Any token is a valid method name: only the standard ones become labels.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The metric handles of one method, route and status. Looked up in the
/// recorder once and then kept: building a key with three labels and
/// finding it costs several allocations, a few percent of a `tools/call`.
/// Routes, methods and statuses are finite, so the cache is bounded.
struct RequestMetrics {
    method: &'static str,
    status: StatusCode,
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

type RequestMetricsCache = std::sync::RwLock<HashMap<Box<str>, Vec<RequestMetrics>>>;

impl RequestMetrics {
    fn record(method: &'static str, route: &str, status: StatusCode, elapsed: Duration) {
        static CACHE: OnceLock<RequestMetricsCache> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let seconds = elapsed.as_secs_f64();
        let record = |all: &HashMap<Box<str>, Vec<RequestMetrics>>| {
            let Some(m) = all
                .get(route)
                .and_then(|ms| ms.iter().find(|m| m.method == method && m.status == status))
            else {
                return false;
            };
            m.requests.increment(1);
            m.duration.record(seconds);
            true
        };
        if record(&cache.read().unwrap_or_else(PoisonError::into_inner)) {
            return;
        }
        let mut all = cache.write().unwrap_or_else(PoisonError::into_inner);
        if record(&all) {
            return;
        }
        let m = Self {
            method,
            status,
            requests: metrics::counter!("xmcp_http_requests_total", "method" => method, "route" => route.to_owned(), "status" => status.as_str().to_owned()),
            duration: metrics::histogram!("xmcp_http_request_duration_seconds", "method" => method, "route" => route.to_owned()),
        };
        m.requests.increment(1);
        m.duration.record(seconds);
        all.entry(route.into()).or_default().push(m);
    }
}

/// Which peers are proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the TCP peer, or, when the peer is a trusted
    /// proxy, the nearest untrusted address in `X-Forwarded-For` (walking
    /// from the right, since each proxy appends).
    pub fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .iter()
                .rev()
                .copied()
                .find(|ip| !self.trusts(*ip))
                .or(forwarded.first().copied())
                .unwrap_or(peer),
        )
    }
}

/// Name the client ([`TrustedProxies::client_ip`]) to the demo's simulated
/// X, whose test controls answer only this machine.
pub async fn name_client(
    State(proxies): State<TrustedProxies>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(ip) = proxies.client_ip(&req) {
        req.extensions_mut().insert(xmcp_sandbox::ClientAddr(ip));
    }
    next.run(req).await
}

/// Limits on the authorization endpoints.
pub struct RateLimits {
    per_ip: Option<Limit<(IpAddr, &'static str)>>,
    /// Counted only in the store, and only for proven requests.
    per_client: Option<Rate>,
    /// Client registrations per address (per /64 for IPv6) and hour,
    /// counted in the store when one is made.
    registrations: Option<Rate>,
    proxies: TrustedProxies,
    shared: Arc<dyn RateLimitStore>,
    clock: Arc<dyn Clock>,
    /// After the store fails, counts stay in memory until this time (Unix
    /// microseconds), so an outage does not add a database timeout to every
    /// request before the endpoint's own.
    shared_down_until: std::sync::atomic::AtomicI64,
}

/// How long the in-memory count stands alone after the store fails.
const SHARED_RETRY_US: i64 = 5_000_000;

/// `n` requests per minute, as the store counts them (GCRA).
#[derive(Clone, Copy)]
struct Rate {
    interval_us: i64,
    burst: u32,
}

impl Rate {
    fn per_minute(n: u32) -> Option<Self> {
        Self::per(60, n)
    }

    fn per(seconds: i64, n: u32) -> Option<Self> {
        let n = NonZeroU32::new(n)?;
        Some(Self {
            // At least 1 µs, so the burst spans time even at absurd rates.
            interval_us: (seconds * 1_000_000 / i64::from(n.get())).max(1),
            burst: n.get(),
        })
    }
}

/// The network an address registers clients from: the address itself for
/// IPv4, its /64 for IPv6 (one host is given a whole /64).
fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// `n` requests per minute for each key: in memory, and in the store.
struct Limit<K: std::hash::Hash + Eq + Clone> {
    local: DefaultKeyedRateLimiter<K>,
    interval_us: i64,
    burst: u32,
}

impl<K: std::hash::Hash + Eq + Clone> Limit<K> {
    fn per_minute(n: u32) -> Option<Self> {
        let rate = Rate::per_minute(n)?;
        Some(Self {
            local: DefaultKeyedRateLimiter::keyed(Quota::per_minute(NonZeroU32::new(n)?)),
            interval_us: rate.interval_us,
            burst: rate.burst,
        })
    }

    fn shrink(&self) {
        self.local.retain_recent();
        self.local.shrink_to_fit();
    }
}

impl RateLimits {
    /// `per_ip_per_minute` requests per client address and endpoint group,
    /// `per_client_per_minute` per OAuth client and group (0 disables),
    /// shared through `store` by every instance on the same database.
    pub fn new(
        per_ip_per_minute: u32,
        per_client_per_minute: u32,
        registrations_per_hour: u32,
        proxies: TrustedProxies,
        shared: Arc<dyn RateLimitStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            per_ip: Limit::per_minute(per_ip_per_minute),
            per_client: Rate::per_minute(per_client_per_minute),
            registrations: Rate::per(3600, registrations_per_hour),
            proxies,
            shared,
            clock,
            shared_down_until: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Drop the in-memory state of keys that are back to a full bucket (the
    /// store's sweep does the same for the shared counts).
    pub fn shrink(&self) {
        if let Some(l) = &self.per_ip {
            l.shrink();
        }
    }

    /// Count one request for `key`. `Err` holds the seconds to wait.
    async fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limit: &Limit<K>,
        key: &K,
        bucket: String,
    ) -> Result<(), u64> {
        use governor::clock::{Clock as _, DefaultClock};
        use std::sync::atomic::Ordering::Relaxed;
        if let Err(not_until) = limit.local.check_key(key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(wait.as_secs().max(1));
        }
        let now = self.clock.now_us();
        if now < self.shared_down_until.load(Relaxed) {
            return Ok(());
        }
        match self
            .shared
            .take_rate(&bucket, now, limit.interval_us, limit.burst)
            .await
        {
            Ok(None) => Ok(()),
            // Whole seconds for Retry-After, rounded up.
            Ok(Some(us)) => Err(u64::try_from(us).unwrap_or(1).div_ceil(1_000_000).max(1)),
            Err(e) => {
                self.shared_down_until
                    .store(now.saturating_add(SHARED_RETRY_US), Relaxed);
                tracing::warn!(error = %e, "shared rate limits unavailable; counting on this instance only for 5 s");
                Ok(())
            }
        }
    }
}

impl RateLimits {
    /// Whether one more request under `bucket` is allowed, counting
    /// nothing; `Err` holds the seconds to wait. The store failing lets it
    /// through (the endpoint answers for the outage itself).
    async fn peek(&self, limit: &Rate, bucket: &str) -> Result<(), u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.clock.now_us();
        if now < self.shared_down_until.load(Relaxed) {
            return Ok(());
        }
        match self
            .shared
            .peek_rate(bucket, now, limit.interval_us, limit.burst)
            .await
        {
            Ok(None) => Ok(()),
            Ok(Some(us)) => Err(u64::try_from(us).unwrap_or(1).div_ceil(1_000_000).max(1)),
            Err(e) => {
                self.shared_down_until
                    .store(now.saturating_add(SHARED_RETRY_US), Relaxed);
                tracing::warn!(error = %e, "shared rate limits unavailable");
                Ok(())
            }
        }
    }

    /// Count one request under `bucket` in the store.
    async fn count(&self, limit: &Rate, bucket: &str) {
        let now = self.clock.now_us();
        if let Err(e) = self
            .shared
            .take_rate(bucket, now, limit.interval_us, limit.burst)
            .await
        {
            tracing::warn!(error = %e, "cannot count a client's request");
        }
    }
}

/// Longest form body read to find its `client_id` (the OAuth endpoints
/// refuse larger ones themselves).
const MAX_PEEK: usize = 16 * 1024;

/// The OAuth client a request names: HTTP Basic, else `client_id` in the
/// query or the form body. The body is read and put back.
async fn client_of(req: Request) -> (Request, Option<String>) {
    use base64::Engine;
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|d| d.split_once(':').map(|(id, _)| id.to_owned()));
    if basic.is_some() {
        return (req, basic);
    }
    let from = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
    };
    if let Some(id) = req.uri().query().and_then(from) {
        return (req, Some(id));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    // Only a body that announces a small length is read here; anything else
    // goes to the endpoint untouched, which answers for it.
    let small = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n <= MAX_PEEK);
    if !is_form || !small {
        return (req, None);
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_PEEK).await {
        Ok(bytes) => {
            let id = std::str::from_utf8(&bytes).ok().and_then(from);
            (
                Request::from_parts(parts, axum::body::Body::from(bytes)),
                id,
            )
        }
        // The client announced a length and sent something else.
        Err(_) => (Request::from_parts(parts, axum::body::Body::empty()), None),
    }
}

/// The endpoint group a path is limited under, if any.
fn group(path: &str) -> Option<&'static str> {
    match path {
        "/register" => Some("register"),
        "/token" | "/revoke" | "/introspect" => Some("token"),
        "/authorize" | "/consent" => Some("authorize"),
        "/device_authorization" | "/device" => Some("device"),
        _ => None,
    }
}

/// Refuse requests beyond either limit with 429 and `Retry-After`, as an
/// OAuth error body on the JSON endpoints and a page on the HTML ones.
pub async fn limit_rate(
    State(limits): State<Arc<RateLimits>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(g) = group(req.uri().path()) else {
        return next.run(req).await;
    };
    let ip = limits.proxies.client_ip(&req);
    if let (Some(limit), Some(ip)) = (&limits.per_ip, ip)
        && let Err(wait) = limits.check(limit, &(ip, g), format!("ip/{g}/{ip}")).await
    {
        metrics::counter!("xmcp_rate_limited_total", "limit" => "ip", "group" => g).increment(1);
        tracing::warn!(%ip, group = g, "per-address rate limit exceeded");
        return too_many(g, "this address", wait);
    }
    // Registrations: so many per address (or IPv6 /64) and hour, counted
    // when one is made; one address spending its own stops nobody else.
    if g == "register"
        && let (Some(rate), Some(ip)) = (&limits.registrations, ip)
    {
        let bucket = format!("register/{}", network_of(ip));
        if let Err(wait) = limits.peek(rate, &bucket).await {
            metrics::counter!("xmcp_rate_limited_total", "limit" => "registrations", "group" => g)
                .increment(1);
            tracing::warn!(%ip, "client registration limit reached for this address");
            return too_many(g, "this address", wait);
        }
        let resp = next.run(req).await;
        if resp.status() == StatusCode::CREATED {
            limits.count(rate, &bucket).await;
        }
        return resp;
    }
    // Per client: only requests that proved to come from the client count
    // (the token endpoint says which, see `ProvenClient`); a client that
    // spent its limit is refused before the work. A `client_id` anyone can
    // send counts for nothing, so strangers cannot lock a client out.
    let Some(limit) = limits.per_client.as_ref().filter(|_| g == "token") else {
        return next.run(req).await;
    };
    let (req, claimed) = client_of(req).await;
    if let Some(claimed) = claimed {
        let claimed: String = claimed.chars().take(256).collect();
        if let Err(wait) = limits.peek(limit, &format!("client/{g}/{claimed}")).await {
            metrics::counter!("xmcp_rate_limited_total", "limit" => "client", "group" => g)
                .increment(1);
            tracing::warn!(client_id = %claimed, group = g, "per-client rate limit exceeded");
            return too_many(g, "this client", wait);
        }
    }
    let resp = next.run(req).await;
    if let Some(proven) = resp.extensions().get::<xmcp_auth::routes::ProvenClient>() {
        let bucket = format!("client/{g}/{}", proven.0);
        limits.count(limit, &bucket).await;
    }
    resp
}

fn too_many(group: &str, from: &str, wait: u64) -> Response {
    let mut resp = if group == "authorize" || group == "device" {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::response::Html(format!(
                "<!doctype html><meta charset=utf-8><title>Too many requests</title><p>Too many requests from {from}. Try again in {wait} seconds.</p>"
            )),
        )
            .into_response()
    } else {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": format!("too many requests from {from}; retry in {wait} seconds"),
            })),
        )
            .into_response()
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        h.insert(header::RETRY_AFTER, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Request ids for requests that arrive without one: a random prefix for
/// this process and a counter, so ids are unique across instances and cost
/// neither a system call nor a random draw per request (a UUID does both).
#[derive(Clone)]
pub struct RequestIds(Arc<RequestIdState>);

struct RequestIdState {
    prefix: String,
    next: std::sync::atomic::AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        Self(Arc::new(RequestIdState {
            prefix: xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<9>()),
            next: std::sync::atomic::AtomicU64::new(1),
        }))
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(
        &mut self,
        _request: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let n = self
            .0
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{n:x}", self.0.prefix);
        HeaderValue::from_str(&id)
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn cached_request_metrics_count_every_request() {
        use axum::http::StatusCode;
        use std::time::Duration;
        let handle = super::prometheus().expect("the recorder installs");
        let route = "/cached-route-test";
        for _ in 0..3 {
            super::RequestMetrics::record("GET", route, StatusCode::OK, Duration::from_millis(2));
        }
        super::RequestMetrics::record(
            "GET",
            route,
            StatusCode::NOT_FOUND,
            Duration::from_millis(2),
        );
        super::RequestMetrics::record("POST", route, StatusCode::OK, Duration::from_millis(2));
        let text = handle.render();
        for line in [
            "xmcp_http_requests_total{method=\"GET\",route=\"/cached-route-test\",status=\"200\"} 3",
            "xmcp_http_requests_total{method=\"GET\",route=\"/cached-route-test\",status=\"404\"} 1",
            "xmcp_http_requests_total{method=\"POST\",route=\"/cached-route-test\",status=\"200\"} 1",
            "xmcp_http_request_duration_seconds_count{method=\"GET\",route=\"/cached-route-test\"} 4",
        ] {
            assert!(text.contains(line), "missing {line} in:\n{text}");
        }
    }

    #[test]
    fn request_ids_are_unique_within_and_across_processes() {
        use tower_http::request_id::MakeRequestId;
        let req = axum::http::Request::new(());
        let (mut a, mut b) = (super::RequestIds::new(), super::RequestIds::new());
        let id = |m: &mut super::RequestIds| {
            m.make_request_id(&req)
                .unwrap()
                .header_value()
                .to_str()
                .unwrap()
                .to_owned()
        };
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| id(&mut a)).collect();
        assert_eq!(ids.len(), 1000);
        let other = id(&mut b);
        assert!(!ids.contains(&other));
        let prefix = |s: &str| s.rsplit_once('-').unwrap().0.to_owned();
        assert_ne!(prefix(&other), prefix(ids.iter().next().unwrap()));
    }
    use super::*;

    fn req(peer: &str, xff: Option<&str>) -> Request {
        let mut r = Request::builder().uri("/token");
        if let Some(x) = xff {
            r = r.header("x-forwarded-for", x);
        }
        let mut r = r.body(axum::body::Body::empty()).unwrap_or_default();
        r.extensions_mut().insert(ConnectInfo(
            peer.parse::<SocketAddr>()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
        ));
        r
    }

    #[test]
    fn client_ip_believes_only_trusted_proxies() {
        let none = TrustedProxies::default();
        let lb = TrustedProxies(vec![
            "10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!()),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        // An untrusted peer's header is ignored (it could say anything).
        assert_eq!(
            none.client_ip(&req("203.0.113.9:5000", Some("1.2.3.4"))),
            ip("203.0.113.9")
        );
        // Behind the balancer: the nearest untrusted hop, not a spoofed first one.
        assert_eq!(
            lb.client_ip(&req(
                "10.0.0.2:5000",
                Some("6.6.6.6, 198.51.100.7, 10.0.0.3")
            )),
            ip("198.51.100.7")
        );
        assert_eq!(lb.client_ip(&req("10.0.0.2:5000", None)), ip("10.0.0.2"));
        assert_eq!(
            lb.client_ip(&req("10.0.0.2:5000", Some("garbage"))),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn only_authorization_endpoints_are_limited() {
        assert_eq!(group("/token"), Some("token"));
        assert_eq!(group("/device"), Some("device"));
        assert_eq!(group("/mcp"), None);
        assert_eq!(group("/health"), None);
    }
}
