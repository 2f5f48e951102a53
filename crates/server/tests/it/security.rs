//! What an attacker would try, end to end over HTTP. Each case asserts the
//! standard error (never a 500, never a redirect to an unverified place)
//! and that the store holds exactly what it held before.
//!
//! Also covered elsewhere: PKCE missing/plain/wrong and code replay
//! (`negative`), refresh reuse after rotation (`negative`), tokens for
//! another resource or expired (`negative`), consent CSRF and browser
//! binding (`negative`), `iss` on every authorization response (`flow`,
//! through `Authorize::code`), step-up scopes (`negative`).

use crate::harness::*;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:5555/callback";

async fn counts(app: &TestApp) -> Vec<(&'static str, i64)> {
    app.app.store.counts().await.unwrap()
}

/// Run `attack` and assert the store is unchanged by it.
macro_rules! writes_nothing {
    ($app:expr, $attack:expr) => {{
        let before = counts($app).await;
        let out = $attack;
        assert_eq!(
            counts($app).await,
            before,
            "the refused request wrote to the store"
        );
        out
    }};
}

fn assert_oauth_error(status: StatusCode, body: &Value, code: &str) {
    assert!(status.is_client_error(), "{status}: {body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

fn assert_no_redirect(r: &reqwest::Response) {
    assert!(
        r.headers().get(LOCATION).is_none(),
        "redirected to {:?}",
        r.headers().get(LOCATION)
    );
    assert!(r.status().is_client_error(), "{}", r.status());
}

/// `GET /authorize?query`, which must be refused with an error page:
/// nothing written, no redirect to the client.
async fn refused_authorization(app: &TestApp, query: &str) -> reqwest::Response {
    let r = writes_nothing!(app, Authorize::get_raw(app, query).await);
    assert_no_redirect(&r);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_redirects_are_impossible() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    // The client registered http://127.0.0.1/callback (loopback: any port).
    for evil in [
        "https://evil.example/callback",
        "http://127.0.0.1.evil.example/callback",
        "http://127.0.0.1@evil.example/callback",
        "http://evil.example/?http://127.0.0.1/callback",
        "http://127.0.0.1/callback/../../evil",
        "http://127.0.0.1/callbackx",
        "http://127.0.0.1/callback?x=1",
        "http://127.0.0.1/callback#frag",
        "javascript:alert(1)//http://127.0.0.1/callback",
        "HTTP://127.0.0.1/CALLBACK",
    ] {
        let mut a = Authorize::new(&app, &client_id, evil);
        // An error that would otherwise be reported by redirect.
        a.extra.push(("response_type_extra".into(), "x".into()));
        refused_authorization(&app, &a.query()).await;
        // Even a request that is wrong in other ways never goes there.
        let q = a
            .query()
            .replace("response_type=code", "response_type=token");
        refused_authorization(&app, &q).await;
    }
    // Unknown client: an error page, never the redirect_uri it names.
    let a = Authorize::new(&app, "no-such-client", "https://evil.example/cb");
    refused_authorization(&app, &a.query()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_cannot_be_injected_into_another_client() {
    let app = spawn(Backend::Sqlite).await;
    let victim = app.register_public().await;
    let attacker = app.register_public().await;
    let auth = Authorize::new(&app, &victim, REDIRECT);
    let code = auth.code(&app).await;
    // The attacker presents the victim's code (and even its verifier).
    let (status, body, _) = writes_nothing!(
        &app,
        app.token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &attacker),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &auth.verifier),
        ])
        .await
    );
    assert_oauth_error(status, &body, "invalid_grant");
    // A PKCE downgrade attempt (no verifier, or the challenge itself).
    for verifier in [None, Some(auth.challenge.as_str())] {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", victim.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        let (status, body, _) = writes_nothing!(&app, app.token(&form).await);
        assert_oauth_error(status, &body, "invalid_grant");
    }
    // The victim's own redemption still works: the attempts burned nothing.
    let (status, body, _) = app.token(&auth.token_form(&code)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_html_page_refuses_framing_and_caching() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    let consent = Authorize::new(&app, &client_id, REDIRECT).query();
    for (what, r) in [
        ("consent page", Authorize::get_raw(&app, &consent).await),
        (
            "error page",
            Authorize::get_raw(&app, "client_id=nobody").await,
        ),
        (
            "device page",
            app.http.get(app.url("/device")).send().await.unwrap(),
        ),
        (
            "device error",
            app.http
                .post(app.url("/device"))
                .form(&[("user_code", "nope")])
                .send()
                .await
                .unwrap(),
        ),
    ] {
        let h = r.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_asserted_client_metadata_is_shown_safely() {
    let app = spawn(Backend::Sqlite).await;
    let (status, body) = app
        .register(json!({
            "redirect_uris": [REDIRECT],
            "client_name": "<script>alert('x')</script> Claude \"official\"",
            "client_uri": "https://claude.ai.evil.example/",
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let client_id = body["client_id"].as_str().unwrap();
    let page = Authorize::new(&app, client_id, REDIRECT)
        .consent_page(&app)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains("<script>"), "the name is escaped");
    assert!(page.html.contains("&lt;script&gt;"));
    assert!(
        page.html
            .contains("registered itself moments ago; its name is self-asserted"),
        "the page says where the name comes from"
    );
    assert!(
        page.html.contains("127.0.0.1"),
        "the redirect host is shown"
    );

    // Names that disguise themselves, and scripts as URIs, are refused
    // before anything is written.
    for bad in [
        json!({"redirect_uris": [REDIRECT], "client_name": "Claude\u{202e}lanoitcif"}),
        json!({"redirect_uris": [REDIRECT], "client_name": "line\nbreak"}),
        json!({"redirect_uris": [REDIRECT], "logo_uri": "javascript:alert(1)"}),
        json!({"redirect_uris": [REDIRECT], "client_uri": "data:text/html,hi"}),
        json!({"redirect_uris": ["javascript:alert(1)"]}),
        json!({"redirect_uris": ["data:text/html,hi"]}),
        json!({"redirect_uris": ["http://evil.example/cb"]}),
        json!({"redirect_uris": [REDIRECT], "client_name": "x".repeat(500)}),
    ] {
        let (status, body) = writes_nothing!(&app, app.register(bad.clone()).await);
        assert!(status.is_client_error(), "{bad}: {status}");
        assert!(
            body["error"] == "invalid_client_metadata" || body["error"] == "invalid_redirect_uri",
            "{bad}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_spam_is_capped() {
    // Behind a proxy (127.0.0.1, here) that names each client's address.
    let app = builder(Backend::Sqlite)
        .settings(|s| {
            s.auth.registration_limit_per_hour = Some(3);
            s.limits.trusted_proxies = Some(vec!["127.0.0.1/32".into()]);
        })
        .spawn()
        .await;
    let register_from = |address: &'static str| {
        app.http
            .post(app.url("/register"))
            .header("x-forwarded-for", address)
            .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
            .send()
    };
    for _ in 0..3 {
        let r = register_from("203.0.113.7").await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = writes_nothing!(&app, register_from("203.0.113.7").await.unwrap());
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    // One address spending its registrations stops nobody else: not
    // another address, and not another /64...
    let r = register_from("198.51.100.9").await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    for _ in 0..3 {
        let r = register_from("2001:db8:1:2:aaaa::1").await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = register_from("2001:db8:1:3::1").await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // ...but one IPv6 host is its whole /64.
    let r = register_from("2001:db8:1:2:bbbb::2").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// A listener on 127.0.0.1 that counts the connections made to it and
/// answers each request with `status`, `headers` and `body`; returns its
/// port and the count.
async fn counting_server(
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let status = StatusCode::from_u16(status).unwrap();
    let headers: axum::http::HeaderMap = headers
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
        .collect();
    let body = body.to_owned();
    let counted = hits.clone();
    let router = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let (headers, body) = (headers.clone(), body.clone());
        async move { (status, headers, body) }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_documents_at_private_addresses_are_never_fetched() {
    use std::sync::atomic::Ordering;
    // A production server: loopback is as forbidden as any private address.
    let app = builder(Backend::Sqlite)
        .settings(|s| s.auth.cimd_allow_loopback = Some(false))
        .spawn()
        .await;
    // Something is listening on loopback; it must never be reached.
    let (port, hits) = counting_server(200, &[("content-type", "application/json")], "{}").await;
    for client_id in [
        format!("https://127.0.0.1:{port}/client.json"),
        format!("https://localhost:{port}/client.json"),
        format!("https://[::1]:{port}/client.json"),
        format!("https://127.1:{port}/client.json"),
        format!("https://2130706433:{port}/client.json"),
        format!("https://[::ffff:127.0.0.1]:{port}/client.json"),
        "https://10.1.2.3/client.json".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://192.168.0.1/client.json".to_owned(),
        "https://[fd00::1]/client.json".to_owned(),
        "https://0.0.0.0/client.json".to_owned(),
        "http://example.com/client.json".to_owned(),
        "https://user:pass@example.com/client.json".to_owned(),
        "https://example.com/client.json#frag".to_owned(),
    ] {
        let a = Authorize::new(&app, &client_id, REDIRECT);
        let r = refused_authorization(&app, &a.query()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{client_id}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a forbidden address was fetched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_document_redirects_are_not_followed() {
    use std::sync::atomic::Ordering;
    // Loopback is allowed here only so the test can serve the documents; a
    // redirect must be refused wherever it points.
    let app = spawn(Backend::Sqlite).await;
    let (target_port, target_hits) =
        counting_server(200, &[("content-type", "application/json")], "{}").await;
    for (status, location) in [
        (302, format!("http://127.0.0.1:{target_port}/client.json")),
        (307, format!("http://127.0.0.1:{target_port}/client.json")),
        (308, "http://169.254.169.254/latest/meta-data".to_owned()),
        (301, "http://10.0.0.1/client.json".to_owned()),
    ] {
        let (port, hits) = counting_server(status, &[("location", &location)], "").await;
        let client_id = format!("http://127.0.0.1:{port}/client.json");
        let a = Authorize::new(&app, &client_id, REDIRECT);
        let r = refused_authorization(&app, &a.query()).await;
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "{status} to {location}"
        );
        let page = r.text().await.unwrap();
        assert!(page.contains("redirects are not followed"), "{page}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the document URL is fetched once"
        );
    }
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "a redirect was followed"
    );
}

/// A metadata document URL that fails is fetched once a minute at most,
/// however many authorization requests name it: nobody can make the server
/// spend an outbound fetch (up to 5 seconds) per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_metadata_document_is_fetched_once_a_minute() {
    use std::sync::atomic::Ordering;
    let app = spawn(Backend::Sqlite).await;
    for (status, body) in [(500, "oops"), (200, "not json")] {
        let (port, hits) =
            counting_server(status, &[("content-type", "application/json")], body).await;
        let client_id = format!("http://127.0.0.1:{port}/client.json");
        let a = Authorize::new(&app, &client_id, REDIRECT);
        for _ in 0..5 {
            let r = refused_authorization(&app, &a.query()).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1, "{status} {body}");
        // The token endpoint resolves the client the same way.
        let (status_code, body_json, _) = app
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", &client_id),
            ])
            .await;
        assert_eq!(status_code, StatusCode::UNAUTHORIZED, "{body_json}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        // A minute later it is tried again.
        app.clock.advance(61);
        refused_authorization(&app, &a.query()).await;
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_and_markup_in_parameters_cannot_inject_headers_or_html() {
    let app = builder(Backend::Sqlite)
        .settings(|s| with_static_client(s, REDIRECT))
        .spawn()
        .await;
    // An error redirect (for a client the operator registered) carries
    // `state` back: CRLF must stay encoded.
    let mut a = Authorize::new(&app, STATIC_CLIENT, REDIRECT);
    a.state = "x\r\nSet-Cookie: pwned=1\r\nLocation: https://evil.example".into();
    let q = a
        .query()
        .replace("response_type=code", "response_type=token");
    let r = writes_nothing!(&app, Authorize::get_raw(&app, &q).await);
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = r.headers()[LOCATION].to_str().unwrap();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert!(!loc.contains('\r') && !loc.contains('\n'), "{loc}");
    assert!(
        r.headers()
            .get_all(SET_COOKIE)
            .iter()
            .all(|c| !c.to_str().unwrap().contains("pwned"))
    );
    let state = url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(state, a.state, "state comes back exactly, encoded");

    // Markup in a parameter shown on an error page is escaped.
    let r = Authorize::get_raw(&app, "client_id=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E").await;
    let html = r.text().await.unwrap();
    assert!(!html.contains("<img"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_host_header_changes_nothing() {
    let app = spawn(Backend::Sqlite).await;
    let meta: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], app.base.as_str());
    assert!(
        meta["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&app.base)
    );
    let prm: Value = app
        .http
        .get(app.url("/.well-known/oauth-protected-resource/mcp"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], app.url("/mcp"));
    // The 401 challenge points at our metadata, whatever the Host said;
    // an unknown Host on /mcp is refused outright (DNS rebinding).
    let r = app
        .http
        .post(app.url("/mcp"))
        .header("host", "evil.example")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    if r.status() == StatusCode::UNAUTHORIZED {
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains(&app.base) && !challenge.contains("evil"),
            "{challenge}"
        );
    } else {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let client_id = app.register_public().await;
    let tokens = Authorize::new(&app, &client_id, REDIRECT)
        .tokens(&app)
        .await;
    let r = app
        .http
        .post(app.url("/mcp"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("host", "evil.example")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a foreign Host is refused on /mcp"
    );
}

/// Malformed input on every endpoint: a standard error, never a 500,
/// nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_on_every_endpoint() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        ("/register", "application/json", "not json", b"{".to_vec()),
        ("/register", "application/json", "array", b"[]".to_vec()),
        (
            "/register",
            "application/json",
            "nul bytes",
            b"{\"redirect_uris\":[\"\x00\"]}".to_vec(),
        ),
        (
            "/register",
            "application/json",
            "wrong types",
            br#"{"redirect_uris":"x","client_name":5}"#.to_vec(),
        ),
        (
            "/register",
            "application/json",
            "deep nesting",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        ),
        (
            "/register",
            "text/plain",
            "wrong content type",
            br#"{"redirect_uris":["http://127.0.0.1/cb"]}"#.to_vec(),
        ),
        ("/token", form, "no grant type", b"code=x".to_vec()),
        (
            "/token",
            form,
            "duplicate parameters",
            b"grant_type=authorization_code&grant_type=refresh_token".to_vec(),
        ),
        (
            "/token",
            form,
            "invalid utf-8",
            b"grant_type=\xff\xfe".to_vec(),
        ),
        (
            "/token",
            form,
            "bad percent-encoding",
            b"grant_type=%zz".to_vec(),
        ),
        (
            "/token",
            "application/json",
            "json body",
            br#"{"grant_type":"refresh_token"}"#.to_vec(),
        ),
        (
            "/token",
            form,
            "unknown grant",
            b"grant_type=password&username=a&password=b".to_vec(),
        ),
        (
            "/revoke",
            form,
            "no token",
            format!("client_id={client_id}").into_bytes(),
        ),
        (
            "/revoke",
            form,
            "duplicate token",
            format!("client_id={client_id}&token=a&token=b").into_bytes(),
        ),
        ("/introspect", form, "no credentials", b"token=x".to_vec()),
        (
            "/device_authorization",
            form,
            "no client",
            b"scope=tweet.read".to_vec(),
        ),
        (
            "/device_authorization",
            "text/plain",
            "wrong content type",
            b"client_id=x".to_vec(),
        ),
        ("/consent", form, "no handle", b"action=approve".to_vec()),
        ("/consent", form, "garbage", b"\xff\xff\xff".to_vec()),
        ("/device", form, "garbage", b"%%%".to_vec()),
        ("/mcp", "application/json", "not json", b"{".to_vec()),
    ];
    for (path, content_type, what, body) in cases {
        let r = writes_nothing!(
            &app,
            app.http
                .post(app.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        );
        let status = r.status();
        assert!(
            status.is_client_error(),
            "{path} ({what}): {status} (a client mistake is never a 5xx)"
        );
        if matches!(
            path,
            "/register" | "/token" | "/revoke" | "/introspect" | "/device_authorization"
        ) {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert!(body["error"].is_string(), "{path} ({what}): {body}");
        }
    }
    // GET endpoints with hostile queries.
    for q in [
        "/authorize?%zz",
        "/authorize?client_id=a&client_id=b",
        "/device?user_code=%00%ff",
        "/upstream/callback?state=%zz&code=",
    ] {
        let r = writes_nothing!(&app, app.http.get(app.url(q)).send().await.unwrap());
        assert!(
            r.status().is_client_error() || r.status() == StatusCode::OK,
            "{q}: {}",
            r.status()
        );
        assert!(r.headers().get(LOCATION).is_none(), "{q}");
    }
}

/// The redirect URIs real MCP clients register are accepted; schemes that
/// launch operating-system handlers or run script are refused with RFC
/// 7591's `invalid_redirect_uri`, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_register_and_os_handler_schemes_do_not() {
    let app = spawn(Backend::Sqlite).await;
    for (client, uri) in [
        ("Claude", "https://claude.ai/api/mcp/auth_callback"),
        ("Claude", "https://claude.com/api/mcp/auth_callback"),
        (
            "ChatGPT",
            "https://chatgpt.com/connector_platform_oauth_redirect",
        ),
        (
            "Cursor",
            "cursor://anysphere.cursor-retrieval/oauth/user-MCP_SERVER_NAME/callback",
        ),
        ("VS Code", "http://127.0.0.1:33418/"),
        ("VS Code", "https://vscode.dev/redirect"),
        (
            "VS Code Insiders",
            "vscode-insiders://vscode.github-authentication/did-authenticate",
        ),
        ("Windsurf", "windsurf://codeium.windsurf/oauth/callback"),
        ("MCP Inspector", "http://localhost:6274/oauth/callback"),
        ("Claude Code", "http://localhost:51234/callback"),
        ("a CLI", "http://127.0.0.1:8976/callback"),
        ("a CLI", "http://[::1]:8976/cb"),
        ("a native app", "com.example.app:/oauth2redirect"),
    ] {
        let (status, body) = app
            .register(json!({"redirect_uris": [uri], "client_name": client, "token_endpoint_auth_method": "none"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{client} {uri}: {body}");
    }
    for uri in [
        "ms-msdt:/id PCWDiagnostic",
        "MS-OfficeCmd:open",
        "search-ms:query=secret",
        "intent://scan/#Intent;scheme=zxing;end",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vbscript:msgbox",
        "myapp://callback",
        "http://evil.example/callback",
    ] {
        let (status, body) = writes_nothing!(
            &app,
            app.register(json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"}))
                .await
        );
        assert_oauth_error(status, &body, "invalid_redirect_uri");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
    }
}

/// An operator may list the scheme of a native client the defaults do not
/// know, never one that launches a handler.
#[test]
fn redirect_schemes_are_configurable_within_what_is_safe() {
    let settings = |schemes: &[&str]| {
        let mut s = xmcp_server::Settings::default();
        s.auth.redirect_schemes = Some(schemes.iter().map(|s| (*s).to_owned()).collect());
        s.keys.encryption_key = Some(xmcp_server::keys::new_data_key().unwrap().export());
        s.x.demo = Some(true);
        s
    };
    let c = xmcp_server::Config::resolve(None, settings(&["myapp", "cursor"])).unwrap();
    assert!(
        xmcp_auth::redirect::validate_registered_with("myapp://cb", &c.auth.redirect_schemes)
            .is_ok()
    );
    let e = xmcp_server::Config::resolve(None, settings(&["ms-msdt"]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("XMCP_REDIRECT_SCHEMES"), "{e}");
}

/// An unauthenticated request cannot make the server store large rows: the
/// parameters of an authorization request have length limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_parameters_have_length_limits() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    let mut a = Authorize::new(&app, &client_id, REDIRECT);
    a.state = "s".repeat(1025);
    let r = refused_authorization(&app, &a.query()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("`state` is too long"));
    let mut a = Authorize::new(&app, &client_id, REDIRECT);
    a.extra.push(("junk".into(), "j".repeat(4 * 1024)));
    let r = refused_authorization(&app, &a.query()).await;
    assert!(r.text().await.unwrap().contains("`junk` is too long"));
    let mut a = Authorize::new(&app, &client_id, REDIRECT);
    a.scope = "tweet.read ".repeat(200);
    refused_authorization(&app, &a.query()).await;
    // Within the limits, a long state is kept and given back.
    let mut a = Authorize::new(&app, &client_id, REDIRECT);
    a.state = "s".repeat(1024);
    let page = a.consent_page(&app).await;
    assert_eq!(page.status, StatusCode::OK);
}

/// Password guesses are counted in the store: five wrong passwords cancel
/// the authorization request, and ten from anywhere make the account wait,
/// even for the right password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_bounded_per_request_and_per_account() {
    let app = builder(Backend::Sqlite)
        .upstream(Upstream::Local)
        .spawn()
        .await;
    let client_id = app.register_public().await;
    let wrong = [
        ("action", "approve"),
        ("username", LOCAL_USER),
        ("password", "wrong"),
    ];
    let right = [
        ("action", "approve"),
        ("username", LOCAL_USER),
        ("password", LOCAL_PASSWORD),
    ];
    let page = Authorize::new(&app, &client_id, REDIRECT)
        .consent_page(&app)
        .await;
    for _ in 0..5 {
        let r = submit_consent(&app, &page, &wrong).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Wrong username or password.")
        );
    }
    let r = submit_consent(&app, &page, &right).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Too many wrong passwords"));
    // The request is gone: the right password no longer completes it.
    let r = submit_consent(&app, &page, &right).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Another request, another five: the account has had ten.
    let page = Authorize::new(&app, &client_id, REDIRECT)
        .consent_page(&app)
        .await;
    // Counted case-insensitively.
    let shouted = LOCAL_USER.to_uppercase();
    for _ in 0..5 {
        let r = submit_consent(
            &app,
            &page,
            &[
                ("action", "approve"),
                ("username", &shouted),
                ("password", "wrong"),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let page = Authorize::new(&app, &client_id, REDIRECT)
        .consent_page(&app)
        .await;
    let r = submit_consent(&app, &page, &right).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Too many failed sign-ins to this account. Try again in 15 minutes."),
        "{html}"
    );
}

/// Slowloris: a client that trickles its headers a line a second is
/// disconnected once the header-read timeout passes, however it trickles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn(Backend::Sqlite).await;
    let addr = url::Url::parse(&app.base)
        .unwrap()
        .socket_addrs(|| None)
        .unwrap()[0];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rx, mut tx) = tcp.into_split();
    tx.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for i in 0..30 {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if tx
                .write_all(format!("X-Slow-{i}: x\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let started = std::time::Instant::now();
    let timeout = xmcp_server::app::HEADER_READ_TIMEOUT;
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(timeout * 2, rx.read_to_end(&mut buf)).await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "the connection was still open after {:?}",
        timeout * 2
    );
    assert!(started.elapsed() >= timeout - std::time::Duration::from_secs(1));
    // The server itself is fine.
    let r = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// An authorization request that names no scope is not granted every
/// scope: it gets the scope its client registered, or only the reading
/// scopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_scope_gets_the_registered_scope_or_reading_scopes() {
    let app = spawn(Backend::Sqlite).await;
    let client_id = app.register_public().await;
    let mut a = Authorize::new(&app, &client_id, "http://127.0.0.1/callback");
    a.scope = String::new();
    let granted = a.tokens(&app).await["scope"].as_str().unwrap().to_owned();
    let granted: Vec<&str> = granted.split(' ').collect();
    assert!(granted.contains(&"tweet.read"), "{granted:?}");
    assert!(granted.iter().all(|s| s.ends_with(".read")), "{granted:?}");

    let (status, body) = app
        .register(json!({
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "tweet.read tweet.write users.read offline_access",
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut a = Authorize::new(
        &app,
        body["client_id"].as_str().unwrap(),
        "http://127.0.0.1/callback",
    );
    a.scope = "offline_access".into();
    assert_eq!(
        a.tokens(&app).await["scope"],
        "tweet.read tweet.write users.read"
    );
}
