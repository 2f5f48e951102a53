//! Step-up authorization: a `tools/call` whose tool needs scopes the token
//! lacks is answered at the HTTP layer with 403 `insufficient_scope`, naming
//! every scope the tool needs in one challenge (MCP "Runtime Insufficient
//! Scope Errors"), so clients can re-authorize for exactly those.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use xmcp_auth::{AuthServer, Principal};

/// Scopes each tool needs (tools not listed need none).
pub type ToolScopes = Arc<HashMap<String, Vec<String>>>;

#[derive(Clone)]
pub struct ScopeGuard {
    pub auth: Arc<AuthServer>,
    pub tools: ToolScopes,
    pub max_body: usize,
}

/// Runs after the bearer guard (which put the [`Principal`] in extensions).
pub async fn require_tool_scopes(
    State(guard): State<ScopeGuard>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != http::Method::POST {
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
    if let Some(principal) = parts.extensions.get::<Principal>()
        && let Some(tool) = called_tool(&bytes)
        && let Some(required) = guard.tools.get(&tool)
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

/// The tool a JSON-RPC `tools/call` request names, if that is what it is.
fn called_tool(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
        params: Option<Params>,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        name: Option<String>,
    }
    let call: Call<'_> = serde_json::from_slice(body).ok()?;
    (call.method? == "tools/call").then_some(call.params?.name?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_called_tool_only_in_tools_call() {
        assert_eq!(
            super::called_tool(
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#
            )
            .as_deref(),
            Some("whoami")
        );
        assert_eq!(
            super::called_tool(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(super::called_tool(b"not json"), None);
        assert_eq!(super::called_tool(br#"[{"method":"tools/call"}]"#), None);
    }
}
