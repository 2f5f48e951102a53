//! The identity-provider seam: who the user is, established after consent.
//!
//! The consent page is ours; what it asks for and what happens on "Allow"
//! depends on the provider:
//! * [`LocalIdentityProvider`] asks for a username and password (argon2
//!   hashes from configuration) or, in demo mode, offers a list of demo users,
//!   and authenticates in place.
//! * An upstream provider (X, OpenID Connect) returns [`LoginStep::Redirect`]
//!   with its own `state` and PKCE verifier; the user comes back to
//!   `/upstream/callback`, and [`IdentityProvider::complete`] finishes.

use crate::params::Params;
use crate::upstream::{RenewError, TokenSet};
use async_trait::async_trait;
use secrecy::SecretString;
use xmcp_store::UserIdentity;

/// What the consent form must collect for this provider.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginForm {
    /// Nothing: the provider authenticates elsewhere (upstream redirect).
    None,
    /// Username and password fields.
    Password,
    /// A choice between demo users (first preselected), no password.
    ChooseUser(Vec<(String, String)>),
}

/// The outcome of the user approving consent.
pub enum LoginStep {
    Authenticated(UserIdentity),
    /// Send the browser upstream. `state` and `verifier` are kept (hashed and
    /// sealed respectively) with the pending authorization.
    Redirect {
        url: String,
        state: SecretString,
        verifier: SecretString,
    },
    /// The credentials were wrong: show the consent page again with this
    /// message. Counts as a failed guess against the request and the account.
    Rejected(String),
    /// Show the consent page again with this message (no user chosen, the
    /// server busy); not a failed guess.
    Retry(String),
}

/// What an upstream callback yields.
pub struct UpstreamLogin {
    pub identity: UserIdentity,
    /// The upstream's tokens, to seal and keep for this user if its API is
    /// to be called on their behalf (see [`crate::upstream::Vault`]).
    pub tokens: Option<TokenSet>,
}

/// Errors an upstream callback can end in, each mapped to an OAuth error
/// redirect to the client.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the user denied access at the identity provider")]
    AccessDenied,
    #[error("the identity provider returned an error: {0}")]
    Provider(String),
    #[error("the identity provider could not be reached: {0}")]
    Unavailable(String),
}

/// Context for starting a login.
pub struct LoginContext<'a> {
    /// Scopes the client was granted on our side.
    pub scope: &'a str,
    /// Our callback URL for upstream redirects.
    pub callback_url: &'a str,
    pub now: i64,
}

#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// The name kept with this provider's tokens and heading its subjects
    /// (`x`, `oidc`, `local`).
    fn name(&self) -> &str;

    /// Short name shown on the consent page ("X", "local accounts").
    fn display_name(&self) -> &str;

    fn login_form(&self) -> LoginForm;

    /// The user approved consent; `form` holds the consent form's fields.
    async fn begin(&self, ctx: &LoginContext<'_>, form: &Params) -> LoginStep;

    /// Finish an upstream login from the callback's `code`.
    async fn complete(
        &self,
        _code: &str,
        _verifier: &SecretString,
        _ctx: &LoginContext<'_>,
    ) -> Result<UpstreamLogin, UpstreamError> {
        Err(UpstreamError::Provider(
            "this identity provider has no upstream callback".into(),
        ))
    }

    /// Renew the tokens this provider issued at sign-in
    /// ([`UpstreamLogin::tokens`]) with their refresh token. Only a provider
    /// that keeps tokens is asked.
    async fn refresh(&self, _refresh_token: &SecretString) -> Result<TokenSet, RenewError> {
        Err(RenewError::Refused {
            status: 0,
            message: "this identity provider keeps no tokens to renew".into(),
        })
    }
}

/// A local account.
#[derive(Clone)]
pub struct LocalUser {
    pub username: String,
    pub display_name: Option<String>,
    /// Argon2 PHC string. `None` only in demo mode.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for LocalUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalUser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How many argon2 verifications run at once. Each takes tens of
/// milliseconds of one core and 19 MiB; more at once only queue on the CPU
/// while holding memory.
const CONCURRENT_PASSWORD_CHECKS: usize = 2;

/// How long a sign-in waits for a turn to check its password before the
/// page asks the user to try again.
const PASSWORD_CHECK_QUEUE: std::time::Duration = std::time::Duration::from_secs(5);

/// Username/password accounts from configuration, or demo users.
#[derive(Debug)]
pub struct LocalIdentityProvider {
    users: Vec<LocalUser>,
    demo: bool,
    /// A hash to verify against when the username is unknown, so that the
    /// response time does not reveal which usernames exist.
    dummy_hash: String,
    /// Turns to run argon2, so a flood of sign-ins cannot take every core
    /// and gigabytes of memory.
    checks: tokio::sync::Semaphore,
}

impl LocalIdentityProvider {
    pub fn new(users: Vec<LocalUser>) -> Self {
        Self {
            users,
            demo: false,
            dummy_hash: xmcp_crypto::password::hash("dummy password for timing"),
            checks: tokio::sync::Semaphore::new(CONCURRENT_PASSWORD_CHECKS),
        }
    }

    /// Demo users that sign in without a password. Never for production.
    pub fn demo(users: Vec<LocalUser>) -> Self {
        Self {
            users,
            demo: true,
            dummy_hash: String::new(),
            checks: tokio::sync::Semaphore::new(CONCURRENT_PASSWORD_CHECKS),
        }
    }

    fn identity(user: &LocalUser) -> UserIdentity {
        UserIdentity {
            subject: format!("local:{}", user.username),
            username: Some(user.username.clone()),
            display_name: user.display_name.clone(),
        }
    }
}

#[async_trait]
impl IdentityProvider for LocalIdentityProvider {
    fn name(&self) -> &str {
        "local"
    }

    fn display_name(&self) -> &str {
        if self.demo {
            "demo accounts"
        } else {
            "local accounts"
        }
    }

    fn login_form(&self) -> LoginForm {
        if self.demo {
            LoginForm::ChooseUser(
                self.users
                    .iter()
                    .map(|u| {
                        (
                            u.username.clone(),
                            u.display_name.clone().unwrap_or_else(|| u.username.clone()),
                        )
                    })
                    .collect(),
            )
        } else {
            LoginForm::Password
        }
    }

    async fn begin(&self, _ctx: &LoginContext<'_>, form: &Params) -> LoginStep {
        let username = form.get("username").unwrap_or_default();
        let user = self.users.iter().find(|u| u.username == username);
        if self.demo {
            return match user {
                Some(u) => LoginStep::Authenticated(Self::identity(u)),
                None => LoginStep::Retry("Choose one of the demo users.".into()),
            };
        }
        let password = form.get("password").unwrap_or_default().to_owned();
        let hash = user
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| self.dummy_hash.clone());
        let Ok(Ok(_turn)) = tokio::time::timeout(PASSWORD_CHECK_QUEUE, self.checks.acquire()).await
        else {
            return LoginStep::Retry("The server is busy. Try again in a moment.".into());
        };
        // Argon2 is deliberately slow: keep it off the async executor.
        let verified =
            tokio::task::spawn_blocking(move || xmcp_crypto::password::verify(&password, &hash))
                .await
                .unwrap_or(false);
        match user {
            Some(u) if verified => LoginStep::Authenticated(Self::identity(u)),
            _ => LoginStep::Rejected("Wrong username or password.".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With every turn to check a password taken, a sign-in waits, then is
    /// asked to try again: it neither hashes nor counts as a wrong guess.
    #[tokio::test(start_paused = true)]
    async fn password_checks_wait_their_turn() {
        let idp = LocalIdentityProvider::new(vec![LocalUser {
            username: "u".into(),
            display_name: None,
            password_hash: Some(xmcp_crypto::password::hash("p")),
        }]);
        let ctx = LoginContext {
            scope: "",
            callback_url: "",
            now: 0,
        };
        let form = Params::parse("username=u&password=nope").unwrap();
        let turns = idp
            .checks
            .acquire_many(CONCURRENT_PASSWORD_CHECKS as u32)
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        match idp.begin(&ctx, &form).await {
            LoginStep::Retry(m) => assert!(m.contains("busy"), "{m}"),
            _ => panic!("a sign-in without a turn must be asked to retry"),
        }
        assert!(started.elapsed() >= PASSWORD_CHECK_QUEUE);
        drop(turns);
        assert!(matches!(
            idp.begin(&ctx, &form).await,
            LoginStep::Rejected(_)
        ));
    }
}
