//! Property tests: mutated copies of X's document, and arbitrary JSON,
//! give errors or skipped operations, never a panic; whatever still
//! converts is a valid tool that builds requests without panicking.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;
use xmcp_openapi::Options;

static DOC: LazyLock<Value> = LazyLock::new(|| {
    let path = std::env::var("XMCP_X_OPENAPI_FIXTURE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/x-api/openapi.json"
        )
        .into()
    });
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_slice(&bytes).expect("X's document is JSON")
});

/// Every JSON pointer in the document.
static POINTERS: LazyLock<Vec<String>> = LazyLock::new(|| {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    walk(
                        c,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    walk(c, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at);
    }
    let mut out = Vec::new();
    walk(&DOC, String::new(), &mut out);
    out
});

#[derive(Debug, Clone)]
enum Mutation {
    Remove,
    Replace(Value),
    /// A `$ref` to another node of the document (cycles included).
    RefTo(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Remove),
        Just(Mutation::Replace(Value::Null)),
        Just(Mutation::Replace(json!(-1))),
        Just(Mutation::Replace(json!("x"))),
        Just(Mutation::Replace(json!({}))),
        Just(Mutation::Replace(json!([]))),
        Just(Mutation::Replace(json!(true))),
        Just(Mutation::Replace(json!({"$ref": "#/nowhere"}))),
        Just(Mutation::Replace(
            json!({"$ref": "https://example.com/x.json"})
        )),
        Just(Mutation::Replace(json!({"type": "bogus"}))),
        Just(Mutation::Replace(json!({"pattern": "(unclosed"}))),
        any::<Index>().prop_map(Mutation::RefTo),
    ]
}

fn apply(doc: &mut Value, pointer: &str, m: &Mutation) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return; // the root
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    let replacement = match m {
        Mutation::Remove => None,
        Mutation::Replace(v) => Some(v.clone()),
        Mutation::RefTo(i) => Some(json!({"$ref": format!("#{}", i.get::<String>(&POINTERS))})),
    };
    match doc.pointer_mut(parent) {
        Some(Value::Object(o)) => match replacement {
            None => {
                o.remove(&key);
            }
            Some(v) => {
                o.insert(key, v);
            }
        },
        Some(Value::Array(a)) => {
            if let Ok(i) = key.parse::<usize>()
                && i < a.len()
            {
                match replacement {
                    None => {
                        a.remove(i);
                    }
                    Some(v) => a[i] = v,
                }
            }
        }
        _ => {}
    }
}

/// Arguments a model might send: nothing, junk, or values of every kind.
fn probe_arguments(tool: &xmcp_openapi::ToolSpec) -> Vec<Map<String, Value>> {
    let names: Vec<String> = tool
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut out = vec![Map::new()];
    for v in [
        json!("1"),
        json!(["a", "b"]),
        json!(7),
        json!({"k": null}),
        json!(".."),
    ] {
        out.push(names.iter().map(|n| (n.clone(), v.clone())).collect());
    }
    out.push(
        [("not_an_argument".to_owned(), json!(1))]
            .into_iter()
            .collect(),
    );
    out
}

fn check(doc: &Value, app_token: bool) {
    let options = Options {
        app_token,
        ..Options::default()
    };
    let Ok(catalog) = xmcp_openapi::convert(doc, &options) else {
        return;
    };
    let mut names = std::collections::BTreeSet::new();
    for t in &catalog.tools {
        assert!(xmcp_openapi::is_valid_tool_name(&t.name), "{}", t.name);
        assert!(names.insert(t.name.clone()), "duplicate {}", t.name);
        let schema = Value::Object((*t.input_schema).clone());
        assert!(
            jsonschema::draft202012::meta::is_valid(&schema),
            "{}: {schema}",
            t.name
        );
        for args in probe_arguments(t) {
            if let Ok(r) = t.request(args, Some("12")) {
                assert!(r.path.starts_with('/'), "{}", r.path);
                assert!(!r.path.contains("/../") && !r.path.ends_with("/.."));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_x_documents_never_panic(
        edits in prop::collection::vec((any::<Index>(), mutation()), 1..6),
        app_token in any::<bool>(),
    ) {
        let mut doc = DOC.clone();
        for (at, m) in &edits {
            apply(&mut doc, at.get::<String>(&POINTERS), m);
        }
        check(&doc, app_token);
    }

    #[test]
    fn arbitrary_json_never_panics(doc in arbitrary_document()) {
        check(&doc, true);
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let _ = xmcp_openapi::load(&bytes, &Options::default());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let result = xmcp_openapi::load(&bytes, &Options::default());
        if serde_json::from_slice::<Value>(&bytes).is_err() {
            prop_assert!(matches!(result, Err(xmcp_openapi::LoadError::NotJson(_))));
        } else {
            prop_assert!(result.is_err(), "random bytes are no OpenAPI document");
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("string".to_owned()),
            Just("object".to_owned()),
            Just("array".to_owned()),
            Just("#/components/schemas/A".to_owned()),
            Just("{id}".to_owned()),
            "[a-z{}./$#]{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("$ref".to_owned()),
                    Just("properties".to_owned()),
                    Just("items".to_owned()),
                    Just("required".to_owned()),
                    Just("anyOf".to_owned()),
                    Just("enum".to_owned()),
                    Just("name".to_owned()),
                    Just("in".to_owned()),
                    Just("schema".to_owned()),
                    Just("security".to_owned()),
                    Just("OAuth2UserToken".to_owned()),
                    "[a-z_.]{1,8}",
                ],
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Documents with the right skeleton and random insides.
fn arbitrary_document() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map("/2/[a-z{}]{1,8}(/[a-z{}]{1,6})?", json_value(), 0..4),
        json_value(),
        json_value(),
    )
        .prop_map(|(paths, schemas, op)| {
            let mut paths: Map<String, Value> = paths.into_iter().collect();
            paths.insert(
                "/2/users/{id}/things".into(),
                json!({"post": op, "get": {
                    "operationId": "getThings",
                    "security": [{"OAuth2UserToken": ["users.read"]}],
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/A"}}],
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}},
                }}),
            );
            json!({
                "openapi": "3.0.0",
                "paths": paths,
                "components": {
                    "schemas": {"A": schemas},
                    "securitySchemes": {"OAuth2UserToken": {"type": "oauth2"}, "BearerToken": {"type": "http", "scheme": "bearer"}},
                },
            })
        })
}
