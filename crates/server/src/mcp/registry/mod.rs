//! The tool registry: one path for every tool.
//!
//! Tool sources ([`ToolSource`]) give their tools, each with what the
//! registry needs to know of it ([`ToolDef`]): its MCP definition, the
//! scopes a token must hold to call it, its toolset. Listing, selection,
//! search, the permission checks and dispatch all go through [`Registry`],
//! the same way over HTTP and over stdio. A new kind of tool is a new
//! source, registered where the handler is built (see [`super::XmcpHandler`]).
//!
//! Permissions are decided at dispatch ([`Registry::call`],
//! [`Registry::read`]), from the parsed request that is executed: whether
//! the connection's selection offers the tool, read-only mode, and the
//! token's scopes. They fail closed: a tool nobody can tell the needs of
//! is not offered. The HTTP guard's early 403 (see [`super::guard`]) only
//! adds the `insufficient_scope` challenge clients need to step up.

mod dispatch;
#[cfg(test)]
mod tests;
mod views;

use super::ledger::{IDEMPOTENCY_ARGUMENT, Ledger, Once, UpstreamCall};
use super::search::{self, MetaTool};
use super::selection::Selection;
use fixedbitset::FixedBitSet;
use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ReadResourceResponse, Resource, Tool,
};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use xmcp_auth::Principal;
use xmcp_openapi::prices::Micros;
use xmcp_openapi::toolsets::{ALL_TOOLSETS, CORE_TOOLSET};

/// A tool as its source gives it.
pub struct ToolDef {
    /// The MCP definition, as `tools/list` shows it. Its annotations say
    /// whether it is read-only (`readOnlyHint`); a tool that does not say
    /// is taken to write.
    pub tool: Tool,
    /// Scopes the caller's token must hold, all of them.
    pub scopes: Vec<String>,
    /// The toolset it belongs to; `None` for built-in tools, which every
    /// selection offers.
    pub toolset: Option<String>,
    /// Also in the `core` toolset.
    pub core: bool,
    /// Callable with nobody signed in (the local sign-in tools).
    pub public: bool,
    /// The input schema arguments are checked against, when it says more
    /// than the listed one (X's full value lists): what the describe tool
    /// shows.
    pub full_schema: Option<Arc<Map<String, Value>>>,
    /// A write made once: it takes an `idempotency_key`, and the same call
    /// repeated returns the first result (see [`super::ledger`]).
    pub once: bool,
}

/// What a source's tool did: its result, and each call it made to X.
pub struct Called {
    pub response: CallToolResponse,
    pub upstream: Vec<UpstreamCall>,
}

impl From<CallToolResponse> for Called {
    fn from(response: CallToolResponse) -> Self {
        Self {
            response,
            upstream: Vec::new(),
        }
    }
}

/// What a source's resource read did, as [`Called`].
pub struct Read {
    pub response: Result<ReadResourceResponse, ErrorData>,
    pub upstream: Vec<UpstreamCall>,
}

/// A resource as its source gives it.
pub struct ResourceDef {
    pub resource: Resource,
    /// The tool whose checks reading it takes (selection and scopes):
    /// reading `x://me` is calling `getUsersMe`. `None`: always readable.
    pub as_tool: Option<String>,
}

/// A call, as a source runs it once the registry's checks passed.
pub struct Call<'a> {
    pub name: &'a str,
    pub arguments: Map<String, Value>,
    /// Who it acts for; present for every tool that is not public.
    pub principal: Option<&'a Principal>,
}

impl<'a> Call<'a> {
    /// The caller, or why there is nobody.
    pub fn principal(&self) -> Result<&'a Principal, Refused> {
        self.principal
            .ok_or_else(|| Refused("this request is not authenticated".into()))
    }
}

/// Why a tool will not run, for the model to read (a tool error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl From<Refused> for CallToolResponse {
    fn from(r: Refused) -> Self {
        tool_error(r.0)
    }
}

/// Where tools come from.
#[async_trait::async_trait]
pub trait ToolSource: Send + Sync {
    /// Its tools; names are unique across every source of a registry.
    fn tools(&self) -> Vec<ToolDef>;

    /// Its resources.
    fn resources(&self) -> Vec<ResourceDef> {
        Vec::new()
    }

    /// The most calling `name` with `args` can cost at X, in micro-dollars;
    /// `None` for a tool that does not call X. Held against the spending
    /// caps before the call.
    fn estimate(&self, _name: &str, _args: &Map<String, Value>) -> Option<Micros> {
        None
    }

    /// Run one of its tools: the registry has checked that the caller may.
    async fn call(&self, call: Call<'_>) -> Called;

    /// The most reading `uri` can cost, as [`Self::estimate`].
    fn estimate_read(&self, _uri: &str) -> Option<Micros> {
        None
    }

    /// Read one of its resources: the registry has checked that the caller
    /// may.
    async fn read(&self, uri: &str, _principal: &Principal) -> Read {
        Read {
            response: Err(not_found(uri)),
            upstream: Vec::new(),
        }
    }
}

/// What runs a tool.
#[derive(Clone, Copy)]
enum Runner {
    /// The source at this index.
    Source(usize),
    /// One of the registry's own search tools.
    Meta(MetaTool),
}

struct Entry {
    def: ToolDef,
    runner: Runner,
    read_only: bool,
}

struct ResourceEntry {
    def: ResourceDef,
    source: usize,
    /// The entry of `def.as_tool`.
    as_tool: Option<usize>,
}

/// What the registry needs from configuration.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Toolsets listed when a connection names none (`all` for every one).
    pub toolsets: Vec<String>,
    /// Only read-only tools, for every connection.
    pub read_only: bool,
    /// Scopes the authorization server can grant: a tool needing another
    /// can never be called, and is refused saying why.
    pub issuable: Vec<String>,
    /// How the caller gets a scope it was not granted, for messages.
    pub how_to_grant: &'static str,
}

/// [`RegistryConfig::how_to_grant`] over HTTP.
pub const GRANT_BY_REAUTHORIZING: &str = "authorize again from your MCP client and allow them";

/// The tools and resources of a server, and who may call what.
pub struct Registry {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    sources: Vec<Arc<dyn ToolSource>>,
    resources: Vec<ResourceEntry>,
    /// Members of each toolset, `core` included.
    toolsets: BTreeMap<String, FixedBitSet>,
    /// Tools in some toolset (the operations).
    operations: FixedBitSet,
    /// Tools every selection offers.
    always: FixedBitSet,
    /// The search tools.
    meta: FixedBitSet,
    read_only: FixedBitSet,
    /// Listed when a connection names no toolset.
    default_listed: FixedBitSet,
    config: RegistryConfig,
    index: search::Index,
    /// The search tools' definitions in read-only mode.
    meta_read_only: Vec<Tool>,
    /// Spend caps, the audit trail and writes made once, around every call
    /// that reaches X; `None` where nothing is called (listing only).
    ledger: Option<Arc<Ledger>>,
}

/// Which tools a connection lists and may call: the intersection of its
/// selections (see [`Registry::view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    callable: FixedBitSet,
    listed: FixedBitSet,
    read_only: bool,
    /// Toolsets named by some selection (for messages).
    named: Option<Vec<String>>,
}

/// Why a call is refused.
enum Refusal {
    /// No such tool.
    Unknown,
    /// Not in this connection's selection.
    NotSelected,
    /// Writes, and this connection is read-only.
    ReadOnly,
}

fn is_read_only(tool: &Tool) -> bool {
    tool.annotations
        .as_ref()
        .and_then(|a| a.read_only_hint)
        .unwrap_or(false)
}

impl Registry {
    /// The registry of these sources. Names must be unique: a second tool
    /// of the same name is dropped with a warning.
    pub fn new(sources: Vec<Arc<dyn ToolSource>>, config: RegistryConfig) -> Self {
        let mut entries: Vec<Entry> = Vec::new();
        let mut by_name = HashMap::new();
        let mut add = |mut def: ToolDef, runner: Runner, entries: &mut Vec<Entry>| {
            if def.once {
                def.tool.input_schema = with_idempotency_key(&def.tool.input_schema);
                def.full_schema = def.full_schema.as_ref().map(with_idempotency_key);
            }
            let name = def.tool.name.to_string();
            if by_name.contains_key(&name) {
                tracing::warn!(tool = %name, "two tools of the same name; the second is dropped");
                return;
            }
            by_name.insert(name, entries.len());
            entries.push(Entry {
                read_only: is_read_only(&def.tool),
                def,
                runner,
            });
        };
        for (i, source) in sources.iter().enumerate() {
            for def in source.tools() {
                add(def, Runner::Source(i), &mut entries);
            }
        }
        for meta in MetaTool::ALL {
            add(meta.def(false), Runner::Meta(meta), &mut entries);
        }
        let n = entries.len();
        let mut toolsets: BTreeMap<String, FixedBitSet> = BTreeMap::new();
        let mut operations = FixedBitSet::with_capacity(n);
        let mut always = FixedBitSet::with_capacity(n);
        let mut meta = FixedBitSet::with_capacity(n);
        let mut read_only = FixedBitSet::with_capacity(n);
        for (i, e) in entries.iter().enumerate() {
            if e.read_only {
                read_only.insert(i);
            }
            match (&e.runner, &e.def.toolset) {
                (Runner::Meta(_), _) => meta.insert(i),
                (_, Some(set)) => {
                    operations.insert(i);
                    toolsets
                        .entry(set.clone())
                        .or_insert_with(|| FixedBitSet::with_capacity(n))
                        .insert(i);
                    if e.def.core {
                        toolsets
                            .entry(CORE_TOOLSET.to_owned())
                            .or_insert_with(|| FixedBitSet::with_capacity(n))
                            .insert(i);
                    }
                }
                (_, None) => always.insert(i),
            }
        }
        let mut resources = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            for def in source.resources() {
                let as_tool = def.as_tool.as_ref().map(|t| by_name.get(t).copied());
                match as_tool {
                    // A resource read as a tool that is not here is not offered.
                    Some(None) => continue,
                    Some(Some(t)) => resources.push(ResourceEntry {
                        def,
                        source: i,
                        as_tool: Some(t),
                    }),
                    None => resources.push(ResourceEntry {
                        def,
                        source: i,
                        as_tool: None,
                    }),
                }
            }
        }
        let index = search::Index::new(
            entries
                .iter()
                .enumerate()
                .filter_map(|(i, e)| operations.contains(i).then_some((i, &e.def.tool))),
        );
        let meta_read_only = MetaTool::ALL.iter().map(|m| m.def(true).tool).collect();
        let mut registry = Self {
            entries,
            by_name,
            sources,
            resources,
            toolsets,
            operations,
            always,
            meta,
            read_only,
            default_listed: FixedBitSet::with_capacity(n),
            config,
            index,
            meta_read_only,
            ledger: None,
        };
        registry.default_listed = registry.members(&registry.config.toolsets);
        registry
    }

    /// Count, cap, audit and make once every call that reaches X, in
    /// `ledger`.
    pub fn with_ledger(mut self, ledger: Arc<Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The operations a search may return: callable in `view`, with their
    /// definitions.
    pub(super) fn searchable<'a>(
        &'a self,
        view: &'a View,
    ) -> impl Iterator<Item = (usize, &'a Tool)> + 'a {
        view.callable
            .ones()
            .filter(|i| self.operations.contains(*i))
            .map(|i| (i, &self.entries[i].def.tool))
    }

    pub(super) fn entry_tool(&self, i: usize) -> (&Tool, Option<&str>, &[String]) {
        let d = &self.entries[i].def;
        (&d.tool, d.toolset.as_deref(), &d.scopes)
    }

    pub(super) fn index(&self) -> &search::Index {
        &self.index
    }

    /// The index of the callable operation `name` in `view`.
    pub(super) fn callable_operation(&self, view: &View, name: &str) -> Option<usize> {
        let &i = self.by_name.get(name)?;
        (view.callable.contains(i) && self.operations.contains(i)).then_some(i)
    }

    /// The input schema of tool `i` as its arguments are checked.
    pub(super) fn full_schema(&self, i: usize) -> Arc<Map<String, Value>> {
        let d = &self.entries[i].def;
        d.full_schema
            .clone()
            .unwrap_or_else(|| d.tool.input_schema.clone())
    }

    /// Whether the tool `name` is known at all.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

fn not_found(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!("no resource `{uri}`"),
        Some(serde_json::json!({"uri": uri})),
    )
}

/// `schema` with the optional `idempotency_key` argument of a write made
/// once.
fn with_idempotency_key(schema: &Arc<Map<String, Value>>) -> Arc<Map<String, Value>> {
    let mut out = (**schema).clone();
    if let Some(Value::Object(props)) = out.get_mut("properties") {
        props.insert(
            IDEMPOTENCY_ARGUMENT.into(),
            serde_json::json!({
                "type": "string",
                "description": "Same key, same call: made once.",
            }),
        );
    }
    Arc::new(out)
}

/// A tool result that is an error the model reads.
pub fn tool_error(message: impl Into<String>) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(message.into())]).into()
}
