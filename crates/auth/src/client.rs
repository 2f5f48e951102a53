//! Resolving a `client_id` to what the AS knows about the client: static
//! clients from configuration, dynamic registrations from the store, and
//! Client ID Metadata Documents fetched from their URL.

use crate::config::TokenAuthMethod;
use serde::{Deserialize, Serialize};
use xmcp_crypto::token::TokenHash;

/// How the AS came to know a client. Shown on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Pre-registered by the operator.
    Static,
    /// RFC 7591 dynamic registration (self-asserted metadata).
    Dynamic,
    /// A Client ID Metadata Document at an https URL.
    MetadataDocument,
}

/// The grant types this authorization server implements, by their names
/// at the token endpoint and in client metadata (`grant_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 6749 §4.1, with PKCE.
    AuthorizationCode,
    /// RFC 6749 §6, rotated with reuse detection.
    RefreshToken,
    /// RFC 8628, the device authorization grant.
    DeviceCode,
}

impl GrantType {
    pub const ALL: [Self; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::DeviceCode,
    ];

    /// What a client registers when it names no grant types (RFC 7591 §2).
    pub const REGISTERED_BY_DEFAULT: [Self; 2] = [Self::AuthorizationCode, Self::RefreshToken];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// The grant type named `name`, if this server implements it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// A short name for metrics and logs.
    pub const fn label(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "device_code",
        }
    }

    /// `grants` by name, as client metadata lists them.
    pub fn names(grants: &[Self]) -> Vec<String> {
        grants.iter().map(|g| g.as_str().to_owned()).collect()
    }
}

/// The RFC 8628 device authorization grant type.
pub const DEVICE_GRANT: &str = GrantType::DeviceCode.as_str();

/// A resolved client.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub kind: ClientKind,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub auth_method: TokenAuthMethod,
    pub grant_types: Vec<String>,
    /// The scope the client registered (RFC 7591 §2), granted when an
    /// authorization request names none.
    pub scope: Option<String>,
    /// Digest of the secret, for confidential clients.
    pub secret_hash: Option<TokenHash>,
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.auth_method != TokenAuthMethod::None
    }

    /// Whether the client registered `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.iter().any(|g| g == grant.as_str())
    }

    pub fn allows_refresh(&self) -> bool {
        self.allows(GrantType::RefreshToken)
    }

    /// The name to show, never empty.
    pub fn display_name(&self) -> &str {
        self.client_name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&self.client_id)
    }

    pub fn redirect_allowed(&self, requested: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|r| crate::redirect::matches(r, requested))
    }
}

/// Registered metadata as stored for dynamic clients (RFC 7591 §2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: TokenAuthMethod,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
}

impl ClientMetadata {
    pub fn into_client(
        self,
        client_id: String,
        kind: ClientKind,
        secret_hash: Option<TokenHash>,
    ) -> Client {
        Client {
            client_id,
            kind,
            client_name: self.client_name,
            redirect_uris: self.redirect_uris,
            auth_method: self.token_endpoint_auth_method,
            grant_types: self.grant_types,
            scope: self.scope,
            secret_hash,
        }
    }
}
