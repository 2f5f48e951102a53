//! Sizes and start-up: `tools/list`, memory per stateful session, and
//! `xmcp stdio`'s cold start.

use super::*;

/// Resident memory of this process (Linux), in MiB.
pub(super) fn rss_mib() -> Option<f64> {
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

/// `xmcp stdio` with `doc`: spawn, initialize, tools/list, time to answer.
#[allow(clippy::print_stdout)]
pub(super) async fn stdio_cold_start(doc: &std::path::Path, runs: usize) -> anyhow::Result<()> {
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

/// What a model reads before its first call: `tools/list` of this server
/// for the default listing, everything, and read-only.
#[allow(clippy::print_stdout)]
pub(super) fn tools_list(app: &App) {
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
pub(super) const SESSIONS: usize = 1000;

/// What open sessions keep in memory: [`SESSIONS`] sessions opened on xmcp,
/// then on the SDK's own session mode, and how much this process's RSS grew
/// with each. The clients open no `GET` stream, which would add a
/// connection and a task per session on the SDK.
#[allow(clippy::print_stdout)]
pub(super) async fn sessions_memory(
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
