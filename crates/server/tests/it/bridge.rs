//! `xmcp bridge` against a malicious remote MCP server: whatever its
//! metadata says, the bridge opens only https (or same-machine http)
//! authorization URLs, and sends codes and tokens only to such endpoints.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use xmcp_crypto::envelope::{DataKey, Keyring};

/// A remote MCP server whose authorization server metadata says `metadata`
/// (on top of a well-formed document), counting requests to its OAuth
/// endpoints.
struct Malicious {
    url: url::Url,
    oauth_calls: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Malicious {
    async fn start(metadata: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut document = json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "registration_endpoint": format!("{base}/register"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
        });
        for (k, v) in metadata.as_object().unwrap() {
            document[k] = v.clone();
        }
        let oauth_calls = Arc::new(AtomicUsize::new(0));
        let counted = |calls: Arc<AtomicUsize>| {
            move || {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    (
                        StatusCode::CREATED,
                        Json(json!({"client_id": "evil-client", "redirect_uris": []})),
                    )
                }
            }
        };
        let challenge =
            format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
        let prm = json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]});
        let app = axum::Router::new()
            .route(
                "/mcp",
                post(move || {
                    let challenge = challenge.clone();
                    async move {
                        (
                            StatusCode::UNAUTHORIZED,
                            [(header::WWW_AUTHENTICATE, challenge)],
                        )
                            .into_response()
                    }
                }),
            )
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(move || async move { Json(prm) }),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { Json(document) }),
            )
            .route("/register", post(counted(oauth_calls.clone())))
            .route("/token", post(counted(oauth_calls.clone())));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: url::Url::parse(&format!("{base}/mcp")).unwrap(),
            oauth_calls,
            _task: task,
        }
    }

    /// Run the bridge's connection against this server: the error it ends
    /// with, and every URL it would have shown or opened.
    async fn connect(
        &self,
        store: Arc<dyn xmcp_store::Store>,
        keyring: Arc<Keyring>,
    ) -> (String, Vec<String>) {
        let shown = Arc::new(Mutex::new(Vec::<String>::new()));
        let show: xmcp_server::bridge::ShowUrl = {
            let shown = shown.clone();
            Arc::new(move |url: &str| shown.lock().unwrap().push(url.to_owned()))
        };
        let outcome = tokio::time::timeout(
            Duration::from_secs(20),
            xmcp_server::bridge::connect(
                &self.url,
                &xmcp_server::bridge::BridgeClient::default(),
                store,
                keyring,
                xmcp_server::app::system_clock(),
                0,
                show,
            ),
        )
        .await;
        let error = match outcome {
            Err(_) => "still waiting for the browser".to_owned(),
            Ok(Ok(_)) => "connected".to_owned(),
            Ok(Err(e)) => format!("{e:#}"),
        };
        let shown = shown.lock().unwrap().clone();
        (error, shown)
    }
}

async fn local_store() -> (Arc<dyn xmcp_store::Store>, Arc<Keyring>) {
    let store = xmcp_store::connect("sqlite::memory:", 1).await.unwrap();
    let keyring = Arc::new(Keyring::new(DataKey::generate("k").unwrap(), vec![]));
    (store, keyring)
}

#[tokio::test]
async fn the_bridge_never_opens_an_authorization_url_that_is_not_https() {
    for (field, value, refusal) in [
        (
            "authorization_endpoint",
            "file:///etc/passwd",
            "`file:` scheme",
        ),
        (
            "authorization_endpoint",
            "javascript:alert(document.cookie)",
            "`javascript:` scheme",
        ),
        (
            "authorization_endpoint",
            "ms-settings:privacy",
            "`ms-settings:` scheme",
        ),
        (
            "authorization_endpoint",
            "vscode://evil.extension/run?x=1",
            "`vscode:` scheme",
        ),
        (
            "authorization_endpoint",
            "http://auth.invalid/authorize",
            "another machine",
        ),
        // Codes and client credentials never travel in clear either.
        (
            "token_endpoint",
            "http://auth.invalid/token",
            "another machine",
        ),
        (
            "registration_endpoint",
            "http://auth.invalid/register",
            "another machine",
        ),
    ] {
        let evil = Malicious::start(json!({ field: value })).await;
        let (store, keyring) = local_store().await;
        let (error, shown) = evil.connect(store, keyring).await;
        assert!(
            error.contains("refusing the") && error.contains(refusal),
            "{field} = {value}: {error}"
        );
        assert!(shown.is_empty(), "{field} = {value}: shown {shown:?}");
        assert_eq!(
            evil.oauth_calls.load(Ordering::SeqCst),
            0,
            "{field} = {value}: registered or redeemed before refusing"
        );
    }
}

/// RFC 8414 §3.3: metadata naming another issuer than the one it was
/// fetched for is refused before anything is registered or opened.
#[tokio::test]
async fn metadata_for_another_issuer_is_refused() {
    let evil = Malicious::start(json!({"issuer": "https://auth.example.com"})).await;
    let (store, keyring) = local_store().await;
    let (error, shown) = evil.connect(store, keyring).await;
    assert!(error.contains("issuer mismatch"), "{error}");
    assert!(shown.is_empty(), "{shown:?}");
    assert_eq!(evil.oauth_calls.load(Ordering::SeqCst), 0);
}

/// Stored tokens are not sent to a token endpoint the server's metadata
/// has since changed to something the bridge would not have used.
#[tokio::test]
async fn stored_tokens_are_not_refreshed_at_an_endpoint_the_bridge_refuses() {
    let evil = Malicious::start(json!({"token_endpoint": "file:///tmp/token"})).await;
    let (store, keyring) = local_store().await;
    let name = xmcp_server::bridge::credentials_name(&evil.url);
    let issuer = evil.url.origin().ascii_serialization();
    let credentials = json!({
        "client_id": "bridge-client",
        "token_response": {
            "access_token": "stored-access",
            "token_type": "bearer",
            "refresh_token": "stored-refresh",
            "expires_in": 1
        },
        "granted_scopes": [],
        "token_received_at": 1,
        "issuer": issuer,
    });
    let sealed = keyring.seal(credentials.to_string().as_bytes(), name.as_bytes());
    store.put_local_state(&name, &sealed, 1).await.unwrap();
    let (error, shown) = evil.connect(store, keyring).await;
    assert!(
        error.contains("refusing the token endpoint") && error.contains("`file:` scheme"),
        "{error}"
    );
    assert!(shown.is_empty(), "{shown:?}");
}
