//! The resource side: a bearer token checked for the resource it is
//! presented at (hash lookup, JWT, or an external issuer's token).

use super::*;

impl AuthServer {
    /// Validate the `Authorization` header of a request to the base
    /// protected resource. Tokens anywhere else (query, body) are never
    /// considered.
    pub async fn authenticate_bearer(
        &self,
        authorization: Option<&str>,
    ) -> Result<Principal, GuardError> {
        let resource = self.config.resource.clone();
        self.authenticate_bearer_at(authorization, &resource).await
    }

    /// Validate the `Authorization` header of a request to `resource` (the
    /// base resource or a narrower one, see [`crate::resource`]): the token
    /// must have been issued for a resource that covers it.
    pub async fn authenticate_bearer_at(
        &self,
        authorization: Option<&str>,
        resource: &str,
    ) -> Result<Principal, GuardError> {
        let Some(requested) = self.resource_suffix(resource) else {
            return Err(GuardError::InvalidToken(
                "this server is not that protected resource".into(),
            ));
        };
        let Some(header) = authorization else {
            return Err(GuardError::Missing);
        };
        let (scheme, token) = header
            .trim()
            .split_once(' ')
            .ok_or_else(|| GuardError::InvalidRequest("malformed Authorization header".into()))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(GuardError::Missing);
        }
        let token = token.trim();
        if token.is_empty() || token.len() > 4096 {
            return Err(GuardError::InvalidToken(
                "the access token is malformed".into(),
            ));
        }
        let now = self.now();
        if let Some(external) = &self.external {
            // The external issuer's tokens name the base resource, which
            // covers every narrower one.
            return external.verify(token, &self.config.resource, now).await;
        }
        // Every token, JWT or opaque, must be live in the store: that is
        // what makes revocation immediate.
        let info = match self
            .store
            .find_access_token(&TokenHash::of(token), now)
            .await
        {
            Ok(Some(info)) => info,
            Ok(None) => {
                return Err(GuardError::InvalidToken(
                    "the access token is invalid, expired or revoked".into(),
                ));
            }
            Err(e) => {
                tracing::error!(error = %e, "store failure while checking a bearer token");
                return Err(GuardError::Unavailable);
            }
        };
        if let Some(keys) = &self.jwt
            && !token.starts_with("xmcp_")
        {
            // The JWT's audience is the resource its grant is for.
            keys.verify(token, now, &self.config.issuer, &[info.resource.as_str()])
                .await
                .map_err(GuardError::InvalidToken)?;
        }
        let covers = match self.resource_suffix(&info.resource) {
            Some(granted) if granted == requested => true,
            Some(granted) => self
                .sub_resources
                .as_ref()
                .is_some_and(|sub| sub.covers(granted, requested)),
            None => false,
        };
        if !covers {
            return Err(GuardError::InvalidToken(
                "the access token was issued for another resource".into(),
            ));
        }
        Ok(Principal {
            user_id: info.user_id,
            subject: info.subject,
            username: info.username,
            client_id: info.client_id,
            scopes: info
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            grant_id: info.grant_id,
            expires_at: info.expires_at,
            resource: Some(info.resource),
        })
    }

    // ----- metadata ------------------------------------------------------
}
