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

use super::ledger::{IDEMPOTENCY_ARGUMENT, Ledger, Once, UpstreamCall};
use super::search::{self, MetaTool};
use super::selection::Selection;
use fixedbitset::FixedBitSet;
use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ReadResourceResponse, Resource, Tool,
};
#[cfg(test)]
use serde_json::json;
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

    /// The operations in the toolsets `names` (`all`: every one); names
    /// that are no toolset add nothing.
    fn members<S: AsRef<str>>(&self, names: &[S]) -> FixedBitSet {
        let mut out = FixedBitSet::with_capacity(self.entries.len());
        for name in names {
            match name.as_ref() {
                ALL_TOOLSETS => out.union_with(&self.operations),
                n => {
                    if let Some(set) = self.toolsets.get(n) {
                        out.union_with(set);
                    }
                }
            }
        }
        out
    }

    /// The toolsets, with their operations' names.
    pub fn toolsets(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.toolsets.iter().map(|(name, members)| {
            (
                name.as_str(),
                members
                    .ones()
                    .map(|i| self.entries[i].def.tool.name.as_ref())
                    .collect(),
            )
        })
    }

    /// Whether `selection` names only toolsets there are (or `all`).
    pub fn check(&self, selection: &Selection) -> Result<(), String> {
        for name in selection.toolsets.iter().flatten() {
            if name != ALL_TOOLSETS && !self.toolsets.contains_key(name) {
                let known: Vec<&str> = self.toolsets.keys().map(String::as_str).collect();
                return Err(format!(
                    "there is no toolset `{name}`; there are: {}, and {ALL_TOOLSETS}",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// What a connection with these selections (configuration's is always
    /// added) lists and may call: the operations every selection allows,
    /// read-only ones only if any selection or the configuration says so,
    /// and the built-in tools. When no selection names toolsets, the
    /// configured ones are listed, and the search tools reach the rest.
    /// A selection naming an unknown toolset allows nothing of it (see
    /// [`Self::check`] for the error to show).
    pub fn view(&self, selections: &[&Selection]) -> View {
        let mut callable = self.operations.clone();
        let mut named: Option<Vec<String>> = None;
        let mut read_only = self.config.read_only;
        for s in selections {
            if let Some(sets) = &s.toolsets {
                let sets: Vec<&String> = sets.iter().collect();
                callable.intersect_with(&self.members(&sets));
                named
                    .get_or_insert_with(Vec::new)
                    .extend(sets.into_iter().cloned());
            }
            read_only |= s.read_only;
        }
        let mut listed = if named.is_some() {
            callable.clone()
        } else {
            let mut l = self.default_listed.clone();
            l.intersect_with(&callable);
            l
        };
        let mut always = self.always.clone();
        if read_only {
            callable.intersect_with(&self.read_only);
            listed.intersect_with(&self.read_only);
            always.intersect_with(&self.read_only);
        }
        // Operations callable but not listed: the search tools reach them.
        let hidden = callable.difference(&listed).next().is_some();
        callable.union_with(&always);
        listed.union_with(&always);
        if hidden {
            callable.union_with(&self.meta);
            listed.union_with(&self.meta);
        }
        View {
            callable,
            listed,
            read_only,
            named,
        }
    }

    /// Whether everything a connection with `narrow` may call, one with
    /// `wide` may call too (a token issued for `wide` may be used at
    /// `narrow`).
    pub fn covers(&self, wide: &Selection, narrow: &Selection) -> bool {
        // The search tools only reach what is callable anyway.
        let reach = |s: &Selection| {
            let mut c = self.view(&[s]).callable;
            c.difference_with(&self.meta);
            c
        };
        reach(narrow).is_subset(&reach(wide))
    }

    /// Scopes a connection with this selection may need: those of the tools
    /// it may call that can be granted.
    pub fn scopes_for(&self, selection: &Selection) -> Vec<String> {
        let view = self.view(&[selection]);
        let mut out: Vec<String> = view
            .callable
            .ones()
            .flat_map(|i| self.entries[i].def.scopes.iter())
            .filter(|s| self.config.issuable.contains(s))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every scope some tool needs: a token holding all of them is never
    /// refused for its scopes.
    pub fn every_scope(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .entries
            .iter()
            .flat_map(|e| e.def.scopes.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The tools a connection lists.
    pub fn list(&self, view: &View) -> Vec<Tool> {
        view.listed
            .ones()
            .map(|i| match self.entries[i].runner {
                Runner::Meta(m) if view.read_only => self.meta_read_only[m as usize].clone(),
                _ => self.entries[i].def.tool.clone(),
            })
            .collect()
    }

    /// The resources a connection lists.
    pub fn list_resources(&self, view: &View) -> Vec<Resource> {
        self.resources
            .iter()
            .filter(|r| r.as_tool.is_none_or(|t| view.callable.contains(t)))
            .map(|r| r.def.resource.clone())
            .collect()
    }

    /// The tool `name` as `view` allows it.
    fn allowed(&self, view: &View, name: &str) -> Result<usize, Refusal> {
        let Some(&i) = self.by_name.get(name) else {
            return Err(Refusal::Unknown);
        };
        if view.callable.contains(i) {
            return Ok(i);
        }
        if view.read_only && !self.entries[i].read_only {
            return Err(Refusal::ReadOnly);
        }
        Err(Refusal::NotSelected)
    }

    /// The scopes calling `name` needs, when stepping up to them could let
    /// it run: `view` allows it, and every scope can be granted. Through
    /// the call tool, the scopes of the tool it calls.
    pub fn step_up_scopes(
        &self,
        view: &View,
        name: &str,
        arguments: Option<&Map<String, Value>>,
    ) -> Option<&[String]> {
        let &i = self.by_name.get(name)?;
        let i = match self.entries[i].runner {
            Runner::Meta(MetaTool::Call) if view.callable.contains(i) => {
                let target = arguments?.get(search::CALL_NAME)?.as_str()?;
                *self.by_name.get(target)?
            }
            _ => i,
        };
        self.grantable_scopes(view, i)
    }

    /// The scopes reading `uri` needs, as [`Self::step_up_scopes`].
    pub fn step_up_scopes_of_resource(&self, view: &View, uri: &str) -> Option<&[String]> {
        let r = self.resources.iter().find(|r| r.def.resource.uri == uri)?;
        self.grantable_scopes(view, r.as_tool?)
    }

    fn grantable_scopes(&self, view: &View, i: usize) -> Option<&[String]> {
        let scopes = &self.entries[i].def.scopes;
        (view.callable.contains(i) && scopes.iter().all(|s| self.config.issuable.contains(s)))
            .then_some(scopes.as_slice())
    }

    /// Whether `principal` may run entry `i`: who it runs for (nobody, for
    /// a public tool called with nobody signed in), or the tool error
    /// saying why not.
    fn permitted<'p>(
        &self,
        i: usize,
        principal: Result<&'p Principal, &str>,
    ) -> Result<Option<&'p Principal>, Refused> {
        let e = &self.entries[i];
        let principal = match principal {
            Ok(p) => p,
            Err(_) if e.def.public => return Ok(None),
            Err(why) => return Err(Refused(why.to_owned())),
        };
        let missing: Vec<&str> = e
            .def
            .scopes
            .iter()
            .filter(|s| !principal.has_scope(s))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return Ok(Some(principal));
        }
        let ungrantable: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|s| !self.config.issuable.iter().any(|k| k == s))
            .collect();
        Err(Refused(if ungrantable.is_empty() {
            format!(
                "`{}` needs the scope(s) {}, which were not granted; {}",
                e.def.tool.name,
                missing.join(", "),
                self.config.how_to_grant
            )
        } else {
            format!(
                "`{}` needs the scope(s) {}, which this server does not grant to clients; its operator can add them to XMCP_SCOPES (and to XMCP_X_SCOPES)",
                e.def.tool.name,
                ungrantable.join(", ")
            )
        }))
    }

    fn refusal(
        &self,
        view: &View,
        name: &str,
        why: Refusal,
    ) -> Result<CallToolResponse, ErrorData> {
        match why {
            Refusal::Unknown => Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`"),
                None,
            )),
            Refusal::ReadOnly => Ok(tool_error(format!(
                "`{name}` is not available: this connection is read-only"
            ))),
            Refusal::NotSelected => Ok(tool_error(match &view.named {
                Some(sets) => format!(
                    "`{name}` is not in the toolsets this connection selected ({}); it is in `{}`",
                    sets.join(", "),
                    self.entries[self.by_name[name]]
                        .def
                        .toolset
                        .as_deref()
                        .unwrap_or("no toolset")
                ),
                None => format!("`{name}` is not available on this connection"),
            })),
        }
    }

    /// Call the tool `name` with `arguments` for `principal` (or the reason
    /// there is none), as `view` allows.
    pub async fn call(
        &self,
        view: &View,
        name: &str,
        arguments: Map<String, Value>,
        principal: Result<&Principal, &str>,
    ) -> Result<CallToolResponse, ErrorData> {
        let i = match self.allowed(view, name) {
            Ok(i) => i,
            Err(why) => return self.refusal(view, name, why),
        };
        let principal = match self.permitted(i, principal) {
            Ok(p) => p,
            Err(refused) => return Ok(refused.into()),
        };
        match self.entries[i].runner {
            Runner::Source(s) => Ok(self.run(i, s, name, arguments, principal).await),
            Runner::Meta(MetaTool::Find) => Ok(search::find(self, view, arguments)),
            Runner::Meta(MetaTool::Describe) => Ok(search::describe(self, view, arguments)),
            Runner::Meta(MetaTool::Call) => {
                let (target, arguments) = match search::call_target(arguments) {
                    Ok(t) => t,
                    Err(refused) => return Ok(refused.into()),
                };
                if self
                    .by_name
                    .get(&target)
                    .is_some_and(|&t| self.meta.contains(t))
                {
                    return Ok(tool_error(format!(
                        "`{target}` is one of the search tools: call it directly"
                    )));
                }
                let called = Box::pin(self.call(
                    view,
                    &target,
                    arguments,
                    principal.ok_or("this request is not authenticated"),
                ))
                .await;
                match called {
                    // An unknown name is the model's mistake in its arguments.
                    Err(e) => Ok(tool_error(e.message.to_string())),
                    ok => ok,
                }
            }
        }
    }

    /// Run entry `i` of source `s`, inside the ledger's layers: made once
    /// (writes), held against the spending caps, settled and audited.
    async fn run(
        &self,
        i: usize,
        s: usize,
        name: &str,
        mut arguments: Map<String, Value>,
        principal: Option<&Principal>,
    ) -> CallToolResponse {
        let source = &self.sources[s];
        let once = self.entries[i].def.once;
        let given = if once {
            arguments.remove(IDEMPOTENCY_ARGUMENT)
        } else {
            None
        };
        let (Some(ledger), Some(p)) = (&self.ledger, principal) else {
            return source
                .call(Call {
                    name,
                    arguments,
                    principal,
                })
                .await
                .response;
        };
        let guard = if once {
            match ledger.once(p, name, given, &arguments).await {
                Ok(Once::Go(guard)) => Some(guard),
                Ok(Once::Answered(response)) => return response,
                Err(refused) => return refused.into(),
            }
        } else {
            None
        };
        let hold = match source.estimate(name, &arguments) {
            Some(estimate) => match ledger.hold(p, estimate).await {
                Ok(hold) => Some(hold),
                Err(refused) => {
                    if let Some(guard) = guard {
                        ledger.release_once(guard).await;
                    }
                    return refused.into();
                }
            },
            None => None,
        };
        let Called {
            mut response,
            upstream,
        } = source
            .call(Call {
                name,
                arguments,
                principal,
            })
            .await;
        match hold {
            Some(hold) => ledger.settle(hold, p, name, &upstream, &mut response).await,
            None => ledger.audit(p, name, &upstream).await,
        }
        if let Some(guard) = guard {
            ledger.finish_once(guard, &response).await;
        }
        response
    }

    /// Read the resource `uri` for `principal`, as `view` allows.
    pub async fn read(
        &self,
        view: &View,
        uri: &str,
        principal: &Principal,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(r) = self.resources.iter().find(|r| r.def.resource.uri == uri) else {
            return Err(not_found(uri));
        };
        if let Some(t) = r.as_tool {
            if !view.callable.contains(t) {
                return Err(not_found(uri));
            }
            if let Err(Refused(why)) = self.permitted(t, Ok(principal)) {
                return Err(ErrorData::invalid_request(why, None));
            }
        }
        let source = &self.sources[r.source];
        let Some(ledger) = &self.ledger else {
            return source.read(uri, principal).await.response;
        };
        let hold = match source.estimate_read(uri) {
            Some(estimate) => match ledger.hold(principal, estimate).await {
                Ok(hold) => Some(hold),
                Err(Refused(why)) => return Err(ErrorData::invalid_request(why, None)),
            },
            None => None,
        };
        let read = source.read(uri, principal).await;
        match hold {
            Some(hold) => {
                ledger
                    .settle_read(hold, principal, uri, &read.upstream)
                    .await
            }
            None => ledger.audit(principal, uri, &read.upstream).await,
        }
        read.response
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

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ToolAnnotations;
    use std::collections::BTreeSet;

    /// Tools named by their toolset and whether they only read; calls
    /// answer with the tool's name.
    struct Fake(
        Vec<(
            &'static str,
            Option<&'static str>,
            bool,
            &'static [&'static str],
        )>,
    );

    #[async_trait::async_trait]
    impl ToolSource for Fake {
        fn tools(&self) -> Vec<ToolDef> {
            self.0
                .iter()
                .map(|(name, set, read_only, scopes)| ToolDef {
                    tool: Tool::new(*name, "", super::super::builtin::no_arguments())
                        .annotate(ToolAnnotations::new().read_only(*read_only)),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    toolset: set.map(str::to_owned),
                    core: *name == "read_post",
                    public: false,
                    full_schema: None,
                    once: false,
                })
                .collect()
        }

        async fn call(&self, call: Call<'_>) -> Called {
            CallToolResponse::from(CallToolResult::success(vec![ContentBlock::text(
                call.name.to_owned(),
            )]))
            .into()
        }
    }

    fn registry() -> Registry {
        let fake = Fake(vec![
            ("whoami", None, true, &["users.read"]),
            ("sign_in", None, false, &[]),
            ("read_post", Some("posts"), true, &["tweet.read"]),
            ("write_post", Some("posts"), false, &["tweet.write"]),
            ("read_dm", Some("dm"), true, &["dm.read"]),
            ("broadcast", Some("spaces"), false, &["broadcast.write"]),
        ]);
        Registry::new(
            vec![Arc::new(fake)],
            RegistryConfig {
                toolsets: vec!["core".into()],
                read_only: false,
                issuable: ["users.read", "tweet.read", "tweet.write", "dm.read"]
                    .map(String::from)
                    .to_vec(),
                how_to_grant: GRANT_BY_REAUTHORIZING,
            },
        )
    }

    fn names(r: &Registry, v: &View) -> Vec<String> {
        r.list(v).into_iter().map(|t| t.name.to_string()).collect()
    }

    fn sel(sets: &[&str], read_only: bool) -> Selection {
        Selection {
            toolsets: (!sets.is_empty()).then(|| {
                sets.iter()
                    .map(|s| (*s).to_owned())
                    .collect::<BTreeSet<_>>()
            }),
            read_only,
        }
    }

    fn principal(scopes: &[&str]) -> Principal {
        Principal {
            user_id: "u".into(),
            subject: "x:1".into(),
            username: None,
            client_id: "c".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            grant_id: "g".into(),
            expires_at: 0,
            resource: None,
        }
    }

    fn text(r: &CallToolResponse) -> String {
        let CallToolResponse::Complete(r) = r else {
            panic!("a result")
        };
        r.content[0].as_text().unwrap().text.clone()
    }

    #[test]
    fn selections_narrow_what_is_listed_and_callable() {
        let r = registry();
        // Default: the built-in tools, core, and the search tools for the
        // rest.
        assert_eq!(
            names(&r, &r.view(&[])),
            [
                "whoami",
                "sign_in",
                "read_post",
                "search_tools",
                "describe_tools",
                "call_tool"
            ]
        );
        // Named toolsets: exactly those, no search tools.
        assert_eq!(
            names(&r, &r.view(&[&sel(&["posts"], false)])),
            ["whoami", "sign_in", "read_post", "write_post"]
        );
        // Read-only: no tool that writes, built-in ones included.
        let ro = r.view(&[&sel(&["posts"], true)]);
        assert_eq!(names(&r, &ro), ["whoami", "read_post"]);
        // Selections intersect.
        assert_eq!(
            names(
                &r,
                &r.view(&[&sel(&["posts"], false), &sel(&["dm"], false)])
            ),
            ["whoami", "sign_in"]
        );
        assert!(r.check(&sel(&["posts", "all"], false)).is_ok());
        assert!(
            r.check(&sel(&["nope"], false))
                .unwrap_err()
                .contains("nope")
        );
    }

    #[test]
    fn a_wider_selection_covers_a_narrower_one_and_never_the_reverse() {
        let r = registry();
        let everything = Selection::everything();
        let posts = sel(&["posts"], false);
        let posts_ro = sel(&["posts"], true);
        assert!(r.covers(&everything, &posts));
        assert!(r.covers(&posts, &posts_ro));
        assert!(r.covers(&sel(&["all"], false), &everything));
        assert!(!r.covers(&posts, &everything));
        assert!(!r.covers(&posts_ro, &posts));
        assert!(!r.covers(&sel(&[], true), &posts));
        assert!(!r.covers(&posts, &sel(&["dm"], false)));
        // A narrower resource names only its tools' scopes.
        assert_eq!(r.scopes_for(&posts_ro), ["tweet.read", "users.read"]);
    }

    #[tokio::test]
    async fn dispatch_decides_whichever_way_a_tool_is_called() {
        let r = registry();
        let all = principal(&["users.read", "tweet.read", "tweet.write", "dm.read"]);
        let call = |view: View, name: &'static str, args: Value, p: Principal| {
            let r = &r;
            async move {
                let args = args.as_object().cloned().unwrap_or_default();
                r.call(&view, name, args, Ok(&p)).await
            }
        };
        let ok = call(r.view(&[]), "write_post", json!({}), all.clone()).await;
        assert_eq!(text(&ok.unwrap()), "write_post");
        // Not listed by default, callable by name and through call_tool.
        let through = call(
            r.view(&[]),
            "call_tool",
            json!({"name": "read_dm"}),
            all.clone(),
        )
        .await;
        assert_eq!(text(&through.unwrap()), "read_dm");
        // Read-only: refused by name and through call_tool.
        for (name, args) in [
            ("write_post", json!({})),
            ("call_tool", json!({"name": "write_post"})),
        ] {
            let refused = call(r.view(&[&sel(&[], true)]), name, args, all.clone()).await;
            assert!(text(&refused.unwrap()).contains("read-only"));
        }
        // Outside the selection: refused, naming the toolset.
        let refused = call(
            r.view(&[&sel(&["dm"], false)]),
            "write_post",
            json!({}),
            all.clone(),
        )
        .await;
        assert!(text(&refused.unwrap()).contains("`posts`"));
        // Scopes: missing, and not grantable at all.
        let narrow = principal(&["users.read", "tweet.read"]);
        let refused = call(r.view(&[]), "write_post", json!({}), narrow.clone()).await;
        assert!(text(&refused.unwrap()).contains("tweet.write"));
        let refused = call(r.view(&[]), "broadcast", json!({}), all.clone()).await;
        assert!(text(&refused.unwrap()).contains("XMCP_SCOPES"));
        // call_tool does not call itself.
        let refused = call(
            r.view(&[]),
            "call_tool",
            json!({"name": "call_tool"}),
            all.clone(),
        )
        .await;
        assert!(text(&refused.unwrap()).contains("search tools"));
        // Unknown names are the caller's error.
        assert!(
            call(r.view(&[]), "nope", json!({}), all.clone())
                .await
                .is_err()
        );
        // Nobody signed in: only public tools run.
        let v = r.view(&[]);
        let refused = r.call(&v, "whoami", Map::new(), Err("nobody")).await;
        assert_eq!(text(&refused.unwrap()), "nobody");
        // Step-up is offered only where it can help.
        assert_eq!(
            r.step_up_scopes(&r.view(&[]), "write_post", None),
            Some(&["tweet.write".to_owned()][..])
        );
        assert_eq!(
            r.step_up_scopes(&r.view(&[&sel(&[], true)]), "write_post", None),
            None
        );
        assert_eq!(r.step_up_scopes(&r.view(&[]), "broadcast", None), None);
        let args = json!({"name": "write_post"});
        assert_eq!(
            r.step_up_scopes(&r.view(&[]), "call_tool", args.as_object()),
            Some(&["tweet.write".to_owned()][..])
        );
    }
}
