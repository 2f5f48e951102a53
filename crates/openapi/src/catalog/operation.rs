//! One operation of the document to one tool: who may call it, its
//! arguments (parameters and request body), its description and hints.

use super::*;

/// Longest description kept, in characters.
pub(super) const MAX_DESCRIPTION: usize = 400;

/// Verbs whose operations remove or hide something, whatever the method.
pub(super) const DESTRUCTIVE_VERBS: [&str; 12] = [
    "delete",
    "remove",
    "unfollow",
    "unmute",
    "unblock",
    "unlike",
    "unrepost",
    "unpin",
    "hide",
    "leave",
    "revoke",
    "unbookmark",
];

pub(super) fn starts_with_verb(id: &str, verb: &str) -> bool {
    id.strip_prefix(verb)
        .is_some_and(|rest| rest.chars().next().is_none_or(|c| !c.is_ascii_lowercase()))
}

pub(super) fn hints(method: Method, operation_id: &str) -> Hints {
    let destructive = DESTRUCTIVE_VERBS
        .iter()
        .any(|v| starts_with_verb(operation_id, v));
    match method {
        Method::Get => Hints {
            read_only: true,
            destructive: false,
            idempotent: true,
        },
        Method::Delete => Hints {
            read_only: false,
            destructive: true,
            idempotent: true,
        },
        Method::Put => Hints {
            read_only: false,
            destructive,
            idempotent: true,
        },
        Method::Post | Method::Patch => Hints {
            read_only: false,
            destructive,
            idempotent: false,
        },
    }
}

pub(super) fn unsupported(why: impl Into<String>) -> SkipReason {
    SkipReason::Unsupported(why.into())
}

pub(super) fn schema_err(what: &str, e: SchemaError) -> SkipReason {
    unsupported(format!("{what}: {e}"))
}

/// The credentials X accepts for `op`.
pub(super) fn access(doc: &Value, op: &Value) -> Result<Access, SkipReason> {
    let requirements = op.get("security").or_else(|| doc.get("security"));
    let Some(alternatives) = requirements.and_then(Value::as_array) else {
        return Err(SkipReason::Unauthenticated);
    };
    let schemes = doc.pointer("/components/securitySchemes");
    let mut user: Option<BTreeSet<String>> = None;
    let mut app = false;
    let mut any = false;
    for alt in alternatives {
        let Some(alt) = alt.as_object() else {
            return Err(unsupported("a security requirement is not an object"));
        };
        // One scheme per alternative: X never combines two.
        let [(name, scopes)] = alt.iter().collect::<Vec<_>>()[..] else {
            continue;
        };
        any = true;
        let scheme = schemes.and_then(|s| s.get(name));
        let kind = scheme.and_then(|s| s.get("type")).and_then(Value::as_str);
        let http = scheme
            .and_then(|s| s.get("scheme"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        match (kind, http.as_deref()) {
            (Some("oauth2"), _) => {
                let list = scopes
                    .as_array()
                    .ok_or_else(|| unsupported(format!("the scopes of `{name}` are not a list")))?;
                let set = user.get_or_insert_with(BTreeSet::new);
                for s in list {
                    set.insert(
                        s.as_str()
                            .ok_or_else(|| unsupported("a scope is not a string"))?
                            .to_owned(),
                    );
                }
            }
            (Some("http"), Some("bearer")) => app = true,
            _ => {}
        }
    }
    if !any {
        return Err(SkipReason::Unauthenticated);
    }
    if user.is_none() && !app {
        return Err(SkipReason::UnsupportedAuth);
    }
    Ok(Access {
        user_scopes: user.map(|s| s.into_iter().collect()),
        app,
    })
}

/// The operation's parameters (path-level ones first, overridden by the
/// operation's own), `$ref`s resolved.
pub(super) fn parameters<'a>(
    doc: &'a Value,
    item: &'a Map<String, Value>,
    op: &'a Value,
) -> Result<Vec<&'a Map<String, Value>>, SkipReason> {
    let conv = Converter::new(doc);
    let mut out: Vec<&Map<String, Value>> = Vec::new();
    for list in [item.get("parameters"), op.get("parameters")]
        .into_iter()
        .flatten()
    {
        let list = list
            .as_array()
            .ok_or_else(|| unsupported("`parameters` is not a list"))?;
        for p in list {
            let mut p = p;
            // Parameter references may chain.
            for _ in 0..8 {
                match p.get("$ref").and_then(Value::as_str) {
                    Some(r) => p = conv.resolve(r).map_err(|e| schema_err("a parameter", e))?,
                    None => break,
                }
            }
            let p = p
                .as_object()
                .ok_or_else(|| unsupported("a parameter is not an object"))?;
            let key = |p: &Map<String, Value>| (p.get("name").cloned(), p.get("in").cloned());
            out.retain(|q| key(q) != key(p));
            out.push(p);
        }
    }
    Ok(out)
}

pub(super) fn operation_tool(
    doc: &Value,
    path: &str,
    item: &Map<String, Value>,
    method: Method,
    op: &Value,
    tag: Option<&str>,
    options: &Options,
) -> Result<ToolSpec, SkipReason> {
    let op_map = op
        .as_object()
        .ok_or_else(|| unsupported("the operation is not an object"))?;
    let segments: Vec<&str> = path.split('/').collect();
    if op_map.get("x-twitter-streaming") == Some(&Value::Bool(true)) || segments.contains(&"stream")
    {
        return Err(SkipReason::Streaming);
    }
    if segments.contains(&"webhooks") {
        return Err(SkipReason::Webhook);
    }
    if binary_only(op) {
        return Err(SkipReason::Binary);
    }
    let access = access(doc, op)?;
    if access.app_only() && !options.app_token {
        return Err(SkipReason::AppOnly);
    }
    let id = op.get("operationId").and_then(Value::as_str);

    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut params = Vec::new();
    let raw_params = parameters(doc, item, op)?;
    let wire_names: BTreeSet<&str> = raw_params
        .iter()
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .collect();
    for p in raw_params {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| unsupported("a parameter has no name"))?;
        let is_required = p.get("required") == Some(&Value::Bool(true));
        let location = match p.get("in").and_then(Value::as_str) {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            Some(other @ ("header" | "cookie")) => {
                if is_required {
                    return Err(unsupported(format!(
                        "requires the {other} parameter `{name}`"
                    )));
                }
                continue;
            }
            _ => return Err(unsupported(format!("parameter `{name}` has no valid `in`"))),
        };
        if location == Location::Path && !path.contains(&format!("{{{name}}}")) {
            return Err(unsupported(format!(
                "path parameter `{name}` is not in the path"
            )));
        }
        let mut schema = match p.get("schema") {
            Some(s) => Converter::new(doc)
                .convert(s)
                .map_err(|e| schema_err(&format!("parameter `{name}`"), e))?,
            None => {
                return Err(unsupported(format!(
                    "parameter `{name}` has no schema (content-typed parameters are not supported)"
                )));
            }
        };
        let is_array = schema.get("type").and_then(Value::as_str) == Some("array");
        if schema.get("type").and_then(Value::as_str) == Some("object") {
            return Err(unsupported(format!(
                "parameter `{name}` is an object, which X's URLs cannot carry"
            )));
        }
        let explode = match p.get("explode") {
            Some(Value::Bool(b)) => *b,
            // OpenAPI: `form` (the query default) explodes by default.
            _ => p.get("style").and_then(Value::as_str).unwrap_or("form") == "form",
        };
        let array = if is_array && explode && location == Location::Query {
            ArrayStyle::Repeat
        } else {
            ArrayStyle::Comma
        };
        let arg = {
            let dotless = name.replace('.', "_");
            if dotless != name && wire_names.contains(dotless.as_str()) {
                name.to_owned()
            } else {
                dotless
            }
        };
        let described = p
            .get("description")
            .and_then(Value::as_str)
            .or_else(|| crate::curated::parameter(id, &arg));
        if let (Some(d), Value::Object(m)) = (described, &mut schema) {
            m.insert("description".into(), d.trim().into());
        }
        if properties.contains_key(&arg) {
            return Err(unsupported(format!(
                "two parameters are both the argument `{arg}`"
            )));
        }
        properties.insert(arg.clone(), schema);
        if is_required || location == Location::Path {
            required.push(arg.clone().into());
        }
        params.push(Param {
            arg,
            wire: name.to_owned(),
            location,
            array,
        });
    }
    // Every `{name}` in the path needs its parameter.
    for seg in &segments {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
            && !params
                .iter()
                .any(|p| p.location == Location::Path && p.wire == name)
        {
            return Err(unsupported(format!(
                "the path names `{{{name}}}` but no parameter declares it"
            )));
        }
    }

    let mut notes = Vec::new();
    let body = request_body(doc, op, &mut properties, &mut required, &mut notes)?;

    // `/2/users/{id}/...` that only a user may call: `{id}` is the caller.
    let self_id = (access.user_scopes.is_some() && !access.app)
        .then(|| {
            path.strip_prefix("/2/users/{")
                .and_then(|rest| rest.split_once('}'))
                .map(|(name, _)| name)
        })
        .flatten()
        .and_then(|name| params.iter().find(|p| p.wire == name))
        .map(|p| p.arg.clone());
    if let Some(arg) = &self_id {
        required.retain(|r| r != arg.as_str());
        if let Some(Value::Object(m)) = properties.get_mut(arg) {
            let d = match m.get("description").and_then(Value::as_str) {
                Some(d) if d.ends_with('.') => format!("{d} "),
                Some(d) => format!("{d}. "),
                None => String::new(),
            };
            m.insert(
                "description".into(),
                format!("{d}Your own X user id; defaults to it when omitted.").into(),
            );
        }
    }

    let mut input = Map::new();
    input.insert("type".into(), "object".into());
    input.insert("properties".into(), properties.into());
    if !required.is_empty() {
        input.insert("required".into(), required.into());
    }
    input.insert("additionalProperties".into(), false.into());
    let schema_value = Value::Object(input);
    // Compiled here only to refuse a schema that does not compile; the
    // tool compiles its own on first use (see `ToolSpec::validator`).
    jsonschema::draft202012::new(&schema_value)
        .map_err(|e| unsupported(format!("its input schema is invalid: {e}")))?;
    let Value::Object(input_schema) = schema_value else {
        unreachable!("built as an object above")
    };

    let mut defaults = Map::new();
    for p in params.iter().filter(|p| p.location == Location::Query) {
        let accepted = input_schema
            .get("properties")
            .and_then(|props| props.get(&p.arg))
            .and_then(|s| s.pointer("/items/enum"))
            .and_then(Value::as_array);
        if let Some(d) = accepted.and_then(|a| crate::compact::default_fields(&p.wire, a)) {
            defaults.insert(p.arg.clone(), d);
        }
    }
    let wire = |arg: &str| params.iter().find(|p| p.arg == arg).map(|p| p.wire.clone());
    let listed_schema = crate::compact::listed_schema(&input_schema, &wire, &defaults);

    let title = text(op, "summary").unwrap_or_default();
    let mut description = match crate::curated::description(id) {
        Some(curated) => describe(curated, text(op, "description").as_deref()),
        None => describe(&title, text(op, "description").as_deref()),
    };
    if op.get("deprecated") == Some(&Value::Bool(true)) {
        description.insert_str(0, "Deprecated by X. ");
    }
    if access.app_only() {
        notes.push(
            "X accepts only an app token here: this runs as the server's X app, not as you.".into(),
        );
    }
    for n in notes {
        description.push_str("\n\n");
        description.push_str(&n);
    }
    let name = tool_name(id, method, path);
    Ok(ToolSpec {
        hints: hints(method, id.unwrap_or(&name)),
        name,
        operation_id: id.map(str::to_owned),
        method,
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
        toolset: crate::toolsets::toolset_of(method, path, tag),
        core: crate::toolsets::is_core(id),
        title: if title.is_empty() {
            format!("{method} {path}")
        } else {
            title
        },
        description,
        input_schema: Arc::new(input_schema),
        listed_schema: Arc::new(listed_schema),
        defaults,
        access,
        params,
        body,
        self_id,
        validator: Arc::default(),
    })
}

pub(super) fn text(op: &Value, key: &str) -> Option<String> {
    op.get(key)
        .and_then(Value::as_str)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Summary, then the description when it adds something; long texts are
/// cut at a sentence end.
pub(super) fn describe(summary: &str, description: Option<&str>) -> String {
    let mut out = summary.to_owned();
    if let Some(d) = description
        && d.trim_end_matches('.') != summary.trim_end_matches('.')
    {
        if !out.is_empty() {
            out.push_str(if out.ends_with('.') { " " } else { ". " });
        }
        out.push_str(d);
    }
    if out.chars().count() > MAX_DESCRIPTION {
        let cut: String = out.chars().take(MAX_DESCRIPTION).collect();
        let end = cut.rfind(". ").map_or(cut.len(), |i| i + 1);
        out = format!("{} …", &cut[..end]);
    }
    out
}

/// Whether every success response is binary (nothing JSON).
pub(super) fn binary_only(op: &Value) -> bool {
    let Some(responses) = op.get("responses").and_then(Value::as_object) else {
        return false;
    };
    let mut success_types = responses
        .iter()
        .filter(|(code, _)| code.starts_with('2'))
        .filter_map(|(_, r)| r.get("content").and_then(Value::as_object))
        .flat_map(|c| c.keys())
        .peekable();
    success_types.peek().is_some() && success_types.all(|t| !t.contains("json"))
}

/// Add the request body's arguments; say how the body is formed.
pub(super) fn request_body(
    doc: &Value,
    op: &Value,
    properties: &mut Map<String, Value>,
    required: &mut Vec<Value>,
    notes: &mut Vec<String>,
) -> Result<Body, SkipReason> {
    let Some(mut rb) = op.get("requestBody") else {
        return Ok(Body::None);
    };
    let conv = Converter::new(doc);
    for _ in 0..8 {
        match rb.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                rb = conv
                    .resolve(r)
                    .map_err(|e| schema_err("the request body", e))?
            }
            None => break,
        }
    }
    let body_required = rb.get("required") == Some(&Value::Bool(true));
    let content = rb
        .get("content")
        .and_then(Value::as_object)
        .ok_or_else(|| unsupported("the request body has no content"))?;
    let Some(media) = content
        .iter()
        .find(|(t, _)| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        })
        .map(|(_, m)| m)
    else {
        return Err(unsupported(format!(
            "its request body is not JSON ({})",
            content.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    };
    let mut schema = match media.get("schema") {
        Some(s) => Converter::new(doc)
            .convert(s)
            .map_err(|e| schema_err("the request body", e))?,
        None => json!({}),
    };
    let whole =
        |properties: &mut Map<String, Value>, required: &mut Vec<Value>, mut schema: Value| {
            let arg = if properties.contains_key("body") {
                "request_body"
            } else {
                "body"
            };
            if let (Some(d), Value::Object(m)) =
                (rb.get("description").and_then(Value::as_str), &mut schema)
            {
                m.entry("description").or_insert_with(|| d.into());
            }
            properties.insert(arg.into(), schema);
            if body_required {
                required.push(arg.into());
            }
            Body::Whole {
                arg: arg.into(),
                required: body_required,
            }
        };
    let Some(obj) = schema.as_object_mut() else {
        return Ok(whole(properties, required, schema));
    };
    // A root `anyOf`/`oneOf` of `required` lists ("text or attachments")
    // moves into the description: many tool consumers reject root
    // combinators.
    for (combinator, wording) in [("anyOf", "at least one"), ("oneOf", "exactly one")] {
        let Some(Value::Array(branches)) = obj.get(combinator) else {
            continue;
        };
        let groups: Option<Vec<String>> = branches
            .iter()
            .map(|b| {
                let b = b.as_object()?;
                if b.keys().any(|k| k != "required" && k != "type") {
                    return None;
                }
                let names: Vec<String> = b
                    .get("required")?
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|n| format!("`{n}`"))
                    .collect();
                Some(names.join(" and "))
            })
            .collect();
        if let Some(groups) = groups {
            notes.push(format!("Give {wording} of: {}.", groups.join("; ")));
            obj.remove(combinator);
        }
    }
    let flat = obj.get("type").and_then(Value::as_str) == Some("object")
        && !["anyOf", "oneOf", "allOf", "not"]
            .iter()
            .any(|k| obj.contains_key(*k))
        && obj
            .get("additionalProperties")
            .is_none_or(|a| a == &Value::Bool(false))
        && obj
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty() && p.keys().all(|k| !properties.contains_key(k)));
    if !flat {
        return Ok(whole(properties, required, schema));
    }
    let props = obj
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut defaults = Map::new();
    let mut names = Vec::new();
    for (k, v) in props {
        if let Some(d) = v.get("default") {
            defaults.insert(k.clone(), d.clone());
        }
        names.push(k.clone());
        properties.insert(k, v);
    }
    if body_required && let Some(Value::Array(r)) = obj.get("required") {
        required.extend(r.iter().cloned());
    }
    Ok(Body::Fields {
        names,
        defaults,
        required: body_required,
    })
}
