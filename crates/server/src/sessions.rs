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
//! The store is the authority: [`McpSessions::check`] reads it on every
//! request that names a session, so a session ended on one instance (HTTP
//! `DELETE`, its user deleted, expiry) ends on all of them at once.

use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use std::future::Future;
use std::sync::Arc;
use xmcp_auth::Clock;
use xmcp_store::{McpSession, Store, StoreError, TokenHash};

/// How long a session lives without use. Its expiry slides: a request in
/// the second half of this time moves it a full period on, so a session in
/// use is written at most once per half period.
pub const SESSION_IDLE_SECONDS: i64 = 24 * 3600;

/// The user on whose behalf the current request may open a session, and
/// whether the session it opened was recorded.
struct Opening {
    user_id: String,
    recorded: std::cell::Cell<bool>,
}

tokio::task_local! {
    static OPENING: Opening;
}

/// Stateful MCP sessions in the store; see the module documentation.
pub struct McpSessions {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl McpSessions {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
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
    pub async fn check(&self, session_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let id = TokenHash::of(session_id);
        let now = self.clock.now();
        let Some(session) = self.store.get_mcp_session(&id, now).await? else {
            return Ok(false);
        };
        // Not a secret comparison: both ids are our own, from the store and
        // the verified token.
        if session.user_id != user_id {
            return Ok(false);
        }
        if session.expires_at - now < SESSION_IDLE_SECONDS / 2 {
            self.store
                .extend_mcp_session(&id, now, now + SESSION_IDLE_SECONDS)
                .await?;
        }
        Ok(true)
    }
}

#[async_trait::async_trait]
impl SessionStore for McpSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let id = TokenHash::of(session_id);
        let Some(session) = self.store.get_mcp_session(&id, self.clock.now()).await? else {
            return Ok(None);
        };
        let params = serde_json::from_str(&session.init_params)?;
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
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
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

    #[tokio::test]
    async fn a_session_is_recorded_only_for_the_user_opening_it() {
        let db = xmcp_store::testing::TestDatabase::sqlite();
        let store = db.open().await;
        let user = |name: &str| UserIdentity {
            subject: format!("local:{name}"),
            username: Some(name.into()),
            display_name: None,
        };
        let alice = store.upsert_user(&user("alice"), NOW).await.unwrap();
        let bob = store.upsert_user(&user("bob"), NOW).await.unwrap();
        let sessions = McpSessions::new(store.clone(), Arc::new(ManualClock::new(NOW)));

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
}
