//! The `authorization_code` grant: a code redeemed once, with PKCE and the
//! resource it was issued for.

use super::*;

impl AuthServer {
    pub(super) async fn code_grant(
        &self,
        client: &Client,
        form: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let code = form
            .get("code")
            .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        let now = self.now();
        let code_hash = TokenHash::of(code);
        let Some(record) = self.store.get_code(&code_hash, now).await? else {
            return Err(OAuthError::invalid_grant(
                "the authorization code is invalid or expired",
            ));
        };
        if record.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        if record.kind != CodeKind::Redirect {
            return Err(OAuthError::invalid_grant(
                "a device code is redeemed with the device_code grant",
            ));
        }
        match form.get("redirect_uri") {
            Some(r) if r != record.redirect_uri => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri does not match the authorization request",
                ));
            }
            None if record.redirect_uri_explicit => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri is required because the authorization request included it",
                ));
            }
            _ => {}
        }
        let Some(verifier) = form.get("code_verifier") else {
            return Err(OAuthError::invalid_grant(
                "code_verifier is required (PKCE)",
            ));
        };
        if !is_valid_verifier(verifier)
            || !xmcp_crypto::pkce_s256_matches(verifier, &record.code_challenge)
        {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        check_token_resource(form, &record.resource)?;
        let facts = GrantFacts {
            user_id: &record.user_id,
            scope: &record.scope,
            resource: &record.resource,
        };
        self.redeem_code(client, &code_hash, facts, now).await
    }

    /// Issue a grant and its first tokens from a verified code (an
    /// authorization code, or an approved device code), at most once: a
    /// second redemption revokes what the first one issued.
    pub(super) async fn redeem_code(
        &self,
        client: &Client,
        code_hash: &TokenHash,
        facts: GrantFacts<'_>,
        now: i64,
    ) -> Result<TokenResponse, OAuthError> {
        let (access, refresh, pair) = self.mint_pair(client, now, Some(facts)).await?;
        let grant = Grant {
            id: format!(
                "grt_{}",
                xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<12>())
            ),
            user_id: facts.user_id.to_owned(),
            client_id: client.client_id.clone(),
            scope: facts.scope.to_owned(),
            resource: facts.resource.to_owned(),
            created_at: now,
            revoked_at: None,
        };
        match self
            .store
            .issue_from_code(code_hash, now, &grant, &pair)
            .await?
        {
            CodeRedemption::Issued => {
                info!(grant_id = %grant.id, client_id = %client.client_id, "tokens issued from a code");
                Ok(self.response(&access, refresh.as_ref(), &grant.scope))
            }
            CodeRedemption::AlreadyUsed { grant_id } => {
                if let Some(id) = grant_id {
                    warn!(grant_id = %id, client_id = %client.client_id, "code replayed; revoking its grant");
                    self.store.revoke_grant(&id, now).await?;
                }
                Err(OAuthError::invalid_grant(
                    "the code was already used; tokens issued from it have been revoked",
                ))
            }
            CodeRedemption::NotFound => {
                Err(OAuthError::invalid_grant("the code is invalid or expired"))
            }
        }
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}
