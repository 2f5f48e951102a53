//! The local sign-in of `xmcp stdio`: who its calls act for, and the tools
//! `auth_start` and `auth_status`, callable with nobody signed in.

use super::builtin::{no_arguments, refuse_arguments};
use super::registry::{Call, Called, ToolDef, ToolSource};
use rmcp::model::{CallToolResponse, CallToolResult, Tool, ToolAnnotations};
use std::sync::Arc;
use xmcp_auth::Principal;

/// The person signed in on this machine, as `xmcp stdio` acts for them in
/// place of a bearer token (`crate::local::Local` signs them in with X).
#[async_trait::async_trait]
pub trait LocalSession: Send + Sync {
    /// The principal every call acts for, or why there is none (a message
    /// for the model: how to sign in).
    async fn principal(&self) -> Result<Principal, String>;

    /// `auth_start`: begin a sign-in; answers with the URL to open.
    async fn auth_start(&self) -> serde_json::Value;

    /// `auth_status`: who is signed in, or how a sign-in stands.
    async fn auth_status(&self) -> serde_json::Value;
}

/// `auth_start` and `auth_status` over a local sign-in.
pub struct LocalSignIn(pub Arc<dyn LocalSession>);

fn public(tool: Tool) -> ToolDef {
    ToolDef {
        tool,
        scopes: Vec::new(),
        toolset: None,
        core: false,
        public: true,
        full_schema: None,
        once: false,
    }
}

#[async_trait::async_trait]
impl ToolSource for LocalSignIn {
    fn tools(&self) -> Vec<ToolDef> {
        vec![
            public(
                Tool::new(
                    "auth_start",
                    "Sign in to X for this MCP server: returns a login URL to open in a browser on this computer. Then call auth_status.",
                    no_arguments(),
                )
                .with_title("Sign in to X")
                .annotate(ToolAnnotations::new().read_only(false).destructive(false)),
            ),
            public(
                Tool::new(
                    "auth_status",
                    "Whether someone is signed in to X for this MCP server, or how a sign-in started with auth_start stands.",
                    no_arguments(),
                )
                .with_title("Sign-in status")
                .annotate(ToolAnnotations::new().read_only(true).open_world(false)),
            ),
        ]
    }

    async fn call(&self, call: Call<'_>) -> Called {
        self.respond(call).await.into()
    }
}

impl LocalSignIn {
    async fn respond(&self, call: Call<'_>) -> CallToolResponse {
        if let Some(refused) = refuse_arguments(call.name, &call.arguments) {
            return refused;
        }
        let value = if call.name == "auth_start" {
            self.0.auth_start().await
        } else {
            self.0.auth_status().await
        };
        let failed = value["status"] == "failed";
        let mut result = CallToolResult::structured(value);
        result.is_error = Some(failed);
        result.into()
    }
}
