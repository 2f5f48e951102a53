//! The long tail: three small tools that reach every operation a
//! connection may call without listing them all. `search_tools` finds
//! operations by words (BM25 over names, titles, descriptions and
//! parameter names), `describe_tools` gives their full input schemas, and
//! `call_tool` calls one by name. They are listed whenever a connection may
//! call operations it does not list; a call through `call_tool` takes the
//! same path, and the same checks, as a call of the operation itself.

use super::registry::{Refused, Registry, ToolDef, View, tool_error};
use bm25::{Language, SearchEngine, SearchEngineBuilder};
use rmcp::model::{CallToolResponse, CallToolResult, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The argument of `call_tool` naming the tool to call.
pub const CALL_NAME: &str = "name";
/// The argument of `call_tool` holding the called tool's arguments.
const CALL_ARGUMENTS: &str = "arguments";

/// Most results `search_tools` returns.
const MAX_RESULTS: usize = 25;
/// Most operations `describe_tools` describes at once.
const MAX_DESCRIBED: usize = 10;

/// The registry's own tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaTool {
    Find = 0,
    Describe = 1,
    Call = 2,
}

fn schema(v: Value) -> Arc<Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

impl MetaTool {
    pub const ALL: [MetaTool; 3] = [MetaTool::Find, MetaTool::Describe, MetaTool::Call];

    /// Its definition; `read_only`: as a read-only connection lists it.
    pub fn def(self, read_only: bool) -> ToolDef {
        let tool = match self {
            MetaTool::Find => Tool::new(
                "search_tools",
                "Find X operations by words (e.g. \"followers of a user\", \"upload video\"): names, one-line descriptions, whether each only reads. More than the listed tools can be called: use describe_tools, then call_tool.",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "minLength": 1, "description": "What to do, in words."},
                        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "description": "Most results (default 10)."},
                    },
                    "required": ["query"],
                    "additionalProperties": false,
                })),
            )
            .annotate(
                ToolAnnotations::new()
                    .read_only(true)
                    .open_world(false),
            ),
            MetaTool::Describe => Tool::new(
                "describe_tools",
                "The full input schema of named X operations (from search_tools), with every accepted value.",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "names": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_DESCRIBED},
                    },
                    "required": ["names"],
                    "additionalProperties": false,
                })),
            )
            .annotate(
                ToolAnnotations::new()
                    .read_only(true)
                    .open_world(false),
            ),
            MetaTool::Call => {
                let annotations = if read_only {
                    ToolAnnotations::new().read_only(true)
                } else {
                    ToolAnnotations::new().read_only(false).destructive(true)
                };
                Tool::new(
                    "call_tool",
                    "Call an X operation by name with its arguments, checked against its full input schema (see describe_tools).",
                    schema(json!({
                        "type": "object",
                        "properties": {
                            CALL_NAME: {"type": "string", "description": "The operation, e.g. getUsersFollowers."},
                            CALL_ARGUMENTS: {"type": "object", "description": "Its arguments."},
                        },
                        "required": [CALL_NAME],
                        "additionalProperties": false,
                    })),
                )
                .annotate(annotations)
            }
        };
        ToolDef {
            tool,
            scopes: Vec::new(),
            toolset: None,
            core: false,
            public: false,
            full_schema: None,
            once: false,
        }
    }
}

/// Words of a name: `getUsersFollowers` is `get users followers`.
fn words(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '_' || c == '-' || c == '.' {
            out.push(' ');
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The search index over the operations: their names (in words), titles,
/// descriptions and parameter names.
pub struct Index(SearchEngine<usize>);

impl Index {
    pub fn new<'a>(tools: impl Iterator<Item = (usize, &'a Tool)>) -> Self {
        let documents: Vec<bm25::Document<usize>> = tools
            .map(|(i, t)| {
                let params = t
                    .input_schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().map(|k| words(k)).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default();
                let text = format!(
                    "{} {} {} {} {}",
                    words(&t.name),
                    words(&t.name),
                    t.title.as_deref().unwrap_or(""),
                    t.description.as_deref().unwrap_or(""),
                    params
                );
                bm25::Document::new(i, text)
            })
            .collect();
        Self(SearchEngineBuilder::<usize>::with_documents(Language::English, documents).build())
    }

    /// Entries matching `query`, best first.
    fn search(&self, query: &str) -> Vec<usize> {
        self.0
            .search(&words(query), None)
            .into_iter()
            .map(|r| r.document.id)
            .collect()
    }
}

/// Refuse arguments other than `allowed`.
fn only(tool: &str, args: &Map<String, Value>, allowed: &[&str]) -> Result<(), Refused> {
    match args.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(Refused(format!(
            "unknown argument `{extra}`: {tool} takes {}",
            allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None => Ok(()),
    }
}

fn first_line(text: Option<&str>) -> String {
    xmcp_openapi::compact::first_sentence(text.unwrap_or(""), 160)
}

fn is_read_only(tool: &Tool) -> bool {
    tool.annotations
        .as_ref()
        .and_then(|a| a.read_only_hint)
        .unwrap_or(false)
}

/// `search_tools`.
pub fn find(registry: &Registry, view: &View, args: Map<String, Value>) -> CallToolResponse {
    if let Err(e) = only("search_tools", &args, &["query", "limit"]) {
        return e.into();
    }
    let Some(query) = args
        .get("query")
        .and_then(Value::as_str)
        .filter(|q| !q.trim().is_empty())
    else {
        return tool_error("`query` (words describing the operation) is required");
    };
    let limit = match args.get("limit") {
        None => 10,
        Some(v) => match v.as_u64() {
            Some(n @ 1..) if n as usize <= MAX_RESULTS => n as usize,
            _ => {
                return tool_error(format!(
                    "`limit` must be an integer from 1 to {MAX_RESULTS}"
                ));
            }
        },
    };
    let callable: std::collections::HashSet<usize> =
        registry.searchable(view).map(|(i, _)| i).collect();
    let found: Vec<Value> = registry
        .index()
        .search(query)
        .into_iter()
        .filter(|i| callable.contains(i))
        .take(limit)
        .map(|i| {
            let (tool, toolset, _) = registry.entry_tool(i);
            json!({
                "name": tool.name,
                "description": first_line(tool.description.as_deref()),
                "read_only": is_read_only(tool),
                "toolset": toolset,
            })
        })
        .collect();
    let note = if found.is_empty() {
        "No operation matches; try other words (e.g. the thing acted on: posts, users, lists, bookmarks)."
    } else {
        "Call one with call_tool (or by its name); describe_tools gives its full input schema."
    };
    let mut result = CallToolResult::structured(json!({"tools": found, "note": note}));
    result.is_error = Some(false);
    result.into()
}

/// `describe_tools`.
pub fn describe(registry: &Registry, view: &View, args: Map<String, Value>) -> CallToolResponse {
    if let Err(e) = only("describe_tools", &args, &["names"]) {
        return e.into();
    }
    let Some(names) = args
        .get("names")
        .and_then(Value::as_array)
        .filter(|n| !n.is_empty())
    else {
        return tool_error("`names` (a list of operation names) is required");
    };
    if names.len() > MAX_DESCRIBED {
        return tool_error(format!(
            "describe at most {MAX_DESCRIBED} operations at once"
        ));
    }
    let mut described = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        let Some(name) = name.as_str() else {
            return tool_error("`names` must be a list of strings");
        };
        match registry.callable_operation(view, name) {
            Some(i) => {
                let (tool, toolset, scopes) = registry.entry_tool(i);
                described.push(json!({
                    "name": tool.name,
                    "title": tool.title,
                    "description": tool.description,
                    "inputSchema": Value::Object((*registry.full_schema(i)).clone()),
                    "read_only": is_read_only(tool),
                    "toolset": toolset,
                    "scopes": scopes,
                }));
            }
            None => unknown.push(name.to_owned()),
        }
    }
    let mut out = json!({"tools": described});
    if !unknown.is_empty() {
        out["not_available"] = json!(unknown);
        out["note"] = json!(
            "Names under not_available are no operation this connection may call; search_tools finds the ones it may."
        );
    }
    let mut result = CallToolResult::structured(out);
    result.is_error = Some(false);
    result.into()
}

/// The tool `call_tool` names, and its arguments.
pub fn call_target(mut args: Map<String, Value>) -> Result<(String, Map<String, Value>), Refused> {
    only("call_tool", &args, &[CALL_NAME, CALL_ARGUMENTS])?;
    let name = match args.remove(CALL_NAME) {
        Some(Value::String(n)) if !n.is_empty() => n,
        _ => return Err(Refused("`name` (the operation to call) is required".into())),
    };
    let arguments = match args.remove(CALL_ARGUMENTS) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a,
        Some(_) => return Err(Refused("`arguments` must be an object".into())),
    };
    Ok((name, arguments))
}

#[cfg(test)]
mod tests {
    use super::words;

    #[test]
    fn names_read_as_words() {
        assert_eq!(words("getUsersFollowers"), "get users followers");
        assert_eq!(words("post_fields"), "post fields");
        assert_eq!(words("createDM2Event"), "create dm2 event");
    }
}
