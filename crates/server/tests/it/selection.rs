//! What a client sees and may call: toolsets and read-only mode, chosen by
//! URL (a protected resource of its own), by header or by configuration,
//! enforced at dispatch; and the search tools that reach the rest.

use crate::harness::*;
use crate::permissions::spell;
use reqwest::StatusCode;
use serde_json::{Value, json};

xmcp_test_support::both_backends!(
    a_read_only_url_lists_and_calls_only_read_only_post_tools,
    the_search_tools_reach_every_operation_the_connection_may_call,
);

const REDIRECT: &str = "http://127.0.0.1:5555/callback";
const BROAD: &str = "tweet.read tweet.write users.read like.read like.write bookmark.read bookmark.write follows.read follows.write";

/// A token for the resource at `path`, granted `scope`.
async fn token_at(app: &Client, path: &str, scope: &str) -> String {
    let client_id = app.register_public().await;
    let mut a = Authorize::new(app, &client_id, REDIRECT);
    a.scope = scope.into();
    a.resource = Some(app.url(path));
    let t = a.tokens_as(app, "demo_user").await;
    t["access_token"].as_str().unwrap().to_owned()
}

/// The JSON-RPC answer of `method` at `path`.
async fn rpc(
    app: &Client,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    method: &str,
    params: Value,
) -> Value {
    let r = app.mcp_at(path, Some(token), headers, method, params).await;
    assert_eq!(r.status(), StatusCode::OK, "{path} {method}");
    r.json().await.unwrap()
}

async fn listed(app: &Client, path: &str, token: &str, headers: &[(&str, &str)]) -> Vec<Value> {
    rpc(app, path, token, headers, "tools/list", json!({})).await["result"]["tools"]
        .as_array()
        .unwrap()
        .clone()
}

fn names(tools: &[Value]) -> Vec<&str> {
    tools.iter().map(|t| t["name"].as_str().unwrap()).collect()
}

async fn call(
    app: &Client,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    name: &str,
    args: Value,
) -> Value {
    rpc(
        app,
        path,
        token,
        headers,
        "tools/call",
        json!({"name": name, "arguments": args}),
    )
    .await["result"]
        .clone()
}

fn x_calls(app: &TestApp) -> u64 {
    app.sandbox()
        .stats()
        .api_calls
        .get("demo_user")
        .copied()
        .unwrap_or(0)
}

async fn a_read_only_url_lists_and_calls_only_read_only_post_tools(backend: Backend) {
    let app = spawn(backend).await;
    const URL: &str = "/mcp/x/posts/readonly";
    let broad = token_at(&app, "/mcp", BROAD).await;
    let created = app
        .call_tool(&broad, "createPosts", json!({"text": "read me"}))
        .await;
    let id = created["structuredContent"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The URL is a protected resource of its own: its metadata names it,
    // and only the scopes its tools use.
    let r = app
        .http
        .get(app.url("/.well-known/oauth-protected-resource/mcp/x/posts/readonly"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let prm: Value = r.json().await.unwrap();
    assert_eq!(prm["resource"], app.url(URL));
    assert_eq!(prm["scopes_supported"], json!(["tweet.read", "users.read"]));
    let r = app.mcp_at(URL, None, &[], "tools/list", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resource_metadata(r.headers()),
        app.url("/.well-known/oauth-protected-resource/mcp/x/posts/readonly")
    );

    // A connector given the URL signs in for it, even granted more.
    let token = token_at(&app, URL, BROAD).await;
    let tools = listed(&app, URL, &token, &[]).await;
    for t in &tools {
        assert_eq!(t["annotations"]["readOnlyHint"], true, "{t}");
    }
    let names = names(&tools);
    assert!(names.contains(&"getPostsById"), "{names:?}");
    for hidden in ["createPosts", "deletePosts", "getUsersMe", "search_tools"] {
        assert!(!names.contains(&hidden), "{hidden}: {names:?}");
    }
    let read = call(&app, URL, &token, &[], "getPostsById", json!({"id": id})).await;
    assert_eq!(read["isError"], false, "{read}");
    assert_eq!(read["structuredContent"]["data"]["text"], "read me");

    // Writing is refused however it is asked for, and reaches no X.
    let before = x_calls(&app);
    let refused = call(&app, URL, &token, &[], "createPosts", json!({"text": "no"})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{refused}"
    );
    let through = call(
        &app,
        URL,
        &token,
        &[],
        "call_tool",
        json!({"name": "createPosts", "arguments": {"text": "no"}}),
    )
    .await;
    assert_eq!(through["isError"], true, "{through}");
    let message = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "createPosts", "arguments": {"text": "no"}}});
    for seed in 0..16u8 {
        let mut choices = (0..=255u8).cycle().skip(usize::from(seed) * 7);
        let spelled = spell(&message, &mut choices);
        let r = app.mcp_raw(URL, Some(&token), &[], spelled.clone()).await;
        assert_eq!(r.status(), StatusCode::OK, "{spelled}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["result"]["isError"], true, "{spelled}: {body}");
    }
    // Nor by taking the same token to a wider URL.
    for wider in [
        "/mcp",
        "/mcp/x/posts",
        "/mcp/readonly",
        "/mcp/x/posts,users/readonly",
    ] {
        let r = app
            .mcp_at(
                wider,
                Some(&token),
                &[],
                "tools/call",
                json!({"name": "createPosts", "arguments": {"text": "no"}}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{wider}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("invalid_token"), "{challenge}");
    }
    assert_eq!(x_calls(&app), before, "a refused call reached X");

    // A token for /mcp works at every narrower URL, narrowed by it.
    let tools = listed(&app, URL, &broad, &[]).await;
    assert!(
        tools
            .iter()
            .all(|t| t["annotations"]["readOnlyHint"] == true)
    );
    let refused = call(&app, URL, &broad, &[], "likePost", json!({"tweet_id": id})).await;
    assert_eq!(refused["isError"], true, "{refused}");
}

/// Headers narrow as a URL does, and what cannot be read is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_narrow_and_unknown_selections_are_refused() {
    let app = spawn(Backend::Sqlite).await;
    let token = token_at(&app, "/mcp", BROAD).await;
    let read_only = [("x-mcp-readonly", "true")];
    let tools = listed(&app, "/mcp", &token, &read_only).await;
    assert!(!tools.is_empty());
    assert!(
        tools
            .iter()
            .all(|t| t["annotations"]["readOnlyHint"] == true)
    );
    let refused = call(
        &app,
        "/mcp",
        &token,
        &read_only,
        "createPosts",
        json!({"text": "x"}),
    )
    .await;
    assert_eq!(refused["isError"], true, "{refused}");

    let likes = [("x-mcp-toolsets", "likes")];
    let names_listed: Vec<String> = names(&listed(&app, "/mcp", &token, &likes).await)
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert!(
        names_listed.contains(&"likePost".to_owned()),
        "{names_listed:?}"
    );
    assert!(!names_listed.contains(&"createPosts".to_owned()));
    let refused = call(
        &app,
        "/mcp",
        &token,
        &likes,
        "createPosts",
        json!({"text": "x"}),
    )
    .await;
    assert!(
        refused["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("`posts`"),
        "{refused}"
    );
    // A header and a URL both narrow: posts and likes share nothing.
    let both = listed(&app, "/mcp/x/posts", &token, &likes).await;
    assert_eq!(names(&both), ["whoami", "echo", "rate_limits"]);

    let r = app
        .mcp_at(
            "/mcp",
            Some(&token),
            &[("x-mcp-toolsets", "nope")],
            "tools/list",
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .mcp_at(
            "/mcp",
            Some(&token),
            &[("x-mcp-readonly", "maybe")],
            "tools/list",
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for path in [
        "/mcp/x/nope",
        "/mcp/elsewhere",
        "/mcp/x/Posts",
        "/mcp/x/posts/readonly/more",
    ] {
        let r = app
            .mcp_at(path, Some(&token), &[], "tools/list", json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let r = app
            .http
            .get(app.url(&format!("/.well-known/oauth-protected-resource{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A resource that does not exist cannot be authorized for.
    let client_id = app.register_public().await;
    let mut a = Authorize::new(&app, &client_id, REDIRECT);
    a.resource = Some(app.url("/mcp/x/nope"));
    let r = Authorize::get_raw(&app, &a.query()).await;
    if r.status().is_redirection() {
        let params = redirect_params(&r);
        assert_eq!(
            params.get("error").map(String::as_str),
            Some("invalid_target"),
            "{params:?}"
        );
    } else {
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.text().await.unwrap().contains("/mcp/x/nope"));
    }
}

/// A page on a foreign origin is refused before its token is read: 403,
/// not 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_before_the_token_is_read() {
    let app = spawn(Backend::Sqlite).await;
    for token in [None, Some("garbage")] {
        let mut req = app
            .http
            .post(app.url("/mcp"))
            .header("origin", "https://evil.example")
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers().get("www-authenticate").is_none());
    }
    let r = app
        .http
        .post(app.url("/mcp"))
        .header("host", "evil.example")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

async fn the_search_tools_reach_every_operation_the_connection_may_call(backend: Backend) {
    let app = spawn(backend).await;
    let token = token_at(&app, "/mcp", BROAD).await;
    let tools = listed(&app, "/mcp", &token, &[]).await;
    let listed_names = names(&tools);
    assert!(
        !listed_names.contains(&"getUsersFollowers"),
        "{listed_names:?}"
    );

    let found = call(
        &app,
        "/mcp",
        &token,
        &[],
        "search_tools",
        json!({"query": "followers of a user"}),
    )
    .await;
    assert_eq!(found["isError"], false, "{found}");
    let hits: Vec<&str> = found["structuredContent"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let at = hits.iter().position(|h| *h == "getUsersFollowers");
    assert!(at.is_some_and(|i| i < 3), "{found}");
    let hit = &found["structuredContent"]["tools"][at.unwrap_or(0)];
    assert_eq!(hit["read_only"], true);
    assert_eq!(hit["toolset"], "follows");

    let described = call(
        &app,
        "/mcp",
        &token,
        &[],
        "describe_tools",
        json!({"names": ["getUsersFollowers", "nope"]}),
    )
    .await;
    let schema = &described["structuredContent"]["tools"][0]["inputSchema"];
    // The full schema: every accepted value, where the listing names a few.
    assert!(
        schema["properties"]["user_fields"]["items"]["enum"].is_array(),
        "{described}"
    );
    assert_eq!(
        described["structuredContent"]["not_available"],
        json!(["nope"])
    );

    // Called through call_tool, or by its own name though not listed: the
    // same tool, the same checks.
    let me = "1850000000000000001";
    let through = call(
        &app,
        "/mcp",
        &token,
        &[],
        "call_tool",
        json!({"name": "getUsersFollowers", "arguments": {"id": me}}),
    )
    .await;
    assert_eq!(through["isError"], false, "{through}");
    let direct = call(
        &app,
        "/mcp",
        &token,
        &[],
        "getUsersFollowers",
        json!({"id": me}),
    )
    .await;
    assert_eq!(direct["structuredContent"], through["structuredContent"]);
    let bad = call(
        &app,
        "/mcp",
        &token,
        &[],
        "call_tool",
        json!({"name": "getUsersFollowers", "arguments": {"id": me, "user_fields": ["nope"]}}),
    )
    .await;
    let direct_bad = call(
        &app,
        "/mcp",
        &token,
        &[],
        "getUsersFollowers",
        json!({"id": me, "user_fields": ["nope"]}),
    )
    .await;
    assert_eq!(bad["isError"], true);
    assert_eq!(bad["content"], direct_bad["content"]);
    // The error names the accepted values.
    assert!(
        bad["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("public_metrics"),
        "{bad}"
    );

    // A read-only connection finds only read-only operations.
    let found = call(
        &app,
        "/mcp/readonly",
        &token,
        &[],
        "search_tools",
        json!({"query": "create post unlike unfollow", "limit": 25}),
    )
    .await;
    for t in found["structuredContent"]["tools"].as_array().unwrap() {
        assert_eq!(t["read_only"], true, "{found}");
    }
    let listed_ro = listed(&app, "/mcp/readonly", &token, &[]).await;
    let call_tool = listed_ro.iter().find(|t| t["name"] == "call_tool").unwrap();
    assert_eq!(call_tool["annotations"]["readOnlyHint"], true);
}

/// A result larger than a model should read is cut on a record boundary,
/// with the way to page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_results_are_cut_on_a_record_boundary() {
    let app = builder(Backend::Sqlite)
        .settings(|s| s.tools.tools_max_result_chars = Some(1_500))
        .spawn()
        .await;
    let token = token_at(&app, "/mcp", BROAD).await;
    for i in 0..12 {
        let text = format!("#xmcpcut post {i} {}", "words ".repeat(30));
        let r = app
            .call_tool(&token, "createPosts", json!({"text": text}))
            .await;
        assert_eq!(r["isError"], false, "{r}");
    }
    let found = app
        .call_tool(
            &token,
            "searchPostsRecent",
            json!({"query": "#xmcpcut", "max_results": 12}),
        )
        .await;
    assert_eq!(found["isError"], false, "{found}");
    let s = &found["structuredContent"];
    let kept = s["data"].as_array().unwrap().len();
    assert!((1..12).contains(&kept), "{found}");
    assert_eq!(s["xmcp_cut"]["of"], 12);
    assert!(s["meta"].get("next_token").is_none());
    let note = found["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str())
        .find(|t| t.contains("max_results="))
        .unwrap_or_else(|| panic!("{found}"));
    assert!(note.contains(&format!("max_results={kept}")), "{note}");
}
