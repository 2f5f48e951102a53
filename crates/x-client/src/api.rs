//! Calling X's API for a user (or, where X allows only that, as the app).
//!
//! One reused `reqwest` client; a 401 refreshes the user's token once; 5xx
//! and network errors are retried with exponential backoff and jitter
//! (a POST only when X cannot have acted on it: 502-504 or no connection);
//! a 429 is waited out when X's window resets within [`XApiConfig::max_rate_limit_wait`]
//! and otherwise returned, so the caller can say when to retry. X's
//! `x-rate-limit-*` headers are remembered per caller and endpoint
//! ([`RateLimits`]) and consulted before calling: an endpoint known to be
//! exhausted is not called again before its reset.

use crate::oauth::api_url;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, instrument, warn};
use url::Url;
use xmcp_auth::upstream::{Vault, VaultError};

/// X's `x-rate-limit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds when the window resets.
    pub reset: i64,
}

impl RateLimit {
    /// At most a tenth of the window is left (and at least one call was made).
    pub fn is_low(&self) -> bool {
        self.limit > 0 && self.remaining.saturating_mul(10) <= self.limit
    }
}

/// X's answer: status, JSON body (X's problem details on errors), headers
/// that matter.
#[derive(Debug, Clone)]
pub struct XResponse {
    pub status: u16,
    pub body: Value,
    pub rate_limit: Option<RateLimit>,
    pub transaction_id: Option<String>,
}

impl XResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request to X's API.
#[derive(Debug, Clone)]
pub struct XRequest<'a> {
    pub method: reqwest::Method,
    /// The endpoint as X's document names it, e.g. `GET /2/users/{id}`:
    /// the key of its rate limit.
    pub endpoint: &'a str,
    /// Absolute API path with path parameters filled in, e.g. `/2/users/me`.
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub body: Option<&'a Value>,
    /// X scopes the user's token needs (checked against what X granted
    /// before calling; ignored for app calls).
    pub scopes: &'a [String],
}

/// Whose credentials a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// A signed-in user (our user id): their X token from the vault.
    User(&'a str),
    /// The X app's bearer token, for operations X lets only apps call.
    App,
}

impl Caller<'_> {
    fn key(&self) -> String {
        match self {
            Caller::User(u) => format!("user:{u}"),
            Caller::App => "app".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum XCallError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("X could not be reached ({0}); try again in a moment")]
    Unreachable(String),
    /// The endpoint's window is exhausted and resets later than we wait.
    #[error(
        "X's rate limit for {endpoint} is used up ({limit} calls per window); it resets at Unix time {reset}, in {wait} s: retry then"
    )]
    RateLimited {
        endpoint: String,
        limit: u64,
        reset: i64,
        wait: i64,
    },
    #[error(
        "this operation needs the server's X app bearer token, and none is configured (XMCP_X_BEARER_TOKEN)"
    )]
    NoAppToken,
    /// X did not grant the user these scopes (they were unticked at X, or
    /// never asked for).
    #[error("X did not grant the scope(s) {}", .0.join(", "))]
    MissingScopes(Vec<String>),
}

/// Tuning of [`XApi`].
#[derive(Clone)]
pub struct XApiConfig {
    /// Extra attempts after a 5xx or a network error.
    pub retries: u32,
    /// Longest wait for a rate-limit window to reset before retrying a 429,
    /// in seconds; beyond it the 429 is returned.
    pub max_rate_limit_wait: i64,
    /// The X app's bearer token (app-only operations).
    pub app_token: Option<SecretString>,
}

impl Default for XApiConfig {
    fn default() -> Self {
        Self {
            retries: 2,
            max_rate_limit_wait: 20,
            app_token: None,
        }
    }
}

/// Entries kept before expired ones are swept.
const RATE_LIMIT_SWEEP_AT: usize = 50_000;

/// The last rate-limit headers X sent, per caller and endpoint. A cache:
/// X is the authority, and a restart only forgets what X will say again.
#[derive(Default)]
pub struct RateLimits {
    map: Mutex<HashMap<(String, String), RateLimit>>,
}

impl RateLimits {
    fn record(&self, caller: &str, endpoint: &str, rl: RateLimit, now: i64) {
        metrics::gauge!("xmcp_x_rate_limit_remaining", "endpoint" => endpoint.to_owned())
            .set(rl.remaining as f64);
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        if map.len() >= RATE_LIMIT_SWEEP_AT {
            map.retain(|_, v| v.reset > now);
        }
        map.insert((caller.to_owned(), endpoint.to_owned()), rl);
    }

    fn get(&self, caller: &str, endpoint: &str) -> Option<RateLimit> {
        let map = self.map.lock().ok()?;
        map.get(&(caller.to_owned(), endpoint.to_owned())).copied()
    }

    /// What is known for `caller`, by endpoint; windows already reset are
    /// left out.
    pub fn of(&self, caller: Caller<'_>, now: i64) -> Vec<(String, RateLimit)> {
        let key = caller.key();
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        let mut out: Vec<(String, RateLimit)> = map
            .iter()
            .filter(|((c, _), rl)| *c == key && rl.reset > now)
            .map(|((_, e), rl)| (e.clone(), *rl))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

pub struct XApi {
    http: reqwest::Client,
    base: Url,
    vault: Arc<Vault>,
    config: XApiConfig,
    limits: RateLimits,
}

impl std::fmt::Debug for XApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XApi")
            .field("base", &self.base.as_str())
            .field("retries", &self.config.retries)
            .field("app_token", &self.config.app_token.is_some())
            .finish_non_exhaustive()
    }
}

fn header<T: std::str::FromStr>(h: &reqwest::header::HeaderMap, name: &str) -> Option<T> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Exponential backoff with jitter: ~200 ms, ~400 ms, ~800 ms...
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let base = 200u64.saturating_mul(1 << attempt.min(6));
    Duration::from_millis(base + rand::rng().random_range(0..base / 2 + 1))
}

impl XApi {
    pub fn new(http: reqwest::Client, base: Url, vault: Arc<Vault>, config: XApiConfig) -> Self {
        Self {
            http,
            base,
            vault,
            config,
            limits: RateLimits::default(),
        }
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    pub fn has_app_token(&self) -> bool {
        self.config.app_token.is_some()
    }

    pub fn rate_limits(&self) -> &RateLimits {
        &self.limits
    }

    async fn send(
        &self,
        req: &XRequest<'_>,
        token: &SecretString,
    ) -> Result<XResponse, reqwest::Error> {
        let mut url = api_url(&self.base, req.path);
        if !req.query.is_empty() {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.extend_pairs(req.query);
            url.push('?');
            // X reads `%20`, and commas in list values literally.
            url.push_str(&q.finish().replace('+', "%20").replace("%2C", ","));
        }
        let mut r = self
            .http
            .request(req.method.clone(), url)
            .bearer_auth(token.expose_secret());
        if let Some(b) = req.body {
            r = r.json(b);
        }
        let resp = r.send().await?;
        let status = resp.status().as_u16();
        let h = resp.headers();
        let rate_limit = match (
            header(h, "x-rate-limit-limit"),
            header(h, "x-rate-limit-remaining"),
            header(h, "x-rate-limit-reset"),
        ) {
            (Some(limit), Some(remaining), Some(reset)) => Some(RateLimit {
                limit,
                remaining,
                reset,
            }),
            _ => None,
        };
        let transaction_id = header::<String>(h, "x-transaction-id");
        let text = resp.text().await?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| Value::String(text.chars().take(2000).collect()))
        };
        Ok(XResponse {
            status,
            body,
            rate_limit,
            transaction_id,
        })
    }

    /// The endpoint's last known rate limit, if X said its window is used
    /// up and the reset is still ahead.
    fn exhausted_for(&self, caller: &str, endpoint: &str, now: i64) -> Option<RateLimit> {
        self.limits
            .get(caller, endpoint)
            .filter(|rl| rl.remaining == 0 && rl.reset > now)
    }

    /// Wait out a window resetting within the bound, or say when to retry.
    async fn wait_for_window(&self, endpoint: &str, rl: RateLimit) -> Result<(), XCallError> {
        let now = self.vault.clock().now();
        let wait = rl.reset - now;
        if wait > self.config.max_rate_limit_wait {
            return Err(XCallError::RateLimited {
                endpoint: endpoint.to_owned(),
                limit: rl.limit,
                reset: rl.reset,
                wait,
            });
        }
        if wait > 0 {
            warn!(
                endpoint,
                wait, "X's rate limit is used up; waiting for the reset"
            );
            // X's reset is a whole second: wait a little past it.
            tokio::time::sleep(Duration::from_secs(wait as u64) + backoff(0)).await;
        }
        Ok(())
    }

    /// Call X as `caller`. A 401 refreshes a user's token once and retries;
    /// 5xx and network errors are retried with backoff; a 429 whose window
    /// resets within the bound is waited out once. Any other answer, success
    /// or not, is returned as X gave it.
    #[instrument(skip_all, fields(caller = ?caller, endpoint = %req.endpoint))]
    pub async fn call_as(
        &self,
        caller: Caller<'_>,
        req: &XRequest<'_>,
    ) -> Result<XResponse, XCallError> {
        let key = caller.key();
        if let Some(rl) = self.exhausted_for(&key, req.endpoint, self.vault.clock().now()) {
            self.wait_for_window(req.endpoint, rl).await?;
        }
        // The user's vault entry (to refresh on a 401) and the token sent.
        let (mut access, mut token) = match caller {
            Caller::User(user_id) => {
                let access = self.vault.access(user_id).await?;
                let missing: Vec<String> = req
                    .scopes
                    .iter()
                    .filter(|s| !access.has_scope(s))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    return Err(XCallError::MissingScopes(missing));
                }
                let token = access.token.clone();
                (Some(access), token)
            }
            Caller::App => (
                None,
                self.config
                    .app_token
                    .clone()
                    .ok_or(XCallError::NoAppToken)?,
            ),
        };
        // Retried after a 5xx or a network error that may have reached X
        // only if repeating it is harmless; a POST only when X cannot have
        // acted (502-504, or no connection).
        let idempotent = matches!(
            req.method,
            reqwest::Method::GET
                | reqwest::Method::PUT
                | reqwest::Method::DELETE
                | reqwest::Method::HEAD
        );
        let mut refreshed = false;
        let mut waited = false;
        let mut attempt = 0;
        loop {
            let result = self.send(req, &token).await;
            if let Ok(r) = &result
                && let Some(rl) = r.rate_limit
            {
                self.limits
                    .record(&key, req.endpoint, rl, self.vault.clock().now());
                if rl.is_low() {
                    warn!(
                        remaining = rl.remaining,
                        limit = rl.limit,
                        reset = rl.reset,
                        "X rate limit nearly used up"
                    );
                } else {
                    debug!(remaining = rl.remaining, limit = rl.limit, "X rate limit");
                }
            }
            match result {
                Ok(r) if r.status == 401 && !refreshed => {
                    let (Caller::User(user_id), Some(stale)) = (caller, &access) else {
                        return Ok(r);
                    };
                    debug!("X answered 401: refreshing the user's token once");
                    let fresh = self.vault.refresh_after_rejection(user_id, stale).await?;
                    token = fresh.token.clone();
                    access = Some(fresh);
                    refreshed = true;
                }
                Ok(r) if r.status == 429 && !waited => match r.rate_limit {
                    Some(rl)
                        if rl.reset - self.vault.clock().now()
                            <= self.config.max_rate_limit_wait =>
                    {
                        self.wait_for_window(req.endpoint, rl).await?;
                        waited = true;
                    }
                    _ => return Ok(r),
                },
                Ok(r)
                    if r.status >= 500
                        && attempt < self.config.retries
                        && (idempotent || matches!(r.status, 502..=504)) =>
                {
                    warn!(status = r.status, attempt, "X failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Ok(r) => return Ok(r),
                // A POST that may have reached X is not sent twice.
                Err(e) if attempt < self.config.retries && (idempotent || e.is_connect()) => {
                    warn!(error = %e.without_url(), attempt, "X unreachable; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(XCallError::Unreachable(e.without_url().to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_within_bounds() {
        for attempt in 0..4 {
            let base = 200u64 << attempt;
            for _ in 0..50 {
                let d = super::backoff(attempt).as_millis() as u64;
                assert!((base..=base + base / 2).contains(&d), "{attempt}: {d}");
            }
        }
    }

    #[test]
    fn low_means_a_tenth_or_less_left() {
        let rl = |remaining| RateLimit {
            limit: 100,
            remaining,
            reset: 0,
        };
        assert!(rl(10).is_low());
        assert!(rl(0).is_low());
        assert!(!rl(11).is_low());
        assert!(
            !RateLimit {
                limit: 0,
                remaining: 0,
                reset: 0
            }
            .is_low()
        );
    }

    #[test]
    fn rate_limits_are_kept_per_caller_and_endpoint_and_expire() {
        let limits = RateLimits::default();
        let rl = |remaining, reset| RateLimit {
            limit: 75,
            remaining,
            reset,
        };
        limits.record("user:a", "GET /2/users/me", rl(3, 100), 0);
        limits.record("user:a", "POST /2/tweets", rl(0, 50), 0);
        limits.record("user:b", "GET /2/users/me", rl(70, 100), 0);
        assert_eq!(
            limits.of(Caller::User("a"), 60),
            vec![("GET /2/users/me".to_owned(), rl(3, 100))]
        );
        assert_eq!(limits.of(Caller::User("b"), 0).len(), 1);
        assert!(limits.of(Caller::App, 0).is_empty());
    }
}
