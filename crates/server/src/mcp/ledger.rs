//! What calls to X cost, who made them, and writes that happen once: the
//! layers the registry puts around every call that reaches X (see
//! [`Registry::call`]), whichever tool or source makes it.
//!
//! * **Spend caps**, per user, per OAuth client and per deployment, each per
//!   UTC day. Before a call, its worst case (from the source's estimate) is
//!   held against every cap in the store, so that instances sharing a
//!   database enforce one cap; a call that would pass one is refused,
//!   saying how much is left and how to ask for less. After the call, the
//!   hold is settled with what it cost.
//! * **The audit trail**: every call to X, with its user, client, tool, X's
//!   method, path, status, `x-transaction-id` and cost. Never arguments or
//!   tokens.
//! * **Writes that happen once**: a write tool's call with the same
//!   idempotency key (given, or derived from the user, the tool and the
//!   arguments) returns the first call's result instead of acting again.

use super::registry::Refused;
#[cfg(doc)]
use super::registry::Registry;
use rmcp::model::{CallToolResponse, CallToolResult, MetaObject};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use xmcp_auth::{Clock, Principal};
use xmcp_crypto::envelope::Keyring;
use xmcp_openapi::prices::{Micros, dollars};
use xmcp_store::{AuditEntry, OnceClaim, SpendLimit, Store, StoreError, TokenHash};

/// The argument a write tool takes to be made once.
pub const IDEMPOTENCY_ARGUMENT: &str = "idempotency_key";

/// The same key in a request's `_meta`, for clients that set it themselves.
pub const IDEMPOTENCY_META: &str = "xmcp.dev/idempotency-key";

/// Longest idempotency key accepted.
const MAX_KEY: usize = 200;

/// How long a claimed key waits for its call before another may act.
const ONCE_LEASE: i64 = 300;

/// How long a result kept for a key given by the caller lasts.
const GIVEN_KEY_RETENTION: i64 = 86_400;

/// A call to X, as a source reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCall {
    pub method: String,
    /// X's path template, e.g. `/2/users/{id}/followers`.
    pub path: String,
    /// X's HTTP status; 0 when X gave no answer.
    pub status: u16,
    pub transaction_id: Option<String>,
    /// What X charges for it, in micro-dollars.
    pub cost: Micros,
}

/// Daily caps, in micro-dollars; `None`: no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub user: Option<Micros>,
    pub client: Option<Micros>,
    pub deployment: Option<Micros>,
}

/// What the ledger takes from configuration.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    pub caps: Caps,
    /// How long audit entries (and spend counters) are kept, in seconds.
    pub retention: i64,
    /// Within this many seconds, a write with the same arguments as an
    /// earlier one by the same user returns its result.
    pub once_window: i64,
}

/// The layers' state: the store they count in, and how.
pub struct Ledger {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    config: LedgerConfig,
}

/// An amount held against the caps of one call.
pub struct Hold {
    day: i64,
    scopes: Vec<String>,
    amount: Micros,
}

/// A write's claim on its idempotency key.
pub struct OnceGuard {
    key: TokenHash,
    keep_for: i64,
}

/// What the once layer found before a call.
pub enum Once {
    /// Go ahead; finish or release the guard after.
    Go(OnceGuard),
    /// Answer this instead of calling.
    Answered(CallToolResponse),
}

fn day_of(now: i64) -> i64 {
    now.div_euclid(86_400)
}

fn usd(micros: Micros) -> f64 {
    micros as f64 / 1_000_000.0
}

impl Ledger {
    pub fn new(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        config: LedgerConfig,
    ) -> Self {
        Self {
            store,
            keyring,
            clock,
            config,
        }
    }

    /// The caps a call of `principal` is held against: only those that are
    /// set. An uncapped counter would be one more row every call updates,
    /// and the deployment's would serialise every call of every instance;
    /// what was spent is in the audit trail either way.
    fn limits(&self, principal: &Principal) -> Vec<SpendLimit> {
        let c = &self.config.caps;
        [
            (format!("user:{}", principal.user_id), c.user),
            (format!("client:{}", principal.client_id), c.client),
            ("deployment".to_owned(), c.deployment),
        ]
        .into_iter()
        .filter_map(|(scope, cap)| {
            cap.map(|cap| SpendLimit {
                scope,
                cap: Some(cap),
            })
        })
        .collect()
    }

    /// Hold `estimate` (a call's worst case) against every cap, or say why
    /// not. The store failing refuses the call: a cap that cannot be read
    /// is not passed.
    pub async fn hold(&self, principal: &Principal, estimate: Micros) -> Result<Hold, Refused> {
        let now = self.clock.now();
        let day = day_of(now);
        let limits = self.limits(principal);
        if limits.is_empty() {
            return Ok(Hold {
                day,
                scopes: Vec::new(),
                amount: estimate,
            });
        }
        let expires_at = (day + 1) * 86_400 + self.config.retention;
        match self
            .store
            .hold_spend(day, &limits, estimate, expires_at)
            .await
        {
            Ok(None) => Ok(Hold {
                day,
                scopes: limits.into_iter().map(|l| l.scope).collect(),
                amount: estimate,
            }),
            Ok(Some(refusal)) => {
                let left = (refusal.cap - refusal.spent - refusal.held).max(0);
                let whose = match refusal.scope.split_once(':') {
                    Some(("user", _)) => "your daily spending cap",
                    Some(("client", _)) => "this client's daily spending cap",
                    _ => "this server's daily spending cap",
                };
                Err(Refused(format!(
                    "Not sent: this call to X could cost up to {} and {whose} of {} has {} left today (UTC; {} held by calls in progress). Ask for less (a smaller max_results, fewer ids), or try again tomorrow; the server's operator sets the caps.",
                    dollars(estimate),
                    dollars(refusal.cap),
                    dollars(left),
                    dollars(refusal.held),
                )))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check the spending caps");
                Err(Refused(
                    "Not sent: the server cannot check its spending caps right now; try again in a moment."
                        .into(),
                ))
            }
        }
    }

    /// After a call: settle its hold with what it cost, record each call to
    /// X in the audit trail, and say the cost in the result's `_meta`.
    pub async fn settle(
        &self,
        hold: Hold,
        principal: &Principal,
        tool: &str,
        upstream: &[UpstreamCall],
        response: &mut CallToolResponse,
    ) {
        let cost: Micros = upstream.iter().map(|u| u.cost).sum();
        self.settle_spend(&hold, cost).await;
        self.audit(principal, tool, upstream).await;
        // What the user spent today is counted only under a user cap.
        let spent_today = match self.config.caps.user {
            Some(_) => self
                .store
                .get_spend(hold.day, &format!("user:{}", principal.user_id))
                .await
                .map(|s| s.spent)
                .ok(),
            None => None,
        };
        if let CallToolResponse::Complete(result) = response {
            let mut cost_meta = json!({
                "estimated_usd": usd(hold.amount),
                "cost_usd": usd(cost),
            });
            if let Some(spent) = spent_today {
                cost_meta["spent_today_usd"] = json!(usd(spent));
            }
            if let Some(cap) = self.config.caps.user {
                cost_meta["daily_cap_usd"] = json!(usd(cap));
            }
            let meta = result.meta.get_or_insert_with(|| MetaObject(Map::new()));
            meta.0.insert("xmcp.dev/cost".into(), cost_meta);
        }
    }

    /// After a resource read: settle its hold and audit its calls.
    pub async fn settle_read(
        &self,
        hold: Hold,
        principal: &Principal,
        uri: &str,
        upstream: &[UpstreamCall],
    ) {
        let cost: Micros = upstream.iter().map(|u| u.cost).sum();
        self.settle_spend(&hold, cost).await;
        self.audit(principal, uri, upstream).await;
    }

    /// Release a hold and count what the call cost instead.
    async fn settle_spend(&self, hold: &Hold, cost: Micros) {
        if hold.scopes.is_empty() {
            return;
        }
        if let Err(e) = self
            .store
            .settle_spend(hold.day, &hold.scopes, hold.amount, cost)
            .await
        {
            tracing::error!(error = %e, "cannot settle a call's spend");
        }
    }

    /// Record calls to X in the audit trail.
    pub async fn audit(&self, principal: &Principal, tool: &str, upstream: &[UpstreamCall]) {
        if upstream.is_empty() {
            return;
        }
        let now = self.clock.now();
        for u in upstream {
            metrics::counter!("xmcp_x_spend_micros_total", "operation" => format!("{} {}", u.method, u.path))
                .increment(u.cost.max(0) as u64);
        }
        let entries: Vec<AuditEntry> = upstream
            .iter()
            .map(|u| AuditEntry {
                at: now,
                user_id: principal.user_id.clone(),
                client_id: principal.client_id.clone(),
                tool: tool.to_owned(),
                method: u.method.clone(),
                path: u.path.clone(),
                status: i64::from(u.status),
                transaction_id: u.transaction_id.clone(),
                cost: u.cost,
                expires_at: now + self.config.retention,
            })
            .collect();
        if let Err(e) = self.store.insert_audit(&entries).await {
            tracing::error!(error = %e, tool, "cannot record calls to X in the audit trail");
        }
    }

    /// Before a write: the key it is made once under (`given` by the
    /// caller, or derived from `args`), claimed; or the answer an earlier
    /// call with the same key gave.
    pub async fn once(
        &self,
        principal: &Principal,
        tool: &str,
        given: Option<Value>,
        args: &Map<String, Value>,
    ) -> Result<Once, Refused> {
        let given = match given {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KEY => Some(k),
            Some(_) => {
                return Err(Refused(format!(
                    "`{IDEMPOTENCY_ARGUMENT}` must be a string of 1 to {MAX_KEY} characters"
                )));
            }
        };
        let (material, keep_for) = match &given {
            Some(k) => (format!("given\n{k}"), GIVEN_KEY_RETENTION),
            // serde_json's maps are sorted: the same arguments are the
            // same text.
            None => (
                format!("derived\n{}", Value::Object(args.clone())),
                self.config.once_window,
            ),
        };
        if keep_for <= 0 {
            return Ok(Once::Go(OnceGuard {
                key: TokenHash::of(""),
                keep_for: 0,
            }));
        }
        let key = TokenHash::of(&format!(
            "xmcp once v1\n{}\n{tool}\n{material}",
            principal.user_id
        ));
        let now = self.clock.now();
        let claim = self
            .store
            .claim_once(&key, &principal.user_id, now, now + ONCE_LEASE)
            .await;
        match claim {
            Ok(OnceClaim::Claimed) => Ok(Once::Go(OnceGuard { key, keep_for })),
            Ok(OnceClaim::InFlight) => Err(Refused(
                "Not sent again: the same call is still in progress; check its result before retrying."
                    .into(),
            )),
            Ok(OnceClaim::Done(sealed)) => Ok(Once::Answered(self.repeat(&key, &sealed))),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The first call's result, for a repeat.
    fn repeat(&self, key: &TokenHash, sealed: &str) -> CallToolResponse {
        let opened = self
            .keyring
            .open(sealed, once_aad(key).as_bytes())
            .ok()
            .and_then(|p| {
                serde_json::from_slice::<CallToolResult>(secrecy::ExposeSecret::expose_secret(&p))
                    .ok()
            });
        let Some(mut result) = opened else {
            return CallToolResult::error(vec![rmcp::model::ContentBlock::text(
                "Not sent again: the same call was already made (its result can no longer be shown).",
            )])
            .into();
        };
        let meta = result.meta.get_or_insert_with(|| MetaObject(Map::new()));
        meta.0.insert(
            "xmcp.dev/repeat".into(),
            json!(
                "The same call was already made: this is its result, and X was not called again."
            ),
        );
        result.into()
    }

    /// Give up a claim: the call was not made.
    pub async fn release_once(&self, guard: OnceGuard) {
        if guard.keep_for > 0
            && let Err(e) = self.store.release_once(&guard.key).await
        {
            tracing::error!(error = %e, "cannot release an idempotency key");
        }
    }

    /// After a write: keep its result for repeats if it succeeded, else
    /// free the key so that a retry acts.
    pub async fn finish_once(&self, guard: OnceGuard, response: &CallToolResponse) {
        if guard.keep_for <= 0 {
            return;
        }
        let succeeded = match response {
            CallToolResponse::Complete(r) if r.is_error != Some(true) => serde_json::to_vec(r).ok(),
            _ => None,
        };
        let outcome = match succeeded {
            Some(bytes) => {
                let sealed = self.keyring.seal(&bytes, once_aad(&guard.key).as_bytes());
                let until = self.clock.now() + guard.keep_for;
                self.store.finish_once(&guard.key, &sealed, until).await
            }
            None => self.store.release_once(&guard.key).await,
        };
        if let Err(e) = outcome {
            tracing::error!(error = %e, "cannot record a write's idempotency key");
        }
    }
}

fn once_aad(key: &TokenHash) -> String {
    xmcp_store::SealedColumn::OnceResult.aad(key.as_str())
}

fn unavailable(e: StoreError) -> Refused {
    tracing::error!(error = %e, "cannot read idempotency keys");
    Refused(
        "Not sent: the server cannot check whether this call was already made; try again in a moment."
            .into(),
    )
}
