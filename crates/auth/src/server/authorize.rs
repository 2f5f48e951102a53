//! `GET /authorize`: the request checked (client, redirect URI, PKCE,
//! resource, scope), stored as a pending authorization, and the consent
//! page shown. Before consent, errors go back to the redirect URI only
//! for clients the operator registered (RFC 9700 §4.11.2).

use super::*;

const CONSENT_COOKIE: &str = "xmcp-consent";

impl AuthServer {
    /// `GET /authorize` with its raw query string.
    #[instrument(skip_all)]
    pub async fn authorize(&self, query: &str) -> PageOutcome {
        let params = match Params::parse(query) {
            Ok(p) => p,
            Err(e) => {
                return PageOutcome::Error(ErrorView::bad_request(format!(
                    "{e}. Each parameter may appear only once."
                )));
            }
        };
        if let Some((name, limit)) = params.too_long(AUTHORIZE_LIMITS, MAX_PARAMETER) {
            return PageOutcome::Error(ErrorView::bad_request(format!(
                "The request's `{name}` is too long (at most {limit} characters, and a repeated parameter at most {} times).",
                crate::params::MAX_REPEATS
            )));
        }
        let Some(client_id) = params.get("client_id") else {
            return PageOutcome::Error(ErrorView::bad_request("The request has no client_id."));
        };
        let client = match self.resolve_client(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return PageOutcome::Error(ErrorView::bad_request(
                    "This application is not registered with this server. Return to it and connect again.",
                ));
            }
            Err(e) if e.code == ErrorCode::InvalidClient => {
                return PageOutcome::Error(ErrorView::bad_request(e.description));
            }
            Err(e) => return PageOutcome::Error(ErrorView::unavailable(e.description)),
        };
        let redirect_uri = match params.get("redirect_uri") {
            Some(r) if client.redirect_allowed(r) => r.to_owned(),
            Some(_) => {
                return PageOutcome::Error(ErrorView::bad_request(
                    "The redirect URI does not match any registered for this application.",
                ));
            }
            None if client.redirect_uris.len() == 1
                && !crate::redirect::all_loopback(&client.redirect_uris) =>
            {
                client.redirect_uris[0].clone()
            }
            None => {
                return PageOutcome::Error(ErrorView::bad_request(
                    "The request has no redirect_uri.",
                ));
            }
        };
        let state = params.get("state");
        // From here on, errors go back to the client's (verified) redirect
        // URI, but only for a client the operator registered: anyone can
        // register a client (dynamically, or with a metadata document), and
        // an error redirect before the user has seen the consent page would
        // make this server an open redirector to its URI (RFC 9700
        // §4.11.2). Those are shown an error page instead.
        let fail = |code: ErrorCode, desc: &str| {
            if client.kind == crate::client::ClientKind::Static {
                self.error_redirect(&redirect_uri, state, code, desc)
            } else {
                PageOutcome::Error(ErrorView::bad_request(format!(
                    "The application's request is invalid ({}: {desc}). Return to it and connect again.",
                    code.as_str()
                )))
            }
        };

        match params.get("response_type") {
            Some("code") => {}
            Some(_) => {
                return fail(
                    ErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                );
            }
            None => return fail(ErrorCode::InvalidRequest, "response_type is required"),
        }
        let Some(challenge) = params.get("code_challenge") else {
            return fail(
                ErrorCode::InvalidRequest,
                "code_challenge is required (PKCE with S256)",
            );
        };
        match params.get("code_challenge_method") {
            Some("S256") => {}
            Some(_) => {
                return fail(
                    ErrorCode::InvalidRequest,
                    "transform algorithm not supported: code_challenge_method must be S256",
                );
            }
            None => {
                return fail(
                    ErrorCode::InvalidRequest,
                    "code_challenge_method is required and must be S256",
                );
            }
        }
        if !is_s256_challenge(challenge) {
            return fail(
                ErrorCode::InvalidRequest,
                "code_challenge must be a base64url-encoded SHA-256 digest (43 characters)",
            );
        }
        let resource = match self.requested_resource(params.all("resource")) {
            Ok(r) => r,
            Err(desc) => return fail(ErrorCode::InvalidTarget, &desc),
        };
        let scope = match self.requested_scope(params.get("scope"), &client) {
            Ok(s) => s,
            Err(desc) => return fail(ErrorCode::InvalidScope, &desc),
        };

        let now = self.now();
        let redirect_uri_explicit = params.get("redirect_uri").is_some();
        self.ask_consent(&client, false, |id, csrf| PendingAuthorization {
            id,
            client_id: client.client_id.clone(),
            redirect_uri,
            redirect_uri_explicit,
            scope,
            state: state.map(str::to_owned),
            code_challenge: challenge.to_owned(),
            resource,
            csrf,
            created_at: now,
            expires_at: now + self.config.pending_ttl,
            upstream_state: None,
            upstream_verifier_sealed: None,
            device_code: None,
        })
        .await
    }

    /// Keep the pending authorization `make` builds from its id and CSRF
    /// token digests, and show the consent page for it, with the cookie
    /// that ties it to this browser: how `/authorize` and `/device` end.
    pub(super) async fn ask_consent(
        &self,
        client: &Client,
        device: bool,
        make: impl FnOnce(TokenHash, TokenHash) -> PendingAuthorization,
    ) -> PageOutcome {
        let handle = NewToken::generate(TokenKind::PendingAuthorization);
        let csrf = NewToken::generate(TokenKind::Csrf);
        let pending = make(handle.hash().clone(), csrf.hash().clone());
        if let Err(e) = self.store.insert_pending(&pending).await {
            return PageOutcome::Error(ErrorView::unavailable(OAuthError::store(e).description));
        }
        let cookie = Cookie {
            name: self.consent_cookie_name(handle.hash()),
            value: Some(self.cookies.sign(handle.plaintext())),
            max_age: self.config.pending_ttl,
            secure: self.config.is_https(),
        };
        let view = ConsentView::new(
            client,
            // A device flow redirects nowhere: the page names no target.
            if device { "" } else { &pending.redirect_uri },
            &pending.scope,
            handle.plaintext(),
            csrf.plaintext(),
            self.idp.display_name(),
            self.idp.login_form(),
            None,
        )
        .as_configured(&self.config);
        PageOutcome::Consent {
            view: Box::new(if device { view.for_device() } else { view }),
            cookies: vec![cookie],
        }
    }

    pub(super) fn consent_cookie_name(&self, handle: &TokenHash) -> String {
        let base = format!("{CONSENT_COOKIE}-{}", &handle.as_str()[..12]);
        if self.config.is_https() {
            format!("__Host-{base}")
        } else {
            base
        }
    }

    pub(super) fn requested_resource(&self, requested: &[String]) -> Result<String, String> {
        match requested {
            [] => Ok(self.config.resource.clone()),
            [one] if self.accepts_resource(one) => Ok(one.clone()),
            [one] => Err(format!(
                "resource `{one}` is not served by this authorization server; use {}",
                self.config.resource
            )),
            _ => Err("only one resource may be requested".into()),
        }
    }

    /// The scope an authorization asks for, checked against what this
    /// server supports. A request that names none (`offline_access` alone
    /// counts as none) gets the scope the client registered, else the
    /// reading scopes: never every scope by default, so a client that did
    /// not ask cannot write. It can ask later, when a tool's
    /// `insufficient_scope` challenge names the scope it needs.
    pub(super) fn requested_scope(
        &self,
        requested: Option<&str>,
        client: &Client,
    ) -> Result<String, String> {
        let named = |scope: &str| -> Result<Vec<String>, String> {
            let mut out: Vec<String> = Vec::new();
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                if s != "offline_access" && !self.config.scopes.iter().any(|k| k == s) {
                    return Err(format!("scope `{s}` is not supported"));
                }
                // `offline_access` only signals the wish for a refresh
                // token, which we issue to every client registered for the
                // refresh grant.
                if s != "offline_access" && !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
            Ok(out)
        };
        let asked = named(requested.unwrap_or_default())?;
        if !asked.is_empty() {
            return Ok(asked.join(" "));
        }
        // A registered scope was checked at registration, but the server's
        // scopes may have changed since: keep what is still supported.
        let registered: Vec<&str> = client
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| self.config.scopes.iter().any(|k| k == s))
            .collect();
        if !registered.is_empty() {
            return Ok(registered.join(" "));
        }
        Ok(self.config.default_scope())
    }

    // ----- /consent ------------------------------------------------------
}

/// An S256 challenge is the base64url (no padding) of 32 bytes: 43 characters.
fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
