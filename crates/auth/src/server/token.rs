//! `POST /token`: client authentication and the grant dispatch, and the
//! minting of access and refresh token pairs, opaque or JWT.

use super::*;

impl AuthServer {
    /// Authenticate the client at a back-channel endpoint (RFC 6749 §2.3,
    /// OAuth 2.1 §2.4). Exactly one method may be used.
    pub(super) async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
        form: &Params,
    ) -> Result<Client, OAuthError> {
        let basic = creds.basic.is_some();
        let invalid = |d: &str| {
            let mut e = OAuthError::invalid_client(d);
            e.basic_challenge = basic;
            e
        };
        let (client_id, secret) = match (&creds.basic, form.get("client_secret")) {
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "use only one client authentication method",
                ));
            }
            (Some((id, secret)), None) => {
                if form.get("client_id").is_some_and(|f| f != id) {
                    return Err(OAuthError::invalid_request(
                        "client_id in the body differs from the Authorization header",
                    ));
                }
                (id.as_str(), Some(secret.as_str()))
            }
            (None, secret) => match form.get("client_id") {
                Some(id) => (id, secret),
                None => return Err(invalid("client authentication is required (client_id)")),
            },
        };
        let client = match self.resolve_client(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(invalid("unknown client")),
            Err(e) if e.code == ErrorCode::InvalidClient => return Err(invalid(&e.description)),
            Err(e) => return Err(e),
        };
        match (&client.secret_hash, secret) {
            (None, None) => Ok(client),
            (None, Some(_)) => Err(invalid("this client is public and has no secret")),
            (Some(_), None) => Err(invalid("client authentication failed")),
            (Some(expected), Some(given)) => {
                if xmcp_crypto::constant_time_eq(
                    expected.as_str().as_bytes(),
                    TokenHash::of(given).as_str().as_bytes(),
                ) {
                    Ok(client)
                } else {
                    Err(invalid("client authentication failed"))
                }
            }
        }
    }

    // ----- /token --------------------------------------------------------

    /// `POST /token` with a form body.
    pub async fn token(
        &self,
        creds: &ClientCredentials,
        body: &str,
    ) -> Result<TokenResponse, OAuthError> {
        self.token_proving(creds, body).await.0
    }

    /// [`Self::token`], and the client the request proved to be: one that
    /// authenticated with its secret, or a public client whose code,
    /// refresh token or device code was good (the request succeeded). A
    /// `client_id` anyone can send proves nothing: limits per client count
    /// only proven requests, so that strangers cannot spend a client's.
    #[instrument(skip_all, fields(grant_type))]
    pub async fn token_proving(
        &self,
        creds: &ClientCredentials,
        body: &str,
    ) -> (Result<TokenResponse, OAuthError>, Option<String>) {
        let mut proven = None;
        let result = self.token_inner(creds, body, &mut proven).await;
        (result, proven)
    }

    async fn token_inner(
        &self,
        creds: &ClientCredentials,
        body: &str,
        proven: &mut Option<String>,
    ) -> Result<TokenResponse, OAuthError> {
        let form = Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        let grant_type = form
            .get("grant_type")
            .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
        tracing::Span::current().record("grant_type", grant_type);
        let Some(grant) = GrantType::parse(grant_type) else {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type `{grant_type}` is not supported"),
            ));
        };
        let client = self.authenticate_client(creds, &form).await?;
        if client.secret_hash.is_some() {
            *proven = Some(client.client_id.clone());
        }
        if !client.allows(grant) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client is not registered for the {grant_type} grant"),
            ));
        }
        let result = match grant {
            GrantType::AuthorizationCode => self.code_grant(&client, &form).await,
            GrantType::RefreshToken => self.refresh_grant(&client, &form).await,
            GrantType::DeviceCode => self.device_grant(&client, &form).await,
        };
        if result.is_ok() {
            *proven = Some(client.client_id);
        }
        result
    }

    /// Mint an access token (opaque, or a signed JWT when configured and the
    /// grant is known) and, if the client may refresh, a refresh token.
    pub(super) async fn mint_pair(
        &self,
        client: &Client,
        now: i64,
        grant: Option<GrantFacts<'_>>,
    ) -> Result<(NewToken, Option<NewToken>, TokenPair), OAuthError> {
        let access = match (&self.jwt, grant) {
            (Some(keys), Some(g)) => {
                let user = self.store.get_user(g.user_id).await?.ok_or_else(|| {
                    OAuthError::invalid_grant("the user of this grant no longer exists")
                })?;
                let claims = crate::jwt::AccessClaims {
                    iss: self.config.issuer.clone(),
                    sub: user.subject,
                    aud: g.resource.to_owned(),
                    client_id: client.client_id.clone(),
                    scope: g.scope.to_owned(),
                    iat: now,
                    exp: now + self.config.access_token_ttl,
                    jti: xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<16>()),
                };
                let jwt = keys.sign(&claims, now).await.map_err(|e| {
                    tracing::error!(error = %e, "cannot sign an access token");
                    OAuthError::new(ErrorCode::ServerError, "cannot sign the access token")
                })?;
                NewToken::from_plaintext(jwt)
            }
            _ => NewToken::generate(TokenKind::AccessToken),
        };
        let refresh = client
            .allows_refresh()
            .then(|| NewToken::generate(TokenKind::RefreshToken));
        let pair = TokenPair {
            access: access.hash().clone(),
            access_expires_at: now + self.config.access_token_ttl,
            refresh: refresh.as_ref().map(|r| r.hash().clone()),
            refresh_expires_at: now + self.config.refresh_token_ttl,
        };
        Ok((access, refresh, pair))
    }

    pub(super) fn response(
        &self,
        access: &NewToken,
        refresh: Option<&NewToken>,
        scope: &str,
    ) -> TokenResponse {
        TokenResponse {
            access_token: access.plaintext().to_owned(),
            token_type: "Bearer".into(),
            expires_in: self.config.access_token_ttl,
            refresh_token: refresh.map(|r| r.plaintext().to_owned()),
            scope: scope.to_owned(),
        }
    }
}
