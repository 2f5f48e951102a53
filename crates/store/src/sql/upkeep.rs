//! What operators and the server's upkeep do: listing and deleting,
//! re-sealing every sealed value, rate-limit counters, and the sweep of
//! expired rows.
//! Expanded by `impl_sql_store!` into each backend's module, beside the
//! row helpers it defines there; the portability rules of `super` apply.

macro_rules! sql_upkeep {
    ($store:ty, $db:ty) => {
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

pub(crate) use sql_upkeep;
