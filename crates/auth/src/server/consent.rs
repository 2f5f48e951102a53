//! `POST /consent`: the user's answer to the consent page. Approving
//! starts the identity provider's sign-in, or checks a local password,
//! with wrong guesses counted per request and per account in the store.

use super::*;

/// Wrong passwords one authorization request may submit before it is
/// cancelled.
const GUESSES_PER_REQUEST: u32 = 5;

/// Wrong passwords one account may receive at once, from anywhere; then one
/// more per [`ACCOUNT_GUESS_INTERVAL_US`].
const GUESSES_PER_ACCOUNT: u32 = 10;
const ACCOUNT_GUESS_INTERVAL_US: i64 = 15 * 60 * 1_000_000;

/// The rate buckets a password guess counts against.
struct GuessBuckets {
    request: String,
    account: String,
}

/// Store keys for the guesses of one request and one account. Usernames
/// are compared as the user typed them but counted case-insensitively, and
/// hashed so that the key has a bounded length.
fn guess_buckets(request: &TokenHash, username: &str) -> GuessBuckets {
    GuessBuckets {
        request: format!("login:request:{}", request.as_str()),
        account: format!(
            "login:account:{}",
            TokenHash::of(&username.to_lowercase()).as_str()
        ),
    }
}

enum Guesses {
    Left,
    /// This request made too many wrong guesses.
    RequestSpent,
    /// This account had too many wrong guesses: seconds to wait.
    AccountSpent(i64),
}

impl AuthServer {
    /// `POST /consent` with the form body and the request's cookies.
    #[instrument(skip_all)]
    pub async fn consent(&self, body: &str, cookies: &[(String, String)]) -> PageOutcome {
        let Ok(form) = Params::parse(body) else {
            return PageOutcome::Error(ErrorView::bad_request("Malformed form submission."));
        };
        let (Some(handle), Some(csrf)) = (form.get("request_id"), form.get("csrf_token")) else {
            return PageOutcome::Error(ErrorView::bad_request(
                "The form is missing its request id or CSRF token. Start again from the application.",
            ));
        };
        let handle_hash = TokenHash::of(handle);
        let cookie_name = self.consent_cookie_name(&handle_hash);
        let bound = cookies
            .iter()
            .filter(|(n, _)| *n == cookie_name)
            .any(|(_, v)| {
                self.cookies
                    .verify(v)
                    .is_some_and(|h| xmcp_crypto::constant_time_eq(h.as_bytes(), handle.as_bytes()))
            });
        if !bound {
            return PageOutcome::Error(ErrorView::forbidden(
                "This consent form was not opened in this browser (its cookie is missing). Start again from the application.",
            ));
        }
        let now = self.now();
        let pending = match self.store.get_pending(&handle_hash, now).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return PageOutcome::Error(ErrorView::bad_request(
                    "This authorization request has expired or was already completed. Return to the application and start again.",
                ));
            }
            Err(e) => {
                return PageOutcome::Error(ErrorView::unavailable(
                    OAuthError::store(e).description,
                ));
            }
        };
        if !xmcp_crypto::constant_time_eq(
            TokenHash::of(csrf).as_str().as_bytes(),
            pending.csrf.as_str().as_bytes(),
        ) {
            return PageOutcome::Error(ErrorView::forbidden(
                "The CSRF token does not match. Start again from the application.",
            ));
        }
        let clear = Cookie {
            name: cookie_name,
            value: None,
            max_age: 0,
            secure: self.config.is_https(),
        };
        let state = pending.state.as_deref();
        if form.get("action") != Some("approve") {
            if pending.device_code.is_some() {
                return self
                    .abandon(
                        &pending,
                        ErrorCode::AccessDenied,
                        "the user denied the request",
                        clear,
                        now,
                    )
                    .await;
            }
            return match self.store.take_pending(&handle_hash, now).await {
                Ok(_) => {
                    let mut out = self.error_redirect(
                        &pending.redirect_uri,
                        state,
                        ErrorCode::AccessDenied,
                        "the user denied the request",
                    );
                    if let PageOutcome::Redirect { cookies, .. } = &mut out {
                        cookies.push(clear);
                    }
                    out
                }
                Err(e) => {
                    PageOutcome::Error(ErrorView::unavailable(OAuthError::store(e).description))
                }
            };
        }
        let callback = self.config.upstream_callback_url();
        let ctx = LoginContext {
            scope: &pending.scope,
            callback_url: &callback,
            now,
        };
        // Password guesses are counted in the store, so every instance
        // enforces one limit: per pending request (then it is cancelled)
        // and per account (then it waits).
        let account = (self.idp.login_form() == LoginForm::Password)
            .then(|| guess_buckets(&handle_hash, form.get("username").unwrap_or_default()));
        if let Some(buckets) = &account {
            match self.guesses_left(buckets, now).await {
                Ok(Guesses::Left) => {}
                Ok(Guesses::RequestSpent) => {
                    if let Err(e) = self.store.take_pending(&handle_hash, now).await {
                        return PageOutcome::Error(ErrorView::unavailable(
                            OAuthError::store(e).description,
                        ));
                    }
                    return PageOutcome::Error(ErrorView::forbidden(
                        "Too many wrong passwords for this request. Start again from the application.",
                    ));
                }
                Ok(Guesses::AccountSpent(wait)) => {
                    return self
                        .consent_again(
                            &pending,
                            handle,
                            csrf,
                            format!(
                                "Too many failed sign-ins to this account. Try again in {} minutes.",
                                ((wait + 59) / 60).max(1)
                            ),
                        )
                        .await;
                }
                Err(e) => {
                    return PageOutcome::Error(ErrorView::unavailable(
                        OAuthError::store(e).description,
                    ));
                }
            }
        }
        match self.idp.begin(&ctx, &form).await {
            LoginStep::Authenticated(identity) => {
                match self.finish_login(&pending, &identity, None, now).await {
                    Ok(out) => out.with_cookie(clear),
                    Err(view) => PageOutcome::Error(view),
                }
            }
            LoginStep::Rejected(message) => {
                if let Some(buckets) = &account
                    && let Err(e) = self.count_guess(buckets, now).await
                {
                    return PageOutcome::Error(ErrorView::unavailable(
                        OAuthError::store(e).description,
                    ));
                }
                self.consent_again(&pending, handle, csrf, message).await
            }
            LoginStep::Retry(message) => self.consent_again(&pending, handle, csrf, message).await,
            LoginStep::Redirect {
                url,
                state: up_state,
                verifier,
            } => {
                let sealed = self.keyring.seal(
                    verifier.expose_secret().as_bytes(),
                    pending_aad(&handle_hash).as_bytes(),
                );
                match self
                    .store
                    .set_pending_upstream(
                        &handle_hash,
                        &TokenHash::of(up_state.expose_secret()),
                        &sealed,
                        now,
                    )
                    .await
                {
                    Ok(true) => PageOutcome::Redirect {
                        location: url,
                        cookies: vec![],
                    },
                    Ok(false) => PageOutcome::Error(ErrorView::bad_request(
                        "This authorization request has expired. Start again from the application.",
                    )),
                    Err(e) => {
                        PageOutcome::Error(ErrorView::unavailable(OAuthError::store(e).description))
                    }
                }
            }
        }
    }

    /// The consent page again, with a message for the user.
    async fn consent_again(
        &self,
        pending: &PendingAuthorization,
        handle: &str,
        csrf: &str,
        message: String,
    ) -> PageOutcome {
        let client = match self.resolve_client(&pending.client_id).await {
            Ok(Some(c)) => c,
            _ => {
                return PageOutcome::Error(ErrorView::bad_request(
                    "The application is no longer registered.",
                ));
            }
        };
        let mut view = ConsentView::new(
            &client,
            &pending.redirect_uri,
            &pending.scope,
            handle,
            csrf,
            self.idp.display_name(),
            self.idp.login_form(),
            Some(message),
        )
        .as_configured(&self.config);
        if pending.device_code.is_some() {
            view = view.for_device();
        }
        PageOutcome::Consent {
            view: Box::new(view),
            cookies: vec![],
        }
    }

    /// Whether another password guess is allowed, counting nothing.
    async fn guesses_left(
        &self,
        b: &GuessBuckets,
        now: i64,
    ) -> Result<Guesses, xmcp_store::StoreError> {
        let now_us = now.saturating_mul(1_000_000);
        let request = self.request_guess_interval();
        if self
            .store
            .peek_rate(&b.request, now_us, request, GUESSES_PER_REQUEST)
            .await?
            .is_some()
        {
            return Ok(Guesses::RequestSpent);
        }
        Ok(
            match self
                .store
                .peek_rate(
                    &b.account,
                    now_us,
                    ACCOUNT_GUESS_INTERVAL_US,
                    GUESSES_PER_ACCOUNT,
                )
                .await?
            {
                Some(wait_us) => Guesses::AccountSpent(wait_us / 1_000_000),
                None => Guesses::Left,
            },
        )
    }

    /// Count a wrong password against the request and the account.
    async fn count_guess(&self, b: &GuessBuckets, now: i64) -> Result<(), xmcp_store::StoreError> {
        let now_us = now.saturating_mul(1_000_000);
        let request = self.request_guess_interval();
        self.store
            .take_rate(&b.request, now_us, request, GUESSES_PER_REQUEST)
            .await?;
        self.store
            .take_rate(
                &b.account,
                now_us,
                ACCOUNT_GUESS_INTERVAL_US,
                GUESSES_PER_ACCOUNT,
            )
            .await?;
        Ok(())
    }

    /// A request's guesses do not come back while it lives.
    fn request_guess_interval(&self) -> i64 {
        self.config.pending_ttl.max(1).saturating_mul(1_000_000)
    }

    // ----- /upstream/callback ----------------------------------------------
}
