//! `xmcp admin`: operator commands on the store (any backend): list and
//! revoke users, clients and grants, list MCP sessions, show what calls to
//! X cost and the audit trail, purge expired rows, back up SQLite.

use crate::settings::StoreArgs;
use clap::{Args, Subcommand};
use std::io::Write;

#[derive(Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON (for the list commands).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Users, with their live grants and X sign-in state.
    Users,
    /// Dynamically registered clients.
    Clients,
    /// Live grants (one per user and client authorization).
    Grants {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Open stateful MCP sessions, with the client that opened each.
    Sessions {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete a user and everything of theirs (grants, tokens, X tokens,
    /// sessions).
    RevokeUser { user_id: String },
    /// Revoke every grant of a client and delete its registration.
    RevokeClient { client_id: String },
    /// Revoke one grant and every token issued under it.
    RevokeGrant { grant_id: String },
    /// What calls to X cost on one UTC day, by user, client and tool.
    Usage {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// The day, YYYY-MM-DD (UTC; default: today).
        #[arg(long)]
        day: Option<String>,
    },
    /// The audit trail: every call to X, newest first.
    Audit {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// From this time: YYYY-MM-DD, an RFC 3339 time or Unix seconds
        /// (default: the last 24 hours).
        #[arg(long)]
        since: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Rows per table.
    Stats,
    /// Delete expired rows now (the server also does it periodically).
    Purge,
    /// Copy the SQLite database, consistently, while the server runs.
    Backup {
        /// The new file to write.
        path: std::path::PathBuf,
    },
}

/// What a session's `initialize` says of its client: `clientInfo` (name
/// and version, as the client reports them) and the protocol version.
fn session_client(init_params: &str) -> (serde_json::Value, serde_json::Value) {
    let params: serde_json::Value = serde_json::from_str(init_params).unwrap_or_default();
    (
        params["clientInfo"].clone(),
        params["protocolVersion"].clone(),
    )
}

/// A client's self-reported name, version or protocol version, for a
/// terminal: any user with a token chooses it, so one with control
/// characters (which could rewrite the operator's screen) or too long is
/// not printed.
fn reported(value: &serde_json::Value) -> String {
    match value.as_str().map(xmcp_auth::registration::clean_name) {
        Some(Ok(text)) if !text.is_empty() => text,
        Some(Err(_)) => "(not shown)".into(),
        _ => "-".into(),
    }
}

/// The first second of a UTC day given as `YYYY-MM-DD`.
fn day_start(day: &str) -> anyhow::Result<i64> {
    let date = chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("`{day}` is not a day: write it YYYY-MM-DD"))?;
    Ok(date
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp()))
}

/// A time given as `YYYY-MM-DD`, RFC 3339 or Unix seconds.
fn point_in_time(t: &str) -> anyhow::Result<i64> {
    if let Ok(unix) = t.trim().parse::<i64>() {
        return Ok(unix);
    }
    if let Ok(when) = chrono::DateTime::parse_from_rfc3339(t.trim()) {
        return Ok(when.timestamp());
    }
    day_start(t).map_err(|_| {
        anyhow::anyhow!("`{t}` is not a time: write YYYY-MM-DD, an RFC 3339 time or Unix seconds")
    })
}

/// Unix seconds as an RFC 3339 UTC time.
fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(
        || t.to_string(),
        |d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

fn usd(micros: i64) -> f64 {
    micros as f64 / 1_000_000.0
}

fn time(t: i64) -> String {
    // Seconds since the epoch, as the store keeps them: unambiguous and sortable.
    t.to_string()
}

#[allow(clippy::print_stdout)]
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let config = args.store.config()?;
    let store = xmcp_server::compose::open_store(
        &config,
        &config.database_url,
        xmcp_server::compose::COMMAND_CONNECTIONS,
    )
    .await?;
    let now = xmcp_server::app::system_clock().now();
    let mut out = std::io::stdout().lock();
    match args.command {
        AdminCommand::Users => {
            let users = store.list_users().await?;
            if args.json {
                let v: Vec<_> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "id": u.user.id, "subject": u.user.subject, "username": u.user.username,
                            "name": u.user.display_name, "created_at": u.user.created_at,
                            "live_grants": u.grants, "upstream": u.upstream_provider,
                            "upstream_expires_at": u.upstream_expires_at,
                            "reauth_required": u.reauth_required,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "{} user(s)", users.len())?;
                for u in users {
                    writeln!(
                        out,
                        "{}  {:<24} @{:<16} grants={} x={}{}",
                        u.user.id,
                        u.user.subject,
                        u.user.username.as_deref().unwrap_or("-"),
                        u.grants,
                        u.upstream_provider.as_deref().unwrap_or("none"),
                        if u.reauth_required {
                            " (must sign in again)"
                        } else {
                            ""
                        }
                    )?;
                }
            }
        }
        AdminCommand::Clients => {
            let clients = store.list_clients().await?;
            if args.json {
                let v: Vec<_> = clients
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "client_id": c.client_id, "confidential": c.secret_hash.is_some(),
                            "metadata": c.metadata, "created_at": c.created_at,
                            "expires_at": c.expires_at,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "{} registered client(s)", clients.len())?;
                for c in clients {
                    writeln!(
                        out,
                        "{}  {:<30} created {}{}",
                        c.client_id,
                        c.metadata["client_name"].as_str().unwrap_or("(no name)"),
                        time(c.created_at),
                        if c.expires_at.is_some() {
                            " (never used)"
                        } else {
                            ""
                        }
                    )?;
                }
            }
        }
        AdminCommand::Grants { user } => {
            let grants = store.list_grants(user.as_deref()).await?;
            if args.json {
                let v: Vec<_> = grants
                    .iter()
                    .map(|g| {
                        serde_json::json!({
                            "id": g.id, "user_id": g.user_id, "client_id": g.client_id,
                            "scope": g.scope, "resource": g.resource, "created_at": g.created_at,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "{} live grant(s)", grants.len())?;
                for g in grants {
                    writeln!(
                        out,
                        "{}  user={} client={} scope=\"{}\"",
                        g.id, g.user_id, g.client_id, g.scope
                    )?;
                }
            }
        }
        AdminCommand::Sessions { user } => {
            let sessions = store.list_mcp_sessions(user.as_deref(), now).await?;
            if args.json {
                let v: Vec<_> = sessions
                    .iter()
                    .map(|s| {
                        let (client, protocol) = session_client(&s.init_params);
                        serde_json::json!({
                            "user_id": s.user_id, "client": client,
                            "protocol_version": protocol, "created_at": s.created_at,
                            "expires_at": s.expires_at,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "{} open session(s)", sessions.len())?;
                for s in sessions {
                    let (client, protocol) = session_client(&s.init_params);
                    writeln!(
                        out,
                        "user={} client=\"{} {}\" protocol={} created {} expires {}",
                        s.user_id,
                        reported(&client["name"]),
                        reported(&client["version"]),
                        reported(&protocol),
                        time(s.created_at),
                        time(s.expires_at),
                    )?;
                }
            }
        }
        AdminCommand::RevokeUser { user_id } => {
            if !store.delete_user(&user_id).await? {
                anyhow::bail!("no user {user_id} (see `xmcp admin users`)");
            }
            writeln!(
                out,
                "deleted user {user_id} with their grants, tokens and X tokens"
            )?;
        }
        AdminCommand::RevokeClient { client_id } => {
            let (deleted, revoked) = store.delete_client(&client_id, now).await?;
            if !deleted && revoked == 0 {
                anyhow::bail!("no registered client or live grant for {client_id}");
            }
            writeln!(
                out,
                "revoked {revoked} grant(s) of {client_id}{}",
                if deleted {
                    " and deleted its registration"
                } else {
                    " (not a registered client: static and metadata-document clients live in configuration)"
                }
            )?;
        }
        AdminCommand::RevokeGrant { grant_id } => {
            match store.get_grant(&grant_id).await? {
                Some(g) if g.revoked_at.is_none() => {}
                _ => anyhow::bail!("no live grant {grant_id} (see `xmcp admin grants`)"),
            }
            store.revoke_grant(&grant_id, now).await?;
            writeln!(out, "revoked grant {grant_id} and its tokens")?;
        }
        AdminCommand::Usage { user, day } => {
            let from = match &day {
                Some(d) => day_start(d)?,
                None => now.div_euclid(86_400) * 86_400,
            };
            let rows = store.usage(user.as_deref(), from, from + 86_400).await?;
            let total: i64 = rows.iter().map(|r| r.cost).sum();
            let calls: i64 = rows.iter().map(|r| r.calls).sum();
            let day = rfc3339(from)[..10].to_owned();
            if args.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "user_id": r.user_id, "client_id": r.client_id, "tool": r.tool,
                            "calls": r.calls, "cost_usd": usd(r.cost),
                        })
                    })
                    .collect();
                let out_json = serde_json::json!({
                    "day": day, "calls": calls, "cost_usd": usd(total), "rows": v,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&out_json)?)?;
            } else {
                writeln!(
                    out,
                    "{day} (UTC): {calls} call(s) to X, {}",
                    xmcp_openapi::prices::dollars(total)
                )?;
                for r in rows {
                    writeln!(
                        out,
                        "  user={} client={} {:<40} {:>5} call(s) {:>10}",
                        r.user_id,
                        r.client_id,
                        r.tool,
                        r.calls,
                        xmcp_openapi::prices::dollars(r.cost)
                    )?;
                }
            }
        }
        AdminCommand::Audit { user, since, limit } => {
            let since = match &since {
                Some(t) => point_in_time(t)?,
                None => now - 86_400,
            };
            let entries = store.list_audit(user.as_deref(), since, limit).await?;
            if args.json {
                let v: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "at": rfc3339(e.at), "user_id": e.user_id, "client_id": e.client_id,
                            "tool": e.tool, "method": e.method, "path": e.path,
                            "status": e.status, "x_transaction_id": e.transaction_id,
                            "cost_usd": usd(e.cost),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(
                    out,
                    "{} call(s) to X since {}",
                    entries.len(),
                    rfc3339(since)
                )?;
                for e in entries {
                    writeln!(
                        out,
                        "{} user={} client={} {} {} {} -> {} tx={} {}",
                        rfc3339(e.at),
                        e.user_id,
                        e.client_id,
                        e.tool,
                        e.method,
                        e.path,
                        e.status,
                        e.transaction_id.as_deref().unwrap_or("-"),
                        xmcp_openapi::prices::dollars(e.cost)
                    )?;
                }
            }
        }
        AdminCommand::Stats => {
            let counts = store.counts().await?;
            if args.json {
                let m: serde_json::Map<String, serde_json::Value> = counts
                    .iter()
                    .map(|(t, n)| ((*t).to_owned(), (*n).into()))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&m)?)?;
            } else {
                for (t, n) in counts {
                    writeln!(out, "{t:<24} {n}")?;
                }
            }
        }
        AdminCommand::Purge => {
            let r = store.sweep(now).await?;
            writeln!(
                out,
                "deleted {} expired row(s): {} pending, {} codes, {} access tokens, {} refresh tokens, {} grants, {} clients, {} device authorizations, {} MCP sessions, {} rate-limit counters, {} audit entries, spend counters and idempotency keys",
                r.total(),
                r.pending,
                r.codes,
                r.access_tokens,
                r.refresh_tokens,
                r.grants,
                r.clients,
                r.devices,
                r.mcp_sessions,
                r.rate_limits,
                r.usage
            )?;
        }
        AdminCommand::Backup { path } => {
            if path.exists() {
                anyhow::bail!("{} exists; give a new file", path.display());
            }
            let p = path
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("the backup path is not UTF-8"))?;
            store.backup(p).await?;
            writeln!(
                out,
                "backed up to {} (keep the encryption key too: without it the X tokens in the copy cannot be opened)",
                path.display()
            )?;
        }
    }
    Ok(())
}
