//! The SQL of [`crate::UsageStore`] and [`crate::OnceStore`]: spend,
//! audit and idempotency claims. Expanded by `impl_sql_store!` for each
//! backend, in a scope of its own; the portability rules of `super` apply.

/// No cap: large enough never to be reached, small enough that adding an
/// amount to it cannot overflow a BIGINT.
pub(crate) const NO_CAP: i64 = i64::MAX / 4;

macro_rules! impl_usage_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use crate::model::*;
            use crate::sql::usage::NO_CAP;
            use crate::{OnceStore, Result, UsageStore};
            use async_trait::async_trait;
            use sqlx::Row;
            use xmcp_crypto::token::TokenHash;

            type DbRow = <$db as sqlx::Database>::Row;

            fn audit_from_row(row: &DbRow) -> Result<AuditEntry> {
                Ok(AuditEntry {
                    at: row.try_get("at")?,
                    user_id: row.try_get("user_id")?,
                    client_id: row.try_get("client_id")?,
                    tool: row.try_get("tool")?,
                    method: row.try_get("method")?,
                    path: row.try_get("path")?,
                    status: row.try_get("status")?,
                    transaction_id: row.try_get("transaction_id")?,
                    cost: row.try_get("cost")?,
                    expires_at: row.try_get("expires_at")?,
                })
            }

            #[async_trait]
            impl UsageStore for $store {
                async fn hold_spend(
                    &self,
                    day: i64,
                    limits: &[SpendLimit],
                    amount: i64,
                    expires_at: i64,
                ) -> Result<Option<SpendRefusal>> {
                    let amount = amount.clamp(0, NO_CAP);
                    let mut tx = self.pool.begin().await?;
                    for limit in limits {
                        let cap = limit.cap.unwrap_or(NO_CAP).clamp(0, NO_CAP);
                        // The conditional upsert checks and holds in one
                        // step: a row (or its absence, when the amount alone
                        // fits) that another transaction changes first is
                        // seen as it stands after that change.
                        let held = if amount <= cap {
                            sqlx::query(
                                "INSERT INTO spend (day, scope, spent, held, expires_at) \
                                 VALUES ($1, $2, 0, $3, $4) \
                                 ON CONFLICT (day, scope) DO UPDATE SET held = spend.held + $3 \
                                 WHERE spend.spent + spend.held + $3 <= $5 \
                                 RETURNING held",
                            )
                            .bind(day)
                            .bind(&limit.scope)
                            .bind(amount)
                            .bind(expires_at)
                            .bind(cap)
                            .fetch_optional(&mut *tx)
                            .await?
                            .is_some()
                        } else {
                            false
                        };
                        if !held {
                            let row = sqlx::query(
                                "SELECT spent, held FROM spend WHERE day = $1 AND scope = $2",
                            )
                            .bind(day)
                            .bind(&limit.scope)
                            .fetch_optional(&mut *tx)
                            .await?;
                            let (spent, held) = match row {
                                Some(r) => (r.try_get("spent")?, r.try_get("held")?),
                                None => (0, 0),
                            };
                            tx.rollback().await?;
                            return Ok(Some(SpendRefusal {
                                scope: limit.scope.clone(),
                                cap,
                                spent,
                                held,
                            }));
                        }
                    }
                    tx.commit().await?;
                    Ok(None)
                }

                async fn settle_spend(
                    &self,
                    day: i64,
                    scopes: &[String],
                    held: i64,
                    spent: i64,
                ) -> Result<()> {
                    let mut tx = self.pool.begin().await?;
                    for scope in scopes {
                        sqlx::query(
                            "UPDATE spend SET \
                               held = CASE WHEN held > $1 THEN held - $1 ELSE 0 END, \
                               spent = spent + $2 \
                             WHERE day = $3 AND scope = $4",
                        )
                        .bind(held.clamp(0, NO_CAP))
                        .bind(spent.clamp(0, NO_CAP))
                        .bind(day)
                        .bind(scope)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Ok(tx.commit().await?)
                }

                async fn get_spend(&self, day: i64, scope: &str) -> Result<Spend> {
                    let row = sqlx::query("SELECT spent, held FROM spend WHERE day = $1 AND scope = $2")
                        .bind(day)
                        .bind(scope)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(match row {
                        Some(r) => Spend {
                            spent: r.try_get("spent")?,
                            held: r.try_get("held")?,
                        },
                        None => Spend::default(),
                    })
                }

                async fn insert_audit(&self, entries: &[AuditEntry]) -> Result<()> {
                    if entries.is_empty() {
                        return Ok(());
                    }
                    let mut tx = self.pool.begin().await?;
                    for e in entries {
                        sqlx::query(
                            "INSERT INTO audit_log (at, user_id, client_id, tool, method, path, \
                             status, transaction_id, cost, expires_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        )
                        .bind(e.at)
                        .bind(&e.user_id)
                        .bind(&e.client_id)
                        .bind(&e.tool)
                        .bind(&e.method)
                        .bind(&e.path)
                        .bind(e.status)
                        .bind(&e.transaction_id)
                        .bind(e.cost)
                        .bind(e.expires_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Ok(tx.commit().await?)
                }

                async fn list_audit(
                    &self,
                    user_id: Option<&str>,
                    since: i64,
                    limit: u32,
                ) -> Result<Vec<AuditEntry>> {
                    let rows = sqlx::query(
                        "SELECT * FROM audit_log WHERE at >= $1 AND ($2 IS NULL OR user_id = $2) \
                         ORDER BY at DESC, id DESC LIMIT $3",
                    )
                    .bind(since)
                    .bind(user_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(audit_from_row).collect()
                }

                async fn usage(
                    &self,
                    user_id: Option<&str>,
                    from: i64,
                    to: i64,
                ) -> Result<Vec<UsageRow>> {
                    let rows = sqlx::query(
                        "SELECT user_id, client_id, tool, COUNT(*) AS calls, \
                           CAST(COALESCE(SUM(cost), 0) AS BIGINT) AS cost \
                         FROM audit_log WHERE at >= $1 AND at < $2 AND ($3 IS NULL OR user_id = $3) \
                         GROUP BY user_id, client_id, tool \
                         ORDER BY cost DESC, calls DESC, user_id, client_id, tool",
                    )
                    .bind(from)
                    .bind(to)
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(UsageRow {
                                user_id: r.try_get("user_id")?,
                                client_id: r.try_get("client_id")?,
                                tool: r.try_get("tool")?,
                                calls: r.try_get("calls")?,
                                cost: r.try_get("cost")?,
                            })
                        })
                        .collect()
                }
            }

            #[async_trait]
            impl OnceStore for $store {
                async fn claim_once(
                    &self,
                    key: &TokenHash,
                    user_id: &str,
                    now: i64,
                    lease_until: i64,
                ) -> Result<OnceClaim> {
                    // A key whose claim or result expired is free again.
                    let claimed = sqlx::query(
                        "INSERT INTO once_keys (key_hash, user_id, result_sealed, created_at, expires_at) \
                         VALUES ($1, $2, NULL, $3, $4) \
                         ON CONFLICT (key_hash) DO UPDATE SET user_id = $2, result_sealed = NULL, \
                           created_at = $3, expires_at = $4 \
                         WHERE once_keys.expires_at <= $3 \
                         RETURNING key_hash",
                    )
                    .bind(key.as_str())
                    .bind(user_id)
                    .bind(now)
                    .bind(lease_until)
                    .fetch_optional(&self.pool)
                    .await?;
                    if claimed.is_some() {
                        return Ok(OnceClaim::Claimed);
                    }
                    let row = sqlx::query("SELECT result_sealed FROM once_keys WHERE key_hash = $1")
                        .bind(key.as_str())
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(
                        match row.map(|r| r.try_get::<Option<String>, _>("result_sealed")) {
                            Some(Ok(Some(result))) => OnceClaim::Done(result),
                            Some(Err(e)) => return Err(e.into()),
                            // Deleted between the two statements: someone
                            // released it; say so rather than guess.
                            Some(Ok(None)) | None => OnceClaim::InFlight,
                        },
                    )
                }

                async fn finish_once(
                    &self,
                    key: &TokenHash,
                    result_sealed: &str,
                    expires_at: i64,
                ) -> Result<()> {
                    sqlx::query(
                        "UPDATE once_keys SET result_sealed = $1, expires_at = $2 WHERE key_hash = $3",
                    )
                    .bind(result_sealed)
                    .bind(expires_at)
                    .bind(key.as_str())
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn release_once(&self, key: &TokenHash) -> Result<()> {
                    sqlx::query("DELETE FROM once_keys WHERE key_hash = $1 AND result_sealed IS NULL")
                        .bind(key.as_str())
                        .execute(&self.pool)
                        .await?;
                    Ok(())
                }
            }
        };
    };
}

pub(crate) use impl_usage_store;
