//! A generic OpenID Connect provider behind the consent page, so xmcp's
//! authorization server can front any OIDC identity provider (Keycloak,
//! Auth0, Clerk, Entra...) the way it fronts X.
//!
//! The provider's metadata comes from its discovery document (fetched when
//! first needed, cached, and refetched after an hour); its `issuer` must
//! equal the configured one byte for byte. The ID token is verified against
//! the provider's JWKS (asymmetric algorithms only; issuer, audience, expiry
//! and `nonce` checked). The nonce is derived from our PKCE verifier, which
//! the pending authorization already keeps sealed, so nothing else is stored.

use crate::identity::{
    IdentityProvider, LoginContext, LoginForm, LoginStep, UpstreamError, UpstreamLogin,
};
use crate::params::Params;
use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::RwLock;
use tokio::time::Instant;
use xmcp_store::UserIdentity;

/// How long a discovery document or key set is trusted before a refetch.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// Minimum time between key-set refetches triggered by an unknown `kid`
/// (stated in [`RemoteJwks`]'s documentation).
const REFETCH_AFTER: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct OidcConfig {
    /// The provider's issuer identifier, exactly as its metadata states it.
    pub issuer: String,
    pub client_id: String,
    /// With a secret: `client_secret_basic`; without: a public client.
    pub client_secret: Option<SecretString>,
    /// Requested scopes; `openid` is always among them.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("confidential", &self.client_secret.is_some())
            .field("scopes", &self.scopes)
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A key set fetched from a URL, cached, refetched when a token names a key
/// it does not have (at most every 30 seconds).
#[derive(Debug)]
pub struct RemoteJwks {
    http: reqwest::Client,
    cached: RwLock<Option<(Instant, String, JwkSet)>>,
}

impl RemoteJwks {
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            cached: RwLock::new(None),
        }
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, String> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("cannot fetch the key set: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!(
                "the key set answered HTTP {}",
                resp.status().as_u16()
            ));
        }
        resp.json::<JwkSet>()
            .await
            .map_err(|_| "the key set is not a JWK Set".to_owned())
    }

    /// The key `kid` (or the only key, when the token names none) from `url`.
    pub async fn key(&self, url: &str, kid: Option<&str>) -> Result<DecodingKey, String> {
        let pick = |set: &JwkSet| match kid {
            Some(k) => set.find(k).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        {
            let cached = self.cached.read().await;
            if let Some((at, u, set)) = cached.as_ref()
                && u == url
                && at.elapsed() < CACHE_FOR
                && let Some(jwk) = pick(set)
            {
                return DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable key: {e}"));
            }
        }
        let mut cached = self.cached.write().await;
        let stale = match cached.as_ref() {
            Some((at, u, _)) => u != url || at.elapsed() >= REFETCH_AFTER,
            None => true,
        };
        if stale {
            let set = self.fetch(url).await?;
            *cached = Some((Instant::now(), url.to_owned(), set));
        }
        let set = cached.as_ref().map(|(_, _, s)| s);
        let jwk = set
            .and_then(pick)
            .ok_or_else(|| "the token's signing key is not in the provider's key set".to_owned())?;
        DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable key: {e}"))
    }
}

/// Asymmetric algorithms only: a provider's key set never holds our secret.
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    nonce: Option<String>,
    preferred_username: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    id_token: Option<String>,
}

/// Signs users in with an OpenID Connect provider.
#[derive(Debug)]
pub struct OidcIdentityProvider {
    config: OidcConfig,
    http: reqwest::Client,
    discovery: RwLock<Option<(Instant, Discovery)>>,
    jwks: RemoteJwks,
}

/// The nonce for a sign-in whose PKCE verifier is `verifier`.
fn nonce_for(verifier: &str) -> String {
    xmcp_crypto::b64url(&xmcp_crypto::sha256(
        format!("xmcp oidc nonce:{verifier}").as_bytes(),
    ))
}

impl OidcIdentityProvider {
    pub fn new(mut config: OidcConfig, http: reqwest::Client) -> Self {
        if !config.scopes.iter().any(|s| s == "openid") {
            config.scopes.insert(0, "openid".into());
        }
        Self {
            config,
            jwks: RemoteJwks::new(http.clone()),
            http,
            discovery: RwLock::new(None),
        }
    }

    async fn discovery(&self) -> Result<Discovery, String> {
        if let Some((at, d)) = self.discovery.read().await.as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("cannot fetch {url}: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered HTTP {}", resp.status().as_u16()));
        }
        let d: Discovery = resp
            .json()
            .await
            .map_err(|_| format!("{url} is not an OpenID Connect discovery document"))?;
        // OIDC Discovery §4.3: the document must name the issuer we asked.
        if d.issuer != self.config.issuer {
            return Err(format!(
                "the discovery document names issuer `{}`, not the configured `{}`",
                d.issuer, self.config.issuer
            ));
        }
        *self.discovery.write().await = Some((Instant::now(), d.clone()));
        Ok(d)
    }

    async fn verify_id_token(
        &self,
        token: &str,
        jwks_uri: &str,
        nonce: &str,
    ) -> Result<IdClaims, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed ID token: {e}"))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(format!(
                "ID token algorithm {:?} is not accepted",
                header.alg
            ));
        }
        let key = self.jwks.key(jwks_uri, header.kid.as_deref()).await?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.client_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 60;
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &v)
            .map_err(|e| format!("the ID token is not valid: {e}"))?
            .claims;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err("the ID token's nonce does not match this sign-in".into());
        }
        Ok(claims)
    }
}

#[async_trait]
impl IdentityProvider for OidcIdentityProvider {
    fn name(&self) -> &str {
        "oidc"
    }

    fn display_name(&self) -> &str {
        "your identity provider"
    }

    fn login_form(&self) -> LoginForm {
        LoginForm::None
    }

    async fn begin(&self, ctx: &LoginContext<'_>, _form: &Params) -> LoginStep {
        let d = match self.discovery().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "OpenID Connect discovery failed");
                return LoginStep::Retry(
                    "The identity provider cannot be reached right now. Try again in a moment."
                        .into(),
                );
            }
        };
        let state = xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<32>());
        let (verifier, challenge) = xmcp_crypto::pkce_pair();
        let Ok(mut url) = url::Url::parse(&d.authorization_endpoint) else {
            return LoginStep::Retry("The identity provider's metadata is invalid.".into());
        };
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", ctx.callback_url)
            .append_pair("scope", &self.config.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce_for(&verifier))
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        LoginStep::Redirect {
            url: url.to_string(),
            state: state.into(),
            verifier: verifier.into(),
        }
    }

    async fn complete(
        &self,
        code: &str,
        verifier: &SecretString,
        ctx: &LoginContext<'_>,
    ) -> Result<UpstreamLogin, UpstreamError> {
        let d = self.discovery().await.map_err(UpstreamError::Unavailable)?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", ctx.callback_url),
            ("code_verifier", verifier.expose_secret()),
        ];
        let mut req = self.http.post(&d.token_endpoint);
        match &self.config.client_secret {
            Some(secret) => {
                req = req.basic_auth(&self.config.client_id, Some(secret.expose_secret()))
            }
            None => form.push(("client_id", &self.config.client_id)),
        }
        let resp = req
            .form(&form)
            .send()
            .await
            .map_err(|e| UpstreamError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(UpstreamError::Unavailable(format!(
                "token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(UpstreamError::Provider(format!(
                "the provider refused the authorization code (HTTP {})",
                status.as_u16()
            )));
        }
        let body: TokenBody = resp
            .json()
            .await
            .map_err(|_| UpstreamError::Provider("the token response is not JSON".into()))?;
        let id_token = body
            .id_token
            .ok_or_else(|| UpstreamError::Provider("the token response has no ID token".into()))?;
        let claims = self
            .verify_id_token(&id_token, &d.jwks_uri, &nonce_for(verifier.expose_secret()))
            .await
            .map_err(UpstreamError::Provider)?;
        tracing::info!(sub = %claims.sub, "signed in with OpenID Connect");
        Ok(UpstreamLogin {
            identity: UserIdentity {
                subject: format!("oidc:{}#{}", self.config.issuer, claims.sub),
                username: claims.preferred_username.or(claims.email),
                display_name: claims.name,
            },
            // The provider's own tokens are not needed after sign-in: keep none.
            tokens: None,
        })
    }
}
