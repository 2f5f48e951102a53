//! Codes, grants and their tokens (issued once, rotated once, revoked
//! together), and JWT signing keys.
//! Expanded by `impl_sql_store!` into each backend's module, beside the
//! row helpers it defines there; the portability rules of `super` apply.

macro_rules! sql_grants {
    ($store:ty, $db:ty) => {
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
    };
}

pub(crate) use sql_grants;
