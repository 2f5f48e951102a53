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

/// The RFC 8628 device authorization grant type.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

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

    pub fn allows_refresh(&self) -> bool {
        self.grant_types.iter().any(|g| g == "refresh_token")
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
