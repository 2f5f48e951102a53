//! RFC 7009 revocation and RFC 7662 introspection.

use super::*;

impl AuthServer {
    /// RFC 7009 revocation. Unknown tokens and tokens of other clients are
    /// answered with success and left alone.
    #[instrument(skip_all)]
    pub async fn revoke(&self, creds: &ClientCredentials, body: &str) -> Result<(), OAuthError> {
        let form = Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let client = self.authenticate_client(creds, &form).await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let now = self.now();
        let hash = TokenHash::of(token);
        if let Some(rt) = self.store.find_refresh_token(&hash, now).await? {
            if rt.client_id == client.client_id {
                self.store.revoke_grant(&rt.grant_id, now).await?;
                info!(grant_id = %rt.grant_id, "grant revoked through its refresh token");
            }
            return Ok(());
        }
        if let Some(at) = self.store.find_access_token(&hash, now).await?
            && at.client_id == client.client_id
        {
            self.store.delete_access_token(&hash).await?;
            info!(grant_id = %at.grant_id, "access token revoked");
        }
        Ok(())
    }

    /// RFC 7662 introspection, for confidential clients allowed to use it.
    #[instrument(skip_all)]
    pub async fn introspect(
        &self,
        creds: &ClientCredentials,
        body: &str,
    ) -> Result<serde_json::Value, OAuthError> {
        let form = Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let client = self.authenticate_client(creds, &form).await?;
        let allowed = client.is_confidential()
            && (self
                .config
                .introspection_clients
                .contains(&client.client_id)
                || (self.config.introspection_clients.is_empty()
                    && client.kind == ClientKind::Static));
        if !allowed {
            let mut e = OAuthError::invalid_client("this client may not use introspection");
            e.basic_challenge = creds.basic.is_some();
            return Err(e);
        }
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let now = self.now();
        let hash = TokenHash::of(token);
        if let Some(at) = self.store.find_access_token(&hash, now).await? {
            return Ok(serde_json::json!({
                "active": true,
                "token_type": "Bearer",
                "scope": at.scope,
                "client_id": at.client_id,
                "sub": at.subject,
                "username": at.username,
                "aud": at.resource,
                "iss": self.config.issuer,
                "exp": at.expires_at,
                "iat": at.issued_at,
            }));
        }
        if let Some(rt) = self.store.find_refresh_token(&hash, now).await? {
            return Ok(serde_json::json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": rt.scope,
                "client_id": rt.client_id,
                "aud": rt.resource,
                "iss": self.config.issuer,
                "exp": rt.expires_at,
            }));
        }
        Ok(serde_json::json!({ "active": false }))
    }

    // ----- resource guard --------------------------------------------------
}
