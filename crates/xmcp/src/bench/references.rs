//! What xmcp is measured against on the same machine: a bare handler
//! behind the same bearer check, the MCP SDK's transport over the same
//! handler, and the Python and TypeScript SDKs.

use super::*;

/// The reference: the same bearer check as `/mcp`'s guard, then the reply
/// `echo` gives, with no MCP layer.
pub(super) async fn reference_handler(
    axum::extract::State(auth): axum::extract::State<Arc<xmcp_auth::AuthServer>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth.authenticate_bearer(header).await.is_err() {
        return axum::http::StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let message = req["params"]["arguments"]["message"].clone();
    axum::Json(json!({
        "jsonrpc": "2.0",
        "id": req["id"],
        "result": {"content": [{"type": "text", "text": message}], "isError": false},
    }))
    .into_response()
}

/// The third reference: xmcp's own MCP handler, called in the request's
/// task behind the same bearer check, with none of rmcp's streamable HTTP
/// transport (no per-request service, tasks and channels, and none of the
/// transport's header checks). Not a way to serve MCP, since those checks
/// are part of the protocol; measured beside `sdk` and `bare`, it splits the
/// gap between xmcp and the bare handler into the handler's share and the
/// transport's.
pub(super) struct HandlerOnly {
    pub(super) auth: Arc<xmcp_auth::AuthServer>,
    /// The handler, served over an in-memory pipe that carries nothing: a
    /// handler is called with a peer, which only rmcp's service loop makes.
    /// Kept with the pipe's other end, which keeps the service running.
    pub(super) service:
        rmcp::service::RunningService<rmcp::RoleServer, xmcp_server::mcp::XmcpHandler>,
    pub(super) _pipe: tokio::io::DuplexStream,
}

impl HandlerOnly {
    pub(super) fn router(app: &App) -> axum::Router {
        let (ours, _pipe) = tokio::io::duplex(64);
        let service =
            rmcp::service::serve_directly(xmcp_server::app::xmcp_handler(app), ours, None);
        axum::Router::new()
            .route("/mcp", axum::routing::post(Self::answer))
            .with_state(Arc::new(Self {
                auth: app.auth.clone(),
                service,
                _pipe,
            }))
    }

    pub(super) async fn answer(
        axum::extract::State(this): axum::extract::State<Arc<Self>>,
        req: axum::extract::Request,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        use rmcp::Service as _;
        use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
        let req = match xmcp_auth::routes::authenticate(&this.auth, req).await {
            Ok(req) => req,
            Err(resp) => return resp,
        };
        let (parts, body) = req.into_parts();
        let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
            return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        let Ok(ClientJsonRpcMessage::Request(request)) = serde_json::from_slice(&body) else {
            return axum::http::StatusCode::BAD_REQUEST.into_response();
        };
        let mut context =
            rmcp::service::RequestContext::new(request.id.clone(), this.service.peer().clone());
        // Where rmcp's transport puts them: the handler finds the principal
        // in the HTTP request's parts.
        context.extensions.insert(parts);
        let answer = match this
            .service
            .service()
            .handle_request(request.request, context)
            .await
        {
            Ok(result) => ServerJsonRpcMessage::response(result, request.id),
            Err(error) => ServerJsonRpcMessage::error(error, Some(request.id)),
        };
        axum::Json(answer).into_response()
    }
}

/// The FastMCP echo server (`fastmcp.py`), accepting `token`.
pub(super) const FASTMCP: &str = include_str!("fastmcp.py");

/// The TypeScript SDK echo server (`typescript.mjs`).
pub(super) const TYPESCRIPT: &str = include_str!("typescript.mjs");

/// An alternative server, run as a child process (killed when dropped).
pub(super) struct Alternative {
    pub(super) _child: tokio::process::Child,
    pub(super) base: String,
}

/// Start `command` with `XMCP_BENCH_PORT` (a free loopback port) and
/// `XMCP_BENCH_TOKEN` (the token it must accept) and wait until it listens.
/// `what` names it in errors, `needs` says what it needs when it exits.
pub(super) async fn start_alternative(
    mut command: tokio::process::Command,
    token: &str,
    what: &str,
    needs: &str,
) -> anyhow::Result<Alternative> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = command
        .env("XMCP_BENCH_PORT", port.to_string())
        .env("XMCP_BENCH_TOKEN", token)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start the {what} server"))?;
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(Alternative {
                _child: child,
                base: format!("http://127.0.0.1:{port}"),
            });
        }
        if let Some(status) = child.try_wait()? {
            bail!("the {what} server exited ({status}); {needs}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the {what} server did not listen within 30 s")
}

pub(super) async fn start_fastmcp(
    python: &std::path::Path,
    token: &str,
) -> anyhow::Result<Alternative> {
    let mut command = tokio::process::Command::new(python);
    command.arg("-c").arg(FASTMCP);
    let needs = format!("does {} have the `mcp` package?", python.display());
    start_alternative(command, token, "FastMCP", &needs).await
}

pub(super) async fn start_typescript(
    dir: &std::path::Path,
    token: &str,
) -> anyhow::Result<Alternative> {
    let mut command = tokio::process::Command::new("node");
    // Bare imports resolve from the working directory's node_modules.
    command
        .args(["--input-type=module", "--eval", TYPESCRIPT])
        .current_dir(dir);
    let needs = format!(
        "is `node` on PATH, and was `npm install @modelcontextprotocol/sdk` run in {}?",
        dir.display()
    );
    start_alternative(command, token, "TypeScript SDK", &needs).await
}

/// Serve `router` on a free loopback port until `stop`; its base URL.
pub(super) async fn serve_reference(
    router: axum::Router,
    stop: &CancellationToken,
) -> anyhow::Result<String> {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stop = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
    Ok(base)
}
