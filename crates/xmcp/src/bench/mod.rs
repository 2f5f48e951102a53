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

mod oauth;
mod references;
mod sizes;
mod upstream;

use anyhow::{Context, bail};
use oauth::*;
use references::*;
use serde_json::{Value, json};
use sizes::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use upstream::*;
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
    let mut settings = Settings::default();
    settings.x.demo = Some(true);
    settings.server.host = Some(local.ip());
    settings.server.port = Some(local.port());
    settings.server.public_url = Some(base.clone());
    settings.store.data_dir = Some(dir.path().to_path_buf());
    settings.store.database_url = args.database_url.clone();
    settings.keys.encryption_key = Some(xmcp_server::keys::new_data_key()?.export());
    settings.server.mcp_stateful = Some(args.stateful);
    settings.auth.access_token_format = jwt.then(|| "jwt".to_owned());
    // The benchmark is one client address hammering /token.
    let limit = if args.rate_limits { UNREACHED_LIMIT } else { 0 };
    settings.limits.rate_limit_per_ip = Some(limit);
    settings.limits.rate_limit_per_client = Some(limit);
    settings.log.log = Some(args.log.clone());
    // Caps on, at a height no run reaches: the X calls pay for holding
    // and settling spend as a deployment does.
    settings.tools.spend_cap_user = Some(BENCH_CAP.into());
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
