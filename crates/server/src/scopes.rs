//! Step-up authorization: a `tools/call` (or `resources/read`) whose tool
//! (or resource) needs scopes the token lacks is answered at the HTTP layer
//! with 403 `insufficient_scope`, naming every scope it needs in one
//! challenge (MCP "Runtime Insufficient Scope Errors"), so clients can
//! re-authorize for exactly those.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
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
}

impl McpGuard {
    pub fn new(auth: Arc<AuthServer>, tools: Scopes, resources: Scopes, max_body: usize) -> Self {
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
        }))
    }
}

/// Authenticates the bearer token (as [`xmcp_auth::routes::require_bearer`]
/// does), then answers 403 `insufficient_scope` to a call of a tool or read
/// of a resource whose scopes the token lacks. One middleware rather than
/// two: each layer on a route costs a few allocations per request.
pub async fn guard_mcp(State(guard): State<McpGuard>, req: Request, next: Next) -> Response {
    let guard = &*guard.0;
    let req = match xmcp_auth::routes::authenticate(&guard.auth, req).await {
        Ok(req) => req,
        Err(resp) => return resp,
    };
    let holds_every_scope = req
        .extensions()
        .get::<Principal>()
        .is_some_and(|p| guard.every_needed.iter().all(|s| p.has_scope(s)));
    if req.method() != http::Method::POST || holds_every_scope {
        return next.run(req).await;
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
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
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
