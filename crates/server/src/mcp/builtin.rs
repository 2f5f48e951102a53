//! The tools every xmcp server has: `whoami` and `echo`.

use super::registry::{Call, Called, ToolDef, ToolSource, tool_error};
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// An input schema taking no arguments.
pub fn no_arguments() -> Arc<Map<String, Value>> {
    Arc::new(
        json!({"type": "object", "properties": {}, "additionalProperties": false})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    )
}

/// The tool error for arguments a tool does not take, if any were given.
pub fn refuse_arguments(tool: &str, args: &Map<String, Value>) -> Option<CallToolResponse> {
    args.keys().next().map(|extra| {
        tool_error(format!(
            "unknown argument `{extra}`: {tool} takes no arguments"
        ))
    })
}

/// A built-in tool's definition: offered in every selection.
pub fn builtin(tool: Tool, scopes: &[&str]) -> ToolDef {
    ToolDef {
        tool,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        toolset: None,
        core: false,
        public: false,
        full_schema: None,
        once: false,
    }
}

/// `whoami` and `echo`.
pub struct Builtin;

#[async_trait::async_trait]
impl ToolSource for Builtin {
    fn tools(&self) -> Vec<ToolDef> {
        let whoami = Tool::new(
            "whoami",
            "Show who this MCP session acts for: the signed-in user, the client, and the granted scopes.",
            no_arguments(),
        )
        .with_title("Who am I")
        .annotate(ToolAnnotations::new().read_only(true).open_world(false));
        let echo = Tool::new(
            "echo",
            "Return the given message unchanged (a connectivity check).",
            Arc::new(
                json!({
                    "type": "object",
                    "properties": {"message": {"type": "string", "description": "Text to echo back."}},
                    "required": ["message"],
                    "additionalProperties": false
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ),
        )
        .with_title("Echo")
        .annotate(ToolAnnotations::new().read_only(true).open_world(false));
        vec![builtin(whoami, &["users.read"]), builtin(echo, &[])]
    }

    async fn call(&self, call: Call<'_>) -> Called {
        self.respond(call).await.into()
    }
}

impl Builtin {
    async fn respond(&self, call: Call<'_>) -> CallToolResponse {
        let principal = match call.principal() {
            Ok(p) => p,
            Err(refused) => return refused.into(),
        };
        match call.name {
            "whoami" => {
                if let Some(refused) = refuse_arguments("whoami", &call.arguments) {
                    return refused;
                }
                let me = json!({
                    "user_id": principal.user_id,
                    "subject": principal.subject,
                    "username": principal.username,
                    "client_id": principal.client_id,
                    "scopes": principal.scopes,
                    "token_expires_at": principal.expires_at,
                    "resource": principal.resource,
                });
                let mut result = CallToolResult::structured(me);
                result.is_error = Some(false);
                result.into()
            }
            _ => {
                if let Some(extra) = call.arguments.keys().find(|k| *k != "message") {
                    return tool_error(format!(
                        "unknown argument `{extra}`: echo takes only `message`"
                    ));
                }
                match call.arguments.get("message").and_then(Value::as_str) {
                    Some(m) => {
                        CallToolResult::success(vec![ContentBlock::text(m.to_owned())]).into()
                    }
                    None => tool_error("`message` (a string) is required"),
                }
            }
        }
    }
}
