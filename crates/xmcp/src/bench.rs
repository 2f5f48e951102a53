//! `xmcp bench`: throughput and latency of authenticated `tools/call`,
//! what xmcp adds to a call that reaches X and what its ledger writes cost,
//! the size of `tools/list`, the token endpoint, memory, and `xmcp stdio`
//! cold start.
//!
//! Boots the real server in this process on 127.0.0.1 (demo sign-in, a fresh
//! SQLite database in a temporary directory unless `--database-url` is
//! given), obtains a token through the real OAuth flow over HTTP, then has N
//! concurrent workers call `tools/call echo` for a fixed time at each
//! concurrency level. The same run measures a bare axum handler that does
//! the same bearer check (`AuthServer::authenticate_bearer`) and answers
//! the same JSON-RPC reply without MCP, so the ratio is measured on one
//! machine at one moment. Two more references split the gap: the MCP SDK's
//! own transport over the same handler behind only the bearer guard
//! (`sdk`), which shows how much of it is the SDK's and how much is xmcp's
//! (metrics, CORS, request ids, scope checks, rate limits, body limits; with
//! `--stateful`, the SDK's own session mode, which xmcp replaces with
//! sessions in the store); and the same handler called without the SDK's
//! transport (`handler`), which shows how much is the handler's and how
//! much the transport's. With `--python` and `--typescript` it also
//! measures the alternatives: the same tool on the official Python and
//! TypeScript SDKs, run as child processes. Then `tools/call getUsersMe`
//! through xmcp takes turns with the same call made directly to the
//! simulated X (its rate limits off), and the difference is what xmcp adds
//! to a user's wait. Load generator and servers share the machine's cores,
//! so the numbers are a lower bound for a server alone.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use xmcp_server::config::Settings;
use xmcp_server::{App, Config};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Seconds of measurement per concurrency level and target.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds each level is split into: xmcp and the references take turns.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Concurrency levels (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Database to use instead of a temporary SQLite file.
    #[arg(long, env = "XMCP_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Serve MCP statefully (sessions) instead of stateless JSON.
    #[arg(long)]
    stateful: bool,
    /// Access token format: opaque or jwt.
    #[arg(long, default_value = "opaque")]
    token_format: String,
    /// Skip the references (bare axum, SDK, handler alone).
    #[arg(long)]
    no_reference: bool,
    /// Also measure the same echo tool on the official MCP Python SDK
    /// (FastMCP, stateless JSON), run by this Python, which needs the `mcp`
    /// package. Stateless mode only.
    #[arg(long, env = "XMCP_BENCH_PYTHON")]
    python: Option<std::path::PathBuf>,
    /// Also measure the same echo tool on the official MCP TypeScript SDK
    /// (stateless JSON, node:http), run by `node` in this directory, where
    /// `npm install @modelcontextprotocol/sdk` was run. Stateless mode only.
    #[arg(long, env = "XMCP_BENCH_TYPESCRIPT")]
    typescript: Option<std::path::PathBuf>,
    /// Skip the calls that reach the simulated X (`getUsersMe` through
    /// xmcp against the simulated X directly) and the ledger's writes.
    #[arg(long)]
    no_x_calls: bool,
    /// Also measure the token endpoint (code and refresh grants).
    #[arg(long)]
    token_endpoint: bool,
    /// Count the authorization endpoints' rate limits, as a deployment does
    /// by default, at a limit the benchmark never reaches (without it they
    /// are off: the benchmark is one address hammering /token).
    #[arg(long)]
    rate_limits: bool,
    /// Measure `xmcp stdio` cold start to the first tools/list answer with
    /// this X OpenAPI document (instead of the HTTP benchmarks).
    #[arg(long)]
    stdio_cold_start: Option<std::path::PathBuf>,
    /// Runs of the cold start.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Log filter of the server under test, as `xmcp serve` has it by
    /// default: its request spans are part of what a deployment pays for.
    /// `off` measures without logging.
    #[arg(long, env = "XMCP_LOG", default_value = "info")]
    log: String,
}

/// Resident memory of this process (Linux), in MiB.
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The reference: the same bearer check as `/mcp`'s guard, then the reply
/// `echo` gives, with no MCP layer.
async fn reference_handler(
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
struct HandlerOnly {
    auth: Arc<xmcp_auth::AuthServer>,
    /// The handler, served over an in-memory pipe that carries nothing: a
    /// handler is called with a peer, which only rmcp's service loop makes.
    /// Kept with the pipe's other end, which keeps the service running.
    service: rmcp::service::RunningService<rmcp::RoleServer, xmcp_server::mcp::XmcpHandler>,
    _pipe: tokio::io::DuplexStream,
}

impl HandlerOnly {
    fn router(app: &App) -> axum::Router {
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

    async fn answer(
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

/// `xmcp stdio` with `doc`: spawn, initialize, tools/list, time to answer.
#[allow(clippy::print_stdout)]
async fn stdio_cold_start(doc: &std::path::Path, runs: usize) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let payload = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized", "params": {}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
    ]
    .iter()
    .map(|m| format!("{m}\n"))
    .collect::<String>();
    let mut times = Vec::new();
    let mut tools = 0;
    // The first run creates the database and key file: not counted.
    for run in 0..=runs {
        let start = Instant::now();
        let mut child = tokio::process::Command::new(&exe)
            .arg("stdio")
            .env("XMCP_DATA_DIR", dir.path())
            .env("XMCP_X_CLIENT_ID", "bench")
            .env("XMCP_X_OPENAPI", doc)
            .env("XMCP_LOG", "warn")
            .env_remove("XMCP_DATABASE_URL")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take().context("stdin")?;
        stdin.write_all(payload.as_bytes()).await?;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
        loop {
            let line = lines
                .next_line()
                .await?
                .context("xmcp stdio closed stdout before answering tools/list")?;
            let m: Value = serde_json::from_str(&line)?;
            if m["id"] == 2 {
                tools = m["result"]["tools"].as_array().map_or(0, Vec::len);
                break;
            }
        }
        let elapsed = start.elapsed();
        drop(stdin);
        child.wait().await?;
        if run > 0 {
            times.push(elapsed);
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "xmcp stdio cold start to the tools/list answer ({tools} tools, {runs} runs): p50 {:.1} ms, min {:.1}, p90 {:.1}, max {:.1}",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[(times.len() * 9 / 10).min(times.len() - 1)]),
        ms(times[times.len() - 1]),
    );
    Ok(())
}

/// What one target answered at one concurrency, over one or more rounds.
#[derive(Default)]
struct Level {
    /// Latency of every successful call.
    latencies: Vec<Duration>,
    errors: usize,
    /// The first failure seen, to explain a non-zero error count.
    sample: Option<String>,
    elapsed: Duration,
}

impl Level {
    fn add(&mut self, other: Level) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.sample = self.sample.take().or(other.sample);
        self.elapsed += other.elapsed;
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile of the latencies (sorts them).
    fn quantile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        self.latencies
            .get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

/// The attributes of one HTML start tag (`rest` is what follows its name),
/// quoted or not, entity-decoded for the few entities our pages emit.
fn attributes(rest: &str) -> Vec<(String, String)> {
    let tag = rest.split('>').next().unwrap_or_default();
    let mut out = Vec::new();
    let mut chars = tag.trim_end_matches('/').trim().chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars
            .by_ref()
            .skip_while(|c| c.is_whitespace())
            .take_while(|c| !c.is_whitespace() && *c != '=')
            .collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            value = chars.by_ref().take_while(|c| *c != '"').collect();
        } else if chars.peek().is_some_and(|c| !c.is_whitespace()) {
            value = chars.by_ref().take_while(|c| !c.is_whitespace()).collect();
        }
        if !name.is_empty() {
            let value = value
                .replace("&quot;", "\"")
                .replace("&#x27;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            out.push((name, value));
        }
    }
    out
}

/// A page's form as a browser submits it untouched: its action, hidden
/// inputs, checked radios and checkboxes, and the first submit button.
fn form_as_served(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let get = |attrs: &[(String, String)], k: &str| {
        attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    };
    let action = get(&attributes(html.split("<form").nth(1)?), "action").unwrap_or_default();
    let mut fields = Vec::new();
    for input in html.split("<input").skip(1) {
        let a = attributes(input);
        let kind = get(&a, "type").unwrap_or_else(|| "text".into());
        let checked = a.iter().any(|(n, _)| n == "checked");
        if (kind == "hidden" || (matches!(kind.as_str(), "radio" | "checkbox") && checked))
            && let (Some(name), Some(value)) = (get(&a, "name"), get(&a, "value"))
        {
            fields.push((name, value));
        }
    }
    if let Some(button) = html.split("<button").nth(1) {
        let a = attributes(button);
        if let (Some(name), Some(value)) = (get(&a, "name"), get(&a, "value")) {
            fields.push((name, value));
        }
    }
    Some((action, fields))
}

/// Register, authorize, consent, sign in at the (simulated) X and exchange
/// the code, as a client and its user would.
async fn obtain_token(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let reg: Value = http
        .post(format!("{base}/register"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none", "client_name": "xmcp bench"}))
        .send()
        .await?
        .json()
        .await?;
    let client_id = reg["client_id"]
        .as_str()
        .context("registration failed")?
        .to_owned();
    let (verifier, challenge) = xmcp_crypto::pkce_pair();
    let redirect = "http://127.0.0.1:1/callback";
    let authorize = url::Url::parse_with_params(
        &format!("{base}/authorize"),
        [
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", redirect),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("resource", &format!("{base}/mcp")),
        ],
    )?;
    // Play the browser: submit our consent page, then the simulated X's
    // login page, as served (defaults preselected), until the redirect back.
    let mut cookies: Vec<String> = Vec::new();
    let mut url = authorize.to_string();
    let mut resp = http.get(&url).send().await?;
    let location = loop {
        for c in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some(pair) = c.to_str().ok().and_then(|v| v.split(';').next()) {
                cookies.push(pair.to_owned());
            }
        }
        if resp.status().is_redirection() {
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .context("a redirect without a location")?;
            let to = url::Url::parse(&url)?.join(to)?.to_string();
            if to.starts_with(redirect) {
                break to;
            }
            url = to;
            resp = http
                .get(&url)
                .header("cookie", cookies.join("; "))
                .send()
                .await?;
            continue;
        }
        anyhow::ensure!(
            resp.status().is_success(),
            "sign-in page {url}: HTTP {}",
            resp.status()
        );
        let html = resp.text().await?;
        let (action, form) = form_as_served(&html).context("no form on the sign-in page")?;
        url = url::Url::parse(&url)?.join(&action)?.to_string();
        resp = http
            .post(&url)
            .header("cookie", cookies.join("; "))
            .form(&form)
            .send()
            .await?;
    };
    let location = location.as_str();
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let tokens: Value = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
            ("redirect_uri", redirect),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(tokens["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned())
}

/// Builds the `n`th request of a measurement.
type MakeRequest = Arc<dyn Fn(u64) -> reqwest::RequestBuilder + Send + Sync>;

/// `tools/call` of `tool` with `arguments`, as an MCP client sends it.
fn tool_call(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    session: Option<&str>,
    tool: &'static str,
    arguments: Value,
) -> MakeRequest {
    let (http, url) = (http.clone(), url.to_owned());
    let auth = format!("Bearer {token}");
    let session = session.map(str::to_owned);
    Arc::new(move |id| {
        // Request ids must be unique within a session (stateful mode).
        let body = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments},
        });
        let req = http
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        match &session {
            Some(s) => req.header("mcp-session-id", s),
            None => req,
        }
    })
}

/// `tools/call echo`: the answer carries [`ECHOED`].
fn echo(http: &reqwest::Client, url: &str, token: &str, session: Option<&str>) -> MakeRequest {
    tool_call(
        http,
        url,
        token,
        session,
        "echo",
        json!({"message": "bench"}),
    )
}
const ECHOED: &[u8] = b"bench";

/// `concurrency` workers send `make`'s requests for `duration`; a call
/// succeeds when its answer is a 2xx whose body contains `expect`.
async fn measure(
    make: &MakeRequest,
    expect: &'static [u8],
    concurrency: usize,
    duration: Duration,
) -> Level {
    let next_id = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (make, next_id) = (make.clone(), next_id.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut first_error: Option<String> = None;
                while Instant::now() < deadline {
                    let id = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let req = make(id);
                    let t = Instant::now();
                    match req.send().await {
                        Ok(r) if r.status().is_success() => match r.bytes().await {
                            Ok(b) if b.windows(expect.len()).any(|w| w == expect) => {
                                latencies.push(t.elapsed())
                            }
                            Ok(b) => {
                                first_error.get_or_insert_with(|| {
                                    String::from_utf8_lossy(&b).into_owned()
                                });
                                errors += 1
                            }
                            Err(e) => {
                                first_error.get_or_insert_with(|| e.to_string());
                                errors += 1
                            }
                        },
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            first_error.get_or_insert_with(|| format!("HTTP {status}: {text}"));
                            errors += 1
                        }
                        Err(e) => {
                            first_error.get_or_insert_with(|| e.to_string());
                            errors += 1
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut sample = None;
    for w in workers {
        if let Ok((l, e, first)) = w.await {
            all.extend(l);
            errors += e;
            sample = sample.or(first);
        }
    }
    Level {
        latencies: all,
        errors,
        sample,
        elapsed: started.elapsed(),
    }
}

/// The FastMCP echo server (`bench_fastmcp.py`), accepting `token`.
const FASTMCP: &str = include_str!("bench_fastmcp.py");
/// The TypeScript SDK echo server (`bench_typescript.mjs`).
const TYPESCRIPT: &str = include_str!("bench_typescript.mjs");

/// An alternative server, run as a child process (killed when dropped).
struct Alternative {
    _child: tokio::process::Child,
    base: String,
}

/// Start `command` with `XMCP_BENCH_PORT` (a free loopback port) and
/// `XMCP_BENCH_TOKEN` (the token it must accept) and wait until it listens.
/// `what` names it in errors, `needs` says what it needs when it exits.
async fn start_alternative(
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

async fn start_fastmcp(python: &std::path::Path, token: &str) -> anyhow::Result<Alternative> {
    let mut command = tokio::process::Command::new(python);
    command.arg("-c").arg(FASTMCP);
    let needs = format!("does {} have the `mcp` package?", python.display());
    start_alternative(command, token, "FastMCP", &needs).await
}

async fn start_typescript(dir: &std::path::Path, token: &str) -> anyhow::Result<Alternative> {
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
async fn serve_reference(router: axum::Router, stop: &CancellationToken) -> anyhow::Result<String> {
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

/// Open a session (stateful mode) and return its id.
async fn open_session(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<String> {
    let r = http
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}))
        .send()
        .await?;
    let id = r
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .context("no session id")?
        .to_owned();
    // Read the reply: dropping the stream unread closes the session.
    r.bytes().await?;
    http.post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("mcp-session-id", &id)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await?
        .bytes()
        .await?;
    Ok(id)
}

/// Requests per minute for `--rate-limits`: far above what one machine
/// sends in a run, yet counted as any limit is.
const UNREACHED_LIMIT: u32 = 10_000_000;

#[allow(clippy::print_stdout)]
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive numbers");
    }
    if let Some(doc) = &args.stdio_cold_start {
        return stdio_cold_start(doc, args.runs.max(1)).await;
    }
    let jwt = match args.token_format.as_str() {
        "opaque" => false,
        "jwt" => true,
        other => bail!("--token-format is opaque or jwt, not `{other}`"),
    };
    xmcp_server::telemetry::init(xmcp_server::config::LogFormat::Text, &args.log);
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    let base = format!("http://{local}");
    let settings = Settings {
        demo: Some(true),
        host: Some(local.ip()),
        port: Some(local.port()),
        public_url: Some(base.clone()),
        data_dir: Some(dir.path().to_path_buf()),
        database_url: args.database_url.clone(),
        encryption_key: Some(xmcp_server::keys::new_data_key()?.export()),
        mcp_stateful: Some(args.stateful),
        access_token_format: jwt.then(|| "jwt".to_owned()),
        // The benchmark is one client address hammering /token.
        rate_limit_per_ip: Some(if args.rate_limits { UNREACHED_LIMIT } else { 0 }),
        rate_limit_per_client: Some(if args.rate_limits { UNREACHED_LIMIT } else { 0 }),
        log: Some(args.log.clone()),
        // Caps on, at a height no run reaches: the X calls pay for holding
        // and settling spend as a deployment does.
        spend_cap_user: Some(BENCH_CAP.into()),
        ..Default::default()
    };
    let app = App::build(
        Config::resolve(None, settings)?,
        xmcp_server::app::system_clock(),
    )
    .await?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(xmcp_server::serve(app.clone(), listener, shutdown.clone()));
    let idle_rss = rss_mib();
    // The references, each on its own port, over the same AuthServer: the
    // bare handler, and the MCP SDK's own transport over the same handler
    // behind only the bearer guard (what the SDK costs before any of ours).
    let (bare, sdk, handler_only) = if args.no_reference {
        (None, None, None)
    } else {
        let bare = axum::Router::new()
            .route("/mcp", axum::routing::post(reference_handler))
            .with_state(app.auth.clone());
        // In stateful mode the SDK's own sessions (a worker per session in
        // memory), which xmcp does without.
        let sdk = if args.stateful {
            xmcp_server::app::rmcp_stateful_service(&app, &shutdown)
        } else {
            xmcp_server::app::mcp_service(&app, &shutdown).0
        };
        let sdk = sdk.layer(axum::middleware::from_fn_with_state(
            app.auth.clone(),
            xmcp_auth::routes::require_bearer,
        ));
        (
            Some(serve_reference(bare, &shutdown).await?),
            Some(serve_reference(sdk, &shutdown).await?),
            Some(serve_reference(HandlerOnly::router(&app), &shutdown).await?),
        )
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()?;
    let token = obtain_token(&http, &base).await?;
    if args.stateful && (args.python.is_some() || args.typescript.is_some()) {
        println!("(the alternatives are measured in stateless mode only; skipped)");
    }
    let fastmcp = match &args.python {
        Some(python) if !args.stateful => Some(start_fastmcp(python, &token).await?),
        _ => None,
    };
    let typescript = match &args.typescript {
        Some(dir) if !args.stateful => Some(start_typescript(dir, &token).await?),
        _ => None,
    };
    let (session, sdk_session) = match (args.stateful, &sdk) {
        (true, Some(sdk)) => (
            Some(open_session(&http, &base, &token).await?),
            Some(open_session(&http, sdk, &token).await?),
        ),
        (true, None) => (Some(open_session(&http, &base, &token).await?), None),
        (false, _) => (None, None),
    };

    println!(
        "xmcp bench: authenticated tools/call echo, {} mode, {} tokens, {} store, {} s per level, {} cores",
        if args.stateful {
            "stateful"
        } else {
            "stateless JSON"
        },
        if jwt { "JWT" } else { "opaque" },
        if app.config.database_url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        args.seconds,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    );
    // Warm up connections and caches.
    let mcp_url = format!("{base}/mcp");
    measure(
        &echo(&http, &mcp_url, &token, session.as_deref()),
        ECHOED,
        4,
        Duration::from_millis(500),
    )
    .await;
    // xmcp first, then the references that run.
    let mut targets = vec![("xmcp", mcp_url.clone(), session.clone())];
    for (name, reference, session) in [
        ("sdk", sdk.clone(), sdk_session.clone()),
        ("handler", handler_only.clone(), None),
        ("bare", bare.clone(), None),
        ("fastmcp", fastmcp.as_ref().map(|a| a.base.clone()), None),
        (
            "typescript",
            typescript.as_ref().map(|a| a.base.clone()),
            None,
        ),
    ] {
        if let Some(base) = reference {
            targets.push((name, format!("{base}/mcp"), session));
        }
    }
    let index = |name: &str| targets.iter().position(|t| t.0 == name);
    let ratios: Vec<(String, usize, usize)> = [
        ("sdk", "bare"),
        ("handler", "bare"),
        ("xmcp", "bare"),
        ("xmcp", "fastmcp"),
        ("xmcp", "typescript"),
    ]
    .into_iter()
    .filter_map(|(a, b)| Some((format!("{a}/{b}"), index(a)?, index(b)?)))
    .collect();
    print!(
        "{:>11} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "concurrency", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    // Each column as wide as its heading.
    let headings: Vec<String> = targets[1..]
        .iter()
        .map(|(name, _, _)| format!("{name} req/s"))
        .collect();
    for h in &headings {
        print!(" {h:>13}");
    }
    for (label, _, _) in &ratios {
        print!(" {label:>12}");
    }
    println!();
    let calls: Vec<MakeRequest> = targets
        .iter()
        .map(|(_, url, session)| echo(&http, url, &token, session.as_deref()))
        .collect();
    let seconds = Duration::from_secs(args.seconds);
    // The targets take turns in short rounds, so a change in the machine's
    // speed during the run (other tenants, frequency scaling) weighs on all
    // of them alike and the ratios stay comparable.
    let rounds = args.rounds.max(1);
    let slice = seconds / rounds;
    for &c in &args.concurrency {
        let mut levels: Vec<Level> = targets.iter().map(|_| Level::default()).collect();
        for _ in 0..rounds {
            for (make, level) in calls.iter().zip(&mut levels) {
                level.add(measure(make, ECHOED, c, slice).await);
            }
        }
        let (p50, p99) = (levels[0].quantile(0.50), levels[0].quantile(0.99));
        let l = &levels[0];
        print!(
            "{:>11} {:>10} {:>10.0} {:>10.3} {:>10.3} {:>8}",
            c,
            l.latencies.len(),
            l.rate(),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            l.errors,
        );
        for (r, h) in levels[1..].iter().zip(&headings) {
            let shown = if r.errors == 0 {
                format!("{:.0}", r.rate())
            } else {
                format!("{} errors", r.errors)
            };
            print!(" {shown:>w$}", w = h.len().max(13));
        }
        for (label, a, b) in &ratios {
            let (a, b) = (&levels[*a], &levels[*b]);
            let shown = if a.errors == 0 && b.errors == 0 {
                format!("{:.2}", a.rate() / b.rate())
            } else {
                "-".into()
            };
            print!(" {shown:>w$}", w = label.len().max(12));
        }
        println!();
        for ((name, _, _), l) in targets.iter().zip(&levels) {
            if let Some(s) = &l.sample {
                println!(
                    "  {name}, first error: {}",
                    s.chars().take(300).collect::<String>()
                );
            }
        }
    }
    let loaded_rss = rss_mib();
    if let (Some(idle), Some(loaded)) = (idle_rss, loaded_rss) {
        println!(
            "memory (this process: server + load generator): {idle:.1} MiB after boot, {loaded:.1} MiB after load"
        );
    }
    if args.stateful {
        sessions_memory(&http, &base, sdk.as_deref(), &token).await?;
    }
    // The calls that reach X are measured in stateless mode: what a
    // session adds is the echo table's business.
    if !args.no_x_calls && !args.stateful {
        x_calls(
            &http,
            &base,
            &app,
            &token,
            &args.concurrency,
            seconds,
            rounds,
        )
        .await?;
        ledger_writes(&app, &args.concurrency).await;
    }
    tools_list(&app);
    if args.token_endpoint {
        token_endpoint(&http, &base, &app, seconds).await?;
    }
    shutdown.cancel();
    let _ = server.await;
    Ok(())
}

/// The per-user daily cap of the benchmark's server, in dollars: on, and
/// never reached.
const BENCH_CAP: &str = "1000000";

/// What xmcp adds to a call that reaches X: `tools/call getUsersMe` through
/// xmcp (bearer check, scope check, spend hold, X token from the store, the
/// call, settle, audit) against `GET /2/users/me` on the same simulated X
/// with the user's X token, taking turns in the same run. The simulated X's
/// rate limits are off, so both sides run as fast as they can.
#[allow(clippy::print_stdout)]
async fn x_calls(
    http: &reqwest::Client,
    base: &str,
    app: &Arc<App>,
    token: &str,
    concurrency: &[usize],
    seconds: Duration,
    rounds: u32,
) -> anyhow::Result<()> {
    let (Some(sandbox), Some(x)) = (&app.sandbox, &app.x) else {
        bail!("the X calls need the demo's simulated X");
    };
    sandbox.set_rate_limits(false);
    let users = app.store.list_users().await?;
    let user = users.first().context("nobody signed in")?;
    let x_token = x.vault().access(&user.user.id).await?.token;
    let direct: MakeRequest = {
        let http = http.clone();
        let url = format!("{base}{}/2/users/me", xmcp_server::config::SANDBOX_PATH);
        let auth = format!("Bearer {}", secrecy::ExposeSecret::expose_secret(&x_token));
        Arc::new(move |_| http.get(&url).header("authorization", &auth))
    };
    let through = tool_call(
        http,
        &format!("{base}/mcp"),
        token,
        None,
        "getUsersMe",
        json!({}),
    );
    const ME: &[u8] = b"\"username\"";
    // Warm up both.
    measure(&through, ME, 2, Duration::from_millis(300)).await;
    measure(&direct, ME, 2, Duration::from_millis(300)).await;
    let audited_before = audit_rows(app).await?;
    println!();
    println!(
        "calls that reach X: tools/call getUsersMe through xmcp (caps, audit) vs GET /2/users/me on the simulated X directly, stateless JSON"
    );
    println!(
        "{:>11} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12} {:>12} {:>8}",
        "concurrency",
        "xmcp req/s",
        "p50 ms",
        "p99 ms",
        "direct req/s",
        "direct p50",
        "direct p99",
        "added p50 ms",
        "errors"
    );
    let slice = seconds / rounds.max(1);
    let mut succeeded = 0;
    for &c in concurrency {
        let (mut via, mut bare) = (Level::default(), Level::default());
        for _ in 0..rounds.max(1) {
            via.add(measure(&through, ME, c, slice).await);
            bare.add(measure(&direct, ME, c, slice).await);
        }
        succeeded += via.latencies.len();
        let (p50, p99) = (via.quantile(0.5), via.quantile(0.99));
        let (d50, d99) = (bare.quantile(0.5), bare.quantile(0.99));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:>11} {:>10.0} {:>10.3} {:>10.3} {:>12.0} {:>12.3} {:>12.3} {:>12.3} {:>8}",
            c,
            via.rate(),
            ms(p50),
            ms(p99),
            bare.rate(),
            ms(d50),
            ms(d99),
            ms(p50) - ms(d50),
            via.errors + bare.errors,
        );
        for (name, l) in [("xmcp", &via), ("direct", &bare)] {
            if let Some(s) = &l.sample {
                println!(
                    "  {name}, first error: {}",
                    s.chars().take(300).collect::<String>()
                );
            }
        }
    }
    // Every call that reached X left one audit row (the warm-up's are
    // counted before).
    let audited = audit_rows(app).await? - audited_before;
    println!("audit rows written: {audited} for {succeeded} successful calls through xmcp");
    Ok(())
}

/// Calls to X in the audit trail so far.
async fn audit_rows(app: &App) -> anyhow::Result<usize> {
    Ok(app
        .store
        .usage(None, 0, i64::MAX)
        .await?
        .iter()
        .map(|r| r.calls as usize)
        .sum())
}

/// What the ledger's writes cost on the hot path of a call to X: hold the
/// estimate against the caps, then settle it and write the audit row
/// (`Ledger::hold` and `Ledger::settle`, as a tool call makes them), on
/// the benchmark's store, alone and with concurrent callers on one user.
#[allow(clippy::print_stdout)]
async fn ledger_writes(app: &Arc<App>, concurrency: &[usize]) {
    let ledger = xmcp_server::compose::ledger(&app.config, &app.store, &app.keyring, &app.clock);
    let principal = xmcp_auth::Principal {
        user_id: "bench-user".into(),
        subject: "x:bench".into(),
        username: None,
        client_id: "bench-client".into(),
        scopes: vec![],
        grant_id: "bench-grant".into(),
        expires_at: i64::MAX,
        resource: None,
    };
    let call = xmcp_server::mcp::ledger::UpstreamCall {
        method: "GET".into(),
        path: "/2/users/me".into(),
        status: 200,
        transaction_id: Some("bench".into()),
        cost: 10_000,
    };
    println!();
    println!("ledger writes per call to X (hold before; settle and audit after):");
    const CALLS: usize = 400;
    for &c in concurrency {
        let (ledger, principal, call) = (ledger.clone(), Arc::new(principal.clone()), call.clone());
        let started = Instant::now();
        let workers: Vec<_> = (0..c)
            .map(|_| {
                let (ledger, principal, call) = (ledger.clone(), principal.clone(), call.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    for _ in 0..CALLS.div_ceil(c) {
                        let t = Instant::now();
                        let Ok(hold) = ledger.hold(&principal, 10_000).await else {
                            continue;
                        };
                        let mut response = rmcp::model::CallToolResponse::from(
                            rmcp::model::CallToolResult::success(vec![]),
                        );
                        ledger
                            .settle(
                                hold,
                                &principal,
                                "getUsersMe",
                                std::slice::from_ref(&call),
                                &mut response,
                            )
                            .await;
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut level = Level::default();
        for w in workers {
            if let Ok(l) = w.await {
                level.latencies.extend(l);
            }
        }
        level.elapsed = started.elapsed();
        let (p50, p99) = (level.quantile(0.5), level.quantile(0.99));
        println!(
            "  concurrency {c:>3}: {} calls, p50 {:.3} ms, p99 {:.3} ms, {:.0} calls/s",
            level.latencies.len(),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            level.rate()
        );
    }
}

/// What a model reads before its first call: `tools/list` of this server
/// for the default listing, everything, and read-only.
#[allow(clippy::print_stdout)]
fn tools_list(app: &App) {
    println!();
    println!(
        "tools/list of this server (compact JSON; ~tokens: bytes/{}):",
        xmcp_server::mcp::stats::BYTES_PER_TOKEN
    );
    for s in xmcp_server::mcp::stats::table(&app.registry)
        .into_iter()
        .take(3)
    {
        let name = if s.selection.is_empty() {
            "/mcp (default)".to_owned()
        } else {
            format!("/mcp{}", s.selection)
        };
        println!(
            "  {name:<18} {:>4} tools {:>8} bytes {:>7} ~tokens",
            s.tools,
            s.bytes,
            s.tokens()
        );
    }
}

/// Sessions opened for [`sessions_memory`] on each target.
const SESSIONS: usize = 1000;

/// What open sessions keep in memory: [`SESSIONS`] sessions opened on xmcp,
/// then on the SDK's own session mode, and how much this process's RSS grew
/// with each. The clients open no `GET` stream, which would add a
/// connection and a task per session on the SDK.
#[allow(clippy::print_stdout)]
async fn sessions_memory(
    http: &reqwest::Client,
    base: &str,
    sdk: Option<&str>,
    token: &str,
) -> anyhow::Result<()> {
    let mut line = format!("memory of {SESSIONS} open sessions:");
    for (name, base) in [("xmcp", Some(base)), ("sdk", sdk)] {
        let Some(base) = base else { continue };
        let before = rss_mib();
        for _ in 0..SESSIONS {
            open_session(http, base, token).await?;
        }
        if let (Some(before), Some(after)) = (before, rss_mib()) {
            let grown = after - before;
            line += &format!(
                " {name} {grown:+.1} MiB ({:+.1} KiB each);",
                grown * 1024.0 / SESSIONS as f64
            );
        }
    }
    println!("{}", line.trim_end_matches(';'));
    Ok(())
}

/// The token endpoint: refresh grants (each worker rotates its own chain)
/// and code grants (codes minted straight into the store, so only `/token`
/// is timed).
#[allow(clippy::print_stdout)]
async fn token_endpoint(
    http: &reqwest::Client,
    base: &str,
    app: &Arc<App>,
    duration: Duration,
) -> anyhow::Result<()> {
    let reg: Value = http
        .post(format!("{base}/register"))
        .json(&json!({"redirect_uris": ["http://127.0.0.1/callback"], "token_endpoint_auth_method": "none", "client_name": "xmcp bench"}))
        .send()
        .await?
        .json()
        .await?;
    let client_id = reg["client_id"]
        .as_str()
        .context("registration failed")?
        .to_owned();
    let user = app
        .store
        .upsert_user(
            &xmcp_store::UserIdentity {
                subject: "bench:user".into(),
                username: Some("bench".into()),
                display_name: None,
            },
            app.clock.now(),
        )
        .await?;
    let (verifier, challenge) = xmcp_crypto::pkce_pair();
    let redirect = "http://127.0.0.1:1/callback";
    let resource = format!("{base}/mcp");
    let mint_code = || {
        let code = xmcp_crypto::token::NewToken::generate(
            xmcp_crypto::token::TokenKind::AuthorizationCode,
        );
        let now = app.clock.now();
        let record = xmcp_store::AuthorizationCode {
            hash: code.hash().clone(),
            client_id: client_id.clone(),
            redirect_uri: redirect.into(),
            redirect_uri_explicit: true,
            code_challenge: challenge.clone(),
            resource: resource.clone(),
            scope: "users.read".into(),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + 600,
            used_at: None,
        };
        (code.plaintext().to_owned(), record)
    };
    println!(
        "token endpoint, {} s per grant, concurrency 16:",
        duration.as_secs()
    );
    for grant in ["authorization_code", "refresh_token"] {
        let workers = 16;
        // Each worker gets its own codes (or a refresh chain to rotate).
        let mut seeds = Vec::new();
        for _ in 0..workers {
            let (code, record) = mint_code();
            app.store.insert_code(&record).await?;
            seeds.push(code);
        }
        if grant == "refresh_token" {
            for seed in &mut seeds {
                let t: Value = http
                    .post(format!("{base}/token"))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", seed.as_str()),
                        ("code_verifier", &verifier),
                        ("client_id", &client_id),
                        ("redirect_uri", redirect),
                    ])
                    .send()
                    .await?
                    .json()
                    .await?;
                *seed = t["refresh_token"]
                    .as_str()
                    .context("no refresh token")?
                    .to_owned();
            }
        }
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for seed in seeds {
            let (http, base, client_id, verifier) = (
                http.clone(),
                base.to_owned(),
                client_id.clone(),
                verifier.clone(),
            );
            let app = app.clone();
            let (challenge, resource, user_id) =
                (challenge.clone(), resource.clone(), user.id.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let mut refresh = seed;
                while Instant::now() < deadline {
                    let code;
                    let form: Vec<(&str, &str)> = if grant == "refresh_token" {
                        vec![
                            ("grant_type", grant),
                            ("refresh_token", &refresh),
                            ("client_id", &client_id),
                        ]
                    } else {
                        // A fresh code per request, minted outside the timing.
                        let c = xmcp_crypto::token::NewToken::generate(
                            xmcp_crypto::token::TokenKind::AuthorizationCode,
                        );
                        let now = app.clock.now();
                        let ok = app
                            .store
                            .insert_code(&xmcp_store::AuthorizationCode {
                                hash: c.hash().clone(),
                                client_id: client_id.clone(),
                                redirect_uri: redirect.into(),
                                redirect_uri_explicit: true,
                                code_challenge: challenge.clone(),
                                resource: resource.clone(),
                                scope: "users.read".into(),
                                user_id: user_id.clone(),
                                created_at: now,
                                expires_at: now + 600,
                                used_at: None,
                            })
                            .await;
                        if ok.is_err() {
                            errors += 1;
                            continue;
                        }
                        code = c.plaintext().to_owned();
                        vec![
                            ("grant_type", grant),
                            ("code", &code),
                            ("code_verifier", &verifier),
                            ("client_id", &client_id),
                            ("redirect_uri", redirect),
                        ]
                    };
                    let t = Instant::now();
                    match http.post(format!("{base}/token")).form(&form).send().await {
                        Ok(r) if r.status().is_success() => {
                            let body: Value = r.json().await.unwrap_or_default();
                            lat.push(t.elapsed());
                            if let Some(next) = body["refresh_token"].as_str() {
                                refresh = next.to_owned();
                            }
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await?;
            all.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed();
        all.sort();
        let pct = |p: f64| {
            all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "  {grant:<18} {:>8.0} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {errors}",
            all.len() as f64 / elapsed.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms_are_read_as_a_browser_submits_them() {
        let html = r#"<form method="post" action="/consent"><input type="hidden" name="request_id" value="a&amp;b">
            <input type=radio name="user_id" value="1" checked> <input type=radio name="user_id" value="2">
            <input type=checkbox name="grant" value="tweet.read" checked><input name="username">
            <button type=submit name=action value=allow>Go</button><button name=action value=deny>No</button></form>"#;
        let (action, fields) = super::form_as_served(html).unwrap();
        assert_eq!(action, "/consent");
        let f: Vec<(&str, &str)> = fields
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            f,
            [
                ("request_id", "a&b"),
                ("user_id", "1"),
                ("grant", "tweet.read"),
                ("action", "allow")
            ]
        );
    }
}
