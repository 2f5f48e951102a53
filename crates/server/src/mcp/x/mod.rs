//! X as a tool source: one tool per operation of X's OpenAPI document
//! (the [`Catalog`]), `rate_limits`, and the resources `x://me`,
//! `x://bookmarks/latest` and `x://rate-limits`. Each call runs with the
//! caller's X token; X's errors come back as tool errors with X's problem
//! details, and results too large for a model's context are cut on a record
//! boundary with advice on paging.

mod answer;

use super::builtin::{builtin, no_arguments, refuse_arguments};
use super::ledger::UpstreamCall;
use super::pricing::Pricing;
use super::registry::{Call, Called, Read, ResourceDef, ToolDef, ToolSource, tool_error};
use answer::{explain, json_resource, rate_limit_json, x_error, x_success};
use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, CallToolResult, MetaObject, ReadResourceResponse, Resource, Tool,
    ToolAnnotations,
};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use xmcp_auth::Principal;
use xmcp_openapi::prices::Micros;
use xmcp_openapi::{Catalog, ToolSpec};
use xmcp_x::{Caller, XApi, XCallError, XRequest, XResponse};

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

/// The MCP tool for an X operation, as `tools/list` shows it: the listed
/// (compact) input schema, annotations that say only what differs from
/// MCP's defaults, X's method, path and unit price in `_meta`,
/// and in the description what a call can cost, when that is much.
pub fn x_tool(spec: &ToolSpec, pricing: &Pricing) -> Tool {
    let h = spec.hints;
    let (price, notable) = pricing.describe(spec);
    // The scopes are left out: the step-up challenge and describe_tools
    // name them, and the list is what every model pays for.
    let meta = json!({
        "xmcp.dev/x": {
            "op": format!("{} {}", spec.method, spec.path),
            "price": price,
        }
    });
    let description = match notable {
        Some(cost) => format!("{} {cost}", spec.description),
        None => spec.description.clone(),
    };
    let mut annotations = ToolAnnotations::new();
    if h.read_only {
        annotations = annotations.read_only(true);
    } else {
        if !h.destructive {
            annotations = annotations.destructive(false);
        }
        if h.idempotent {
            annotations = annotations.idempotent(true);
        }
    }
    Tool::new(spec.name.clone(), description, spec.listed_schema.clone())
        .with_title(spec.title.clone())
        .annotate(annotations)
        .with_meta(MetaObject(meta.as_object().cloned().unwrap_or_default()))
}

/// The X tools: one per operation of the catalog, and `rate_limits`.
pub struct XTools {
    x: Arc<XApi>,
    catalog: Arc<Catalog>,
    pricing: Arc<Pricing>,
    media: super::media::MediaUploader,
    /// Scopes the authorization server can grant (for messages).
    issuable: Vec<String>,
    /// Longest tool result, in characters of JSON text.
    max_result_chars: usize,
}

/// Why a call to X has no answer: the message for the model, and, when
/// the request went out, the status to audit it with (0: no answer).
struct NoAnswer {
    message: String,
    reached: Option<u16>,
}

impl XTools {
    pub fn new(
        x: Arc<XApi>,
        catalog: Arc<Catalog>,
        pricing: Arc<Pricing>,
        media: super::media::MediaConfig,
        issuable: Vec<String>,
        max_result_chars: usize,
    ) -> Self {
        Self {
            x,
            catalog,
            pricing,
            media: super::media::MediaUploader::new(media),
            issuable,
            max_result_chars,
        }
    }

    /// Call X for `spec`: X's answer and the call to record, or why there
    /// is no answer (and the call to record, if the request went out).
    async fn call_x(
        &self,
        principal: &Principal,
        spec: &ToolSpec,
        args: Map<String, Value>,
    ) -> (Result<(String, XResponse), String>, Option<UpstreamCall>) {
        let priced = self.pricing.priced(spec, &args);
        let record = |status: u16, transaction_id: Option<String>, cost: Micros| UpstreamCall {
            method: spec.method.as_str().to_owned(),
            path: spec.path.clone(),
            status,
            transaction_id,
            cost,
        };
        match self.send(principal, spec, args).await {
            Ok((endpoint, resp)) => {
                let cost = self.pricing.cost(&priced, resp.status, &resp.body);
                let call = record(resp.status, resp.transaction_id.clone(), cost);
                (Ok((endpoint, resp)), Some(call))
            }
            Err(NoAnswer { message, reached }) => {
                (Err(message), reached.map(|status| record(status, None, 0)))
            }
        }
    }

    /// Send `spec`'s request with `args` as the caller.
    async fn send(
        &self,
        principal: &Principal,
        spec: &ToolSpec,
        args: Map<String, Value>,
    ) -> Result<(String, XResponse), NoAnswer> {
        let refused = |message: String| NoAnswer {
            message,
            reached: None,
        };
        let me = xmcp_x::identity::x_user_id(&principal.subject);
        let request = spec
            .request(args, me)
            .map_err(|e| refused(format!("{}: {e}", spec.name)))?;
        let caller = if spec.access.app_only() {
            Caller::App
        } else {
            Caller::User(&principal.user_id)
        };
        let endpoint = format!("{} {}", spec.method, spec.path);
        let method = http::Method::from_bytes(spec.method.as_str().as_bytes())
            .map_err(|e| refused(e.to_string()))?;
        let no_scopes = Vec::new();
        let req = XRequest {
            method,
            endpoint: &endpoint,
            path: &request.path,
            query: &request.query,
            body: request.body.as_ref(),
            scopes: spec.access.user_scopes.as_ref().unwrap_or(&no_scopes),
        };
        match self.x.call_as(caller, &req).await {
            Ok(resp) => Ok((endpoint, resp)),
            Err(XCallError::MissingScopes(missing)) => {
                Err(refused(self.missing_scopes_message(&missing)))
            }
            Err(e @ XCallError::Unreachable(_)) => Err(NoAnswer {
                message: e.to_string(),
                reached: Some(0),
            }),
            Err(e @ XCallError::RateLimited { .. }) => Err(NoAnswer {
                message: e.to_string(),
                reached: Some(429),
            }),
            Err(e) => Err(refused(e.to_string())),
        }
    }

    /// Why X's token for this user lacks scopes.
    fn missing_scopes_message(&self, missing: &[String]) -> String {
        let unrequestable: Vec<&str> = missing
            .iter()
            .filter(|s| !self.issuable.contains(s))
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

    async fn call_operation(
        &self,
        principal: &Principal,
        spec: &ToolSpec,
        args: Map<String, Value>,
    ) -> Called {
        let (answer, upstream) = self.call_x(principal, spec, args).await;
        let response = match answer {
            Err(message) => tool_error(message),
            Ok((endpoint, resp)) => {
                let now = self.x.vault().clock().now();
                if resp.is_success() {
                    x_success(resp, &endpoint, now, self.max_result_chars)
                } else {
                    x_error(&resp, &endpoint, now)
                }
            }
        };
        Called {
            response,
            upstream: upstream.into_iter().collect(),
        }
    }

    fn rate_limits(&self, principal: &Principal) -> Value {
        let now = self.x.vault().clock().now();
        let limits_of = |caller| -> Vec<Value> {
            self.x
                .rate_limits()
                .of(caller, now)
                .iter()
                .map(|(e, rl)| rate_limit_json(e, rl, now))
                .collect()
        };
        let mut limits = limits_of(Caller::User(&principal.user_id));
        let app = limits_of(Caller::App);
        limits.sort_by_key(|l| l["remaining"].as_u64());
        json!({
            "limits": limits,
            "app_limits": app,
            "note": "What X reported on this server's recent calls; endpoints not called in the current window are not listed.",
        })
    }
}

/// The tool that uploads media from a URL.
pub const UPLOAD_FROM_URL: &str = "uploadMediaFromUrl";

/// The argument of a post's media given by URL.
const MEDIA_URLS: &str = "media_urls";

/// Most media a post carries.
const MAX_MEDIA: usize = 4;

/// Whether `spec` creates posts (it takes media by URL).
fn creates_posts(spec: &ToolSpec) -> bool {
    spec.method == xmcp_openapi::Method::Post && spec.path == "/2/tweets"
}

/// `schema` with the `media_urls` argument.
fn with_media_urls(schema: &Arc<Map<String, Value>>) -> Arc<Map<String, Value>> {
    let mut out = (**schema).clone();
    if let Some(Value::Object(props)) = out.get_mut("properties") {
        props.insert(
            MEDIA_URLS.into(),
            json!({
                "type": "array",
                "items": {"type": "string", "format": "uri"},
                "minItems": 1,
                "maxItems": MAX_MEDIA,
                "description": "https URLs of images or a video to attach; xmcp fetches and uploads them (instead of media.media_ids).",
            }),
        );
    }
    Arc::new(out)
}

/// `uploadMediaFromUrl`: one image or video, by URL, ready to attach.
fn upload_tool() -> ToolDef {
    let schema = json!({
        "type": "object",
        "properties": {
            "url": {"type": "string", "format": "uri", "description": "https URL of a JPEG, PNG, WebP or GIF image, or an MP4, MOV or WebM video."},
            "media_category": {"type": "string", "enum": ["tweet_image", "tweet_gif", "tweet_video", "dm_image", "dm_gif", "dm_video"], "description": "Where it will be used (default: a post, by its type)."},
        },
        "required": ["url"],
        "additionalProperties": false,
    });
    ToolDef {
        tool: Tool::new(
            UPLOAD_FROM_URL,
            "Upload an image or video to X from a URL (xmcp fetches it and uploads it in chunks); returns the media_id to attach to a post or message.",
            Arc::new(schema.as_object().cloned().unwrap_or_default()),
        )
        .with_title("Upload media from a URL")
        .annotate(ToolAnnotations::new().read_only(false).destructive(false)),
        scopes: vec!["media.write".into()],
        toolset: Some("media".into()),
        core: false,
        public: false,
        full_schema: None,
        once: true,
    }
}

/// The X tools of `catalog`, as the registry takes them: `rate_limits`,
/// one per operation in its toolset (writes made once; posts take media
/// by URL), and `uploadMediaFromUrl` when the catalog can upload media.
pub fn tool_defs(catalog: &Catalog, pricing: &Pricing) -> Vec<ToolDef> {
    let rate_limits = Tool::new(
        "rate_limits",
        "Show X's rate limits for your recent calls: per endpoint, the calls left in the current window and when it resets.",
        no_arguments(),
    )
    .with_title("X rate limits")
    .annotate(ToolAnnotations::new().read_only(true).open_world(false));
    let mut tools = vec![builtin(rate_limits, &[])];
    tools.extend(catalog.tools.iter().map(|spec| {
        let mut tool = x_tool(spec, pricing);
        let mut full = spec.input_schema.clone();
        if creates_posts(spec) {
            tool.input_schema = with_media_urls(&tool.input_schema);
            full = with_media_urls(&full);
        }
        ToolDef {
            tool,
            scopes: spec.access.user_scopes.clone().unwrap_or_default(),
            toolset: Some(spec.toolset.clone()),
            core: spec.core,
            public: false,
            full_schema: Some(full),
            once: !spec.hints.read_only,
        }
    }));
    let uploads = catalog
        .tools
        .iter()
        .any(|t| t.method == xmcp_openapi::Method::Post && t.path == "/2/media/upload/initialize");
    if uploads && catalog.get(UPLOAD_FROM_URL).is_none() {
        tools.push(upload_tool());
    }
    tools
}

/// The X tools of a catalog as they are listed, with no X behind them:
/// what `xmcp tools` measures. Calls are refused.
pub struct Listing {
    pub catalog: Arc<Catalog>,
    pub pricing: Arc<Pricing>,
}

#[async_trait::async_trait]
impl ToolSource for Listing {
    fn tools(&self) -> Vec<ToolDef> {
        tool_defs(&self.catalog, &self.pricing)
    }

    async fn call(&self, _call: Call<'_>) -> Called {
        tool_error("this server is not connected to X").into()
    }
}

#[async_trait::async_trait]
impl ToolSource for XTools {
    fn tools(&self) -> Vec<ToolDef> {
        tool_defs(&self.catalog, &self.pricing)
    }

    fn estimate(&self, name: &str, args: &Map<String, Value>) -> Option<Micros> {
        let spec = self.catalog.get(name)?;
        Some(self.pricing.estimate(spec, args))
    }

    fn estimate_read(&self, uri: &str) -> Option<Micros> {
        let (resource, spec) = self.resource(uri)?;
        Some(
            self.pricing
                .estimate(spec, &fit_arguments(spec, (resource.args)())),
        )
    }

    fn resources(&self) -> Vec<ResourceDef> {
        let mut out: Vec<ResourceDef> = X_RESOURCES
            .iter()
            .map(|r| ResourceDef {
                resource: Resource::new(r.uri, r.name)
                    .with_title(r.title)
                    .with_description(r.description)
                    .with_mime_type("application/json"),
                as_tool: Some(r.operation.to_owned()),
            })
            .collect();
        out.push(ResourceDef {
            resource: Resource::new(RATE_LIMITS_URI, "rate-limits")
                .with_title("My X rate limits")
                .with_description("X's rate limits for your recent calls, per endpoint.")
                .with_mime_type("application/json"),
            as_tool: Some("rate_limits".to_owned()),
        });
        out
    }

    async fn call(&self, call: Call<'_>) -> Called {
        let principal = match call.principal() {
            Ok(p) => p,
            Err(refused) => return CallToolResponse::from(refused).into(),
        };
        if call.name == "rate_limits" {
            if let Some(refused) = refuse_arguments("rate_limits", &call.arguments) {
                return refused.into();
            }
            let mut result = CallToolResult::structured(self.rate_limits(principal));
            result.is_error = Some(false);
            return CallToolResponse::from(result).into();
        }
        if call.name == UPLOAD_FROM_URL {
            return self.upload_from_url(principal, call.arguments).await;
        }
        let Some(spec) = self.catalog.get(call.name) else {
            return tool_error(format!("unknown tool `{}`", call.name)).into();
        };
        let mut args = call.arguments;
        let mut upstream = Vec::new();
        if creates_posts(spec)
            && let Some(urls) = args.remove(MEDIA_URLS)
        {
            match self.attach(principal, urls, &mut args, &mut upstream).await {
                Ok(()) => {}
                Err(message) => {
                    return Called {
                        response: tool_error(message),
                        upstream,
                    };
                }
            }
        }
        let mut called = self.call_operation(principal, spec, args).await;
        upstream.append(&mut called.upstream);
        called.upstream = upstream;
        called
    }

    async fn read(&self, uri: &str, principal: &Principal) -> Read {
        if uri == RATE_LIMITS_URI {
            return Read {
                response: Ok(json_resource(RATE_LIMITS_URI, &self.rate_limits(principal))),
                upstream: Vec::new(),
            };
        }
        let Some((resource, spec)) = self.resource(uri) else {
            return Read {
                response: Err(ErrorData::resource_not_found(
                    format!("no resource `{uri}`"),
                    Some(json!({"uri": uri})),
                )),
                upstream: Vec::new(),
            };
        };
        let args = fit_arguments(spec, (resource.args)());
        let (answer, upstream) = self.call_x(principal, spec, args).await;
        Read {
            response: self.resource_answer(resource, answer),
            upstream: upstream.into_iter().collect(),
        }
    }
}

impl XTools {
    /// Upload the media at `urls` and attach them to the post `args` makes.
    async fn attach(
        &self,
        principal: &Principal,
        urls: Value,
        args: &mut Map<String, Value>,
        upstream: &mut Vec<UpstreamCall>,
    ) -> Result<(), String> {
        let urls: Vec<String> = match urls {
            Value::Array(items) if (1..=MAX_MEDIA).contains(&items.len()) => items
                .into_iter()
                .map(|u| match u {
                    Value::String(s) => Ok(s),
                    _ => Err(format!("`{MEDIA_URLS}` must be a list of URLs")),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(format!(
                    "`{MEDIA_URLS}` must be a list of 1 to {MAX_MEDIA} URLs"
                ));
            }
        };
        if args.get("media").is_some_and(|m| !m.is_null()) {
            return Err(format!("give `{MEDIA_URLS}` or `media`, not both"));
        }
        let mut ids = Vec::with_capacity(urls.len());
        for url in &urls {
            let uploaded = self
                .media
                .upload(&self.x, &principal.user_id, url, None, upstream)
                .await?;
            ids.push(Value::String(uploaded.media_id));
        }
        args.insert("media".into(), json!({"media_ids": ids}));
        Ok(())
    }

    /// `uploadMediaFromUrl`.
    async fn upload_from_url(&self, principal: &Principal, mut args: Map<String, Value>) -> Called {
        let url = match args.remove("url") {
            Some(Value::String(u)) => u,
            _ => return tool_error("`url` (an https URL) is required").into(),
        };
        let category = match args.remove("media_category") {
            None | Some(Value::Null) => None,
            Some(Value::String(c)) => Some(c),
            Some(_) => return tool_error("`media_category` must be a string").into(),
        };
        if let Some(extra) = args.keys().next() {
            return tool_error(format!(
                "unknown argument `{extra}`: {UPLOAD_FROM_URL} takes `url` and `media_category`"
            ))
            .into();
        }
        let mut upstream = Vec::new();
        let response = match self
            .media
            .upload(
                &self.x,
                &principal.user_id,
                &url,
                category.as_deref(),
                &mut upstream,
            )
            .await
        {
            Ok(u) => {
                let mut result = CallToolResult::structured(json!({
                    "media_id": u.media_id,
                    "media_key": u.media_key,
                    "note": "Attach it with createPosts: media.media_ids.",
                }));
                result.is_error = Some(false);
                result.into()
            }
            Err(message) => tool_error(message),
        };
        Called { response, upstream }
    }

    /// The `x://` resource at `uri` and the operation it reads.
    fn resource(&self, uri: &str) -> Option<(&'static XResource, &ToolSpec)> {
        X_RESOURCES
            .iter()
            .find(|r| r.uri == uri)
            .and_then(|r| Some((r, self.catalog.get(r.operation)?)))
    }

    fn resource_answer(
        &self,
        resource: &XResource,
        answer: Result<(String, XResponse), String>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match answer {
            Ok((_, resp)) if resp.is_success() => Ok(json_resource(resource.uri, &resp.body)),
            Ok((endpoint, resp)) => {
                let now = self.x.vault().clock().now();
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
