//! OpenAPI 3.0 Schema Objects to JSON Schema 2020-12.
//!
//! `$ref`s are inlined (X's document has no cycles; a cycle becomes an
//! unconstrained schema rather than a loop), `nullable` becomes a `null`
//! type, boolean `exclusiveMinimum`/`exclusiveMaximum` become numbers,
//! `example` becomes `examples`, and keywords JSON Schema does not know
//! (`discriminator`, `xml`, `externalDocs`, `x-*`...) are dropped. A keyword
//! whose value has the wrong type is an error, never silently kept.

use serde_json::{Map, Value, json};

/// Why a schema could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("`$ref` {0} does not point into this document")]
    External(String),
    #[error("`$ref` {0} points to nothing")]
    Dangling(String),
    #[error("keyword `{keyword}` has an invalid value")]
    Keyword { keyword: String },
    #[error("a schema must be an object or a boolean")]
    NotASchema,
    #[error("schemas nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the schema expands to more than {MAX_NODES} nodes")]
    TooLarge,
}

/// Deepest nesting of schemas (through `$ref`s and keywords) accepted.
pub const MAX_DEPTH: usize = 48;
/// Most schema nodes one operation may expand to. X's largest input
/// (`articleCreateDraft`) has 73; this bounds documents whose `$ref`s
/// multiply (each pointing twice at the next).
pub const MAX_NODES: usize = 20_000;

const TYPES: [&str; 7] = [
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// Converts schemas of one document. One per operation: its node budget
/// bounds that operation.
pub struct Converter<'a> {
    doc: &'a Value,
    refs: Vec<String>,
    depth: usize,
    nodes: usize,
}

impl<'a> Converter<'a> {
    pub fn new(doc: &'a Value) -> Self {
        Self {
            doc,
            refs: Vec::new(),
            depth: 0,
            nodes: 0,
        }
    }

    /// Follow a local `$ref` (a JSON pointer into the document).
    pub fn resolve(&self, reference: &str) -> Result<&'a Value, SchemaError> {
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| SchemaError::External(reference.to_owned()))?;
        self.doc
            .pointer(pointer)
            .ok_or_else(|| SchemaError::Dangling(reference.to_owned()))
    }

    /// Convert one schema.
    pub fn convert(&mut self, schema: &Value) -> Result<Value, SchemaError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SchemaError::TooLarge);
        }
        if self.depth >= MAX_DEPTH {
            return Err(SchemaError::TooDeep);
        }
        self.depth += 1;
        let out = self.convert_inner(schema);
        self.depth -= 1;
        out
    }

    fn convert_inner(&mut self, schema: &Value) -> Result<Value, SchemaError> {
        let o = match schema {
            Value::Bool(b) => return Ok(Value::Bool(*b)),
            Value::Object(o) => o,
            _ => return Err(SchemaError::NotASchema),
        };
        if let Some(r) = o.get("$ref") {
            let r = r.as_str().ok_or_else(|| keyword("$ref"))?;
            if self.refs.iter().any(|seen| seen == r) {
                // A cycle: stop here, accepting anything.
                return Ok(json!({"description": "(a recursive structure)"}));
            }
            let target = self.resolve(r)?;
            self.refs.push(r.to_owned());
            let converted = self.convert(target);
            self.refs.pop();
            let mut converted = converted?;
            // OpenAPI 3.0 ignores siblings of `$ref`, but a description
            // there is the most specific one: keep it.
            if let (Some(d), Value::Object(m)) = (o.get("description"), &mut converted) {
                let d = d.as_str().ok_or_else(|| keyword("description"))?;
                m.insert("description".into(), d.into());
            }
            return Ok(converted);
        }
        let mut out = Map::new();
        let mut nullable = false;
        for (k, v) in o {
            let k = k.as_str();
            match k {
                "type" => {
                    let ok = match v {
                        Value::String(t) => TYPES.contains(&t.as_str()),
                        Value::Array(ts) => {
                            !ts.is_empty()
                                && ts
                                    .iter()
                                    .all(|t| t.as_str().is_some_and(|t| TYPES.contains(&t)))
                        }
                        _ => false,
                    };
                    if !ok {
                        return Err(keyword(k));
                    }
                    out.insert(k.into(), v.clone());
                }
                "properties" => {
                    let props = v.as_object().ok_or_else(|| keyword(k))?;
                    let mut converted = Map::new();
                    for (name, p) in props {
                        converted.insert(name.clone(), self.convert(p)?);
                    }
                    out.insert(k.into(), converted.into());
                }
                "items" | "additionalProperties" | "not" => {
                    out.insert(k.into(), self.convert(v)?);
                }
                "allOf" | "anyOf" | "oneOf" => {
                    let list = v
                        .as_array()
                        .filter(|l| !l.is_empty())
                        .ok_or_else(|| keyword(k))?;
                    let converted = list
                        .iter()
                        .map(|s| self.convert(s))
                        .collect::<Result<Vec<_>, _>>()?;
                    out.insert(k.into(), converted.into());
                }
                "required" => {
                    let list = v.as_array().ok_or_else(|| keyword(k))?;
                    let mut names: Vec<Value> = Vec::new();
                    for n in list {
                        if !n.is_string() {
                            return Err(keyword(k));
                        }
                        if !names.contains(n) {
                            names.push(n.clone());
                        }
                    }
                    out.insert(k.into(), names.into());
                }
                "enum" => {
                    if v.as_array().is_none_or(|l| l.is_empty()) {
                        return Err(keyword(k));
                    }
                    out.insert(k.into(), v.clone());
                }
                "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
                | "maxProperties" => {
                    if !v.is_u64() {
                        return Err(keyword(k));
                    }
                    out.insert(k.into(), v.clone());
                }
                "minimum" | "maximum" => {
                    if !v.is_number() {
                        return Err(keyword(k));
                    }
                    out.insert(k.into(), v.clone());
                }
                "multipleOf" => {
                    if !v.as_f64().is_some_and(|n| n > 0.0) {
                        return Err(keyword(k));
                    }
                    out.insert(k.into(), v.clone());
                }
                // Booleans in OpenAPI 3.0; resolved against minimum/maximum below.
                "exclusiveMinimum" | "exclusiveMaximum" => {
                    if !(v.is_boolean() || v.is_number()) {
                        return Err(keyword(k));
                    }
                    out.insert(k.into(), v.clone());
                }
                "uniqueItems" | "deprecated" => {
                    if !v.is_boolean() {
                        return Err(keyword(k));
                    }
                    out.insert(k.into(), v.clone());
                }
                "nullable" => nullable = v.as_bool().ok_or_else(|| keyword(k))?,
                "pattern" | "format" | "description" | "title" => {
                    if !v.is_string() {
                        return Err(keyword(k));
                    }
                    out.insert(k.into(), v.clone());
                }
                "default" | "const" => {
                    out.insert(k.into(), v.clone());
                }
                "example" => {
                    out.insert("examples".into(), json!([v]));
                }
                "examples" if v.is_array() => {
                    out.insert(k.into(), v.clone());
                }
                // discriminator, xml, externalDocs, readOnly, writeOnly, x-*:
                // meaningless to a JSON Schema validator.
                _ => {}
            }
        }
        for (exclusive, bound) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            if let Some(Value::Bool(b)) = out.get(exclusive).cloned() {
                out.remove(exclusive);
                if b && let Some(n) = out.remove(bound) {
                    out.insert(exclusive.into(), n);
                }
            }
        }
        // Binary content travels as base64 in JSON bodies.
        if let Some(f) = out.get("format").and_then(Value::as_str)
            && (f == "byte" || f == "binary")
        {
            out.insert("contentEncoding".into(), "base64".into());
        }
        if nullable {
            if let Some(t) = out.get_mut("type") {
                match t {
                    Value::String(s) => *t = json!([s.clone(), "null"]),
                    Value::Array(ts) if !ts.iter().any(|t| t == "null") => ts.push("null".into()),
                    _ => {}
                }
            }
            if let Some(Value::Array(values)) = out.get_mut("enum")
                && !values.contains(&Value::Null)
            {
                values.push(Value::Null);
            }
        }
        Ok(Value::Object(out))
    }
}

fn keyword(k: &str) -> SchemaError {
    SchemaError::Keyword {
        keyword: k.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(doc: &Value, schema: Value) -> Result<Value, SchemaError> {
        Converter::new(doc).convert(&schema)
    }

    #[test]
    fn refs_are_inlined_and_a_sibling_description_wins() {
        let doc = json!({"components": {"schemas": {
            "PostId": {"type": "string", "pattern": "^[0-9]{1,19}$", "description": "A Post id.", "example": "1346889436626259968"}
        }}});
        let out = convert(
            &doc,
            json!({"$ref": "#/components/schemas/PostId", "description": "The Post to quote."}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"type": "string", "pattern": "^[0-9]{1,19}$", "description": "The Post to quote.", "examples": ["1346889436626259968"]})
        );
    }

    #[test]
    fn nullable_exclusive_bounds_and_binary_become_2020_12() {
        let doc = json!({});
        let out = convert(
            &doc,
            json!({"type": "object", "discriminator": {"propertyName": "type"}, "properties": {
                "a": {"type": "string", "enum": ["x", "y"], "nullable": true},
                "n": {"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": false},
                "media": {"type": "string", "format": "byte"},
            }, "x-internal": 1}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"type": "object", "properties": {
                "a": {"type": ["string", "null"], "enum": ["x", "y", null]},
                "n": {"type": "integer", "exclusiveMinimum": 0, "maximum": 9},
                "media": {"type": "string", "format": "byte", "contentEncoding": "base64"},
            }})
        );
    }

    #[test]
    fn cycles_stop_instead_of_looping() {
        let doc = json!({"components": {"schemas": {
            "Node": {"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Node"}}}
        }}});
        let out = convert(&doc, json!({"$ref": "#/components/schemas/Node"})).unwrap();
        assert_eq!(
            out["properties"]["child"],
            json!({"description": "(a recursive structure)"})
        );
    }

    #[test]
    fn multiplying_refs_hit_the_node_budget() {
        // Each level points twice at the next: 2^15 leaves if expanded.
        let mut schemas = Map::new();
        for i in 0..15 {
            schemas.insert(
                format!("L{i}"),
                json!({"type": "object", "properties": {
                    "a": {"$ref": format!("#/components/schemas/L{}", i + 1)},
                    "b": {"$ref": format!("#/components/schemas/L{}", i + 1)},
                }}),
            );
        }
        schemas.insert("L15".into(), json!({"type": "string"}));
        let doc = json!({"components": {"schemas": schemas}});
        assert_eq!(
            convert(&doc, json!({"$ref": "#/components/schemas/L0"})),
            Err(SchemaError::TooLarge)
        );
    }

    #[test]
    fn bad_keywords_and_refs_are_errors() {
        let doc = json!({});
        for (schema, expected) in [
            (
                json!({"type": "strnig"}),
                SchemaError::Keyword {
                    keyword: "type".into(),
                },
            ),
            (
                json!({"minLength": -1}),
                SchemaError::Keyword {
                    keyword: "minLength".into(),
                },
            ),
            (
                json!({"required": "text"}),
                SchemaError::Keyword {
                    keyword: "required".into(),
                },
            ),
            (
                json!({"$ref": "other.json#/A"}),
                SchemaError::External("other.json#/A".into()),
            ),
            (
                json!({"$ref": "#/components/schemas/Missing"}),
                SchemaError::Dangling("#/components/schemas/Missing".into()),
            ),
            (json!(3), SchemaError::NotASchema),
        ] {
            assert_eq!(convert(&doc, schema.clone()), Err(expected), "{schema}");
        }
    }
}
