//! Clients: who a `client_id` names (static, registered, or a client ID
//! metadata document fetched by URL) and RFC 7591 dynamic registration.

use super::*;

impl AuthServer {
    /// Find a client by id: static, then registered, then metadata document.
    pub async fn resolve_client(&self, client_id: &str) -> Result<Option<Client>, OAuthError> {
        if let Some(s) = self
            .config
            .static_clients
            .iter()
            .find(|c| c.client_id == client_id)
        {
            return Ok(Some(Client {
                client_id: s.client_id.clone(),
                kind: ClientKind::Static,
                client_name: s.client_name.clone(),
                redirect_uris: s.redirect_uris.clone(),
                auth_method: s.auth_method,
                grant_types: GrantType::names(&GrantType::ALL),
                scope: None,
                secret_hash: s
                    .client_secret
                    .as_ref()
                    .map(|sec| TokenHash::of(sec.expose_secret())),
            }));
        }
        if cimd::is_metadata_url(client_id) {
            if !self.config.cimd_enabled {
                return Ok(None);
            }
            return match self.cimd.resolve(client_id, self.now()).await {
                Ok(c) => Ok(Some(c)),
                Err(e) => Err(OAuthError::new(ErrorCode::InvalidClient, e.to_string())),
            };
        }
        let Some(rec) = self.store.get_client(client_id).await? else {
            return Ok(None);
        };
        if rec.expires_at.is_some_and(|e| e <= self.now()) {
            return Ok(None);
        }
        let meta: ClientMetadata = serde_json::from_value(rec.metadata).map_err(|e| {
            OAuthError::store(StoreError::Corrupt(format!("client {client_id}: {e}")))
        })?;
        Ok(Some(meta.into_client(
            rec.client_id,
            ClientKind::Dynamic,
            rec.secret_hash,
        )))
    }

    /// RFC 7591 registration. Returns the 201 body.
    #[instrument(skip_all)]
    pub async fn register(&self, body: &[u8]) -> Result<serde_json::Value, OAuthError> {
        if !self.config.registration_enabled {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "dynamic client registration is disabled on this server",
            )
            .with_status(403));
        }
        let meta = crate::registration::validate_with(
            body,
            &self.config.scopes,
            &self.config.redirect_schemes,
        )?;
        // Registrations per address are limited in front of this endpoint
        // (xmcp-server's `ops`), where the caller's address is known.
        let now = self.now();
        let client_id = format!(
            "xmcp_client_{}",
            xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<16>())
        );
        let secret = (meta.token_endpoint_auth_method != TokenAuthMethod::None)
            .then(|| NewToken::generate(TokenKind::ClientSecret));
        let record = ClientRecord {
            client_id: client_id.clone(),
            secret_hash: secret.as_ref().map(|s| s.hash().clone()),
            metadata: serde_json::to_value(&meta)
                .map_err(|_| OAuthError::new(ErrorCode::ServerError, "cannot encode metadata"))?,
            created_at: now,
            expires_at: Some(now + self.config.unused_client_ttl),
        };
        self.store.insert_client(&record).await?;
        info!(client_id = %client_id, name = meta.client_name.as_deref().unwrap_or(""), "client registered");
        let mut body = record.metadata;
        if let Some(obj) = body.as_object_mut() {
            obj.insert("client_id".into(), client_id.into());
            obj.insert("client_id_issued_at".into(), now.into());
            if let Some(s) = &secret {
                obj.insert("client_secret".into(), s.plaintext().into());
                obj.insert("client_secret_expires_at".into(), 0.into());
            }
        }
        Ok(body)
    }

    // ----- /authorize ----------------------------------------------------
}
