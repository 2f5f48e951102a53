//! RFC 8414 authorization server metadata and RFC 9728 protected resource
//! metadata.

use super::*;

impl AuthServer {
    /// RFC 8414 authorization server metadata: exactly what is implemented.
    pub fn metadata(&self) -> serde_json::Value {
        let mut scopes = self.config.scopes.clone();
        scopes.push("offline_access".into());
        let mut m = serde_json::json!({
            "issuer": self.config.issuer,
            "authorization_endpoint": self.endpoint("/authorize"),
            "token_endpoint": self.endpoint("/token"),
            "revocation_endpoint": self.endpoint("/revoke"),
            "introspection_endpoint": self.endpoint("/introspect"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": GrantType::names(&GrantType::ALL),
            "device_authorization_endpoint": self.endpoint("/device_authorization"),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": scopes,
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": self.config.cimd_enabled,
            "protected_resources": [self.config.resource],
        });
        if let Some(o) = m.as_object_mut() {
            if self.config.registration_enabled {
                o.insert(
                    "registration_endpoint".into(),
                    self.endpoint("/register").into(),
                );
            }
            if self.jwt.is_some() {
                o.insert("jwks_uri".into(), self.endpoint("/jwks.json").into());
            }
        }
        m
    }

    /// RFC 9728 protected-resource metadata for `resource` (the base
    /// resource, the bare origin, or a narrower resource, whose
    /// `scopes_supported` are its own).
    pub fn protected_resource_metadata(&self, resource: &str) -> serde_json::Value {
        let issuer = self
            .external
            .as_ref()
            .map_or(self.config.issuer.as_str(), |e| e.issuer());
        let scopes = match (self.resource_suffix(resource), &self.sub_resources) {
            (Some(suffix), Some(sub)) if !suffix.is_empty() => {
                sub.scopes_supported(suffix).unwrap_or_default()
            }
            _ => self.config.scopes.clone(),
        };
        serde_json::json!({
            "resource": resource,
            "authorization_servers": [issuer],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": self.config.resource_name,
        })
    }
}
