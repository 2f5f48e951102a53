//! Calling X's API for a user.

use crate::oauth::api_url;
use crate::vault::{Vault, VaultError};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, instrument, warn};
use url::Url;

/// X's `x-rate-limit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    /// Unix seconds when the window resets.
    pub reset: i64,
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
    /// Absolute API path with path parameters filled in, e.g. `/2/users/me`.
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub body: Option<&'a Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum XCallError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("X could not be reached ({0}); try again in a moment")]
    Unreachable(String),
}

pub struct XApi {
    http: reqwest::Client,
    base: Url,
    vault: Arc<Vault>,
    /// Extra attempts after a 5xx or a network error.
    retries: u32,
}

impl std::fmt::Debug for XApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XApi")
            .field("base", &self.base.as_str())
            .field("retries", &self.retries)
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
    pub fn new(http: reqwest::Client, base: Url, vault: Arc<Vault>) -> Self {
        Self {
            http,
            base,
            vault,
            retries: 2,
        }
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    async fn send(
        &self,
        req: &XRequest<'_>,
        token: &secrecy::SecretString,
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

    /// Call X as `user_id`. A 401 refreshes the user's token once and
    /// retries; 5xx and network errors are retried with backoff. Any other
    /// answer, success or not, is returned as X gave it.
    #[instrument(skip_all, fields(user_id = %user_id, method = %req.method, path = %req.path))]
    pub async fn call(&self, user_id: &str, req: &XRequest<'_>) -> Result<XResponse, XCallError> {
        let mut access = self.vault.access(user_id).await?;
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            match self.send(req, &access.token).await {
                Ok(r) if r.status == 401 && !refreshed => {
                    debug!("X answered 401: refreshing the user's token once");
                    access = self.vault.refresh_after_rejection(user_id, &access).await?;
                    refreshed = true;
                }
                Ok(r) if r.status >= 500 && attempt < self.retries => {
                    warn!(status = r.status, attempt, "X failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Ok(r) => return Ok(r),
                Err(e) if attempt < self.retries => {
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
}
