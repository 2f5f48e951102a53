//! X as the identity provider behind xmcp's consent page.

use crate::oauth::{CallError, XOAuth};
use async_trait::async_trait;
use secrecy::SecretString;
use std::sync::Arc;
use xmcp_auth::identity::{
    IdentityProvider, LoginContext, LoginForm, LoginStep, UpstreamError, UpstreamLogin,
};
use xmcp_auth::params::Params;
use xmcp_auth::upstream::{RenewError, TokenSet};
use xmcp_store::UserIdentity;

/// The provider name stored with sealed credentials and in subjects (`x:<id>`).
pub const PROVIDER: &str = "x";

/// The X user id of a user X signed in (subject `x:<id>`); `None` for a
/// user another identity provider signed in.
pub fn x_user_id(subject: &str) -> Option<&str> {
    subject.strip_prefix(PROVIDER)?.strip_prefix(':')
}

/// Signs users in with X (OAuth 2.0 authorization code + PKCE).
#[derive(Debug)]
pub struct XIdentityProvider {
    oauth: Arc<XOAuth>,
}

impl XIdentityProvider {
    pub fn new(oauth: Arc<XOAuth>) -> Self {
        Self { oauth }
    }
}

#[async_trait]
impl IdentityProvider for XIdentityProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn display_name(&self) -> &str {
        "X"
    }

    fn login_form(&self) -> LoginForm {
        LoginForm::None
    }

    /// Our own PKCE pair and `state` for the upstream leg: the MCP client's
    /// challenge and `resource` end at our authorization server.
    async fn begin(&self, ctx: &LoginContext<'_>, _form: &Params) -> LoginStep {
        let state = xmcp_crypto::b64url(&xmcp_crypto::random_bytes::<32>());
        let (verifier, challenge) = xmcp_crypto::pkce_pair();
        let url = self.oauth.authorize_url(
            &state,
            &challenge,
            &self.oauth.scopes_for(ctx.scope),
            ctx.callback_url,
        );
        LoginStep::Redirect {
            url,
            state: state.into(),
            verifier: verifier.into(),
        }
    }

    async fn complete(
        &self,
        code: &str,
        verifier: &SecretString,
        ctx: &LoginContext<'_>,
    ) -> Result<UpstreamLogin, UpstreamError> {
        let upstream = |e: CallError| match e {
            CallError::Transient(m) => UpstreamError::Unavailable(m),
            CallError::Refused { message, .. } => UpstreamError::Provider(message),
        };
        let tokens = self
            .oauth
            .exchange_code(code, verifier, ctx.callback_url)
            .await
            .map_err(upstream)?;
        let user = self
            .oauth
            .me(&tokens.access_token)
            .await
            .map_err(upstream)?;
        tracing::info!(x_user_id = %user.id, scope = %tokens.scope, "signed in with X");
        Ok(UpstreamLogin {
            identity: UserIdentity {
                subject: format!("{PROVIDER}:{}", user.id),
                username: Some(user.username),
                display_name: Some(user.name),
            },
            tokens: Some(tokens),
        })
    }

    /// X's refresh tokens are single-use: the vault writes the new pair
    /// before anyone uses it.
    async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, RenewError> {
        self.oauth
            .refresh(refresh_token)
            .await
            .map_err(|e| match e {
                CallError::Refused { status, message } => RenewError::Refused { status, message },
                CallError::Transient(message) => RenewError::Transient(message),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::x_user_id;

    #[test]
    fn only_xs_subjects_name_an_x_user() {
        assert_eq!(x_user_id("x:2244994945"), Some("2244994945"));
        assert_eq!(x_user_id("local:x"), None);
        assert_eq!(x_user_id("xy:1"), None);
        assert_eq!(x_user_id("x"), None);
    }
}
