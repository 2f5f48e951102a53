//! A tool made from one operation, and how its arguments become a request.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// HTTP methods an operation may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "get" => Self::Get,
            "post" => Self::Post,
            "put" => Self::Put,
            "patch" => Self::Patch,
            "delete" => Self::Delete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// MCP tool annotations derived from the method and the operation's verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

/// Which credentials X accepts for the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// OAuth 2.0 user context, with the scopes X requires (sorted). `None`:
    /// X does not accept a user's token here.
    pub user_scopes: Option<Vec<String>>,
    /// X also accepts the app's bearer token.
    pub app: bool,
}

impl Access {
    /// Only the app's bearer token works: the call is made as the app.
    pub fn app_only(&self) -> bool {
        self.user_scopes.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

/// How a query array is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayStyle {
    /// `style: form, explode: false`: one comma-joined value (all of X's).
    Comma,
    /// `explode: true`: the key repeated per value.
    Repeat,
}

/// A path or query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The tool argument's name (X's, with `.` as `_`: `tweet.fields` is
    /// `tweet_fields`).
    pub arg: String,
    /// The name X expects.
    pub wire: String,
    pub location: Location,
    pub array: ArrayStyle,
}

/// How the JSON request body is formed from the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    None,
    /// The body's top-level properties are tool arguments.
    Fields {
        names: Vec<String>,
        /// Values X needs even when the caller gives none (`default`).
        defaults: Map<String, Value>,
        required: bool,
    },
    /// The whole body is one argument.
    Whole {
        arg: String,
        required: bool,
    },
}

/// One X API operation as an MCP tool.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// The MCP tool name: the operationId when it is a valid tool name.
    pub name: String,
    pub operation_id: Option<String>,
    pub method: Method,
    /// X's path template, e.g. `/2/users/{id}/bookmarks`.
    pub path: String,
    pub tag: Option<String>,
    /// The toolset it belongs to (see [`crate::toolsets`]).
    pub toolset: String,
    /// Also in the `core` toolset.
    pub core: bool,
    /// X's summary.
    pub title: String,
    pub description: String,
    /// JSON Schema 2020-12 for the arguments.
    /// Shared with the MCP `Tool` built from it (one copy in memory).
    pub input_schema: std::sync::Arc<Map<String, Value>>,
    /// The schema a model is shown: `input_schema` with long value lists
    /// named rather than listed (see [`crate::compact`]).
    pub listed_schema: std::sync::Arc<Map<String, Value>>,
    /// Arguments given when the caller omits them (fields to request).
    pub defaults: Map<String, Value>,
    pub hints: Hints,
    pub access: Access,
    pub params: Vec<Param>,
    pub body: Body,
    /// The argument that must be the caller's own X user id and defaults to
    /// it (`{id}` of `/2/users/{id}/bookmarks`).
    pub self_id: Option<String>,
    /// Compiled from `input_schema` on the first call: a server offers
    /// every operation but most are never called, and compiled validators
    /// (with their regular expressions) are most of a catalog's memory.
    /// The schema was compiled once at load, so it is known to compile.
    pub(crate) validator:
        std::sync::Arc<std::sync::OnceLock<Result<jsonschema::Validator, String>>>,
}

/// An HTTP request to X, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    /// The path with parameters filled in and percent-encoded.
    pub path: String,
    /// Pairs in order; arrays already joined.
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// Arguments that do not fit the tool, worded for the model that sent them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("unknown argument `{name}`; {tool} takes: {valid}")]
    Unknown {
        tool: String,
        name: String,
        valid: String,
    },
    #[error("both `{0}` and `{1}` were given; they are the same parameter, give only `{0}`")]
    Duplicate(String, String),
    #[error(
        "`{0}` must be your own X user id, which is not known for this session; pass it explicitly"
    )]
    NoSelfId(String),
    #[error("invalid arguments: {0}")]
    Invalid(String),
}

/// Characters left as they are in a path segment (RFC 3986 unreserved).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A scalar argument as X reads it in a URL.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl ToolSpec {
    /// The names the tool accepts.
    fn arg_names(&self) -> impl Iterator<Item = &String> {
        self.input_schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.keys())
    }

    /// Turn arguments into X's request. `me` is the caller's X user id,
    /// used for [`ToolSpec::self_id`] when the argument is omitted.
    pub fn request(
        &self,
        mut args: Map<String, Value>,
        me: Option<&str>,
    ) -> Result<Request, ArgError> {
        // X's own spelling (`tweet.fields`) is accepted for our `tweet_fields`.
        for p in &self.params {
            if p.wire != p.arg
                && let Some(v) = args.remove(&p.wire)
            {
                if args.contains_key(&p.arg) {
                    return Err(ArgError::Duplicate(p.arg.clone(), p.wire.clone()));
                }
                args.insert(p.arg.clone(), v);
            }
        }
        if let Some(unknown) = args.keys().find(|k| !self.arg_names().any(|n| n == *k)) {
            let mut valid: Vec<&str> = self.arg_names().map(String::as_str).collect();
            valid.sort_unstable();
            return Err(ArgError::Unknown {
                tool: self.name.clone(),
                name: unknown.clone(),
                valid: if valid.is_empty() {
                    "no arguments".into()
                } else {
                    valid.join(", ")
                },
            });
        }
        for (k, v) in &self.defaults {
            args.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if let Some(id) = &self.self_id
            && !args.contains_key(id)
        {
            let me = me.ok_or_else(|| ArgError::NoSelfId(id.clone()))?;
            args.insert(id.clone(), Value::String(me.to_owned()));
        }
        let instance = Value::Object(args);
        let validator = self
            .validator
            .get_or_init(|| {
                jsonschema::draft202012::new(&Value::Object((*self.input_schema).clone()))
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| {
                ArgError::Invalid(format!("the tool's input schema does not compile: {e}"))
            })?;
        let problems: Vec<String> = validator
            .iter_errors(&instance)
            .take(5)
            .map(|e| {
                let at = e.instance_path().to_string();
                // A value outside a list: name every accepted one (the
                // listed schema names only a few).
                let said = match e.kind() {
                    jsonschema::error::ValidationErrorKind::Enum { options } => {
                        let accepted: Vec<String> = options
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned))
                            .collect();
                        format!(
                            "{} is not accepted; accepted values: {}",
                            e.instance(),
                            accepted.join(", ")
                        )
                    }
                    _ => e.to_string(),
                };
                if at.is_empty() {
                    said
                } else {
                    format!("{}: {said}", at.trim_start_matches('/'))
                }
            })
            .collect();
        if !problems.is_empty() {
            return Err(ArgError::Invalid(problems.join("; ")));
        }
        let Value::Object(mut args) = instance else {
            unreachable!("built as an object above")
        };

        let mut path = String::with_capacity(self.path.len() + 16);
        let mut rest = self.path.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}').map(|c| open + c) else {
                break;
            };
            path.push_str(&rest[..open]);
            let name = &rest[open + 1..close];
            let param = self
                .params
                .iter()
                .find(|p| p.location == Location::Path && p.wire == name);
            let value = param.and_then(|p| args.get(&p.arg));
            let text = match value {
                Some(Value::Array(items)) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
                Some(v) => scalar(v),
                None => String::new(),
            };
            if text.is_empty() || text.chars().all(|c| c == '.') {
                return Err(ArgError::Invalid(format!(
                    "`{}` must not be empty or dots only",
                    param.map_or(name, |p| p.arg.as_str())
                )));
            }
            path.push_str(&encode_segment(&text));
            rest = &rest[close + 1..];
        }
        path.push_str(rest);

        let mut query = Vec::new();
        for p in self.params.iter().filter(|p| p.location == Location::Query) {
            match args.get(&p.arg) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => match p.array {
                    ArrayStyle::Comma => query.push((
                        p.wire.clone(),
                        items.iter().map(scalar).collect::<Vec<_>>().join(","),
                    )),
                    ArrayStyle::Repeat => {
                        query.extend(items.iter().map(|i| (p.wire.clone(), scalar(i))));
                    }
                },
                Some(v) => query.push((p.wire.clone(), scalar(v))),
            }
        }

        let body = match &self.body {
            Body::None => None,
            Body::Whole { arg, .. } => args.remove(arg),
            Body::Fields {
                names,
                defaults,
                required,
            } => {
                let mut body = Map::new();
                for n in names {
                    if let Some(v) = args.remove(n) {
                        body.insert(n.clone(), v);
                    }
                }
                if body.is_empty() && !required {
                    None
                } else {
                    for (k, v) in defaults {
                        body.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    Some(Value::Object(body))
                }
            }
        };
        Ok(Request {
            method: self.method,
            path,
            query,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(super::encode_segment("a b/c?d#é"), "a%20b%2Fc%3Fd%23%C3%A9");
        assert_eq!(super::encode_segment("123_abc-~."), "123_abc-~.");
    }
}
