//! axum routes for the authorization server, and the resource guard
//! middleware. Every OAuth endpoint answers with RFC 6749 §5.2 / RFC 7591
//! §3.2.2 JSON errors (including for oversized or malformed bodies), and every
//! HTML page carries anti-framing and no-store headers.

use crate::error::GuardError;
use crate::error::{ErrorCode, OAuthError};
use crate::server::{AuthServer, ClientCredentials, Cookie, PageOutcome};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use std::sync::Arc;

/// Largest body accepted by the form and JSON endpoints.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// The authorization server's routes, at the issuer's root; in
/// resource-server-only mode, just the protected resource metadata.
pub fn router(auth: Arc<AuthServer>) -> Router {
    let resource_path = url::Url::parse(&auth.config.resource)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_else(|_| "/mcp".into());
    let prm = format!("/.well-known/oauth-protected-resource{resource_path}");
    let resource = Router::new()
        .route(&prm, get(resource_metadata))
        .route(&format!("{prm}/"), get(resource_metadata))
        .route(&format!("{prm}/{{*rest}}"), get(sub_resource_metadata))
        .route(
            "/.well-known/oauth-protected-resource",
            get(root_resource_metadata),
        );
    if auth.is_resource_server_only() {
        // The external issuer authorizes; we only describe the resource.
        return resource.with_state(auth);
    }
    // No `/.well-known/openid-configuration`: OpenID Connect Discovery
    // requires `jwks_uri`, `subject_types_supported` and
    // `id_token_signing_alg_values_supported`, which an authorization server
    // that issues no ID tokens cannot honestly publish. MCP clients probe
    // RFC 8414 first for an issuer without a path, and find everything there.
    resource
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/authorize", get(authorize))
        .route("/consent", post(consent))
        .route(&auth.config.upstream_callback_path, get(upstream_callback))
        .route("/token", post(token))
        .route("/device_authorization", post(device_authorization))
        .route("/device", get(device_page).post(device_submit))
        .route("/revoke", post(revoke))
        .route("/introspect", post(introspect))
        .route("/register", post(register))
        .route("/jwks.json", get(jwks))
        .with_state(auth)
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = (status, Json(self.body())).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"xmcp\", charset=\"UTF-8\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        resp
    }
}

fn json_no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

fn json_cacheable(body: serde_json::Value) -> Response {
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// Read a body of at most [`MAX_FORM_BYTES`], answering OAuth-style if not.
async fn read_body(body: Body) -> Result<Bytes, OAuthError> {
    axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            OAuthError::invalid_request("the request body is too large or could not be read")
                .with_status(413)
        })
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

/// Read an `application/x-www-form-urlencoded` body.
async fn read_form(headers: &HeaderMap, body: Body) -> Result<String, OAuthError> {
    if !content_type_is(headers, "application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = read_body(body).await?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| OAuthError::invalid_request("the body is not valid UTF-8"))
}

/// Decode `Authorization: Basic` client credentials (RFC 6749 §2.3.1: both
/// parts are form-urlencoded before base64).
fn client_credentials(headers: &HeaderMap) -> Result<ClientCredentials, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(ClientCredentials::default());
    };
    let malformed = || {
        let mut e = OAuthError::invalid_client("malformed Basic credentials");
        e.basic_challenge = true;
        e
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let decode = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(ClientCredentials {
        basic: Some((decode(id), decode(secret))),
    })
}

fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            Some((n.to_owned(), v.to_owned()))
        })
        .collect()
}

fn set_cookie_value(c: &Cookie) -> String {
    let mut s = match &c.value {
        Some(v) => format!("{}={}; Max-Age={}", c.name, v, c.max_age),
        None => format!("{}=; Max-Age=0", c.name),
    };
    s.push_str("; Path=/; HttpOnly; SameSite=Lax");
    if c.secure {
        s.push_str("; Secure");
    }
    s
}

/// Headers every HTML page of the authorization server carries.
fn html_security_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn page_response(outcome: PageOutcome, after_post: bool) -> Response {
    let (mut resp, cookies) = match outcome {
        PageOutcome::Error(view) => {
            let status = StatusCode::from_u16(view.status).unwrap_or(StatusCode::BAD_REQUEST);
            (
                (status, axum::response::Html(view.render())).into_response(),
                vec![],
            )
        }
        PageOutcome::Consent { view, cookies } => {
            (axum::response::Html(view.render()).into_response(), cookies)
        }
        PageOutcome::Notice { view, cookies } => {
            let status = StatusCode::from_u16(view.status).unwrap_or(StatusCode::OK);
            (
                (status, axum::response::Html(view.render())).into_response(),
                cookies,
            )
        }
        PageOutcome::Redirect { location, cookies } => {
            // 303 after a POST so the browser does not resend the form
            // (OAuth 2.1 §7.5.3); 302 for the GET /authorize error redirects.
            let status = if after_post {
                StatusCode::SEE_OTHER
            } else {
                StatusCode::FOUND
            };
            let mut r = status.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            (r, cookies)
        }
    };
    let h = resp.headers_mut();
    html_security_headers(h);
    for c in &cookies {
        if let Ok(v) = HeaderValue::from_str(&set_cookie_value(c)) {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

async fn metadata(State(auth): State<Arc<AuthServer>>) -> Response {
    json_cacheable(auth.metadata())
}

async fn resource_metadata(State(auth): State<Arc<AuthServer>>) -> Response {
    json_cacheable(auth.protected_resource_metadata(&auth.config.resource))
}

/// The metadata of a narrower resource under the base resource (see
/// [`crate::resource`]); 404 for a path that names none.
async fn sub_resource_metadata(
    State(auth): State<Arc<AuthServer>>,
    axum::extract::Path(rest): axum::extract::Path<String>,
) -> Response {
    let resource = format!("{}/{rest}", auth.config.resource);
    if auth
        .resource_suffix(&resource)
        .is_some_and(|s| !s.is_empty())
    {
        json_cacheable(auth.protected_resource_metadata(&resource))
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "not_found", "error_description": "no protected resource here"})),
        )
            .into_response()
    }
}

/// The root document names the bare origin as its resource, which the guard
/// also accepts, so that it is self-consistent under RFC 9728 §3.3.
async fn root_resource_metadata(State(auth): State<Arc<AuthServer>>) -> Response {
    json_cacheable(auth.protected_resource_metadata(&auth.config.issuer))
}

/// RFC 7517 key set for JWT access tokens (404 when tokens are opaque).
async fn jwks(State(auth): State<Arc<AuthServer>>) -> Response {
    match auth.jwt_keys() {
        Some(keys) => json_cacheable(keys.jwks()),
        None => (StatusCode::NOT_FOUND, Json(serde_json::json!({"error": "not_found", "error_description": "this server issues opaque access tokens"}))).into_response(),
    }
}

async fn authorize(State(auth): State<Arc<AuthServer>>, uri: axum::http::Uri) -> Response {
    page_response(auth.authorize(uri.query().unwrap_or("")).await, false)
}

async fn consent(State(auth): State<Arc<AuthServer>>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_form(&headers, body).await {
        Ok(f) => f,
        Err(e) => {
            return page_response(
                PageOutcome::Error(crate::html::ErrorView::bad_request(e.description)),
                true,
            );
        }
    };
    page_response(auth.consent(&form, &cookies(&headers)).await, true)
}

async fn upstream_callback(
    State(auth): State<Arc<AuthServer>>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let outcome = auth
        .upstream_callback(query.as_deref().unwrap_or_default(), &cookies(&headers))
        .await;
    page_response(outcome, false)
}

async fn token(
    State(auth): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let creds = client_credentials(&headers)?;
    let form = read_form(&headers, body).await?;
    let grant_type = crate::params::Params::parse(&form)
        .ok()
        .and_then(|p| {
            p.get("grant_type")
                .and_then(crate::client::GrantType::parse)
        })
        .map_or("other", crate::client::GrantType::label);
    let (result, proven) = auth.token_proving(&creds, &form).await;
    let mut response = match result {
        Ok(r) => {
            metrics::counter!("xmcp_oauth_tokens_issued_total", "grant_type" => grant_type)
                .increment(1);
            match serde_json::to_value(&r) {
                Ok(value) => json_no_store(StatusCode::OK, value),
                Err(_) => OAuthError::new(ErrorCode::ServerError, "cannot encode response")
                    .into_response(),
            }
        }
        Err(e) => {
            metrics::counter!("xmcp_oauth_token_errors_total", "grant_type" => grant_type, "error" => e.code.as_str())
                .increment(1);
            e.into_response()
        }
    };
    if let Some(client_id) = proven {
        response.extensions_mut().insert(ProvenClient(client_id));
    }
    Ok(response)
}

/// The client a token request proved to be (see
/// [`AuthServer::token_proving`]), in the response's extensions, for limits
/// per client placed in front of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenClient(pub String);

async fn device_authorization(
    State(auth): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let creds = client_credentials(&headers)?;
    let form = read_form(&headers, body).await?;
    let resp = auth.device_authorization(&creds, &form).await?;
    let value = serde_json::to_value(&resp)
        .map_err(|_| OAuthError::new(ErrorCode::ServerError, "cannot encode response"))?;
    Ok(json_no_store(StatusCode::OK, value))
}

fn html_page(status: StatusCode, html: String) -> Response {
    let mut resp = (status, axum::response::Html(html)).into_response();
    html_security_headers(resp.headers_mut());
    resp
}

async fn device_page(State(auth): State<Arc<AuthServer>>, uri: axum::http::Uri) -> Response {
    html_page(StatusCode::OK, auth.device_page(uri.query().unwrap_or("")))
}

async fn device_submit(
    State(auth): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match read_form(&headers, body).await {
        Ok(f) => f,
        Err(e) => {
            return page_response(
                PageOutcome::Error(crate::html::ErrorView::bad_request(e.description)),
                true,
            );
        }
    };
    match auth.device_submit(&form).await {
        Ok(outcome) => page_response(outcome, true),
        Err(again) => html_page(StatusCode::BAD_REQUEST, again),
    }
}

async fn revoke(
    State(auth): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let creds = client_credentials(&headers)?;
    let form = read_form(&headers, body).await?;
    auth.revoke(&creds, &form).await?;
    Ok(json_no_store(StatusCode::OK, serde_json::json!({})))
}

async fn introspect(
    State(auth): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let creds = client_credentials(&headers)?;
    let form = read_form(&headers, body).await?;
    let value = auth.introspect(&creds, &form).await?;
    Ok(json_no_store(StatusCode::OK, value))
}

async fn register(
    State(auth): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    if !auth.config.registration_enabled {
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "dynamic client registration is disabled on this server",
        )
        .with_status(403));
    }
    if !content_type_is(&headers, "application/json") {
        return Err(OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            "the body must be application/json",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            OAuthError::new(
                ErrorCode::InvalidClientMetadata,
                "the request body is too large",
            )
            .with_status(413)
        })?;
    let value = auth.register(&bytes).await?;
    Ok(json_no_store(StatusCode::CREATED, value))
}

/// Resource guard: validates the bearer token and puts the
/// [`crate::Principal`] into the request's extensions, or answers 401 with a
/// `WWW-Authenticate` challenge pointing at the protected-resource metadata.
pub async fn require_bearer(
    State(auth): State<Arc<AuthServer>>,
    req: Request,
    next: Next,
) -> Response {
    match authenticate(&auth, req).await {
        Ok(req) => next.run(req).await,
        Err(resp) => resp,
    }
}

/// What [`require_bearer`] does, for a middleware of one's own that checks
/// more after the token: the request with its [`crate::Principal`] in the
/// extensions, or the answer to send instead.
///
/// The resource asked for is the one at the request's path (see
/// [`AuthServer::resource_at_path`]), or the base resource at any other
/// path; the token must have been issued for a resource that covers it.
pub async fn authenticate(auth: &AuthServer, mut req: Request) -> Result<Request, Response> {
    let resource = auth
        .resource_at_path(req.uri().path())
        .unwrap_or_else(|| auth.config.resource.clone());
    let authorization = match req.headers().get(header::AUTHORIZATION).map(|v| v.to_str()) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            let resp = guard_response(
                auth,
                &resource,
                GuardError::InvalidRequest("the Authorization header is not valid text".into()),
            );
            return Err(reject_unread(req, resp).await);
        }
        None => None,
    };
    match auth.authenticate_bearer_at(authorization, &resource).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            Ok(req)
        }
        Err(e) => Err(reject_unread(req, guard_response(auth, &resource, e)).await),
    }
}

/// Largest request body read and discarded before a rejection is sent.
const MAX_DRAINED_BYTES: usize = 64 * 1024;

/// Answer `resp` to a request whose body nobody read.
///
/// An HTTP/1.1 server that replies before reading the request body cannot
/// reuse the connection, and hyper closes it right after the response, without
/// saying so. A client that pools connections (every MCP SDK: the first
/// `initialize` is always rejected with 401) then sends its next request on a
/// socket that is about to close and sees "server disconnected". So read a
/// small body to its end first, which keeps the connection usable, and tell
/// the client with `Connection: close` when the body is too large or too slow
/// to drain.
pub async fn reject_unread(req: Request, mut resp: Response) -> Response {
    let drained = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        axum::body::to_bytes(req.into_body(), MAX_DRAINED_BYTES),
    )
    .await;
    if !matches!(drained, Ok(Ok(_))) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

fn quote(s: &str) -> String {
    s.replace(['"', '\\'], "'")
}

/// The 401/400/503 answer of the resource guard for `resource` (RFC 6750
/// §3, RFC 9728 §5.1): the challenge names that resource's metadata.
pub fn guard_response(auth: &AuthServer, resource: &str, err: GuardError) -> Response {
    let prm = auth.resource_metadata_url_for(resource);
    let (status, challenge, body) = match &err {
        GuardError::Missing => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer resource_metadata=\"{prm}\""),
            serde_json::json!({"error": "invalid_token", "error_description": "authentication required: send an OAuth access token in the Authorization header"}),
        ),
        GuardError::InvalidToken(d) => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{prm}\"",
                quote(d)
            ),
            serde_json::json!({"error": "invalid_token", "error_description": d}),
        ),
        GuardError::InvalidRequest(d) => (
            StatusCode::BAD_REQUEST,
            format!(
                "Bearer error=\"invalid_request\", error_description=\"{}\", resource_metadata=\"{prm}\"",
                quote(d)
            ),
            serde_json::json!({"error": "invalid_request", "error_description": d}),
        ),
        GuardError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            String::new(),
            serde_json::json!({"error": "temporarily_unavailable", "error_description": "the server cannot reach its database; retry shortly"}),
        ),
    };
    let mut resp = (status, Json(body)).into_response();
    if !challenge.is_empty()
        && let Ok(v) = HeaderValue::from_str(&challenge)
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

/// 403 `insufficient_scope` naming every scope the operation needs (MCP
/// "Runtime Insufficient Scope Errors"), with `resource`'s metadata.
pub fn insufficient_scope_response(
    auth: &AuthServer,
    resource: &str,
    required: &[&str],
) -> Response {
    let scope = required.join(" ");
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\"",
        quote(&scope),
        auth.resource_metadata_url_for(resource)
    );
    let mut resp = (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({"error": "insufficient_scope", "error_description": format!("this operation needs the scopes: {scope}")})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}
