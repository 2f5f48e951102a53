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

#[cfg(test)]
mod tests {
    //! The vault with an upstream of the tests' own: what any provider gets.

    use super::*;
    use crate::identity::{LoginContext, LoginForm, LoginStep};
    use crate::params::Params;
    use crate::{ManualClock, identity::IdentityProvider};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicU32, Ordering};
    use xmcp_crypto::envelope::DataKey;
    use xmcp_store::UserIdentity;

    /// Renews by counting, after a pause long enough for callers to pile
    /// up; or refuses, or fails for now.
    struct Upstream {
        renewals: AtomicU32,
        answer: fn(u32) -> Result<TokenSet, RenewError>,
    }

    #[async_trait]
    impl IdentityProvider for Upstream {
        fn name(&self) -> &str {
            "test"
        }
        fn display_name(&self) -> &str {
            "Test"
        }
        fn login_form(&self) -> LoginForm {
            LoginForm::None
        }
        async fn begin(&self, _: &LoginContext<'_>, _: &Params) -> LoginStep {
            LoginStep::Retry("not in these tests".into())
        }
        async fn refresh(&self, refresh: &SecretString) -> Result<TokenSet, RenewError> {
            assert!(refresh.expose_secret().starts_with("refresh-"));
            let n = self.renewals.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            (self.answer)(n)
        }
    }

    fn renewed(n: u32) -> Result<TokenSet, RenewError> {
        Ok(TokenSet {
            access_token: format!("access-{n}").into(),
            refresh_token: Some(format!("refresh-{n}").into()),
            expires_in: Some(3600),
            scope: String::new(),
        })
    }

    struct Setup {
        vault: Arc<Vault>,
        upstream: Arc<Upstream>,
        store: Arc<dyn Store>,
        user: String,
    }

    /// A user signed in through `provider` at 1,000 with a token that
    /// expires at 1,100, and a vault for the test upstream at 1,050 (within
    /// its 60 s margin).
    async fn setup(provider: &str, answer: fn(u32) -> Result<TokenSet, RenewError>) -> Setup {
        let store = xmcp_store::connect("sqlite::memory:", 1).await.unwrap();
        let keyring = Arc::new(Keyring::new(DataKey::generate("k1").unwrap(), Vec::new()));
        let user = store
            .upsert_user(
                &UserIdentity {
                    subject: "test:1".into(),
                    username: None,
                    display_name: None,
                },
                1_000,
            )
            .await
            .unwrap()
            .id;
        let first = TokenSet {
            access_token: "access-0".to_owned().into(),
            refresh_token: Some("refresh-0".to_owned().into()),
            expires_in: Some(100),
            scope: "read write".into(),
        };
        store
            .put_upstream_tokens(&sealed_row(&keyring, &user, provider, &first, 1_000))
            .await
            .unwrap();
        let upstream = Arc::new(Upstream {
            renewals: AtomicU32::new(0),
            answer,
        });
        let vault = Arc::new(Vault::new(
            store.clone(),
            keyring,
            upstream.clone(),
            Arc::new(ManualClock::new(1_050)),
            60,
        ));
        Setup {
            vault,
            upstream,
            store,
            user,
        }
    }

    #[tokio::test]
    async fn callers_at_once_renew_once_and_keep_the_granted_scopes() {
        let s = setup("test", renewed).await;
        let calls = (0..8).map(|_| {
            let vault = s.vault.clone();
            let user = s.user.clone();
            tokio::spawn(async move { vault.access(&user).await })
        });
        for call in calls {
            let access = call.await.unwrap().unwrap();
            assert_eq!(access.token.expose_secret(), "access-1");
            assert!(access.has_scope("write"), "{:?}", access.scopes);
        }
        assert_eq!(s.upstream.renewals.load(Ordering::SeqCst), 1);
        let row = s.store.get_upstream_tokens(&s.user).await.unwrap().unwrap();
        assert_eq!(row.expires_at, Some(1_050 + 3600));
        assert_eq!(row.provider, "test");
    }

    #[tokio::test]
    async fn a_refusal_needs_a_new_sign_in_and_a_passing_failure_does_not() {
        let s = setup("test", |_| {
            Err(RenewError::Refused {
                status: 400,
                message: "invalid_grant".into(),
            })
        })
        .await;
        let refused = s.vault.access(&s.user).await.unwrap_err();
        assert!(matches!(refused, VaultError::ReauthRequired(ref p) if p == "Test"));
        assert!(refused.to_string().starts_with("Test no longer accepts"));
        // Marked: nobody asks the upstream again.
        assert!(matches!(
            s.vault.access(&s.user).await,
            Err(VaultError::ReauthRequired(_))
        ));
        assert_eq!(s.upstream.renewals.load(Ordering::SeqCst), 1);

        let s = setup("test", |_| Err(RenewError::Transient("HTTP 503".into()))).await;
        let failed = s.vault.access(&s.user).await.unwrap_err();
        assert!(failed.to_string().contains("HTTP 503"), "{failed}");
        let row = s.store.get_upstream_tokens(&s.user).await.unwrap().unwrap();
        assert_eq!(row.reauth_required_at, None);
    }

    #[tokio::test]
    async fn another_upstreams_tokens_are_not_this_ones() {
        let s = setup("x", renewed).await;
        assert!(matches!(
            s.vault.access(&s.user).await,
            Err(VaultError::NotLinked(ref p)) if p == "Test"
        ));
        assert_eq!(s.upstream.renewals.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_sealed_token_moved_to_another_row_does_not_open() {
        let s = setup("test", renewed).await;
        let mut row = s.store.get_upstream_tokens(&s.user).await.unwrap().unwrap();
        row.user_id = "someone-else".into();
        let opened = s.vault.open_all(&row);
        assert_eq!(opened.len(), 2);
        assert!(
            opened
                .iter()
                .all(|(_, t)| matches!(t, Err(VaultError::Sealed(_))))
        );
    }
}
