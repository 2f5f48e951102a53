//! Stateful MCP sessions (`mcp_stateful`), kept in the store.
//!
//! The MCP revisions before 2026-07-28 let a server hand a client a session
//! id (`Mcp-Session-Id`) with its `initialize` answer; the client then names
//! it on every request and may end it with an HTTP `DELETE`. xmcp keeps no
//! per-session state in memory: every message is answered by the same
//! stateless dispatch as in stateless mode (the tools need nothing from the
//! handshake, and each request carries its protocol version in the
//! `MCP-Protocol-Version` header). What a session adds lives in the store,
//! so any instance serves any session, before and after a restart:
//!
//! - **Binding to a user** (MCP security best practices, "Session
//!   Hijacking"): a session belongs to the user whose token opened it. A
//!   request naming someone else's session, or one that ended, is answered
//!   404 exactly as an unknown session is, so a guessed or leaked id reveals
//!   nothing and is worth nothing.
//! - **Its end**: `DELETE` removes it, and an idle one expires
//!   ([`SESSION_IDLE_SECONDS`]). A user holds at most
//!   [`MAX_SESSIONS_PER_USER`]: opening another ends their oldest, so a
//!   token cannot fill the store with sessions.
//!
//! The guard in front of `/mcp` ([`crate::mcp::guard`]) opens, checks and ends
//! sessions. [`McpSessions::check`] reads the store, and then trusts what it
//! read for [`RECHECK_SECONDS`] (a read on every request cost a fifth of
//! stateful `tools/call` throughput). So a session ended on one instance is
//! refused there at once and by every other instance within
//! [`RECHECK_SECONDS`]. Who a session belongs to never changes, so the cache
//! can never hand a session to another user.
//!
//! rmcp's own session mode would keep a worker task and its channels in
//! memory for every session, pass each message through them, and keep the
//! client's `GET` stream open, although xmcp never sends a message the
//! client did not ask for. Without it, stateful `tools/call` throughput is
//! that of stateless mode (see the README's benchmarks), and the `GET`
//! stream is answered 405, which the MCP transport allows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use xmcp_auth::Clock;
use xmcp_store::{McpSession, Store, StoreError, TokenHash};

/// How long a session lives without use. Its expiry slides: a request in
/// the second half of this time moves it a full period on, so a session in
/// use is written at most once per half period.
pub const SESSION_IDLE_SECONDS: i64 = 24 * 3600;

/// The most sessions a user holds at once: opening another ends their
/// oldest. A token lets its holder open sessions at will, and each is a row
/// in the store; no client needs this many.
pub const MAX_SESSIONS_PER_USER: u32 = 100;

/// How long [`McpSessions::check`] trusts what it read in the store.
pub const RECHECK_SECONDS: i64 = 5;

/// Sessions remembered at most; beyond, the stale ones are dropped (or all).
const MAX_REMEMBERED: usize = 10_000;

/// Stateful MCP sessions in the store; see the module documentation.
pub struct McpSessions {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Sessions read lately: id, then its user and until when to trust it.
    /// Only a cache: losing it costs a read.
    recent: Mutex<HashMap<Box<str>, Remembered>>,
}

struct Remembered {
    user_id: Box<str>,
    until: i64,
}

impl McpSessions {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            recent: Mutex::default(),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Remembered>> {
        // The map is consistent after every statement: a panic elsewhere
        // cannot leave it half-updated.
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a new session of `user_id`, opened by an `initialize` that was
    /// answered, of which `init_params` is what the session keeps (JSON: the
    /// protocol version and the client's name and version), and return its
    /// id: 256 random bits, base64url, which the store keeps only as a
    /// digest.
    pub async fn open(&self, user_id: &str, init_params: String) -> Result<String, StoreError> {
        let session_id = xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<32>());
        let now = self.clock.now();
        self.store
            .insert_mcp_session(
                &McpSession {
                    id: TokenHash::of(&session_id),
                    user_id: user_id.to_owned(),
                    init_params,
                    created_at: now,
                    expires_at: now + SESSION_IDLE_SECONDS,
                },
                MAX_SESSIONS_PER_USER,
            )
            .await?;
        counted("opened");
        Ok(session_id)
    }

    /// End a session (HTTP `DELETE`), which [`Self::check`] said is the
    /// caller's.
    pub async fn end(&self, session_id: &str) -> Result<(), StoreError> {
        self.recent().remove(session_id);
        if self
            .store
            .delete_mcp_session(&TokenHash::of(session_id))
            .await?
        {
            counted("ended");
        }
        Ok(())
    }

    /// Whether `session_id` names a live session of `user_id`. Moves the
    /// session's expiry on when half of it has passed.
    ///
    /// Not secret comparisons: both user ids are our own, from the store
    /// and the verified token.
    pub async fn check(&self, session_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let owned = self.owned(session_id, user_id).await?;
        if !owned {
            counted("refused");
        }
        Ok(owned)
    }

    /// Count a request refused for naming a session by an id that is not
    /// header text, so names none: [`Self::check`] counts the others.
    pub fn refuse_unreadable(&self) {
        counted("refused");
    }

    async fn owned(&self, session_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        if let Some(r) = self.recent().get(session_id)
            && now < r.until
        {
            return Ok(&*r.user_id == user_id);
        }
        let id = TokenHash::of(session_id);
        let Some(session) = self.store.get_mcp_session(&id, now).await? else {
            self.recent().remove(session_id);
            return Ok(false);
        };
        if session.user_id != user_id {
            return Ok(false);
        }
        let mut expires_at = session.expires_at;
        if expires_at - now < SESSION_IDLE_SECONDS / 2 {
            expires_at = now + SESSION_IDLE_SECONDS;
            self.store.extend_mcp_session(&id, now, expires_at).await?;
        }
        let mut recent = self.recent();
        if recent.len() >= MAX_REMEMBERED {
            recent.retain(|_, r| now < r.until);
            if recent.len() >= MAX_REMEMBERED {
                recent.clear();
            }
        }
        recent.insert(
            session_id.into(),
            Remembered {
                user_id: session.user_id.into(),
                until: (now + RECHECK_SECONDS).min(expires_at),
            },
        );
        Ok(true)
    }
}

/// `xmcp_mcp_sessions_total`: sessions opened, sessions ended by their
/// client, and requests refused for naming a session that is unknown, ended
/// or another user's.
fn counted(event: &'static str) {
    metrics::counter!("xmcp_mcp_sessions_total", "event" => event).increment(1);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use xmcp_auth::ManualClock;
    use xmcp_store::UserIdentity;

    const NOW: i64 = 1_800_000_000;

    const PARAMS: &str = r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}"#;

    async fn setup() -> (
        xmcp_store::testing::TestDatabase,
        Arc<dyn Store>,
        Arc<ManualClock>,
        McpSessions,
    ) {
        let db = xmcp_store::testing::TestDatabase::sqlite();
        let store = db.open().await;
        let clock = Arc::new(ManualClock::new(NOW));
        let sessions = McpSessions::new(store.clone(), clock.clone());
        (db, store, clock, sessions)
    }

    async fn user(store: &Arc<dyn Store>, name: &str) -> xmcp_store::User {
        let identity = UserIdentity {
            subject: format!("local:{name}"),
            username: Some(name.into()),
            display_name: None,
        };
        store.upsert_user(&identity, NOW).await.unwrap()
    }

    #[tokio::test]
    async fn a_session_belongs_to_the_user_who_opened_it_until_it_ends() {
        let (_db, store, _clock, sessions) = setup().await;
        let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);

        let id = sessions.open(&alice.id, PARAMS.into()).await.unwrap();
        // 256 random bits, base64url: visible ASCII, as the transport asks.
        assert_eq!(id.len(), 43);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(sessions.open(&alice.id, PARAMS.into()).await.unwrap(), id);

        assert!(sessions.check(&id, &alice.id).await.unwrap());
        assert!(!sessions.check(&id, &bob.id).await.unwrap());
        assert!(!sessions.check("s-unknown", &alice.id).await.unwrap());
        // Stored as a digest, never as the id itself; with what the client
        // said in its `initialize`.
        let stored = store
            .get_mcp_session(&TokenHash::of(&id), NOW)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(stored.id.as_str(), id);
        assert_eq!(stored.user_id, alice.id);
        assert_eq!(stored.init_params, PARAMS);
        assert_eq!(stored.expires_at, NOW + SESSION_IDLE_SECONDS);

        sessions.end(&id).await.unwrap();
        assert!(!sessions.check(&id, &alice.id).await.unwrap());
        assert!(
            store
                .get_mcp_session(&TokenHash::of(&id), NOW)
                .await
                .unwrap()
                .is_none()
        );
        // Ending it again (a second instance, a retried DELETE) is no error.
        sessions.end(&id).await.unwrap();
    }

    #[tokio::test]
    async fn what_was_read_is_trusted_for_a_few_seconds_and_never_for_another_user() {
        let (_db, store, clock, sessions) = setup().await;
        let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
        let id = sessions.open(&alice.id, PARAMS.into()).await.unwrap();
        assert!(sessions.check(&id, &alice.id).await.unwrap());
        // Another instance ends it, behind this one's back.
        assert!(store.delete_mcp_session(&TokenHash::of(&id)).await.unwrap());
        assert!(!sessions.check(&id, &bob.id).await.unwrap());
        clock.advance(RECHECK_SECONDS - 1);
        assert!(sessions.check(&id, &alice.id).await.unwrap());
        clock.advance(1);
        assert!(!sessions.check(&id, &alice.id).await.unwrap());
    }
}
