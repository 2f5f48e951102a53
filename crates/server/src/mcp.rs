//! The MCP server handler. Tools receive the authenticated [`Principal`]
//! that the resource guard put into the HTTP request's extensions.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use std::sync::Arc;
use xmcp_auth::Principal;

/// The xmcp MCP handler. Cheap to clone: one is made per request in
/// stateless mode.
#[derive(Clone)]
pub struct XmcpHandler {
    tools: Arc<Vec<Tool>>,
}

impl Default for XmcpHandler {
    fn default() -> Self {
        Self::new()
    }
}

fn object(v: Value) -> Arc<serde_json::Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

impl XmcpHandler {
    /// Scopes each tool needs; enforced before the call reaches the handler
    /// (see [`crate::scopes`]).
    pub fn tool_scopes() -> std::collections::HashMap<String, Vec<String>> {
        [("whoami".to_owned(), vec!["users.read".to_owned()])]
            .into_iter()
            .collect()
    }

    pub fn new() -> Self {
        let whoami = Tool::new(
            "whoami",
            "Show who this MCP session acts for: the signed-in user, the client, and the granted scopes.",
            object(json!({"type": "object", "properties": {}, "additionalProperties": false})),
        )
        .annotate(ToolAnnotations::with_title("Who am I").read_only(true).open_world(false));
        let echo = Tool::new(
            "echo",
            "Return the given message unchanged (a connectivity check).",
            object(json!({
                "type": "object",
                "properties": {"message": {"type": "string", "description": "Text to echo back."}},
                "required": ["message"],
                "additionalProperties": false
            })),
        )
        .annotate(
            ToolAnnotations::with_title("Echo")
                .read_only(true)
                .open_world(false),
        );
        Self {
            tools: Arc::new(vec![whoami, echo]),
        }
    }
}

/// The principal of the HTTP request carrying this MCP message.
fn principal(ctx: &RequestContext<RoleServer>) -> Option<Principal> {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<Principal>())
        .cloned()
}

fn tool_error(message: impl Into<String>) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(message.into())]).into()
}

impl ServerHandler for XmcpHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("xmcp", env!("CARGO_PKG_VERSION"))
                    .with_title("xmcp: the X API over MCP"),
            )
            .with_instructions(
                "Tools act on X for the signed-in user. Call `whoami` to see who that is.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(principal) = principal(&context) else {
            return Ok(tool_error("this request is not authenticated"));
        };
        let args = request.arguments.unwrap_or_default();
        match request.name.as_ref() {
            "whoami" => {
                if let Some(extra) = args.keys().next() {
                    return Ok(tool_error(format!(
                        "unknown argument `{extra}`: whoami takes no arguments"
                    )));
                }
                let me = json!({
                    "user_id": principal.user_id,
                    "subject": principal.subject,
                    "username": principal.username,
                    "client_id": principal.client_id,
                    "scopes": principal.scopes,
                    "token_expires_at": principal.expires_at,
                });
                let mut result = CallToolResult::structured(me);
                result.is_error = Some(false);
                Ok(result.into())
            }
            "echo" => {
                if let Some(extra) = args.keys().find(|k| *k != "message") {
                    return Ok(tool_error(format!(
                        "unknown argument `{extra}`: echo takes only `message`"
                    )));
                }
                match args.get("message").and_then(Value::as_str) {
                    Some(m) => {
                        Ok(CallToolResult::success(vec![ContentBlock::text(m.to_owned())]).into())
                    }
                    None => Ok(tool_error("`message` (a string) is required")),
                }
            }
            other => Err(ErrorData::invalid_params(
                format!("unknown tool `{other}`"),
                None,
            )),
        }
    }
}
