//! Tests of the real `xmcp` binary: process restarts, captured logs, commands.

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

#[test]
fn gen_key_and_hash_password() {
    let out = std::process::Command::new(bin())
        .args(["gen-key", "--id", "prod-2026"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap();
    assert!(key.starts_with("prod-2026:"));
    assert!(xmcp_crypto::envelope::DataKey::parse(key.trim()).is_ok());

    use std::io::Write;
    let mut child = std::process::Command::new(bin())
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(xmcp_crypto::password::verify("correct horse", hash.trim()));
}

#[tokio::test]
async fn rotate_key_reseals_upstream_tokens_in_the_local_store() {
    use xmcp_crypto::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // First start creates the key file and the database.
    let (proc, _) = start_demo(dir.path(), free_port(), "a.log", "info").await;
    assert!(proc.stop().success());
    let key_path = data.join("encryption.key");
    let old = xmcp_crypto::envelope::DataKey::parse(
        std::fs::read_to_string(&key_path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let old_id = old.id().to_owned();
    let ring = xmcp_crypto::envelope::Keyring::new(old, vec![]);
    let store = xmcp_store::connect(&format!("sqlite://{}", data.join("xmcp.db").display()), 1)
        .await
        .unwrap();
    let user = store
        .upsert_user(
            &xmcp_store::UserIdentity {
                subject: "x:1".into(),
                username: None,
                display_name: None,
            },
            1,
        )
        .await
        .unwrap();
    let aad = |f: &str| match f {
        "access" => xmcp_store::SealedColumn::UpstreamAccess.aad(&user.id),
        _ => xmcp_store::SealedColumn::UpstreamRefresh.aad(&user.id),
    };
    store
        .put_upstream_tokens(&xmcp_store::UpstreamTokens {
            user_id: user.id.clone(),
            provider: "x".into(),
            access_sealed: ring.seal(b"upstream-access", aad("access").as_bytes()),
            refresh_sealed: Some(ring.seal(b"upstream-refresh", aad("refresh").as_bytes())),
            expires_at: None,
            scope: "tweet.read".into(),
            updated_at: 1,
            reauth_required_at: None,
        })
        .await
        .unwrap();
    drop(store);

    let out = std::process::Command::new(bin())
        .args(["rotate-key", "--demo", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 1 row"));

    let text = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "the old key is gone after the rotation"
    );
    let new = xmcp_crypto::envelope::DataKey::parse(text.trim()).unwrap();
    assert_ne!(new.id(), old_id);
    let ring = xmcp_crypto::envelope::Keyring::new(new, vec![]);
    let store = xmcp_store::connect(&format!("sqlite://{}", data.join("xmcp.db").display()), 1)
        .await
        .unwrap();
    let row = store.get_upstream_tokens(&user.id).await.unwrap().unwrap();
    assert_eq!(
        ring.open(&row.access_sealed, aad("access").as_bytes())
            .unwrap()
            .expose_secret()
            .as_slice(),
        b"upstream-access"
    );
    assert_eq!(
        ring.open(
            row.refresh_sealed.as_deref().unwrap(),
            aad("refresh").as_bytes()
        )
        .unwrap()
        .expose_secret()
        .as_slice(),
        b"upstream-refresh"
    );
}

/// `xmcp serve` with JWT access tokens, signing users in with a separate
/// `xmcp sandbox`.
async fn start_jwt(dir: &Path, port: u16, x_base: &str, log: &str) -> XmcpProcess {
    let (file, _) = log_file(dir, log);
    let data = dir.join("data");
    let mut env = XmcpProcess::x_env(x_base);
    env.push(("XMCP_ACCESS_TOKEN_FORMAT".into(), "jwt".into()));
    env.push(("XMCP_REFRESH_GRACE".into(), "60".into()));
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

/// Every kind of value sealed with the data key, written by a real server
/// (JWT signing key, X tokens, a pending authorization's upstream verifier,
/// a rotated refresh token's successor) or the bridge, is re-sealed by
/// `rotate-key`: after a restart the server signs and verifies tokens,
/// reaches X, and serves a parallel refresh from before the rotation; and
/// nothing in the store is sealed under the old key any more.
#[tokio::test]
async fn rotate_key_in_jwt_mode_reseals_everything_sealed_with_the_data_key() {
    use xmcp_crypto::ExposeSecret;
    use xmcp_crypto::envelope::{DataKey, Keyring};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/upstream/callback");
    let (x_log, _) = log_file(dir.path(), "x.log");
    let x = XmcpProcess::start_sandbox(&bin(), free_port(), &callback, x_log).await;

    let proc = start_jwt(dir.path(), port, &x.base, "a.log").await;
    let client_id = proc.register_public().await;
    let auth = Authorize::new(&proc, &client_id, "http://127.0.0.1:7777/callback");
    let tokens = auth.tokens(&proc).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(access.split('.').count(), 3, "a JWT: {access}");
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |proc: &XmcpProcess, token: &str| {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id.as_str()),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let client = proc.client.clone();
        async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            client.token(&form).await
        }
    };
    // A refresh leaves the old token's successor sealed for the grace window.
    let (status, successor, _) = refresh(&proc, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{successor}");
    // A second sign-in waits at X: its upstream PKCE verifier is sealed.
    let second = Authorize::new(&proc, &client_id, "http://127.0.0.1:7777/callback");
    let page = second.consent_page(&proc).await;
    let r = submit_consent(&proc, &page, &[("action", "approve")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(proc.stop().success());

    // The bridge's credentials, in the same store, sealed as it seals them.
    let key_path = data.join("encryption.key");
    let old = DataKey::parse(
        std::fs::read_to_string(&key_path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let old_id = old.id().to_owned();
    let db_url = format!("sqlite://{}", data.join("xmcp.db").display());
    let store = xmcp_store::connect(&db_url, 1).await.unwrap();
    let bridge_name = xmcp_server::bridge::credentials_name(
        &url::Url::parse("https://mcp.example.com/mcp").unwrap(),
    );
    let old_ring = Keyring::new(old, vec![]);
    store
        .put_local_state(
            &bridge_name,
            &old_ring.seal(b"bridge credentials", bridge_name.as_bytes()),
            1,
        )
        .await
        .unwrap();
    let sealed_before = store.list_sealed().await.unwrap();
    let columns = |values: &[xmcp_store::SealedValue]| {
        let mut c: Vec<String> = values.iter().map(|v| format!("{:?}", v.column)).collect();
        c.sort();
        c.dedup();
        c
    };
    assert_eq!(
        columns(&sealed_before),
        [
            "LocalState",
            "PendingVerifier",
            "RefreshSuccessor",
            "SigningKey",
            "UpstreamAccess",
            "UpstreamRefresh"
        ],
        "values of every kind are sealed before the rotation"
    );
    assert!(
        sealed_before
            .iter()
            .all(|v| Keyring::key_id_of(&v.sealed) == Some(old_id.as_str()))
    );
    drop(store);

    let env = XmcpProcess::x_env(&x.base);
    let out = std::process::Command::new(bin())
        .args(["rotate-key", "--data-dir", data.to_str().unwrap()])
        .env_remove("XMCP_DATABASE_URL")
        .env_remove("XMCP_CONFIG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("XMCP_ACCESS_TOKEN_FORMAT", "jwt")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("({} sealed value(s))", sealed_before.len())),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(text.lines().count(), 1, "the old key is gone");
    let new = DataKey::parse(text.trim()).unwrap();
    assert_ne!(new.id(), old_id);

    // Nothing is sealed under the old key any more.
    let store = xmcp_store::connect(&db_url, 1).await.unwrap();
    let sealed_after = store.list_sealed().await.unwrap();
    assert_eq!(columns(&sealed_after), columns(&sealed_before));
    for v in &sealed_after {
        assert_eq!(Keyring::key_id_of(&v.sealed), Some(new.id()), "{v:?}");
    }
    let new_ring = Keyring::new(DataKey::parse(text.trim()).unwrap(), vec![]);
    let bridge = store.get_local_state(&bridge_name).await.unwrap().unwrap();
    assert_eq!(
        new_ring
            .open(&bridge, bridge_name.as_bytes())
            .unwrap()
            .expose_secret()
            .as_slice(),
        b"bridge credentials"
    );
    drop(store);

    // The restarted server opens its signing key and the X tokens.
    let proc = start_jwt(dir.path(), port, &x.base, "b.log").await;
    let me = proc.call_tool(&access, "whoami", json!({})).await;
    assert_eq!(
        me["structuredContent"]["subject"],
        format!("x:{DEMO_USER_ID}"),
        "{me}"
    );
    let me = proc.call_tool(&access, "getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
    // A parallel refresh from before the rotation gets the same successor.
    let (status, again, _) = refresh(&proc, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["access_token"], successor["access_token"]);
    // And new tokens are signed.
    let (status, next, _) = refresh(&proc, successor["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    let next_access = next["access_token"].as_str().unwrap();
    let me = proc.call_tool(next_access, "getUsersMe", json!({})).await;
    assert_eq!(me["isError"], false, "{me}");
}

#[test]
fn tools_lists_what_xs_document_gives_and_why_the_rest_is_skipped() {
    let doc = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/x-api/openapi.json"
    );
    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", doc, "--json"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tools: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tools.len(), 131);
    let create = tools.iter().find(|t| t["name"] == "createPosts").unwrap();
    // MCP's default for an absent readOnlyHint: the tool writes.
    assert_ne!(create["annotations"]["readOnlyHint"], true);
    assert_eq!(create["annotations"]["destructiveHint"], false);
    assert_eq!(create["_meta"]["xmcp.dev/x"]["op"], "POST /2/tweets");

    // What tools/list weighs, per selection, and the toolsets.
    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", doc, "--stats"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let default = text
        .lines()
        .find(|l| l.starts_with("default (/mcp)"))
        .unwrap_or_else(|| panic!("{text}"));
    let bytes: usize = default.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(bytes <= 32_000, "{default}");
    for row in ["/mcp/x/all", "/mcp/readonly", "/mcp/x/posts", "/mcp/x/dm"] {
        assert!(text.contains(row), "{row}: {text}");
    }
    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", doc, "--toolsets"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("core (20 operations")),
        "{text}"
    );

    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", doc, "--deny", "get*,search*"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("createPosts"), "{text}");
    assert!(!text.contains("getUsersMe "), "{text}");
    assert!(text.contains("streamPosts: a streaming endpoint"), "{text}");

    let out = std::process::Command::new(bin())
        .args(["tools", "--openapi", "/nonexistent/openapi.json"])
        .env_remove("XMCP_X_OPENAPI")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/openapi.json"));
}

/// Run `xmcp bench` briefly with `args`: the first row of its table, by
/// column, and all it printed.
async fn bench_row(args: &[&str]) -> (Vec<(String, String)>, String) {
    let mut command = tokio::process::Command::new(bin());
    command
        .args([
            "bench",
            "--seconds",
            "1",
            "--rounds",
            "1",
            "--concurrency",
            "2",
        ])
        .args(args)
        .env("XMCP_LOG", "off")
        .env_remove("XMCP_BENCH_DATABASE_URL")
        .kill_on_drop(true);
    // A bound, not a measurement: the run takes a few seconds.
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), command.output())
        .await
        .expect("the bench finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("concurrency"));
    let heading = lines.next().expect("a table heading");
    let row = lines.next().expect("a table row");
    // Columns are right-aligned: a value ends where its heading ends.
    let mut columns = Vec::new();
    let mut from = 0;
    for value in row.split_whitespace() {
        let end = value.as_ptr() as usize - row.as_ptr() as usize + value.len();
        let name = heading.get(from..end).unwrap_or_default().trim().to_owned();
        columns.push((name, value.to_owned()));
        from = end;
    }
    assert_eq!(
        heading.len(),
        from,
        "every heading has a value:\n{heading}\n{row}"
    );
    (columns, stdout.into_owned())
}

fn number(row: &[(String, String)], column: &str) -> f64 {
    let (_, v) = row
        .iter()
        .find(|(n, _)| n == column)
        .unwrap_or_else(|| panic!("no column {column} in {row:?}"));
    v.parse()
        .unwrap_or_else(|_| panic!("{column} is {v}, not a number: {row:?}"))
}

#[tokio::test]
async fn the_bench_measures_xmcp_and_every_reference_without_errors() {
    // Stateless with opaque tokens, and the alternatives CI installs:
    // FastMCP (Python) and the TypeScript SDK.
    let python = std::env::var("XMCP_TEST_PYTHON").ok();
    let typescript = std::env::var("XMCP_TEST_TYPESCRIPT").ok();
    let mut args = vec![];
    let mut targets = vec!["req/s", "sdk req/s", "handler req/s", "bare req/s"];
    if let Some(p) = &python {
        args.extend(["--python", p.as_str()]);
        targets.push("fastmcp req/s");
    }
    if let Some(dir) = &typescript {
        args.extend(["--typescript", dir.as_str()]);
        targets.push("typescript req/s");
    }
    let (row, out) = bench_row(&args).await;
    assert_eq!(number(&row, "errors"), 0.0, "{row:?}");
    for t in targets {
        assert!(number(&row, t) > 0.0, "{t}: {row:?}");
    }
    // Calls that reach X, through xmcp and directly: none failed, and
    // each call through xmcp left one audit row.
    let mut x = out
        .lines()
        .skip_while(|l| !l.starts_with("calls that reach X"))
        .skip(1);
    let heading = x.next().expect("the X calls' heading");
    assert!(heading.trim_end().ends_with("errors"), "{heading}");
    let cells: Vec<&str> = x
        .next()
        .expect("an X calls row")
        .split_whitespace()
        .collect();
    assert_eq!(cells.len(), 9, "{cells:?}");
    assert_eq!(cells[8], "0", "errors: {cells:?}");
    let audited = out
        .lines()
        .find_map(|l| l.strip_prefix("audit rows written: "))
        .expect("the audit count");
    let (rows, calls) = audited.split_once(" for ").unwrap();
    assert_eq!(rows, calls.split_whitespace().next().unwrap(), "{audited}");
    assert!(rows.parse::<u64>().unwrap() > 0);
    assert!(out.contains("ledger writes per call to X"), "{out}");
    assert!(out.contains("/mcp (default)"), "{out}");
    for ratio in ["sdk/bare", "handler/bare", "xmcp/bare"] {
        let r = number(&row, ratio);
        assert!(r > 0.0 && r.is_finite(), "{ratio}: {row:?}");
    }

    // Stateful, with JWT access tokens: sessions opened on xmcp and the SDK.
    let (row, out) = bench_row(&["--stateful", "--token-format", "jwt"]).await;
    assert_eq!(number(&row, "errors"), 0.0, "{row:?}");
    for t in ["req/s", "sdk req/s", "handler req/s", "bare req/s"] {
        assert!(number(&row, t) > 0.0, "{t}: {row:?}");
    }
    // And what a thousand open sessions weigh on each.
    let sessions = out
        .lines()
        .find(|l| l.starts_with("memory of 1000 open sessions:"))
        .unwrap_or_else(|| panic!("no session memory in:\n{out}"));
    assert!(
        sessions.contains(" xmcp ") && sessions.contains(" sdk "),
        "{sessions}"
    );
}

#[test]
fn the_version_names_the_x_document_the_tools_were_checked_against() {
    let out = std::process::Command::new(bin())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "xmcp {} (tools checked against X API OpenAPI {})\n",
            env!("CARGO_PKG_VERSION"),
            xmcp_openapi::X_OPENAPI_CHECKED
        )
    );
}
