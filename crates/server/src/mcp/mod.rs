//! The MCP side of xmcp: the handler rmcp serves, the tools it offers and
//! the guard in front of `/mcp`.
//!
//! * [`registry`]: every tool and resource, by source; listing, selection,
//!   the permission checks and dispatch.
//! * [`selection`]: toolsets and read-only mode, by configuration, URL and
//!   header.
//! * [`search`]: `search_tools`, `describe_tools` and `call_tool`, for the
//!   operations a connection may call but does not list.
//! * The sources: [`builtin`] (`whoami`, `echo`), [`x`] (X's operations,
//!   `rate_limits`, the `x://` resources), [`local`] (`auth_start`,
//!   `auth_status` over stdio).
//! * [`guard`]: the bearer token, stateful sessions ([`sessions`]), and the
//!   early `insufficient_scope` answer in front of `/mcp`.
//!
//! Tools and resources receive the authenticated [`Principal`] that the
//! guard put into the HTTP request's extensions, or, over stdio, the person
//! signed in locally ([`local::LocalSession`]).

pub mod builtin;
pub mod guard;
pub mod ledger;
pub mod local;
pub mod media;
pub mod pricing;
pub mod registry;
pub mod search;
pub mod selection;
pub mod sessions;
pub mod stats;
pub mod x;

use registry::{Registry, RegistryConfig, ToolSource, View};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use selection::Selection;
use std::sync::Arc;
use xmcp_auth::Principal;
use xmcp_openapi::Catalog;
use xmcp_x::XApi;

/// X behind the X tools: its API, the operations offered, their prices,
/// and the longest result a tool returns.
pub struct XSource {
    pub api: Arc<XApi>,
    pub catalog: Arc<Catalog>,
    pub prices: Arc<xmcp_openapi::prices::PriceTable>,
    pub max_result_chars: usize,
    pub media: media::MediaConfig,
}

/// The tools of a server: the built-in ones, with X the X tools, and over
/// stdio the local sign-in tools; every call that reaches X goes through
/// `ledger` (caps, audit, writes made once). A new tool source is added
/// here.
pub fn build_registry(
    x: Option<XSource>,
    local: Option<Arc<dyn local::LocalSession>>,
    config: RegistryConfig,
    ledger: Arc<ledger::Ledger>,
) -> Registry {
    let mut sources: Vec<Arc<dyn ToolSource>> = Vec::new();
    if let Some(local) = local {
        sources.push(Arc::new(local::LocalSignIn(local)));
    }
    sources.push(Arc::new(builtin::Builtin));
    if let Some(x) = x {
        let pricing = Arc::new(pricing::Pricing::new(&x.prices, &x.catalog));
        for op in pricing.uncovered(&x.catalog) {
            tracing::warn!(
                operation = op,
                "no price covers this operation: calls are held at the table's highest price"
            );
        }
        sources.push(Arc::new(x::XTools::new(
            x.api,
            x.catalog,
            pricing,
            x.media,
            config.issuable.clone(),
            x.max_result_chars,
        )));
    }
    Registry::new(sources, config).with_ledger(ledger)
}

/// The xmcp MCP handler. Cheap to clone: one is made per request in
/// stateless mode.
#[derive(Clone)]
pub struct XmcpHandler {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<Registry>,
    /// Over HTTP: the base resource, whose URL the selections of the
    /// request's path and of its token's audience follow.
    resource: Option<BaseResource>,
    /// Over stdio: the locally signed-in person, instead of a bearer token.
    local: Option<Arc<dyn local::LocalSession>>,
}

/// The base protected resource (the MCP endpoint), as a URL and as a
/// path: what the selections of an HTTP request are read against.
#[derive(Debug, Clone)]
pub struct BaseResource {
    url: String,
    issuer: String,
    path: String,
}

impl BaseResource {
    /// The resource `url` of a server whose issuer is `issuer`.
    pub fn new(url: &str, issuer: &str) -> Self {
        let path = url::Url::parse(url)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Self {
            url: url.to_owned(),
            issuer: issuer.to_owned(),
            path,
        }
    }

    /// What a request lists and may call: the selections of its path
    /// (`/mcp/x/posts/readonly`), of its headers, and of the resource its
    /// token was issued for, with configuration's. The guard and the
    /// handler both read a request through this, so they agree.
    pub fn view(
        &self,
        registry: &Registry,
        path: &str,
        headers: &http::HeaderMap,
        principal: Option<&Principal>,
    ) -> Result<View, String> {
        let url = path
            .strip_prefix(self.path.as_str())
            .ok_or_else(|| "this path is not the MCP endpoint".to_owned())
            .and_then(Selection::from_suffix)?;
        let headers = Selection::from_headers(headers)?;
        let token = match principal.and_then(|p| p.resource.as_deref()) {
            None => Selection::everything(),
            Some(aud) if aud == self.issuer => Selection::everything(),
            Some(aud) => aud
                .strip_prefix(self.url.as_str())
                .ok_or_else(|| "the token was issued for another resource".to_owned())
                .and_then(Selection::from_suffix)?,
        };
        for s in [&url, &headers, &token] {
            registry.check(s)?;
        }
        Ok(registry.view(&[&url, &headers, &token]))
    }
}

impl XmcpHandler {
    /// The handler behind `/mcp` (and the narrower resources under it) of
    /// a server whose base resource is `resource`.
    pub fn http(registry: Arc<Registry>, resource: BaseResource) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                resource: Some(resource),
                local: None,
            }),
        }
    }

    /// The handler of `xmcp stdio`: acts for the person signed in with
    /// `xmcp login` (or through `auth_start`), with the X scopes they granted.
    pub fn local(registry: Arc<Registry>, local: Arc<dyn local::LocalSession>) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                resource: None,
                local: Some(local),
            }),
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// Who this request acts for, or why nobody.
    async fn principal(&self, ctx: &RequestContext<RoleServer>) -> Result<Principal, String> {
        match &self.inner.local {
            Some(local) => local.principal().await,
            None => ctx
                .extensions
                .get::<http::request::Parts>()
                .and_then(|p| p.extensions.get::<Principal>())
                .cloned()
                .ok_or_else(|| "this request is not authenticated".to_owned()),
        }
    }

    /// What this request's connection lists and may call: over HTTP, see
    /// [`BaseResource::view`]; over stdio, configuration's. A request
    /// whose selection cannot be read is refused.
    fn view(&self, ctx: &RequestContext<RoleServer>) -> Result<View, ErrorData> {
        let registry = &self.inner.registry;
        let Some(resource) = &self.inner.resource else {
            return Ok(registry.view(&[]));
        };
        let refuse = |why: String| ErrorData::invalid_request(why, None);
        let parts = ctx
            .extensions
            .get::<http::request::Parts>()
            .ok_or_else(|| refuse("this request did not come over HTTP".into()))?;
        resource
            .view(
                registry,
                parts.uri.path(),
                &parts.headers,
                parts.extensions.get::<Principal>(),
            )
            .map_err(refuse)
    }
}

const INSTRUCTIONS: &str = "Tools act on X for the signed-in user, one per X API v2 operation (named by X's operationId); the most used are listed, and search_tools, describe_tools and call_tool reach the rest. Call `whoami` to see who that is. Arguments that must be your own X user id default to it. X's errors come back as tool errors with X's problem details; `rate_limits` shows X's rate limits for your recent calls.";

impl ServerHandler for XmcpHandler {
    fn get_info(&self) -> ServerConfig {
        let info = Implementation::new("xmcp", env!("CARGO_PKG_VERSION"))
            .with_title("xmcp: the X API over MCP");
        let everything = self.inner.registry.view(&[]);
        if self.inner.registry.list_resources(&everything).is_empty() {
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
            format!(
                "{INSTRUCTIONS} If a tool says nobody is signed in, call `auth_start`, give the user its login_url, then call `auth_status`."
            )
        } else {
            INSTRUCTIONS.to_owned()
        })
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let view = self.view(&context)?;
        Ok(ListToolsResult::with_all_items(
            self.inner.registry.list(&view),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let start = std::time::Instant::now();
        // Only names of real tools become labels (bounded cardinality).
        let tool = if self.inner.registry.contains(&request.name) {
            request.name.to_string()
        } else {
            "unknown".to_owned()
        };
        let result = match self.view(&context) {
            Ok(view) => {
                let principal = self.principal(&context).await;
                self.inner
                    .registry
                    .call(
                        &view,
                        &request.name,
                        request.arguments.unwrap_or_default(),
                        principal.as_ref().map_err(String::as_str),
                    )
                    .await
            }
            Err(e) => Err(e),
        };
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
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let view = self.view(&context)?;
        Ok(ListResourcesResult::with_all_items(
            self.inner.registry.list_resources(&view),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let view = self.view(&context)?;
        let principal = self
            .principal(&context)
            .await
            .map_err(|why| ErrorData::invalid_request(why, None))?;
        self.inner
            .registry
            .read(&view, &request.uri, &principal)
            .await
    }
}

/// The narrower resources under `/mcp`: one per selection a URL can name
/// (`/mcp/readonly`, `/mcp/x/posts,dm/readonly`...), each with the scopes
/// of the tools it offers. A token issued for one is accepted where the
/// selection it was issued for may call everything the requested one may
/// (so a token for `/mcp` works everywhere, and one for a read-only URL
/// never reaches a write tool).
pub struct SelectionResources(pub Arc<Registry>);

impl SelectionResources {
    fn selection(&self, suffix: &str) -> Option<Selection> {
        let s = Selection::from_suffix(suffix).ok()?;
        self.0.check(&s).ok()?;
        Some(s)
    }
}

impl xmcp_auth::resource::SubResources for SelectionResources {
    fn scopes_supported(&self, suffix: &str) -> Option<Vec<String>> {
        if suffix.is_empty() {
            return None;
        }
        self.selection(suffix).map(|s| self.0.scopes_for(&s))
    }

    fn covers(&self, granted: &str, requested: &str) -> bool {
        match (self.selection(granted), self.selection(requested)) {
            (Some(g), Some(r)) => self.0.covers(&g, &r),
            _ => false,
        }
    }
}
