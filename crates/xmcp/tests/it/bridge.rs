//! `xmcp bridge`: a stdio MCP client's view of a remote OAuth-protected MCP
//! server, with the bridge doing discovery, registration, PKCE, the
//! loopback callback, sealed token storage and refresh. Against our own
//! server, and against an independently written one (the Python `mcp` SDK).

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncBufReadExt;
use xmcp_test_support::{
    Client, ConsentPage, StdioMcp, XmcpProcess, finish_upstream, free_port, submit_consent,
};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xmcp"))
}

fn log(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).unwrap()
}

/// The authorization URLs the bridge prints on stderr, as it prints them
/// (stderr is drained all along, so the bridge never blocks on it).
struct Urls(tokio::sync::mpsc::UnboundedReceiver<String>);

impl Urls {
    fn of(stderr: tokio::process::ChildStderr) -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("bridge: {line}");
                if let Some(rest) = line.trim().strip_prefix("http") {
                    let _ = tx.send(format!("http{rest}"));
                }
            }
        });
        Self(rx)
    }

    async fn next(&mut self) -> String {
        tokio::time::timeout(std::time::Duration::from_secs(60), self.0.recv())
            .await
            .expect("no authorization URL within 60 s")
            .expect("the bridge exited without an authorization URL")
    }
}

/// Play the browser through our consent page and the simulated X; returns
/// once the bridge's loopback callback answered.
async fn approve_at_our_server(server: &Client, url: &str) {
    let page = consent_page_at(server, url).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let consented = submit_consent(server, &page, &[("action", "approve")]).await;
    let back = finish_upstream(server, &page.cookie, consented, "demo_user", None).await;
    let done = server.http.get(back.as_str()).send().await.unwrap();
    assert_eq!(done.status(), 200);
}

async fn consent_page_at(app: &Client, url: &str) -> ConsentPage {
    ConsentPage::read(app.http.get(url).send().await.unwrap()).await
}

fn bridge_env(dir: &Path) -> Vec<(String, String)> {
    vec![(
        "XMCP_DATA_DIR".into(),
        dir.join("bridge").display().to_string(),
    )]
}

#[tokio::test]
async fn bridge_to_our_server_authorizes_calls_tools_and_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Access tokens live 3 s, so the second bridge run must refresh.
    let server = XmcpProcess::start(
        &bin(),
        port,
        &[
            "--demo",
            "--data-dir",
            dir.path().join("server").to_str().unwrap(),
        ],
        &[("XMCP_ACCESS_TOKEN_TTL", "3")],
        log(dir.path(), "server.log"),
    )
    .await;
    let mcp_url = format!("http://127.0.0.1:{port}/mcp");
    let env = bridge_env(dir.path());

    let (mut mcp, stderr) = StdioMcp::spawn(
        &bin(),
        &["bridge", &mcp_url, "--no-browser"],
        &env,
        Stdio::piped(),
    );
    let mut urls = Urls::of(stderr.unwrap());
    let url = urls.next().await;
    assert!(
        url.starts_with(&format!("http://127.0.0.1:{port}/authorize?")),
        "{url}"
    );
    let query: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["resource"], mcp_url);
    assert!(query["redirect_uri"].starts_with("http://127.0.0.1:"));

    // Play the browser: our consent page, then the simulated X.
    let page = consent_page_at(&server, &url).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("xmcp bridge"),
        "dynamic registration names the bridge"
    );
    let consented = submit_consent(&server, &page, &[("action", "approve")]).await;
    let back = finish_upstream(&server, &page.cookie, consented, "demo_user", None).await;
    let back_query: std::collections::HashMap<String, String> =
        back.query_pairs().into_owned().collect();
    assert_eq!(back_query["iss"], format!("http://127.0.0.1:{port}"));
    let done = server.http.get(back.as_str()).send().await.unwrap();
    assert_eq!(done.status(), 200);

    let init = mcp.initialize().await;
    assert_eq!(init["serverInfo"]["name"], "xmcp", "{init}");
    let tools = mcp.request("tools/list", json!({})).await;
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "getUsersMe")
    );
    let me = mcp.call_tool("whoami", json!({})).await;
    assert_eq!(me["structuredContent"]["username"], "demo_user", "{me}");
    let x = mcp.call_tool("getUsersMe", json!({})).await;
    assert_eq!(
        x["structuredContent"]["data"]["username"], "demo_user",
        "{x}"
    );
    // The remote server's JSON-RPC errors come through as they are.
    let unknown = mcp
        .request_raw("tools/call", json!({"name": "nope", "arguments": {}}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert!(mcp.close().await.success());

    // The tokens are sealed at rest: no token prefix in the database files.
    for entry in std::fs::read_dir(dir.path().join("bridge")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("xmcp_at_") && !text.contains("xmcp_rt_"));
    }

    // After the access token expired, a new bridge run refreshes it with
    // the stored refresh token: no browser, straight to work.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let (mut mcp, _) = StdioMcp::start(
        &bin(),
        &["bridge", &mcp_url, "--no-browser"],
        &env,
        log(dir.path(), "bridge-2.log"),
    )
    .await;
    let me = mcp.call_tool("whoami", json!({})).await;
    assert_eq!(me["structuredContent"]["username"], "demo_user", "{me}");
    assert!(mcp.close().await.success());

    // --forget drops them.
    let out = std::process::Command::new(bin())
        .args(["bridge", &mcp_url, "--forget"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Forgot"));
}

#[tokio::test]
async fn bridge_steps_up_when_the_server_needs_more_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = XmcpProcess::start(
        &bin(),
        port,
        &[
            "--demo",
            "--data-dir",
            dir.path().join("server").to_str().unwrap(),
        ],
        &[],
        log(dir.path(), "server.log"),
    )
    .await;
    let mcp_url = format!("http://127.0.0.1:{port}/mcp");
    // Ask for reading only.
    let (mut mcp, stderr) = StdioMcp::spawn(
        &bin(),
        &[
            "bridge",
            &mcp_url,
            "--no-browser",
            "--oauth-scope",
            "tweet.read,users.read",
        ],
        &bridge_env(dir.path()),
        Stdio::piped(),
    );
    let mut urls = Urls::of(stderr.unwrap());
    let first = urls.next().await;
    assert!(
        first.contains("scope=tweet.read+users.read")
            || first.contains("scope=tweet.read%20users.read"),
        "{first}"
    );
    approve_at_our_server(&server, &first).await;
    mcp.initialize().await;
    let me = mcp.call_tool("getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");

    // Posting needs tweet.write: our server answers 403 insufficient_scope,
    // the bridge sends the user to authorize the union, then retries.
    let (posted, ()) = tokio::join!(
        mcp.call_tool("createPosts", json!({"text": "stepped up"})),
        async {
            let second = urls.next().await;
            assert!(second.contains("tweet.write"), "{second}");
            approve_at_our_server(&server, &second).await;
        }
    );
    assert_eq!(posted["isError"], false, "{posted}");
    assert!(
        posted["structuredContent"]["data"]["id"].is_string(),
        "{posted}"
    );
    assert!(mcp.close().await.success());
}

/// Anything on this machine can reach the bridge's loopback callback (a
/// web page the user has open, another process): a request without the
/// state of the authorization under way gets an error page and changes
/// nothing, and the real callback still completes the authorization.
#[tokio::test]
async fn a_forged_callback_neither_completes_nor_aborts_the_authorization() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = XmcpProcess::start(
        &bin(),
        port,
        &[
            "--demo",
            "--data-dir",
            dir.path().join("server").to_str().unwrap(),
        ],
        &[],
        log(dir.path(), "server.log"),
    )
    .await;
    let mcp_url = format!("http://127.0.0.1:{port}/mcp");
    let (mut mcp, stderr) = StdioMcp::spawn(
        &bin(),
        &["bridge", &mcp_url, "--no-browser"],
        &bridge_env(dir.path()),
        Stdio::piped(),
    );
    let mut urls = Urls::of(stderr.unwrap());
    let url = urls.next().await;
    let query: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let callback = &query["redirect_uri"];
    for forged in [
        format!("{callback}?error=access_denied"),
        format!("{callback}?code=forged&state=not-the-state"),
        format!("{callback}?code=forged"),
    ] {
        let r = server.http.get(&forged).send().await.unwrap();
        assert_eq!(r.status(), 400, "{forged}");
        assert!(
            r.text().await.unwrap().contains("not the authorization"),
            "{forged}"
        );
    }
    approve_at_our_server(&server, &url).await;
    mcp.initialize().await;
    let me = mcp.call_tool("whoami", json!({})).await;
    assert_eq!(me["structuredContent"]["username"], "demo_user", "{me}");
    assert!(mcp.close().await.success());
}

/// The Python `mcp` SDK's own OAuth authorization server and MCP server,
/// started from `tests/python/oauth_server.py`.
#[tokio::test]
async fn bridge_to_a_python_sdk_server() {
    let Some(python) =
        xmcp_store::testing::required("XMCP_TEST_PYTHON", "the bridge to a Python SDK server")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/oauth_server.py");
    let mut server = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(log(dir.path(), "python.log"))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if let Ok(r) = http
            .get(format!("{base}/.well-known/oauth-authorization-server"))
            .send()
            .await
            && r.status().is_success()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "the Python server did not start; see python.log");

    let env = bridge_env(dir.path());
    let mcp_url = format!("{base}/mcp");
    let (mut mcp, stderr) = StdioMcp::spawn(
        &bin(),
        &["bridge", &mcp_url, "--no-browser"],
        &env,
        Stdio::piped(),
    );
    let mut urls = Urls::of(stderr.unwrap());
    let url = urls.next().await;
    assert!(url.starts_with(&format!("{base}/authorize?")), "{url}");
    // The Python server approves at once and redirects to the bridge.
    let r = http.get(&url).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with("http://127.0.0.1:"), "{back}");
    assert_eq!(http.get(&back).send().await.unwrap().status(), 200);

    let init = mcp.initialize().await;
    assert_eq!(init["serverInfo"]["name"], "python-oauth-test", "{init}");
    let r = mcp.call_tool("add", json!({"a": 2, "b": 40})).await;
    assert_eq!(r["isError"], false, "{r}");
    let text: Value = r["content"][0]["text"].clone();
    assert_eq!(text, "42", "{r}");
    let who = mcp.call_tool("whoami", json!({})).await;
    assert!(
        who["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("bridge-user"),
        "{who}"
    );
    assert!(mcp.close().await.success());
    let _ = server.kill().await;
}
