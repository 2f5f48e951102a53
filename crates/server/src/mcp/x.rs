//! The MCP server handler. Tools and resources receive the authenticated
//! [`Principal`] that the resource guard put into the HTTP request's
//! extensions, or, over stdio, the person signed in locally ([`Local`]).
//!
//! Tools: `whoami` and `echo`, and with X, `rate_limits` plus one tool per
//! X operation in the [`Catalog`]. Resources: `x://me`,
//! `x://bookmarks/latest` and `x://rate-limits`. Over stdio, also
//! `auth_start` and `auth_status`, to sign in from the MCP client.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, MetaObject, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use xmcp_auth::Principal;
use xmcp_openapi::{Catalog, ToolSpec};
use xmcp_x::{Caller, RateLimit, XApi, XCallError, XRequest, XResponse};

use crate::local::Local;

/// The xmcp MCP handler. Cheap to clone: one is made per request in
/// stateless mode.
#[derive(Clone)]
pub struct XmcpHandler {
    inner: Arc<Inner>,
}

struct Inner {
    tools: Vec<Tool>,
    catalog: Arc<Catalog>,
    x: Option<Arc<XApi>>,
    /// Scopes our authorization server issues: the only ones a client can
    /// step up to.
    supported_scopes: Vec<String>,
    /// Over stdio: the locally signed-in person, instead of a bearer token.
    local: Option<Arc<Local>>,
}

/// A resource backed by an X operation, with the arguments it is read with.
struct XResource {
    uri: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    operation: &'static str,
    args: fn() -> Value,
}

const X_RESOURCES: [XResource; 2] = [
    XResource {
        uri: "x://me",
        name: "me",
        title: "My X profile",
        description: "The X account this session acts for: profile, description and public metrics.",
        operation: "getUsersMe",
        args: || json!({"user_fields": ["created_at", "description", "location", "profile_image_url", "public_metrics", "url", "verified"]}),
    },
    XResource {
        uri: "x://bookmarks/latest",
        name: "bookmarks-latest",
        title: "My latest bookmarks",
        description: "The 10 Posts you bookmarked most recently on X, with their authors.",
        operation: "getUsersBookmarks",
        args: || {
            json!({
                "max_results": 10,
                "expansions": ["author_id"],
                "post_fields": ["created_at", "author_id", "public_metrics"],
                "tweet_fields": ["created_at", "author_id", "public_metrics"],
                "user_fields": ["username", "name"],
            })
        },
    },
];

const RATE_LIMITS_URI: &str = "x://rate-limits";

fn object(v: Value) -> Arc<Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

/// The MCP tool for an X operation.
pub fn x_tool(spec: &ToolSpec) -> Tool {
    let h = spec.hints;
    let meta = json!({
        "xmcp.dev/x-operation": {
            "operationId": spec.operation_id,
            "method": spec.method.as_str(),
            "path": spec.path,
            "scopes": spec.access.user_scopes,
            "caller": if spec.access.app_only() { "app" } else { "user" },
        }
    });
    Tool::new(
        spec.name.clone(),
        spec.description.clone(),
        spec.input_schema.clone(),
    )
    .with_title(spec.title.clone())
    .annotate(
        ToolAnnotations::with_title(spec.title.clone())
            .read_only(h.read_only)
            .destructive(h.destructive)
            .idempotent(h.idempotent)
            .open_world(true),
    )
    .with_meta(MetaObject(meta.as_object().cloned().unwrap_or_default()))
}

/// Keep the arguments `spec` accepts, and of list values those its enum
/// allows (documents differ: `post.fields` or `tweet.fields`).
fn fit_arguments(spec: &ToolSpec, wanted: Value) -> Map<String, Value> {
    let props = spec
        .input_schema
        .get("properties")
        .and_then(Value::as_object);
    let mut out = Map::new();
    for (k, v) in wanted.as_object().into_iter().flatten() {
        let Some(p) = props.and_then(|p| p.get(k)) else {
            continue;
        };
        let v = match (v, p.pointer("/items/enum").and_then(Value::as_array)) {
            (Value::Array(items), Some(allowed)) => {
                let kept: Vec<Value> = items
                    .iter()
                    .filter(|i| allowed.contains(i))
                    .cloned()
                    .collect();
                if kept.is_empty() {
                    continue;
                }
                Value::Array(kept)
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    out
}

/// `HH:MM:SS UTC` of a Unix time (X's windows are 15 minutes: the time of
/// day is what a reader needs).
fn time_of_day(unix: i64) -> String {
    let s = unix.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
}

fn rate_limit_json(endpoint: &str, rl: &RateLimit, now: i64) -> Value {
    json!({
        "endpoint": endpoint,
        "limit": rl.limit,
        "remaining": rl.remaining,
        "reset": rl.reset,
        "resets_in_seconds": (rl.reset - now).max(0),
    })
}

impl XmcpHandler {
    /// The handler; with `x`, the tools of `catalog` that call X.
    pub fn new(x: Option<Arc<XApi>>, catalog: Arc<Catalog>, supported_scopes: &[String]) -> Self {
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
                    "rate_limits",
                    "Show X's rate limits for your recent calls: per endpoint, the calls left in the current window and when it resets.",
                    object(json!({"type": "object", "properties": {}, "additionalProperties": false})),
                )
                .annotate(
                    ToolAnnotations::with_title("X rate limits")
                        .read_only(true)
                        .open_world(false),
                ),
            );
            tools.extend(catalog.tools.iter().map(x_tool));
        }
        Self {
            inner: Arc::new(Inner {
                tools,
                catalog,
                x,
                supported_scopes: supported_scopes.to_vec(),
                local: None,
            }),
        }
    }

    /// The handler of `xmcp stdio`: acts for the person signed in with
    /// `xmcp login` (or through `auth_start`), with every X scope they granted.
    pub fn local(x: Arc<XApi>, catalog: Arc<Catalog>, local: Arc<Local>) -> Self {
        let all_scopes: Vec<String> = catalog
            .tools
            .iter()
            .filter_map(|t| t.access.user_scopes.clone())
            .flatten()
            .collect();
        let base = Self::new(Some(x), catalog, &all_scopes);
        let mut tools = base.inner.tools.clone();
        let empty =
            || object(json!({"type": "object", "properties": {}, "additionalProperties": false}));
        tools.splice(
            0..0,
            [
                Tool::new(
                    "auth_start",
                    "Sign in to X for this MCP server: returns a login URL to open in a browser on this computer. Then call auth_status.",
                    empty(),
                )
                .annotate(ToolAnnotations::with_title("Sign in to X").read_only(false).destructive(false).open_world(true)),
                Tool::new(
                    "auth_status",
                    "Whether someone is signed in to X for this MCP server, or how a sign-in started with auth_start stands.",
                    empty(),
                )
                .annotate(ToolAnnotations::with_title("Sign-in status").read_only(true).open_world(false)),
            ],
        );
        Self {
            inner: Arc::new(Inner {
                tools,
                catalog: base.inner.catalog.clone(),
                x: base.inner.x.clone(),
                supported_scopes: base.inner.supported_scopes.clone(),
                local: Some(local),
            }),
        }
    }

    /// Who this request acts for, or why nobody.
    async fn principal(&self, ctx: &RequestContext<RoleServer>) -> Result<Principal, String> {
        match &self.inner.local {
            Some(local) => local.principal().await,
            None => principal(ctx).ok_or_else(|| "this request is not authenticated".to_owned()),
        }
    }

    /// The tools, as `tools/list` returns them.
    pub fn tools(&self) -> &[Tool] {
        &self.inner.tools
    }

    /// Scopes each tool needs from the client's token; enforced before the
    /// call reaches the handler (see [`crate::scopes`]). Only scopes this
    /// server issues are listed: a client could never step up to others.
    pub fn tool_scopes(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> =
            [("whoami".to_owned(), vec!["users.read".to_owned()])]
                .into_iter()
                .collect();
        if self.inner.x.is_none() {
            return out;
        }
        for spec in &self.inner.catalog.tools {
            if let Some(scopes) = &spec.access.user_scopes {
                out.insert(spec.name.clone(), self.issuable(scopes));
            }
        }
        out
    }

    /// Scopes each resource needs, like [`Self::tool_scopes`].
    pub fn resource_scopes(&self) -> HashMap<String, Vec<String>> {
        X_RESOURCES
            .iter()
            .filter_map(|r| {
                let spec = self.inner.catalog.get(r.operation)?;
                let scopes = spec.access.user_scopes.as_ref()?;
                Some((r.uri.to_owned(), self.issuable(scopes)))
            })
            .collect()
    }

    fn issuable(&self, scopes: &[String]) -> Vec<String> {
        scopes
            .iter()
            .filter(|s| self.inner.supported_scopes.contains(s))
            .cloned()
            .collect()
    }

    /// Call X for `spec`; the answer as X gave it, or why there is none.
    async fn call_x(
        &self,
        x: &XApi,
        principal: &Principal,
        spec: &ToolSpec,
        args: Map<String, Value>,
    ) -> Result<(String, XResponse), String> {
        let me = principal.subject.strip_prefix("x:");
        let request = spec
            .request(args, me)
            .map_err(|e| format!("{}: {e}", spec.name))?;
        let caller = if spec.access.app_only() {
            Caller::App
        } else {
            Caller::User(&principal.user_id)
        };
        let endpoint = format!("{} {}", spec.method, spec.path);
        let method =
            http::Method::from_bytes(spec.method.as_str().as_bytes()).map_err(|e| e.to_string())?;
        let no_scopes = Vec::new();
        let req = XRequest {
            method,
            endpoint: &endpoint,
            path: &request.path,
            query: &request.query,
            body: request.body.as_ref(),
            scopes: spec.access.user_scopes.as_ref().unwrap_or(&no_scopes),
        };
        match x.call_as(caller, &req).await {
            Ok(resp) => Ok((endpoint, resp)),
            Err(XCallError::MissingScopes(missing)) => Err(self.missing_scopes_message(&missing)),
            Err(e) => Err(e.to_string()),
        }
    }

    fn missing_scopes_message(&self, missing: &[String]) -> String {
        let unrequestable: Vec<&str> = missing
            .iter()
            .filter(|s| !self.inner.supported_scopes.contains(s))
            .map(String::as_str)
            .collect();
        if unrequestable.is_empty() {
            format!(
                "X did not grant the scope(s) {} that this needs; authorize again from your MCP client and allow them at X",
                missing.join(", ")
            )
        } else {
            format!(
                "this needs the X scope(s) {}, which this server does not request from X; its operator can add them to XMCP_X_SCOPES",
                unrequestable.join(", ")
            )
        }
    }

    async fn call_generated(
        &self,
        principal: &Principal,
        spec: &ToolSpec,
        args: Map<String, Value>,
    ) -> CallToolResponse {
        let Some(x) = &self.inner.x else {
            return tool_error("this server is not connected to X");
        };
        let (endpoint, resp) = match self.call_x(x, principal, spec, args).await {
            Ok(r) => r,
            Err(message) => return tool_error(message),
        };
        let now = x.vault().clock().now();
        if resp.is_success() {
            x_success(resp, &endpoint, now)
        } else {
            x_error(&resp, &endpoint, now)
        }
    }

    fn rate_limits(&self, principal: &Principal) -> Value {
        let Some(x) = &self.inner.x else {
            return json!({"limits": []});
        };
        let now = x.vault().clock().now();
        let mut limits: Vec<Value> = x
            .rate_limits()
            .of(Caller::User(&principal.user_id), now)
            .iter()
            .map(|(e, rl)| rate_limit_json(e, rl, now))
            .collect();
        let app: Vec<Value> = x
            .rate_limits()
            .of(Caller::App, now)
            .iter()
            .map(|(e, rl)| rate_limit_json(e, rl, now))
            .collect();
        limits.sort_by_key(|l| l["remaining"].as_u64());
        json!({
            "limits": limits,
            "app_limits": app,
            "note": "What X reported on this server's recent calls; endpoints not called in the current window are not listed.",
        })
    }
}

/// A successful X answer: X's JSON as structured content (and as text),
/// the rate limit in `_meta`.
fn x_success(resp: XResponse, endpoint: &str, now: i64) -> CallToolResponse {
    let body = match resp.body {
        Value::Object(_) => resp.body,
        Value::Null => json!({"status": resp.status}),
        other => json!({"status": resp.status, "body": other}),
    };
    let mut result = CallToolResult::structured(body);
    result.is_error = Some(false);
    if let Some(rl) = &resp.rate_limit {
        let meta = json!({"xmcp.dev/x-rate-limit": rate_limit_json(endpoint, rl, now)});
        result.meta = Some(MetaObject(meta.as_object().cloned().unwrap_or_default()));
        // MCP's logging notifications are deprecated (SEP-2577): the
        // warning travels with the result, where the model reads it.
        if rl.is_low() {
            result.content.push(ContentBlock::text(format!(
                "Warning: X's rate limit for {endpoint} is nearly used up: {} of {} calls left until {} (in {} s).",
                rl.remaining,
                rl.limit,
                time_of_day(rl.reset),
                (rl.reset - now).max(0)
            )));
        }
    }
    result.into()
}

/// X's problem fields: top level (problem+json), or the first of `errors`.
fn problem_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str).or_else(|| {
        body.pointer(&format!("/errors/0/{key}"))
            .and_then(Value::as_str)
    })
}

/// What an unsuccessful X answer means, in plain words.
fn explain(resp: &XResponse, endpoint: &str, now: i64) -> String {
    let b = &resp.body;
    let kind = [
        problem_field(b, "type"),
        problem_field(b, "reason"),
        problem_field(b, "title"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
    .to_ascii_lowercase();
    match resp.status {
        402 => "The X developer account behind this server has no credits left for this call (X's pay-per-use billing). Its operator can add credits in the X developer console; then retry.".into(),
        403 if kind.contains("client-forbidden") || kind.contains("client-not-enrolled") || kind.contains("unsupported-authentication") => {
            "This X app's access level does not include this endpoint: X decides which endpoints an app may call by its plan. The server's operator can change the plan in the X developer console.".into()
        }
        403 => "X refused this action for this account.".into(),
        429 => match &resp.rate_limit {
            Some(rl) => format!(
                "X's rate limit for {endpoint} is used up ({} calls per window); it resets at {} (in {} s): retry then.",
                rl.limit,
                time_of_day(rl.reset),
                (rl.reset - now).max(0)
            ),
            None => "X is rate limiting these calls; retry in a few minutes.".into(),
        },
        401 => "X rejected this user's token even after refreshing it; authorize again from your MCP client.".into(),
        404 => "X found nothing there.".into(),
        400 => "X rejected the request as invalid.".into(),
        s if s >= 500 => "X failed repeatedly; try again in a moment.".into(),
        _ => "X did not do it.".into(),
    }
}

/// An unsuccessful X answer as a tool error: a sentence for people, X's
/// problem details as structured content.
fn x_error(resp: &XResponse, endpoint: &str, now: i64) -> CallToolResponse {
    let b = &resp.body;
    let explanation = explain(resp, endpoint, now);
    let mut said: Vec<&str> = [
        problem_field(b, "title"),
        b.get("detail").and_then(Value::as_str),
    ]
    .into_iter()
    .flatten()
    .collect();
    let messages: Vec<&str> = b
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e.get("message")
                .or_else(|| e.get("detail"))
                .and_then(Value::as_str)
        })
        .take(3)
        .collect();
    said.extend(messages);
    said.dedup();
    let mut text = format!("{explanation} X answered HTTP {}", resp.status);
    if !said.is_empty() {
        text.push_str(": ");
        text.push_str(&said.join(": "));
    }
    if let Some(t) = &resp.transaction_id {
        text.push_str(&format!(" (x-transaction-id {t})"));
    }
    let mut details = json!({
        "status": resp.status,
        "explanation": explanation,
        "title": problem_field(b, "title"),
        "detail": problem_field(b, "detail"),
        "type": problem_field(b, "type"),
        "x-transaction-id": resp.transaction_id,
        "body": b,
    });
    if let Some(rl) = &resp.rate_limit {
        details["rate_limit"] = rate_limit_json(endpoint, rl, now);
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

fn json_resource(uri: &str, value: &Value) -> ReadResourceResponse {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ])
    .into()
}

impl ServerHandler for XmcpHandler {
    fn get_info(&self) -> ServerConfig {
        let info = Implementation::new("xmcp", env!("CARGO_PKG_VERSION"))
            .with_title("xmcp: the X API over MCP");
        if self.inner.x.is_none() {
            return ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
                .with_server_info(info)
                .with_instructions("Call `whoami` to see who this session acts for.");
        }
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_resources()
                .enable_tools()
                .build(),
        )
        .with_server_info(info)
        .with_instructions(if self.inner.local.is_some() {
            concat!(
                "Tools act on X for the signed-in user, one per X API v2 operation (named by X's operationId). Call `whoami` to see who that is. Arguments that must be your own X user id default to it. X's errors come back as tool errors with X's problem details; `rate_limits` shows X's rate limits for your recent calls.",
                " If a tool says nobody is signed in, call `auth_start`, give the user its login_url, then call `auth_status`."
            )
        } else {
            "Tools act on X for the signed-in user, one per X API v2 operation (named by X's operationId). Call `whoami` to see who that is. Arguments that must be your own X user id default to it. X's errors come back as tool errors with X's problem details; `rate_limits` shows X's rate limits for your recent calls."
        })
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.inner.tools.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let start = std::time::Instant::now();
        // Only names of real tools become labels (bounded cardinality).
        let tool = if self.inner.tools.iter().any(|t| t.name == request.name) {
            request.name.to_string()
        } else {
            "unknown".to_owned()
        };
        let result = self.call_tool_inner(request, context).await;
        let outcome = match &result {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => "error",
            Ok(_) => "ok",
            Err(_) => "invalid",
        };
        metrics::histogram!("xmcp_tool_call_duration_seconds", "tool" => tool, "outcome" => outcome)
            .record(start.elapsed().as_secs_f64());
        result
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        if self.inner.x.is_none() {
            return Ok(ListResourcesResult::with_all_items(Vec::new()));
        }
        let mut resources: Vec<Resource> = X_RESOURCES
            .iter()
            .filter(|r| self.inner.catalog.get(r.operation).is_some())
            .map(|r| {
                Resource::new(r.uri, r.name)
                    .with_title(r.title)
                    .with_description(r.description)
                    .with_mime_type("application/json")
            })
            .collect();
        resources.push(
            Resource::new(RATE_LIMITS_URI, "rate-limits")
                .with_title("My X rate limits")
                .with_description("X's rate limits for your recent calls, per endpoint.")
                .with_mime_type("application/json"),
        );
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let principal = self
            .principal(&context)
            .await
            .map_err(|why| ErrorData::invalid_request(why, None))?;
        let not_found = || {
            ErrorData::resource_not_found(
                format!("no resource `{}`", request.uri),
                Some(json!({"uri": request.uri})),
            )
        };
        let Some(x) = &self.inner.x else {
            return Err(not_found());
        };
        if request.uri == RATE_LIMITS_URI {
            return Ok(json_resource(
                RATE_LIMITS_URI,
                &self.rate_limits(&principal),
            ));
        }
        let Some((resource, spec)) = X_RESOURCES
            .iter()
            .find(|r| r.uri == request.uri)
            .and_then(|r| Some((r, self.inner.catalog.get(r.operation)?)))
        else {
            return Err(not_found());
        };
        let args = fit_arguments(spec, (resource.args)());
        match self.call_x(x, &principal, spec, args).await {
            Ok((_, resp)) if resp.is_success() => Ok(json_resource(resource.uri, &resp.body)),
            Ok((endpoint, resp)) => {
                let now = x.vault().clock().now();
                Err(ErrorData::internal_error(
                    format!(
                        "{} X answered HTTP {}",
                        explain(&resp, &endpoint, now),
                        resp.status
                    ),
                    Some(
                        json!({"status": resp.status, "x-transaction-id": resp.transaction_id, "body": resp.body}),
                    ),
                ))
            }
            Err(message) => Err(ErrorData::internal_error(message, None)),
        }
    }
}

impl XmcpHandler {
    async fn call_tool_inner(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        if let Some(local) = &self.inner.local {
            let name = request.name.as_ref();
            if name == "auth_start" || name == "auth_status" {
                if let Some(extra) = args.keys().next() {
                    return Ok(tool_error(format!(
                        "unknown argument `{extra}`: {name} takes no arguments"
                    )));
                }
                let value = if name == "auth_start" {
                    local.auth_start().await
                } else {
                    local.auth_status().await
                };
                let failed = value["status"] == "failed";
                let mut result = CallToolResult::structured(value);
                result.is_error = Some(failed);
                return Ok(result.into());
            }
        }
        let principal = match self.principal(&context).await {
            Ok(p) => p,
            Err(why) => return Ok(tool_error(why)),
        };
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
            "rate_limits" if self.inner.x.is_some() => {
                if let Some(extra) = args.keys().next() {
                    return Ok(tool_error(format!(
                        "unknown argument `{extra}`: rate_limits takes no arguments"
                    )));
                }
                let mut result = CallToolResult::structured(self.rate_limits(&principal));
                result.is_error = Some(false);
                Ok(result.into())
            }
            name => match self.inner.catalog.get(name) {
                Some(spec) if self.inner.x.is_some() => {
                    Ok(self.call_generated(&principal, spec, args).await)
                }
                _ => Err(ErrorData::invalid_params(
                    format!("unknown tool `{name}`"),
                    None,
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: Value) -> XResponse {
        XResponse {
            status,
            body,
            rate_limit: None,
            transaction_id: Some("tx1".into()),
        }
    }

    #[test]
    fn explanations_name_the_cause_in_plain_words() {
        let credits = response(
            402,
            json!({"title": "CreditsDepleted", "detail": "Your enrolled account [1] does not have any credits to fulfill this request.", "type": "https://api.twitter.com/2/problems/credits"}),
        );
        assert!(explain(&credits, "GET /2/users/me", 0).contains("no credits left"));
        let tier = response(
            403,
            json!({"title": "Client Forbidden", "reason": "client-not-enrolled", "type": "https://api.twitter.com/2/problems/client-forbidden", "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project."}),
        );
        assert!(explain(&tier, "GET /2/users/me", 0).contains("access level"));
        let mut limited = response(429, json!({"title": "Too Many Requests"}));
        limited.rate_limit = Some(RateLimit {
            limit: 75,
            remaining: 0,
            reset: 86_400 + 3_600 + 120,
        });
        let text = explain(&limited, "GET /2/users/me", 86_400 + 3_600);
        assert!(text.contains("01:02:00 UTC (in 120 s)"), "{text}");
    }

    #[test]
    fn x_errors_carry_the_problem_details_and_the_transaction_id() {
        let resp = response(
            400,
            json!({"title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.x.com/2/problems/invalid-request", "errors": [{"message": "The `query` query parameter can not be empty"}]}),
        );
        let CallToolResponse::Complete(r) = x_error(&resp, "GET /2/tweets/search/recent", 0) else {
            panic!("a result");
        };
        assert_eq!(r.is_error, Some(true));
        let s = r.structured_content.expect("structured");
        assert_eq!(s["type"], "https://api.x.com/2/problems/invalid-request");
        assert_eq!(s["x-transaction-id"], "tx1");
        let text = serde_json::to_string(&r.content).unwrap();
        assert!(
            text.contains("can not be empty") && text.contains("tx1"),
            "{text}"
        );
    }
}
