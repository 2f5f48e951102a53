//! Users, their sealed upstream tokens and refresh leases, the local
//! modes' state, and stateful MCP sessions.
//! Expanded by `impl_sql_store!` into each backend's module, beside the
//! row helpers it defines there; the portability rules of `super` apply.

macro_rules! sql_users {
    ($store:ty, $db:ty) => {
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
    };
}

pub(crate) use sql_users;
