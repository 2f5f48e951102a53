//! The OpenAPI document to a [`Catalog`] of tools.

mod naming;
mod operation;

use crate::schema::{Converter, SchemaError};
use crate::tool::{Access, ArrayStyle, Body, Hints, Location, Method, Param, ToolSpec};
use globset::{Glob, GlobMatcher};
pub use naming::*;
use operation::*;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What to make tools of.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only operations matching one of these (operationIds or
    /// `METHOD /path`, globs allowed). Empty: all.
    pub allow: Vec<String>,
    /// Never operations matching one of these.
    pub deny: Vec<String>,
    /// Only operations with one of these tags (case-insensitive). Empty: all.
    pub tags: Vec<String>,
    /// An app bearer token is configured: operations X lets only apps call
    /// become tools (and are called with it).
    pub app_token: bool,
    /// Tool names taken by other tools; an operation with one of them is
    /// renamed `x_<name>`.
    pub reserved: Vec<String>,
}

/// The document as a whole could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("the OpenAPI document is not JSON: {0}")]
    NotJson(String),
    #[error("the OpenAPI document has no `openapi: 3.x` version field")]
    NotOpenApi3,
    #[error("the OpenAPI document has no `paths` object")]
    NoPaths,
    #[error("invalid tool filter pattern `{0}`: {1}")]
    BadPattern(String, String),
}

/// Why an operation is not a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `x-twitter-streaming` or a `/stream` path: a long-lived stream, not a call.
    Streaming,
    /// Webhook management: configures a callback this server does not host.
    Webhook,
    /// Answers with binary content rather than JSON.
    Binary,
    /// Takes no authentication (e.g. the OpenAPI document itself).
    Unauthenticated,
    /// X accepts only credentials this server does not hold (OAuth 1.0a).
    UnsupportedAuth,
    /// X accepts only the app's bearer token, and none is configured.
    AppOnly,
    /// Excluded by `allow`, `deny` or `tags`.
    Filtered,
    /// Something xmcp cannot express: the reason says what.
    Unsupported(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Streaming => f.write_str("a streaming endpoint"),
            Self::Webhook => f.write_str("webhook management"),
            Self::Binary => f.write_str("answers with binary content"),
            Self::Unauthenticated => f.write_str("takes no authentication"),
            Self::UnsupportedAuth => f.write_str("X accepts only OAuth 1.0a here"),
            Self::AppOnly => f.write_str(
                "X accepts only an app bearer token here (set XMCP_X_BEARER_TOKEN to enable)",
            ),
            Self::Filtered => f.write_str("excluded by the tool filters"),
            Self::Unsupported(why) => f.write_str(why),
        }
    }
}

/// An operation that did not become a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The operationId, or `METHOD /path` without one.
    pub operation: String,
    pub reason: SkipReason,
}

/// The tools made from one document.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// `info.version` of the document.
    pub version: String,
    /// Sorted by name; names are unique.
    pub tools: Vec<ToolSpec>,
    pub skipped: Vec<Skipped>,
    /// Things the operator should know (a filter that matched nothing...).
    pub warnings: Vec<String>,
}

impl Catalog {
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.tools
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.tools[i])
    }

    /// An empty catalog (no X tools).
    pub fn empty() -> Self {
        Self {
            version: String::new(),
            tools: Vec::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Parse and convert a document.
pub fn load(bytes: &[u8], options: &Options) -> Result<Catalog, LoadError> {
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| LoadError::NotJson(e.to_string()))?;
    convert(&doc, options)
}

struct Filter {
    allow: Vec<(String, GlobMatcher)>,
    deny: Vec<GlobMatcher>,
    tags: Vec<String>,
}

fn compile(patterns: &[String]) -> Result<Vec<(String, GlobMatcher)>, LoadError> {
    patterns
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| {
            // `METHOD /path` keys match case-insensitively on the method.
            let normalized = match p.split_once(' ') {
                Some((m, path)) => format!("{} {}", m.to_ascii_uppercase(), path.trim()),
                None => p.to_owned(),
            };
            Glob::new(&normalized)
                .map(|g| (p.to_owned(), g.compile_matcher()))
                .map_err(|e| LoadError::BadPattern(p.to_owned(), e.kind().to_string()))
        })
        .collect()
}

impl Filter {
    fn new(o: &Options) -> Result<Self, LoadError> {
        Ok(Self {
            allow: compile(&o.allow)?,
            deny: compile(&o.deny)?.into_iter().map(|(_, g)| g).collect(),
            tags: o.tags.iter().map(|t| t.trim().to_lowercase()).collect(),
        })
    }

    /// Whether the operation passes, and which allow patterns matched it.
    fn admits(&self, keys: &[&str], tag: Option<&str>, matched: &mut BTreeSet<String>) -> bool {
        let hit = |g: &GlobMatcher| keys.iter().any(|k| g.is_match(k));
        let mut allowed = self.allow.is_empty();
        for (p, g) in &self.allow {
            if hit(g) {
                matched.insert(p.clone());
                allowed = true;
            }
        }
        let tagged =
            self.tags.is_empty() || tag.is_some_and(|t| self.tags.contains(&t.to_lowercase()));
        allowed && tagged && !self.deny.iter().any(hit)
    }
}

/// Convert a parsed document.
pub fn convert(doc: &Value, options: &Options) -> Result<Catalog, LoadError> {
    let version_ok = doc
        .get("openapi")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("3."));
    if !version_ok {
        return Err(LoadError::NotOpenApi3);
    }
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or(LoadError::NoPaths)?;
    let filter = Filter::new(options)?;
    let mut matched = BTreeSet::new();
    let mut tools: Vec<ToolSpec> = Vec::new();
    let mut skipped = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            skipped.push(Skipped {
                operation: path.clone(),
                reason: SkipReason::Unsupported("the path item is not an object".into()),
            });
            continue;
        };
        for (m, op) in item {
            let Some(method) = Method::parse(m) else {
                continue;
            };
            let id = op.get("operationId").and_then(Value::as_str);
            let key = format!("{method} {path}");
            let operation = id.map_or_else(|| key.clone(), str::to_owned);
            let tag = op
                .get("tags")
                .and_then(Value::as_array)
                .and_then(|t| t.first())
                .and_then(Value::as_str);
            let keys: Vec<&str> = id.into_iter().chain([key.as_str()]).collect();
            let result = if !filter.admits(&keys, tag, &mut matched) {
                Err(SkipReason::Filtered)
            } else {
                operation_tool(doc, path, item, method, op, tag, options)
            };
            match result {
                Ok(tool) => tools.push(tool),
                Err(reason) => skipped.push(Skipped { operation, reason }),
            }
        }
    }
    let mut warnings: Vec<String> = filter
        .allow
        .iter()
        .filter(|(p, _)| !matched.contains(p))
        .map(|(p, _)| format!("tool allow pattern `{p}` matches no operation"))
        .collect();
    name_uniquely(&mut tools, &options.reserved, &mut warnings);
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Catalog {
        version: doc
            .pointer("/info/version")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        tools,
        skipped,
        warnings,
    })
}
