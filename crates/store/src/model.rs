//! Rows the store reads and writes. Plain data: no secrets in the clear.

use serde::{Deserialize, Serialize};
use xmcp_crypto::token::TokenHash;

/// A dynamically registered client. `metadata` is the RFC 7591 client metadata
/// as registered (validated by the auth layer), stored as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRecord {
    pub client_id: String,
    /// SHA-256 of the client secret, for confidential clients.
    pub secret_hash: Option<TokenHash>,
    pub metadata: serde_json::Value,
    pub created_at: i64,
    /// Registrations that are never used expire; set to `None` once a grant
    /// has been issued to the client.
    pub expires_at: Option<i64>,
}

/// State kept between `/authorize` and the redirect back to the client.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingAuthorization {
    /// Digest of the opaque handle that the consent page carries.
    pub id: TokenHash,
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the client sent `redirect_uri` (then it must be repeated at /token).
    pub redirect_uri_explicit: bool,
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub resource: String,
    /// Digest of the CSRF token embedded in the consent form.
    pub csrf: TokenHash,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set once the user approved consent and was sent upstream.
    pub upstream_state: Option<TokenHash>,
    pub upstream_verifier_sealed: Option<String>,
    /// Set when this authorization approves an RFC 8628 device authorization
    /// (entered at `/device`) instead of redirecting to a client.
    pub device_code: Option<TokenHash>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuthorizationCode {
    pub hash: TokenHash,
    /// Which grant redeems it.
    pub kind: CodeKind,
    pub client_id: String,
    /// Where the code was sent (empty for a device code).
    pub redirect_uri: String,
    pub redirect_uri_explicit: bool,
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// What a one-use code was issued for, and so which grant redeems it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// An authorization code, sent to the client's redirect URI and
    /// redeemed with the `authorization_code` grant.
    Redirect,
    /// An approved device authorization (RFC 8628), kept under the device
    /// code's hash and redeemed with the device code grant.
    Device,
}

impl CodeKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Redirect => "redirect",
            Self::Device => "device",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [Self::Redirect, Self::Device]
            .into_iter()
            .find(|k| k.as_str() == stored)
    }
}

/// A grant: one user's authorization of one client for one resource and scope.
/// Every token issued from one code shares it, so revoking it revokes the family.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Digests and expiry times of a freshly minted access/refresh pair.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenPair {
    pub access: TokenHash,
    pub access_expires_at: i64,
    pub refresh: Option<TokenHash>,
    pub refresh_expires_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CodeRedemption {
    Issued,
    /// The code had been redeemed already; the caller should revoke this grant.
    AlreadyUsed {
        grant_id: Option<String>,
    },
    /// No such code (or it expired).
    NotFound,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RefreshRotation {
    /// The successor pair was stored; the old token is now rotated.
    Rotated { grant: Grant },
    /// The token was rotated moments ago (within the grace window): return the
    /// same successor, opened from this sealed value. Nothing was written.
    Grace {
        grant: Grant,
        successor_sealed: String,
    },
    /// A rotated token came back after the grace window: the grant was revoked.
    ReuseDetected { grant_id: String },
    /// Unknown, expired, or its grant was revoked.
    Invalid,
}

/// What the resource guard needs to know about an access token.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessTokenInfo {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub subject: String,
    pub username: Option<String>,
    pub scope: String,
    pub resource: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RefreshTokenInfo {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub resource: String,
    pub expires_at: i64,
}

/// Who the identity provider says the user is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserIdentity {
    /// Stable, provider-qualified subject, e.g. `local:alice` or `x:12345`.
    pub subject: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: String,
    pub subject: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A user's upstream credentials, sealed (AES-256-GCM, AAD bound to the user).
#[derive(Clone, PartialEq)]
pub struct UpstreamTokens {
    pub user_id: String,
    pub provider: String,
    pub access_sealed: String,
    pub refresh_sealed: Option<String>,
    pub expires_at: Option<i64>,
    pub scope: String,
    pub updated_at: i64,
    /// Set when the provider refused the refresh token: only a new sign-in
    /// (which writes new tokens) clears it.
    pub reauth_required_at: Option<i64>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Sealed values are not plaintext, but they are still nobody's business.
        f.debug_struct("UpstreamTokens")
            .field("user_id", &self.user_id)
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("reauth_required_at", &self.reauth_required_at)
            .finish_non_exhaustive()
    }
}

/// A stateful MCP session: the user it is bound to, and what the client's
/// `initialize` said of it (JSON: the protocol version and the client's
/// name and version, as `xmcp admin sessions` shows them). Serving the
/// session needs only the user and the expiry: every message is answered
/// statelessly.
#[derive(Clone, Debug, PartialEq)]
pub struct McpSession {
    /// Digest of the `Mcp-Session-Id`.
    pub id: TokenHash,
    pub user_id: String,
    pub init_params: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub pending: u64,
    pub codes: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub grants: u64,
    pub clients: u64,
    pub devices: u64,
    pub mcp_sessions: u64,
    /// Rate-limit buckets that are full again.
    pub rate_limits: u64,
    /// Audit entries, daily spend counters and idempotency keys past their
    /// retention.
    pub usage: u64,
}

impl SweepReport {
    pub fn total(&self) -> u64 {
        self.pending
            + self.codes
            + self.access_tokens
            + self.refresh_tokens
            + self.grants
            + self.clients
            + self.devices
            + self.mcp_sessions
            + self.rate_limits
            + self.usage
    }
}

/// A JWT signing key. The private key is sealed (AAD `signing_key:<kid>`).
#[derive(Clone, PartialEq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_sealed: String,
    /// The public key as a JWK (JSON text).
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// An RFC 8628 device authorization: a client without a browser asked for
/// tokens; a user approves it by entering `user_code` at `/device`.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceAuthorization {
    pub device_code: TokenHash,
    pub user_code: TokenHash,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Seconds the client must wait between polls.
    pub interval: i64,
    pub last_polled_at: Option<i64>,
    pub status: DeviceStatus,
    /// The user who approved it.
    pub user_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeviceStatus::Pending),
            "approved" => Some(DeviceStatus::Approved),
            "denied" => Some(DeviceStatus::Denied),
            _ => None,
        }
    }
}

/// The outcome of a client polling the token endpoint with a device code.
#[derive(Clone, Debug, PartialEq)]
pub enum DevicePoll {
    /// Unknown device code.
    NotFound,
    /// Polled sooner than the interval allows; the interval was raised to
    /// `interval` (RFC 8628 §3.5 `slow_down`).
    SlowDown { interval: i64 },
    /// The poll was recorded; the authorization as it stands.
    Polled(DeviceAuthorization),
}

/// A user, for operators.
#[derive(Clone, Debug, PartialEq)]
pub struct UserSummary {
    pub user: User,
    /// Live (unrevoked) grants.
    pub grants: i64,
    /// Upstream credentials held, and whether the provider refused their refresh.
    pub upstream_provider: Option<String>,
    pub upstream_expires_at: Option<i64>,
    pub reauth_required: bool,
}

/// A daily spend limit to hold an amount against: a scope (`user:<id>`,
/// `client:<id>`, `deployment`) and its cap in micro-dollars, if it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendLimit {
    pub scope: String,
    pub cap: Option<i64>,
}

/// Why an amount could not be held: the limit it would pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendRefusal {
    pub scope: String,
    pub cap: i64,
    /// Spent that day (settled calls).
    pub spent: i64,
    /// Held by calls in flight.
    pub held: i64,
}

/// A scope's spend on one day, in micro-dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spend {
    pub spent: i64,
    pub held: i64,
}

/// One call to X: who made it and through which tool, what X answered and
/// what it cost. Never arguments or tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub user_id: String,
    pub client_id: String,
    pub tool: String,
    pub method: String,
    /// X's path template (`/2/users/{id}/bookmarks`), not the filled path.
    pub path: String,
    /// X's HTTP status; 0 when X gave no answer.
    pub status: i64,
    pub transaction_id: Option<String>,
    /// Micro-dollars.
    pub cost: i64,
    /// When the sweep deletes it.
    pub expires_at: i64,
}

/// Calls and spend of one user, client and tool over a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    pub user_id: String,
    pub client_id: String,
    pub tool: String,
    pub calls: i64,
    /// Micro-dollars.
    pub cost: i64,
}

/// What claiming an idempotency key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnceClaim {
    /// Nobody held it: the caller may act, then finish or release it.
    Claimed,
    /// The first call finished: its result, sealed.
    Done(String),
    /// The first call is still running.
    InFlight,
}

/// Where a value sealed with the data key is kept. Every sealed value is
/// bound to its row by additional authenticated data, [`SealedColumn::aad`],
/// so that a value copied to another row does not open; `xmcp rotate-key`
/// re-seals each with the same AAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SealedColumn {
    /// `upstream_tokens.access_sealed`; the key is the user id.
    UpstreamAccess,
    /// `upstream_tokens.refresh_sealed`; the key is the user id.
    UpstreamRefresh,
    /// `signing_keys.private_sealed`; the key is the key id (`kid`).
    SigningKey,
    /// `pending_authorizations.upstream_verifier_sealed`; the key is the
    /// pending authorization's id digest.
    PendingVerifier,
    /// `refresh_tokens.successor_sealed`; the key is the rotated refresh
    /// token's digest.
    RefreshSuccessor,
    /// A `local_state` value; the key is its name. Not every local value is
    /// sealed: the owner of a name knows.
    LocalState,
    /// `once_keys.result_sealed`: the result of a write made once; the key
    /// is the idempotency key's digest.
    OnceResult,
}

impl SealedColumn {
    /// The additional authenticated data binding a value of this column to
    /// the row named by `key` (see each variant for what the key is). The
    /// one definition of every format: the owners seal and open with it, and
    /// a rotation re-seals with it.
    pub fn aad(self, key: &str) -> String {
        match self {
            Self::UpstreamAccess => format!("upstream_tokens:{key}:access"),
            Self::UpstreamRefresh => format!("upstream_tokens:{key}:refresh"),
            Self::SigningKey => format!("signing_key:{key}"),
            Self::PendingVerifier => format!("pending-upstream-verifier:{key}"),
            Self::RefreshSuccessor => format!("refresh-successor:{key}"),
            // A sealed local value is bound to its own name.
            Self::LocalState => key.to_owned(),
            Self::OnceResult => format!("once-result:{key}"),
        }
    }

    /// The table the column is in.
    pub fn table(self) -> &'static str {
        match self {
            Self::UpstreamAccess | Self::UpstreamRefresh => "upstream_tokens",
            Self::SigningKey => "signing_keys",
            Self::PendingVerifier => "pending_authorizations",
            Self::RefreshSuccessor => "refresh_tokens",
            Self::LocalState => "local_state",
            Self::OnceResult => "once_keys",
        }
    }
}

/// One stored value of a [`SealedColumn`], as text.
#[derive(Clone, PartialEq)]
pub struct SealedValue {
    pub column: SealedColumn,
    /// Which row: see [`SealedColumn`].
    pub key: String,
    pub sealed: String,
}

impl std::fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedValue")
            .field("column", &self.column)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
