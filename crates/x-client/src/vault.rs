//! Each user's X tokens: sealed at rest, opened on demand, refreshed
//! single-flight.
//!
//! One refresh per user at a time, everywhere:
//! * within a process, callers for the same user queue on a per-user lock and
//!   whoever comes second finds the row already refreshed;
//! * across processes sharing the database, the refresher holds a lease on
//!   the user's row ([`UpstreamTokenStore::try_lease_upstream_refresh`]);
//!   others wait for the row to change. The lease is only granted while the
//!   row still holds the token the caller read, so a process that looked
//!   just before someone else's refresh finished never refreshes again with
//!   the spent refresh token.
//!
//! X's refresh tokens are single-use, so the new pair is written (in the same
//! statement that ends the lease) before anyone uses the new access token.
//!
//! [`UpstreamTokenStore::try_lease_upstream_refresh`]: xmcp_store::UpstreamTokenStore::try_lease_upstream_refresh

use crate::oauth::{CallError, XOAuth};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, instrument, warn};
use xmcp_auth::Clock;
use xmcp_auth::identity::upstream_aad;
use xmcp_crypto::envelope::Keyring;
use xmcp_store::{Store, StoreError, UpstreamTokens};

/// How long a refresher may hold the lease before others may take over
/// (longer than the HTTP client's timeout).
const LEASE_SECONDS: i64 = 30;
/// How often a waiter looks whether another process finished its refresh.
const POLL: Duration = Duration::from_millis(100);
/// How many looks before a waiter gives up (a little over one lease).
const MAX_POLLS: u32 = 350;

/// Why no usable X token could be had for a user.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "this account is not linked to X (it signed in another way); sign in with X to use X tools"
    )]
    NotLinked,
    #[error(
        "X no longer accepts this sign-in (it refused to renew the authorization); authorize again from your MCP client to continue"
    )]
    ReauthRequired,
    #[error("X could not renew the authorization just now ({0}); try again in a moment")]
    Transient(String),
    #[error("the token store is unavailable; try again in a moment")]
    Store(#[from] StoreError),
    #[error(
        "a stored X credential cannot be decrypted (was the encryption key replaced without a rotation?); authorize again"
    )]
    Sealed,
}

/// An opened X access token, with what X granted.
pub struct UpstreamAccess {
    pub token: SecretString,
    /// Scopes X granted this user.
    pub scopes: Vec<String>,
    pub expires_at: Option<i64>,
    /// The sealed value it was opened from: tells whether the row changed.
    witness: String,
}

impl std::fmt::Debug for UpstreamAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAccess")
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl UpstreamAccess {
    /// Whether X granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

pub struct Vault {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    oauth: Arc<XOAuth>,
    clock: Arc<dyn Clock>,
    /// Refresh this many seconds before X's expiry.
    margin: i64,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl Vault {
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        oauth: Arc<XOAuth>,
        clock: Arc<dyn Clock>,
        margin: i64,
    ) -> Self {
        Self {
            store,
            keyring,
            oauth,
            clock,
            margin,
            locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn oauth(&self) -> &Arc<XOAuth> {
        &self.oauth
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A usable access token for `user_id`, refreshed first if it expires
    /// within the margin.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn access(&self, user_id: &str) -> Result<UpstreamAccess, VaultError> {
        let row = self.usable_row(user_id).await?;
        if self.is_fresh(&row, self.clock.now()) {
            return self.open(&row);
        }
        self.refresh(user_id, &row.access_sealed).await
    }

    /// X answered 401 to `stale`: refresh, unless someone already did.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn refresh_after_rejection(
        &self,
        user_id: &str,
        stale: &UpstreamAccess,
    ) -> Result<UpstreamAccess, VaultError> {
        self.refresh(user_id, &stale.witness).await
    }

    /// The user's row, unless there is none or X refused it for good.
    async fn usable_row(&self, user_id: &str) -> Result<UpstreamTokens, VaultError> {
        let row = self
            .store
            .get_upstream_tokens(user_id)
            .await?
            .ok_or(VaultError::NotLinked)?;
        if row.reauth_required_at.is_some() {
            return Err(VaultError::ReauthRequired);
        }
        Ok(row)
    }

    fn is_fresh(&self, row: &UpstreamTokens, now: i64) -> bool {
        row.expires_at.is_none_or(|e| e - self.margin > now)
    }

    fn open(&self, row: &UpstreamTokens) -> Result<UpstreamAccess, VaultError> {
        let opened = self
            .keyring
            .open(
                &row.access_sealed,
                upstream_aad(&row.user_id, "access").as_bytes(),
            )
            .map_err(|e| {
                warn!(error = %e, "cannot open a sealed X access token");
                VaultError::Sealed
            })?;
        let token =
            String::from_utf8(opened.expose_secret().clone()).map_err(|_| VaultError::Sealed)?;
        Ok(UpstreamAccess {
            token: token.into(),
            scopes: row
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            expires_at: row.expires_at,
            witness: row.access_sealed.clone(),
        })
    }

    fn local_lock(&self, user_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if locks.len() > 1024 {
            // Forget locks nobody holds or waits for.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(user_id.to_owned()).or_default().clone()
    }

    /// Replace the token sealed as `witness`, once, for everyone.
    async fn refresh(&self, user_id: &str, witness: &str) -> Result<UpstreamAccess, VaultError> {
        let lock = self.local_lock(user_id);
        let _held = lock.lock().await;
        let holder = xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<12>());
        for _ in 0..MAX_POLLS {
            let now = self.clock.now();
            let row = self.usable_row(user_id).await?;
            if row.access_sealed != witness && row.expires_at.is_none_or(|e| e > now) {
                // Someone (here or in another instance) refreshed meanwhile;
                // their token serves even if X gave it a short life.
                return self.open(&row);
            }
            if self
                .store
                .try_lease_upstream_refresh(
                    user_id,
                    &row.access_sealed,
                    &holder,
                    now,
                    now + LEASE_SECONDS,
                )
                .await?
            {
                return self.refresh_holding_lease(row, &holder, now).await;
            }
            tokio::time::sleep(POLL).await;
        }
        Err(VaultError::Transient(
            "another server is still renewing this user's X authorization".into(),
        ))
    }

    async fn refresh_holding_lease(
        &self,
        row: UpstreamTokens,
        holder: &str,
        now: i64,
    ) -> Result<UpstreamAccess, VaultError> {
        let user_id = row.user_id.clone();
        let aad = |field: &str| upstream_aad(&user_id, field);
        let refresh_token = match &row.refresh_sealed {
            None => None,
            Some(sealed) => match self.keyring.open(sealed, aad("refresh").as_bytes()) {
                Ok(opened) => String::from_utf8(opened.expose_secret().clone()).ok(),
                Err(e) => {
                    warn!(error = %e, "cannot open a sealed X refresh token");
                    None
                }
            },
        };
        let Some(refresh_token) = refresh_token else {
            // Without a (readable) refresh token, only a new sign-in helps.
            self.store
                .release_upstream_lease(&user_id, holder, Some(now))
                .await?;
            warn!(user_id = %user_id, "no usable X refresh token: the user must sign in again");
            return Err(VaultError::ReauthRequired);
        };
        match self.oauth.refresh(&SecretString::from(refresh_token)).await {
            Ok(set) => {
                let seal = |s: &SecretString, field: &str| {
                    self.keyring
                        .seal(s.expose_secret().as_bytes(), aad(field).as_bytes())
                };
                let fresh = UpstreamTokens {
                    access_sealed: seal(&set.access_token, "access"),
                    refresh_sealed: set.refresh_token.as_ref().map(|r| seal(r, "refresh")),
                    expires_at: set.expires_in.map(|s| now + s),
                    scope: if set.scope.is_empty() {
                        row.scope.clone()
                    } else {
                        set.scope.clone()
                    },
                    updated_at: now,
                    reauth_required_at: None,
                    ..row
                };
                if !self.store.finish_upstream_refresh(&fresh, holder).await? {
                    // Our lease ran out mid-refresh and someone else took
                    // over: their write wins, and ours must not be used.
                    warn!(user_id = %user_id, "X refresh finished after its lease expired; discarded");
                    return Err(VaultError::Transient(
                        "the renewal took too long and was superseded".into(),
                    ));
                }
                info!(user_id = %user_id, expires_at = ?fresh.expires_at, "X tokens refreshed");
                metrics::counter!("xmcp_x_token_refreshes_total", "outcome" => "ok").increment(1);
                Ok(UpstreamAccess {
                    token: set.access_token,
                    scopes: fresh.scope.split(' ').map(str::to_owned).collect(),
                    expires_at: fresh.expires_at,
                    witness: fresh.access_sealed,
                })
            }
            Err(CallError::Refused { status, message }) => {
                self.store
                    .release_upstream_lease(&user_id, holder, Some(now))
                    .await?;
                warn!(user_id = %user_id, status, reason = %message, "X refused the refresh token: the user must sign in again");
                metrics::counter!("xmcp_x_token_refreshes_total", "outcome" => "refused")
                    .increment(1);
                Err(VaultError::ReauthRequired)
            }
            Err(CallError::Transient(message)) => {
                self.store
                    .release_upstream_lease(&user_id, holder, None)
                    .await?;
                warn!(user_id = %user_id, reason = %message, "X refresh failed for now; will retry");
                metrics::counter!("xmcp_x_token_refreshes_total", "outcome" => "transient")
                    .increment(1);
                Err(VaultError::Transient(message))
            }
        }
    }
}
