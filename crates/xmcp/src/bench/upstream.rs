//! What xmcp adds to a call that reaches X, and what the ledger's
//! writes cost.

use super::*;

/// The per-user daily cap of the benchmark's server, in dollars: on, and
/// never reached.
pub(super) const BENCH_CAP: &str = "1000000";

/// What xmcp adds to a call that reaches X: `tools/call getUsersMe` through
/// xmcp (bearer check, scope check, spend hold, X token from the store, the
/// call, settle, audit) against `GET /2/users/me` on the same simulated X
/// with the user's X token, taking turns in the same run. The simulated X's
/// rate limits are off, so both sides run as fast as they can.
#[allow(clippy::print_stdout)]
pub(super) async fn x_calls(
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
pub(super) async fn audit_rows(app: &App) -> anyhow::Result<usize> {
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
pub(super) async fn ledger_writes(app: &Arc<App>, concurrency: &[usize]) {
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
