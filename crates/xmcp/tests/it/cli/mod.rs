//! Tests of the real `xmcp` binary: process restarts, captured logs, commands.

mod keys;
mod tools;

use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use xmcp_test_support::{
    Authorize, DEMO_USER_ID, SandboxServer, XmcpProcess, finish_upstream, free_port, submit_consent,
};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_xmcp"))
}

fn log_file(dir: &Path, name: &str) -> (std::fs::File, PathBuf) {
    let path = dir.join(name);
    (std::fs::File::create(&path).unwrap(), path)
}

async fn start_demo(dir: &Path, port: u16, log: &str, level: &str) -> (XmcpProcess, PathBuf) {
    let (file, path) = log_file(dir, log);
    let data = dir.join("data");
    let proc = XmcpProcess::start(
        &bin(),
        port,
        &["--demo", "--data-dir", data.to_str().unwrap()],
        &[("XMCP_LOG", level)],
        file,
    )
    .await;
    (proc, path)
}

/// `xmcp serve` signing users in with a separately running `xmcp sandbox`,
/// as a real deployment signs them in with X.
async fn start_with_sandbox(dir: &Path, port: u16, x_base: &str, log: &str) -> XmcpProcess {
    let (file, _) = log_file(dir, log);
    let data = dir.join("data");
    let env = XmcpProcess::x_env(x_base);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    XmcpProcess::start(
        &bin(),
        port,
        &["--data-dir", data.to_str().unwrap()],
        &env,
        file,
    )
    .await
}

#[tokio::test]
async fn flow_survives_restarts_at_every_step_with_x_as_a_separate_process() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let x_port = free_port();
    let callback = format!("http://127.0.0.1:{port}/upstream/callback");
    let (x_log, _) = log_file(dir.path(), "x.log");
    let x = XmcpProcess::start_sandbox(&bin(), x_port, &callback, x_log).await;

    let proc = start_with_sandbox(dir.path(), port, &x.base, "a.log").await;
    let client_id = proc.register_public().await;
    let auth = Authorize::new(&proc, &client_id, "http://127.0.0.1:7777/callback");
    let page = auth.consent_page(&proc).await;
    assert!(proc.stop().success(), "graceful shutdown exits 0");

    // Restart between the consent page and its submission.
    let proc = start_with_sandbox(dir.path(), port, &x.base, "b.log").await;
    let r = submit_consent(&proc, &page, &[("action", "approve")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to_x = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to_x.starts_with(&x.base), "{to_x}");
    assert!(proc.stop().success());

    // Restart while the user is at X: the callback lands on a new process.
    let proc = start_with_sandbox(dir.path(), port, &x.base, "c.log").await;
    let back = proc.http.get(&to_x).send().await.unwrap();
    let html = back.text().await.unwrap();
    let user_id = html
        .split("name=\"user_id\" value=\"")
        .nth(1)
        .and_then(|c| c.split('"').next())
        .unwrap()
        .to_owned();
    let login = url::Url::parse(&to_x).unwrap();
    let mut form: Vec<(String, String)> = login.query_pairs().into_owned().collect();
    form.extend([
        ("user_id".into(), user_id),
        ("grant".into(), "tweet.read".into()),
        ("grant".into(), "users.read".into()),
        ("grant".into(), "offline.access".into()),
        ("action".into(), "allow".into()),
    ]);
    let r = proc
        .http
        .post(x.url("/i/oauth2/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let callback_url = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(proc.stop().success());

    let proc = start_with_sandbox(dir.path(), port, &x.base, "d.log").await;
    let r = proc
        .http
        .get(&callback_url)
        .header("cookie", &page.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let code = xmcp_test_support::redirect_params(&r)["code"].clone();
    assert!(proc.stop().success());

    // And between the redirect and the token request.
    let proc = start_with_sandbox(dir.path(), port, &x.base, "e.log").await;
    let (status, tokens, _) = proc.token(&auth.token_form(&code)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let me = proc.call_tool(access, "whoami", json!({})).await;
    assert_eq!(
        me["structuredContent"]["subject"],
        format!("x:{DEMO_USER_ID}")
    );
    // The sealed X token survived every restart and reaches X.
    let me = proc.call_tool(access, "getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
    assert_eq!(me["structuredContent"]["data"]["username"], "demo_user");
}

/// The client metadata document fetcher ignores `HTTP_PROXY`, `HTTPS_PROXY`
/// and `ALL_PROXY`: a proxy would resolve and connect in its place, past its
/// checks of the addresses it may reach.
#[tokio::test]
async fn metadata_documents_are_not_fetched_through_the_environments_proxy() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    // A "proxy" that counts the connections made to it and closes them.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let via_proxy = Arc::new(AtomicUsize::new(0));
    let counted = via_proxy.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = proxy.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    // The client's metadata document, on loopback.
    let docs = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client_id = format!("http://{}/client.json", docs.local_addr().unwrap());
    let doc = json!({
        "client_id": client_id,
        "client_name": "Proxied?",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
    });
    let router = axum::Router::new().route(
        "/client.json",
        axum::routing::get(move || async move { axum::Json(doc) }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(docs, router).await;
    });
    let (file, _) = log_file(dir.path(), "proxy.log");
    let data = dir.path().join("data");
    let env: Vec<(&str, &str)> = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .into_iter()
    .map(|k| (k, proxy_url.as_str()))
    .chain([("NO_PROXY", ""), ("no_proxy", "")])
    .collect();
    let proc = XmcpProcess::start(
        &bin(),
        free_port(),
        &[
            "--demo",
            "--data-dir",
            data.to_str().unwrap(),
            "--cimd-allow-loopback",
            "true",
        ],
        &env,
        file,
    )
    .await;
    let page = Authorize::new(&proc, &client_id, "http://127.0.0.1:7000/callback")
        .consent_page(&proc)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Proxied?"));
    assert_eq!(
        via_proxy.load(Ordering::SeqCst),
        0,
        "fetched through the proxy"
    );
}

#[tokio::test]
async fn at_the_default_log_level_mcp_calls_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (file, path) = log_file(dir.path(), "default.log");
    let data = dir.path().join("data");
    // No XMCP_LOG: the default filter.
    let proc = XmcpProcess::start(
        &bin(),
        free_port(),
        &["--demo", "--data-dir", data.to_str().unwrap()],
        &[],
        file,
    )
    .await;
    let client_id = proc.register_public().await;
    let auth = Authorize::new(&proc, &client_id, "http://127.0.0.1:8123/callback");
    let tokens = auth.tokens(&proc).await;
    let access = tokens["access_token"].as_str().unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    for i in 0..20 {
        let r = proc
            .call_tool(access, "echo", json!({"message": format!("call {i}")}))
            .await;
        assert_eq!(r["isError"], false, "{r}");
    }
    assert!(proc.stop().success());
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(before.contains("xmcp is listening"), "{before}");
    let during = &log[before.len()..];
    // Before the fix, the SDK wrote three `info` lines for each call.
    assert!(!log.contains("Service initialized"), "{log}");
    // A file is not a terminal: no colour codes.
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(
        during.lines().count() < 5,
        "20 calls wrote to the log:\n{during}"
    );
}

#[tokio::test]
async fn trace_logs_of_a_whole_flow_contain_no_issued_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The simulated X runs in this process, where the codes and tokens it
    // issued can be read (its HTTP controls never show them).
    let now = xmcp_auth::Clock::now(&xmcp_auth::SystemClock);
    let x = SandboxServer::start(
        &format!("http://127.0.0.1:{port}/upstream/callback"),
        Arc::new(xmcp_auth::ManualClock::new(now)),
    )
    .await;
    let (file, log) = log_file(dir.path(), "trace.log");
    let data = dir.path().join("data");
    let mut env = XmcpProcess::x_env(&x.base);
    env.push(("XMCP_LOG".into(), "trace".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let proc = XmcpProcess::start(
        &bin(),
        port,
        &["--data-dir", data.to_str().unwrap()],
        &env,
        file,
    )
    .await;
    let (status, reg) = proc
        .register(json!({"redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "client_secret_post", "client_name": "secretive"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let client_id = reg["client_id"].as_str().unwrap().to_owned();
    let client_secret = reg["client_secret"].as_str().unwrap().to_owned();
    let auth = Authorize::new(&proc, &client_id, "http://127.0.0.1:8123/callback");
    let page = auth.consent_page(&proc).await;
    let r = submit_consent(&proc, &page, &[("action", "approve")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = finish_upstream(&proc, &page.cookie, r, "second_user", None).await;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let mut form = auth.token_form(&code);
    form.push(("client_secret", &client_secret));
    let (status, tokens, _) = proc.token(&form).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    proc.call_tool(&access, "echo", json!({"message": "x"}))
        .await;
    // A call that reaches the simulated X with the user's X token.
    let me = proc.call_tool(&access, "getUsersMe", json!({})).await;
    assert_eq!(me["structuredContent"]["data"]["username"], "second_user");
    let (status, refreshed, _) = proc
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
            ("client_secret", &client_secret),
        ])
        .await;
    assert_eq!(status, StatusCode::OK);
    let access2 = refreshed["access_token"].as_str().unwrap().to_owned();
    let refresh2 = refreshed["refresh_token"].as_str().unwrap().to_owned();
    let r = proc
        .post_form(
            "/revoke",
            &[
                ("token", &refresh2),
                ("client_id", &client_id),
                ("client_secret", &client_secret),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Every code and token the simulated X issued.
    let x_issued = x.sandbox.stats().issued;
    assert_eq!(
        x_issued.len(),
        3,
        "X issued a code, an access and a refresh token"
    );
    assert!(proc.stop().success());

    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("TRACE"), "trace level was captured");
    assert!(
        logs.contains("tokens issued from a code"),
        "the flow was logged"
    );
    let cookie_value = page.cookie.split_once('=').unwrap().1.to_owned();
    let secrets = [
        ("access token", access),
        ("refreshed access token", access2),
        ("refresh token", refresh),
        ("rotated refresh token", refresh2),
        ("authorization code", code),
        ("client secret", client_secret),
        ("CSRF token", page.csrf_token.clone()),
        ("consent request id", page.request_id.clone()),
        ("consent cookie", cookie_value),
        ("PKCE verifier", auth.verifier.clone()),
    ];
    let x_secrets = x_issued.into_iter().map(|s| ("credential issued by X", s));
    for (what, secret) in secrets.into_iter().chain(x_secrets) {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(&secret),
            "the {what} appears in the TRACE logs"
        );
    }
}

#[test]
fn check_config_explains_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["check-config", "--data-dir", dir.path().to_str().unwrap()])
        .env_remove("XMCP_DEMO")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--demo") && err.contains("[[users]]"), "{err}");

    let out = std::process::Command::new(bin())
        .args([
            "check-config",
            "--demo",
            "--public-url",
            "http://mcp.example.com",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));

    let out = std::process::Command::new(bin())
        .args([
            "check-config",
            "--demo",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("http://127.0.0.1:8000/mcp"));
}

/// `serve --demo` stays on this machine unless told otherwise, and says how.
#[test]
fn the_demo_refuses_to_be_reachable_from_elsewhere_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for exposed in [
        &["--host", "0.0.0.0", "--public-url", "http://127.0.0.1:8000"][..],
        &["--public-url", "https://demo.example.com"],
    ] {
        let out = std::process::Command::new(bin())
            .args(["serve", "--demo", "--data-dir", data, "--port", "0"])
            .args(exposed)
            .env_remove("XMCP_DEMO_PUBLIC")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{exposed:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--demo-public (XMCP_DEMO_PUBLIC=true)")
                && err.contains("--host 127.0.0.1"),
            "{exposed:?}: {err}"
        );
        let out = std::process::Command::new(bin())
            .args(["check-config", "--demo", "--data-dir", data])
            .args(exposed)
            .env("XMCP_DEMO_PUBLIC", "true")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{exposed:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Each command takes, and lists, only the settings it uses: the HTTP
/// server's are refused by the local commands, and X's by the store-only
/// ones, rather than silently ignored.
#[test]
fn each_command_takes_only_the_settings_it_uses() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let store = ["--data-dir", "--database-url", "--encryption-key-file"];
    let x = ["--demo", "--x-client-id", "--x-openapi", "--tools-allow"];
    let http = [
        "--port",
        "--public-url",
        "--oidc-issuer",
        "--rate-limit-per-ip",
    ];
    let lists = |text: &str, flags: &[&str]| flags.iter().all(|f| text.contains(f));
    let lists_none = |text: &str, flags: &[&str]| !flags.iter().any(|f| text.contains(f));

    for command in [&["serve"][..], &["check-config"], &["rotate-key"]] {
        let text = help(command);
        assert!(
            lists(&text, &store) && lists(&text, &x) && lists(&text, &http),
            "{command:?}: {text}"
        );
    }
    for command in [&["stdio"][..], &["login"], &["logout"], &["status"]] {
        let text = help(command);
        assert!(
            lists(&text, &store) && lists(&text, &x),
            "{command:?}: {text}"
        );
        assert!(lists_none(&text, &http), "{command:?}: {text}");
    }
    for command in [&["admin"][..], &["bridge"]] {
        let text = help(command);
        assert!(lists(&text, &store), "{command:?}: {text}");
        assert!(
            lists_none(&text, &x) && lists_none(&text, &http),
            "{command:?}: {text}"
        );
    }

    let out = std::process::Command::new(bin())
        .args(["stdio", "--demo", "--port", "9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--port'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
