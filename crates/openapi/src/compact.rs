//! The input schema a model is shown, smaller than the one arguments are
//! checked against.
//!
//! X repeats the same long value lists on a hundred operations (31 post
//! fields, 24 user fields, 12 expansions...). Listed in full on every tool
//! they are a quarter of `tools/list`. The listed schema names the useful
//! values and the default instead; the full list stays in the schema that
//! validates arguments ([`crate::ToolSpec::input_schema`]), whose error
//! names every accepted value when one is wrong. When the caller gives
//! none, a sensible set of fields is requested ([`DEFAULT_FIELDS`]).

use serde_json::{Map, Value};

/// Fields requested when the caller names none, by X's parameter name.
/// Only values the operation's own list accepts are sent. Fields cost
/// nothing (X bills per resource returned); expansions would (each
/// expanded user or post is a resource), so none is added.
pub const DEFAULT_FIELDS: [(&str, &[&str]); 3] = [
    (
        "post.fields",
        &[
            "author_id",
            "conversation_id",
            "created_at",
            "public_metrics",
            "referenced_tweets",
        ],
    ),
    (
        "tweet.fields",
        &[
            "author_id",
            "conversation_id",
            "created_at",
            "public_metrics",
            "referenced_tweets",
        ],
    ),
    (
        "user.fields",
        &["created_at", "description", "public_metrics", "verified"],
    ),
];

/// Values worth naming in a listed schema, by X's parameter name (only
/// those in the operation's own list are named).
const USEFUL: [(&str, &[&str]); 5] = [
    (
        "post.fields",
        &[
            "entities",
            "lang",
            "in_reply_to_user_id",
            "attachments",
            "note_tweet",
            "context_annotations",
        ],
    ),
    (
        "tweet.fields",
        &[
            "entities",
            "lang",
            "in_reply_to_user_id",
            "attachments",
            "note_tweet",
            "context_annotations",
        ],
    ),
    (
        "user.fields",
        &[
            "location",
            "url",
            "profile_image_url",
            "pinned_tweet_id",
            "protected",
        ],
    ),
    (
        "media.fields",
        &["url", "preview_image_url", "alt_text", "type"],
    ),
    (
        "expansions",
        &[
            "author_id",
            "referenced_tweets.id",
            "referenced_posts",
            "attachments.media_keys",
            "in_reply_to_user_id",
            "pinned_tweet_id",
        ],
    ),
];

/// Lists longer than this are named, not listed.
const LONG_ENUM: usize = 8;

/// Longest description kept in a listed schema, in characters.
const MAX_PROPERTY_DESCRIPTION: usize = 160;

/// Longest description of a property nested in another's, in characters.
const MAX_NESTED_DESCRIPTION: usize = 60;

/// The defaults of the list parameter `wire` whose accepted values are
/// `accepted`: those of [`DEFAULT_FIELDS`] it accepts.
pub(crate) fn default_fields(wire: &str, accepted: &[Value]) -> Option<Value> {
    let (_, defaults) = DEFAULT_FIELDS.iter().find(|(w, _)| *w == wire)?;
    let kept: Vec<Value> = defaults
        .iter()
        .filter(|d| accepted.iter().any(|a| a == **d))
        .map(|d| Value::from(*d))
        .collect();
    (!kept.is_empty()).then_some(Value::Array(kept))
}

/// The first sentence of `text`, at most `max` characters (cut at a word,
/// with an ellipsis).
pub fn first_sentence(text: &str, max: usize) -> String {
    let text = text.trim();
    let end = text
        .match_indices(". ")
        .map(|(i, _)| i + 1)
        .next()
        .unwrap_or(text.len());
    let sentence = &text[..end];
    if sentence.chars().count() <= max {
        return sentence.to_owned();
    }
    let keep = max.saturating_sub(1);
    let cut: String = sentence.chars().take(keep).collect();
    let at_word_end = sentence.chars().nth(keep).is_some_and(char::is_whitespace);
    let cut = match cut.rfind(' ') {
        Some(i) if !at_word_end => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

/// What a long value list says in a listed schema.
fn named_values(wire: &str, values: &[Value], default: Option<&Value>) -> String {
    let useful: Vec<&str> = USEFUL
        .iter()
        .find(|(w, _)| *w == wire)
        .map(|(_, u)| {
            u.iter()
                .copied()
                .filter(|u| values.iter().any(|v| v == *u))
                .collect()
        })
        .unwrap_or_else(|| values.iter().filter_map(Value::as_str).take(5).collect());
    let mut said = Vec::new();
    if let Some(Value::Array(d)) = default {
        let d: Vec<&str> = d.iter().filter_map(Value::as_str).collect();
        said.push(format!("default {}", d.join(",")));
    }
    if !useful.is_empty() {
        said.push(format!("also {}", useful.join(",")));
    }
    format!("{} ({} in all)", said.join("; "), values.len())
}

/// The listed form of the tool's input schema `full`. `wire` maps an
/// argument to X's parameter name; `defaults` holds the arguments given
/// when the caller omits them.
pub(crate) fn listed_schema(
    full: &Map<String, Value>,
    wire: &dyn Fn(&str) -> Option<String>,
    defaults: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = full.clone();
    if let Some(Value::Object(props)) = out.get_mut("properties") {
        for (name, schema) in props.iter_mut() {
            let wire = wire(name).unwrap_or_else(|| name.clone());
            compact_property(schema, &wire, defaults.get(name));
        }
    }
    out
}

/// Whether X's parameter `wire` picks fields or expansions of the answer.
fn is_field_list(wire: &str) -> bool {
    wire == "expansions" || wire.ends_with(".fields")
}

fn compact_property(schema: &mut Value, wire: &str, default: Option<&Value>) {
    let Value::Object(m) = schema else {
        return;
    };
    let values = m
        .get("items")
        .and_then(|i| i.get("enum"))
        .and_then(Value::as_array)
        .cloned();
    let Some(values) = values.filter(|v| v.len() > LONG_ENUM || is_field_list(wire)) else {
        compact_schema(schema, 0);
        return;
    };
    // X's "A comma separated list of Post fields to display." says less
    // than the parameter's name: "Post fields to display."
    let what = m
        .get("description")
        .and_then(Value::as_str)
        .map(|d| d.trim_start_matches("A comma separated list of "))
        .map(|d| {
            let mut c = d.chars();
            c.next()
                .map(|f| format!("{}{}", f.to_uppercase(), c.as_str()))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    m.remove("minItems");
    m.remove("uniqueItems");
    if values.len() <= LONG_ENUM {
        m.insert("description".into(), what.into());
        return;
    }
    if let Some(Value::Object(items)) = m.get_mut("items") {
        items.remove("enum");
    }
    let what = match what.trim_end_matches('.').trim_end_matches(" to display") {
        "" => String::new(),
        w => format!("{w}: "),
    };
    m.insert(
        "description".into(),
        format!("{what}{}", named_values(wire, &values, default)).into(),
    );
}

/// Trim what a model does not need: examples, integer formats, long
/// descriptions, and (below the top level) `additionalProperties: false`,
/// which the validating schema still enforces.
fn compact_schema(schema: &mut Value, depth: usize) {
    let Value::Object(m) = schema else {
        return;
    };
    m.remove("example");
    m.remove("examples");
    if matches!(
        m.get("format").and_then(Value::as_str),
        Some("int32" | "int64")
    ) {
        m.remove("format");
    }
    if depth > 0 && m.get("additionalProperties") == Some(&Value::Bool(false)) {
        m.remove("additionalProperties");
    }
    if let Some(Value::String(d)) = m.get_mut("description") {
        let max = if depth > 1 {
            MAX_NESTED_DESCRIPTION
        } else {
            MAX_PROPERTY_DESCRIPTION
        };
        *d = first_sentence(d, max);
    }
    if let Some(Value::Array(e)) = m.get("enum")
        && e.len() > LONG_ENUM
    {
        let values = e.clone();
        m.remove("enum");
        let said = m
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let named: Vec<&str> = values.iter().filter_map(Value::as_str).take(5).collect();
        m.insert(
            "description".into(),
            format!(
                "{said}{}One of {} values, e.g. {}.",
                if said.is_empty() { "" } else { " " },
                values.len(),
                named.join(",")
            )
            .into(),
        );
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for (_, p) in props.iter_mut() {
            compact_schema(p, depth + 1);
        }
    }
    if let Some(items) = m.get_mut("items") {
        compact_schema(items, depth + 1);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = m.get_mut(key) {
            for b in branches {
                compact_schema(b, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_lists_are_named_and_defaults_said() {
        let values: Vec<Value> = [
            "article",
            "attachments",
            "author_id",
            "context_annotations",
            "conversation_id",
            "created_at",
            "entities",
            "lang",
            "public_metrics",
            "referenced_tweets",
        ]
        .map(Value::from)
        .to_vec();
        let full = json!({
            "type": "object",
            "properties": {
                "tweet_fields": {
                    "type": "array", "minItems": 1, "uniqueItems": true,
                    "description": "A comma separated list of Tweet fields to display.",
                    "items": {"type": "string", "enum": values},
                },
                "max_results": {"type": "integer", "format": "int32", "example": 10},
            },
            "additionalProperties": false,
        });
        let defaults = {
            let mut d = Map::new();
            d.insert(
                "tweet_fields".into(),
                default_fields("tweet.fields", &values).unwrap(),
            );
            d
        };
        let wire = |a: &str| (a == "tweet_fields").then(|| "tweet.fields".to_owned());
        let listed = listed_schema(full.as_object().unwrap(), &wire, &defaults);
        let f = &listed["properties"]["tweet_fields"];
        assert_eq!(f["items"], json!({"type": "string"}));
        assert_eq!(
            f["description"],
            "Tweet fields: default author_id,conversation_id,created_at,public_metrics,referenced_tweets; also entities,lang,attachments,context_annotations (10 in all)"
        );
        assert_eq!(
            listed["properties"]["max_results"],
            json!({"type": "integer"})
        );
        assert_eq!(listed["additionalProperties"], false);
    }

    #[test]
    fn first_sentences_are_cut_at_a_word() {
        assert_eq!(first_sentence("One. Two.", 100), "One.");
        assert_eq!(first_sentence("No end", 100), "No end");
        assert_eq!(first_sentence("aaa bbb ccc", 8), "aaa bbb…");
    }
}
