//! `xmcp admin`: operator commands on the store (any backend): list and
//! revoke users, clients and grants, list MCP sessions, purge expired rows,
//! back up SQLite.

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

fn time(t: i64) -> String {
    // Seconds since the epoch, as the store keeps them: unambiguous and sortable.
    t.to_string()
}

#[allow(clippy::print_stdout)]
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let config = args.store.config()?;
    let store = xmcp_store::connect(&config.database_url, 2)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
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
                "deleted {} expired row(s): {} pending, {} codes, {} access tokens, {} refresh tokens, {} grants, {} clients, {} device authorizations, {} MCP sessions, {} rate-limit counters",
                r.total(),
                r.pending,
                r.codes,
                r.access_tokens,
                r.refresh_tokens,
                r.grants,
                r.clients,
                r.devices,
                r.mcp_sessions,
                r.rate_limits
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
