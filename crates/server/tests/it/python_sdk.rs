//! An independent client: the Python MCP SDK's OAuth client drives the whole
//! flow (discovery, dynamic registration, PKCE, consent, token, tool calls,
//! refresh). Needs `XMCP_TEST_PYTHON` pointing at a Python with `mcp`
//! installed; `.ci/run` sets it up.

use crate::harness::*;
use serde_json::Value;

xmcp_test_support::both_backends!(
    python_sdk_oauth_client_completes_the_flow,
    python_sdk_session_survives_a_server_restart,
    python_sdk_given_a_read_only_url_reaches_only_read_only_post_tools,
);

async fn python_sdk_oauth_client_completes_the_flow(backend: Backend) {
    let Some(python) = xmcp_store::testing::required("XMCP_TEST_PYTHON", "a Python SDK test")
    else {
        return;
    };
    let app = spawn(backend).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/sdk_oauth_client.py"
    );
    let mut command = tokio::process::Command::new(python);
    command.arg(script).arg(app.url("/mcp"));
    let report = client_report(command, "the Python client").await;
    // Ours, the core operations of the simulated X's document, and the
    // search tools that reach the rest.
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for name in [
        "echo",
        "whoami",
        "rate_limits",
        "getUsersMe",
        "searchPostsRecent",
        "search_tools",
        "call_tool",
    ] {
        assert!(tools.contains(&name), "{name}: {tools:?}");
    }
    let mut listed = app.default_tools();
    listed.sort();
    assert_eq!(tools, listed);
    // Generated tools, one with a body and one with list arguments, as the
    // SDK sends them.
    assert_eq!(report["posted_is_error"], false);
    assert_eq!(report["search_is_error"], false, "{}", report["search"]);
    assert!(
        report["search"]["data"][0]["created_at"].is_string(),
        "{}",
        report["search"]
    );
    assert_eq!(
        report["resources"],
        serde_json::json!(["x://bookmarks/latest", "x://me", "x://rate-limits"])
    );
    assert_eq!(report["me_resource"]["data"]["username"], "demo_user");
    // The browser went through our consent page, then X's login page.
    assert_eq!(
        report["pages"],
        serde_json::json!(["/authorize", "/i/oauth2/authorize"])
    );
    assert_eq!(report["x_me"]["data"]["username"], "demo_user");
    assert_eq!(report["whoami"]["subject"], "x:1850000000000000001");
    assert_eq!(report["whoami"]["client_id"], report["client_id"]);
    assert_eq!(report["echo"], "from python");
    assert_eq!(report["echo_after_refresh"], "after refresh");
    assert_eq!(report["refreshed"], true);
    assert_eq!(report["iss"], app.base);
}

/// What a web connector given only `/mcp/x/posts/readonly` does, as the
/// Python SDK's OAuth client does it: discovery at that URL, registration,
/// authorization for that resource, then tools. It lists and calls only
/// read-only post tools; a write is refused.
async fn python_sdk_given_a_read_only_url_reaches_only_read_only_post_tools(backend: Backend) {
    let Some(python) = xmcp_store::testing::required("XMCP_TEST_PYTHON", "a Python SDK test")
    else {
        return;
    };
    let app = spawn(backend).await;
    // A post to read, written with an ordinary token.
    let client_id = app.register_public().await;
    let mut a = Authorize::new(&app, &client_id, "http://127.0.0.1:1/callback");
    a.scope = "tweet.read tweet.write users.read".into();
    let token = a.tokens_as(&app, "demo_user").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let posted = app
        .call_tool(
            &token,
            "createPosts",
            serde_json::json!({"text": "read through a URL"}),
        )
        .await;
    let id = posted["structuredContent"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.sandbox().stats().api_calls.get("demo_user").copied();

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/sdk_selection_client.py"
    );
    let mut command = tokio::process::Command::new(python);
    command
        .arg(script)
        .arg(app.url("/mcp/x/posts/readonly"))
        .arg(&id);
    let report = client_report(command, "the Python client at a read-only URL").await;
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(report["read_only"], report["tools"], "{report}");
    assert_eq!(
        tools,
        [
            "echo",
            "getPostsById",
            "getPostsByIds",
            "rate_limits",
            "whoami"
        ],
        "{report}"
    );
    assert_eq!(report["post_is_error"], false, "{report}");
    assert_eq!(report["post"]["data"]["text"], "read through a URL");
    assert_eq!(report["write_is_error"], true, "{report}");
    assert!(
        report["write"].as_str().unwrap().contains("read-only"),
        "{report}"
    );
    // The SDK asked for the scopes the URL's metadata names, no more.
    assert_eq!(report["scope"], "tweet.read users.read", "{report}");
    assert_eq!(
        report["pages"],
        serde_json::json!(["/authorize", "/i/oauth2/authorize"])
    );
    // Two calls reached X: who signed in (at sign-in), and the read.
    let after = app.sandbox().stats().api_calls.get("demo_user").copied();
    assert_eq!(after, before.map(|n| n + 2));
}

/// Run an SDK client script to its end (at most 120 s) and return the JSON
/// report it prints last; panics with its output if it fails.
pub(crate) async fn client_report(mut command: tokio::process::Command, who: &str) -> Value {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        command.kill_on_drop(true).output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{who} finished within 120 s"))
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{who} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// Stateful mode: the Python SDK keeps one MCP session open while the
/// server process is replaced by a new one on the same address and
/// database. The new process finds the session in the store: same
/// session id, same user, no new `initialize`.
async fn python_sdk_session_survives_a_server_restart(backend: Backend) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let Some(python) = xmcp_store::testing::required("XMCP_TEST_PYTHON", "a Python SDK test")
    else {
        return;
    };
    let stateful = |s: &mut xmcp_server::config::Settings| s.server.mcp_stateful = Some(true);
    let app = builder(backend).settings(stateful).spawn().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/sdk_session_restart.py"
    );
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .arg(app.url("/mcp"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let limit = std::time::Duration::from_secs(120);
    let first = tokio::time::timeout(limit, stdout.next_line())
        .await
        .expect("the Python client opened its session within 120 s")
        .unwrap();
    let Some(first) = first else {
        let out = child.wait_with_output().await.unwrap();
        panic!("python failed:\n{}", String::from_utf8_lossy(&out.stderr));
    };
    let opened: Value = serde_json::from_str(&first).unwrap();
    let session = opened["session"].as_str().unwrap().to_owned();

    let restarted = builder(backend)
        .settings(stateful)
        .restart_of(app.stop().await)
        .spawn()
        .await;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    stdin.flush().await.unwrap();
    let out = tokio::time::timeout(limit, async {
        let mut last = None;
        while let Some(line) = stdout.next_line().await.unwrap() {
            last = Some(line);
        }
        (last, child.wait_with_output().await.unwrap())
    })
    .await
    .expect("the Python client finished within 120 s");
    let (last, status) = out;
    assert!(
        status.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let report: Value = serde_json::from_str(&last.unwrap()).unwrap();
    assert_eq!(report["session_before"], session.as_str());
    assert_eq!(report["session_after"], session.as_str(), "{report}");
    assert_eq!(report["echo_after"], "after restart", "{report}");
    assert_eq!(report["echo_after_is_error"], false);
    assert_eq!(report["whoami_before"]["subject"], "x:1850000000000000001");
    assert_eq!(report["whoami_after"], report["whoami_before"]);
    assert_eq!(
        report["tools_after"],
        restarted.default_tools().len(),
        "{report}"
    );
    // On leaving, the SDK ended the session (HTTP DELETE), and took the
    // answer for success.
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(!stderr.contains("termination failed"), "{stderr}");
    let counts = restarted.app.store.counts().await.unwrap();
    assert!(counts.contains(&("mcp_sessions", 0)), "{counts:?}");
}
