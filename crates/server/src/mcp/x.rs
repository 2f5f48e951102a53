//! X as a tool source: one tool per operation of X's OpenAPI document
//! (the [`Catalog`]), `rate_limits`, and the resources `x://me`,
//! `x://bookmarks/latest` and `x://rate-limits`. Each call runs with the
//! caller's X token; X's errors come back as tool errors with X's problem
//! details, and results too large for a model's context are cut on a record
//! boundary with advice on paging.

use super::builtin::{builtin, no_arguments, refuse_arguments};
use super::ledger::UpstreamCall;
use super::pricing::Pricing;
use super::registry::{Call, Called, Read, ResourceDef, ToolDef, ToolSource, tool_error};
use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, MetaObject, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, Tool, ToolAnnotations,
};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use xmcp_auth::Principal;
use xmcp_openapi::prices::Micros;
use xmcp_openapi::{Catalog, ToolSpec};
use xmcp_x::{Caller, RateLimit, XApi, XCallError, XRequest, XResponse};

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

/// A successful X answer: X's JSON as structured content (and as text),
/// the rate limit in `_meta`.
fn x_success(resp: XResponse, endpoint: &str, now: i64, max_chars: usize) -> CallToolResponse {
    let body = match resp.body {
        Value::Object(_) => resp.body,
        Value::Null => json!({"status": resp.status}),
        other => json!({"status": resp.status, "body": other}),
    };
    let (body, cut) = fit_result(body, max_chars);
    let mut result = CallToolResult::structured(body);
    result.is_error = Some(false);
    if let Some(note) = cut {
        result.content.push(ContentBlock::text(note));
    }
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

/// Length of `v` as compact JSON text, in bytes (never less than its
/// characters).
fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

/// An X answer whose JSON text is longer than `max_chars`, cut to the
/// first records of its `data` list that fit (at least one), with the note
/// that says so and how to get them all. X's `next_token` is dropped from a
/// cut answer: it would page past the records cut off. An answer that is
/// not a list is left whole.
fn fit_result(mut body: Value, max_chars: usize) -> (Value, Option<String>) {
    if json_len(&body) <= max_chars {
        return (body, None);
    }
    let Some(records) = body
        .get_mut("data")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
    else {
        return (body, None);
    };
    let of = records.len();
    // What the answer weighs without its records, and a margin for the
    // note added to `meta`.
    let mut used = json_len(&body) + 100;
    let mut kept = 0;
    for r in &records {
        let size = json_len(r) + 1;
        if kept > 0 && used + size > max_chars {
            break;
        }
        used += size;
        kept += 1;
    }
    let mut records = records;
    if kept >= of {
        // The records are not what is large: nothing to cut on.
        body["data"] = Value::Array(records);
        return (body, None);
    }
    records.truncate(kept);
    body["data"] = Value::Array(records);
    if let Some(meta) = body.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("next_token");
        meta.insert("result_count".into(), kept.into());
    }
    let note = format!(
        "This answer was cut to its first {kept} of {of} records to stay under {max_chars} characters. To read them all, call again with max_results={kept} (or fewer) and page with pagination_token from meta.next_token."
    );
    body["xmcp_cut"] = json!({"returned": kept, "of": of, "note": note});
    (body, Some(note))
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
fn json_resource(uri: &str, value: &Value) -> ReadResourceResponse {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ])
    .into()
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
    fn large_answers_are_cut_on_a_record_boundary() {
        let post = |i: usize| json!({"id": i.to_string(), "text": "x".repeat(200)});
        let body = json!({
            "data": (0..100).map(post).collect::<Vec<_>>(),
            "meta": {"result_count": 100, "next_token": "abc"},
        });
        let (small, note) = fit_result(body.clone(), 100_000);
        assert_eq!((small, note), (body.clone(), None));

        let (cut, note) = fit_result(body, 5_000);
        let kept = cut["data"].as_array().unwrap().len();
        assert!((1..100).contains(&kept), "{kept}");
        assert!(json_len(&cut) <= 5_000, "{}", json_len(&cut));
        assert_eq!(cut["data"][kept - 1]["id"], (kept - 1).to_string());
        assert_eq!(cut["meta"]["result_count"], kept);
        assert!(cut["meta"].get("next_token").is_none());
        assert_eq!(cut["xmcp_cut"]["of"], 100);
        assert!(note.unwrap().contains(&format!("max_results={kept}")));

        // One record is always kept; an answer that is no list is whole.
        let (one, _) = fit_result(json!({"data": [post(1), post(2)]}), 10);
        assert_eq!(one["data"].as_array().unwrap().len(), 1);
        let single = json!({"data": post(1)});
        assert_eq!(fit_result(single.clone(), 10), (single, None));
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
