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
use xmcp_x::{XApi, XRequest, XResponse};

/// The xmcp MCP handler. Cheap to clone: one is made per request in
/// stateless mode.
#[derive(Clone)]
pub struct XmcpHandler {
    tools: Arc<Vec<Tool>>,
    x: Option<Arc<XApi>>,
}

/// X scopes `getUsersMe` needs (as X's OpenAPI document lists them).
const ME_SCOPES: [&str; 2] = ["tweet.read", "users.read"];

fn object(v: Value) -> Arc<serde_json::Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

impl XmcpHandler {
    /// Scopes each tool needs; enforced before the call reaches the handler
    /// (see [`crate::scopes`]).
    pub fn tool_scopes(&self) -> std::collections::HashMap<String, Vec<String>> {
        let mut out: std::collections::HashMap<String, Vec<String>> =
            [("whoami".to_owned(), vec!["users.read".to_owned()])]
                .into_iter()
                .collect();
        if self.x.is_some() {
            out.insert("getUsersMe".into(), ME_SCOPES.map(String::from).to_vec());
        }
        out
    }

    /// The handler; with `x`, the tools that call X for the signed-in user.
    pub fn new(x: Option<Arc<XApi>>) -> Self {
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
        let mut tools = vec![whoami, echo];
        if x.is_some() {
            tools.push(
                Tool::new(
                    "getUsersMe",
                    "Get my User: the X account this session acts for (X's GET /2/users/me).",
                    object(json!({
                        "type": "object",
                        "properties": {
                            "user.fields": {
                                "type": "array",
                                "items": {"type": "string"},
                                "description": "Extra User fields, e.g. created_at, description, public_metrics."
                            }
                        },
                        "additionalProperties": false
                    })),
                )
                .annotate(
                    ToolAnnotations::with_title("Get my User")
                        .read_only(true)
                        .open_world(true),
                ),
            );
        }
        Self {
            tools: Arc::new(tools),
            x,
        }
    }

    /// Call X for the principal; X's errors become tool errors carrying X's
    /// problem details.
    async fn call_x(
        &self,
        principal: &Principal,
        required: &[&str],
        req: XRequest<'_>,
    ) -> CallToolResponse {
        let Some(x) = &self.x else {
            return tool_error("this server is not connected to X");
        };
        // The client's token has the scope (checked at the HTTP layer), but
        // the user may have unticked it at X: say which one is missing.
        match x.vault().access(&principal.user_id).await {
            Ok(access) => {
                let missing: Vec<&str> = required
                    .iter()
                    .copied()
                    .filter(|s| !access.has_scope(s))
                    .collect();
                if !missing.is_empty() {
                    return tool_error(format!(
                        "X did not grant the scope(s) {} that this tool needs; authorize again from your MCP client and allow them at X",
                        missing.join(", ")
                    ));
                }
            }
            Err(e) => return tool_error(e.to_string()),
        }
        match x.call(&principal.user_id, &req).await {
            Ok(resp) if resp.is_success() => {
                let mut result = CallToolResult::structured(resp.body);
                result.is_error = Some(false);
                result.into()
            }
            Ok(resp) => x_error(&resp),
            Err(e) => tool_error(e.to_string()),
        }
    }
}

/// An unsuccessful X answer as a tool error: a sentence for people, X's
/// problem details as structured content.
fn x_error(resp: &XResponse) -> CallToolResponse {
    let b = &resp.body;
    let field = |k: &str| b.get(k).and_then(Value::as_str);
    let mut text = format!(
        "X answered HTTP {}: {}",
        resp.status,
        [field("title"), field("detail")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ")
    );
    if let Some(t) = &resp.transaction_id {
        text.push_str(&format!(" (x-transaction-id {t})"));
    }
    let mut details = json!({
        "status": resp.status,
        "title": field("title"),
        "detail": field("detail"),
        "type": field("type"),
        "x-transaction-id": resp.transaction_id,
        "body": b,
    });
    if let Some(rl) = &resp.rate_limit {
        details["rate_limit"] = json!(rl);
    }
    let mut result = CallToolResult::structured_error(details);
    result.content = vec![ContentBlock::text(text)];
    result.into()
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
            "getUsersMe" if self.x.is_some() => {
                let mut query = Vec::new();
                for (k, v) in &args {
                    match (k.as_str(), v) {
                        ("user.fields", Value::Array(items)) => {
                            let fields: Vec<&str> =
                                items.iter().filter_map(Value::as_str).collect();
                            if fields.len() != items.len() {
                                return Ok(tool_error("`user.fields` must be an array of strings"));
                            }
                            query.push(("user.fields".to_owned(), fields.join(",")));
                        }
                        ("user.fields", _) => {
                            return Ok(tool_error("`user.fields` must be an array of strings"));
                        }
                        (other, _) => {
                            return Ok(tool_error(format!(
                                "unknown argument `{other}`: getUsersMe takes only `user.fields`"
                            )));
                        }
                    }
                }
                let req = XRequest {
                    method: http::Method::GET,
                    path: "/2/users/me",
                    query: &query,
                    body: None,
                };
                Ok(self.call_x(&principal, &ME_SCOPES, req).await)
            }
            other => Err(ErrorData::invalid_params(
                format!("unknown tool `{other}`"),
                None,
            )),
        }
    }
}
