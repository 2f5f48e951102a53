//! A minimal OpenID Connect provider for tests: discovery, a JWKS, an
//! authorize endpoint that signs "the user" in at once, and a token endpoint
//! that checks PKCE and issues an RS256 ID token. It can be told to misbehave.

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const OIDC_CLIENT_ID: &str = "xmcp-oidc-test";
pub const OIDC_SUBJECT: &str = "user-7f3a";

/// How the provider misbehaves, if at all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Misbehaviour {
    None,
    WrongNonce,
    WrongAudience,
    /// Sign with a key that is not in the published set.
    ForeignKey,
    /// Publish a discovery document naming another issuer.
    WrongIssuer,
}

struct Inner {
    issuer: String,
    key: jsonwebtoken::EncodingKey,
    foreign: jsonwebtoken::EncodingKey,
    jwk: Value,
    codes: Mutex<HashMap<String, (String, String)>>,
    mode: Mutex<Misbehaviour>,
}

pub struct OidcProvider {
    pub issuer: String,
    inner: Arc<Inner>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

fn rsa_key() -> (jsonwebtoken::EncodingKey, xmcp_auth::jwt::RsaKey) {
    use secrecy::ExposeSecret;
    let key = xmcp_auth::jwt::new_rsa_key().unwrap();
    (
        jsonwebtoken::EncodingKey::from_rsa_pem(key.pem.expose_secret().as_bytes()).unwrap(),
        key,
    )
}

impl OidcProvider {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let issuer = format!("http://{}/realms/test", listener.local_addr().unwrap());
        let (key, public) = rsa_key();
        let (foreign, _) = rsa_key();
        let inner = Arc::new(Inner {
            issuer: issuer.clone(),
            key,
            foreign,
            jwk: json!({
                "kty": "RSA", "kid": "test-key", "use": "sig", "alg": "RS256",
                "n": xmcp_crypto::b64url(&public.n),
                "e": xmcp_crypto::b64url(&public.e),
            }),
            codes: Mutex::new(HashMap::new()),
            mode: Mutex::new(Misbehaviour::None),
        });
        let router = Router::new()
            .route(
                "/realms/test/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/realms/test/jwks", get(jwks))
            .route("/realms/test/authorize", get(authorize))
            .route("/realms/test/token", post(token))
            .with_state(inner.clone());
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            issuer,
            inner,
            handle,
        }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// Sign `claims` as an RS256 JWT with the published key (or, with
    /// `foreign`, with a key that is not published).
    pub fn sign(&self, claims: &Value, foreign: bool) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("test-key".into());
        let key = if foreign {
            &self.inner.foreign
        } else {
            &self.inner.key
        };
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    pub fn misbehave(&self, mode: Misbehaviour) {
        *self.inner.mode.lock().unwrap() = mode;
    }
}

async fn discovery(State(s): State<Arc<Inner>>) -> Json<Value> {
    let issuer = if *s.mode.lock().unwrap() == Misbehaviour::WrongIssuer {
        format!("{}-other", s.issuer)
    } else {
        s.issuer.clone()
    };
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{}/authorize", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "jwks_uri": format!("{}/jwks", s.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(s): State<Arc<Inner>>) -> Json<Value> {
    Json(json!({"keys": [s.jwk]}))
}

/// Signs the user in at once and redirects back with a code.
async fn authorize(
    State(s): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("client_id").map(String::as_str) != Some(OIDC_CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || !q
            .get("scope")
            .is_some_and(|s| s.split(' ').any(|x| x == "openid"))
    {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "bad authorization request",
        )
            .into_response();
    }
    let code = xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<16>());
    s.codes.lock().unwrap().insert(
        code.clone(),
        (q["code_challenge"].clone(), q["nonce"].clone()),
    );
    let mut to = url::Url::parse(&q["redirect_uri"]).unwrap();
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"]);
    Redirect::to(to.as_str()).into_response()
}

async fn token(State(s): State<Arc<Inner>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let entry = f
        .get("code")
        .and_then(|c| s.codes.lock().unwrap().remove(c));
    let Some((challenge, nonce)) = entry else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    if !xmcp_crypto::pkce_s256_matches(
        f.get("code_verifier").map_or("", String::as_str),
        &challenge,
    ) {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let mode = *s.mode.lock().unwrap();
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": s.issuer,
        "sub": OIDC_SUBJECT,
        "aud": if mode == Misbehaviour::WrongAudience { "someone-else" } else { OIDC_CLIENT_ID },
        "exp": now + 300,
        "iat": now,
        "nonce": if mode == Misbehaviour::WrongNonce { "not-the-nonce".to_owned() } else { nonce },
        "preferred_username": "oidc.user",
        "name": "OIDC User",
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-key".into());
    let key = if mode == Misbehaviour::ForeignKey {
        &s.foreign
    } else {
        &s.key
    };
    let id_token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    Json(json!({"access_token": "idp-access", "token_type": "Bearer", "expires_in": 300, "id_token": id_token})).into_response()
}
