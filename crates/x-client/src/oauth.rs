//! X's OAuth 2.0 endpoints, as a client.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// Where X is and who we are to it. Every URL is configurable, which is how
/// the demo and the tests point xmcp at the simulated X.
#[derive(Clone)]
pub struct XOAuthConfig {
    pub client_id: String,
    /// Confidential clients ("Web App") authenticate with HTTP Basic.
    pub client_secret: Option<SecretString>,
    pub authorize_url: Url,
    pub token_url: Url,
    pub revoke_url: Url,
    /// API base, e.g. `https://api.x.com` (paths start with `/2/`).
    pub api_url: Url,
    /// Scopes always requested from X, whatever the client asked for
    /// (`offline.access` among them, or X issues no refresh token).
    pub required_scopes: Vec<String>,
}

impl std::fmt::Debug for XOAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XOAuthConfig")
            .field("client_id", &self.client_id)
            .field("confidential", &self.client_secret.is_some())
            .field("authorize_url", &self.authorize_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("api_url", &self.api_url.as_str())
            .field("required_scopes", &self.required_scopes)
            .finish()
    }
}

/// Tokens X issued, only ever in memory.
pub use xmcp_auth::upstream::TokenSet;

/// The X user behind a token.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct XUser {
    pub id: String,
    pub username: String,
    pub name: String,
}

/// How a call to X failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// X answered and said no (4xx other than 429): retrying will not help.
    #[error("X refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// Network failure, timeout, 5xx or 429: worth retrying later.
    #[error("X is unavailable: {0}")]
    Transient(String),
}

impl CallError {
    pub fn is_transient(&self) -> bool {
        matches!(self, CallError::Transient(_))
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    #[serde(default)]
    scope: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
    error_description: Option<String>,
    title: Option<String>,
    detail: Option<String>,
}

/// What an error answer says, in one line, for logs and users. Never holds a
/// token: X's error bodies name the problem, not the credential.
fn describe(status: reqwest::StatusCode, body: &str) -> String {
    let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
    let text = parsed.map(|b| {
        [b.error, b.error_description, b.title, b.detail]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ")
    });
    match text {
        Some(t) if !t.is_empty() => t.chars().take(300).collect(),
        _ => format!("HTTP {}", status.as_u16()),
    }
}

fn classify(status: reqwest::StatusCode, body: &str) -> CallError {
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        CallError::Transient(describe(status, body))
    } else {
        CallError::Refused {
            status: status.as_u16(),
            message: describe(status, body),
        }
    }
}

/// A client of X's OAuth 2.0 endpoints.
#[derive(Debug, Clone)]
pub struct XOAuth {
    config: XOAuthConfig,
    http: reqwest::Client,
}

/// The HTTP client every X call shares: connection reuse, bounded waits.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("xmcp/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl XOAuth {
    pub fn new(config: XOAuthConfig, http: reqwest::Client) -> Self {
        Self { config, http }
    }

    pub fn config(&self) -> &XOAuthConfig {
        &self.config
    }

    /// The scopes to ask X for: the required ones plus what the client was
    /// granted on our side, each once.
    pub fn scopes_for(&self, client_scope: &str) -> String {
        let mut out: Vec<&str> = Vec::new();
        for s in self
            .config
            .required_scopes
            .iter()
            .map(String::as_str)
            .chain(client_scope.split(' '))
        {
            if !s.is_empty() && !out.contains(&s) {
                out.push(s);
            }
        }
        out.join(" ")
    }

    /// X's authorize URL for one sign-in.
    pub fn authorize_url(
        &self,
        state: &str,
        code_challenge: &str,
        scope: &str,
        redirect_uri: &str,
    ) -> String {
        let mut url = self.config.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        // X expects spaces in `scope` as %20, not `+`.
        url.to_string().replace('+', "%20")
    }

    /// POST a form to X's token or revoke endpoint with client authentication.
    async fn post_form(
        &self,
        url: &Url,
        mut form: Vec<(&str, &str)>,
    ) -> Result<(reqwest::StatusCode, String), CallError> {
        let mut req = self.http.post(url.clone());
        match &self.config.client_secret {
            Some(secret) => {
                req = req.basic_auth(&self.config.client_id, Some(secret.expose_secret()));
            }
            None => form.push(("client_id", &self.config.client_id)),
        }
        let resp = req.form(&form).send().await.map_err(|e| {
            CallError::Transient(format!("cannot reach {url}: {}", e.without_url()))
        })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| {
            CallError::Transient(format!("reading the answer: {}", e.without_url()))
        })?;
        Ok((status, body))
    }

    async fn token_request(&self, form: Vec<(&str, &str)>) -> Result<TokenSet, CallError> {
        let (status, body) = self.post_form(&self.config.token_url, form).await?;
        if !status.is_success() {
            return Err(classify(status, &body));
        }
        let t: TokenBody = serde_json::from_str(&body).map_err(|_| {
            CallError::Transient(
                "X's token endpoint answered something that is not a token response".into(),
            )
        })?;
        Ok(TokenSet {
            access_token: t.access_token.into(),
            refresh_token: t.refresh_token.map(SecretString::from),
            expires_in: t.expires_in,
            scope: t.scope,
        })
    }

    /// Exchange an authorization code (with our PKCE verifier).
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<TokenSet, CallError> {
        self.token_request(vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose_secret()),
        ])
        .await
    }

    /// Use a refresh token (single-use at X: the answer carries its successor).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, CallError> {
        self.token_request(vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ])
        .await
    }

    /// Revoke an access or refresh token at X.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), CallError> {
        let (status, body) = self
            .post_form(
                &self.config.revoke_url,
                vec![("token", token.expose_secret())],
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(classify(status, &body))
        }
    }

    /// `GET /2/users/me`: who the token belongs to.
    pub async fn me(&self, access_token: &SecretString) -> Result<XUser, CallError> {
        #[derive(Deserialize)]
        struct Me {
            data: XUser,
        }
        let url = api_url(&self.config.api_url, "/2/users/me");
        let resp = self
            .http
            .get(url)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(|e| CallError::Transient(e.without_url().to_string()))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| CallError::Transient(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(classify(status, &body));
        }
        serde_json::from_str::<Me>(&body)
            .map(|m| m.data)
            .map_err(|_| CallError::Transient("X's /2/users/me answer has no user in it".into()))
    }
}

/// `base` (which may carry a path prefix) joined with an absolute API path.
pub fn api_url(base: &Url, path: &str) -> String {
    format!("{}{}", base.as_str().trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth() -> XOAuth {
        XOAuth::new(
            XOAuthConfig {
                client_id: "cid".into(),
                client_secret: None,
                authorize_url: Url::parse("https://x.com/i/oauth2/authorize").unwrap(),
                token_url: Url::parse("https://api.x.com/2/oauth2/token").unwrap(),
                revoke_url: Url::parse("https://api.x.com/2/oauth2/revoke").unwrap(),
                api_url: Url::parse("https://api.x.com").unwrap(),
                required_scopes: vec![
                    "tweet.read".into(),
                    "users.read".into(),
                    "offline.access".into(),
                ],
            },
            reqwest::Client::new(),
        )
    }

    #[test]
    fn scopes_are_the_required_ones_plus_the_clients_once_each() {
        assert_eq!(
            oauth().scopes_for("users.read like.write"),
            "tweet.read users.read offline.access like.write"
        );
        assert_eq!(
            oauth().scopes_for(""),
            "tweet.read users.read offline.access"
        );
    }

    #[test]
    fn authorize_url_uses_pkce_s256_and_percent_encoded_spaces() {
        let u = oauth().authorize_url(
            "st",
            "ch",
            "tweet.read users.read",
            "https://h/upstream/callback",
        );
        assert!(u.starts_with("https://x.com/i/oauth2/authorize?response_type=code&client_id=cid"));
        assert!(u.contains("scope=tweet.read%20users.read"));
        assert!(u.contains("code_challenge_method=S256"));
        assert!(!u.contains('+'));
    }

    #[test]
    fn failures_are_classified() {
        let s = |c| reqwest::StatusCode::from_u16(c).unwrap();
        let body = r#"{"error":"invalid_request","error_description":"Value passed for the token was invalid."}"#;
        match classify(s(400), body) {
            CallError::Refused { status, message } => {
                assert_eq!(status, 400);
                assert!(message.contains("Value passed for the token was invalid."));
            }
            other => panic!("{other:?}"),
        }
        assert!(classify(s(503), "").is_transient());
        assert!(classify(s(429), "").is_transient());
        assert!(!classify(s(401), "").is_transient());
        assert_eq!(describe(s(502), "<html>"), "HTTP 502");
    }
}
