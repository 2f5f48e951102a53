//! OAuth error responses.
//!
//! Token, revocation and introspection endpoints answer RFC 6749 §5.2 bodies;
//! registration answers RFC 7591 §3.2.2 bodies. Internal causes are logged,
//! never returned.

use serde::Serialize;

/// Error codes from RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707 §2,
/// RFC 7009 §2.2.1 and RFC 8628 §3.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    /// RFC 8707 §2: the requested resource is not served by this AS.
    InvalidTarget,
    /// RFC 7591 §3.2.2.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2.
    InvalidClientMetadata,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
    /// RFC 8628 §3.5: the user has not yet decided.
    AuthorizationPending,
    /// RFC 8628 §3.5: poll less often.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
        }
    }
}

/// An OAuth error as returned to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// HTTP status (400 unless stated otherwise).
    pub status: u16,
    /// Whether the client authenticated with HTTP Basic (then `invalid_client`
    /// carries `WWW-Authenticate: Basic`, RFC 6749 §5.2).
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::InvalidClient => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        };
        Self {
            code,
            description: description.into(),
            status,
            basic_challenge: false,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }

    /// A storage failure: logged here with its cause, reported as
    /// `temporarily_unavailable` (503) without details.
    pub fn store(err: xmcp_store::StoreError) -> Self {
        tracing::error!(error = %err, "store failure");
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the authorization server cannot reach its database; retry shortly",
        )
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

impl From<xmcp_store::StoreError> for OAuthError {
    fn from(e: xmcp_store::StoreError) -> Self {
        Self::store(e)
    }
}

/// Why the resource guard refused a request.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardError {
    /// No credentials at all (401, no `error` parameter).
    Missing,
    /// Invalid, expired, revoked or foreign-audience token (401 `invalid_token`).
    InvalidToken(String),
    /// Malformed `Authorization` header (400 `invalid_request`).
    InvalidRequest(String),
    /// Store unavailable (503).
    Unavailable,
}
