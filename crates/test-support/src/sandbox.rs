//! The simulated X served on its own port, as X would be.

use super::*;

/// A simulated X served on its own port: it outlives restarts of the app
/// (X does not restart when we do) and reads the app's manual clock.
pub struct SandboxServer {
    pub sandbox: xmcp_sandbox::Sandbox,
    pub base: String,
    handle: tokio::task::JoinHandle<()>,
}

impl SandboxServer {
    pub async fn start(callback: &str, clock: Arc<ManualClock>) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let sandbox = xmcp_sandbox::Sandbox::new(
            xmcp_sandbox::SandboxConfig {
                clients: vec![xmcp_sandbox::SandboxClient {
                    client_id: X_CLIENT_ID.into(),
                    client_secret: Some(X_CLIENT_SECRET.into()),
                    redirect_uris: vec![callback.to_owned()],
                }],
                base_url: base.clone(),
                app_bearer_token: Some(X_APP_BEARER_TOKEN.into()),
                ..Default::default()
            },
            Arc::new(move || clock.now()),
        );
        let router = sandbox
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Arc::new(Self {
            sandbox,
            base,
            handle,
        })
    }
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
