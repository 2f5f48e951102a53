//! Step-up authorization: a `tools/call` (or `resources/read`) whose tool
//! (or resource) needs scopes the token lacks is answered at the HTTP layer
//! with 403 `insufficient_scope`, naming every scope it needs in one
//! challenge (MCP "Runtime Insufficient Scope Errors"), so clients can
//! re-authorize for exactly those.

use crate::sessions::McpSessions;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use xmcp_auth::server::GuardError;
use xmcp_auth::{AuthServer, Principal};

/// Scopes each tool or resource needs (those not listed need none).
pub type Scopes = HashMap<String, Vec<String>>;

/// The guard in front of `/mcp`: the bearer token, then the scopes.
#[derive(Clone)]
pub struct McpGuard(Arc<Guard>);

struct Guard {
    auth: Arc<AuthServer>,
    /// By tool name.
    tools: Scopes,
    /// By resource URI.
    resources: Scopes,
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
        tools: Scopes,
        resources: Scopes,
        max_body: usize,
        sessions: Option<Arc<McpSessions>>,
    ) -> Self {
        let mut every_needed: Vec<String> = tools
            .values()
            .chain(resources.values())
            .flatten()
            .cloned()
            .collect();
        every_needed.sort();
        every_needed.dedup();
        Self(Arc::new(Guard {
            auth,
            tools,
            resources,
            every_needed,
            max_body,
            sessions,
        }))
    }
}

/// Authenticates the bearer token (as [`xmcp_auth::routes::require_bearer`]
/// does); in stateful mode answers 404 to a request naming a session that
/// is not this user's (see [`crate::sessions`]); then answers 403
/// `insufficient_scope` to a call of a tool or read of a resource whose
/// scopes the token lacks. One middleware rather than several: each layer
/// on a route costs a few allocations per request.
pub async fn guard_mcp(State(guard): State<McpGuard>, req: Request, next: Next) -> Response {
    let guard = &*guard.0;
    let req = match xmcp_auth::routes::authenticate(&guard.auth, req).await {
        Ok(req) => req,
        Err(resp) => return resp,
    };
    let Some(principal) = req.extensions().get::<Principal>() else {
        // `authenticate` puts it there.
        return next.run(req).await;
    };
    let holds_every_scope = guard.every_needed.iter().all(|s| principal.has_scope(s));
    // Stateful mode: a request naming a session must name one of this
    // user's; one naming none may open one, for this user.
    let mut opener = None;
    if let Some(sessions) = &guard.sessions {
        let owned = match req.headers().get(SESSION_HEADER).map(|v| v.to_str()) {
            None => {
                opener = Some(principal.user_id.clone());
                Ok(true)
            }
            Some(Ok(id)) => sessions.check(id, &principal.user_id).await,
            Some(Err(_)) => Ok(false),
        };
        let refusal = match owned {
            Ok(true) => None,
            Ok(false) => Some(session_not_found()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read MCP sessions");
                Some(xmcp_auth::routes::guard_response(
                    &guard.auth,
                    GuardError::Unavailable,
                ))
            }
        };
        if let Some(resp) = refusal {
            return xmcp_auth::routes::reject_unread(req, resp).await;
        }
    }
    if req.method() != http::Method::POST || holds_every_scope {
        return forward(guard, opener, req, next).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, guard.max_body).await {
        Ok(b) => b,
        Err(_) => {
            // The rest of the body is unread: the connection cannot be reused.
            return (
                http::StatusCode::PAYLOAD_TOO_LARGE,
                [(http::header::CONNECTION, "close")],
                axum::Json(serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": null,
                    "error": {"code": -32600, "message": "the MCP message is too large"}
                })),
            )
                .into_response();
        }
    };
    let required = match target(&bytes) {
        Some(Target::Tool(name)) => guard.tools.get(&name),
        Some(Target::Resource(uri)) => guard.resources.get(&uri),
        None => None,
    };
    if let Some(principal) = parts.extensions.get::<Principal>()
        && let Some(required) = required
    {
        let missing = principal.missing_scopes(required);
        if !missing.is_empty() {
            let all: Vec<&str> = required.iter().map(String::as_str).collect();
            return xmcp_auth::routes::insufficient_scope_response(&guard.auth, &all);
        }
    }
    forward(
        guard,
        opener,
        Request::from_parts(parts, Body::from(bytes)),
        next,
    )
    .await
}

const SESSION_HEADER: &str = "mcp-session-id";

/// What rmcp answers for a session it does not know.
fn session_not_found() -> Response {
    (http::StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}

/// Pass `req` on. A session it opens (`initialize`) is bound to `opener`;
/// if it could not be recorded, the client gets 503 instead of a session
/// nobody could use.
async fn forward(guard: &Guard, opener: Option<String>, req: Request, next: Next) -> Response {
    let Some(user_id) = opener else {
        let ending = req.method() == http::Method::DELETE;
        let mut resp = next.run(req).await;
        // rmcp answers the end of a session 202. The Python and TypeScript
        // SDKs' servers answer 200, and the Python client reports anything
        // but 200 or 204 as "Session termination failed".
        if ending && resp.status() == http::StatusCode::ACCEPTED {
            *resp.status_mut() = http::StatusCode::OK;
        }
        return resp;
    };
    let (resp, recorded) = McpSessions::opening(user_id, next.run(req)).await;
    if resp.headers().contains_key(SESSION_HEADER) && !recorded {
        return xmcp_auth::routes::guard_response(&guard.auth, GuardError::Unavailable);
    }
    resp
}

#[derive(Debug, PartialEq, Eq)]
enum Target {
    Tool(String),
    Resource(String),
}

/// The tool a `tools/call`, or the resource a `resources/read`, names.
fn target(body: &[u8]) -> Option<Target> {
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
        params: Option<Params>,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        name: Option<String>,
        uri: Option<String>,
    }
    let call: Call<'_> = serde_json::from_slice(body).ok()?;
    match call.method? {
        "tools/call" => Some(Target::Tool(call.params?.name?)),
        "resources/read" => Some(Target::Resource(call.params?.uri?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Target, target};

    #[test]
    fn finds_the_called_tool_or_read_resource() {
        assert_eq!(
            target(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#),
            Some(Target::Tool("whoami".into()))
        );
        assert_eq!(
            target(
                br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"x://me"}}"#
            ),
            Some(Target::Resource("x://me".into()))
        );
        assert_eq!(
            target(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(target(b"not json"), None);
        assert_eq!(target(br#"[{"method":"tools/call"}]"#), None);
    }
}
