//! The guard in front of `/mcp`: the transport's Host and Origin checks,
//! the bearer token, stateful sessions, and step-up authorization.
//!
//! Step-up authorization: a `tools/call` (or `resources/read`) whose tool
//! (or resource) needs scopes the token lacks is answered at the HTTP layer
//! with 403 `insufficient_scope`, naming every scope it needs in one
//! challenge (MCP "Runtime Insufficient Scope Errors"), so clients can
//! re-authorize for exactly those. This is an addition, not the gate: the
//! registry refuses the call at dispatch whatever the guard made of it
//! (see [`super::registry`]). The guard reads the message with rmcp's own
//! types, so every encoding rmcp accepts reaches the same decision, and
//! passes on what it cannot classify.
//!
//! Sessions, in stateful mode: the guard opens them (after rmcp answered an
//! `initialize`), checks them and ends them; see [`crate::mcp::sessions`].

use super::BaseResource;
use super::registry::{Registry, View};
use super::selection::Selection;
use crate::mcp::sessions::McpSessions;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{ClientJsonRpcMessage, ClientRequest};
use std::sync::Arc;
use xmcp_auth::error::GuardError;
use xmcp_auth::{AuthServer, Principal};
use xmcp_store::StoreError;

/// The guard in front of `/mcp`: the bearer token, then the scopes.
#[derive(Clone)]
pub struct McpGuard(Arc<Guard>);

struct Guard {
    auth: Arc<AuthServer>,
    registry: Arc<Registry>,
    base: BaseResource,
    /// Every scope some tool or resource needs: a token holding all of
    /// them needs no check, and its message is not read here.
    every_needed: Vec<String>,
    max_body: usize,
    /// In stateful mode: who each session belongs to.
    sessions: Option<Arc<McpSessions>>,
}

impl McpGuard {
    pub fn new(
        auth: Arc<AuthServer>,
        registry: Arc<Registry>,
        base: BaseResource,
        max_body: usize,
        sessions: Option<Arc<McpSessions>>,
    ) -> Self {
        let every_needed = registry.every_scope();
        Self(Arc::new(Guard {
            auth,
            registry,
            base,
            every_needed,
            max_body,
            sessions,
        }))
    }
}

/// A request carrying only what rmcp's transport checks before anything
/// else (Host and Origin, against DNS rebinding), with a method it then
/// refuses with 405.
fn transport_probe(req: &Request) -> Request {
    let mut probe = Request::new(Body::empty());
    *probe.method_mut() = http::Method::OPTIONS;
    *probe.uri_mut() = req.uri().clone();
    for name in [http::header::HOST, http::header::ORIGIN] {
        for value in req.headers().get_all(&name) {
            probe.headers_mut().append(name.clone(), value.clone());
        }
    }
    probe
}

/// A JSON-RPC error answer, as rmcp gives its own transport errors.
fn json_rpc_error(status: http::StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": -32600, "message": message}
        })),
    )
        .into_response()
}

/// Checks Host and Origin (rmcp's own checks, so a page on a foreign origin
/// is refused 403 before its token is even read); finds the resource the
/// path names (`/mcp` or a narrower one, see [`super::selection`]);
/// authenticates the bearer token (as [`xmcp_auth::routes::require_bearer`]
/// does), which must have been issued for a resource covering it; in
/// stateful mode opens, checks and ends sessions (see [`crate::mcp::sessions`]);
/// then answers 403 `insufficient_scope` to a call of a tool or read of a
/// resource whose scopes the token lacks. One middleware rather than
/// several: each layer on a route costs a few allocations per request.
pub async fn guard_mcp(State(guard): State<McpGuard>, req: Request, next: Next) -> Response {
    let guard = &*guard.0;
    let checked = next.clone().run(transport_probe(&req)).await;
    if checked.status() != http::StatusCode::METHOD_NOT_ALLOWED {
        return xmcp_auth::routes::reject_unread(req, checked).await;
    }
    let Some(resource) = guard.auth.resource_at_path(req.uri().path()) else {
        let resp = json_rpc_error(
            http::StatusCode::NOT_FOUND,
            "no MCP endpoint here: use /mcp, /mcp/readonly, /mcp/x/{toolset,...} or /mcp/x/{toolset,...}/readonly with toolsets this server has".into(),
        );
        return xmcp_auth::routes::reject_unread(req, resp).await;
    };
    if let Err(why) = Selection::from_headers(req.headers()).and_then(|s| guard.registry.check(&s))
    {
        let resp = json_rpc_error(http::StatusCode::BAD_REQUEST, why);
        return xmcp_auth::routes::reject_unread(req, resp).await;
    }
    let req = match xmcp_auth::routes::authenticate(&guard.auth, req).await {
        Ok(req) => req,
        Err(resp) => return resp,
    };
    let Some(principal) = req.extensions().get::<Principal>() else {
        // `authenticate` puts it there.
        return next.run(req).await;
    };
    let holds_every_scope = guard.every_needed.iter().all(|s| principal.has_scope(s));
    // Stateful mode: a POST naming no session may open one, for this user.
    let mut opener = None;
    if let Some(sessions) = &guard.sessions {
        let header = req.headers().get(SESSION_HEADER);
        match session_step(
            guard,
            &resource,
            sessions,
            req.method(),
            header,
            &principal.user_id,
        )
        .await
        {
            Step::Go => {}
            Step::Open => opener = Some((&**sessions, principal.user_id.clone())),
            Step::Answer(resp) => return xmcp_auth::routes::reject_unread(req, resp).await,
        }
    }
    if req.method() != http::Method::POST || (holds_every_scope && opener.is_none()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, guard.max_body).await {
        Ok(b) => b,
        Err(_) => {
            // The rest of the body is unread: the connection cannot be reused.
            let mut resp = json_rpc_error(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "the MCP message is too large".into(),
            );
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            return resp;
        }
    };
    if !holds_every_scope
        && let Some(principal) = parts.extensions.get::<Principal>()
        && let Ok(view) = guard.base.view(
            &guard.registry,
            parts.uri.path(),
            &parts.headers,
            Some(principal),
        )
        && let Some(required) = step_up_scopes(&guard.registry, &view, &bytes)
        && !principal.missing_scopes(required).is_empty()
    {
        let all: Vec<&str> = required.iter().map(String::as_str).collect();
        return xmcp_auth::routes::insufficient_scope_response(&guard.auth, &resource, &all);
    }
    let opening = opener.and_then(|(sessions, user_id)| {
        initialize_params(&bytes).map(|params| (sessions, user_id, params))
    });
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    match opening {
        Some((sessions, user_id, params)) => {
            open_session(guard, &resource, sessions, &user_id, params, resp).await
        }
        None => resp,
    }
}

/// The scopes the tool a `tools/call` calls (or the resource a
/// `resources/read` reads) needs, when a client can step up to them: the
/// connection may call it, and every scope can be granted. The
/// message is read as rmcp reads it (its own types, from the same bytes),
/// so no spelling of it reaches another decision; a message rmcp would not
/// accept is passed on (rmcp refuses it, and dispatch checks regardless).
fn step_up_scopes<'r>(registry: &'r Registry, view: &View, body: &[u8]) -> Option<&'r [String]> {
    let ClientJsonRpcMessage::Request(request) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    match &request.request {
        ClientRequest::CallToolRequest(call) => {
            registry.step_up_scopes(view, &call.params.name, call.params.arguments.as_ref())
        }
        ClientRequest::ReadResourceRequest(read) => {
            registry.step_up_scopes_of_resource(view, &read.params.uri)
        }
        _ => None,
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

/// What the session layer makes of a request in stateful mode.
enum Step {
    /// Pass it on: a POST naming one of this user's sessions, or a method
    /// rmcp refuses.
    Go,
    /// A POST naming no session: an `initialize` opens one.
    Open,
    /// Answered here.
    Answer(Response),
}

/// `GET` asks for a stream of the server's own messages: 405, as xmcp
/// sends every message in answer to a POST.
fn no_stream() -> Response {
    (
        http::StatusCode::METHOD_NOT_ALLOWED,
        [(http::header::ALLOW, "POST, DELETE")],
        "Method Not Allowed: xmcp sends every message in answer to a POST, so there is no stream to open",
    )
        .into_response()
}

/// 503 when the store cannot read or write sessions.
fn unavailable(guard: &Guard, resource: &str, e: StoreError) -> Response {
    tracing::warn!(error = %e, "cannot read or write MCP sessions");
    xmcp_auth::routes::guard_response(&guard.auth, resource, GuardError::Unavailable)
}

/// A request naming a session must name one of this user's, else 404 as an
/// unknown session. `DELETE` ends it (200; 400 when it names none); `GET`
/// is answered 405. rmcp's Host and Origin checks have passed.
async fn session_step(
    guard: &Guard,
    resource: &str,
    sessions: &McpSessions,
    method: &http::Method,
    header: Option<&http::HeaderValue>,
    user_id: &str,
) -> Step {
    let Some(header) = header else {
        return match *method {
            http::Method::POST => Step::Open,
            http::Method::GET => Step::Answer(no_stream()),
            http::Method::DELETE => Step::Answer(
                (
                    http::StatusCode::BAD_REQUEST,
                    "Bad Request: name the session to end in the Mcp-Session-Id header",
                )
                    .into_response(),
            ),
            _ => Step::Go,
        };
    };
    let Ok(session_id) = header.to_str() else {
        sessions.refuse_unreadable();
        return Step::Answer(session_not_found());
    };
    match sessions.check(session_id, user_id).await {
        Ok(true) => {}
        Ok(false) => return Step::Answer(session_not_found()),
        Err(e) => return Step::Answer(unavailable(guard, resource, e)),
    }
    match *method {
        http::Method::GET => Step::Answer(no_stream()),
        // The Python and TypeScript SDKs' servers answer the end of a
        // session 200, and the Python client reports anything but 200 or
        // 204 as "Session termination failed".
        http::Method::DELETE => Step::Answer(match sessions.end(session_id).await {
            Ok(()) => http::StatusCode::OK.into_response(),
            Err(e) => unavailable(guard, resource, e),
        }),
        _ => Step::Go,
    }
}

/// What rmcp answers for a session it does not know.
fn session_not_found() -> Response {
    (http::StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}

/// What a session keeps of the `initialize` that opened it, as JSON text:
/// the protocol version and the client's name and version, as `xmcp admin
/// sessions` shows them, each cut to [`MAX_REPORTED_CHARS`]. Only these: the
/// rest of the params (capabilities, `_meta`) is the client's to fill, up to
/// the 4 MiB body limit, and a session's row must not grow with it. `None`
/// if the message is not an `initialize` request.
fn initialize_params(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Initialize {
        method: String,
        #[serde(default)]
        params: serde_json::Value,
    }
    let init: Initialize = serde_json::from_slice(body).ok()?;
    if init.method != "initialize" {
        return None;
    }
    let reported = |v: &serde_json::Value| match v.as_str() {
        Some(s) => serde_json::Value::from(s.chars().take(MAX_REPORTED_CHARS).collect::<String>()),
        None => serde_json::Value::Null,
    };
    let p = &init.params;
    Some(
        serde_json::json!({
            "protocolVersion": reported(&p["protocolVersion"]),
            "clientInfo": {
                "name": reported(&p["clientInfo"]["name"]),
                "version": reported(&p["clientInfo"]["version"]),
            },
        })
        .to_string(),
    )
}

/// The longest protocol version, client name or version a session keeps.
const MAX_REPORTED_CHARS: usize = 100;

/// The largest `initialize` answer read to see whether it succeeded. rmcp
/// writes it (the server's name, version, capabilities and instructions):
/// a few kilobytes.
const MAX_INITIALIZE_ANSWER: usize = 1024 * 1024;

/// After rmcp answered an `initialize` without a session: if it succeeded,
/// record a session for `user_id` and name it in the answer. If it cannot
/// be recorded, the client gets 503 instead of a session nobody could use.
async fn open_session(
    guard: &Guard,
    resource: &str,
    sessions: &McpSessions,
    user_id: &str,
    params: String,
    resp: Response,
) -> Response {
    if resp.status() != http::StatusCode::OK {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_INITIALIZE_ANSWER).await else {
        tracing::error!("rmcp's answer to initialize could not be read");
        return http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if succeeded(&bytes) {
        let opened = sessions.open(user_id, params).await;
        match opened.map(http::HeaderValue::try_from) {
            Ok(Ok(id)) => {
                parts.headers.insert(SESSION_HEADER, id);
            }
            Ok(Err(_)) => {
                tracing::error!("a new session id is not a valid header value");
                return http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot record an MCP session");
                return xmcp_auth::routes::guard_response(
                    &guard.auth,
                    resource,
                    GuardError::Unavailable,
                );
            }
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Whether a JSON-RPC answer (JSON, as rmcp answers without a session) is a
/// result rather than an error.
fn succeeded(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Answer {
        result: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Answer>(body).is_ok_and(|a| a.result.is_some())
}

#[cfg(test)]
mod tests {
    use super::{initialize_params, succeeded};

    #[test]
    fn an_initialize_and_its_answer_are_told_apart_from_the_rest() {
        let kept = |body: &str| -> serde_json::Value {
            serde_json::from_str(&initialize_params(body.as_bytes()).unwrap()).unwrap()
        };
        // The protocol version and the client's name and version, no more.
        assert_eq!(
            kept(
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{}},"clientInfo":{"name":"Claude","version":"1.2","icons":[]},"_meta":{"x":"y"}}}"#
            ),
            serde_json::json!({
                "protocolVersion": "2025-06-18",
                "clientInfo": {"name": "Claude", "version": "1.2"},
            })
        );
        let long = "n".repeat(10_000);
        let kept_long = kept(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":7,"clientInfo":{{"name":"{long}"}}}}}}"#
        ));
        assert_eq!(
            kept_long["clientInfo"]["name"].as_str().unwrap().len(),
            super::MAX_REPORTED_CHARS
        );
        assert_eq!(kept_long["protocolVersion"], serde_json::Value::Null);
        assert_eq!(
            kept(r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#),
            serde_json::json!({
                "protocolVersion": null,
                "clientInfo": {"name": null, "version": null},
            })
        );
        for other in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#[..],
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            br#"[{"jsonrpc":"2.0","id":1,"method":"initialize"}]"#,
            b"not json",
            b"",
        ] {
            assert_eq!(initialize_params(other), None);
        }

        assert!(succeeded(
            br#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}"#
        ));
        for other in [
            &br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"initialize"}}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"result":null}"#,
            b"data: {}",
            b"",
        ] {
            assert!(!succeeded(other));
        }
    }
}
