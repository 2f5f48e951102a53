//! Resource-server-only mode: the access tokens come from an external
//! authorization server (Keycloak, Auth0, another xmcp...), and the guard
//! only verifies them, either as JWTs against the issuer's JWKS or by
//! RFC 7662 introspection at the issuer. Either way the token must name this
//! resource as its audience (MCP "Token Handling"), and must not be expired.

use crate::error::GuardError;
use crate::oidc::{ALLOWED_ALGORITHMS, RemoteJwks};
use crate::principal::Principal;
use jsonwebtoken::Validation;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// How the external issuer's tokens are checked.
#[derive(Clone)]
pub enum ExternalTokens {
    /// Self-contained JWTs, verified with the issuer's key set.
    Jwt { jwks_url: String },
    /// Opaque (or any) tokens, checked at the issuer's introspection
    /// endpoint with this resource server's client credentials.
    Introspection {
        url: String,
        client_id: String,
        client_secret: SecretString,
    },
}

#[derive(Clone)]
pub struct ExternalConfig {
    /// The external authorization server's issuer identifier (named in our
    /// protected resource metadata, and required as the tokens' `iss`).
    pub issuer: String,
    pub tokens: ExternalTokens,
}

impl std::fmt::Debug for ExternalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match &self.tokens {
            ExternalTokens::Jwt { jwks_url } => format!("jwt ({jwks_url})"),
            ExternalTokens::Introspection { url, client_id, .. } => {
                format!("introspection ({url} as {client_id})")
            }
        };
        f.debug_struct("ExternalConfig")
            .field("issuer", &self.issuer)
            .field("tokens", &how)
            .finish()
    }
}

/// `aud` as a string or an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Audience::One(a) => a == wanted,
            Audience::Many(v) => v.iter().any(|a| a == wanted),
        }
    }
}

/// `scope` (space-separated, RFC 9068 / 7662) or `scp` (an array, Entra).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scopes {
    Text(String),
    List(Vec<String>),
}

/// The claims both JWTs and introspection answers carry.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    active: Option<bool>,
    sub: Option<String>,
    iss: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    scope: Option<Scopes>,
    scp: Option<Scopes>,
    client_id: Option<String>,
    azp: Option<String>,
    username: Option<String>,
    preferred_username: Option<String>,
    jti: Option<String>,
}

/// Verifies tokens of an external issuer.
#[derive(Debug)]
pub struct ExternalVerifier {
    config: ExternalConfig,
    http: reqwest::Client,
    jwks: RemoteJwks,
}

fn invalid(why: impl Into<String>) -> GuardError {
    GuardError::InvalidToken(why.into())
}

impl ExternalVerifier {
    pub fn new(config: ExternalConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            jwks: RemoteJwks::new(http.clone()),
            http,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The caller behind `token`, if the issuer vouches for it for `resource`.
    pub async fn verify(
        &self,
        token: &str,
        resource: &str,
        now: i64,
    ) -> Result<Principal, GuardError> {
        let claims = match &self.config.tokens {
            ExternalTokens::Jwt { jwks_url } => self.decode_jwt(token, jwks_url, resource).await?,
            ExternalTokens::Introspection {
                url,
                client_id,
                client_secret,
            } => {
                self.introspect(token, url, client_id, client_secret)
                    .await?
            }
        };
        if claims
            .iss
            .as_deref()
            .is_some_and(|i| i != self.config.issuer)
        {
            return Err(invalid(
                "the access token was issued by another authorization server",
            ));
        }
        if !claims.aud.as_ref().is_some_and(|a| a.contains(resource)) {
            return Err(invalid("the access token was issued for another resource"));
        }
        let exp = claims
            .exp
            .ok_or_else(|| invalid("the access token has no expiry"))?;
        if exp <= now {
            return Err(invalid("the access token has expired"));
        }
        let sub = claims
            .sub
            .ok_or_else(|| invalid("the access token names no subject"))?;
        let scopes = match claims.scope.or(claims.scp) {
            Some(Scopes::Text(t)) => t
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(Scopes::List(l)) => l,
            None => Vec::new(),
        };
        Ok(Principal {
            user_id: format!("external:{sub}"),
            subject: sub,
            username: claims.preferred_username.or(claims.username),
            client_id: claims.client_id.or(claims.azp).unwrap_or_default(),
            scopes,
            grant_id: claims.jti.unwrap_or_default(),
            expires_at: exp,
            resource: Some(resource.to_owned()),
        })
    }

    async fn decode_jwt(
        &self,
        token: &str,
        jwks_url: &str,
        resource: &str,
    ) -> Result<Claims, GuardError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("the access token is malformed"))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(invalid(
                "the access token's signing algorithm is not accepted",
            ));
        }
        let key = self
            .jwks
            .key(jwks_url, header.kid.as_deref())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot get the external issuer's signing key");
                invalid("the access token's signing key is unknown")
            })?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[resource]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 0;
        // Expiry is checked against our clock by `verify`.
        v.validate_exp = false;
        jsonwebtoken::decode::<Claims>(token, &key, &v)
            .map(|d| d.claims)
            .map_err(|e| invalid(format!("the access token is not valid: {e}")))
    }

    async fn introspect(
        &self,
        token: &str,
        url: &str,
        client_id: &str,
        secret: &SecretString,
    ) -> Result<Claims, GuardError> {
        let resp = self
            .http
            .post(url)
            .basic_auth(client_id, Some(secret.expose_secret()))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| {
                tracing::error!(error = %e.without_url(), "token introspection failed");
                GuardError::Unavailable
            })?;
        if !resp.status().is_success() {
            tracing::error!(
                status = resp.status().as_u16(),
                "token introspection was refused"
            );
            return Err(GuardError::Unavailable);
        }
        let claims: Claims = resp.json().await.map_err(|_| {
            tracing::error!("the introspection answer is not JSON");
            GuardError::Unavailable
        })?;
        if claims.active != Some(true) {
            return Err(invalid("the access token is invalid, expired or revoked"));
        }
        Ok(claims)
    }
}
