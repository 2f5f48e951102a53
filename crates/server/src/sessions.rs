//! Stateful MCP sessions (`mcp_stateful`) kept in the store.
//!
//! rmcp keeps each session's worker in the memory of the process that
//! opened it. The store adds the two things memory cannot give:
//!
//! - **Binding to a user** (MCP security best practices, "Session
//!   Hijacking"): a session belongs to the user whose token opened it. A
//!   request naming someone else's session, or one that ended, is answered
//!   404 exactly as an unknown session is, so a guessed or leaked id reveals
//!   nothing and is worth nothing.
//! - **Any instance, any time**: the client's `initialize` parameters are
//!   stored (rmcp's [`SessionStore`]), so an instance that does not hold the
//!   session in memory (after a restart, behind a load balancer without
//!   sticky routing, or after rmcp dropped an idle worker) restores it by
//!   replaying the handshake, and the client never notices.
//!
//! The store is the authority. [`McpSessions::check`] reads it, and then
//! trusts what it read for [`RECHECK_SECONDS`] (a read on every request cost
//! a fifth of stateful `tools/call` throughput). So a session ended on one
//! instance (HTTP `DELETE`, expiry) is refused there at once and by every
//! other instance within [`RECHECK_SECONDS`]. Who a session belongs to
//! never changes, so the cache can never hand a session to another user.

use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use xmcp_auth::Clock;
use xmcp_store::{McpSession, Store, StoreError, TokenHash};

/// How long a session lives without use. Its expiry slides: a request in
/// the second half of this time moves it a full period on, so a session in
/// use is written at most once per half period.
pub const SESSION_IDLE_SECONDS: i64 = 24 * 3600;

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

/// The user on whose behalf the current request may open a session, and
/// whether the session it opened was recorded.
struct Opening {
    user_id: String,
    recorded: std::cell::Cell<bool>,
}

tokio::task_local! {
    static OPENING: Opening;
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

    /// Run `request` (rmcp answering a request that names no session) on
    /// behalf of `user_id`: a session it opens is bound to them. Also says
    /// whether a session was recorded; rmcp answers `initialize` with its
    /// new session even when recording failed (it only logs), and such a
    /// session must not be handed out: no request could use it.
    pub async fn opening<F: Future>(user_id: String, request: F) -> (F::Output, bool) {
        let opening = Opening {
            user_id,
            recorded: std::cell::Cell::new(false),
        };
        OPENING
            .scope(opening, async {
                let output = request.await;
                (output, OPENING.with(|o| o.recorded.get()))
            })
            .await
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

/// `xmcp_mcp_sessions_total`: sessions opened, restored from the store by
/// an instance that did not hold them, and requests refused for naming a
/// session that is unknown, ended or another user's.
fn counted(event: &'static str) {
    metrics::counter!("xmcp_mcp_sessions_total", "event" => event).increment(1);
}

#[async_trait::async_trait]
impl SessionStore for McpSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let id = TokenHash::of(session_id);
        let Some(session) = self.store.get_mcp_session(&id, self.clock.now()).await? else {
            return Ok(None);
        };
        let params = serde_json::from_str(&session.init_params)?;
        counted("restored");
        Ok(Some(SessionState::new(params)))
    }

    /// Called by rmcp once a new session answered `initialize`.
    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let user_id = OPENING
            .try_with(|o| o.user_id.clone())
            .map_err(|_| "a session was opened outside the /mcp guard: no user to bind it to")?;
        let now = self.clock.now();
        self.store
            .insert_mcp_session(&McpSession {
                id: TokenHash::of(session_id),
                user_id,
                init_params: serde_json::to_string(&state.initialize_params)?,
                created_at: now,
                expires_at: now + SESSION_IDLE_SECONDS,
            })
            .await?;
        OPENING.with(|o| o.recorded.set(true));
        counted("opened");
        Ok(())
    }

    /// Called by rmcp when the client ends the session (HTTP `DELETE`).
    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.recent().remove(session_id);
        self.store
            .delete_mcp_session(&TokenHash::of(session_id))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use xmcp_auth::ManualClock;
    use xmcp_store::UserIdentity;

    const NOW: i64 = 1_800_000_000;

    fn state() -> SessionState {
        SessionState::new(
            serde_json::from_value(serde_json::json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"}
            }))
            .unwrap(),
        )
    }

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
    async fn a_session_is_recorded_only_for_the_user_opening_it() {
        let (_db, store, _clock, sessions) = setup().await;
        let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);

        // Outside the guard there is nobody to bind a session to: refused,
        // and nothing is written.
        assert!(sessions.store("s-outside", &state()).await.is_err());
        assert!(sessions.load("s-outside").await.unwrap().is_none());

        // A request that opens no session records nothing.
        let ((), recorded) = McpSessions::opening(alice.id.clone(), async {}).await;
        assert!(!recorded);

        let (stored, recorded) = McpSessions::opening(alice.id.clone(), async {
            sessions.store("s-alice", &state()).await
        })
        .await;
        stored.unwrap();
        assert!(recorded);
        let loaded = sessions.load("s-alice").await.unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&loaded.initialize_params).unwrap(),
            serde_json::to_value(&state().initialize_params).unwrap()
        );
        assert!(sessions.check("s-alice", &alice.id).await.unwrap());
        assert!(!sessions.check("s-alice", &bob.id).await.unwrap());
        assert!(!sessions.check("s-unknown", &alice.id).await.unwrap());
        // Stored as a digest, never as the id itself.
        assert!(
            store
                .get_mcp_session(&TokenHash::of("s-alice"), NOW)
                .await
                .unwrap()
                .is_some_and(|s| s.id.as_str() != "s-alice")
        );

        sessions.delete("s-alice").await.unwrap();
        assert!(!sessions.check("s-alice", &alice.id).await.unwrap());
        assert!(sessions.load("s-alice").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn what_was_read_is_trusted_for_a_few_seconds_and_never_for_another_user() {
        let (_db, store, clock, sessions) = setup().await;
        let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
        let (stored, _) = McpSessions::opening(alice.id.clone(), async {
            sessions.store("s-alice", &state()).await
        })
        .await;
        stored.unwrap();
        assert!(sessions.check("s-alice", &alice.id).await.unwrap());
        // Another instance ends it, behind this one's back.
        assert!(
            store
                .delete_mcp_session(&TokenHash::of("s-alice"))
                .await
                .unwrap()
        );
        assert!(!sessions.check("s-alice", &bob.id).await.unwrap());
        clock.advance(RECHECK_SECONDS - 1);
        assert!(sessions.check("s-alice", &alice.id).await.unwrap());
        clock.advance(1);
        assert!(!sessions.check("s-alice", &alice.id).await.unwrap());
    }
}
