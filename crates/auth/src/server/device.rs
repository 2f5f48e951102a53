//! RFC 8628, the device authorization grant: a client that cannot open a
//! browser (or receive a redirect) asks `/device_authorization` for a device
//! code and a short user code, shows the user code, and polls `/token`.
//! The user enters the code at `/device`, which leads to the same consent
//! page and sign-in (X, OIDC, local) as `/authorize`; approving stores a
//! one-use code under the device code's hash, which the token endpoint
//! redeems like an authorization code.

use super::*;
use crate::client::DEVICE_GRANT;

/// Letters of user codes: no vowels (no words), no look-alikes (RFC 8628 §6.1).
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// The `/device_authorization` success body (RFC 8628 §3.2).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

impl std::fmt::Debug for DeviceAuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorizationResponse")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A new user code, `XXXX-XXXX` (about 34.6 bits).
fn new_user_code() -> String {
    let mut out = String::with_capacity(USER_CODE_LEN + 1);
    while out.len() < USER_CODE_LEN + 1 {
        for b in xmcp_crypto::random_bytes::<16>() {
            // 240 = 12 × 20: rejecting larger bytes keeps letters uniform.
            if b >= 240 || out.len() == USER_CODE_LEN + 1 {
                continue;
            }
            if out.len() == USER_CODE_LEN / 2 {
                out.push('-');
            }
            out.push(USER_CODE_ALPHABET[usize::from(b % 20)] as char);
        }
    }
    out
}

/// The canonical form of what a user typed: letters of the alphabet only,
/// upper case (`bcdf-ghjk`, `BCDF GHJK` and `BCDFGHJK` are one code).
pub(crate) fn normalize_user_code(typed: &str) -> Option<String> {
    let letters: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (letters.len() == USER_CODE_LEN && letters.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(letters)
}

impl AuthServer {
    /// `POST /device_authorization` (RFC 8628 §3.1).
    #[instrument(skip_all)]
    pub async fn device_authorization(
        &self,
        creds: &ClientCredentials,
        body: &str,
    ) -> Result<DeviceAuthorizationResponse, OAuthError> {
        let form = Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
        if let Some((name, limit)) = form.too_long(super::AUTHORIZE_LIMITS, super::MAX_PARAMETER) {
            return Err(OAuthError::invalid_request(format!(
                "`{name}` is too long (at most {limit} characters)"
            )));
        }
        let client = self.authenticate_client(creds, &form).await?;
        if !client.allows(GrantType::DeviceCode) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client is not registered for the {DEVICE_GRANT} grant"),
            ));
        }
        let scope = self
            .requested_scope(form.get("scope"), &client)
            .map_err(|d| OAuthError::new(ErrorCode::InvalidScope, d))?;
        let resource = self
            .requested_resource(form.all("resource"))
            .map_err(|d| OAuthError::new(ErrorCode::InvalidTarget, d))?;
        let now = self.now();
        // A user-code collision is rare (2^34 codes); try a few times.
        for _ in 0..5 {
            let device_code = NewToken::generate(TokenKind::DeviceCode);
            let user_code = new_user_code();
            let canonical = normalize_user_code(&user_code).unwrap_or_default();
            let record = DeviceAuthorization {
                device_code: device_code.hash().clone(),
                user_code: TokenHash::of(&canonical),
                client_id: client.client_id.clone(),
                scope: scope.clone(),
                resource: resource.clone(),
                created_at: now,
                expires_at: now + self.config.device_code_ttl,
                interval: self.config.device_poll_interval,
                last_polled_at: None,
                status: DeviceStatus::Pending,
                user_id: None,
            };
            match self.store.insert_device(&record).await {
                Ok(()) => {
                    info!(client_id = %client.client_id, "device authorization started");
                    let verification_uri = self.endpoint("/device");
                    return Ok(DeviceAuthorizationResponse {
                        device_code: device_code.plaintext().to_owned(),
                        verification_uri_complete: format!(
                            "{verification_uri}?user_code={user_code}"
                        ),
                        verification_uri,
                        user_code,
                        expires_in: self.config.device_code_ttl,
                        interval: self.config.device_poll_interval,
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "could not allocate a user code; try again",
        ))
    }

    /// `GET /device`: the code entry page, prefilled from
    /// `verification_uri_complete`.
    pub fn device_page(&self, query: &str) -> String {
        let prefill = Params::parse(query)
            .ok()
            .and_then(|p| p.get("user_code").map(str::to_owned));
        crate::html::device_code_page(prefill.as_deref(), None)
    }

    /// `POST /device`: the user entered a code. A valid one leads to the
    /// consent page, bound to this browser like `/authorize`; anything else
    /// shows the entry page again with the reason.
    #[instrument(skip_all)]
    pub async fn device_submit(&self, body: &str) -> Result<PageOutcome, String> {
        let again = |typed: Option<&str>, m: &str| crate::html::device_code_page(typed, Some(m));
        let Ok(form) = Params::parse(body) else {
            return Err(again(None, "Malformed form submission."));
        };
        let typed = form.get("user_code").unwrap_or("");
        let Some(canonical) = normalize_user_code(typed) else {
            return Err(again(
                Some(typed),
                "That is not a valid code: it has 8 letters, like BCDF-GHJK.",
            ));
        };
        let now = self.now();
        let device = match self
            .store
            .find_device_by_user_code(&TokenHash::of(&canonical), now)
            .await
        {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(again(
                    Some(typed),
                    "This code is unknown, expired or already used. Check it, or start again on your device.",
                ));
            }
            Err(e) => {
                return Ok(PageOutcome::Error(ErrorView::unavailable(
                    OAuthError::store(e).description,
                )));
            }
        };
        let client = match self.resolve_client(&device.client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Ok(PageOutcome::Error(ErrorView::bad_request(
                    "The application that asked for this code is no longer registered.",
                )));
            }
            Err(e) => return Ok(PageOutcome::Error(ErrorView::unavailable(e.description))),
        };
        let expires_at = now + self.config.pending_ttl.min(device.expires_at - now);
        let outcome = self
            .ask_consent(&client, true, |id, csrf| PendingAuthorization {
                id,
                client_id: client.client_id.clone(),
                // Never a redirect target: device flows end on a page here.
                redirect_uri: String::new(),
                redirect_uri_explicit: false,
                scope: device.scope.clone(),
                state: None,
                code_challenge: String::new(),
                resource: device.resource.clone(),
                csrf,
                created_at: now,
                expires_at,
                upstream_state: None,
                upstream_verifier_sealed: None,
                device_code: Some(device.device_code.clone()),
            })
            .await;
        Ok(outcome)
    }

    /// The user approved (and signed in): the device's next poll gets tokens.
    pub(super) async fn approve_device(
        &self,
        device_code: &TokenHash,
        pending: &PendingAuthorization,
        user: &User,
        now: i64,
    ) -> Result<PageOutcome, ErrorView> {
        let code = AuthorizationCode {
            hash: device_code.clone(),
            kind: CodeKind::Device,
            client_id: pending.client_id.clone(),
            redirect_uri: String::new(),
            redirect_uri_explicit: false,
            code_challenge: String::new(),
            resource: pending.resource.clone(),
            scope: pending.scope.clone(),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + self.config.device_code_ttl,
            used_at: None,
        };
        match self
            .store
            .approve_device(device_code, &user.id, &code, now)
            .await
        {
            Ok(true) => {
                info!(user_id = %user.id, client_id = %pending.client_id, "device authorization approved");
                Ok(PageOutcome::Notice {
                    view: ErrorView::notice(
                        "Device connected",
                        "You can close this page and return to your device: it now has access.",
                    ),
                    cookies: vec![],
                })
            }
            Ok(false) => Err(ErrorView::bad_request(
                "This code expired or was already used. Start again on your device.",
            )),
            Err(e) => Err(ErrorView::unavailable(OAuthError::store(e).description)),
        }
    }

    /// A device authorization's sign-in ended without approval.
    pub(super) async fn abandon_device(
        &self,
        device_code: &TokenHash,
        code: ErrorCode,
        description: &str,
        now: i64,
    ) -> PageOutcome {
        if code == ErrorCode::AccessDenied
            && let Err(e) = self.store.deny_device(device_code, now).await
        {
            return PageOutcome::Error(ErrorView::unavailable(OAuthError::store(e).description));
        }
        let message = if code == ErrorCode::AccessDenied {
            "Access was denied; your device will be told.".to_owned()
        } else {
            format!("The sign-in did not finish ({description}). Enter the code again to retry.")
        };
        PageOutcome::Notice {
            view: ErrorView {
                status: if code == ErrorCode::AccessDenied {
                    200
                } else {
                    502
                },
                title: "The device was not connected".into(),
                message,
            },
            cookies: vec![],
        }
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4).
    pub(super) async fn device_grant(
        &self,
        client: &Client,
        form: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let device_code = form
            .get("device_code")
            .ok_or_else(|| OAuthError::invalid_request("device_code is required"))?;
        let hash = TokenHash::of(device_code);
        let now = self.now();
        let device = match self.store.poll_device(&hash, now).await? {
            DevicePoll::NotFound => {
                return Err(OAuthError::invalid_grant("the device_code is unknown"));
            }
            DevicePoll::SlowDown { interval } => {
                return Err(OAuthError::new(
                    ErrorCode::SlowDown,
                    format!("polling too fast: wait {interval} seconds between requests"),
                ));
            }
            DevicePoll::Polled(d) => d,
        };
        if device.client_id != client.client_id {
            return Err(OAuthError::invalid_grant(
                "the device_code was issued to another client",
            ));
        }
        if device.status != DeviceStatus::Approved && device.expires_at <= now {
            return Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device_code expired; start a new device authorization",
            ));
        }
        check_token_resource(form, &device.resource)?;
        match device.status {
            DeviceStatus::Pending => Err(OAuthError::new(
                ErrorCode::AuthorizationPending,
                "the user has not yet approved this device",
            )),
            DeviceStatus::Denied => Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the user denied this device",
            )),
            DeviceStatus::Approved => {
                let Some(user_id) = device.user_id.as_deref() else {
                    return Err(OAuthError::store(StoreError::Corrupt(
                        "approved device authorization without a user".into(),
                    )));
                };
                let facts = GrantFacts {
                    user_id,
                    scope: &device.scope,
                    resource: &device.resource,
                };
                self.redeem_code(client, &hash, facts, now).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_well_formed_and_normalize_back() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 9);
            assert_eq!(&c[4..5], "-");
            let n = normalize_user_code(&c).unwrap();
            assert_eq!(n.len(), 8);
            assert_eq!(normalize_user_code(&c.to_lowercase()), Some(n.clone()));
            assert_eq!(normalize_user_code(&format!(" {n} ")), Some(n.clone()));
        }
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "BCDF_GHJK",
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }
}
