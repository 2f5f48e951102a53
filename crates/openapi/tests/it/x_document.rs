//! The converter on X's real OpenAPI document (v2.167, 178 operations),
//! read from `../shared/x-api/openapi.json` beside the repository (or
//! `XMCP_X_OPENAPI_FIXTURE`).

use serde_json::{Map, Value, json};
use std::sync::LazyLock;
use xmcp_openapi::{ArgError, Body, Catalog, Method, Options, Request, SkipReason};

fn document_bytes() -> Vec<u8> {
    let path = std::env::var("XMCP_X_OPENAPI_FIXTURE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/x-api/openapi.json"
        )
        .into()
    });
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("X's OpenAPI document is needed at {path} (../shared beside the repository, or set XMCP_X_OPENAPI_FIXTURE): {e}")
    })
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    xmcp_openapi::load(&document_bytes(), &Options::default()).expect("X's document loads")
});

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

fn request(tool: &str, a: Value) -> Result<Request, ArgError> {
    CATALOG
        .get(tool)
        .unwrap_or_else(|| panic!("no tool {tool}"))
        .request(args(a), Some("2244994945"))
}

#[test]
fn every_user_operation_is_a_tool_and_the_rest_are_skipped_for_a_reason() {
    let c = &*CATALOG;
    assert_eq!(
        c.version,
        xmcp_openapi::X_OPENAPI_CHECKED,
        "X's document moved on: check the toolsets, curated descriptions and prices, then X_OPENAPI_CHECKED"
    );
    // 178 operations: 131 tools; 15 streams + 3 stream-rule endpoints, 12
    // webhook operations, 2 binary downloads, 1 unauthenticated (the
    // document itself), 14 app-only.
    assert_eq!(c.tools.len(), 131);
    assert_eq!(c.tools.len() + c.skipped.len(), 178);
    let count = |r: SkipReason| c.skipped.iter().filter(|s| s.reason == r).count();
    assert_eq!(count(SkipReason::Streaming), 18);
    assert_eq!(count(SkipReason::Webhook), 12);
    assert_eq!(count(SkipReason::Binary), 2);
    assert_eq!(count(SkipReason::Unauthenticated), 1);
    assert_eq!(count(SkipReason::AppOnly), 14);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Every tool is callable with a user's token.
    assert!(c.tools.iter().all(|t| t.access.user_scopes.is_some()));
}

#[test]
fn with_an_app_token_the_app_only_operations_become_tools() {
    let c = xmcp_openapi::load(
        &document_bytes(),
        &Options {
            app_token: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(c.tools.len(), 145);
    let all = c.get("searchPostsAll").expect("searchPostsAll");
    assert!(all.access.app_only());
    assert!(all.description.contains("runs as the server's X app"));
    // An operation both accept still runs as the user.
    assert!(!c.get("searchPostsRecent").unwrap().access.app_only());
}

#[test]
fn names_are_valid_unique_and_the_operation_ids() {
    let re = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let mut seen = std::collections::BTreeSet::new();
    for t in &CATALOG.tools {
        assert!(re(&t.name), "{}", t.name);
        assert!(seen.insert(t.name.clone()), "duplicate {}", t.name);
        assert_eq!(Some(&t.name), t.operation_id.as_ref());
        assert!(
            !t.title.is_empty() && !t.description.is_empty(),
            "{}",
            t.name
        );
        assert!(t.description.chars().count() <= 1_300, "{}", t.name);
    }
}

#[test]
fn every_input_schema_is_valid_json_schema_2020_12_with_a_plain_object_root() {
    for t in &CATALOG.tools {
        let schema = Value::Object((*t.input_schema).clone());
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{}: {e}", t.name);
        }
        jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{}: {e}", t.name));
        assert_eq!(schema["type"], "object", "{}", t.name);
        assert_eq!(schema["additionalProperties"], false, "{}", t.name);
        for k in ["anyOf", "oneOf", "allOf", "not", "$ref"] {
            assert!(schema.get(k).is_none(), "{}: root {k}", t.name);
        }
        let props = schema["properties"].as_object().unwrap();
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            assert!(props.contains_key(r.as_str().unwrap()), "{}: {r}", t.name);
        }
        // No OpenAPI-only keyword survives anywhere.
        let text = schema.to_string();
        for k in [
            "\"nullable\"",
            "\"$ref\"",
            "\"discriminator\"",
            "\"example\"",
        ] {
            assert!(!text.contains(k), "{}: {k}", t.name);
        }
        for name in props.keys() {
            assert!(!name.contains('.'), "{}: {name}", t.name);
        }
    }
}

#[test]
fn annotations_follow_the_method_and_the_verb() {
    let h = |n: &str| CATALOG.get(n).unwrap().hints;
    assert!(h("getUsersMe").read_only && !h("getUsersMe").destructive);
    assert!(h("deletePosts").destructive && h("deletePosts").idempotent);
    assert!(!h("createPosts").destructive && !h("createPosts").idempotent);
    assert!(h("hidePostsReply").destructive && h("hidePostsReply").idempotent);
    assert!(h("updateLists").idempotent && !h("updateLists").destructive);
    // A POST that deletes.
    let chat_delete = CATALOG
        .tools
        .iter()
        .find(|t| t.method == Method::Post && t.path.ends_with("/messages/delete"))
        .expect("the chat message delete operation");
    assert!(chat_delete.hints.destructive);
    assert!(h("likePost").read_only.eq(&false) && !h("likePost").destructive);
}

#[test]
fn create_posts_flattens_the_body_and_sends_the_text_default() {
    let t = CATALOG.get("createPosts").unwrap();
    let props = t.input_schema["properties"].as_object().unwrap();
    assert_eq!(props.len(), 16);
    assert_eq!(props["reply_settings"]["type"], "string");
    assert!(props["reply_settings"]["enum"].is_array());
    assert_eq!(
        props["media"]["properties"]["media_ids"]["items"]["pattern"],
        "^[0-9]{1,19}$"
    );
    assert_eq!(
        t.access.user_scopes.as_deref(),
        Some(
            &[
                "tweet.read".to_owned(),
                "tweet.write".into(),
                "users.read".into()
            ][..]
        )
    );
    let r = request("createPosts", json!({"text": "hello"})).unwrap();
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.path, "/2/tweets");
    assert!(r.query.is_empty());
    assert_eq!(r.body, Some(json!({"text": "hello"})));
    // Only media: X rejects a body without `text`, so its default goes.
    let r = request(
        "createPosts",
        json!({"media": {"media_ids": ["1455952740635586573"]}}),
    )
    .unwrap();
    assert_eq!(
        r.body,
        Some(json!({"media": {"media_ids": ["1455952740635586573"]}, "text": ""}))
    );
    // Nested constraints are checked before X sees anything.
    let e = request(
        "createPosts",
        json!({"text": "x", "media": {"media_ids": ["not-a-number"]}}),
    )
    .unwrap_err();
    assert!(
        matches!(&e, ArgError::Invalid(m) if m.contains("media/media_ids/0")),
        "{e}"
    );
    let e = request(
        "createPosts",
        json!({"text": "x", "reply_settings": "everyone"}),
    )
    .unwrap_err();
    assert!(matches!(e, ArgError::Invalid(_)), "{e}");
}

#[test]
fn article_create_draft_keeps_its_deep_body() {
    let t = CATALOG.get("articleCreateDraft").unwrap();
    assert!(matches!(&t.body, Body::Fields { required: true, .. }));
    let s = Value::Object((*t.input_schema).clone());
    assert_eq!(s["required"], json!(["title", "content_state"]));
    // Depth survives inlining: blocks inside the content state.
    let blocks = &s["properties"]["content_state"]["properties"]["blocks"];
    assert_eq!(blocks["type"], "array", "{blocks}");
    assert!(
        s["properties"]["content_state"]["description"]
            .as_str()
            .unwrap()
            .starts_with("DraftJS content state")
    );
    let e = request("articleCreateDraft", json!({"title": "t"})).unwrap_err();
    assert!(
        matches!(&e, ArgError::Invalid(m) if m.contains("content_state")),
        "{e}"
    );
}

#[test]
fn search_joins_fields_and_expansions_with_commas() {
    let r = request(
        "searchPostsRecent",
        json!({
            "query": "from:xdevelopers -is:retweet",
            "max_results": 10,
            "post_fields": ["created_at", "public_metrics"],
            "expansions": ["author_id"],
            "user_fields": ["username"],
        }),
    )
    .unwrap();
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.path, "/2/tweets/search/recent");
    let mut q = r.query.clone();
    q.sort();
    assert_eq!(
        q,
        vec![
            ("expansions".into(), "author_id".into()),
            ("max_results".into(), "10".into()),
            ("post.fields".into(), "created_at,public_metrics".into()),
            ("query".into(), "from:xdevelopers -is:retweet".into()),
            ("user.fields".into(), "username".into()),
        ]
    );
    assert_eq!(r.body, None);
    // X's own spelling is accepted too, but not both.
    let r = request(
        "searchPostsRecent",
        json!({"query": "a", "post.fields": ["id"]}),
    )
    .unwrap();
    assert!(r.query.contains(&("post.fields".into(), "id".into())));
    assert!(matches!(
        request(
            "searchPostsRecent",
            json!({"query": "a", "post.fields": ["id"], "post_fields": ["id"]})
        ),
        Err(ArgError::Duplicate(..))
    ));
    // Enums and bounds.
    for bad in [
        json!({"query": "a", "post_fields": ["not_a_field"]}),
        json!({"query": "a", "max_results": 5000}),
        json!({"query": ""}),
        json!({}),
    ] {
        assert!(
            matches!(
                request("searchPostsRecent", bad.clone()),
                Err(ArgError::Invalid(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn unknown_arguments_are_named_with_the_valid_ones() {
    let e = request("getUsersMe", json!({"usr_fields": ["id"]})).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("`usr_fields`"), "{text}");
    assert!(text.contains("user_fields"), "{text}");
}

#[test]
fn any_of_text_or_attachments_moves_into_the_description() {
    let t = CATALOG.get("createDirectMessagesByParticipantId").unwrap();
    assert!(t.input_schema.get("anyOf").is_none());
    assert!(
        t.description
            .contains("Give at least one of: `text`; `attachments`."),
        "{}",
        t.description
    );
    let r = request(
        "createDirectMessagesByParticipantId",
        json!({"participant_id": "783214", "text": "hi"}),
    )
    .unwrap();
    assert_eq!(r.path, "/2/dm_conversations/with/783214/messages");
    assert_eq!(r.body, Some(json!({"text": "hi"})));
    // Media upload's `media` keeps its nested anyOf (binary or byte) as base64.
    let up = CATALOG.get("mediaUpload").unwrap();
    let media = &up.input_schema["properties"]["media"];
    assert_eq!(media["anyOf"][1]["contentEncoding"], "base64");
}

#[test]
fn the_callers_own_id_is_the_default_where_x_requires_it() {
    let t = CATALOG.get("unfollowUser").unwrap();
    assert_eq!(t.self_id.as_deref(), Some("source_user_id"));
    assert_eq!(t.input_schema["required"], json!(["target_user_id"]));
    let r = request("unfollowUser", json!({"target_user_id": "783214"})).unwrap();
    assert_eq!(r.path, "/2/users/2244994945/following/783214");
    assert_eq!(r.method, Method::Delete);
    let r = request("getUsersBookmarks", json!({})).unwrap();
    assert_eq!(r.path, "/2/users/2244994945/bookmarks");
    // Without a known id the model is told to pass it.
    let e = CATALOG
        .get("getUsersBookmarks")
        .unwrap()
        .request(Map::new(), None)
        .unwrap_err();
    assert_eq!(e, ArgError::NoSelfId("id".into()));
    // Looking up someone else's posts needs their id: no default.
    let posts = CATALOG.get("getUsersPosts").unwrap();
    assert_eq!(posts.self_id, None);
    assert!(
        posts.input_schema["required"]
            .as_array()
            .unwrap()
            .contains(&json!("id"))
    );
}

#[test]
fn path_values_are_checked_and_percent_encoded() {
    let r = request("getUsersByUsername", json!({"username": "XDevelopers"})).unwrap();
    assert_eq!(r.path, "/2/users/by/username/XDevelopers");
    // The pattern stops traversal before encoding would have to.
    assert!(matches!(
        request("getPostsById", json!({"id": "../users/me"})),
        Err(ArgError::Invalid(_))
    ));
}

#[test]
fn filters_by_operation_id_glob_method_path_and_tag() {
    let load = |o: Options| xmcp_openapi::load(&document_bytes(), &o).unwrap();
    let c = load(Options {
        allow: vec!["getUsers*".into(), "POST /2/tweets".into()],
        deny: vec!["getUsersBlocking".into()],
        ..Options::default()
    });
    let names: Vec<&str> = c.tools.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"createPosts"));
    assert!(names.contains(&"getUsersMe"));
    assert!(!names.contains(&"getUsersBlocking"));
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("getUsers") || *n == "createPosts")
    );
    let c = load(Options {
        tags: vec!["bookmarks".into(), "Users".into()],
        allow: vec!["noSuchOperation".into()],
        ..Options::default()
    });
    assert!(c.tools.is_empty());
    assert_eq!(
        c.warnings,
        ["tool allow pattern `noSuchOperation` matches no operation"]
    );
    let c = load(Options {
        tags: vec!["users".into()],
        ..Options::default()
    });
    assert!(c.tools.iter().all(|t| t.tag.as_deref() == Some("Users")));
    assert!(!c.tools.is_empty());
    assert!(
        xmcp_openapi::load(
            &document_bytes(),
            &Options {
                deny: vec!["get[".into()],
                ..Options::default()
            }
        )
        .is_err()
    );
}

#[test]
fn a_reserved_name_is_prefixed() {
    let c = xmcp_openapi::load(
        &document_bytes(),
        &Options {
            reserved: vec!["getUsersMe".into()],
            ..Options::default()
        },
    )
    .unwrap();
    assert!(c.get("getUsersMe").is_none());
    assert_eq!(
        c.get("x_getUsersMe").unwrap().operation_id.as_deref(),
        Some("getUsersMe")
    );
}

/// On X's document every tool falls in a described toolset (none in a
/// fallback named after a tag), and every core operation is a tool.
#[test]
fn every_tool_has_a_described_toolset_and_core_operations_exist() {
    let c = &*CATALOG;
    for t in &c.tools {
        assert!(
            xmcp_openapi::toolsets::description(&t.toolset).is_some(),
            "{} is in the undescribed toolset {}",
            t.name,
            t.toolset
        );
    }
    let core = xmcp_openapi::toolsets::CORE;
    assert!((15..=25).contains(&core.len()), "{}", core.len());
    for name in core {
        assert!(c.get(name).is_some(), "core operation {name} is not a tool");
    }
}
