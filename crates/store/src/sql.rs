//! The SQL both backends share. `impl_sql_store!` expands the same query text
//! for each native pool type, so SQLite and PostgreSQL cannot drift apart, and
//! no call site ever branches on the backend.
//!
//! Portability rules for the text below: numbered `$n` placeholders used in
//! ascending order of first appearance; `ON CONFLICT` upserts; `RETURNING`;
//! BIGINT Unix seconds; BOOLEAN columns.

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
            Ok(AuthorizationCode {
                hash: hash_col(row, "code_hash")?,
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
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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

        #[async_trait]
        impl ClientStore for $store {
            async fn insert_client(&self, c: &ClientRecord) -> Result<()> {
                let res = sqlx::query(
                    "INSERT INTO clients (client_id, secret_hash, metadata, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&c.client_id)
                .bind(c.secret_hash.as_ref().map(|h| h.as_str()))
                .bind(c.metadata.to_string())
                .bind(c.created_at)
                .bind(c.expires_at)
                .execute(&self.pool)
                .await;
                match res {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
                    Err(e) => Err(e.into()),
                }
            }

            async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
                sqlx::query("SELECT * FROM clients WHERE client_id = $1")
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(client_from_row)
                    .transpose()
            }

            async fn count_clients_since(&self, since: i64) -> Result<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM clients WHERE created_at >= $1")
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.try_get("n")?)
            }
        }

        #[async_trait]
        impl FlowStore for $store {
            async fn insert_pending(&self, p: &PendingAuthorization) -> Result<()> {
                sqlx::query(
                    "INSERT INTO pending_authorizations (id_hash, client_id, redirect_uri, \
                     redirect_uri_explicit, scope, state, code_challenge, resource, csrf_hash, \
                     created_at, expires_at, device_code_hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(p.id.as_str())
                .bind(&p.client_id)
                .bind(&p.redirect_uri)
                .bind(p.redirect_uri_explicit)
                .bind(&p.scope)
                .bind(&p.state)
                .bind(&p.code_challenge)
                .bind(&p.resource)
                .bind(p.csrf.as_str())
                .bind(p.created_at)
                .bind(p.expires_at)
                .bind(p.device_code.as_ref().map(|h| h.as_str()))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_pending(
                &self,
                id: &TokenHash,
                now: i64,
            ) -> Result<Option<PendingAuthorization>> {
                sqlx::query(
                    "SELECT * FROM pending_authorizations \
                     WHERE id_hash = $1 AND expires_at > $2 AND consumed_at IS NULL",
                )
                .bind(id.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(pending_from_row)
                .transpose()
            }

            async fn set_pending_upstream(
                &self,
                id: &TokenHash,
                upstream_state: &TokenHash,
                upstream_verifier_sealed: &str,
                now: i64,
            ) -> Result<bool> {
                let res = sqlx::query(
                    "UPDATE pending_authorizations SET upstream_state_hash = $1, \
                     upstream_verifier_sealed = $2 \
                     WHERE id_hash = $3 AND expires_at > $4 AND consumed_at IS NULL",
                )
                .bind(upstream_state.as_str())
                .bind(upstream_verifier_sealed)
                .bind(id.as_str())
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(res.rows_affected() == 1)
            }

            async fn find_pending_by_upstream_state(
                &self,
                upstream_state: &TokenHash,
            ) -> Result<Option<PendingAuthorization>> {
                sqlx::query(
                    "SELECT * FROM pending_authorizations \
                     WHERE upstream_state_hash = $1 AND consumed_at IS NULL",
                )
                .bind(upstream_state.as_str())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(pending_from_row)
                .transpose()
            }

            async fn take_pending(
                &self,
                id: &TokenHash,
                now: i64,
            ) -> Result<Option<PendingAuthorization>> {
                sqlx::query(
                    "UPDATE pending_authorizations SET consumed_at = $1 \
                     WHERE id_hash = $2 AND expires_at > $3 AND consumed_at IS NULL RETURNING *",
                )
                .bind(now)
                .bind(id.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(pending_from_row)
                .transpose()
            }

            async fn record_consent(&self, c: &Consent) -> Result<()> {
                sqlx::query(
                    "INSERT INTO consents (user_id, client_id, redirect_uri, scope, created_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, client_id, redirect_uri) \
                     DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at",
                )
                .bind(&c.user_id)
                .bind(&c.client_id)
                .bind(&c.redirect_uri)
                .bind(&c.scope)
                .bind(c.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_consent(
                &self,
                user_id: &str,
                client_id: &str,
                redirect_uri: &str,
            ) -> Result<Option<Consent>> {
                let row = sqlx::query(
                    "SELECT * FROM consents \
                     WHERE user_id = $1 AND client_id = $2 AND redirect_uri = $3",
                )
                .bind(user_id)
                .bind(client_id)
                .bind(redirect_uri)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| -> Result<Consent> {
                    Ok(Consent {
                        user_id: r.try_get("user_id")?,
                        client_id: r.try_get("client_id")?,
                        redirect_uri: r.try_get("redirect_uri")?,
                        scope: r.try_get("scope")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .transpose()
            }
        }

        #[async_trait]
        impl GrantStore for $store {
            async fn insert_code(&self, c: &AuthorizationCode) -> Result<()> {
                let mut conn = self.pool.acquire().await?;
                insert_code_in(&mut conn, c).await
            }

            async fn get_code(&self, hash: &TokenHash, now: i64) -> Result<Option<AuthorizationCode>> {
                sqlx::query("SELECT * FROM authorization_codes WHERE code_hash = $1 AND expires_at > $2")
                    .bind(hash.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(code_from_row)
                    .transpose()
            }

            async fn issue_from_code(
                &self,
                code: &TokenHash,
                now: i64,
                grant: &Grant,
                tokens: &TokenPair,
            ) -> Result<CodeRedemption> {
                let mut tx = self.pool.begin().await?;
                let claimed = sqlx::query(
                    "UPDATE authorization_codes SET used_at = $1 \
                     WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $3",
                )
                .bind(now)
                .bind(code.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    let row = sqlx::query("SELECT used_at FROM authorization_codes WHERE code_hash = $1")
                        .bind(code.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                    let used = match row {
                        Some(r) => r.try_get::<Option<i64>, _>("used_at")?.is_some(),
                        None => false,
                    };
                    if !used {
                        return Ok(CodeRedemption::NotFound);
                    }
                    let grant_id = sqlx::query("SELECT id FROM grants WHERE code_hash = $1")
                        .bind(code.as_str())
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.try_get::<String, _>("id"))
                        .transpose()?;
                    return Ok(CodeRedemption::AlreadyUsed { grant_id });
                }
                sqlx::query(
                    "INSERT INTO grants (id, user_id, client_id, scope, resource, code_hash, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&grant.id)
                .bind(&grant.user_id)
                .bind(&grant.client_id)
                .bind(&grant.scope)
                .bind(&grant.resource)
                .bind(code.as_str())
                .bind(grant.created_at)
                .execute(&mut *tx)
                .await?;
                insert_token_pair(&mut tx, &grant.id, now, tokens).await?;
                // A client that received tokens is in use: its registration no
                // longer expires.
                sqlx::query("UPDATE clients SET expires_at = NULL WHERE client_id = $1")
                    .bind(&grant.client_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(CodeRedemption::Issued)
            }

            async fn rotate_refresh(
                &self,
                old: &TokenHash,
                now: i64,
                grace_seconds: i64,
                successor: &TokenPair,
                successor_sealed: &str,
            ) -> Result<RefreshRotation> {
                let mut tx = self.pool.begin().await?;
                // Claim the token first: the UPDATE takes the row (or database)
                // write lock, so concurrent rotations serialise here.
                let claimed = sqlx::query(
                    "UPDATE refresh_tokens SET rotated_at = $1, successor_sealed = $2 \
                     WHERE token_hash = $3 AND rotated_at IS NULL AND expires_at > $4",
                )
                .bind(now)
                .bind(successor_sealed)
                .bind(old.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let row = sqlx::query(
                    "SELECT r.rotated_at, r.successor_sealed, g.id, g.user_id, g.client_id, \
                     g.scope, g.resource, g.created_at, g.revoked_at \
                     FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
                     WHERE r.token_hash = $1",
                )
                .bind(old.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(RefreshRotation::Invalid);
                };
                let grant = grant_from_row(&row)?;
                if grant.revoked_at.is_some() {
                    return Ok(RefreshRotation::Invalid);
                }
                if claimed == 1 {
                    insert_token_pair(&mut tx, &grant.id, now, successor).await?;
                    tx.commit().await?;
                    return Ok(RefreshRotation::Rotated { grant });
                }
                let rotated_at: Option<i64> = row.try_get("rotated_at")?;
                let sealed: Option<String> = row.try_get("successor_sealed")?;
                match (rotated_at, sealed) {
                    (Some(at), Some(sealed)) if now - at <= grace_seconds => {
                        Ok(RefreshRotation::Grace {
                            grant,
                            successor_sealed: sealed,
                        })
                    }
                    (Some(_), _) => {
                        revoke_grant_in(&mut tx, &grant.id, now).await?;
                        tx.commit().await?;
                        Ok(RefreshRotation::ReuseDetected { grant_id: grant.id })
                    }
                    // Not rotated and not claimable: expired.
                    (None, _) => Ok(RefreshRotation::Invalid),
                }
            }

            async fn find_access_token(
                &self,
                hash: &TokenHash,
                now: i64,
            ) -> Result<Option<AccessTokenInfo>> {
                let row = sqlx::query(
                    "SELECT a.grant_id, a.created_at, a.expires_at, g.client_id, g.user_id, \
                     g.scope, g.resource, u.subject, u.username \
                     FROM access_tokens a JOIN grants g ON g.id = a.grant_id \
                     JOIN users u ON u.id = g.user_id \
                     WHERE a.token_hash = $1 AND a.expires_at > $2 AND g.revoked_at IS NULL",
                )
                .bind(hash.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| -> Result<AccessTokenInfo> {
                    Ok(AccessTokenInfo {
                        grant_id: r.try_get("grant_id")?,
                        client_id: r.try_get("client_id")?,
                        user_id: r.try_get("user_id")?,
                        subject: r.try_get("subject")?,
                        username: r.try_get("username")?,
                        scope: r.try_get("scope")?,
                        resource: r.try_get("resource")?,
                        issued_at: r.try_get("created_at")?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()
            }

            async fn find_refresh_token(
                &self,
                hash: &TokenHash,
                now: i64,
            ) -> Result<Option<RefreshTokenInfo>> {
                let row = sqlx::query(
                    "SELECT r.grant_id, r.expires_at, g.client_id, g.user_id, g.scope, g.resource \
                     FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
                     WHERE r.token_hash = $1 AND r.expires_at > $2 AND r.rotated_at IS NULL \
                     AND g.revoked_at IS NULL",
                )
                .bind(hash.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| -> Result<RefreshTokenInfo> {
                    Ok(RefreshTokenInfo {
                        grant_id: r.try_get("grant_id")?,
                        client_id: r.try_get("client_id")?,
                        user_id: r.try_get("user_id")?,
                        scope: r.try_get("scope")?,
                        resource: r.try_get("resource")?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()
            }

            async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                revoke_grant_in(&mut tx, grant_id, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_access_token(&self, hash: &TokenHash) -> Result<()> {
                sqlx::query("DELETE FROM access_tokens WHERE token_hash = $1")
                    .bind(hash.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn get_grant(&self, grant_id: &str) -> Result<Option<Grant>> {
                sqlx::query("SELECT * FROM grants WHERE id = $1")
                    .bind(grant_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(grant_from_row)
                    .transpose()
            }
        }

        #[async_trait]
        impl UserStore for $store {
            async fn upsert_user(&self, identity: &UserIdentity, now: i64) -> Result<User> {
                let row = sqlx::query(
                    "INSERT INTO users (id, subject, username, display_name, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject) DO UPDATE SET \
                     username = excluded.username, display_name = excluded.display_name, \
                     updated_at = excluded.updated_at RETURNING *",
                )
                .bind(new_id("usr"))
                .bind(&identity.subject)
                .bind(&identity.username)
                .bind(&identity.display_name)
                .bind(now)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                user_from_row(&row)
            }

            async fn get_user(&self, user_id: &str) -> Result<Option<User>> {
                sqlx::query("SELECT * FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(user_from_row)
                    .transpose()
            }
        }

        #[async_trait]
        impl UpstreamTokenStore for $store {
            async fn put_upstream_tokens(&self, t: &UpstreamTokens) -> Result<()> {
                sqlx::query(
                    "INSERT INTO upstream_tokens (user_id, provider, access_sealed, refresh_sealed, \
                     expires_at, scope, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (user_id) DO UPDATE SET provider = excluded.provider, \
                     access_sealed = excluded.access_sealed, refresh_sealed = excluded.refresh_sealed, \
                     expires_at = excluded.expires_at, scope = excluded.scope, \
                     updated_at = excluded.updated_at, reauth_required_at = NULL",
                )
                .bind(&t.user_id)
                .bind(&t.provider)
                .bind(&t.access_sealed)
                .bind(&t.refresh_sealed)
                .bind(t.expires_at)
                .bind(&t.scope)
                .bind(t.updated_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_upstream_tokens(&self, user_id: &str) -> Result<Option<UpstreamTokens>> {
                sqlx::query("SELECT * FROM upstream_tokens WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(upstream_from_row)
                    .transpose()
            }

            async fn list_upstream_tokens(&self) -> Result<Vec<UpstreamTokens>> {
                sqlx::query("SELECT * FROM upstream_tokens ORDER BY user_id")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(upstream_from_row)
                    .collect()
            }

            async fn try_lease_upstream_refresh(
                &self,
                user_id: &str,
                access_sealed: &str,
                holder: &str,
                now: i64,
                until: i64,
            ) -> Result<bool> {
                let res = sqlx::query(
                    "UPDATE upstream_tokens SET refresh_lease_holder = $1, refresh_lease_until = $2 \
                     WHERE user_id = $3 AND access_sealed = $4 \
                     AND (refresh_lease_until IS NULL OR refresh_lease_until <= $5)",
                )
                .bind(holder)
                .bind(until)
                .bind(user_id)
                .bind(access_sealed)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(res.rows_affected() == 1)
            }

            async fn finish_upstream_refresh(
                &self,
                t: &UpstreamTokens,
                holder: &str,
            ) -> Result<bool> {
                let res = sqlx::query(
                    "UPDATE upstream_tokens SET access_sealed = $1, refresh_sealed = $2, \
                     expires_at = $3, scope = $4, updated_at = $5, reauth_required_at = NULL, \
                     refresh_lease_holder = NULL, refresh_lease_until = NULL \
                     WHERE user_id = $6 AND refresh_lease_holder = $7",
                )
                .bind(&t.access_sealed)
                .bind(&t.refresh_sealed)
                .bind(t.expires_at)
                .bind(&t.scope)
                .bind(t.updated_at)
                .bind(&t.user_id)
                .bind(holder)
                .execute(&self.pool)
                .await?;
                Ok(res.rows_affected() == 1)
            }

            async fn release_upstream_lease(
                &self,
                user_id: &str,
                holder: &str,
                reauth_required_at: Option<i64>,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE upstream_tokens SET refresh_lease_holder = NULL, refresh_lease_until = NULL, \
                     reauth_required_at = COALESCE($1, reauth_required_at) \
                     WHERE user_id = $2 AND refresh_lease_holder = $3",
                )
                .bind(reauth_required_at)
                .bind(user_id)
                .bind(holder)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_upstream_tokens(&self, user_id: &str) -> Result<bool> {
                let res = sqlx::query("DELETE FROM upstream_tokens WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(res.rows_affected() == 1)
            }
        }

        #[async_trait]
        impl DeviceStore for $store {
            async fn insert_device(&self, d: &DeviceAuthorization) -> Result<()> {
                let res = sqlx::query(
                    "INSERT INTO device_authorizations (device_code_hash, user_code_hash, client_id, \
                     scope, resource, created_at, expires_at, poll_interval, last_polled_at, status, \
                     user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(d.device_code.as_str())
                .bind(d.user_code.as_str())
                .bind(&d.client_id)
                .bind(&d.scope)
                .bind(&d.resource)
                .bind(d.created_at)
                .bind(d.expires_at)
                .bind(d.interval)
                .bind(d.last_polled_at)
                .bind(d.status.as_str())
                .bind(&d.user_id)
                .execute(&self.pool)
                .await;
                match res {
                    Ok(_) => Ok(()),
                    Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
                    Err(e) => Err(e.into()),
                }
            }

            async fn find_device_by_user_code(
                &self,
                user_code: &TokenHash,
                now: i64,
            ) -> Result<Option<DeviceAuthorization>> {
                sqlx::query(
                    "SELECT * FROM device_authorizations WHERE user_code_hash = $1 \
                     AND status = 'pending' AND expires_at > $2",
                )
                .bind(user_code.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(device_from_row)
                .transpose()
            }

            async fn poll_device(&self, device_code: &TokenHash, now: i64) -> Result<DevicePoll> {
                // One statement each, so concurrent polls cannot both pass.
                let polled = sqlx::query(
                    "UPDATE device_authorizations SET last_polled_at = $1 \
                     WHERE device_code_hash = $2 AND (status <> 'pending' \
                     OR last_polled_at IS NULL OR $3 - last_polled_at >= poll_interval) \
                     RETURNING *",
                )
                .bind(now)
                .bind(device_code.as_str())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = polled {
                    return Ok(DevicePoll::Polled(device_from_row(&row)?));
                }
                let slowed = sqlx::query(
                    "UPDATE device_authorizations SET poll_interval = poll_interval + 5, \
                     last_polled_at = $1 WHERE device_code_hash = $2 RETURNING poll_interval",
                )
                .bind(now)
                .bind(device_code.as_str())
                .fetch_optional(&self.pool)
                .await?;
                match slowed {
                    Some(row) => Ok(DevicePoll::SlowDown {
                        interval: row.try_get("poll_interval")?,
                    }),
                    None => Ok(DevicePoll::NotFound),
                }
            }

            async fn approve_device(
                &self,
                device_code: &TokenHash,
                user_id: &str,
                c: &AuthorizationCode,
                now: i64,
            ) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let claimed = sqlx::query(
                    "UPDATE device_authorizations SET status = 'approved', user_id = $1, \
                     decided_at = $2 WHERE device_code_hash = $3 AND status = 'pending' \
                     AND expires_at > $4",
                )
                .bind(user_id)
                .bind(now)
                .bind(device_code.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    return Ok(false);
                }
                insert_code_in(&mut tx, c).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn deny_device(&self, device_code: &TokenHash, now: i64) -> Result<bool> {
                let res = sqlx::query(
                    "UPDATE device_authorizations SET status = 'denied', decided_at = $1 \
                     WHERE device_code_hash = $2 AND status = 'pending'",
                )
                .bind(now)
                .bind(device_code.as_str())
                .execute(&self.pool)
                .await?;
                Ok(res.rows_affected() == 1)
            }
        }

        #[async_trait]
        impl LocalStateStore for $store {
            async fn put_local_state(&self, name: &str, value: &str, now: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO local_state (name, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                     updated_at = excluded.updated_at",
                )
                .bind(name)
                .bind(value)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_local_state(&self, name: &str) -> Result<Option<String>> {
                Ok(sqlx::query("SELECT value FROM local_state WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.try_get::<String, _>("value"))
                    .transpose()?)
            }

            async fn delete_local_state(&self, name: &str) -> Result<bool> {
                let res = sqlx::query("DELETE FROM local_state WHERE name = $1")
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                Ok(res.rows_affected() == 1)
            }
        }

        #[async_trait]
        impl McpSessionStore for $store {
            async fn insert_mcp_session(&self, s: &McpSession, most: u32) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let res = sqlx::query(
                    "INSERT INTO mcp_sessions (id_hash, user_id, init_params, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(s.id.as_str())
                .bind(&s.user_id)
                .bind(&s.init_params)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(&mut *tx)
                .await;
                match res {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict),
                    Err(e) => return Err(e.into()),
                }
                // The user's other sessions beyond the newest `most - 1`.
                sqlx::query(
                    "DELETE FROM mcp_sessions WHERE user_id = $1 AND id_hash <> $2 AND id_hash NOT IN \
                     (SELECT id_hash FROM mcp_sessions WHERE user_id = $1 AND id_hash <> $2 \
                      ORDER BY created_at DESC, id_hash DESC LIMIT $3)",
                )
                .bind(&s.user_id)
                .bind(s.id.as_str())
                .bind(i64::from(most.saturating_sub(1)))
                .execute(&mut *tx)
                .await?;
                Ok(tx.commit().await?)
            }

            async fn get_mcp_session(&self, id: &TokenHash, now: i64) -> Result<Option<McpSession>> {
                sqlx::query("SELECT * FROM mcp_sessions WHERE id_hash = $1 AND expires_at > $2")
                    .bind(id.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(mcp_session_from_row)
                    .transpose()
            }

            async fn extend_mcp_session(&self, id: &TokenHash, now: i64, until: i64) -> Result<bool> {
                let res = sqlx::query(
                    "UPDATE mcp_sessions SET expires_at = $1 WHERE id_hash = $2 AND expires_at > $3",
                )
                .bind(until)
                .bind(id.as_str())
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(res.rows_affected() == 1)
            }

            async fn delete_mcp_session(&self, id: &TokenHash) -> Result<bool> {
                let res = sqlx::query("DELETE FROM mcp_sessions WHERE id_hash = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(res.rows_affected() == 1)
            }
        }

        #[async_trait]
        impl AdminStore for $store {
            async fn list_users(&self) -> Result<Vec<UserSummary>> {
                let rows = sqlx::query(
                    "SELECT u.*, \
                     (SELECT COUNT(*) FROM grants g WHERE g.user_id = u.id AND g.revoked_at IS NULL) \
                       AS live_grants, \
                     t.provider AS upstream_provider, t.expires_at AS upstream_expires_at, \
                     t.reauth_required_at AS upstream_reauth \
                     FROM users u LEFT JOIN upstream_tokens t ON t.user_id = u.id \
                     ORDER BY u.created_at, u.id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| -> Result<UserSummary> {
                        Ok(UserSummary {
                            user: user_from_row(r)?,
                            grants: r.try_get("live_grants")?,
                            upstream_provider: r.try_get("upstream_provider")?,
                            upstream_expires_at: r.try_get("upstream_expires_at")?,
                            reauth_required: r
                                .try_get::<Option<i64>, _>("upstream_reauth")?
                                .is_some(),
                        })
                    })
                    .collect()
            }

            async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
                sqlx::query("SELECT * FROM clients ORDER BY created_at DESC, client_id")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(client_from_row)
                    .collect()
            }

            async fn list_grants(&self, user_id: Option<&str>) -> Result<Vec<Grant>> {
                let rows = match user_id {
                    Some(user_id) => {
                        sqlx::query(
                            "SELECT * FROM grants WHERE revoked_at IS NULL AND user_id = $1 \
                             ORDER BY created_at DESC, id",
                        )
                        .bind(user_id)
                        .fetch_all(&self.pool)
                        .await?
                    }
                    None => {
                        sqlx::query(
                            "SELECT * FROM grants WHERE revoked_at IS NULL \
                             ORDER BY created_at DESC, id",
                        )
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                rows.iter().map(grant_from_row).collect()
            }

            async fn list_mcp_sessions(&self, user_id: Option<&str>, now: i64) -> Result<Vec<McpSession>> {
                let rows = sqlx::query(
                    "SELECT * FROM mcp_sessions WHERE expires_at > $1 AND ($2 IS NULL OR user_id = $2) \
                     ORDER BY created_at DESC, id_hash",
                )
                .bind(now)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(mcp_session_from_row).collect()
            }

            async fn delete_user(&self, user_id: &str) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                // Foreign keys cascade to grants (and their tokens), codes,
                // consents, device authorizations and upstream credentials.
                let res = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM mcp_sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(res.rows_affected() == 1)
            }

            async fn delete_client(&self, client_id: &str, now: i64) -> Result<(bool, u64)> {
                let mut tx = self.pool.begin().await?;
                let grants: Vec<String> = sqlx::query(
                    "SELECT id FROM grants WHERE client_id = $1 AND revoked_at IS NULL",
                )
                .bind(client_id)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<std::result::Result<_, _>>()?;
                for id in &grants {
                    revoke_grant_in(&mut tx, id, now).await?;
                }
                let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok((deleted == 1, grants.len() as u64))
            }
        }

        #[async_trait]
        impl SigningKeyStore for $store {
            async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, private_sealed, public_jwk, created_at, retired_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&k.kid)
                .bind(&k.alg)
                .bind(&k.private_sealed)
                .bind(&k.public_jwk)
                .bind(k.created_at)
                .bind(k.retired_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
                let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid DESC")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| -> Result<SigningKeyRecord> {
                        Ok(SigningKeyRecord {
                            kid: r.try_get("kid")?,
                            alg: r.try_get("alg")?,
                            private_sealed: r.try_get("private_sealed")?,
                            public_jwk: r.try_get("public_jwk")?,
                            created_at: r.try_get("created_at")?,
                            retired_at: r.try_get("retired_at")?,
                        })
                    })
                    .collect()
            }

            async fn retire_signing_keys(&self, keep: &str, now: i64) -> Result<u64> {
                Ok(sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid <> $2 AND retired_at IS NULL")
                    .bind(now)
                    .bind(keep)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }

        /// Table, key column and value column of each sealed column.
        fn sealed_place(column: SealedColumn) -> (&'static str, &'static str, &'static str) {
            let (key, value) = match column {
                SealedColumn::UpstreamAccess => ("user_id", "access_sealed"),
                SealedColumn::UpstreamRefresh => ("user_id", "refresh_sealed"),
                SealedColumn::SigningKey => ("kid", "private_sealed"),
                SealedColumn::PendingVerifier => ("id_hash", "upstream_verifier_sealed"),
                SealedColumn::RefreshSuccessor => ("token_hash", "successor_sealed"),
                SealedColumn::LocalState => ("name", "value"),
                SealedColumn::OnceResult => ("key_hash", "result_sealed"),
            };
            (column.table(), key, value)
        }

        const SEALED_COLUMNS: [SealedColumn; 7] = [
            SealedColumn::UpstreamAccess,
            SealedColumn::UpstreamRefresh,
            SealedColumn::SigningKey,
            SealedColumn::PendingVerifier,
            SealedColumn::RefreshSuccessor,
            SealedColumn::LocalState,
            SealedColumn::OnceResult,
        ];

        #[async_trait]
        impl SealedStore for $store {
            async fn list_sealed(&self) -> Result<Vec<SealedValue>> {
                let mut all = Vec::new();
                for column in SEALED_COLUMNS {
                    // Names from the fixed table above, never from input.
                    let (table, key, value) = sealed_place(column);
                    let rows = sqlx::query(&format!(
                        "SELECT {key} AS k, {value} AS v FROM {table} \
                         WHERE {value} IS NOT NULL ORDER BY {key}"
                    ))
                    .fetch_all(&self.pool)
                    .await?;
                    for r in rows {
                        all.push(SealedValue {
                            column,
                            key: r.try_get("k")?,
                            sealed: r.try_get("v")?,
                        });
                    }
                }
                Ok(all)
            }

            async fn replace_sealed(&self, v: &SealedValue, resealed: &str) -> Result<bool> {
                let (table, key, value) = sealed_place(v.column);
                let res = sqlx::query(&format!(
                    "UPDATE {table} SET {value} = $1 WHERE {key} = $2 AND {value} = $3"
                ))
                .bind(resealed)
                .bind(&v.key)
                .bind(&v.sealed)
                .execute(&self.pool)
                .await?;
                Ok(res.rows_affected() == 1)
            }
        }

        #[async_trait]
        impl RateLimitStore for $store {
            async fn take_rate(
                &self,
                bucket: &str,
                now_us: i64,
                interval_us: i64,
                burst: u32,
            ) -> Result<Option<i64>> {
                // GCRA in one statement: the bucket's theoretical arrival
                // time (TAT) moves on by one interval per request, and a
                // request is allowed while the new TAT stays within `burst`
                // intervals of now. The conditional upsert makes the check
                // and the count one atomic step on either backend.
                let interval = interval_us.max(0);
                let horizon = now_us.saturating_add(interval.saturating_mul(i64::from(burst.max(1))));
                let taken = sqlx::query(
                    "INSERT INTO rate_limits (bucket, tat_us) VALUES ($1, $2 + $3) \
                     ON CONFLICT (bucket) DO UPDATE SET tat_us = \
                       (CASE WHEN rate_limits.tat_us > $2 THEN rate_limits.tat_us ELSE $2 END) + $3 \
                     WHERE (CASE WHEN rate_limits.tat_us > $2 THEN rate_limits.tat_us ELSE $2 END) + $3 <= $4 \
                     RETURNING tat_us",
                )
                .bind(bucket)
                .bind(now_us)
                .bind(interval)
                .bind(horizon)
                .fetch_optional(&self.pool)
                .await?;
                if taken.is_some() {
                    return Ok(None);
                }
                let tat: Option<i64> =
                    sqlx::query_scalar("SELECT tat_us FROM rate_limits WHERE bucket = $1")
                        .bind(bucket)
                        .fetch_optional(&self.pool)
                        .await?;
                let tat = tat.unwrap_or(now_us).max(now_us);
                Ok(Some((tat.saturating_add(interval) - horizon).max(1)))
            }

            async fn peek_rate(
                &self,
                bucket: &str,
                now_us: i64,
                interval_us: i64,
                burst: u32,
            ) -> Result<Option<i64>> {
                let interval = interval_us.max(0);
                let horizon = now_us.saturating_add(interval.saturating_mul(i64::from(burst.max(1))));
                let tat: Option<i64> =
                    sqlx::query_scalar("SELECT tat_us FROM rate_limits WHERE bucket = $1")
                        .bind(bucket)
                        .fetch_optional(&self.pool)
                        .await?;
                let next = tat.unwrap_or(now_us).max(now_us).saturating_add(interval);
                Ok((next > horizon).then(|| (next - horizon).max(1)))
            }
        }

        #[async_trait]
        impl Maintenance for $store {
            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn counts(&self) -> Result<Vec<(&'static str, i64)>> {
                // `rate_limits` and `spend` are left out: they hold
                // counters, not records, and every request to a limited
                // endpoint is counted there, even one the endpoint then
                // refuses.
                const TABLES: [&str; 15] = [
                    "users", "clients", "pending_authorizations", "consents", "grants",
                    "authorization_codes", "access_tokens", "refresh_tokens", "upstream_tokens",
                    "device_authorizations", "signing_keys", "local_state", "mcp_sessions",
                    "audit_log", "once_keys",
                ];
                let mut out = Vec::with_capacity(TABLES.len());
                for t in TABLES {
                    // Table names are the constants above, never input.
                    let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {t}"))
                        .fetch_one(&self.pool)
                        .await?;
                    out.push((t, row.try_get("n")?));
                }
                Ok(out)
            }

            async fn backup(&self, path: &str) -> Result<()> {
                self.backup_to(path).await
            }

            async fn sweep(&self, now: i64) -> Result<SweepReport> {
                let mut tx = self.pool.begin().await?;
                let mut report = SweepReport::default();
                report.pending = sqlx::query(
                    "DELETE FROM pending_authorizations WHERE expires_at <= $1 OR consumed_at IS NOT NULL",
                )
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Used codes are kept until they expire so that a replay can
                // still be recognised (and its grant revoked).
                report.codes = sqlx::query("DELETE FROM authorization_codes WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                report.access_tokens = sqlx::query("DELETE FROM access_tokens WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                report.refresh_tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                // The sealed successor only serves the refresh grace window.
                sqlx::query(
                    "UPDATE refresh_tokens SET successor_sealed = NULL \
                     WHERE successor_sealed IS NOT NULL AND rotated_at <= $1",
                )
                .bind(now - crate::SUCCESSOR_RETENTION_SECONDS)
                .execute(&mut *tx)
                .await?;
                // A grant with no tokens left is finished (revoked or expired).
                report.grants = sqlx::query(
                    "DELETE FROM grants WHERE NOT EXISTS \
                     (SELECT 1 FROM access_tokens a WHERE a.grant_id = grants.id) \
                     AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id) \
                     AND NOT EXISTS (SELECT 1 FROM authorization_codes c \
                                     WHERE c.code_hash = grants.code_hash)",
                )
                .execute(&mut *tx)
                .await?
                .rows_affected();
                report.devices = sqlx::query("DELETE FROM device_authorizations WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                report.clients = sqlx::query(
                    "DELETE FROM clients WHERE expires_at IS NOT NULL AND expires_at <= $1",
                )
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                report.mcp_sessions = sqlx::query("DELETE FROM mcp_sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                report.rate_limits = sqlx::query("DELETE FROM rate_limits WHERE tat_us <= $1")
                    .bind(now.saturating_mul(1_000_000))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                for table in ["audit_log", "spend", "once_keys"] {
                    // Table names are the constants above, never input.
                    report.usage += sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(report)
            }
        }
    };
}

pub(crate) use impl_sql_store;
