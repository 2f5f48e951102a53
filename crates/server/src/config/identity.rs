//! Who signs users in: X (or the demo's simulated X), OpenID Connect, an
//! external issuer, or local accounts, each from its own settings.

use super::*;

/// The identity provider behind the consent page.
#[derive(Clone, Debug)]
pub enum Identity {
    /// X's OAuth 2.0 (or anything speaking it, like `xmcp sandbox`).
    X(Box<XUpstream>),
    /// A generic OpenID Connect provider (no X tools: nobody has X tokens).
    Oidc(Box<xmcp_auth::oidc::OidcConfig>),
    /// Resource-server-only: no sign-in here; an external authorization
    /// server's tokens are verified.
    External(Box<xmcp_auth::external::ExternalConfig>),
    /// The simulated X, served by this process under [`SANDBOX_PATH`].
    DemoSandbox { refresh_margin: i64 },
    /// Local username/password accounts from `[[users]]`.
    Local,
}

/// Where the demo's simulated X is mounted.
pub const SANDBOX_PATH: &str = "/sandbox";

/// A configured X upstream.
#[derive(Clone, Debug)]
pub struct XUpstream {
    pub oauth: xmcp_x::XOAuthConfig,
    pub refresh_margin: i64,
}

/// Scopes requested from X when `x_scopes` is not set.
pub const DEFAULT_X_SCOPES: [&str; 3] = ["tweet.read", "users.read", "offline.access"];

pub(super) fn x_url(
    value: Option<&str>,
    default: &str,
    name: &str,
    env: &str,
) -> Result<Url, ConfigError> {
    let raw = value.unwrap_or(default);
    let u = Url::parse(raw)
        .map_err(|e| err(format!("{name} `{raw}` is not a URL ({e}); set {env}")))?;
    if u.scheme() != "https" && !(u.scheme() == "http" && is_loopback_url(&u)) {
        return Err(err(format!(
            "{name} {u} must use https (http only on loopback, e.g. a local `xmcp sandbox`); set {env}"
        )));
    }
    Ok(u)
}

fn x_scopes(s: &XSettings) -> Result<Vec<String>, ConfigError> {
    let scopes = match &s.x_scopes {
        Some(_) => list(&s.x_scopes),
        None => DEFAULT_X_SCOPES.map(String::from).to_vec(),
    };
    if !scopes.iter().any(|s| s == "offline.access") {
        return Err(err(
            "x_scopes must include offline.access: without it X issues no refresh token and every user would have to sign in again every two hours (set XMCP_X_SCOPES, e.g. \"tweet.read users.read offline.access\")",
        ));
    }
    Ok(scopes)
}

fn x_refresh_margin(s: &XSettings) -> Result<i64, ConfigError> {
    within(
        s.x_refresh_margin,
        60,
        0..=3600,
        "x_refresh_margin must be between 0 and 3600 seconds (set XMCP_X_REFRESH_MARGIN)",
    )
}

fn oidc(s: &OidcSettings, issuer: &str) -> Result<Identity, ConfigError> {
    let u = x_url(Some(issuer), "", "oidc_issuer", "XMCP_OIDC_ISSUER")?;
    if u.query().is_some() || u.fragment().is_some() {
        return Err(err(
            "oidc_issuer must be the provider's issuer identifier (no query or fragment), e.g. https://login.example.com/realms/main",
        ));
    }
    let Some(client_id) = s.oidc_client_id.clone().filter(|c| !c.trim().is_empty()) else {
        return Err(err(
            "oidc_issuer is set but oidc_client_id is not: register xmcp as a client with the provider (callback <public_url>/upstream/callback) and set XMCP_OIDC_CLIENT_ID",
        ));
    };
    let client_secret = secret_or_file(
        &s.oidc_client_secret,
        &s.oidc_client_secret_file,
        "the OIDC client secret",
    )?;
    let scopes = match &s.oidc_scopes {
        Some(_) => list(&s.oidc_scopes),
        None => ["openid", "profile", "email"].map(String::from).to_vec(),
    };
    Ok(Identity::Oidc(Box::new(xmcp_auth::oidc::OidcConfig {
        issuer: issuer.to_owned(),
        client_id,
        client_secret,
        scopes,
    })))
}

fn external(s: &Settings, issuer: &str) -> Result<Identity, ConfigError> {
    use xmcp_auth::external::{ExternalConfig, ExternalTokens};
    if s.x.x_client_id.is_some() || s.oidc.oidc_issuer.is_some() {
        return Err(err(
            "external_issuer (resource-server-only mode) cannot be combined with x_client_id or oidc_issuer: the external server signs users in",
        ));
    }
    let tokens = match (
        &s.external.external_jwks_url,
        &s.external.external_introspection_url,
    ) {
        (Some(jwks), None) => ExternalTokens::Jwt {
            jwks_url: x_url(
                Some(jwks),
                "",
                "external_jwks_url",
                "XMCP_EXTERNAL_JWKS_URL",
            )?
            .to_string(),
        },
        (None, Some(url)) => {
            let url = x_url(
                Some(url),
                "",
                "external_introspection_url",
                "XMCP_EXTERNAL_INTROSPECTION_URL",
            )?;
            let secret = secret_or_file(
                &s.external.external_client_secret,
                &s.external.external_client_secret_file,
                "the introspection client secret",
            )?;
            let (Some(client_id), Some(client_secret)) =
                (s.external.external_client_id.clone(), secret)
            else {
                return Err(err(
                    "introspection needs this resource server's credentials at the external issuer: set XMCP_EXTERNAL_CLIENT_ID and XMCP_EXTERNAL_CLIENT_SECRET_FILE",
                ));
            };
            ExternalTokens::Introspection {
                url: url.to_string(),
                client_id,
                client_secret,
            }
        }
        _ => {
            return Err(err(
                "with external_issuer, set exactly one of XMCP_EXTERNAL_JWKS_URL (JWT access tokens) or XMCP_EXTERNAL_INTROSPECTION_URL (RFC 7662 introspection)",
            ));
        }
    };
    Ok(Identity::External(Box::new(ExternalConfig {
        issuer: issuer.to_owned(),
        tokens,
    })))
}

pub(super) fn identity(s: &Settings, demo: bool) -> Result<Identity, ConfigError> {
    if let Some(issuer) = s
        .external
        .external_issuer
        .clone()
        .filter(|i| !i.trim().is_empty())
    {
        return external(s, &issuer);
    }
    let oidc_issuer = s.oidc.oidc_issuer.clone().filter(|i| !i.trim().is_empty());
    if oidc_issuer.is_some() && s.x.x_client_id.is_some() {
        return Err(err(
            "both x_client_id and oidc_issuer are set: choose one identity provider (X, or an OpenID Connect provider)",
        ));
    }
    if let Some(issuer) = oidc_issuer {
        return oidc(&s.oidc, &issuer);
    }
    let Some(client_id) = s.x.x_client_id.clone().filter(|c| !c.trim().is_empty()) else {
        let stray = s.x.x_client_secret.is_some()
            || s.x.x_client_secret_file.is_some()
            || s.x.x_authorize_url.is_some()
            || s.x.x_token_url.is_some()
            || s.x.x_api_url.is_some();
        if stray {
            return Err(err(
                "X settings are given but x_client_id is not: set XMCP_X_CLIENT_ID to your X app's OAuth 2.0 client id",
            ));
        }
        if demo {
            x_scopes(&s.x)?;
            return Ok(Identity::DemoSandbox {
                refresh_margin: x_refresh_margin(&s.x)?,
            });
        }
        if s.auth.users.is_empty() {
            return Err(err(
                "no way for users to sign in is configured: set XMCP_X_CLIENT_ID and XMCP_X_CLIENT_SECRET_FILE (sign in with X), or add local accounts as [[users]] entries in the config file (hash passwords with `xmcp hash-password`), or run `xmcp serve --demo` to try xmcp with a simulated X",
            ));
        }
        return Ok(Identity::Local);
    };
    let client_secret = secret_or_file(
        &s.x.x_client_secret,
        &s.x.x_client_secret_file,
        "the X client secret",
    )?;
    Ok(Identity::X(Box::new(XUpstream {
        oauth: xmcp_x::XOAuthConfig {
            client_id,
            client_secret,
            authorize_url: x_url(
                s.x.x_authorize_url.as_deref(),
                "https://x.com/i/oauth2/authorize",
                "x_authorize_url",
                "XMCP_X_AUTHORIZE_URL",
            )?,
            token_url: x_url(
                s.x.x_token_url.as_deref(),
                "https://api.x.com/2/oauth2/token",
                "x_token_url",
                "XMCP_X_TOKEN_URL",
            )?,
            revoke_url: x_url(
                s.x.x_revoke_url.as_deref(),
                "https://api.x.com/2/oauth2/revoke",
                "x_revoke_url",
                "XMCP_X_REVOKE_URL",
            )?,
            api_url: x_url(
                s.x.x_api_url.as_deref(),
                "https://api.x.com",
                "x_api_url",
                "XMCP_X_API_URL",
            )?,
            required_scopes: x_scopes(&s.x)?,
        },
        refresh_margin: x_refresh_margin(&s.x)?,
    })))
}
