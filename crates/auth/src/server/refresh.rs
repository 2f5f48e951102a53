//! The `refresh_token` grant: rotation, the grace window for a lost
//! response, and reuse detection that revokes the grant.

use super::*;

impl AuthServer {
    pub(super) async fn refresh_grant(
        &self,
        client: &Client,
        form: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let token = form
            .get("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let now = self.now();
        let hash = TokenHash::of(token);
        let live = self.store.find_refresh_token(&hash, now).await?;
        if let Some(live) = &live {
            if live.client_id != client.client_id {
                return Err(OAuthError::invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            if let Some(scope) = form.get("scope") {
                let granted: Vec<&str> = live.scope.split(' ').collect();
                if let Some(extra) = scope
                    .split(' ')
                    .filter(|s| !s.is_empty() && *s != "offline_access")
                    .find(|s| !granted.contains(s))
                {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        format!("scope `{extra}` was not granted; a refresh cannot widen scope"),
                    ));
                }
            }
            check_token_resource(form, &live.resource)?;
            // The client's tokens are only worth refreshing while the user's
            // upstream sign-in can be: once the provider refused our refresh
            // token, only a new sign-in helps.
            if let Some(up) = self.store.get_upstream_tokens(&live.user_id).await?
                && up.reauth_required_at.is_some()
            {
                self.store.revoke_grant(&live.grant_id, now).await?;
                info!(grant_id = %live.grant_id, "refresh refused: the upstream sign-in ended");
                return Err(OAuthError::invalid_grant(format!(
                    "the sign-in with {} has ended ({} refused to renew it); authorize again",
                    up.provider, up.provider
                )));
            }
        }
        // Only a live token can be rotated; otherwise the minted pair is
        // discarded, so it need not be a signed JWT.
        let facts = live.as_ref().map(|l| GrantFacts {
            user_id: &l.user_id,
            scope: &l.scope,
            resource: &l.resource,
        });
        let (access, refresh, pair) = self.mint_pair(client, now, facts).await?;
        let new_response = self.response(&access, refresh.as_ref(), "");
        let aad = successor_aad(&hash);
        let sealed = self.keyring.seal(
            &serde_json::to_vec(&new_response).unwrap_or_default(),
            aad.as_bytes(),
        );
        match self
            .store
            .rotate_refresh(&hash, now, self.config.refresh_grace, &pair, &sealed)
            .await?
        {
            RefreshRotation::Rotated { grant } => {
                if grant.client_id != client.client_id {
                    // Unreachable for live tokens (checked above); a rotation
                    // race with a foreign client revokes the compromised grant.
                    self.store.revoke_grant(&grant.id, now).await?;
                    return Err(OAuthError::invalid_grant(
                        "the refresh token was issued to another client",
                    ));
                }
                Ok(TokenResponse {
                    scope: grant.scope,
                    ..new_response
                })
            }
            RefreshRotation::Grace {
                grant,
                successor_sealed,
            } => {
                if grant.client_id != client.client_id {
                    return Err(OAuthError::invalid_grant(
                        "the refresh token was issued to another client",
                    ));
                }
                let opened = self
                    .keyring
                    .open(&successor_sealed, aad.as_bytes())
                    .map_err(|e| {
                        tracing::error!(error = %e, "cannot open the sealed refresh successor");
                        OAuthError::invalid_grant("the refresh token was already used")
                    })?;
                let previous: TokenResponse = serde_json::from_slice(opened.expose_secret())
                    .map_err(|_| OAuthError::invalid_grant("the refresh token was already used"))?;
                info!(grant_id = %grant.id, "parallel refresh within grace window: returning the same successor");
                Ok(TokenResponse {
                    scope: grant.scope,
                    ..previous
                })
            }
            RefreshRotation::ReuseDetected { grant_id } => {
                warn!(grant_id = %grant_id, client_id = %client.client_id, "refresh token reuse detected; grant revoked");
                Err(OAuthError::invalid_grant(
                    "the refresh token was already used; every token of this grant has been revoked. Sign in again.",
                ))
            }
            RefreshRotation::Invalid => Err(OAuthError::invalid_grant(
                "the refresh token is invalid, expired or revoked",
            )),
        }
    }

    // ----- /revoke and /introspect -----------------------------------------
}

fn successor_aad(old: &TokenHash) -> String {
    xmcp_store::SealedColumn::RefreshSuccessor.aad(old.as_str())
}
