//! The `xmcp` command. Parses arguments and calls into `xmcp-server`; every
//! command is one `run_*` function.

mod admin;
mod bench;
mod bridge;
mod local;
mod settings;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret;
use settings::ServeArgs;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use xmcp_server::App;
use xmcp_server::compose;

/// jemalloc rather than glibc's malloc. Under load, glibc's arenas
/// contend: tokio moves tasks between worker threads and sqlx hands rows
/// across its database thread, so memory allocated on one thread is freed on
/// another, and a profile of `tools/call` showed a fifth of the CPU in
/// malloc and free, much of it waiting on arena locks. `xmcp bench`: about
/// +40% requests per second at concurrency 16 and +60% at 64, for about
/// 1 MiB more idle memory (mimalloc was as fast but cost 8 MiB).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `xmcp --version`: this release, and the version of X's OpenAPI document
/// its tools were last checked against.
fn version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{} (tools checked against X API OpenAPI {})",
            env!("CARGO_PKG_VERSION"),
            xmcp_openapi::X_OPENAPI_CHECKED
        )
    });
    &VERSION
}

// No `Debug` on the argument types: they hold the raw encryption key and a
// database URL that may carry a password.
#[derive(Parser)]
#[command(
    name = "xmcp",
    version = version(),
    about = "The X API as an MCP server, with a built-in OAuth 2.1 authorization server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (OAuth authorization server + MCP endpoint).
    Serve(ServeArgs),
    /// Run the simulated X (OAuth 2.0 + API v2 subset) on its own, e.g. as
    /// the upstream of a normally configured `xmcp serve`.
    Sandbox(SandboxArgs),
    /// Validate the configuration exactly as `serve` would, then exit.
    CheckConfig(ServeArgs),
    /// Print a new random encryption key (`id:base64url`).
    GenKey {
        /// Key id (letters, digits, `-`, `_`); random if omitted.
        #[arg(long)]
        id: Option<String>,
    },
    /// Re-encrypt everything sealed with the encryption key (X tokens, JWT
    /// signing keys, bridge credentials, in-flight sign-ins) under the
    /// active key.
    ///
    /// With a configured key: deploy the new key as XMCP_ENCRYPTION_KEY and
    /// the old one in XMCP_PREVIOUS_ENCRYPTION_KEYS on every instance, run
    /// this once, then remove the previous key. With the local key file: stop
    /// the server, run this; a new key is generated and the file updated.
    RotateKey(ServeArgs),
    /// Make a new JWT signing key the active one (older keys stay published
    /// in /jwks.json until tokens they signed have expired).
    RotateSigningKey(ServeArgs),
    /// Hash a password (read from stdin) for a `[[users]]` entry.
    HashPassword,
    /// Measure authenticated tools/call throughput and latency on this machine.
    Bench(bench::BenchArgs),
    /// List the tools an X OpenAPI document gives, and the operations that
    /// are not tools with the reason.
    Tools(ToolsArgs),
    /// Sign in to X in the browser (loopback callback) for `xmcp stdio`.
    Login(local::LoginArgs),
    /// Revoke the local X sign-in at X and delete its tokens.
    Logout(local::LocalArgs),
    /// Show who is signed in locally, the granted scopes and token expiry.
    Status(local::StatusArgs),
    /// Serve MCP over stdio, acting for the person signed in with `xmcp login`.
    Stdio(local::LocalArgs),
    /// Serve MCP over stdio by forwarding to a remote MCP server, doing its
    /// OAuth (for clients that cannot).
    Bridge(bridge::BridgeArgs),
    /// Operator commands: list and revoke users, clients and grants; purge
    /// expired rows; back up the SQLite store.
    Admin(admin::AdminArgs),
}

#[derive(Args)]
struct ToolsArgs {
    /// The OpenAPI document (a file).
    #[arg(long, env = "XMCP_X_OPENAPI")]
    openapi: PathBuf,
    /// Only these operations (operationIds or "METHOD /path", globs allowed).
    #[arg(long, env = "XMCP_TOOLS_ALLOW", value_delimiter = ',')]
    allow: Vec<String>,
    /// Never these operations.
    #[arg(long, env = "XMCP_TOOLS_DENY", value_delimiter = ',')]
    deny: Vec<String>,
    /// Only operations with these tags.
    #[arg(long, env = "XMCP_TOOLS_TAGS", value_delimiter = ',')]
    tags: Vec<String>,
    /// As if an app bearer token were configured (app-only operations become tools).
    #[arg(long)]
    app_token: bool,
    /// X's prices, a TOML file like the built-in table (as the server's x_prices_file).
    #[arg(long, env = "XMCP_X_PRICES_FILE")]
    prices: Option<PathBuf>,
    /// Toolsets listed by default (as the server's tools_toolsets).
    #[arg(long, env = "XMCP_TOOLS_TOOLSETS", value_delimiter = ',')]
    toolsets_default: Vec<String>,
    /// Print the MCP tool definitions of every operation as JSON instead of a table.
    #[arg(long, conflicts_with_all = ["stats", "toolsets"])]
    json: bool,
    /// Print what tools/list weighs for the default selection, all,
    /// read-only and each toolset: tools, bytes, estimated tokens, the
    /// largest input schema.
    #[arg(long, conflicts_with = "toolsets")]
    stats: bool,
    /// List the toolsets with their operations and sizes.
    #[arg(long)]
    toolsets: bool,
}

/// The simulated X on its own (`xmcp sandbox`).
#[derive(Args)]
struct SandboxArgs {
    #[arg(long, env = "XMCP_SANDBOX_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, env = "XMCP_SANDBOX_PORT", default_value_t = 8001)]
    port: u16,
    /// The OAuth client id xmcp uses (its XMCP_X_CLIENT_ID).
    #[arg(long, env = "XMCP_SANDBOX_CLIENT_ID", default_value = "xmcp-sandbox")]
    client_id: String,
    /// The client's secret (its XMCP_X_CLIENT_SECRET); omit for a public client.
    #[arg(long, env = "XMCP_SANDBOX_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Callback URLs the client may use (repeatable).
    #[arg(
        long = "redirect-uri",
        env = "XMCP_SANDBOX_REDIRECT_URIS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8000/upstream/callback"
    )]
    redirect_uris: Vec<String>,
    /// Access token lifetime in seconds (X: 7200).
    #[arg(long, env = "XMCP_SANDBOX_ACCESS_TOKEN_TTL", default_value_t = 7200)]
    access_token_ttl: i64,
    /// An app-only bearer token to accept on app-callable endpoints.
    #[arg(long, env = "XMCP_SANDBOX_APP_BEARER_TOKEN", hide_env_values = true)]
    app_bearer_token: Option<String>,
    /// A fault to inject, `ENDPOINT=WHAT[*TIMES]` (repeatable), e.g.
    /// "GET /2/users/me=503*2", "POST /2/tweets=429:900", "*=slow:250",
    /// "GET /2/tweets/search/recent=not-enrolled",
    /// "POST /2/oauth2/token=refuse-refresh".
    #[arg(long = "fault")]
    faults: Vec<xmcp_sandbox::Fault>,
    /// Bill the app pay-per-use with this many dollars of credits (X's
    /// prices); once spent, calls answer 402 CreditsDepleted. Off by default.
    #[arg(long, env = "XMCP_SANDBOX_CREDITS")]
    credits: Option<f64>,
    /// Turn X's per-endpoint rate limits off (to benchmark what is in front).
    #[arg(long, env = "XMCP_SANDBOX_NO_RATE_LIMITS")]
    no_rate_limits: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => run_serve(args).await,
            Command::Sandbox(args) => run_sandbox(args).await,
            Command::CheckConfig(args) => run_check_config(args),
            Command::GenKey { id } => run_gen_key(id),
            Command::RotateKey(args) => run_rotate_key(args).await,
            Command::RotateSigningKey(args) => run_rotate_signing_key(args).await,
            Command::HashPassword => run_hash_password(),
            Command::Bench(args) => bench::run(args).await,
            Command::Login(args) => local::run_login(args).await,
            Command::Logout(args) => local::run_logout(args).await,
            Command::Status(args) => local::run_status(args).await,
            Command::Stdio(args) => local::run_stdio(args).await,
            Command::Bridge(args) => bridge::run_bridge(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Tools(args) => match run_tools(args) {
                // `xmcp tools | head` closed the pipe: not an error.
                Err(e)
                    if e.downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
                {
                    Ok(())
                }
                other => other,
            },
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

#[allow(clippy::print_stdout)]
fn run_tools(args: ToolsArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.openapi)
        .with_context(|| format!("cannot read {}", args.openapi.display()))?;
    let catalog = xmcp_openapi::load(
        &bytes,
        &xmcp_openapi::Options {
            allow: args.allow,
            deny: args.deny,
            tags: args.tags,
            app_token: args.app_token,
            reserved: xmcp_server::tools::BUILTIN_TOOLS.map(String::from).to_vec(),
        },
    )
    .with_context(|| {
        format!(
            "{} is not a usable OpenAPI document",
            args.openapi.display()
        )
    })?;
    let prices = match &args.prices {
        Some(path) => xmcp_openapi::prices::PriceTable::parse(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        )?,
        None => xmcp_openapi::prices::PriceTable::built_in(),
    };
    let pricing = xmcp_server::mcp::pricing::Pricing::new(&prices, &catalog);
    let mut out = std::io::stdout().lock();
    if args.json {
        let tools: Vec<_> = catalog
            .tools
            .iter()
            .map(|spec| xmcp_server::mcp::x::x_tool(spec, &pricing))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&tools)?)?;
        return Ok(());
    }
    if args.stats || args.toolsets {
        let toolsets = if args.toolsets_default.is_empty() {
            xmcp_server::config::DEFAULT_TOOLSETS
                .map(String::from)
                .to_vec()
        } else {
            args.toolsets_default
        };
        let uncovered: Vec<String> = pricing
            .uncovered(&catalog)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let registry = xmcp_server::mcp::stats::listing_registry(
            std::sync::Arc::new(catalog),
            &prices,
            xmcp_server::mcp::registry::RegistryConfig {
                toolsets,
                read_only: false,
                issuable: xmcp_x::scopes::names(),
                how_to_grant: xmcp_server::mcp::registry::GRANT_BY_REAUTHORIZING,
            },
        );
        return if args.stats {
            print_stats(&mut out, &registry)?;
            writeln!(
                out,
                "prices: {} (taken {}); operations no price covers: {}",
                prices.source,
                prices.taken,
                if uncovered.is_empty() {
                    "none".to_owned()
                } else {
                    uncovered.join(", ")
                }
            )?;
            Ok(())
        } else {
            print_toolsets(&mut out, &registry)
        };
    }
    let width = catalog
        .tools
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    for t in &catalog.tools {
        let who = if t.access.app_only() {
            "(as the app)".to_owned()
        } else {
            t.access.user_scopes.clone().unwrap_or_default().join(" ")
        };
        writeln!(
            out,
            "{:width$}  {:6} {}  {who}",
            t.name,
            t.method.as_str(),
            t.path
        )?;
    }
    writeln!(
        out,
        "\n{} tools from version {}; {} operations are not tools:",
        catalog.tools.len(),
        catalog.version,
        catalog.skipped.len()
    )?;
    for s in &catalog.skipped {
        writeln!(out, "  {}: {}", s.operation, s.reason)?;
    }
    for w in &catalog.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

/// `xmcp tools --stats`: what `tools/list` weighs per selection.
fn print_stats(
    out: &mut impl Write,
    registry: &xmcp_server::mcp::registry::Registry,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<28} {:>5} {:>9} {:>8} {:>7}  {:>14}  largest schema",
        "selection", "tools", "bytes", "~tokens", "_meta", "longest name"
    )?;
    for s in xmcp_server::mcp::stats::table(registry) {
        let name = if s.selection.is_empty() {
            "default (/mcp)".to_owned()
        } else {
            format!("/mcp{}", s.selection)
        };
        writeln!(
            out,
            "{name:<28} {:>5} {:>9} {:>8} {:>7}  {:>14}  {} ({})",
            s.tools,
            s.bytes,
            s.tokens(),
            s.meta_bytes,
            s.longest_name,
            s.largest_schema,
            s.largest_schema_tool
        )?;
    }
    writeln!(
        out,
        "
bytes: the tools/list result as compact JSON; ~tokens: bytes/{}",
        xmcp_server::mcp::stats::BYTES_PER_TOKEN
    )?;
    Ok(())
}

/// `xmcp tools --toolsets`: each toolset, its size and operations.
fn print_toolsets(
    out: &mut impl Write,
    registry: &xmcp_server::mcp::registry::Registry,
) -> anyhow::Result<()> {
    let sizes = xmcp_server::mcp::stats::table(registry);
    for (name, ops) in registry.toolsets() {
        let size = sizes
            .iter()
            .find(|s| s.selection == format!("/x/{name}"))
            .map_or(0, |s| s.bytes);
        writeln!(
            out,
            "{name} ({} operations, {size} bytes listed at /mcp/x/{name}): {}",
            ops.len(),
            xmcp_openapi::toolsets::description(name).unwrap_or("")
        )?;
        writeln!(out, "  {}", ops.join(", "))?;
    }
    Ok(())
}

#[allow(clippy::print_stderr)]
fn fail(e: anyhow::Error) -> std::process::ExitCode {
    eprintln!("xmcp: {e:#}");
    std::process::ExitCode::FAILURE
}

#[allow(clippy::print_stderr)]
async fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.config()?;
    xmcp_server::telemetry::init(config.log_format, &config.log);
    let listener = tokio::net::TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let local = listener.local_addr()?;
    config.port = local.port();
    let app = App::build(config, xmcp_server::app::system_clock()).await?;
    tracing::info!(address = %local, issuer = %app.config.auth.issuer, mcp = %app.config.mcp_url(), demo = app.config.demo, "xmcp is listening");
    if app.config.demo {
        eprintln!(
            "\nxmcp demo is running, with a simulated X at {issuer}/sandbox (no X account needed).\n\n  MCP endpoint: {mcp}\n\n  MCP Inspector: npx @modelcontextprotocol/inspector, transport \"Streamable HTTP\", URL {mcp}\n  Claude Code:   claude mcp add --transport http xmcp {mcp}\n  Any MCP client: add {mcp} as a remote server; it discovers the OAuth server,\n  you allow access on the consent page, then pick a demo account on the simulated X.\n\n  The simulated X keeps its users and posts in memory: after a restart, authorize again.\n",
            issuer = app.config.auth.issuer,
            mcp = app.config.mcp_url()
        );
    }
    let shutdown = CancellationToken::new();
    let timeout = std::time::Duration::from_secs(app.config.shutdown_timeout);
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        signal.cancel();
    });
    let server = xmcp_server::serve(app, listener, shutdown.clone());
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(timeout).await } => {
            tracing::warn!("in-flight requests did not finish in time; exiting");
            Ok(())
        }
    }
}

#[allow(clippy::print_stderr)]
async fn run_sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    xmcp_server::telemetry::init(xmcp_server::config::LogFormat::Text, "info");
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let local = listener.local_addr()?;
    let base = format!("http://{local}");
    let clock = xmcp_server::app::system_clock();
    let sandbox = xmcp_sandbox::Sandbox::new(
        xmcp_sandbox::SandboxConfig {
            clients: vec![xmcp_sandbox::SandboxClient {
                client_id: args.client_id.clone(),
                client_secret: args.client_secret.clone(),
                redirect_uris: args.redirect_uris.clone(),
            }],
            access_token_ttl: args.access_token_ttl,
            base_url: base.clone(),
            faults: args.faults,
            app_bearer_token: args.app_bearer_token,
            credits: args.credits.map(|usd| (usd * 1_000_000.0).round() as i64),
            rate_limits: !args.no_rate_limits,
        },
        std::sync::Arc::new(move || clock.now()),
    );
    eprintln!(
        "\nxmcp sandbox (a simulated X) is listening on {base}.\n\n  Point a server at it:\n    XMCP_X_CLIENT_ID={id} XMCP_X_CLIENT_SECRET=<the secret> \\\n    XMCP_X_AUTHORIZE_URL={base}/i/oauth2/authorize XMCP_X_TOKEN_URL={base}/2/oauth2/token \\\n    XMCP_X_REVOKE_URL={base}/2/oauth2/revoke XMCP_X_API_URL={base} xmcp serve\n\n  Allowed callbacks: {cb}\n  OpenAPI document: {base}/2/openapi.json   Faults: {base}/_sandbox/faults\n",
        id = args.client_id,
        cb = args.redirect_uris.join(", "),
    );
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
    });
    // Its test controls answer only this machine: they need the peer.
    let router = sandbox
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[allow(clippy::print_stdout)]
fn run_check_config(args: ServeArgs) -> anyhow::Result<()> {
    let c = args.config()?;
    println!("configuration is valid");
    println!("  issuer:        {}", c.auth.issuer);
    println!("  MCP endpoint:  {}", c.mcp_url());
    println!("  listen:        {}:{}", c.host, c.port);
    println!(
        "  database:      {}",
        xmcp_server::config::redacted_database_url(&c.database_url)
    );
    println!(
        "  sign-in:       {}",
        if c.demo {
            "demo accounts"
        } else {
            "local accounts"
        }
    );
    println!(
        "  registration:  dynamic {}, metadata documents {}, {} static client(s)",
        on_off(c.auth.registration_enabled),
        on_off(c.auth.cimd_enabled),
        c.auth.static_clients.len()
    );
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

#[allow(clippy::print_stdout)]
fn run_gen_key(id: Option<String>) -> anyhow::Result<()> {
    let key = match id {
        Some(id) => xmcp_crypto::envelope::DataKey::generate(id)?,
        None => xmcp_server::keys::new_data_key()?,
    };
    println!("{}", key.export().expose_secret());
    Ok(())
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn run_rotate_key(args: ServeArgs) -> anyhow::Result<()> {
    use xmcp_server::config::KeySource;
    let config = args.config()?;
    let store =
        compose::open_store(&config, &config.database_url, compose::COMMAND_CONNECTIONS).await?;
    let summary = |report: &xmcp_server::keys::ResealReport, active: &str| {
        format!(
            "re-encrypted {} row(s) ({} sealed value(s)) under key {active}; {} value(s) already used it",
            report.rows, report.resealed, report.current
        )
    };
    match &config.encryption_key {
        KeySource::Configured(_) => {
            let keyring = xmcp_server::keys::load_keyring(&config)?;
            let report = xmcp_server::keys::reseal_all(store.as_ref(), &keyring).await?;
            println!("{}", summary(&report, keyring.active_id()));
            let needed = left_behind(&report)?;
            if needed.is_empty() {
                println!(
                    "once every instance runs with this key, remove XMCP_PREVIOUS_ENCRYPTION_KEYS"
                );
            } else {
                anyhow::bail!(
                    "keep the previous key(s) {} in XMCP_PREVIOUS_ENCRYPTION_KEYS: values sealed under them could not be re-encrypted (see above)",
                    needed.join(", ")
                );
            }
        }
        KeySource::DataDirFile(path) => {
            let (old, mut previous) = xmcp_server::keys::read_key_file(path)?;
            let new = xmcp_server::keys::new_data_key()?;
            // Step 1: the new key becomes active, the old stays readable.
            let mut kept: Vec<&xmcp_crypto::envelope::DataKey> = vec![&new, &old];
            kept.extend(previous.iter());
            xmcp_server::keys::write_key_file(path, &kept)?;
            let old_id = old.id().to_owned();
            previous.insert(0, old);
            let (new_copy, _) = xmcp_server::keys::read_key_file(path)?;
            let keyring = xmcp_crypto::envelope::Keyring::new(new_copy, previous);
            // Step 2: re-seal. Step 3: drop the old keys, but for any still
            // needed to read what could not be re-sealed.
            let report = xmcp_server::keys::reseal_all(store.as_ref(), &keyring).await?;
            let needed = left_behind(&report)?;
            let (_, previous) = xmcp_server::keys::read_key_file(path)?;
            let mut kept = vec![&new];
            kept.extend(
                previous
                    .iter()
                    .filter(|k| needed.iter().any(|n| n == k.id())),
            );
            xmcp_server::keys::write_key_file(path, &kept)?;
            println!(
                "rotated {} from key {old_id} to {}: {}",
                path.display(),
                new.id(),
                summary(&report, new.id())
            );
            if !needed.is_empty() {
                anyhow::bail!(
                    "kept the previous key(s) {} in {}: values sealed under them could not be re-encrypted (see above)",
                    needed.join(", "),
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// Say what a rotation left as it was; the ids of the keys it still needs
/// (an error if some values were being rewritten on every pass).
#[allow(clippy::print_stderr)]
fn left_behind(report: &xmcp_server::keys::ResealReport) -> anyhow::Result<Vec<String>> {
    for u in &report.unreadable {
        eprintln!(
            "warning: {} was left as it was: {} (key {})",
            u.place,
            u.error,
            u.key_id.as_deref().unwrap_or("none")
        );
    }
    if report.busy > 0 {
        anyhow::bail!(
            "{} value(s) changed on every pass while being re-encrypted; run rotate-key again (the previous keys were kept)",
            report.busy
        );
    }
    Ok(report.keys_still_needed().into_iter().collect())
}

#[allow(clippy::print_stdout)]
async fn run_rotate_signing_key(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let clock = xmcp_server::app::system_clock();
    let (store, keyring) =
        compose::open_store_and_keys(&config, &config.database_url, compose::COMMAND_CONNECTIONS)
            .await?;
    let keys =
        xmcp_auth::jwt::JwtKeys::load(store, keyring, config.auth.access_token_ttl, clock.now())
            .await?;
    let kid = keys.rotate(clock.now()).await?;
    println!("signing key {kid} is now active; instances pick it up within a minute");
    Ok(())
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn run_hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    if atty_stdin() {
        eprint!("password: ");
        std::io::stderr().flush()?;
    }
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    println!("{}", xmcp_crypto::password::hash(password));
    Ok(())
}

fn atty_stdin() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
