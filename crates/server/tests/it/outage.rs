//! The database goes away and comes back: clear 503s meanwhile (OAuth
//! errors on the OAuth endpoints, `Retry-After` everywhere), nothing lost,
//! and recovery without a restart. PostgreSQL is reached through a TCP
//! proxy the test cuts and restores.

use crate::harness::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A TCP forwarder to PostgreSQL that can be cut (every connection
/// dropped, new ones refused) and restored on the same port.
struct Proxy {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self {
            port,
            target,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target.clone();
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// The database "goes down": the listener closes, every connection drops.
    fn cut(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_503s_and_recovery_needs_no_restart() {
    if xmcp_store::testing::required("XMCP_TEST_DATABASE_URL", "the PostgreSQL outage case")
        .is_none()
    {
        return;
    }
    let Some(db) = xmcp_store::testing::TestDatabase::postgres().await else {
        return;
    };
    let url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(target.clone()).await;
    let mut via = db.share();
    via.url = via
        .url
        .replace(&target, &format!("127.0.0.1:{}", proxy.port));
    let app = builder(Backend::Postgres).database(via).spawn().await;

    let client_id = app.register_public().await;
    let tokens = Authorize::new(&app, &client_id, "http://127.0.0.1:5555/callback")
        .tokens(&app)
        .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    proxy.cut();

    // Everything that needs the database says so, at once and in parallel.
    let ready = app.http.get(app.url("/ready")).send();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let refreshed = app.post_form("/token", &form);
    let mcp = app.mcp(Some(&access), "tools/list", json!({}));
    let register = app.register(json!({"redirect_uris": ["http://127.0.0.1/cb"]}));
    let (ready, refreshed, mcp, (reg_status, reg_body)) =
        tokio::join!(ready, refreshed, mcp, register);
    let ready = ready.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key("retry-after"));
    assert_eq!(refreshed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refreshed.headers().contains_key("retry-after"));
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    assert!(body["error_description"].is_string());
    assert_eq!(mcp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reg_status, StatusCode::SERVICE_UNAVAILABLE, "{reg_body}");
    assert_eq!(reg_body["error"], "temporarily_unavailable");
    // The server itself is alive.
    let health = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    proxy.restore().await;

    // Back without a restart, and nothing was lost: the refresh token the
    // failed request carried still works, once.
    let ready = app.http.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let me = app.call_tool(&access, "whoami", json!({})).await;
    assert_eq!(me["isError"], false);
    let (status, t2, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{t2}");
    let me = app
        .call_tool(t2["access_token"].as_str().unwrap(), "whoami", json!({}))
        .await;
    assert_eq!(me["isError"], false);
    drop(db);
}
