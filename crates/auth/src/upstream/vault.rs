//! Each user's upstream tokens: sealed at rest, opened on demand, refreshed
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
//! Refresh tokens may be single-use (X's are), so the new pair is written
//! (in the same statement that ends the lease) before anyone uses the new
//! access token.
//!
//! [`UpstreamTokenStore::try_lease_upstream_refresh`]: xmcp_store::UpstreamTokenStore::try_lease_upstream_refresh

use super::{RenewError, TokenSet};
use crate::Clock;
use crate::identity::IdentityProvider;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, instrument, warn};
use xmcp_crypto::envelope::Keyring;
use xmcp_store::{SealedColumn, Store, StoreError, UpstreamTokens};

/// How long a refresher may hold the lease before others may take over
/// (longer than the HTTP client's timeout).
const LEASE_SECONDS: i64 = 30;
/// How often a waiter looks whether another process finished its refresh.
const POLL: Duration = Duration::from_millis(100);
/// How many looks before a waiter gives up (a little over one lease).
const MAX_POLLS: u32 = 350;

/// Why no usable upstream token could be had for a user. Each message names
/// the upstream (its display name) and says what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "this account is not linked to {0} (it signed in another way); sign in with {0} to use {0} tools"
    )]
    NotLinked(String),
    #[error(
        "{0} no longer accepts this sign-in (it refused to renew the authorization); authorize again from your MCP client to continue"
    )]
    ReauthRequired(String),
    #[error(
        "{provider} could not renew the authorization just now ({message}); try again in a moment"
    )]
    Transient { provider: String, message: String },
    #[error("the token store is unavailable; try again in a moment")]
    Store(#[from] StoreError),
    #[error(
        "a stored {0} credential cannot be decrypted (was the encryption key replaced without a rotation?); authorize again"
    )]
    Sealed(String),
}

/// An opened upstream access token, with what the upstream granted.
pub struct UpstreamAccess {
    pub token: SecretString,
    /// Scopes the upstream granted this user.
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
    /// Whether the upstream granted `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The tokens one upstream issued to its users, kept in the store.
pub struct Vault {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    /// The upstream that issued them, and renews them.
    provider: Arc<dyn IdentityProvider>,
    clock: Arc<dyn Clock>,
    /// Refresh this many seconds before the upstream's expiry.
    margin: i64,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("provider", &self.provider.name())
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl Vault {
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        provider: Arc<dyn IdentityProvider>,
        clock: Arc<dyn Clock>,
        margin: i64,
    ) -> Self {
        Self {
            store,
            keyring,
            provider,
            clock,
            margin,
            locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Both of `row`'s tokens, opened: the refresh token first, if any.
    /// For revoking them at the upstream when the user signs out.
    pub fn open_all(
        &self,
        row: &UpstreamTokens,
    ) -> Vec<(&'static str, Result<SecretString, VaultError>)> {
        let mut opened = Vec::new();
        if let Some(sealed) = &row.refresh_sealed {
            opened.push((
                "refresh",
                self.open_secret(sealed, SealedColumn::UpstreamRefresh, &row.user_id),
            ));
        }
        opened.push((
            "access",
            self.open_secret(
                &row.access_sealed,
                SealedColumn::UpstreamAccess,
                &row.user_id,
            ),
        ));
        opened
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

    /// The upstream answered 401 to `stale`: refresh, unless someone already
    /// did.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn refresh_after_rejection(
        &self,
        user_id: &str,
        stale: &UpstreamAccess,
    ) -> Result<UpstreamAccess, VaultError> {
        self.refresh(user_id, &stale.witness).await
    }

    fn provider(&self) -> String {
        self.provider.display_name().to_owned()
    }

    /// The user's row, unless there is none (or it is another upstream's)
    /// or the upstream refused it for good.
    async fn usable_row(&self, user_id: &str) -> Result<UpstreamTokens, VaultError> {
        let row = self
            .store
            .get_upstream_tokens(user_id)
            .await?
            .filter(|row| row.provider == self.provider.name())
            .ok_or_else(|| VaultError::NotLinked(self.provider()))?;
        if row.reauth_required_at.is_some() {
            return Err(VaultError::ReauthRequired(self.provider()));
        }
        Ok(row)
    }

    fn is_fresh(&self, row: &UpstreamTokens, now: i64) -> bool {
        row.expires_at.is_none_or(|e| e - self.margin > now)
    }

    /// The token sealed in `column` of `user_id`'s row.
    fn open_secret(
        &self,
        sealed: &str,
        column: SealedColumn,
        user_id: &str,
    ) -> Result<SecretString, VaultError> {
        let opened = self
            .keyring
            .open(sealed, column.aad(user_id).as_bytes())
            .map_err(|e| {
                warn!(error = %e, ?column, provider = self.provider.name(), "cannot open a sealed upstream token");
                VaultError::Sealed(self.provider())
            })?;
        String::from_utf8(opened.expose_secret().clone())
            .map(SecretString::from)
            .map_err(|_| VaultError::Sealed(self.provider()))
    }

    fn open(&self, row: &UpstreamTokens) -> Result<UpstreamAccess, VaultError> {
        Ok(UpstreamAccess {
            token: self.open_secret(
                &row.access_sealed,
                SealedColumn::UpstreamAccess,
                &row.user_id,
            )?,
            scopes: scopes(&row.scope),
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
                // their token serves even if the upstream gave it a short life.
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
        Err(VaultError::Transient {
            provider: self.provider(),
            message: format!(
                "another server is still renewing this user's {} authorization",
                self.provider.display_name()
            ),
        })
    }

    async fn refresh_holding_lease(
        &self,
        row: UpstreamTokens,
        holder: &str,
        now: i64,
    ) -> Result<UpstreamAccess, VaultError> {
        let user_id = row.user_id.clone();
        let provider = self.provider.name();
        let refresh_token = row.refresh_sealed.as_deref().and_then(|sealed| {
            self.open_secret(sealed, SealedColumn::UpstreamRefresh, &user_id)
                .ok()
        });
        let Some(refresh_token) = refresh_token else {
            // Without a (readable) refresh token, only a new sign-in helps.
            self.store
                .release_upstream_lease(&user_id, holder, Some(now))
                .await?;
            warn!(user_id = %user_id, provider, "no usable refresh token: the user must sign in again");
            return Err(VaultError::ReauthRequired(self.provider()));
        };
        let outcome = self.provider.refresh(&refresh_token).await;
        let label = match &outcome {
            Ok(_) => "ok",
            Err(RenewError::Refused { .. }) => "refused",
            Err(RenewError::Transient(_)) => "transient",
        };
        metrics::counter!("xmcp_upstream_token_refreshes_total", "provider" => provider.to_owned(), "outcome" => label)
            .increment(1);
        match outcome {
            Ok(set) => {
                let fresh = UpstreamTokens {
                    scope: if set.scope.is_empty() {
                        row.scope.clone()
                    } else {
                        set.scope.clone()
                    },
                    reauth_required_at: None,
                    ..sealed_row(&self.keyring, &row.user_id, &row.provider, &set, now)
                };
                if !self.store.finish_upstream_refresh(&fresh, holder).await? {
                    // Our lease ran out mid-refresh and someone else took
                    // over: their write wins, and ours must not be used.
                    warn!(user_id = %user_id, provider, "a refresh finished after its lease expired; discarded");
                    return Err(VaultError::Transient {
                        provider: self.provider(),
                        message: "the renewal took too long and was superseded".into(),
                    });
                }
                info!(user_id = %user_id, provider, expires_at = ?fresh.expires_at, "upstream tokens refreshed");
                Ok(UpstreamAccess {
                    token: set.access_token,
                    scopes: scopes(&fresh.scope),
                    expires_at: fresh.expires_at,
                    witness: fresh.access_sealed,
                })
            }
            Err(RenewError::Refused { status, message }) => {
                self.store
                    .release_upstream_lease(&user_id, holder, Some(now))
                    .await?;
                warn!(user_id = %user_id, provider, status, reason = %message, "the upstream refused the refresh token: the user must sign in again");
                Err(VaultError::ReauthRequired(self.provider()))
            }
            Err(RenewError::Transient(message)) => {
                self.store
                    .release_upstream_lease(&user_id, holder, None)
                    .await?;
                warn!(user_id = %user_id, provider, reason = %message, "a refresh failed for now; will retry");
                Err(VaultError::Transient {
                    provider: self.provider(),
                    message,
                })
            }
        }
    }
}

fn scopes(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `user_id`'s row for the tokens `set` that `provider` issued at `now`,
/// sealed and bound to the row: what a sign-in and a refresh write.
pub fn sealed_row(
    keyring: &Keyring,
    user_id: &str,
    provider: &str,
    set: &TokenSet,
    now: i64,
) -> UpstreamTokens {
    let seal = |secret: &SecretString, column: SealedColumn| {
        keyring.seal(
            secret.expose_secret().as_bytes(),
            column.aad(user_id).as_bytes(),
        )
    };
    UpstreamTokens {
        user_id: user_id.to_owned(),
        provider: provider.to_owned(),
        access_sealed: seal(&set.access_token, SealedColumn::UpstreamAccess),
        refresh_sealed: set
            .refresh_token
            .as_ref()
            .map(|r| seal(r, SealedColumn::UpstreamRefresh)),
        expires_at: set.expires_in.map(|s| now + s),
        scope: set.scope.clone(),
        updated_at: now,
        reauth_required_at: None,
    }
}
