//! The SQL both backends share. `impl_sql_store!` expands the same query text
//! for each native pool type, so SQLite and PostgreSQL cannot drift apart, and
//! no call site ever branches on the backend.
//!
//! Portability rules for the SQL of this module and its files: numbered `$n`
//! placeholders used in ascending order of first appearance; `ON CONFLICT`
//! upserts; `RETURNING`; BIGINT Unix seconds; BOOLEAN columns.
//!
//! The SQL is by capability, one file per group of store traits: [`flow`],
//! [`grants`], [`users`], [`upkeep`] and [`usage`]. `impl_sql_store!`
//! expands the row helpers below and then each file's macro into a backend's
//! module.

pub(crate) mod flow;
pub(crate) mod grants;
pub(crate) mod upkeep;
pub(crate) mod usage;
pub(crate) mod users;

/// Generate an id for a new row (not a secret).
pub(crate) fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        hex::encode(xmcp_crypto::random_bytes::<12>())
    )
}

macro_rules! impl_sql_store {
    ($store:ty, $db:ty) => {
        use crate::model::*;
        use crate::sql::new_id;
        use crate::{
            AdminStore, ClientStore, DeviceStore, FlowStore, GrantStore, LocalStateStore,
            Maintenance, McpSessionStore, RateLimitStore, Result, SealedStore, SigningKeyStore,
            StoreError, UpstreamTokenStore, UserStore,
        };
        use async_trait::async_trait;
        use sqlx::Row;
        use xmcp_crypto::token::TokenHash;

        type DbRow = <$db as sqlx::Database>::Row;

        fn hash_col(row: &DbRow, col: &str) -> Result<TokenHash> {
            Ok(TokenHash::from_stored(row.try_get::<String, _>(col)?))
        }

        fn opt_hash_col(row: &DbRow, col: &str) -> Result<Option<TokenHash>> {
            Ok(row
                .try_get::<Option<String>, _>(col)?
                .map(TokenHash::from_stored))
        }

        fn client_from_row(row: &DbRow) -> Result<ClientRecord> {
            let metadata: String = row.try_get("metadata")?;
            Ok(ClientRecord {
                client_id: row.try_get("client_id")?,
                secret_hash: opt_hash_col(row, "secret_hash")?,
                metadata: serde_json::from_str(&metadata)
                    .map_err(|e| StoreError::Corrupt(format!("client metadata: {e}")))?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        }

        fn pending_from_row(row: &DbRow) -> Result<PendingAuthorization> {
            Ok(PendingAuthorization {
                id: hash_col(row, "id_hash")?,
                client_id: row.try_get("client_id")?,
                redirect_uri: row.try_get("redirect_uri")?,
                redirect_uri_explicit: row.try_get("redirect_uri_explicit")?,
                scope: row.try_get("scope")?,
                state: row.try_get("state")?,
                code_challenge: row.try_get("code_challenge")?,
                resource: row.try_get("resource")?,
                csrf: hash_col(row, "csrf_hash")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                upstream_state: opt_hash_col(row, "upstream_state_hash")?,
                upstream_verifier_sealed: row.try_get("upstream_verifier_sealed")?,
                device_code: opt_hash_col(row, "device_code_hash")?,
            })
        }

        fn code_from_row(row: &DbRow) -> Result<AuthorizationCode> {
            let kind: String = row.try_get("kind")?;
            Ok(AuthorizationCode {
                hash: hash_col(row, "code_hash")?,
                kind: CodeKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("code kind `{kind}`")))?,
                client_id: row.try_get("client_id")?,
                redirect_uri: row.try_get("redirect_uri")?,
                redirect_uri_explicit: row.try_get("redirect_uri_explicit")?,
                code_challenge: row.try_get("code_challenge")?,
                resource: row.try_get("resource")?,
                scope: row.try_get("scope")?,
                user_id: row.try_get("user_id")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                used_at: row.try_get("used_at")?,
            })
        }

        fn grant_from_row(row: &DbRow) -> Result<Grant> {
            Ok(Grant {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                client_id: row.try_get("client_id")?,
                scope: row.try_get("scope")?,
                resource: row.try_get("resource")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        fn mcp_session_from_row(row: &DbRow) -> Result<McpSession> {
            Ok(McpSession {
                id: hash_col(row, "id_hash")?,
                user_id: row.try_get("user_id")?,
                init_params: row.try_get("init_params")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        }

        fn user_from_row(row: &DbRow) -> Result<User> {
            Ok(User {
                id: row.try_get("id")?,
                subject: row.try_get("subject")?,
                username: row.try_get("username")?,
                display_name: row.try_get("display_name")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn upstream_from_row(row: &DbRow) -> Result<UpstreamTokens> {
            Ok(UpstreamTokens {
                user_id: row.try_get("user_id")?,
                provider: row.try_get("provider")?,
                access_sealed: row.try_get("access_sealed")?,
                refresh_sealed: row.try_get("refresh_sealed")?,
                expires_at: row.try_get("expires_at")?,
                scope: row.try_get("scope")?,
                updated_at: row.try_get("updated_at")?,
                reauth_required_at: row.try_get("reauth_required_at")?,
            })
        }

        fn device_from_row(row: &DbRow) -> Result<DeviceAuthorization> {
            let status: String = row.try_get("status")?;
            Ok(DeviceAuthorization {
                device_code: hash_col(row, "device_code_hash")?,
                user_code: hash_col(row, "user_code_hash")?,
                client_id: row.try_get("client_id")?,
                scope: row.try_get("scope")?,
                resource: row.try_get("resource")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                interval: row.try_get("poll_interval")?,
                last_polled_at: row.try_get("last_polled_at")?,
                status: DeviceStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("device status `{status}`")))?,
                user_id: row.try_get("user_id")?,
            })
        }

        fn is_unique_violation(e: &sqlx::Error) -> bool {
            matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
        }

        async fn insert_token_pair(
            tx: &mut sqlx::Transaction<'_, $db>,
            grant_id: &str,
            now: i64,
            pair: &TokenPair,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO access_tokens (token_hash, grant_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(pair.access.as_str())
            .bind(grant_id)
            .bind(now)
            .bind(pair.access_expires_at)
            .execute(&mut **tx)
            .await?;
            if let Some(refresh) = &pair.refresh {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(refresh.as_str())
                .bind(grant_id)
                .bind(now)
                .bind(pair.refresh_expires_at)
                .execute(&mut **tx)
                .await?;
            }
            Ok(())
        }

        async fn insert_code_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            c: &AuthorizationCode,
        ) -> Result<()> {
            sqlx::query(
                "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, \
                 redirect_uri_explicit, code_challenge, resource, scope, user_id, created_at, \
                 expires_at, kind) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(c.hash.as_str())
            .bind(&c.client_id)
            .bind(&c.redirect_uri)
            .bind(c.redirect_uri_explicit)
            .bind(&c.code_challenge)
            .bind(&c.resource)
            .bind(&c.scope)
            .bind(&c.user_id)
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(c.kind.as_str())
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn revoke_grant_in(
            tx: &mut sqlx::Transaction<'_, $db>,
            grant_id: &str,
            now: i64,
        ) -> Result<()> {
            sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(grant_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM access_tokens WHERE grant_id = $1")
                .bind(grant_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = $1")
                .bind(grant_id)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        crate::sql::flow::sql_flow!($store, $db);
        crate::sql::grants::sql_grants!($store, $db);
        crate::sql::users::sql_users!($store, $db);
        crate::sql::upkeep::sql_upkeep!($store, $db);
        crate::sql::usage::impl_usage_store!($store, $db);
    };
}

pub(crate) use impl_sql_store;
