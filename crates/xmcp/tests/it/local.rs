//! The local mode as a person uses it: `xmcp login` against the simulated X
//! (a separate `xmcp sandbox` process), `xmcp status`, `xmcp stdio` spoken
//! to over JSON-RPC, `xmcp logout`.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncBufReadExt;
use xmcp_test_support::{DEMO_USER_ID, StdioMcp, XmcpProcess, free_port, sign_in_at_sandbox};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xmcp"))
}

fn log(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).unwrap()
}

struct Local {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    callback_port: u16,
    _x: XmcpProcess,
}

impl Local {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let callback_port = free_port();
        let x_port = free_port();
        let x = XmcpProcess::start_sandbox(
            &bin(),
            x_port,
            &format!("http://127.0.0.1:{callback_port}/callback"),
            log(dir.path(), "sandbox.log"),
        )
        .await;
        let mut env = XmcpProcess::x_env(&format!("http://127.0.0.1:{x_port}"));
        env.push((
            "XMCP_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        ));
        env.push(("XMCP_LOGIN_PORT".into(), callback_port.to_string()));
        Self {
            dir,
            env,
            callback_port,
            _x: x,
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin());
        cmd.args(args)
            .env_remove("XMCP_DATABASE_URL")
            .env_remove("XMCP_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// `xmcp login --no-browser`, with this test playing the browser.
    async fn login(&self, user: &str) -> String {
        self.login_granting(user, None).await
    }

    /// [`Self::login`], allowing at X only `grant` (`None`: everything asked).
    async fn login_granting(&self, user: &str, grant: Option<&[&str]>) -> String {
        let mut child = tokio::process::Command::from(self.command(&["login", "--no-browser"]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut said = String::new();
        let url = loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
                .await
                .expect("xmcp login printed no URL")
                .unwrap()
                .unwrap_or_else(|| panic!("xmcp login exited: {said}"));
            said.push_str(&line);
            said.push('\n');
            if let Some(u) = line.trim().strip_prefix("http") {
                break format!("http{u}");
            }
        };
        assert!(url.contains("/i/oauth2/authorize"), "{url}");
        assert!(
            url.contains(&format!(
                "redirect_uri=http%3A%2F%2F127.0.0.1%3A{}%2Fcallback",
                self.callback_port
            )),
            "{url}"
        );
        assert!(url.contains("code_challenge_method=S256"), "{url}");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let callback = sign_in_at_sandbox(&http, &url, user, grant).await;
        // A forged callback (wrong state) is refused and does not end the wait.
        let forged = http
            .get(format!(
                "http://127.0.0.1:{}/callback?code=x&state=forged",
                self.callback_port
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 400);
        let page = http.get(&callback).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        assert!(
            page.contains(&format!("Signed in to X as @{user}")),
            "{page}"
        );
        while let Ok(Some(line)) = lines.next_line().await {
            said.push_str(&line);
            said.push('\n');
        }
        let status = child.wait().await.unwrap();
        assert!(status.success(), "{said}");
        said
    }

    async fn stdio(&self, name: &str) -> (StdioMcp, Value) {
        StdioMcp::start(&bin(), &["stdio"], &self.env, log(self.dir.path(), name)).await
    }
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn login_status_stdio_and_logout_against_the_simulated_x() {
    let local = Local::start().await;

    let (ok, out, _) = local.run(&["status"]);
    assert!(ok);
    assert!(out.contains("Nobody is signed in"), "{out}");

    // Before anyone signs in, stdio serves, and the first tool call says
    // what to do.
    let (mut mcp, init) = local.stdio("stdio-0.log").await;
    assert_eq!(init["serverInfo"]["name"], "xmcp");
    let r = mcp.call_tool("getUsersMe", json!({})).await;
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("xmcp login"), "{r}");
    let r = mcp.call_tool("auth_status", json!({})).await;
    assert_eq!(r["structuredContent"]["status"], "signed_out", "{r}");
    assert!(mcp.close().await.success());

    let said = local.login("demo_user").await;
    assert!(said.contains("Signed in to X as @demo_user"), "{said}");

    let (ok, out, _) = local.run(&["status", "--json"]);
    assert!(ok);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["signed_in"], true);
    assert_eq!(status["username"], "demo_user");
    assert_eq!(status["subject"], format!("x:{DEMO_USER_ID}"));
    assert_eq!(status["can_refresh"], true);
    let scopes: Vec<&str> = status["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for s in ["tweet.read", "tweet.write", "users.read", "offline.access"] {
        assert!(scopes.contains(&s), "{scopes:?}");
    }
    assert!(status["expires_at"].as_i64().unwrap() > 0);
    let (_, human, _) = local.run(&["status"]);
    assert!(
        human.contains("@demo_user") && human.contains("refreshed automatically"),
        "{human}"
    );

    // stdio acts for the signed-in person; stdout carries only JSON-RPC
    // (StdioMcp fails on any other line).
    let (mut mcp, _) = local.stdio("stdio-1.log").await;
    let tools = mcp.request("tools/list", json!({})).await;
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for n in [
        "auth_start",
        "auth_status",
        "whoami",
        "getUsersMe",
        "createPosts",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    let me = mcp.call_tool("getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
    assert_eq!(me["structuredContent"]["data"]["username"], "demo_user");
    let posted = mcp
        .call_tool("createPosts", json!({"text": "hello from xmcp stdio"}))
        .await;
    assert_eq!(posted["isError"], false, "{posted}");
    let id = posted["structuredContent"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let found = mcp.call_tool("getPostsById", json!({"id": id})).await;
    assert_eq!(
        found["structuredContent"]["data"]["text"], "hello from xmcp stdio",
        "{found}"
    );
    let who = mcp.call_tool("auth_status", json!({})).await;
    assert_eq!(who["structuredContent"]["status"], "signed_in");
    let me = mcp
        .request("resources/read", json!({"uri": "x://me"}))
        .await;
    assert!(
        me["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("demo_user")
    );
    assert!(mcp.close().await.success());

    let (ok, _, err) = local.run(&["logout"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("Signed out @demo_user") && err.contains("revoked at X"),
        "{err}"
    );
    let (_, out, _) = local.run(&["status"]);
    assert!(out.contains("Nobody is signed in"), "{out}");
    let (ok, _, err) = local.run(&["logout"]);
    assert!(ok && err.contains("Nobody is signed in"), "{err}");
}

#[tokio::test]
async fn stdio_demo_signs_in_from_a_tool_call() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![(
        "XMCP_DATA_DIR".to_owned(),
        dir.path().join("data").display().to_string(),
    )];
    let (mut mcp, _) = StdioMcp::start(
        &bin(),
        &["stdio", "--demo"],
        &env,
        log(dir.path(), "stdio.log"),
    )
    .await;
    let r = mcp.call_tool("whoami", json!({})).await;
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("auth_start"), "{r}");

    let started = mcp.call_tool("auth_start", json!({})).await;
    assert_eq!(
        started["structuredContent"]["status"], "pending",
        "{started}"
    );
    let url = started["structuredContent"]["login_url"]
        .as_str()
        .unwrap()
        .to_owned();
    // Asking again while the browser is out returns the same sign-in.
    let again = mcp.call_tool("auth_start", json!({})).await;
    assert_eq!(again["structuredContent"]["login_url"], url.as_str());
    let pending = mcp.call_tool("auth_status", json!({})).await;
    assert_eq!(pending["structuredContent"]["status"], "pending");

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let callback = sign_in_at_sandbox(&http, &url, "second_user", None).await;
    assert_eq!(http.get(&callback).send().await.unwrap().status(), 200);

    let done = mcp.call_tool("auth_status", json!({})).await;
    assert_eq!(done["structuredContent"]["status"], "signed_in", "{done}");
    assert_eq!(done["structuredContent"]["username"], "second_user");
    let me = mcp.call_tool("whoami", json!({})).await;
    assert_eq!(me["structuredContent"]["username"], "second_user", "{me}");
    let x = mcp.call_tool("getUsersMe", json!({})).await;
    assert_eq!(
        x["structuredContent"]["data"]["username"], "second_user",
        "{x}"
    );
    assert!(mcp.close().await.success());
}

#[test]
fn login_refuses_demo_and_servers_without_x() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["login", "--demo", "--no-browser"])
        .env("XMCP_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdio --demo"));
    let out = std::process::Command::new(bin())
        .args(["stdio"])
        .env("XMCP_DATA_DIR", dir.path())
        .env_remove("XMCP_X_CLIENT_ID")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("XMCP_X_CLIENT_ID"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn admin_lists_backs_up_purges_and_revokes() {
    let local = Local::start().await;
    local.login("second_user").await;

    let (ok, out, err) = local.run(&["admin", "users", "--json"]);
    assert!(ok, "{err}");
    let users: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["username"], "second_user");
    assert_eq!(users[0]["upstream"], "x");
    let user_id = users[0]["id"].as_str().unwrap().to_owned();
    let (ok, out, _) = local.run(&["admin", "grants"]);
    assert!(ok && out.contains("0 live grant(s)"), "{out}");
    let (ok, out, _) = local.run(&["admin", "clients"]);
    assert!(ok && out.contains("0 registered client(s)"), "{out}");
    let (ok, out, _) = local.run(&["admin", "stats", "--json"]);
    assert!(ok);
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["users"], 1);
    assert_eq!(stats["upstream_tokens"], 1);
    assert_eq!(stats["local_state"], 1);
    let (ok, out, _) = local.run(&["admin", "purge"]);
    assert!(ok && out.contains("expired row(s)"), "{out}");

    // Stateful MCP sessions, as `xmcp serve --mcp-stateful` records them:
    // with the `initialize` of the client that opened each, whose name any
    // user with a token chooses.
    let store = xmcp_store::connect(
        &format!(
            "sqlite://{}",
            local.dir.path().join("data/xmcp.db").display()
        ),
        1,
    )
    .await
    .unwrap();
    let now = xmcp_server::app::system_clock().now();
    for (id, client) in [
        ("one", json!({"name": "Claude", "version": "1.2"})),
        ("two", json!({"name": "evil\u{1b}[2J", "version": "9"})),
    ] {
        store
            .insert_mcp_session(
                &xmcp_store::McpSession {
                    id: xmcp_store::TokenHash::of(id),
                    user_id: user_id.clone(),
                    init_params: json!({"protocolVersion": "2025-06-18", "clientInfo": client})
                        .to_string(),
                    created_at: now,
                    expires_at: now + 3600,
                },
                100,
            )
            .await
            .unwrap();
    }
    let (ok, out, err) = local.run(&["admin", "sessions"]);
    assert!(ok, "{err}");
    assert!(out.contains("2 open session(s)"), "{out}");
    assert!(
        out.contains(&format!(
            "user={user_id} client=\"Claude 1.2\" protocol=2025-06-18"
        )),
        "{out}"
    );
    // A name that would rewrite the operator's terminal is not printed.
    assert!(out.contains("client=\"(not shown) 9\""), "{out}");
    assert!(!out.contains('\u{1b}'), "{out}");
    let (ok, out, _) = local.run(&["admin", "sessions", "--json", "--user", &user_id]);
    assert!(ok);
    let sessions: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["client"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{out}");
    assert!(names.contains(&"Claude"), "{out}");
    assert_eq!(sessions[0]["protocol_version"], "2025-06-18");
    let (ok, out, _) = local.run(&["admin", "sessions", "--user", "usr_nobody"]);
    assert!(ok && out.contains("0 open session(s)"), "{out}");

    // A consistent copy that opens as a store and holds the user.
    let copy = local.dir.path().join("copy.db");
    let (ok, out, err) = local.run(&["admin", "backup", copy.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("backed up"), "{out}");
    let (ok, _, err) = local.run(&["admin", "backup", copy.to_str().unwrap()]);
    assert!(!ok && err.contains("exists"), "{err}");
    // The store flags may follow the subcommand.
    let from_copy = format!("sqlite://{}", copy.display());
    let out = local
        .command(&["admin", "users", "--json", "--database-url", &from_copy])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&user_id));

    let (ok, out, _) = local.run(&["admin", "revoke-user", &user_id]);
    assert!(ok && out.contains("deleted user"), "{out}");
    // With their sessions.
    let (ok, out, _) = local.run(&["admin", "sessions"]);
    assert!(ok && out.contains("0 open session(s)"), "{out}");
    let (_, out, _) = local.run(&["status"]);
    assert!(out.contains("Nobody is signed in"), "{out}");
    let (ok, _, err) = local.run(&["admin", "revoke-user", &user_id]);
    assert!(!ok && err.contains("no user"), "{err}");
    let (ok, _, err) = local.run(&["admin", "revoke-grant", "grt_nope"]);
    assert!(!ok && err.contains("no live grant"), "{err}");
}

/// Over stdio there is no HTTP guard: dispatch alone decides. The person
/// signed in granting only `tweet.read users.read` cannot post, and in
/// read-only mode nothing that writes is listed or runs, whichever way it
/// is called.
#[tokio::test]
async fn stdio_decides_scopes_and_read_only_mode_at_dispatch() {
    let mut local = Local::start().await;
    local
        .login_granting(
            "demo_user",
            Some(&["tweet.read", "users.read", "offline.access"]),
        )
        .await;

    let (mut mcp, _) = local.stdio("stdio-narrow.log").await;
    let refused = mcp
        .call_tool("createPosts", json!({"text": "not granted"}))
        .await;
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(
        text(&refused).contains("tweet.write") && text(&refused).contains("xmcp login"),
        "{refused}"
    );
    let me = mcp.call_tool("getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
    assert!(mcp.close().await.success());

    local
        .env
        .push(("XMCP_TOOLS_READONLY".into(), "true".into()));
    let (mut mcp, _) = local.stdio("stdio-readonly.log").await;
    let tools = mcp.request("tools/list", json!({})).await;
    let tools = tools["tools"].as_array().unwrap();
    assert!(tools.len() > 5, "{tools:?}");
    for t in tools {
        assert_eq!(t["annotations"]["readOnlyHint"], true, "{t}");
    }
    for (name, args) in [
        ("createPosts", json!({"text": "read-only"})),
        (
            "call_tool",
            json!({"name": "deletePosts", "arguments": {"id": "1"}}),
        ),
    ] {
        let refused = mcp.call_tool(name, args).await;
        assert_eq!(refused["isError"], true, "{refused}");
        assert!(text(&refused).contains("read-only"), "{refused}");
    }
    let me = mcp.call_tool("getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
    assert!(mcp.close().await.success());
}

/// What an operator sees of the calls to X: spend per user, client and
/// tool for a day, and the audit trail, from the same store `xmcp stdio`
/// counts them in.
#[tokio::test]
async fn admin_shows_what_calls_to_x_cost_and_the_audit_trail() {
    let local = Local::start().await;
    local.login("demo_user").await;
    let (mut mcp, _) = local.stdio("stdio-billing.log").await;
    let me = mcp.call_tool("getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
    assert_eq!(me["_meta"]["xmcp.dev/cost"]["cost_usd"], 0.01, "{me}");
    let posted = mcp
        .call_tool("createPosts", json!({"text": "a private thought"}))
        .await;
    assert_eq!(posted["isError"], false, "{posted}");
    assert!(mcp.close().await.success());

    let (ok, out, err) = local.run(&["admin", "usage", "--json"]);
    assert!(ok, "{err}");
    let usage: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(usage["calls"], 2, "{usage}");
    assert!(
        (usage["cost_usd"].as_f64().unwrap() - 0.025).abs() < 1e-9,
        "{usage}"
    );
    let tools: Vec<&str> = usage["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tool"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["createPosts", "getUsersMe"], "{usage}");
    assert_eq!(usage["rows"][0]["client_id"], "xmcp-stdio");
    let (ok, out, _) = local.run(&["admin", "usage"]);
    assert!(ok && out.contains("2 call(s) to X, $0.025"), "{out}");
    let (ok, out, _) = local.run(&["admin", "usage", "--day", "2020-01-01", "--json"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["calls"], 0);
    let (ok, _, err) = local.run(&["admin", "usage", "--day", "yesterday"]);
    assert!(!ok && err.contains("YYYY-MM-DD"), "{err}");

    let (ok, out, err) = local.run(&["admin", "audit", "--json"]);
    assert!(ok, "{err}");
    let audit: Value = serde_json::from_str(&out).unwrap();
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(entries[0]["tool"], "createPosts");
    assert_eq!(entries[0]["method"], "POST");
    assert_eq!(entries[0]["path"], "/2/tweets");
    assert_eq!(entries[0]["status"], 201);
    assert!(entries[0]["x_transaction_id"].is_string(), "{audit}");
    assert_eq!(entries[1]["path"], "/2/users/me");
    assert!(!out.contains("private thought"), "{out}");
    let (ok, out, _) = local.run(&["admin", "audit", "--since", "2999-01-01"]);
    assert!(ok && out.contains("0 call(s) to X"), "{out}");
}
