//! JWT access tokens (RFC 9068), signed RS256 with keys kept in the store.
//!
//! Private keys are sealed with the keyring (AAD `signing_key:<kid>`), so all
//! instances sharing a database and an encryption key sign with the same key
//! and publish the same `/jwks.json`. The newest unretired key signs; retired
//! keys stay published (and accepted) for `publish_retired_for` seconds so
//! that tokens they signed remain verifiable. Instances reload the key set at
//! least every [`RELOAD_SECONDS`], and at once when they see an unknown `kid`.
//!
//! A JWT we issue is also stored as an access-token digest, so revocation
//! and introspection behave exactly as for opaque tokens; external resource
//! servers can verify signatures with the JWKS alone.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use xmcp_crypto::envelope::Keyring;
use xmcp_store::{SigningKeyRecord, Store, StoreError};

/// How often instances re-read the key set from the store.
pub const RELOAD_SECONDS: i64 = 60;

/// RFC 9068 §2.2 claims.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("signing key: {0}")]
    Key(String),
}

#[derive(Default)]
struct KeySet {
    active: Option<(String, EncodingKey)>,
    verify: HashMap<String, DecodingKey>,
    jwks: Vec<serde_json::Value>,
    loaded_at: i64,
}

/// The key set, cached from the store.
pub struct JwtKeys {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    publish_retired_for: i64,
    state: RwLock<KeySet>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys").finish_non_exhaustive()
    }
}

fn aad(kid: &str) -> String {
    xmcp_store::SealedColumn::SigningKey.aad(kid)
}

/// A new RSA-2048 key pair.
pub struct RsaKey {
    /// The private key, PKCS #8 PEM.
    pub pem: SecretString,
    /// The public modulus and exponent, big-endian, no leading zeros.
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey").finish_non_exhaustive()
    }
}

/// Generate an RSA-2048 key with aws-lc, the library that signs and
/// verifies (slow, a search for primes: call off the async executor).
pub fn new_rsa_key() -> Result<RsaKey, JwtError> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| JwtError::Key("cannot generate an RSA key".into()))?;
    let der = pair
        .as_der()
        .map_err(|_| JwtError::Key("cannot encode the RSA key".into()))?;
    let pem = pem::encode_config(
        &pem::Pem::new("PRIVATE KEY", der.as_ref()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    let public = pair.public_key();
    Ok(RsaKey {
        pem: pem.into(),
        n: public.modulus().big_endian_without_leading_zero().to_vec(),
        e: public.exponent().big_endian_without_leading_zero().to_vec(),
    })
}

/// A new signing key, sealed for the store.
fn generate(keyring: &Keyring, now: i64) -> Result<SigningKeyRecord, JwtError> {
    let key = new_rsa_key()?;
    let kid = format!("sk_{}", hex_id());
    let jwk = serde_json::json!({
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
        "n": xmcp_crypto::b64url(&key.n),
        "e": xmcp_crypto::b64url(&key.e),
    });
    Ok(SigningKeyRecord {
        private_sealed: keyring.seal(key.pem.expose_secret().as_bytes(), aad(&kid).as_bytes()),
        kid,
        alg: "RS256".into(),
        public_jwk: jwk.to_string(),
        created_at: now,
        retired_at: None,
    })
}

fn hex_id() -> String {
    xmcp_crypto::random_bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl JwtKeys {
    /// Load the key set, creating the first key if there is none.
    pub async fn load(
        store: Arc<dyn Store>,
        keyring: Arc<Keyring>,
        publish_retired_for: i64,
        now: i64,
    ) -> Result<Self, JwtError> {
        let keys = Self {
            store,
            keyring,
            publish_retired_for,
            state: RwLock::new(KeySet::default()),
        };
        keys.reload(now).await?;
        let has_active = keys
            .state
            .read()
            .map(|s| s.active.is_some())
            .unwrap_or(false);
        if !has_active {
            keys.add_key(now).await?;
        }
        Ok(keys)
    }

    async fn add_key(&self, now: i64) -> Result<String, JwtError> {
        let keyring = self.keyring.clone();
        let record = tokio::task::spawn_blocking(move || generate(&keyring, now))
            .await
            .map_err(|e| JwtError::Key(e.to_string()))??;
        self.store.insert_signing_key(&record).await?;
        tracing::info!(kid = %record.kid, "created a JWT signing key");
        self.reload(now).await?;
        Ok(record.kid)
    }

    /// Make a new key the signing key; older keys stay published for a while.
    pub async fn rotate(&self, now: i64) -> Result<String, JwtError> {
        let kid = self.add_key(now).await?;
        self.store.retire_signing_keys(&kid, now).await?;
        self.reload(now).await?;
        Ok(kid)
    }

    /// Re-read the key set from the store.
    pub async fn reload(&self, now: i64) -> Result<(), JwtError> {
        let rows = self.store.list_signing_keys().await?;
        let mut set = KeySet {
            loaded_at: now,
            ..Default::default()
        };
        for row in rows {
            let published = row
                .retired_at
                .is_none_or(|r| now - r <= self.publish_retired_for);
            if !published || row.alg != "RS256" {
                continue;
            }
            let jwk: serde_json::Value =
                serde_json::from_str(&row.public_jwk).map_err(|e| JwtError::Key(e.to_string()))?;
            let (Some(n), Some(e)) = (jwk["n"].as_str(), jwk["e"].as_str()) else {
                return Err(JwtError::Key(format!(
                    "key {} has no RSA components",
                    row.kid
                )));
            };
            let decoding =
                DecodingKey::from_rsa_components(n, e).map_err(|e| JwtError::Key(e.to_string()))?;
            if row.retired_at.is_none() && set.active.is_none() {
                let pem = self
                    .keyring
                    .open(&row.private_sealed, aad(&row.kid).as_bytes())
                    .map_err(|e| JwtError::Key(format!("cannot open key {}: {e}", row.kid)))?;
                let encoding = EncodingKey::from_rsa_pem(pem.expose_secret())
                    .map_err(|e| JwtError::Key(e.to_string()))?;
                set.active = Some((row.kid.clone(), encoding));
            }
            set.verify.insert(row.kid.clone(), decoding);
            set.jwks.push(jwk);
        }
        if let Ok(mut state) = self.state.write() {
            *state = set;
        }
        Ok(())
    }

    async fn reload_if_stale(&self, now: i64) {
        let stale = self
            .state
            .read()
            .map(|s| now - s.loaded_at >= RELOAD_SECONDS)
            .unwrap_or(true);
        if stale && let Err(e) = self.reload(now).await {
            tracing::warn!(error = %e, "cannot reload JWT signing keys; keeping the cached set");
        }
    }

    /// Sign access-token claims with the active key.
    pub async fn sign(&self, claims: &AccessClaims, now: i64) -> Result<String, JwtError> {
        self.reload_if_stale(now).await;
        let state = self
            .state
            .read()
            .map_err(|_| JwtError::Key("key set lock poisoned".into()))?;
        let (kid, key) = state
            .active
            .as_ref()
            .ok_or_else(|| JwtError::Key("no active signing key".into()))?;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).map_err(|e| JwtError::Key(e.to_string()))
    }

    /// Verify an access token: RS256 signature by a published key, `typ`
    /// `at+jwt`, exact `iss`, an accepted `aud`, and `exp` against `now`.
    pub async fn verify(
        &self,
        token: &str,
        now: i64,
        issuer: &str,
        audiences: &[&str],
    ) -> Result<AccessClaims, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| "the access token is malformed".to_owned())?;
        if header.alg != Algorithm::RS256 {
            return Err("the access token uses an unexpected algorithm".into());
        }
        if !header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        }) {
            return Err("the token is not a JWT access token (typ)".into());
        }
        let kid = header.kid.ok_or("the access token has no key id")?;
        let known = self
            .state
            .read()
            .map(|s| s.verify.contains_key(&kid))
            .unwrap_or(false);
        if !known {
            // Perhaps another instance rotated: look once more.
            let stale = self
                .state
                .read()
                .map(|s| now - s.loaded_at >= 5)
                .unwrap_or(true);
            if stale {
                let _ = self.reload(now).await;
            }
        }
        let state = self
            .state
            .read()
            .map_err(|_| "key set unavailable".to_owned())?;
        let key = state
            .verify
            .get(&kid)
            .ok_or("the access token was signed by an unknown key")?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(audiences);
        // Expiry is checked below against our clock, not the system's.
        validation.validate_exp = false;
        validation.required_spec_claims = ["iss", "aud", "sub", "exp"]
            .into_iter()
            .map(String::from)
            .collect();
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map_err(|e| format!("the access token is invalid ({e})"))?;
        if data.claims.exp <= now {
            return Err("the access token has expired".into());
        }
        Ok(data.claims)
    }

    /// The JSON Web Key Set to publish.
    pub fn jwks(&self) -> serde_json::Value {
        let keys = self
            .state
            .read()
            .map(|s| s.jwks.clone())
            .unwrap_or_default();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_signs_what_its_published_components_verify() {
        let key = new_rsa_key().unwrap();
        let pem = key.pem.expose_secret();
        assert!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "PKCS #8 PEM"
        );
        assert_eq!(key.n.len(), 256, "a 2048-bit modulus");
        assert_eq!(key.e, [1, 0, 1]);
        assert!(!format!("{key:?}").contains("PRIVATE"));

        let claims = AccessClaims {
            iss: "https://as.example".into(),
            sub: "u1".into(),
            aud: "https://as.example/mcp".into(),
            client_id: "c1".into(),
            scope: "tweet.read".into(),
            iat: 0,
            exp: 4_000_000_000,
            jti: "j1".into(),
        };
        let signing = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &signing).unwrap();
        let verifying = DecodingKey::from_rsa_components(
            &xmcp_crypto::b64url(&key.n),
            &xmcp_crypto::b64url(&key.e),
        )
        .unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://as.example/mcp"]);
        let decoded =
            jsonwebtoken::decode::<AccessClaims>(&token, &verifying, &validation).unwrap();
        assert_eq!(decoded.claims, claims);

        // Another key's components do not verify it.
        let other = new_rsa_key().unwrap();
        let wrong = DecodingKey::from_rsa_components(
            &xmcp_crypto::b64url(&other.n),
            &xmcp_crypto::b64url(&other.e),
        )
        .unwrap();
        assert!(jsonwebtoken::decode::<AccessClaims>(&token, &wrong, &validation).is_err());
    }
}
