//! Every X operation as a tool, end to end: a real HTTP client through the
//! OAuth dance, then `tools/call` and `resources/read` over MCP, reaching
//! the simulated X (which serves X's paths, shapes, errors and rate-limit
//! headers, and whose OpenAPI document the tools are generated from).

use crate::harness::*;
use serde_json::{Value, json};

xmcp_test_support::both_backends!(
    post_search_like_bookmark_list_and_delete_as_a_model_would,
    two_users_at_once_each_act_as_themselves,
);

const REDIRECT: &str = "http://127.0.0.1:5555/callback";

/// Every scope the tools below need.
const SCOPES: &str = "tweet.read tweet.write users.read like.read like.write bookmark.read bookmark.write follows.read follows.write";

async fn signed_in(app: &Client, user: &str) -> String {
    let client_id = app.register_public().await;
    let mut a = Authorize::new(app, &client_id, REDIRECT);
    a.scope = SCOPES.into();
    let t = a.tokens_as(app, user).await;
    t["access_token"].as_str().unwrap().to_owned()
}

/// A successful tool result's structured content.
async fn ok(app: &Client, token: &str, tool: &str, args: Value) -> Value {
    let r = app.call_tool(token, tool, args).await;
    assert_eq!(r["isError"], false, "{tool}: {r}");
    r["structuredContent"].clone()
}

fn ids(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .map(|d| d.iter().filter_map(|p| p["id"].as_str()).collect())
        .unwrap_or_default()
}

async fn read_resource(app: &Client, token: &str, uri: &str) -> Value {
    let r = app
        .mcp(Some(token), "resources/read", json!({"uri": uri}))
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    r.json().await.unwrap()
}

async fn post_search_like_bookmark_list_and_delete_as_a_model_would(backend: Backend) {
    let app = spawn(backend).await;
    let token = signed_in(&app, "demo_user").await;

    let created = ok(
        &app,
        &token,
        "createPosts",
        json!({"text": "Trying every X operation over MCP #xmcpit"}),
    )
    .await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();

    let found = ok(
        &app,
        &token,
        "searchPostsRecent",
        json!({
            "query": "#xmcpit from:demo_user",
            "post_fields": ["created_at", "public_metrics"],
            "expansions": ["author_id"],
            "user_fields": ["username"],
            "max_results": 10,
        }),
    )
    .await;
    assert_eq!(ids(&found), [id.as_str()], "{found}");
    assert!(found["data"][0]["created_at"].is_string(), "{found}");
    assert_eq!(found["includes"]["users"][0]["username"], "demo_user");

    // `id` (the user) is left out: it defaults to the caller's X id.
    let liked = ok(&app, &token, "likePost", json!({"tweet_id": id})).await;
    assert_eq!(liked["data"]["liked"], true, "{liked}");
    let likes = ok(
        &app,
        &token,
        "getUsersLikedPosts",
        json!({"id": "1850000000000000001"}),
    )
    .await;
    assert_eq!(ids(&likes), [id.as_str()]);

    let marked = ok(&app, &token, "createUsersBookmark", json!({"tweet_id": id})).await;
    assert_eq!(marked["data"]["bookmarked"], true, "{marked}");
    let bookmarks = ok(&app, &token, "getUsersBookmarks", json!({})).await;
    assert_eq!(ids(&bookmarks), [id.as_str()]);

    // The curated resources read the same data.
    let r = read_resource(&app, &token, "x://bookmarks/latest").await;
    let text = r["result"]["contents"][0]["text"].as_str().unwrap();
    assert!(text.contains(&id), "{r}");
    assert_eq!(r["result"]["contents"][0]["mimeType"], "application/json");
    let me = read_resource(&app, &token, "x://me").await;
    let me: Value =
        serde_json::from_str(me["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(me["data"]["username"], "demo_user");
    assert!(me["data"]["public_metrics"].is_object(), "{me}");

    // X's rate-limit headers were recorded per endpoint.
    let limits = ok(&app, &token, "rate_limits", json!({})).await;
    let endpoints: Vec<&str> = limits["limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["endpoint"].as_str().unwrap())
        .collect();
    assert!(endpoints.contains(&"POST /2/tweets"), "{limits}");
    assert!(
        endpoints.contains(&"GET /2/users/{id}/bookmarks"),
        "{limits}"
    );

    let removed = ok(&app, &token, "deleteUsersBookmark", json!({"tweet_id": id})).await;
    assert_eq!(removed["data"]["bookmarked"], false, "{removed}");
    let deleted = ok(&app, &token, "deletePosts", json!({"id": id})).await;
    assert_eq!(deleted["data"]["deleted"], true, "{deleted}");
    let found = ok(
        &app,
        &token,
        "searchPostsRecent",
        json!({"query": "#xmcpit"}),
    )
    .await;
    assert!(ids(&found).is_empty(), "{found}");
}

async fn two_users_at_once_each_act_as_themselves(backend: Backend) {
    let app = spawn(backend).await;
    let demo = signed_in(&app, "demo_user").await;
    let second = signed_in(&app, "second_user").await;
    let post = |token: String, text: String| {
        let app = app.client.clone();
        async move { ok(&app, &token, "createPosts", json!({"text": text})).await }
    };
    // Interleaved: each call runs with its own user's X token.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (token, who) = if i % 2 == 0 {
            (demo.clone(), "demo")
        } else {
            (second.clone(), "second")
        };
        tasks.push(tokio::spawn(post(token, format!("from {who} #{i}"))));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for (token, username, who) in [
        (&demo, "demo_user", "from demo"),
        (&second, "second_user", "from second"),
    ] {
        let me = ok(&app, token, "getUsersMe", json!({})).await;
        assert_eq!(me["data"]["username"], username);
        let mine = ok(
            &app,
            token,
            "getUsersPosts",
            json!({"id": me["data"]["id"], "max_results": 10}),
        )
        .await;
        let texts: Vec<&str> = mine["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts.len(), 3, "{username}: {mine}");
        assert!(
            texts.iter().all(|t| t.starts_with(who)),
            "{username}: {mine}"
        );
        // Bookmarks default to the caller's own id, never the other user's.
        let b = ok(&app, token, "getUsersBookmarks", json!({})).await;
        assert!(b["data"].as_array().is_none_or(Vec::is_empty), "{b}");
    }
    // Per user: sign-in's own /2/users/me, 3 posts, 3 reads.
    let calls = app.sandbox().stats().api_calls;
    assert_eq!(calls.get("demo_user"), Some(&(1 + 3 + 3)), "{calls:?}");
    assert_eq!(calls.get("second_user"), Some(&(1 + 3 + 3)), "{calls:?}");
}

#[tokio::test]
async fn a_429_resetting_soon_is_waited_out_and_5xx_on_a_post_is_retried() {
    let app = spawn(Backend::Sqlite).await;
    let token = signed_in(&app, "demo_user").await;
    app.sandbox()
        .add_fault("POST /2/tweets=429:1*1".parse().unwrap());
    let created = ok(
        &app,
        &token,
        "createPosts",
        json!({"text": "after the wait"}),
    )
    .await;
    assert!(created["data"]["id"].is_string());
    // 503 means X did not act: a POST is retried.
    app.sandbox()
        .add_fault("POST /2/tweets=503*2".parse().unwrap());
    ok(
        &app,
        &token,
        "createPosts",
        json!({"text": "after two 503s"}),
    )
    .await;
    // 500 may mean X acted: a POST is not repeated, and X's words come back.
    app.sandbox()
        .add_fault("POST /2/tweets=500*1".parse().unwrap());
    let r = app
        .call_tool(&token, "createPosts", json!({"text": "once only"}))
        .await;
    assert_eq!(r["isError"], true, "{r}");
    assert_eq!(r["structuredContent"]["status"], 500);
    let posts = ok(
        &app,
        &token,
        "searchPostsRecent",
        json!({"query": "from:demo_user"}),
    )
    .await;
    assert_eq!(ids(&posts).len(), 2, "{posts}");
}

#[tokio::test]
async fn credits_depleted_and_bad_arguments_are_explained() {
    let app = spawn(Backend::Sqlite).await;
    let token = signed_in(&app, "demo_user").await;
    app.sandbox()
        .add_fault("GET /2/tweets/search/recent=402*1".parse().unwrap());
    let r = app
        .call_tool(&token, "searchPostsRecent", json!({"query": "x"}))
        .await;
    assert_eq!(r["isError"], true);
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("no credits left"), "{text}");
    assert!(text.contains("HTTP 402: CreditsDepleted"), "{text}");
    assert_eq!(r["structuredContent"]["title"], "CreditsDepleted");

    let before = app.sandbox().stats().api_calls;
    for (tool, args, says) in [
        (
            "searchPostsRecent",
            json!({}),
            "\"query\" is a required property",
        ),
        (
            "searchPostsRecent",
            json!({"query": "x", "post_fields": ["bogus"]}),
            "post_fields/0",
        ),
        (
            "createPosts",
            json!({"text": "x", "quote": 1}),
            "unknown argument `quote`",
        ),
        (
            "deletePosts",
            json!({"id": "../users/me"}),
            "does not match",
        ),
    ] {
        let r = app.call_tool(&token, tool, args).await;
        assert_eq!(r["isError"], true, "{tool}: {r}");
        let text = r["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(says), "{tool}: {text}");
    }
    assert_eq!(
        app.sandbox().stats().api_calls,
        before,
        "X was never called"
    );

    // An unknown tool is a JSON-RPC error, not a tool result.
    let r = app
        .mcp(
            Some(&token),
            "tools/call",
            json!({"name": "noSuchTool", "arguments": {}}),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602, "{body}");
}

#[tokio::test]
async fn a_tool_needing_a_scope_the_token_lacks_steps_up() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    // Only the default read scopes.
    let t = Authorize::new(&app, &client_id, REDIRECT)
        .tokens_as(&app, "demo_user")
        .await;
    let token = t["access_token"].as_str().unwrap();
    let r = app
        .mcp(
            Some(token),
            "tools/call",
            json!({"name": "createPosts", "arguments": {"text": "x"}}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(
        challenge.contains("scope=\"tweet.read tweet.write users.read\""),
        "{challenge}"
    );
    // Resources step up the same way.
    let r = app
        .mcp(
            Some(token),
            "resources/read",
            json!({"uri": "x://bookmarks/latest"}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn app_only_operations_run_with_the_app_token_never_a_users() {
    // A copy of the simulated X's document in which X lets only apps call
    // `getUsersByUsername`, as X does for some endpoints.
    let probe = spawn(Backend::Sqlite).await;
    let mut doc = probe.sandbox().openapi();
    doc["paths"]["/2/users/by/username/{username}"]["get"]["security"] =
        json!([{"BearerToken": []}]);
    let file = probe.data_dir.path().join("x-openapi-app-only.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();

    let without = builder(Backend::Sqlite)
        .settings(|s| s.tools.x_openapi = Some(file.display().to_string()))
        .spawn()
        .await;
    assert!(
        without
            .app
            .catalog
            .skipped
            .iter()
            .any(|s| s.operation == "getUsersByUsername"),
        "without an app token the operation is no tool"
    );

    let app = builder(Backend::Sqlite)
        .settings(|s| {
            s.tools.x_openapi = Some(file.display().to_string());
            s.tools.x_bearer_token = Some(X_APP_BEARER_TOKEN.to_owned().into());
        })
        .spawn()
        .await;
    let token = signed_in(&app, "demo_user").await;
    let before = app.sandbox().stats().api_calls;
    let r = ok(
        &app,
        &token,
        "getUsersByUsername",
        json!({"username": "second_user"}),
    )
    .await;
    assert_eq!(r["data"]["username"], "second_user");
    let after = app.sandbox().stats().api_calls;
    assert_eq!(after.get("app"), Some(&1), "{after:?}");
    assert_eq!(after.get("demo_user"), before.get("demo_user"), "{after:?}");
    // A user-context operation still runs as the user.
    let me = ok(&app, &token, "getUsersMe", json!({})).await;
    assert_eq!(me["data"]["username"], "demo_user");
}

/// X's real OpenAPI document (v2.167), beside the repository.
fn x_document() -> String {
    std::env::var("XMCP_X_OPENAPI_FIXTURE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/x-api/openapi.json"
        )
        .into()
    })
}

#[tokio::test]
async fn tools_list_from_xs_real_document_matches_the_snapshot() {
    let app = builder(Backend::Sqlite)
        .settings(|s| s.tools.x_openapi = Some(x_document()))
        .spawn()
        .await;
    let token = signed_in(&app, "demo_user").await;
    let r = app
        .mcp_at("/mcp/x/all", Some(&token), &[], "tools/list", json!({}))
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let tools = body["result"]["tools"].as_array().unwrap();
    assert_eq!(
        tools.len(),
        3 + 131 + 1,
        "ours, one per user-callable operation, and uploadMediaFromUrl"
    );
    let mut names = std::collections::BTreeSet::new();
    for t in tools {
        let name = t["name"].as_str().unwrap();
        assert!(xmcp_openapi::is_valid_tool_name(name), "{name}");
        assert!(names.insert(name), "duplicate {name}");
        jsonschema::draft202012::meta::validate(&t["inputSchema"])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    insta::assert_json_snapshot!("tools_list_x_api_2_167", tools);
}

#[tokio::test]
async fn without_x_the_last_good_openapi_document_is_used() {
    // The first start fetched the simulated X's document and cached it.
    let first = spawn(Backend::Sqlite).await;
    let cache = first.data_dir.path().join("x-openapi.json");
    assert!(cache.is_file());
    let dir = first.data_dir.path().to_owned();
    let unreachable = format!("http://127.0.0.1:{}/2/openapi.json", free_port());
    let second = builder(Backend::Sqlite)
        .settings(|s| {
            s.store.data_dir = Some(dir);
            s.tools.x_openapi = Some(unreachable);
        })
        .spawn()
        .await;
    let names = |app: &TestApp| -> Vec<String> {
        app.app
            .catalog
            .tools
            .iter()
            .map(|t| t.name.clone())
            .collect()
    };
    assert!(!names(&first).is_empty());
    assert_eq!(names(&second), names(&first));
}

/// What a model pays for `tools/list` on X's real document: by default at
/// most 32 KB of compact JSON (about 8,000 tokens), and in every selection
/// no input schema over 16 KiB (claude.ai drops such tools) and no name
/// over 64 characters.
#[test]
fn every_selection_of_xs_real_document_fits_what_clients_accept() {
    let bytes = std::fs::read(x_document()).unwrap();
    let catalog = xmcp_openapi::load(
        &bytes,
        &xmcp_openapi::Options {
            reserved: xmcp_server::tools::BUILTIN_TOOLS.map(String::from).to_vec(),
            ..Default::default()
        },
    )
    .unwrap();
    let registry = xmcp_server::mcp::stats::listing_registry(
        std::sync::Arc::new(catalog),
        &xmcp_openapi::prices::PriceTable::built_in(),
        xmcp_server::mcp::registry::RegistryConfig {
            toolsets: xmcp_server::config::DEFAULT_TOOLSETS
                .map(String::from)
                .to_vec(),
            read_only: false,
            issuable: xmcp_x::scopes::names(),
            how_to_grant: xmcp_server::mcp::registry::GRANT_BY_REAUTHORIZING,
        },
    );
    let table = xmcp_server::mcp::stats::table(&registry);
    let default = &table[0];
    assert_eq!(default.selection, "");
    assert!(default.bytes <= 32_000, "{default:?}");
    assert!(default.tools >= 20, "{default:?}");
    let all = table.iter().find(|s| s.selection == "/x/all").unwrap();
    // Ours, one per operation, and uploadMediaFromUrl.
    assert_eq!(all.tools, 3 + 131 + 1);
    for s in &table {
        assert!(s.largest_schema <= 16 * 1024, "{s:?}");
        assert!(s.longest_name <= 64, "{s:?}");
    }
}
