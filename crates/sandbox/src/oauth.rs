//! X's OAuth 2.0 endpoints, simulated: authorize (a login page listing the
//! demo users), token (authorization code with PKCE, rotating refresh tokens)
//! and revoke, with X's client authentication rules.

use crate::faults::FaultKind;
use crate::world::{AccessToken, Code, RefreshToken};
use crate::{Sandbox, SandboxClient};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::json;
use std::collections::HashMap;

const TOKEN_ENDPOINT: &str = "POST /2/oauth2/token";
const CODE_TTL: i64 = 30;

/// Every OAuth 2.0 user scope X knows.
pub const SCOPES: &[&str] = &[
    "block.read",
    "block.write",
    "bookmark.read",
    "bookmark.write",
    "dm.read",
    "dm.write",
    "follows.read",
    "follows.write",
    "like.read",
    "like.write",
    "list.read",
    "list.write",
    "media.write",
    "mute.read",
    "mute.write",
    "offline.access",
    "space.read",
    "tweet.moderate.write",
    "tweet.read",
    "tweet.write",
    "users.email",
    "users.read",
];

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/i/oauth2/authorize",
            get(authorize_page).post(authorize_submit),
        )
        .route("/2/oauth2/token", post(token))
        .route("/2/oauth2/revoke", post(revoke))
}

fn parse_form(s: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(s.as_bytes()) {
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    out
}

fn one<'a>(form: &'a HashMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
    match form.get(key).map(Vec::as_slice) {
        Some([v]) => Some(v.as_str()),
        _ => None,
    }
}

fn random_token() -> String {
    xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<32>())
}

/// The stylesheet xmcp's own pages use, so the demo looks like one product.
const STYLE: &str = include_str!("../../../assets/pages.css");

/// A whole page around `body`, titled `title`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · X (sandbox)</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>",
        html_escape::encode_text(title)
    )
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = page(
        "Something went wrong",
        &format!(
            "<h1>Something went wrong</h1><p class=\"error\">{}</p>",
            html_escape::encode_text(message)
        ),
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

/// A validated authorization request.
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    state: String,
    challenge: String,
    method: String,
    scopes: Vec<String>,
}

impl AuthRequest {
    /// X shows its own error page for a bad client or callback (it cannot
    /// trust the redirect) and for any other invalid parameter.
    fn parse(sb: &Sandbox, form: &HashMap<String, Vec<String>>) -> Result<Self, String> {
        let bad = |m: &str| Err(m.to_owned());
        let Some(client_id) = one(form, "client_id") else {
            return bad("The request has no client_id.");
        };
        let Some(client) = client(sb, client_id) else {
            return bad("This app is not registered with X.");
        };
        let Some(redirect_uri) = one(form, "redirect_uri") else {
            return bad("The request has no redirect_uri.");
        };
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return bad("The redirect_uri does not match the app's callback URLs.");
        }
        if one(form, "response_type") != Some("code") {
            return bad("response_type must be code.");
        }
        let Some(state) = one(form, "state").filter(|s| !s.is_empty() && s.len() <= 500) else {
            return bad("state is required (at most 500 characters).");
        };
        let Some(challenge) = one(form, "code_challenge").filter(|c| !c.is_empty()) else {
            return bad("code_challenge is required.");
        };
        let method = one(form, "code_challenge_method").unwrap_or("plain");
        if method != "S256" && method != "plain" {
            return bad("code_challenge_method must be S256 or plain.");
        }
        let scopes: Vec<String> = one(form, "scope")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if scopes.is_empty() {
            return bad("scope is required.");
        }
        if let Some(unknown) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
            return bad(&format!("Unknown scope: {unknown}."));
        }
        Ok(Self {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            state: state.to_owned(),
            challenge: challenge.to_owned(),
            method: method.to_owned(),
            scopes,
        })
    }

    fn redirect(&self, params: &[(&str, &str)]) -> Response {
        let mut url = self.redirect_uri.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("state", &self.state);
        for (k, v) in params {
            q.append_pair(k, v);
        }
        url.push_str(&q.finish());
        (
            StatusCode::FOUND,
            [
                (header::LOCATION, url),
                (header::CACHE_CONTROL, "no-store".into()),
            ],
        )
            .into_response()
    }
}

fn client<'a>(sb: &'a Sandbox, id: &str) -> Option<&'a SandboxClient> {
    sb.inner.config.clients.iter().find(|c| c.client_id == id)
}

async fn authorize_page(State(sb): State<Sandbox>, RawQuery(q): RawQuery) -> Response {
    let form = parse_form(q.as_deref().unwrap_or_default());
    let req = match AuthRequest::parse(&sb, &form) {
        Ok(r) => r,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, &message),
    };
    let e = |s: &str| html_escape::encode_double_quoted_attribute(s).into_owned();
    let mut hidden = String::new();
    for key in [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "scope",
    ] {
        if let Some(v) = one(&form, key) {
            hidden.push_str(&format!(
                "<input type=hidden name=\"{key}\" value=\"{}\">",
                e(v)
            ));
        }
    }
    let users: String = sb
        .demo_users()
        .iter()
        .enumerate()
        .map(|(i, (id, username))| {
            format!(
                "<label><input type=radio name=\"user_id\" value=\"{}\"{}> @{}</label>",
                e(id),
                if i == 0 { " checked" } else { "" },
                html_escape::encode_text(username)
            )
        })
        .collect();
    let scopes: String = req
        .scopes
        .iter()
        .map(|s| {
            format!(
                "<label><input type=checkbox name=\"grant\" value=\"{}\" checked> {}</label>",
                e(s),
                html_escape::encode_text(s)
            )
        })
        .collect();
    let body = page(
        "Authorize app",
        &format!(
            "<h1>{} wants to access your X account</h1>\
             <p class=\"muted\">This is the xmcp sandbox, a simulated X. Choose a demo account.</p>\
             <form method=post action=\"\">{hidden}<fieldset><legend>Account</legend>{users}</fieldset>\
             <fieldset><legend>Permissions</legend>{scopes}</fieldset>\
             <div class=\"actions\"><button type=submit name=action value=allow>Authorize app</button>\
             <button type=submit name=action value=deny>Cancel</button></div></form>",
            html_escape::encode_text(&req.client_id)
        ),
    );
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        Html(body),
    )
        .into_response()
}

async fn authorize_submit(State(sb): State<Sandbox>, body: String) -> Response {
    let form = parse_form(&body);
    let req = match AuthRequest::parse(&sb, &form) {
        Ok(r) => r,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, &message),
    };
    if one(&form, "action") != Some("allow") {
        return req.redirect(&[
            ("error", "access_denied"),
            ("error_description", "The user denied the request."),
        ]);
    }
    let Some(user_id) = one(&form, "user_id").filter(|id| sb.world().user(id).is_some()) else {
        return error_page(StatusCode::BAD_REQUEST, "Choose one of the demo accounts.");
    };
    // The user may untick permissions: X grants what is left.
    let granted: Vec<&str> = form
        .get("grant")
        .map(|g| {
            req.scopes
                .iter()
                .map(String::as_str)
                .filter(|s| g.iter().any(|x| x == s))
                .collect()
        })
        .unwrap_or_default();
    if granted.is_empty() {
        return error_page(StatusCode::BAD_REQUEST, "Grant at least one permission.");
    }
    let code = random_token();
    let now = sb.now();
    sb.world().codes.insert(
        code.clone(),
        Code {
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            challenge: req.challenge.clone(),
            method: req.method.clone(),
            user_id: user_id.to_owned(),
            scope: granted.join(" "),
            expires_at: now + CODE_TTL,
        },
    );
    sb.count(|s| {
        s.authorization_codes_issued += 1;
        s.issued.push(code.clone());
    });
    req.redirect(&[("code", &code)])
}

/// An OAuth error from the token or revoke endpoint, in X's shape.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// X's client authentication: HTTP Basic for confidential clients,
/// `client_id` in the body for public ones. `None`: not authenticated.
fn authenticate_client<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
    form: &HashMap<String, Vec<String>>,
) -> Option<&'a SandboxClient> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    if let Some(pair) = basic {
        let (id, secret) = pair.split_once(':')?;
        let client = client(sb, id)?;
        let expected = client.client_secret.as_deref()?;
        return xmcp_crypto::constant_time_eq(expected.as_bytes(), secret.as_bytes())
            .then_some(client);
    }
    client(sb, one(form, "client_id")?).filter(|c| c.client_secret.is_none())
}

fn unauthorized_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized_client",
        "Missing valid authorization header",
    )
}

/// A fault on the token endpoint, if one is set: its response.
async fn token_fault(sb: &Sandbox) -> Option<Response> {
    let kind = sb.take_fault(TOKEN_ENDPOINT, |k| !matches!(k, FaultKind::RefuseRefresh))?;
    match kind {
        FaultKind::Slow { millis } => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            None
        }
        other => Some(crate::api::fault_response(&sb.now(), &other)),
    }
}

async fn token(State(sb): State<Sandbox>, headers: HeaderMap, body: String) -> Response {
    if let Some(resp) = token_fault(&sb).await {
        return resp;
    }
    let form = parse_form(&body);
    let Some(client) = authenticate_client(&sb, &headers, &form).map(|c| c.client_id.clone())
    else {
        return unauthorized_client();
    };
    let now = sb.now();
    let (user_id, scope) = match one(&form, "grant_type") {
        Some("authorization_code") => {
            let invalid = || {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Value passed for the authorization code was invalid.",
                )
            };
            let Some(code) = one(&form, "code").and_then(|c| sb.world().codes.remove(c)) else {
                return invalid();
            };
            let verifier = one(&form, "code_verifier").unwrap_or_default();
            let pkce_ok = match code.method.as_str() {
                "S256" => xmcp_crypto::pkce_s256_matches(verifier, &code.challenge),
                _ => xmcp_crypto::constant_time_eq(verifier.as_bytes(), code.challenge.as_bytes()),
            };
            if code.client_id != client
                || code.expires_at <= now
                || one(&form, "redirect_uri") != Some(code.redirect_uri.as_str())
                || !pkce_ok
            {
                return invalid();
            }
            sb.count(|s| s.code_exchanges += 1);
            (code.user_id, code.scope)
        }
        Some("refresh_token") => {
            let invalid = || {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Value passed for the token was invalid.",
                )
            };
            let Some(presented) = one(&form, "refresh_token") else {
                return invalid();
            };
            if sb
                .take_fault(TOKEN_ENDPOINT, |k| matches!(k, FaultKind::RefuseRefresh))
                .is_some()
            {
                sb.world().refresh.remove(presented);
                sb.count(|s| s.refused_refreshes += 1);
                return invalid();
            }
            // Single use: the token is gone whatever happens next.
            let Some(old) = sb.world().refresh.remove(presented) else {
                sb.count(|s| s.refused_refreshes += 1);
                return invalid();
            };
            if old.client_id != client {
                return invalid();
            }
            sb.count(|s| s.refreshes += 1);
            (old.user_id, old.scope)
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            );
        }
    };
    let access = random_token();
    let ttl = sb.inner.config.access_token_ttl;
    let mut world = sb.world();
    world.access.insert(
        access.clone(),
        AccessToken {
            client_id: client.clone(),
            user_id: user_id.clone(),
            scope: scope.clone(),
            expires_at: now + ttl,
        },
    );
    let mut out = json!({
        "token_type": "bearer",
        "expires_in": ttl,
        "access_token": access,
        "scope": scope,
    });
    if scope.split(' ').any(|s| s == "offline.access") {
        let refresh = random_token();
        world.refresh.insert(
            refresh.clone(),
            RefreshToken {
                client_id: client,
                user_id,
                scope,
            },
        );
        sb.count(|s| s.issued.push(refresh.clone()));
        out["refresh_token"] = refresh.into();
    }
    sb.count(|s| s.issued.push(access.clone()));
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(out),
    )
        .into_response()
}

async fn revoke(State(sb): State<Sandbox>, headers: HeaderMap, body: String) -> Response {
    let form = parse_form(&body);
    let Some(client) = authenticate_client(&sb, &headers, &form).map(|c| c.client_id.clone())
    else {
        return unauthorized_client();
    };
    let Some(token) = one(&form, "token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    let mut world = sb.world();
    if world
        .access
        .get(token)
        .is_some_and(|t| t.client_id == client)
    {
        world.access.remove(token);
    }
    if world
        .refresh
        .get(token)
        .is_some_and(|t| t.client_id == client)
    {
        world.refresh.remove(token);
    }
    drop(world);
    sb.count(|s| s.revocations += 1);
    axum::Json(json!({"revoked": true})).into_response()
}
