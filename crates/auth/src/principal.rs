//! The authenticated caller, as the resource guard hands it to handlers.

/// Who is calling the protected resource: the user and the client acting for
/// them, with the scopes they were granted. Inserted into the request's
/// extensions by the guard; MCP tool handlers read it from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Our user id.
    pub user_id: String,
    /// Identity-provider subject, e.g. `local:alice` or `x:12345`.
    pub subject: String,
    pub username: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub grant_id: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The protected resource the token was issued for (its audience), or
    /// `None` where no token is involved (a local sign-in over stdio).
    pub resource: Option<String>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The scopes in `required` this principal lacks.
    pub fn missing_scopes<'a>(&self, required: &'a [String]) -> Vec<&'a str> {
        required
            .iter()
            .filter(|r| !self.has_scope(r))
            .map(String::as_str)
            .collect()
    }
}
