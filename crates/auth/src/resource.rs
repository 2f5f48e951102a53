//! The protected resources one server answers for (RFC 9728, RFC 8707).
//!
//! There is always the base resource, the MCP endpoint's URL
//! ([`crate::AuthConfig::resource`]), which the bare origin also names (the
//! root metadata document's resource). A server may add narrower resources
//! under it, each a URL of its own: xmcp's `/mcp/x/posts/readonly` is the
//! read-only post tools. Each has its own metadata document, may be asked
//! for as the `resource` of an authorization, and becomes the audience of
//! the tokens issued for it. A token is accepted where the resource it was
//! issued for covers the one asked: a token for the base resource covers
//! every narrower one, and a token for a narrower one never works at a
//! wider one.

/// Narrower resources under the base resource, named by the path that
/// follows it (a suffix starting with `/`; the base resource is `""`).
pub trait SubResources: Send + Sync {
    /// The scopes the resource at `suffix` uses (its metadata document's
    /// `scopes_supported`), or `None` when there is no such resource.
    fn scopes_supported(&self, suffix: &str) -> Option<Vec<String>>;

    /// Whether a token issued for the resource at `granted` may be used at
    /// `requested` (both suffixes that [`Self::scopes_supported`] accepts,
    /// or `""`).
    fn covers(&self, granted: &str, requested: &str) -> bool;
}
