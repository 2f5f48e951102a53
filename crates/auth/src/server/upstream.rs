//! The identity provider's callback: the upstream code exchanged, the
//! user found or created, their upstream tokens sealed, and the
//! authorization code (or device approval) issued.

use super::*;

impl AuthServer {
    /// The upstream identity provider (X, OIDC) redirected the browser back
    /// with `code` and our `state`, or with an `error`.
    ///
    /// The `state` is single-use and server-side (it finds the pending
    /// authorization, which is consumed when the flow ends), and the callback
    /// must come from the browser that gave consent (the consent cookie).
    /// Once the pending authorization is known, its redirect URI is trusted,
    /// so every failure from then on reaches the client as an OAuth error
    /// redirect; before that, the user gets an error page.
    #[instrument(skip_all)]
    pub async fn upstream_callback(
        &self,
        query: &str,
        cookies: &[(String, String)],
    ) -> PageOutcome {
        let Ok(params) = Params::parse(query) else {
            return PageOutcome::Error(ErrorView::bad_request("Malformed sign-in response."));
        };
        let Some(state) = params.get("state") else {
            return PageOutcome::Error(ErrorView::bad_request(
                "The sign-in response has no state. Return to the application and start again.",
            ));
        };
        let now = self.now();
        let pending = match self
            .store
            .find_pending_by_upstream_state(&TokenHash::of(state))
            .await
        {
            Ok(Some(p)) => p,
            Ok(None) => {
                return PageOutcome::Error(ErrorView::bad_request(
                    "This sign-in is unknown or was already completed. Return to the application and start again.",
                ));
            }
            Err(e) => {
                return PageOutcome::Error(ErrorView::unavailable(
                    OAuthError::store(e).description,
                ));
            }
        };
        let cookie_name = self.consent_cookie_name(&pending.id);
        let bound = cookies
            .iter()
            .filter(|(n, _)| *n == cookie_name)
            .filter_map(|(_, v)| self.cookies.verify(v))
            .any(|handle| {
                xmcp_crypto::constant_time_eq(
                    TokenHash::of(handle).as_str().as_bytes(),
                    pending.id.as_str().as_bytes(),
                )
            });
        if !bound {
            return PageOutcome::Error(ErrorView::forbidden(
                "This sign-in was not started in this browser (its cookie is missing). Start again from the application.",
            ));
        }
        let clear = Cookie {
            name: cookie_name,
            value: None,
            max_age: 0,
            secure: self.config.is_https(),
        };
        if pending.expires_at <= now {
            return self
                .abandon(
                    &pending,
                    ErrorCode::AccessDenied,
                    "the sign-in took too long and expired; start again",
                    clear,
                    now,
                )
                .await;
        }
        if let Some(error) = params.get("error") {
            let (code, description) = if error == "access_denied" {
                (
                    ErrorCode::AccessDenied,
                    format!("the user denied access at {}", self.idp.display_name()),
                )
            } else {
                (
                    ErrorCode::ServerError,
                    format!(
                        "{} answered the sign-in with the error `{}`",
                        self.idp.display_name(),
                        error.chars().take(64).collect::<String>()
                    ),
                )
            };
            return self.abandon(&pending, code, &description, clear, now).await;
        }
        let (Some(code), Some(sealed)) = (
            params.get("code"),
            pending.upstream_verifier_sealed.as_deref(),
        ) else {
            return self
                .abandon(
                    &pending,
                    ErrorCode::ServerError,
                    "the identity provider's response had no authorization code",
                    clear,
                    now,
                )
                .await;
        };
        let verifier = match self
            .keyring
            .open(sealed, pending_aad(&pending.id).as_bytes())
        {
            Ok(v) => {
                secrecy::SecretString::from(String::from_utf8_lossy(v.expose_secret()).into_owned())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open the sealed upstream PKCE verifier");
                return self
                    .abandon(
                        &pending,
                        ErrorCode::ServerError,
                        "the sign-in could not be completed",
                        clear,
                        now,
                    )
                    .await;
            }
        };
        let callback = self.config.upstream_callback_url();
        let ctx = LoginContext {
            scope: &pending.scope,
            callback_url: &callback,
            now,
        };
        let login = match self.idp.complete(code, &verifier, &ctx).await {
            Ok(login) => login,
            Err(e) => {
                warn!(error = %e, client_id = %pending.client_id, "upstream sign-in failed");
                let code = match &e {
                    UpstreamError::AccessDenied => ErrorCode::AccessDenied,
                    UpstreamError::Provider(_) => ErrorCode::ServerError,
                    UpstreamError::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
                };
                return self
                    .abandon(&pending, code, &e.to_string(), clear, now)
                    .await;
            }
        };
        match self
            .finish_login(&pending, &login.identity, login.tokens, now)
            .await
        {
            Ok(out) => out.with_cookie(clear),
            Err(view) => PageOutcome::Error(view),
        }
    }

    /// End a pending authorization with an error redirect to its client
    /// (for a device authorization: a page, and a denial if the user said no).
    pub(super) async fn abandon(
        &self,
        pending: &PendingAuthorization,
        code: ErrorCode,
        description: &str,
        clear: Cookie,
        now: i64,
    ) -> PageOutcome {
        if let Err(e) = self.store.take_pending(&pending.id, now).await {
            return PageOutcome::Error(ErrorView::unavailable(OAuthError::store(e).description));
        }
        if let Some(device) = &pending.device_code {
            return self
                .abandon_device(device, code, description, now)
                .await
                .with_cookie(clear);
        }
        let mut out = self.error_redirect(
            &pending.redirect_uri,
            pending.state.as_deref(),
            code,
            description,
        );
        if let PageOutcome::Redirect { cookies, .. } = &mut out {
            cookies.push(clear);
        }
        out
    }

    /// The user is authenticated: record them, their upstream credentials
    /// (sealed, bound to their row) and their consent, consume the pending
    /// authorization, mint a code and build the client redirect.
    pub(super) async fn finish_login(
        &self,
        pending: &PendingAuthorization,
        identity: &UserIdentity,
        upstream: Option<crate::upstream::TokenSet>,
        now: i64,
    ) -> Result<PageOutcome, ErrorView> {
        let unavailable = |e: StoreError| ErrorView::unavailable(OAuthError::store(e).description);
        let user = self
            .store
            .upsert_user(identity, now)
            .await
            .map_err(unavailable)?;
        if let Some(tokens) = upstream {
            let row = crate::upstream::vault::sealed_row(
                &self.keyring,
                &user.id,
                self.idp.name(),
                &tokens,
                now,
            );
            self.store
                .put_upstream_tokens(&row)
                .await
                .map_err(unavailable)?;
        }
        self.store
            .record_consent(&Consent {
                user_id: user.id.clone(),
                client_id: pending.client_id.clone(),
                redirect_uri: pending.redirect_uri.clone(),
                scope: pending.scope.clone(),
                created_at: now,
            })
            .await
            .map_err(unavailable)?;
        let Some(pending) = self
            .store
            .take_pending(&pending.id, now)
            .await
            .map_err(unavailable)?
        else {
            return Err(ErrorView::bad_request(
                "This authorization request was already completed. Return to the application.",
            ));
        };
        if let Some(device) = &pending.device_code {
            return self.approve_device(device, &pending, &user, now).await;
        }
        let code = NewToken::generate(TokenKind::AuthorizationCode);
        self.store
            .insert_code(&AuthorizationCode {
                hash: code.hash().clone(),
                kind: CodeKind::Redirect,
                client_id: pending.client_id.clone(),
                redirect_uri: pending.redirect_uri.clone(),
                redirect_uri_explicit: pending.redirect_uri_explicit,
                code_challenge: pending.code_challenge.clone(),
                resource: pending.resource.clone(),
                scope: pending.scope.clone(),
                user_id: user.id.clone(),
                created_at: now,
                expires_at: now + self.config.code_ttl,
                used_at: None,
            })
            .await
            .map_err(unavailable)?;
        info!(user_id = %user.id, client_id = %pending.client_id, "authorization code issued");
        let mut params = vec![("code", code.plaintext())];
        if let Some(s) = pending.state.as_deref() {
            params.push(("state", s));
        }
        Ok(PageOutcome::Redirect {
            location: self.redirect_with(&pending.redirect_uri, &params),
            cookies: vec![],
        })
    }

    // ----- client authentication ------------------------------------------
}
