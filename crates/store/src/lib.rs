//! Persistent state for xmcp's authorization server.
//!
//! One set of capability-sized traits ([`ClientStore`], [`FlowStore`],
//! [`GrantStore`], [`UserStore`], [`UpstreamTokenStore`], [`DeviceStore`],
//! [`LocalStateStore`], [`McpSessionStore`], [`RateLimitStore`],
//! [`UsageStore`], [`OnceStore`], [`AdminStore`], [`SealedStore`], [`Maintenance`]),
//! gathered in [`Store`], with two native implementations: [`SqliteStore`]
//! (the embedded default) and [`PostgresStore`] (scale-out). Both run the same
//! SQL text, generated once by a macro, and the same conformance suite
//! (`tests/it/conformance/`).
//!
//! Contracts that matter for security are enforced *inside* the store, in one
//! transaction, so that two instances sharing a database cannot race:
//! codes are redeemed at most once ([`GrantStore::issue_from_code`]), refresh
//! tokens rotate at most once ([`GrantStore::rotate_refresh`]), pending
//! authorizations are consumed at most once ([`FlowStore::take_pending`]).
//!
//! Time is always a parameter (`now`, Unix seconds; `now_us`, Unix
//! microseconds, for rate limits); the store never reads the clock. Secrets
//! never reach the store: tokens arrive as [`TokenHash`]es and upstream
//! credentials arrive already sealed.

mod model;
mod postgres;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use model::*;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use xmcp_crypto::token::TokenHash;

use async_trait::async_trait;
use std::sync::Arc;

/// Errors from the store. The text of driver errors goes to logs only; callers
/// map every variant to a generic `server_error` / 503 for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("a record with this key already exists")]
    Conflict,
    #[error("{0}")]
    Unsupported(String),
}

/// How long the sealed successor of a rotated refresh token is kept. Any
/// refresh grace window must be shorter than this.
pub const SUCCESSOR_RETENTION_SECONDS: i64 = 300;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Registered OAuth clients (dynamic registrations; static clients live in
/// configuration and CIMD clients in a cache, neither in this table).
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Insert a new client. Fails with [`StoreError::Conflict`] if the id exists.
    async fn insert_client(&self, client: &ClientRecord) -> Result<()>;
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>>;
    /// Count registrations created at or after `since` (for abuse limits).
    async fn count_clients_since(&self, since: i64) -> Result<i64>;
}

/// Short-lived flow state: pending authorizations between `/authorize` and
/// the end of consent/upstream login, and consents users gave.
#[async_trait]
pub trait FlowStore: Send + Sync {
    async fn insert_pending(&self, pending: &PendingAuthorization) -> Result<()>;
    /// Read a pending authorization that has not expired or been consumed.
    async fn get_pending(&self, id: &TokenHash, now: i64) -> Result<Option<PendingAuthorization>>;
    /// Attach upstream-login state (issue of the upstream redirect) to a
    /// pending authorization. Returns false if it is gone or consumed.
    async fn set_pending_upstream(
        &self,
        id: &TokenHash,
        upstream_state: &TokenHash,
        upstream_verifier_sealed: &str,
        now: i64,
    ) -> Result<bool>;
    /// Find an unconsumed pending authorization by its upstream `state`
    /// digest, even if it expired: its redirect URI was validated, so the
    /// caller can still tell the client that the sign-in took too long.
    async fn find_pending_by_upstream_state(
        &self,
        upstream_state: &TokenHash,
    ) -> Result<Option<PendingAuthorization>>;
    /// Consume a pending authorization: succeeds for exactly one caller.
    async fn take_pending(&self, id: &TokenHash, now: i64) -> Result<Option<PendingAuthorization>>;
    async fn record_consent(&self, consent: &Consent) -> Result<()>;
    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<Option<Consent>>;
}

/// Codes, grants (token families), access and refresh tokens.
#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn insert_code(&self, code: &AuthorizationCode) -> Result<()>;
    /// Read a code that has not expired, whether or not it was used.
    async fn get_code(&self, hash: &TokenHash, now: i64) -> Result<Option<AuthorizationCode>>;
    /// In one transaction: mark the code used, create the grant and its first
    /// tokens. If the code was already used, nothing is written and
    /// [`CodeRedemption::AlreadyUsed`] names the grant issued from it.
    async fn issue_from_code(
        &self,
        code: &TokenHash,
        now: i64,
        grant: &Grant,
        tokens: &TokenPair,
    ) -> Result<CodeRedemption>;
    /// Rotate a refresh token in one transaction; see [`RefreshRotation`].
    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: i64,
        grace_seconds: i64,
        successor: &TokenPair,
        successor_sealed: &str,
    ) -> Result<RefreshRotation>;
    /// Look up a live (unexpired, unrevoked) access token with its principal.
    async fn find_access_token(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> Result<Option<AccessTokenInfo>>;
    /// Look up a live refresh token (not rotated, not revoked, not expired).
    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> Result<Option<RefreshTokenInfo>>;
    /// Revoke a grant and every token issued under it.
    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<()>;
    /// Delete one access token (RFC 7009 revocation of an access token).
    async fn delete_access_token(&self, hash: &TokenHash) -> Result<()>;
    async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>>;
}

/// Users known to the server, keyed by their identity provider subject.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Create the user for `subject` or update its profile; returns the row.
    async fn upsert_user(&self, identity: &UserIdentity, now: i64) -> Result<User>;
    async fn get_user(&self, user_id: &str) -> Result<Option<User>>;
}

/// Upstream (X / OIDC) credentials, sealed by the caller before they get here.
///
/// Refreshing them is serialised across every process sharing the database
/// by a lease on the row: [`try_lease_upstream_refresh`] succeeds for one
/// holder at a time (or after the lease expired, if its holder died), and
/// [`finish_upstream_refresh`] writes the new tokens and ends the lease in one
/// statement, so the new refresh token is committed before anyone uses it.
///
/// [`try_lease_upstream_refresh`]: UpstreamTokenStore::try_lease_upstream_refresh
/// [`finish_upstream_refresh`]: UpstreamTokenStore::finish_upstream_refresh
#[async_trait]
pub trait UpstreamTokenStore: Send + Sync {
    /// Insert or replace a user's credentials (a new sign-in); clears
    /// `reauth_required_at`. Leaves a running refresh lease alone.
    async fn put_upstream_tokens(&self, tokens: &UpstreamTokens) -> Result<()>;
    async fn get_upstream_tokens(&self, user_id: &str) -> Result<Option<UpstreamTokens>>;
    /// Every sealed row, for re-encryption under a new key.
    async fn list_upstream_tokens(&self) -> Result<Vec<UpstreamTokens>>;
    /// Take the refresh lease of `user_id` until `until`, if nobody holds a
    /// live one and the row still holds `access_sealed` (the token the
    /// caller read: if someone refreshed since, the caller must use their
    /// result, not refresh again with a spent refresh token). True when
    /// `holder` now holds it.
    async fn try_lease_upstream_refresh(
        &self,
        user_id: &str,
        access_sealed: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool>;
    /// Store refreshed credentials and release the lease, only if `holder`
    /// still holds it. False when the lease was lost (nothing written).
    async fn finish_upstream_refresh(&self, tokens: &UpstreamTokens, holder: &str) -> Result<bool>;
    /// Release `holder`'s lease without new tokens; with `reauth_required_at`,
    /// also record that the provider refused the refresh token.
    async fn release_upstream_lease(
        &self,
        user_id: &str,
        holder: &str,
        reauth_required_at: Option<i64>,
    ) -> Result<()>;
    /// Forget a user's credentials (sign-out). True if there were any.
    async fn delete_upstream_tokens(&self, user_id: &str) -> Result<bool>;
}

/// RFC 8628 device authorizations.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Fails with [`StoreError::Conflict`] if the user code is taken.
    async fn insert_device(&self, device: &DeviceAuthorization) -> Result<()>;
    /// A pending, unexpired authorization by its user code.
    async fn find_device_by_user_code(
        &self,
        user_code: &TokenHash,
        now: i64,
    ) -> Result<Option<DeviceAuthorization>>;
    /// Record a poll by the client. A pending authorization polled sooner
    /// than its interval answers [`DevicePoll::SlowDown`] and raises the
    /// interval by 5 seconds (RFC 8628 §3.5); decided ones answer at once.
    async fn poll_device(&self, device_code: &TokenHash, now: i64) -> Result<DevicePoll>;
    /// In one transaction: mark a pending, unexpired authorization approved by
    /// `user_id` and store `code` (whose hash is the device code's) for the
    /// token endpoint to redeem once. False if it was no longer pending.
    async fn approve_device(
        &self,
        device_code: &TokenHash,
        user_id: &str,
        code: &AuthorizationCode,
        now: i64,
    ) -> Result<bool>;
    /// Mark a pending authorization denied. False if it was no longer pending.
    async fn deny_device(&self, device_code: &TokenHash, now: i64) -> Result<bool>;
}

/// Named values of the local, single-user modes (`xmcp login`, `xmcp
/// bridge`). Secret values arrive sealed.
#[async_trait]
pub trait LocalStateStore: Send + Sync {
    async fn put_local_state(&self, name: &str, value: &str, now: i64) -> Result<()>;
    async fn get_local_state(&self, name: &str) -> Result<Option<String>>;
    /// True if there was a value.
    async fn delete_local_state(&self, name: &str) -> Result<bool>;
}

/// Stateful MCP sessions (`mcp_stateful`), so that a session outlives the
/// process that opened it and is bound to one user. Ids arrive hashed.
#[async_trait]
pub trait McpSessionStore: Send + Sync {
    /// Record a new session, and end the user's other sessions beyond
    /// their newest `most - 1` (by `created_at`; sessions opened in the
    /// same second are told apart arbitrarily), in one transaction: a
    /// user's sessions take bounded room however many they open
    /// (concurrent inserts may each leave one more). Fails with
    /// [`StoreError::Conflict`] if the id exists, and then ends nothing.
    async fn insert_mcp_session(&self, session: &McpSession, most: u32) -> Result<()>;
    /// A session that has not expired.
    async fn get_mcp_session(&self, id: &TokenHash, now: i64) -> Result<Option<McpSession>>;
    /// Move the expiry of a session that has not expired to `until`. False
    /// if it is gone.
    async fn extend_mcp_session(&self, id: &TokenHash, now: i64, until: i64) -> Result<bool>;
    /// End a session. True if there was one.
    async fn delete_mcp_session(&self, id: &TokenHash) -> Result<bool>;
}

/// Request-rate counters that every instance on the database shares, so a
/// limit holds for the deployment, not for each process. Each bucket is a
/// GCRA: at most `burst` requests at once, refilled one per `interval_us`.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Count one request against `bucket` if it is within the limit:
    /// `Ok(None)`. Otherwise count nothing and return how many microseconds
    /// to wait until one would be allowed. Atomic across instances: `burst`
    /// concurrent takes from a full bucket admit exactly `burst`.
    async fn take_rate(
        &self,
        bucket: &str,
        now_us: i64,
        interval_us: i64,
        burst: u32,
    ) -> Result<Option<i64>>;
    /// Whether one request would be allowed now, counting nothing:
    /// `Ok(None)`, else the microseconds to wait, as [`Self::take_rate`]
    /// would answer.
    async fn peek_rate(
        &self,
        bucket: &str,
        now_us: i64,
        interval_us: i64,
        burst: u32,
    ) -> Result<Option<i64>>;
}

/// What calls to X cost and who made them: daily spend counters, held
/// before a call and settled after it, so that every instance on the
/// database enforces one cap; and the audit trail of every call.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Hold `amount` micro-dollars against each of `limits` on `day` (days
    /// since the Unix epoch, UTC), in one transaction: if any limit's spent
    /// plus held plus `amount` would pass its cap, nothing is held and that
    /// limit is returned. Atomic across instances: concurrent holds never
    /// take a scope past its cap. Counters created here expire at
    /// `expires_at`.
    async fn hold_spend(
        &self,
        day: i64,
        limits: &[SpendLimit],
        amount: i64,
        expires_at: i64,
    ) -> Result<Option<SpendRefusal>>;
    /// Release `held` from each of `scopes` on `day` and record `spent`
    /// instead (a call's actual cost, which may exceed what it held).
    async fn settle_spend(&self, day: i64, scopes: &[String], held: i64, spent: i64) -> Result<()>;
    /// What `scope` spent and holds on `day`.
    async fn get_spend(&self, day: i64, scope: &str) -> Result<Spend>;
    async fn insert_audit(&self, entries: &[AuditEntry]) -> Result<()>;
    /// Audit entries at or after `since`, newest first, at most `limit`;
    /// only `user_id`'s if given.
    async fn list_audit(
        &self,
        user_id: Option<&str>,
        since: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
    /// Calls and spend from `from` (inclusive) to `to` (exclusive), by
    /// user, client and tool, costliest first; only `user_id`'s if given.
    async fn usage(&self, user_id: Option<&str>, from: i64, to: i64) -> Result<Vec<UsageRow>>;
}

/// Writes that happen once: a key claimed before a call to X and finished
/// with its result, so that a retry (on this instance or another) returns
/// the first result instead of acting twice. Keys arrive hashed, results
/// sealed.
#[async_trait]
pub trait OnceStore: Send + Sync {
    /// Claim `key` for `user_id`: [`OnceClaim::Claimed`] for exactly one
    /// caller while nobody holds it (or its earlier holder's claim
    /// expired); the claim lasts until `lease_until` unless finished.
    async fn claim_once(
        &self,
        key: &TokenHash,
        user_id: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<OnceClaim>;
    /// Record the result of a claimed key, kept until `expires_at`.
    async fn finish_once(
        &self,
        key: &TokenHash,
        result_sealed: &str,
        expires_at: i64,
    ) -> Result<()>;
    /// Give up a claim (the call did not happen): a retry may act.
    async fn release_once(&self, key: &TokenHash) -> Result<()>;
}

/// What operators list and remove (`xmcp admin`).
#[async_trait]
pub trait AdminStore: Send + Sync {
    async fn list_users(&self) -> Result<Vec<UserSummary>>;
    /// Dynamically registered clients, newest first.
    async fn list_clients(&self) -> Result<Vec<ClientRecord>>;
    /// Live grants, newest first; only `user_id`'s if given.
    async fn list_grants(&self, user_id: Option<&str>) -> Result<Vec<Grant>>;
    /// Stateful MCP sessions that have not expired, newest first; only
    /// `user_id`'s if given.
    async fn list_mcp_sessions(&self, user_id: Option<&str>, now: i64) -> Result<Vec<McpSession>>;
    /// Delete a user with everything of theirs (grants, tokens, codes,
    /// consents, upstream credentials, MCP sessions). True if the user existed.
    async fn delete_user(&self, user_id: &str) -> Result<bool>;
    /// Revoke every grant of a client and delete its registration (if it is
    /// a registered one). Returns (registration deleted, grants revoked).
    async fn delete_client(&self, client_id: &str, now: i64) -> Result<(bool, u64)>;
}

/// Signing keys for JWT access tokens; private keys arrive sealed.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()>;
    /// Every key, newest first.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Mark every key but `keep` retired at `now`; returns how many.
    async fn retire_signing_keys(&self, keep: &str, now: i64) -> Result<u64>;
}

/// Every value sealed with the data key, wherever it is kept, for
/// re-encryption under a new key (`xmcp rotate-key`). The store neither
/// opens nor seals: values come and go as text.
#[async_trait]
pub trait SealedStore: Send + Sync {
    /// Every value of every [`SealedColumn`], expired rows included (the
    /// sweep deletes those; until then they are still sealed), and every
    /// `local_state` value (sealed or not: the caller knows which are).
    async fn list_sealed(&self) -> Result<Vec<SealedValue>>;
    /// Put `resealed` where `value` was found, only if it still holds
    /// `value.sealed`, and change nothing else in the row: a value rewritten
    /// meanwhile (an upstream refresh on a live server, say) stays as it
    /// was written. True if replaced.
    async fn replace_sealed(&self, value: &SealedValue, resealed: &str) -> Result<bool>;
}

/// Housekeeping.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// A trivial query proving the database answers.
    async fn ping(&self) -> Result<()>;
    /// Delete expired rows; returns how many were deleted.
    async fn sweep(&self, now: i64) -> Result<SweepReport>;
    /// Rows per table (for operators, and for tests proving that a refused
    /// request wrote nothing).
    async fn counts(&self) -> Result<Vec<(&'static str, i64)>>;
    /// Write a consistent copy of the database to `path` (a new file) while
    /// it is in use. SQLite only: back PostgreSQL up with its own tools.
    async fn backup(&self, path: &str) -> Result<()>;
}

/// Everything the server needs from storage.
pub trait Store:
    ClientStore
    + FlowStore
    + GrantStore
    + UserStore
    + UpstreamTokenStore
    + SigningKeyStore
    + DeviceStore
    + LocalStateStore
    + McpSessionStore
    + RateLimitStore
    + UsageStore
    + OnceStore
    + AdminStore
    + SealedStore
    + Maintenance
{
}

impl<T> Store for T where
    T: ClientStore
        + FlowStore
        + GrantStore
        + UserStore
        + UpstreamTokenStore
        + SigningKeyStore
        + DeviceStore
        + LocalStateStore
        + McpSessionStore
        + RateLimitStore
        + UsageStore
        + OnceStore
        + AdminStore
        + SealedStore
        + Maintenance
{
}

/// Open the store named by a database URL: `sqlite://path`, `sqlite::memory:`,
/// or `postgres://...`. Migrations run before this returns.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect(url, max_connections).await?,
        ))
    } else {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    }
}
