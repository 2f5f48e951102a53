//! The authorization server's protocol logic, independent of any HTTP
//! framework: each endpoint takes parsed inputs and returns an outcome that
//! the routes (or another framework) turn into a response.

use crate::cimd::{self, CimdResolver};
use crate::client::{Client, ClientKind, ClientMetadata};
use crate::config::{AuthConfig, Clock, TokenAuthMethod};
use crate::error::{ErrorCode, OAuthError};
use crate::html::{ConsentView, ErrorView};
use crate::identity::{
    IdentityProvider, LoginContext, LoginForm, LoginStep, UpstreamCredentials, UpstreamError,
    upstream_aad,
};
use crate::params::Params;
use crate::principal::Principal;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tracing::{info, instrument, warn};
use url::Url;
use xmcp_crypto::envelope::Keyring;
use xmcp_crypto::signer::Signer;
use xmcp_crypto::token::{NewToken, TokenHash, TokenKind};
use xmcp_store::*;

mod device;
pub use device::DeviceAuthorizationResponse;

/// The authorization server and resource guard.
pub struct AuthServer {
    pub config: AuthConfig,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    idp: Arc<dyn IdentityProvider>,
    keyring: Arc<Keyring>,
    cookies: Signer,
    cimd: CimdResolver,
    jwt: Option<Arc<crate::jwt::JwtKeys>>,
    /// Resource-server-only mode: tokens come from this external issuer.
    external: Option<Arc<crate::external::ExternalVerifier>>,
    /// Narrower protected resources under the base resource.
    sub_resources: Option<Arc<dyn crate::resource::SubResources>>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// A browser cookie to set or clear.
#[derive(Debug, Clone, PartialEq)]
pub struct Cookie {
    pub name: String,
    /// `None` clears the cookie.
    pub value: Option<String>,
    pub max_age: i64,
    pub secure: bool,
}

/// What an HTML endpoint (`/authorize`, `/consent`) answers.
#[derive(Debug)]
pub enum PageOutcome {
    /// An error the user sees; never a redirect (unknown client, bad redirect).
    Error(ErrorView),
    /// Redirect the browser (302 after GET, 303 after POST).
    Redirect {
        location: String,
        cookies: Vec<Cookie>,
    },
    /// Show the consent page.
    Consent {
        view: Box<ConsentView>,
        cookies: Vec<Cookie>,
    },
    /// A page that ends a flow with no redirect (a device authorization
    /// approved or denied); its status is the view's.
    Notice {
        view: ErrorView,
        cookies: Vec<Cookie>,
    },
}

impl PageOutcome {
    fn with_cookie(mut self, cookie: Cookie) -> Self {
        match &mut self {
            PageOutcome::Redirect { cookies, .. }
            | PageOutcome::Consent { cookies, .. }
            | PageOutcome::Notice { cookies, .. } => cookies.push(cookie),
            PageOutcome::Error(_) => {}
        }
        self
    }
}

/// The token endpoint's success body (RFC 6749 §5.1).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Client credentials as presented at the token, revocation or introspection
/// endpoint.
#[derive(Default)]
pub struct ClientCredentials {
    /// Decoded `Authorization: Basic` credentials, if that header was sent.
    pub basic: Option<(String, String)>,
}

/// Why the resource guard refused a request.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardError {
    /// No credentials at all (401, no `error` parameter).
    Missing,
    /// Invalid, expired, revoked or foreign-audience token (401 `invalid_token`).
    InvalidToken(String),
    /// Malformed `Authorization` header (400 `invalid_request`).
    InvalidRequest(String),
    /// Store unavailable (503).
    Unavailable,
}

const CONSENT_COOKIE: &str = "xmcp-consent";

/// Longest value of an authorization request's parameters, beyond those
/// [`AUTHORIZE_LIMITS`] names: a pending authorization is stored before
/// anyone signed in, so its size is bounded.
pub(crate) const MAX_PARAMETER: usize = 2048;

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

/// Limits of particular authorization parameters, in bytes.
pub(crate) const AUTHORIZE_LIMITS: &[(&str, usize)] = &[
    ("state", 1024),
    ("scope", 1024),
    ("code_challenge", 128),
    ("code_challenge_method", 16),
    ("response_type", 32),
    ("nonce", 256),
];

impl AuthServer {
    pub fn new(
        config: AuthConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        idp: Arc<dyn IdentityProvider>,
        keyring: Arc<Keyring>,
        cookie_key: &[u8],
    ) -> Self {
        let cimd = CimdResolver::new(config.cimd_allow_loopback)
            .with_schemes(config.redirect_schemes.clone());
        Self {
            config,
            store,
            clock,
            idp,
            keyring,
            cookies: Signer::derive(cookie_key, "xmcp consent cookie v1"),
            cimd,
            jwt: None,
            external: None,
            sub_resources: None,
        }
    }

    /// Also answer for narrower resources under the base resource (see
    /// [`crate::resource`]).
    pub fn with_sub_resources(mut self, sub: Arc<dyn crate::resource::SubResources>) -> Self {
        self.sub_resources = Some(sub);
        self
    }

    /// Issue JWT access tokens signed with these keys (and verify them).
    pub fn with_jwt_keys(mut self, keys: Arc<crate::jwt::JwtKeys>) -> Self {
        self.jwt = Some(keys);
        self
    }

    /// Verify tokens of an external authorization server instead of issuing
    /// our own: the server becomes a resource guard only (its router mounts
    /// no authorization endpoints).
    pub fn with_external(mut self, verifier: Arc<crate::external::ExternalVerifier>) -> Self {
        self.external = Some(verifier);
        self
    }

    /// Whether this is a resource guard for an external issuer only.
    pub fn is_resource_server_only(&self) -> bool {
        self.external.is_some()
    }

    pub fn jwt_keys(&self) -> Option<&Arc<crate::jwt::JwtKeys>> {
        self.jwt.as_ref()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.config.issuer, path)
    }

    /// URL of the protected-resource metadata for the MCP endpoint.
    pub fn resource_metadata_url(&self) -> String {
        self.resource_metadata_url_for(&self.config.resource)
    }

    /// URL of the protected-resource metadata for `resource` (RFC 9728
    /// §3.1: the well-known path inserted between origin and path).
    pub fn resource_metadata_url_for(&self, resource: &str) -> String {
        let path = Url::parse(resource)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        format!(
            "{}/.well-known/oauth-protected-resource{}",
            self.config.issuer,
            path.trim_end_matches('/')
        )
    }

    /// Where `resource` stands under the base resource: `Some("")` for the
    /// base resource itself (or the bare origin), `Some(suffix)` for a
    /// narrower resource this server answers for, `None` otherwise.
    pub fn resource_suffix<'a>(&self, resource: &'a str) -> Option<&'a str> {
        if self.config.accepts_resource(resource) {
            return Some("");
        }
        let suffix = resource.strip_prefix(self.config.resource.as_str())?;
        let sub = self.sub_resources.as_ref()?;
        (suffix.starts_with('/') && sub.scopes_supported(suffix).is_some()).then_some(suffix)
    }

    /// Whether `resource` is one this server answers for.
    pub fn accepts_resource(&self, resource: &str) -> bool {
        self.resource_suffix(resource).is_some()
    }

    /// The resource a request to `path` on this server is for, if any: the
    /// base resource's path, or a narrower resource's.
    pub fn resource_at_path(&self, path: &str) -> Option<String> {
        let resource = format!("{}{path}", self.config.issuer);
        let is_resource = resource == self.config.resource
            || self
                .resource_suffix(&resource)
                .is_some_and(|s| !s.is_empty());
        is_resource.then_some(resource)
    }

    // ----- clients -------------------------------------------------------

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
                grant_types: vec![
                    "authorization_code".into(),
                    "refresh_token".into(),
                    crate::client::DEVICE_GRANT.into(),
                ],
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

    fn redirect_with(&self, redirect_uri: &str, params: &[(&str, &str)]) -> String {
        match Url::parse(redirect_uri) {
            Ok(mut u) => {
                {
                    let mut q = u.query_pairs_mut();
                    for (k, v) in params {
                        q.append_pair(k, v);
                    }
                    q.append_pair("iss", &self.config.issuer);
                }
                u.to_string()
            }
            Err(_) => redirect_uri.to_owned(),
        }
    }

    fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        err: ErrorCode,
        desc: &str,
    ) -> PageOutcome {
        let mut params = vec![("error", err.as_str()), ("error_description", desc)];
        if let Some(s) = state {
            params.push(("state", s));
        }
        PageOutcome::Redirect {
            location: self.redirect_with(redirect_uri, &params),
            cookies: vec![],
        }
    }

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
        let handle = NewToken::generate(TokenKind::PendingAuthorization);
        let csrf = NewToken::generate(TokenKind::Csrf);
        let pending = PendingAuthorization {
            id: handle.hash().clone(),
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            redirect_uri_explicit: params.get("redirect_uri").is_some(),
            scope: scope.clone(),
            state: state.map(str::to_owned),
            code_challenge: challenge.to_owned(),
            resource,
            csrf: csrf.hash().clone(),
            created_at: now,
            expires_at: now + self.config.pending_ttl,
            upstream_state: None,
            upstream_verifier_sealed: None,
            device_code: None,
        };
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
            &client,
            &redirect_uri,
            &scope,
            handle.plaintext(),
            csrf.plaintext(),
            self.idp.display_name(),
            self.idp.login_form(),
            None,
        )
        .with_notes(&self.config.consent_notes);
        PageOutcome::Consent {
            view: Box::new(view),
            cookies: vec![cookie],
        }
    }

    fn consent_cookie_name(&self, handle: &TokenHash) -> String {
        let base = format!("{CONSENT_COOKIE}-{}", &handle.as_str()[..12]);
        if self.config.is_https() {
            format!("__Host-{base}")
        } else {
            base
        }
    }

    fn requested_resource(&self, requested: &[String]) -> Result<String, String> {
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
    fn requested_scope(&self, requested: Option<&str>, client: &Client) -> Result<String, String> {
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
        .with_notes(&self.config.consent_notes);
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
    async fn abandon(
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
    async fn finish_login(
        &self,
        pending: &PendingAuthorization,
        identity: &UserIdentity,
        upstream: Option<UpstreamCredentials>,
        now: i64,
    ) -> Result<PageOutcome, ErrorView> {
        let unavailable = |e: StoreError| ErrorView::unavailable(OAuthError::store(e).description);
        let user = self
            .store
            .upsert_user(identity, now)
            .await
            .map_err(unavailable)?;
        if let Some(up) = upstream {
            let seal = |secret: &secrecy::SecretString, field: &str| {
                self.keyring.seal(
                    secret.expose_secret().as_bytes(),
                    upstream_aad(&user.id, field).as_bytes(),
                )
            };
            self.store
                .put_upstream_tokens(&UpstreamTokens {
                    user_id: user.id.clone(),
                    provider: up.provider.clone(),
                    access_sealed: seal(&up.access_token, "access"),
                    refresh_sealed: up.refresh_token.as_ref().map(|r| seal(r, "refresh")),
                    expires_at: up.expires_at,
                    scope: up.scope.clone(),
                    updated_at: now,
                    reauth_required_at: None,
                })
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

    /// Authenticate the client at a back-channel endpoint (RFC 6749 §2.3,
    /// OAuth 2.1 §2.4). Exactly one method may be used.
    async fn authenticate_client(
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
        match grant_type {
            "authorization_code" | "refresh_token" | crate::client::DEVICE_GRANT => {}
            other => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("grant_type `{other}` is not supported"),
                ));
            }
        }
        let client = self.authenticate_client(creds, &form).await?;
        if client.secret_hash.is_some() {
            *proven = Some(client.client_id.clone());
        }
        if !client.grant_types.iter().any(|g| g == grant_type) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client is not registered for the {grant_type} grant"),
            ));
        }
        let result = match grant_type {
            "authorization_code" => self.code_grant(&client, &form).await,
            "refresh_token" => self.refresh_grant(&client, &form).await,
            _ => self.device_grant(&client, &form).await,
        };
        if result.is_ok() {
            *proven = Some(client.client_id);
        }
        result
    }

    /// Mint an access token (opaque, or a signed JWT when configured and the
    /// grant is known) and, if the client may refresh, a refresh token.
    async fn mint_pair(
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

    fn response(
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

    async fn code_grant(
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
        if record.redirect_uri == crate::client::DEVICE_GRANT {
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
    async fn redeem_code(
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

    async fn refresh_grant(
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

    /// RFC 8414 authorization server metadata: exactly what is implemented.
    pub fn metadata(&self) -> serde_json::Value {
        let mut scopes = self.config.scopes.clone();
        scopes.push("offline_access".into());
        let mut m = serde_json::json!({
            "issuer": self.config.issuer,
            "authorization_endpoint": self.endpoint("/authorize"),
            "token_endpoint": self.endpoint("/token"),
            "revocation_endpoint": self.endpoint("/revoke"),
            "introspection_endpoint": self.endpoint("/introspect"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", crate::client::DEVICE_GRANT],
            "device_authorization_endpoint": self.endpoint("/device_authorization"),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": scopes,
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": self.config.cimd_enabled,
            "protected_resources": [self.config.resource],
        });
        if let Some(o) = m.as_object_mut() {
            if self.config.registration_enabled {
                o.insert(
                    "registration_endpoint".into(),
                    self.endpoint("/register").into(),
                );
            }
            if self.jwt.is_some() {
                o.insert("jwks_uri".into(), self.endpoint("/jwks.json").into());
            }
        }
        m
    }

    /// RFC 9728 protected-resource metadata for `resource` (the base
    /// resource, the bare origin, or a narrower resource, whose
    /// `scopes_supported` are its own).
    pub fn protected_resource_metadata(&self, resource: &str) -> serde_json::Value {
        let issuer = self
            .external
            .as_ref()
            .map_or(self.config.issuer.as_str(), |e| e.issuer());
        let scopes = match (self.resource_suffix(resource), &self.sub_resources) {
            (Some(suffix), Some(sub)) if !suffix.is_empty() => {
                sub.scopes_supported(suffix).unwrap_or_default()
            }
            _ => self.config.scopes.clone(),
        };
        serde_json::json!({
            "resource": resource,
            "authorization_servers": [issuer],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "xmcp: the X API over MCP",
        })
    }

    /// Delete expired rows.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        self.store.sweep(self.now()).await
    }
}

/// RFC 8707 §2.2: a `resource` in a token request must be the one the grant
/// was authorized for. Narrowing is not offered here: a client wanting a
/// narrower resource asks for it at `/authorize`.
fn check_token_resource(form: &Params, granted: &str) -> Result<(), OAuthError> {
    let requested = form.all("resource");
    if requested.len() > 1 || requested.first().is_some_and(|r| r != granted) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource does not match the authorized resource {granted}"),
        ));
    }
    Ok(())
}

/// What a JWT access token says about its grant.
#[derive(Clone, Copy)]
pub(crate) struct GrantFacts<'a> {
    user_id: &'a str,
    scope: &'a str,
    resource: &'a str,
}

fn pending_aad(handle: &TokenHash) -> String {
    format!("pending-upstream-verifier:{}", handle.as_str())
}

fn successor_aad(old: &TokenHash) -> String {
    format!("refresh-successor:{}", old.as_str())
}

/// An S256 challenge is the base64url (no padding) of 32 bytes: 43 characters.
fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}
