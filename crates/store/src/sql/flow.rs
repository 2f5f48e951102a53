//! Clients, pending authorizations and consents, and device authorizations:
//! what an authorization request writes before a code is issued.
//! Expanded by `impl_sql_store!` into each backend's module, beside the
//! row helpers it defines there; the portability rules of `super` apply.

macro_rules! sql_flow {
    ($store:ty, $db:ty) => {
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
    };
}

pub(crate) use sql_flow;
